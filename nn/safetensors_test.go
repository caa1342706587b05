package nn

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
)

// stFile lays out a safetensors file by hand: the header exactly as given, then data.
func stFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// stPadded pads a header with spaces as the reference implementation does, so that
// the data section starts at a multiple of 8.
func stPadded(h string) string {
	return h + strings.Repeat(" ", (8-(8+len(h))%8)%8)
}

func stWrite(t testing.TB, ts []NamedTensor, meta map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, ts, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func stRead(b []byte) ([]NamedTensor, map[string]string, error) {
	return ReadSafetensors(bytes.NewReader(b))
}

// TestWriteSafetensorsLayout compares the writer's output with a file laid out by hand
// from the format's description: compact JSON with the metadata first, tensors sorted
// by name with dtype, shape, data_offsets, space padding, then the little-endian data.
func TestWriteSafetensorsLayout(t *testing.T) {
	ts := []NamedTensor{
		{Name: "b", Shape: tensor.Shape{2}, Data: []float32{1, 2}},
		{Name: "a", Shape: tensor.Shape{}, Data: []float32{3}},
	}
	header := stPadded(`{"__metadata__":{"format":"pt","step":"7"},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`)
	want := stFile(header, f32Bytes(3, 1, 2))
	got := stWrite(t, ts, map[string]string{"step": "7", "format": "pt"})
	if !bytes.Equal(got, want) {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	if (8+len(header))%8 != 0 {
		t.Fatal("test header not aligned")
	}
	// No metadata: no __metadata__ key at all.
	got = stWrite(t, ts[1:], nil)
	if want := stFile(stPadded(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`), f32Bytes(3)); !bytes.Equal(got, want) {
		t.Fatalf("without metadata: got %q, want %q", got, want)
	}
}

// TestReadSafetensorsHandBuilt reads valid files that the writer would not produce:
// keys in another order, data not in name order, no padding, whitespace in the JSON.
func TestReadSafetensorsHandBuilt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		file   []byte
		want   []NamedTensor
		meta   map[string]string
		noMeta bool
	}{
		{
			name: "unordered",
			file: stFile("{\n  \"b\": {\"shape\": [2, 1], \"dtype\": \"F32\", \"data_offsets\": [0, 8]},\n  \"a\": {\"data_offsets\": [8, 12], \"dtype\": \"F32\", \"shape\": [1]}\n}",
				f32Bytes(1, 2, 3)),
			want: []NamedTensor{
				{Name: "a", Shape: tensor.Shape{1}, Data: []float32{3}},
				{Name: "b", Shape: tensor.Shape{2, 1}, Data: []float32{1, 2}},
			},
			noMeta: true,
		},
		{
			name:   "empty",
			file:   stFile("{}", nil),
			want:   []NamedTensor{},
			noMeta: true,
		},
		{
			name: "zero-size tensors and metadata",
			file: stFile(stPadded(`{"z":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},"__metadata__":{"k":"v","ü":"\u00e9"},"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`),
				f32Bytes(-1.5)),
			want: []NamedTensor{
				{Name: "e", Shape: tensor.Shape{0}, Data: []float32{}},
				{Name: "s", Shape: tensor.Shape{}, Data: []float32{-1.5}},
				{Name: "z", Shape: tensor.Shape{0, 3}, Data: []float32{}},
			},
			meta: map[string]string{"k": "v", "ü": "é"},
		},
		{
			name:   "null metadata",
			file:   stFile(`{"__metadata__":null}`, nil),
			want:   []NamedTensor{},
			noMeta: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, meta, err := stRead(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ts, tc.want) {
				t.Errorf("tensors\n got %+v\nwant %+v", ts, tc.want)
			}
			if tc.noMeta && meta != nil || !tc.noMeta && !reflect.DeepEqual(meta, tc.meta) {
				t.Errorf("meta %v, want %v", meta, tc.meta)
			}
		})
	}
}

