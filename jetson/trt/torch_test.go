package trt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/nn/onnx"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer/paritytest"
)

// TestTorchExportAgrees checks our exporter against PyTorch's: the reference
// (monodepth2_ref.py parity, computing in float64) writes Monodepth2 checkpoints;
// we import them and export with nn/onnx, testdata/torch_export.py exports the
// reference's own modules with torch.onnx.export; ONNX Runtime (CPU) runs both files
// on the same images, and also ours on the reference's inputs. Every output must
// agree within a relative error of 1e-4 (max|a − b| / max|b|): torch's file with
// ours, and ours with the reference's own float64 outputs.
func TestTorchExportAgrees(t *testing.T) {
	needLibrary(t)
	python := "/usr/bin/python3"
	if p := os.Getenv("EDGEDEPTH_PYTHON"); p != "" {
		python = p
	}
	ref, err := paritytest.Reference()
	if err != nil {
		t.Fatal(err)
	}
	const h, w = 64, 192
	ck, ours, theirs := t.TempDir(), t.TempDir(), t.TempDir()
	py := func(args ...string) {
		t.Helper()
		out, err := exec.Command(python, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s\n(this test needs Debian's python3-torch and python3-torchvision: make test-deps installs them; EDGEDEPTH_PYTHON names another interpreter)",
				python, strings.Join(args, " "), err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Logf("%s", lines[len(lines)-1])
	}
	py(ref, "parity", "--float64", "--batch", "1", "--height", strconv.Itoa(h), "--width", strconv.Itoa(w), "--seed", "5", "--out", ck)
	py(filepath.Join("testdata", "torch_export.py"), "--ref", ref, "--ckpt", ck, "--out", theirs, "--height", strconv.Itoa(h), "--width", strconv.Itoa(w))

	b := cpu.New(0)
	m, err := monodepth2.New(b)
	if err != nil {
		t.Fatal(err)
	}
	checkpoint, err := nn.ReadMonodepth2Dir(ck)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Import(b, checkpoint); err != nil {
		t.Fatal(err)
	}
	if _, err := onnx.WriteDir(ours, b, m, onnx.Options{}, "monodepth2_ref.py parity --seed 5"); err != nil {
		t.Fatal(err)
	}
	eo, et := open(t, ours, 0), open(t, theirs, 0)

	type result struct{ disp, depth, aa, tr []float32 }
	infer := func(e *Engine, target, prev []float32, n, h, w int) result {
		r := result{make([]float32, n*h*w), make([]float32, n*h*w), make([]float32, 3*n), make([]float32, 3*n)}
		if err := e.Depth(target, n, h, w, r.disp, r.depth); err != nil {
			t.Fatal(err)
		}
		if err := e.Pose(stackPairs(prev, target, n, h, w), n, h, w, r.aa, r.tr); err != nil {
			t.Fatal(err)
		}
		return r
	}
	compare := func(what string, got, want result) {
		t.Helper()
		for _, o := range []struct {
			name      string
			got, want []float32
		}{{"disparity", got.disp, want.disp}, {"depth", got.depth, want.depth}, {"axis_angle", got.aa, want.aa}, {"translation", got.tr, want.tr}} {
			e := relErr(o.got, o.want)
			t.Logf("%s %-11s relative error %.2e", what, o.name, e)
			if !(e <= tolerance) {
				t.Errorf("%s %s: relative error %.3g > %g", what, o.name, e, tolerance)
			}
		}
	}

	// The reference's own inputs and float64 outputs.
	man := readParityManifest(t, ck)
	target, prev := man.load(t, "inputs", "color_0"), man.load(t, "inputs", "color_m1")
	refOut := result{man.load(t, "outputs", "disp_0"), man.load(t, "outputs", "depth_0"),
		man.load(t, "outputs", "axisangle_m1"), man.load(t, "outputs", "translation_m1")}
	compare(fmt.Sprintf("%dx%d ours vs reference (float64)", h, w), infer(eo, target, prev, 1, h, w), refOut)
	compare(fmt.Sprintf("%dx%d torch.onnx vs reference (float64)", h, w), infer(et, target, prev, 1, h, w), refOut)

	// Both files on other images, batch and size (both exports have dynamic axes).
	for _, s := range [][3]int{{1, h, w}, {2, 96, 320}} {
		n, h, w := s[0], s[1], s[2]
		target, prev := randomImages(n, h, w, 31), randomImages(n, h, w, 32)
		compare(fmt.Sprintf("b%d %dx%d ours vs torch.onnx", n, h, w), infer(eo, target, prev, n, h, w), infer(et, target, prev, n, h, w))
	}
}

// parityManifest is the part of the reference's manifest.json this test reads.
type parityManifest struct {
	dir     string
	Inputs  map[string]string `json:"inputs"`
	Outputs map[string]string `json:"outputs"`
}

func readParityManifest(t *testing.T, dir string) parityManifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := parityManifest{dir: dir}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// load reads one of the reference's .npy files (little-endian float32, C order).
func (m parityManifest) load(t *testing.T, group, name string) []float32 {
	t.Helper()
	file := map[string]map[string]string{"inputs": m.Inputs, "outputs": m.Outputs}[group][name]
	if file == "" {
		t.Fatalf("the reference's manifest has no %s %q", group, name)
	}
	raw, err := os.ReadFile(filepath.Join(m.dir, file))
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 10 || !bytes.HasPrefix(raw, []byte("\x93NUMPY")) {
		t.Fatalf("%s: not a .npy file", file)
	}
	hlen, off := int(binary.LittleEndian.Uint16(raw[8:])), 10
	if raw[6] >= 2 {
		hlen, off = int(binary.LittleEndian.Uint32(raw[8:])), 12
	}
	header := string(raw[off : off+hlen])
	if !strings.Contains(header, "'<f4'") || strings.Contains(header, "'fortran_order': True") || !regexp.MustCompile(`'shape': \(`).MatchString(header) {
		t.Fatalf("%s: want little-endian float32 in C order, header %s", file, header)
	}
	data := raw[off+hlen:]
	v := make([]float32, len(data)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return v
}
