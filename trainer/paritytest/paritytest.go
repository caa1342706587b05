// Package paritytest checks a tensor backend against the independent PyTorch
// reference of the Monodepth2 networks and losses (../shared/reference/monodepth2_ref.py
// beside the repository, whose docstring is the contract; trainer/testdata keeps an
// identical copy): the reference writes Monodepth2 checkpoints, inputs, every
// intermediate output and every parameter gradient; Check imports the checkpoints
// through the importer, runs the same forward pass and loss on the backend, and
// compares every tensor by ‖ours − ref‖ / ‖ref‖. The CPU backend's tests and the CUDA
// backend's run it.
package paritytest

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
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/trainer"
)

// The reference computes in float64 here (--float64; its files are float32), so the
// comparison measures our error, not the sum of two float32 errors: the float32
// reference itself is 2e-3 away from its own float64 result on some gradients of the
// default stereo case, while ours is within 1.1e-4.
//
// With batch norm in training mode at these sizes (batch 2, layer 4 at 2x6 pixels)
// the gradients are ill-conditioned: a relative change of 1e-6 in the input images
// moves our own pose-encoder gradients by up to 1e-2 (ReLU and minimum decisions flip,
// and batch statistics spread each flip over a whole channel), and the float32
// reference differs from its float64 run by up to 1.7e-2 (seed 2). No float32
// implementation can be held to 1e-3 there; trainGradTol is what both meet.
const (
	outputTol    = 1e-4 // outputs
	gradTol      = 1e-3 // gradients, frozen batch norm
	trainGradTol = 3e-2 // gradients, batch norm in training mode (see above)
	// float32RefFactor widens the tolerances for a float32 reference given in
	// EDGEDEPTH_PARITY_DIR: its own rounding error then counts too.
	float32RefFactor = 5
)

// Reference finds the reference script: $EDGEDEPTH_REFERENCE, the shared copy beside
// the repository (../shared/reference), or the copy in trainer/testdata.
func Reference() (string, error) {
	if p := os.Getenv("EDGEDEPTH_REFERENCE"); p != "" {
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	shared := filepath.Join(root, "..", "shared", "reference", "monodepth2_ref.py")
	if _, err := os.Stat(shared); err == nil {
		return shared, nil
	}
	return filepath.Join(root, "trainer", "testdata", "monodepth2_ref.py"), nil
}

// repoRoot is the directory holding go.mod, above the working directory.
func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", fmt.Errorf("paritytest: no go.mod above the working directory")
		}
		d = up
	}
}

