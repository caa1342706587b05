package nn

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
)

func namedZeros(name string, shape ...int) NamedTensor {
	return NamedTensor{Name: name, Shape: shape, Data: make([]float32, tensor.Shape(shape).Len())}
}

func TestCheckParams(t *testing.T) {
	want := map[string]tensor.Shape{
		"conv1.weight": {64, 3, 7, 7},
		"bn1.weight":   {64},
		"bn1.bias":     {64},
	}
	fits := []NamedTensor{namedZeros("conv1.weight", 64, 3, 7, 7), namedZeros("bn1.weight", 64), namedZeros("bn1.bias", 64)}
	for _, tc := range []struct {
		name   string
		got    []NamedTensor
		ignore []string
		want   []string // substrings of the error; none: no error
		check  func(*testing.T, *ParamMismatchError)
	}{
		{name: "fits", got: fits},
		{name: "fits in any order", got: []NamedTensor{fits[2], fits[0], fits[1]}},
		{
			name:   "ignored extras",
			got:    append(append([]NamedTensor{}, fits...), namedZeros("fc.weight", 1000, 512), namedZeros("bn1.num_batches_tracked")),
			ignore: []string{"fc.*", "*num_batches_tracked"},
		},
		{
			name: "missing",
			got:  fits[:1],
			want: []string{"enc.pth: 2 parameter(s) do not fit", "2 missing from the file: bn1.bias, bn1.weight"},
			check: func(t *testing.T, e *ParamMismatchError) {
				if !reflect.DeepEqual(e.Missing, []string{"bn1.bias", "bn1.weight"}) {
					t.Errorf("Missing = %v", e.Missing)
				}
			},
		},
		{
			name: "unexpected, not ignored",
			got:  append(append([]NamedTensor{}, fits...), namedZeros("fc.weight", 1000, 512), namedZeros("fc.bias", 1000)),
			want: []string{"2 unexpected in the file: fc.bias, fc.weight"},
		},
		{
			name: "wrong shape",
			got:  []NamedTensor{namedZeros("conv1.weight", 64, 6, 7, 7), fits[1], namedZeros("bn1.bias", 32)},
			want: []string{"2 with the wrong shape: bn1.bias is [32] in the file, the network wants [64], conv1.weight is [64 6 7 7] in the file, the network wants [64 3 7 7]"},
			check: func(t *testing.T, e *ParamMismatchError) {
				if len(e.Misshaped) != 2 || !e.Misshaped[1].File.Equal(tensor.Shape{64, 6, 7, 7}) || !e.Misshaped[1].Want.Equal(tensor.Shape{64, 3, 7, 7}) {
					t.Errorf("Misshaped = %+v", e.Misshaped)
				}
			},
		},
		{
			name:   "a wanted name is never ignored",
			got:    []NamedTensor{namedZeros("conv1.weight", 1), fits[1], fits[2]},
			ignore: []string{"conv1.*"},
			want:   []string{"conv1.weight is [1] in the file"},
		},
		{
			name: "duplicate and bad length",
			got:  []NamedTensor{fits[0], fits[1], fits[2], fits[1], {Name: "x", Shape: tensor.Shape{2}, Data: []float32{1}}},
			want: []string{"1 duplicated: bn1.weight", "x (1 values for shape [2])", "1 unexpected in the file: x"},
		},
		{
			name: "everything at once",
			got:  []NamedTensor{namedZeros("bn1.weight", 3), namedZeros("zzz", 1)},
			want: []string{"4 parameter(s)", "2 missing", "1 unexpected", "1 with the wrong shape"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckParams("enc.pth", tc.got, want, tc.ignore...)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pm *ParamMismatchError
			if !errors.As(err, &pm) {
				t.Fatalf("err = %v, want a *ParamMismatchError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if tc.check != nil {
				tc.check(t, pm)
			}
		})
	}
}

func TestCheckParamsListsTenAndCounts(t *testing.T) {
	want := map[string]tensor.Shape{}
	for i := range 25 {
		want[fmt.Sprintf("layer%02d.weight", i)] = tensor.Shape{1}
	}
	err := CheckParams("big.pth", nil, want)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "25 missing from the file: layer00.weight, layer01.weight,") ||
		!strings.Contains(msg, "layer09.weight and 15 more") || strings.Contains(msg, "layer10.weight") {
		t.Errorf("error %q: want the first ten sorted names and a count of the rest", msg)
	}
}

func TestCheckParamsBadPattern(t *testing.T) {
	if err := CheckParams("x.pth", nil, nil, "fc.["); err == nil || !strings.Contains(err.Error(), "bad ignore pattern") {
		t.Errorf("err = %v", err)
	}
}