func TestReadSafetensorsRejects(t *testing.T) {
	one := `"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "no 8-byte header length"},
		{"header of 1 byte", stFile("{", nil), "header length 1 outside"},
		{"huge header", binary.LittleEndian.AppendUint64(nil, 1<<40), "outside [2, 100000000]"},
		{"header past the end", append(binary.LittleEndian.AppendUint64(nil, 100), "{}"...), "header of 100 bytes announced, file ends after 2"},
		{"not an object", stFile(`["a"]`, nil), "want a JSON object"},
		{"bad JSON", stFile(`{"a":{"dtype":"F32",}}`, nil), "invalid character"},
		{"duplicate key", stFile(`{`+one+`,`+one+`}`, f32Bytes(1)), `key "a" appears twice`},
		{"unknown field", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, f32Bytes(1)), `unknown field "x"`},
		{"other dtype", stFile(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, f32Bytes(1)), `tensor "a": dtype F16: only F32 is supported`},
		{"no dtype", stFile(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, f32Bytes(1)), "no dtype"},
		{"no shape", stFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, f32Bytes(1)), "no shape"},
		{"three offsets", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, f32Bytes(1)), "want [begin, end]"},
		{"reversed offsets", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, f32Bytes(1)), "end before they begin"},
		{"negative offset", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, f32Bytes(1)), "cannot unmarshal"},
		{"negative dimension", stFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, f32Bytes(1)), "negative dimension"},
		{"huge shape", stFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, f32Bytes(1)), "too large"},
		{"size does not match shape", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, f32Bytes(1)), "hold 4 bytes, shape [2] of F32 needs 8"},
		{"hole at the start", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32Bytes(1, 2)), "starts at byte 4, leaving a hole after byte 0"},
		{"hole between", stFile(`{`+one+`,"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, f32Bytes(1, 2, 3)), "tensor b starts at byte 8"},
		{"overlap", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, f32Bytes(1, 2, 3)), "overlaps"},
		{"same bytes twice", stFile(`{`+one+`,"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32Bytes(1)), "overlaps"},
		{"truncated data", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32Bytes(1)), "places 8 bytes of data, the file holds 4: truncated"},
		{"trailing data", stFile(`{`+one+`}`, f32Bytes(1, 2)), "bytes after the 4 bytes of data"},
		{"garbage after the header object", stFile(`{`+one+`}xx`, f32Bytes(1)), "not padding"},
		{"empty name", stFile(`{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32Bytes(1)), "a tensor with an empty name"},
		{"metadata not strings", stFile(`{"__metadata__":{"step":7}}`, nil), "value of \"step\" is 7, want a string"},
		{"metadata not an object", stFile(`{"__metadata__":"x"}`, nil), "want an object of strings"},
		{"metadata duplicate", stFile(`{"__metadata__":{"k":"a","k":"b"}}`, nil), `key "k" appears twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := stRead(tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestWriteSafetensorsRejects(t *testing.T) {
	ok := NamedTensor{Name: "a", Shape: tensor.Shape{1}, Data: []float32{1}}
	for _, tc := range []struct {
		name string
		ts   []NamedTensor
		want string
	}{
		{"duplicate", []NamedTensor{ok, ok}, `two tensors named "a"`},
		{"no name", []NamedTensor{{Shape: tensor.Shape{}, Data: []float32{1}}}, "without a name"},
		{"reserved", []NamedTensor{{Name: "__metadata__", Shape: tensor.Shape{}, Data: []float32{1}}}, "reserved"},
		{"length", []NamedTensor{{Name: "b", Shape: tensor.Shape{2, 2}, Data: []float32{1}}}, "tensor b has 1 values for shape [2 2] (4)"},
		{"negative", []NamedTensor{{Name: "b", Shape: tensor.Shape{-1}, Data: nil}}, "has shape [-1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteSafetensors(&buf, tc.ts, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes written before the error", buf.Len())
			}
		})
	}
}

func stRandomTensors(r *rand.Rand) []NamedTensor {
	shapes := []tensor.Shape{{64, 3, 7, 7}, {64}, {}, {0, 5}, {3, 1, 1}, {1000}}
	var ts []NamedTensor
	for i, s := range shapes {
		d := make([]float32, s.Len())
		for j := range d {
			d[j] = float32(r.NormFloat64())
		}
		ts = append(ts, NamedTensor{Name: []string{"encoder.conv1.weight", "encoder.bn1.bias", "scalar", "empty", "decoder.x", "big"}[i], Shape: s, Data: d})
	}
	// Values whose bits must survive exactly.
	ts[5].Data[0] = float32(math.NaN())
	ts[5].Data[1] = float32(math.Inf(-1))
	ts[5].Data[2] = float32(math.Copysign(0, -1))
	ts[5].Data[3] = math.SmallestNonzeroFloat32
	ts[5].Data[4] = math.MaxFloat32
	return ts
}

// stEqualBits compares two tensor lists by name, shape and the bits of every value.
func stEqualBits(t *testing.T, got, want []NamedTensor) {
	t.Helper()
	want = append([]NamedTensor(nil), want...)
	for i := range want {
		for j := i + 1; j < len(want); j++ {
			if want[j].Name < want[i].Name {
				want[i], want[j] = want[j], want[i]
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || !g.Shape.Equal(w.Shape) || len(g.Data) != len(w.Data) {
			t.Fatalf("tensor %d: %s %v (%d values), want %s %v (%d)", i, g.Name, g.Shape, len(g.Data), w.Name, w.Shape, len(w.Data))
		}
		for j := range w.Data {
			if math.Float32bits(g.Data[j]) != math.Float32bits(w.Data[j]) {
				t.Fatalf("%s[%d] = %g, want %g", w.Name, j, g.Data[j], w.Data[j])
			}
		}
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	ts := stRandomTensors(rand.New(rand.NewPCG(1, 2)))
	meta := map[string]string{"version": "3", "base": "monodepth2 mono_640x192", "json": `{"a": [1, 2]}`}
	got, gotMeta, err := stRead(stWrite(t, ts, meta))
	if err != nil {
		t.Fatal(err)
	}
	stEqualBits(t, got, ts)
	if !reflect.DeepEqual(gotMeta, meta) {
		t.Errorf("meta %v, want %v", gotMeta, meta)
	}
}

func TestSaveSafetensorsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	r := rand.New(rand.NewPCG(3, 4))
	first := stRandomTensors(r)
	if err := SaveSafetensorsFile(path, first, map[string]string{"v": "1"}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	second := stRandomTensors(r)
	if err := SaveSafetensorsFile(path, second, map[string]string{"v": "2"}); err != nil {
		t.Fatal(err)
	}
	got, meta, err := LoadSafetensorsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	stEqualBits(t, got, second)
	if meta["v"] != "2" {
		t.Errorf("meta %v after overwriting", meta)
	}

	// A save that fails leaves the old file as it was and no temporary file behind.
	before, _ := os.ReadFile(path)
	bad := append(append([]NamedTensor{}, second...), second[0])
	if err := SaveSafetensorsFile(path, bad, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("duplicate names: err = %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("a failed save changed the file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only model.safetensors", names)
	}

	if err := SaveSafetensorsFile(filepath.Join(dir, "absent", "m.safetensors"), first, nil); err == nil {
		t.Error("save into a missing directory: no error")
	}
	if _, _, err := LoadSafetensorsFile(filepath.Join(dir, "absent.safetensors")); err == nil {
		t.Error("load of a missing file: no error")
	}
	os.WriteFile(filepath.Join(dir, "junk.safetensors"), []byte("junk but long enough"), 0o644)
	if _, _, err := LoadSafetensorsFile(filepath.Join(dir, "junk.safetensors")); err == nil || !strings.Contains(err.Error(), "junk.safetensors: read safetensors") {
		t.Errorf("load of junk: err = %v", err)
	}
}

// TestSafetensorsPython checks interoperability with the reference implementation,
// where its Python module is installed: Python reads what we write and we read what
// Python writes.
func TestSafetensorsPython(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import safetensors.numpy, numpy").CombinedOutput(); err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Skipf("no reference safetensors implementation: %s cannot import safetensors.numpy (%v: %s); TestWriteSafetensorsLayout checks the byte layout instead",
			python, err, lines[len(lines)-1])
	}
	dir := t.TempDir()
	ours := filepath.Join(dir, "ours.safetensors")
	theirs := filepath.Join(dir, "theirs.safetensors")
	ts := stRandomTensors(rand.New(rand.NewPCG(5, 6)))
	if err := SaveSafetensorsFile(ours, ts, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	script := `
import json, sys, numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
d = load_file(sys.argv[1])
with safe_open(sys.argv[1], "np") as f:
    meta = f.metadata()
save_file({k: v for k, v in d.items()}, sys.argv[2], metadata={"from": "python"})
print(json.dumps({"meta": meta, "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype),
      "bits": v.astype(np.float32).view(np.uint32).ravel().tolist()} for k, v in d.items()}}))
`
	out, err := exec.Command(python, "-c", script, ours, theirs).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var res struct {
		Meta    map[string]string `json:"meta"`
		Tensors map[string]struct {
			Shape []int    `json:"shape"`
			DType string   `json:"dtype"`
			Bits  []uint32 `json:"bits"`
		} `json:"tensors"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if res.Meta["k"] != "v" || len(res.Tensors) != len(ts) {
		t.Fatalf("python read meta %v and %d tensors", res.Meta, len(res.Tensors))
	}
	for _, w := range ts {
		g := res.Tensors[w.Name]
		if g.DType != "float32" || !tensor.Shape(g.Shape).Equal(w.Shape) || len(g.Bits) != len(w.Data) {
			t.Fatalf("python read %s as %s %v", w.Name, g.DType, g.Shape)
		}
		for j, v := range w.Data {
			if g.Bits[j] != math.Float32bits(v) {
				t.Fatalf("python read %s[%d] as bits %#x, want %#x", w.Name, j, g.Bits[j], math.Float32bits(v))
			}
		}
	}
	back, meta, err := LoadSafetensorsFile(theirs)
	if err != nil {
		t.Fatal(err)
	}
	stEqualBits(t, back, ts)
	if meta["from"] != "python" {
		t.Errorf("meta of python's file: %v", meta)
	}
}

