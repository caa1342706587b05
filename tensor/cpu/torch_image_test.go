package cpu

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
)

// imageTorchCase is one op applied to one input, as the PyTorch script reads it. X, DY
// and the per-channel operands travel as float64 holding the float32 values exactly, so
// that both sides start from the same numbers.
type imageTorchCase struct {
	Name  string         `json:"name"`
	Op    string         `json:"op"`
	X     []float64      `json:"x"`
	Shape []int          `json:"shape"`
	DY    []float64      `json:"dy"`
	Args  map[string]any `json:"args"`
}

// imageTorchResult is one tensor our backend or PyTorch computed.
type imageTorchResult struct {
	Shape tensor.Shape `json:"shape"`
	V     []float64    `json:"v"`
}

// TestImageOpsAgainstPyTorch checks the image ops of the backend, values and gradients,
// against PyTorch itself (float64, autograd with a random upstream gradient) on small
// random cases with a fixed seed: Pad2D (zero and reflect, asymmetric), ResizeBilinear
// (up and down by non-integer ratios, align_corners=False), UpsampleNearest (x2),
// AvgPool2D (2x2), MaxPool2D (3x3, stride 2, padding 1, with its argmax) and BatchNorm
// in training mode (output, dx, dgamma, dbeta, the batch statistics and the running
// statistics updated with momentum 0.1) and in eval mode. It needs /usr/bin/python3
// with torch and is skipped without them.
func TestImageOpsAgainstPyTorch(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skipf("no %s: %v", python, err)
	}
	r := rand.New(rand.NewPCG(0x1a2b3c4d, 11))
	b := New(0)

	put := func(v []float32, shape ...int) *tensor.Tensor {
		t.Helper()
		x, err := b.FromHost(v, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	must := func(x *tensor.Tensor, err error) *tensor.Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	var cases []imageTorchCase
	ours := map[string]imageTorchResult{}
	keep := func(key string, x *tensor.Tensor) {
		var v []float64
		if x.DType == tensor.Int32 {
			for _, a := range i32(x) {
				v = append(v, float64(a))
			}
		} else {
			v = imageTorchF64(f32(x))
		}
		ours[key] = imageTorchResult{x.Shape.Clone(), v}
	}
	// run records a case whose forward gave y: it draws the upstream gradient dy in
	// y's shape and returns it for the backward.
	run := func(name, op string, x []float32, shape []int, y *tensor.Tensor, args map[string]any) *tensor.Tensor {
		dy := samplingTorchRand(r, y.Len(), -1, 1)
		cases = append(cases, imageTorchCase{name, op, imageTorchF64(x), shape, imageTorchF64(dy), args})
		keep(name+"/y", y)
		return put(dy, y.Shape...)
	}

	// Padding: the reflect cases pad every side differently, up to one less than the
	// size (the most PyTorch allows), and leave a side unpadded.
	for _, c := range []struct {
		name  string
		shape []int
		p     tensor.Pad2DParams
	}{
		{"pad_reflect", []int{2, 3, 5, 6}, tensor.Pad2DParams{Top: 3, Bottom: 1, Left: 2, Right: 5, Mode: tensor.PadReflect}},
		{"pad_reflect_one_side", []int{1, 2, 4, 7}, tensor.Pad2DParams{Top: 0, Bottom: 2, Left: 1, Right: 0, Mode: tensor.PadReflect}},
		{"pad_zero", []int{2, 3, 5, 6}, tensor.Pad2DParams{Top: 2, Bottom: 0, Left: 1, Right: 3, Mode: tensor.PadZero}},
	} {
		xv := samplingTorchRand(r, tensor.Shape(c.shape).Len(), -1, 1)
		y := must(b.Pad2D(put(xv, c.shape...), c.p))
		mode := "constant"
		if c.p.Mode == tensor.PadReflect {
			mode = "reflect"
		}
		dy := run(c.name, "pad", xv, c.shape, y, map[string]any{
			"pad": []int{c.p.Left, c.p.Right, c.p.Top, c.p.Bottom}, "mode": mode,
		})
		keep(c.name+"/dx", must(b.Pad2DBackward(dy, c.p)))
	}

	// Bilinear resizing by ratios that are not integers, up, down and mixed.
	for _, c := range []struct {
		name  string
		shape []int
		h, w  int
	}{
		{"resize_up", []int{2, 3, 5, 7}, 8, 11},
		{"resize_down", []int{2, 3, 9, 13}, 4, 6},
		{"resize_mixed", []int{1, 2, 6, 5}, 4, 9},
	} {
		xv := samplingTorchRand(r, tensor.Shape(c.shape).Len(), -1, 1)
		y := must(b.ResizeBilinear(put(xv, c.shape...), c.h, c.w))
		dy := run(c.name, "resize", xv, c.shape, y, map[string]any{"size": []int{c.h, c.w}})
		keep(c.name+"/dx", must(b.ResizeBilinearBackward(dy, c.shape)))
	}

	// Nearest upsampling by 2.
	{
		shape := []int{2, 3, 4, 5}
		xv := samplingTorchRand(r, tensor.Shape(shape).Len(), -1, 1)
		y := must(b.UpsampleNearest(put(xv, shape...), 2))
		dy := run("nearest_x2", "nearest", xv, shape, y, map[string]any{"factor": 2})
		keep("nearest_x2/dx", must(b.UpsampleNearestBackward(dy, 2)))
	}

	// 2x2 average pooling, of an even input and of an odd one whose last row and column
	// no window reads.
	avg := tensor.Pool2DParams{Kernel: [2]int{2, 2}}
	for _, c := range []struct {
		name  string
		shape []int
	}{
		{"avgpool_even", []int{2, 3, 6, 8}},
		{"avgpool_odd", []int{2, 3, 7, 9}},
	} {
		xv := samplingTorchRand(r, tensor.Shape(c.shape).Len(), -1, 1)
		y := must(b.AvgPool2D(put(xv, c.shape...), avg))
		dy := run(c.name, "avgpool", xv, c.shape, y, map[string]any{"kernel": 2, "stride": 2, "padding": 0})
		keep(c.name+"/dx", must(b.AvgPool2DBackward(dy, c.shape, avg)))
	}

	// ResNet's 3x3/s2/p1 max pooling. The inputs are a shuffled ramp with steps of at
	// least 0.01, so every window has one clear winner in float32 and float64 alike.
	stem := tensor.Pool2DParams{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}
	for _, c := range []struct {
		name  string
		shape []int
	}{
		{"maxpool_odd", []int{2, 3, 9, 11}},
		{"maxpool_even", []int{1, 2, 8, 10}},
	} {
		n := tensor.Shape(c.shape).Len()
		xv := make([]float32, n)
		for i, k := range r.Perm(n) {
			xv[i] = (float32(k)+0.5*r.Float32())*0.02 - 2
		}
		y, argmax, err := b.MaxPool2D(put(xv, c.shape...), stem)
		if err != nil {
			t.Fatal(err)
		}
		dy := run(c.name, "maxpool", xv, c.shape, y, map[string]any{"kernel": 3, "stride": 2, "padding": 1})
		keep(c.name+"/argmax", argmax)
		keep(c.name+"/dx", must(b.MaxPool2DBackward(dy, argmax, c.shape)))
	}

	// Batch norm: channels with their own mean and spread, gamma, beta and running
	// statistics away from 1 and 0. In training the running statistics are updated in
	// place; in eval they must come back unchanged.
	for _, training := range []bool{true, false} {
		name := "batchnorm_eval"
		if training {
			name = "batchnorm_train"
		}
		shape := []int{3, 4, 5, 6}
		c := shape[1]
		hw := shape[2] * shape[3]
		xv := make([]float32, tensor.Shape(shape).Len())
		mu, sd := samplingTorchRand(r, c, -2, 2), samplingTorchRand(r, c, 0.3, 3)
		for i := range xv {
			ch := i / hw % c
			xv[i] = mu[ch] + sd[ch]*float32(r.NormFloat64())
		}
		gamma, beta := samplingTorchRand(r, c, 0.5, 1.5), samplingTorchRand(r, c, -0.5, 0.5)
		rmv, rvv := samplingTorchRand(r, c, -1, 1), samplingTorchRand(r, c, 0.5, 4)
		p := tensor.BatchNormParams{Eps: 1e-5, Momentum: 0.1, Training: training}
		x, g := put(xv, shape...), put(gamma, c)
		rm, rv := put(rmv, c), put(rvv, c)
		y, mean, invStd, err := b.BatchNorm(x, g, put(beta, c), rm, rv, p)
		if err != nil {
			t.Fatal(err)
		}
		dy := run(name, "batchnorm", xv, shape, y, map[string]any{
			"gamma": imageTorchF64(gamma), "beta": imageTorchF64(beta),
			"run_mean": imageTorchF64(rmv), "run_var": imageTorchF64(rvv),
			"training": training, "momentum": 0.1, "eps": 1e-5,
		})
		keep(name+"/run_mean", rm)
		keep(name+"/run_var", rv)
		keep(name+"/mean", mean)
		keep(name+"/invstd", invStd)
		dx, dgamma, dbeta, err := b.BatchNormBackward(x, g, mean, invStd, dy, training)
		if err != nil {
			t.Fatal(err)
		}
		keep(name+"/dx", dx)
		keep(name+"/dgamma", dgamma)
		keep(name+"/dbeta", dbeta)
	}

	// PyTorch.
	raw := runTorchScript(t, python, imageTorchScript, map[string]any{"cases": cases})
	var out struct {
		Torch   string                      `json:"torch"`
		Results map[string]imageTorchResult `json:"results"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("torch %s, %d cases, %d tensors compared", out.Torch, len(cases), len(ours))

	for _, key := range slices.Sorted(maps.Keys(ours)) {
		got := ours[key]
		want, ok := out.Results[key]
		if !ok {
			t.Errorf("%s: torch computed nothing", key)
			continue
		}
		if !got.Shape.Equal(want.Shape) {
			t.Errorf("%s: shape %v, torch %v", key, got.Shape, want.Shape)
			continue
		}
		if strings.HasSuffix(key, "/argmax") {
			for i, a := range got.V {
				if a != want.V[i] {
					t.Errorf("%s[%d] = %v, torch %v", key, i, a, want.V[i])
					break
				}
			}
			continue
		}
		g := make([]float32, len(got.V))
		for i, v := range got.V {
			g[i] = float32(v)
		}
		samplingTorchNear(t, key, g, want.V, 1e-5)
	}
}

// imageTorchF64 widens float32 values exactly.
func imageTorchF64(v []float32) []float64 {
	w := make([]float64, len(v))
	for i, x := range v {
		w[i] = float64(x)
	}
	return w
}

// imageTorchScript computes every case with PyTorch in float64: F.pad, F.interpolate
// (bilinear with align_corners=False to an output size; nearest with a scale factor),
// F.avg_pool2d, F.max_pool2d with its indices (flat within each plane, as our argmax)
// and F.batch_norm, which updates the running statistics in place in training. The
// gradients come from autograd of sum(y * dy).
const imageTorchScript = `
import json, sys
try:
    import torch
    import torch.nn.functional as F
except Exception as e:
    print("NO_TORCH", e)
    sys.exit(0)

inp = json.load(open(sys.argv[1]))
out = {}
def f64(v):
    return torch.tensor(v, dtype=torch.float64)
def keep(key, t):
    out[key] = {"shape": list(t.shape), "v": t.detach().reshape(-1).tolist()}

for c in inp["cases"]:
    name, op, a = c["name"], c["op"], c["args"]
    x = f64(c["x"]).reshape(c["shape"]).requires_grad_()
    leaves = {"dx": x}
    if op == "pad":
        y = F.pad(x, tuple(a["pad"]), mode=a["mode"])
    elif op == "resize":
        y = F.interpolate(x, size=tuple(a["size"]), mode="bilinear", align_corners=False)
    elif op == "nearest":
        y = F.interpolate(x, scale_factor=a["factor"], mode="nearest")
    elif op == "avgpool":
        y = F.avg_pool2d(x, a["kernel"], a["stride"], a["padding"])
    elif op == "maxpool":
        y, idx = F.max_pool2d(x, a["kernel"], a["stride"], a["padding"], return_indices=True)
        keep(name + "/argmax", idx)
    elif op == "batchnorm":
        gamma = f64(a["gamma"]).requires_grad_()
        beta = f64(a["beta"]).requires_grad_()
        rm, rv = f64(a["run_mean"]), f64(a["run_var"])
        if a["training"]:
            mean = x.detach().mean((0, 2, 3))
            var = x.detach().var((0, 2, 3), unbiased=False)
        else:
            mean, var = rm.clone(), rv.clone()
        y = F.batch_norm(x, rm, rv, gamma, beta, training=a["training"], momentum=a["momentum"], eps=a["eps"])
        keep(name + "/run_mean", rm)
        keep(name + "/run_var", rv)
        keep(name + "/mean", mean)
        keep(name + "/invstd", (var + a["eps"]).rsqrt())
        leaves["dgamma"], leaves["dbeta"] = gamma, beta
    else:
        raise ValueError("unknown op " + op)
    keep(name + "/y", y)
    dy = f64(c["dy"])
    if dy.numel() == y.numel():
        (y * dy.reshape(y.shape)).sum().backward()
        for k, leaf in leaves.items():
            keep(name + "/" + k, leaf.grad)

json.dump({"torch": torch.__version__, "results": out}, open(sys.argv[2], "w"))
`