// TestMonodepth2IgnoredParams: the patterns cover the unused entries of a released
// encoder.pth and nothing the networks use.
func TestMonodepth2IgnoredParams(t *testing.T) {
	for name, ignored := range map[string]bool{
		"encoder.fc.weight":                        true,
		"encoder.fc.bias":                          true,
		"encoder.bn1.num_batches_tracked":          true,
		"encoder.layer1.0.bn2.num_batches_tracked": true,
		"encoder.conv1.weight":                     false,
		"encoder.bn1.running_mean":                 false,
		"decoder.0.conv.conv.weight":               false,
		"net.3.bias":                               false,
	} {
		if got := matchAny(Monodepth2IgnoredParams, name); got != ignored {
			t.Errorf("%s ignored = %v, want %v", name, got, ignored)
		}
	}
}

// writeMonodepth2Files writes hand-built checkpoints named files into dir; encoder.pth
// gets the given extras.
func writeMonodepth2Files(t *testing.T, dir string, ints map[string]int, bools map[string]bool, files ...string) {
	t.Helper()
	for _, f := range files {
		ts := []pthTestTensor{{name: strings.TrimSuffix(f, ".pth") + ".w", class: "FloatStorage", key: "0", storageNumel: 2, size: []int{2}, stride: []int{1}}}
		var pkl []byte
		if f == "encoder.pth" {
			pkl = pthTestPickle(false, ts, ints, bools)
		} else {
			pkl = pthTestPickle(false, ts, nil, nil)
		}
		b := pthTestZip(t, strings.TrimSuffix(f, ".pth"), pkl, map[string][]byte{"0": f32Bytes(1, 2)})
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadMonodepth2Dir(t *testing.T) {
	res := map[string]int{"height": 192, "width": 640}
	all := Monodepth2Files[:]
	for _, tc := range []struct {
		name   string
		ints   map[string]int
		bools  map[string]bool
		files  []string
		want   string // error substring; "" for success
		stereo bool
		pose   bool
	}{
		{name: "mono", ints: res, bools: map[string]bool{"use_stereo": false}, files: all, pose: true},
		{name: "no use_stereo entry", ints: res, files: all, pose: true},
		{name: "stereo with pose", ints: res, bools: map[string]bool{"use_stereo": true}, files: all, stereo: true, pose: true},
		{name: "stereo without pose", ints: res, bools: map[string]bool{"use_stereo": true}, files: all[:2], stereo: true},
		{name: "empty folder", files: nil, want: "no encoder.pth, depth.pth, pose_encoder.pth, pose.pth: a Monodepth2 model folder holds encoder.pth, depth.pth, pose_encoder.pth and pose.pth"},
		{name: "mono without pose", ints: res, bools: map[string]bool{"use_stereo": false}, files: all[:2], want: "no pose_encoder.pth, pose.pth"},
		{name: "stereo without one pose file", ints: res, bools: map[string]bool{"use_stereo": true}, files: all[:3], want: "no pose.pth"},
		{name: "no depth", ints: res, files: []string{"encoder.pth", "pose_encoder.pth", "pose.pth"}, want: "no depth.pth"},
		{name: "no height", ints: map[string]int{"width": 640}, files: all, want: `encoder.pth: no "height" entry`},
		{name: "zero width", ints: map[string]int{"height": 192, "width": 0}, files: all, want: "width is 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeMonodepth2Files(t, dir, tc.ints, tc.bools, tc.files...)
			ck, err := ReadMonodepth2Dir(dir)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want it to say %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ck.Height != 192 || ck.Width != 640 || ck.UseStereo != tc.stereo {
				t.Errorf("height %d width %d use_stereo %v", ck.Height, ck.Width, ck.UseStereo)
			}
			if len(ck.Encoder) != 1 || ck.Encoder[0].Name != "encoder.w" || len(ck.Depth) != 1 || ck.Depth[0].Name != "depth.w" {
				t.Errorf("encoder %+v depth %+v", ck.Encoder, ck.Depth)
			}
			if hasPose := ck.Pose != nil && ck.PoseEncoder != nil; hasPose != tc.pose {
				t.Errorf("pose present = %v, want %v", hasPose, tc.pose)
			}
		})
	}

	if _, err := ReadMonodepth2Dir(filepath.Join(t.TempDir(), "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing folder: err = %v, want fs.ErrNotExist", err)
	}

	// A broken file is reported with its path.
	dir := t.TempDir()
	writeMonodepth2Files(t, dir, res, nil, all...)
	os.WriteFile(filepath.Join(dir, "depth.pth"), []byte("garbage"), 0o644)
	if _, err := ReadMonodepth2Dir(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "depth.pth")+": not a PyTorch checkpoint") {
		t.Errorf("broken depth.pth: err = %v", err)
	}
}
