package trainer_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

// Parity with the independent PyTorch reference (../shared/reference/monodepth2_ref.py,
// whose docstring is the contract): the reference writes Monodepth2 checkpoints,
// inputs, every intermediate output and every parameter gradient; we import the
// checkpoints, run the same forward pass and loss in float32, and compare everything
// by ‖ours − ref‖ / ‖ref‖ per tensor.
//
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

// reference finds the reference script: $EDGEDEPTH_REFERENCE, the shared copy beside
// the repository, or the copy kept in testdata (identical; TestReferenceCopy checks).
func reference(t *testing.T) string {
	if p := os.Getenv("EDGEDEPTH_REFERENCE"); p != "" {
		return p
	}
	if _, err := os.Stat(sharedReference); err == nil {
		return sharedReference
	}
	return filepath.Join("testdata", "monodepth2_ref.py")
}

const sharedReference = "../../shared/reference/monodepth2_ref.py"

// TestReferenceCopy keeps testdata's copy of the reference equal to the shared one.
func TestReferenceCopy(t *testing.T) {
	shared, err := os.ReadFile(sharedReference)
	if err != nil {
		t.Logf("no shared reference beside the repository (%v): the copy in testdata is used as it is", err)
		return
	}
	ours, err := os.ReadFile(filepath.Join("testdata", "monodepth2_ref.py"))
	if err != nil {
		t.Fatal(err)
	}
	if string(ours) != string(shared) {
		t.Fatalf("testdata/monodepth2_ref.py differs from %s: copy the shared one over", sharedReference)
	}
}

// parityDir returns a directory of reference results: $EDGEDEPTH_PARITY_DIR when set
// (then args are ignored), else one generated now by the reference with args.
func parityDir(t *testing.T, args ...string) string {
	if d := os.Getenv("EDGEDEPTH_PARITY_DIR"); d != "" {
		return d
	}
	dir := t.TempDir()
	cmd := exec.Command("/usr/bin/python3", append([]string{reference(t), "parity", "--float64", "--out", dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("reference %v: %v\n%s\n(the parity test needs Debian's python3-torch and python3-torchvision: make test-deps installs them)", args, err, out)
	}
	t.Logf("reference %v: %s", args, strings.TrimSpace(string(out)))
	return dir
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

func TestParity(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"mono", nil},
		{"stereo", []string{"--stereo"}},
		{"stereo-b1-64x96-seed3", []string{"--stereo", "--batch", "1", "--height", "64", "--width", "96", "--seed", "3"}},
		{"mono-b3-96x160-seed11", []string{"--batch", "3", "--height", "96", "--width", "160", "--seed", "11"}},
		{"stereo-bn-train", []string{"--stereo", "--bn", "train"}},
		{"mono-bn-train-b3-96x160-seed7", []string{"--bn", "train", "--batch", "3", "--height", "96", "--width", "160", "--seed", "7"}},
	}
	if os.Getenv("EDGEDEPTH_PARITY_DIR") != "" {
		cases = cases[:1]
		cases[0].name = "EDGEDEPTH_PARITY_DIR"
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkParity(t, parityDir(t, c.args...))
		})
	}
}

func checkParity(t *testing.T, dir string) {
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var man manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	b := cpu.New(0)
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