func FuzzReadSafetensors(f *testing.F) {
	f.Add(stWrite(f, stRandomTensors(rand.New(rand.NewPCG(7, 8)))[1:3], map[string]string{"a": "b"}))
	f.Add(stWrite(f, []NamedTensor{{Name: "x", Shape: tensor.Shape{2}, Data: []float32{1, 2}}}, nil))
	f.Add(stFile("{}", nil))
	f.Add(stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32Bytes(1, 2, 3)))
	f.Add(stFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"__metadata__":{"k":"v"}}  `, nil))
	f.Add([]byte("\x08\x00\x00\x00\x00\x00\x00\x00{}      "))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, meta, err := stRead(data)
		if err != nil {
			return
		}
		for i, nt := range ts {
			if nt.Shape.Len() != len(nt.Data) {
				t.Fatalf("%s: %d values for shape %v", nt.Name, len(nt.Data), nt.Shape)
			}
			if i > 0 && ts[i-1].Name >= nt.Name {
				t.Fatalf("names not sorted and unique: %q then %q", ts[i-1].Name, nt.Name)
			}
		}
		// Whatever we accept, we write back and read again unchanged.
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, ts, meta); err != nil {
			t.Fatalf("write back: %v", err)
		}
		ts2, meta2, err := stRead(buf.Bytes())
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		stEqualBits(t, ts2, ts)
		if len(meta) != len(meta2) || (len(meta) > 0 && !reflect.DeepEqual(meta, meta2)) {
			t.Fatalf("meta %v read back as %v", meta, meta2)
		}
	})
}
