package cpu

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/tensor"
)

// TestTorchGridSamplePhotometric checks GridSample and PhotometricMin, values and gradients, against
// PyTorch itself (float64, autograd) on one small random case: the conformance suite
// checks the ops against references written in Go from the contract; this checks that
// the contract and those references mean what PyTorch (and so Monodepth2) computes.
// It needs /usr/bin/python3 with torch and is skipped without them.
func TestTorchGridSamplePhotometric(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skipf("no %s: %v", python, err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	b := New(0)

	// Grid sampling: coordinates inside and outside the image but away from integers,
	// where the bilinear form (and so its gradient) switches cells, and from the border,
	// where PyTorch's clamp gradient switches off. PyTorch takes normalised coordinates;
	// the script converts, as monodepth2_ref.warp does.
	const n, c, hs, ws, h, w = 2, 3, 6, 9, 5, 7
	src := samplingTorchRand(r, n*c*hs*ws, 0, 1)
	coords := make([]float32, 0, n*2*h*w)
	for range n {
		for _, size := range []int{ws, hs} {
			for range h * w {
				coords = append(coords, float32(r.IntN(size+4)-2)+0.05+0.9*r.Float32())
			}
		}
	}
	dy := samplingTorchRand(r, n*c*h*w, -1, 1)

	// Photometric minimum: draw until every pixel's winner leads by 1e-4, so that
	// float32 and float64 agree on it; the errors of each candidate alone come from
	// PhotometricMin with one candidate.
	const k = 4
	var target []float32
	var cands [][]float32
	var offset []float32
	for try := 0; ; try++ {
		target = samplingTorchRand(r, n*c*h*w, 0, 1)
		cands = make([][]float32, k)
		for i := range cands {
			cands[i] = samplingTorchRand(r, n*c*h*w, 0, 1)
			if i%2 == 0 {
				for j := range cands[i] {
					cands[i][j] = min(max(target[j]+0.1*float32(r.NormFloat64()), 0), 1)
				}
			}
		}
		offset = samplingTorchRand(r, n*k*h*w, -0.05, 0.05)
		if samplingTorchMargin(t, b, target, cands, offset, n, c, h, w) > 1e-4 {
			break
		}
		if try == 50 {
			t.Fatal("no images with distinct winners in 50 draws")
		}
	}
	dMin := samplingTorchRand(r, n*h*w, -1, 1)

	in := map[string]any{
		"src": src, "src_shape": []int{n, c, hs, ws}, "coords": coords, "coords_shape": []int{n, 2, h, w},
		"dy": dy, "dy_shape": []int{n, c, h, w},
		"target": target, "img_shape": []int{n, c, h, w}, "cands": cands, "offset": offset,
		"offset_shape": []int{n, k, h, w}, "dmin": dMin, "dmin_shape": []int{n, 1, h, w},
	}
	raw := runTorchScript(t, python, samplingTorchScript, in)
	var out struct {
		Torch                 string
		GS, GSDsrc, GSDcoords []float64
		PMMin                 []float64
		PMArgmin              []int32
		PMGrads               [][]float64
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("torch %s", out.Torch)

	put := func(v []float32, shape ...int) *tensor.Tensor {
		x, err := b.FromHost(v, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	st, ct, dyt := put(src, n, c, hs, ws), put(coords, n, 2, h, w), put(dy, n, c, h, w)
	y, err := b.GridSample(st, ct)
	if err != nil {
		t.Fatal(err)
	}
	samplingTorchNear(t, "GridSample", f32(y), out.GS, 1e-5)
	ds, dc, err := b.GridSampleBackward(st, ct, dyt, true, true)
	if err != nil {
		t.Fatal(err)
	}
	samplingTorchNear(t, "GridSample dsrc", f32(ds), out.GSDsrc, 1e-5)
	samplingTorchNear(t, "GridSample dcoords", f32(dc), out.GSDcoords, 1e-5)

	tt := put(target, n, c, h, w)
	cts := make([]*tensor.Tensor, k)
	for i, x := range cands {
		cts[i] = put(x, n, c, h, w)
	}
	minE, argmin, err := b.PhotometricMin(tt, cts, put(offset, n, k, h, w))
	if err != nil {
		t.Fatal(err)
	}
	samplingTorchNear(t, "PhotometricMin", f32(minE), out.PMMin, 1e-5)
	for i, a := range i32(argmin) {
		if a != out.PMArgmin[i] {
			t.Errorf("PhotometricMin argmin[%d] = %d, torch %d", i, a, out.PMArgmin[i])
			break
		}
	}
	grads, err := b.PhotometricMinBackward(tt, cts, argmin, put(dMin, n, 1, h, w), []bool{true, true, true, true})
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range grads {
		samplingTorchNear(t, "PhotometricMin dcandidate", f32(g), out.PMGrads[i], 1e-5)
	}
}

// samplingTorchMargin is the smallest lead of a pixel's winner over the runner-up.
func samplingTorchMargin(t *testing.T, b *Backend, target []float32, cands [][]float32, offset []float32, n, c, h, w int) float64 {
	t.Helper()
	hw, k := h*w, len(cands)
	tt, err := b.FromHost(target, n, c, h, w)
	if err != nil {
		t.Fatal(err)
	}
	errs := make([][]float32, k)
	for i, x := range cands {
		xt, _ := b.FromHost(x, n, c, h, w)
		e, _, err := b.PhotometricMin(tt, []*tensor.Tensor{xt}, nil)
		if err != nil {
			t.Fatal(err)
		}
		errs[i] = f32(e)
		for bi := range n {
			for p := range hw {
				errs[i][bi*hw+p] += offset[(bi*k+i)*hw+p]
			}
		}
	}
	m := math.Inf(1)
	for p := range n * hw {
		best, second := math.Inf(1), math.Inf(1)
		for i := range k {
			v := float64(errs[i][p])
			if v < best {
				best, second = v, best
			} else if v < second {
				second = v
			}
		}
		m = min(m, second-best)
	}
	return m
}

// samplingTorchRand returns n values uniform in [lo, hi).
func samplingTorchRand(r *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float32()
	}
	return v
}

// samplingTorchNear fails unless ‖got − want‖ / ‖want‖ <= tol.
func samplingTorchNear(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, torch %d", what, len(got), len(want))
	}
	var num, den, worst float64
	wi := 0
	for i, g := range got {
		d := float64(g) - want[i]
		num += d * d
		den += want[i] * want[i]
		if math.Abs(d) > worst {
			worst, wi = math.Abs(d), i
		}
	}
	if e := math.Sqrt(num) / math.Max(math.Sqrt(den), 1e-30); !(e <= tol) {
		t.Errorf("%s: relative error %.3g against torch > %.3g; worst element %d: %.8g, torch %.8g", what, e, tol, wi, got[wi], want[wi])
	}
}

// samplingTorchScript computes the reference with PyTorch in float64, written from the
// contract in tensor.Backend and monodepth2_ref.py: grid_sample with border padding and
// align_corners=True on coordinates normalised by the source size, and the per-pixel
// minimum of 0.85 * SSIM dissimilarity + 0.15 * L1 plus the offset. Gradients come
// from autograd.
const samplingTorchScript = `
import json, sys
try:
    import torch
    import torch.nn.functional as F
except Exception as e:
    print("NO_TORCH", e)
    sys.exit(0)

inp = json.load(open(sys.argv[1]))
def tensor(name, shape=None):
    return torch.tensor(inp[name], dtype=torch.float64).reshape(inp[shape or name + "_shape"])
def flat(t):
    return t.detach().reshape(-1).tolist()

src = tensor("src").requires_grad_()
coords = tensor("coords").requires_grad_()
hs, ws = src.shape[2], src.shape[3]
grid = torch.stack([coords[:, 0] / (ws - 1), coords[:, 1] / (hs - 1)], -1) * 2 - 1
sampled = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=True)
(sampled * tensor("dy")).sum().backward()

def dissimilarity(x, y):
    xp = F.pad(x, (1, 1, 1, 1), mode="reflect")
    yp = F.pad(y, (1, 1, 1, 1), mode="reflect")
    mean = lambda v: F.avg_pool2d(v, 3, 1)
    mx, my = mean(xp), mean(yp)
    vx = mean(xp * xp) - mx * mx
    vy = mean(yp * yp) - my * my
    cxy = mean(xp * yp) - mx * my
    s = (2 * mx * my + 0.01 ** 2) * (2 * cxy + 0.03 ** 2) / ((mx * mx + my * my + 0.01 ** 2) * (vx + vy + 0.03 ** 2))
    return torch.clamp((1 - s) / 2, 0, 1)

target = tensor("target", "img_shape")
cands = [torch.tensor(c, dtype=torch.float64).reshape(inp["img_shape"]).requires_grad_() for c in inp["cands"]]
offset = tensor("offset")
errs = [0.85 * dissimilarity(c, target).mean(1, True) + 0.15 * (target - c).abs().mean(1, True) for c in cands]
minimum, argmin = torch.min(torch.cat(errs, 1) + offset, 1, keepdim=True)
(minimum * tensor("dmin")).sum().backward()

json.dump({
    "Torch": torch.__version__,
    "GS": flat(sampled), "GSDsrc": flat(src.grad), "GSDcoords": flat(coords.grad),
    "PMMin": flat(minimum), "PMArgmin": flat(argmin),
    "PMGrads": [flat(c.grad) for c in cands],
}, open(sys.argv[2], "w"))
`

// runTorchScript runs a Python script (given inline) with the JSON of in as its input
// file and returns what it wrote to its output file. A script that prints NO_TORCH
// (no importable torch) skips the test with its reason.
func runTorchScript(t *testing.T, python, script string, in any) []byte {
	t.Helper()
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-c", script, inPath, outPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if msg, ok := strings.CutPrefix(string(stdout), "NO_TORCH"); ok {
		t.Skipf("%s cannot import torch:%s", python, msg)
	}
	if err != nil {
		t.Fatalf("torch script: %v\n%s%s", err, stdout, stderr.String())
	}
	out, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
