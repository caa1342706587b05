package nn_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/tensor/cpu"
)

// f computes, on a tape, a composite that uses x twice, broadcasts, reshapes,
// slices and concatenates: the paths where gradient bookkeeping can go wrong.
func f(t *nn.Tape, x, w *nn.Var) *nn.Var {
	y := t.Mul(x, x)                         // x used twice by one op
	y = t.Add(y, t.Unary(tensor.Sin, x))     // and again by another
	y = t.Mul(y, w)                          // (2,3) * (3) broadcast
	r := t.Reshape(y, 3, 2)                  // a view
	c := t.Concat(0, t.Slice(r, 0, 0, 1), r) // r used twice
	return t.Mean(t.Unary(tensor.Square, c)) // scalar
}

func TestTapeGradientsMatchFiniteDifferences(t *testing.T) {
	b := cpu.New(1)
	xv := []float32{0.3, -0.7, 1.1, 0.2, -0.4, 0.9}
	wv := []float32{1.5, -0.5, 0.8}
	eval := func(xs, ws []float32) float64 {
		tp := nn.NewTape(b)
		tp.NoGrad = true
		out := f(tp, tp.FromHost(xs, 2, 3), tp.FromHost(ws, 3))
		if err := tp.Err(); err != nil {
			t.Fatal(err)
		}
		v, _ := b.ToHost(out.Value)
		return float64(v[0])
	}
	tp := nn.NewTape(b)
	xt, _ := b.FromHost(xv, 2, 3)
	wt, _ := b.FromHost(wv, 3)
	x, w := tp.Leaf(xt), tp.Leaf(wt)
	out := f(tp, x, w)
	if err := tp.Backward(out); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		v    []float32
		g    *tensor.Tensor
		set  func(p []float32) float64
	}{
		{"x", xv, x.Grad, func(p []float32) float64 { return eval(p, wv) }},
		{"w", wv, w.Grad, func(p []float32) float64 { return eval(xv, p) }},
	} {
		got, err := b.ToHost(c.g)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for i := range c.v {
			p := append([]float32(nil), c.v...)
			const h = 1e-2
			p[i] = c.v[i] + h
			fp := c.set(p)
			p[i] = c.v[i] - h
			fm := c.set(p)
			want := (fp - fm) / (2 * h)
			if math.Abs(float64(got[i])-want) > 2e-3*math.Max(1, math.Abs(want)) {
				t.Errorf("d/d%s[%d] = %.6f, finite differences %.6f", c.name, i, got[i], want)
			}
		}
	}
}

func TestTapeErrorsAreSticky(t *testing.T) {
	b := cpu.New(1)
	tp := nn.NewTape(b)
	a := tp.Full(1, 2, 3)
	c := tp.Full(1, 4, 5)
	bad := tp.Add(a, c) // shapes do not broadcast
	if bad != nil {
		t.Fatal("a failing op returned a value")
	}
	if after := tp.Mul(a, a); after != nil {
		t.Error("an op after a failure ran")
	}
	err := tp.Err()
	if !errors.Is(err, tensor.ErrShape) || !strings.Contains(err.Error(), "add") || !strings.Contains(err.Error(), "[2 3]") || !strings.Contains(err.Error(), "[4 5]") {
		t.Errorf("error %q should name the op and both shapes", err)
	}
	if err := tp.Backward(a); err == nil {
		t.Error("Backward after a failure returned no error")
	}
}

func TestParamGradientsAccumulateAcrossTapes(t *testing.T) {
	b := cpu.New(1)
	var ps nn.Params
	p, err := ps.Add(b, "w", true, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		tp := nn.NewTape(b)
		if err := tp.Backward(tp.Sum(tp.Param(p))); err != nil {
			t.Fatal(err)
		}
		tp.Release()
	}
	g, _ := b.ToHost(p.Grad)
	if g[0] != 2 || g[1] != 2 {
		t.Errorf("gradient after two backward passes = %v, want [2 2]", g)
	}
	ps.ZeroGrad(b)
	if p.Grad != nil {
		t.Error("ZeroGrad left a gradient")
	}
}