// Dir returns a directory of reference results: $EDGEDEPTH_PARITY_DIR when set (then
// args are ignored), else one the reference writes now with args (in float64).
func Dir(t *testing.T, args ...string) string {
	t.Helper()
	if d := os.Getenv("EDGEDEPTH_PARITY_DIR"); d != "" {
		return d
	}
	ref, err := Reference()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	python := "/usr/bin/python3"
	if p := os.Getenv("EDGEDEPTH_PYTHON"); p != "" {
		python = p
	}
	cmd := exec.Command(python, append([]string{ref, "parity", "--float64", "--out", dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("reference %v: %v\n%s\n(the parity test needs Debian's python3-torch and python3-torchvision: make test-deps installs them; EDGEDEPTH_PYTHON names another interpreter)", args, err, out)
	}
	t.Logf("reference %v: %s", args, strings.TrimSpace(string(out)))
	return dir
}

// Case is one configuration of the reference.
type Case struct {
	Name string
	Args []string
}

// Cases are what Run checks: mono and stereo, frozen and training batch norm, several
// seeds, batches and sizes.
var Cases = []Case{
	{"mono", nil},
	{"stereo", []string{"--stereo"}},
	{"stereo-b1-64x96-seed3", []string{"--stereo", "--batch", "1", "--height", "64", "--width", "96", "--seed", "3"}},
	{"mono-b3-96x160-seed11", []string{"--batch", "3", "--height", "96", "--width", "160", "--seed", "11"}},
	{"stereo-bn-train", []string{"--stereo", "--bn", "train"}},
	{"mono-bn-train-b3-96x160-seed7", []string{"--bn", "train", "--batch", "3", "--height", "96", "--width", "160", "--seed", "7"}},
}

// Run checks backend b on every case, or on $EDGEDEPTH_PARITY_DIR alone when set.
func Run(t *testing.T, b tensor.Backend) {
	cases := Cases
	if os.Getenv("EDGEDEPTH_PARITY_DIR") != "" {
		cases = []Case{{Name: "EDGEDEPTH_PARITY_DIR"}}
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { Check(t, b, Dir(t, c.Args...)) })
	}
}

type manifest struct {
	BN       string            `json:"bn"`
	Batch    int               `json:"batch"`
	Height   int               `json:"height"`
	Width    int               `json:"width"`
	Stereo   bool              `json:"stereo"`
	Baseline float64           `json:"baseline"`
	Dtype    string            `json:"dtype"`
	Inputs   map[string]string `json:"inputs"`
	Outputs  map[string]string `json:"outputs"`
	Grads    map[string]string `json:"grads"`
}

// Check compares backend b with the reference results in dir.
func Check(t *testing.T, b tensor.Backend, dir string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var man manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	m, err := monodepth2.New(b)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := nn.ReadMonodepth2Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Height != man.Height || ck.Width != man.Width || ck.UseStereo != man.Stereo {
		t.Errorf("encoder.pth says %dx%d stereo=%v, manifest %dx%d stereo=%v", ck.Height, ck.Width, ck.UseStereo, man.Height, man.Width, man.Stereo)
	}
	if err := m.Import(b, ck); err != nil {
		t.Fatal(err)
	}
	m.SetBatchNormTraining(man.BN == "train")
	outTol, gTol := outputTol, gradTol
	if man.BN == "train" {
		gTol = trainGradTol
	}
	if man.Dtype != "torch.float64" {
		outTol, gTol = outTol*float32RefFactor, gTol*float32RefFactor
	}
	t.Logf("reference in %s, batch norm %s: tolerances %.0e (outputs), %.0e (gradients)", man.Dtype, man.BN, outTol, gTol)

	load := func(group map[string]string, name string) *tensor.Tensor {
		file, ok := group[name]
		if !ok {
			t.Fatalf("manifest has no input %q", name)
		}
		shape, v, err := readNpy(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		x, err := b.FromHost(v, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	batch := &trainer.Batch{
		Target:        load(man.Inputs, "color_0"),
		Prev:          load(man.Inputs, "color_m1"),
		Next:          load(man.Inputs, "color_p1"),
		IdentityNoise: load(man.Inputs, "noise"),
		Baseline:      []float32{float32(man.Baseline)},
	}
	if man.Stereo {
		batch.Stereo = load(man.Inputs, "color_s")
	}
	if batch.K, err = b.ToHost(load(man.Inputs, "K")); err != nil {
		t.Fatal(err)
	}
	tape := nn.NewTape(b)
	tape.KeepIntermediates = true // every output is compared after Backward
	out, err := trainer.Loss(tape, m, batch)
	if err != nil {
		t.Fatal(err)
	}
	if err := tape.Backward(out.Loss); err != nil {
		t.Fatal(err)
	}

	ours := map[string]*tensor.Tensor{"loss": out.Loss.Value, "depth_0": out.Depth0.Value}
	for s := range out.Disp {
		ours[fmt.Sprintf("disp_%d", s)] = out.Disp[s].Value
		ours[fmt.Sprintf("photo_%d", s)] = out.Photo[s].Value
		ours[fmt.Sprintf("smooth_%d", s)] = out.Smooth[s].Value
	}
	for name, v := range out.AxisAngle {
		ours["axisangle_"+name] = v.Value
		ours["translation_"+name] = out.Translation[name].Value
	}
	for name, v := range out.T {
		if name != "s" {
			ours["T_"+name] = v.Value
		}
	}
	for name, v := range out.Warped {
		ours["warped_"+name] = v.Value
	}
	var rows []string
	compare := func(kind, name, file string, got *tensor.Tensor, tol float64) {
		shape, want, err := readNpy(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got == nil {
			t.Errorf("%s %s: we computed nothing", kind, name)
			return
		}
		if got.Len() != len(want) {
			t.Errorf("%s %s: %v values, reference %v", kind, name, got.Shape, shape)
			return
		}
		g, err := b.ToHost(got)
		if err != nil {
			t.Fatal(err)
		}
		e := relErr(g, want)
		rows = append(rows, fmt.Sprintf("%-8s %-50s %.2e", kind, name, e))
		if !(e <= tol) {
			t.Errorf("%s %s: relative error %.3g > %.0e", kind, name, e, tol)
		}
	}
	for name, file := range man.Outputs {
		v, ok := ours[name]
		if !ok {
			t.Errorf("output %s of the reference has no counterpart here", name)
			continue
		}
		compare("output", name, file, v, outTol)
		delete(ours, name)
	}
	for name := range ours {
		t.Errorf("output %s is not in the reference's manifest", name)
	}
	seen := map[string]bool{}
	for name, file := range man.Grads {
		p := m.Params.Get(name)
		if p == nil {
			t.Errorf("gradient of %s: no such parameter here", name)
			continue
		}
		seen[name] = true
		compare("grad", name, file, p.Grad, gTol)
	}
	for _, p := range m.Params.Trainable() {
		if !seen[p.Name] {
			t.Errorf("parameter %s has no gradient in the reference", p.Name)
		}
	}
	sort.Strings(rows)
	worst := map[string]float64{}
	for _, r := range rows {
		var kind, name string
		var e float64
		fmt.Sscanf(r, "%s %s %g", &kind, &name, &e)
		worst[kind] = math.Max(worst[kind], e)
	}
	t.Logf("%d outputs (worst relative error %.2e), %d gradients (worst %.2e)", len(man.Outputs), worst["output"], len(man.Grads), worst["grad"])
	if testing.Verbose() {
		t.Logf("\n%s", strings.Join(rows, "\n"))
	}
}

// relErr is ‖got − want‖ / ‖want‖ in float64.
func relErr(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// readNpy reads a little-endian float32 C-order .npy file (what the reference
// writes) and returns its shape and values.
func readNpy(path string) ([]int, []float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if len(b) < 10 || !bytes.Equal(b[:6], []byte("\x93NUMPY")) {
		return nil, nil, fmt.Errorf("%s: not a .npy file", path)
	}
	var hlen, off int
	switch b[6] {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(b[8:])), 10
	case 2, 3:
		hlen, off = int(binary.LittleEndian.Uint32(b[8:])), 12
	default:
		return nil, nil, fmt.Errorf("%s: .npy version %d", path, b[6])
	}
	if off+hlen > len(b) {
		return nil, nil, fmt.Errorf("%s: truncated header", path)
	}
	h := string(b[off : off+hlen])
	if !strings.Contains(h, "'descr': '<f4'") || strings.Contains(h, "'fortran_order': True") {
		return nil, nil, fmt.Errorf("%s: want little-endian float32 in C order, header %s", path, h)
	}
	m := regexp.MustCompile(`'shape': \(([^)]*)\)`).FindStringSubmatch(h)
	if m == nil {
		return nil, nil, fmt.Errorf("%s: no shape in header %s", path, h)
	}
	var shape []int
	for _, f := range strings.Split(m[1], ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: shape %q", path, m[1])
		}
		shape = append(shape, d)
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := b[off+hlen:]
	if len(data) != 4*n {
		return nil, nil, fmt.Errorf("%s: %d data bytes for shape %v", path, len(data), shape)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return shape, v, nil
}
