package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
)

// TestCUDNNConv checks cuDNN's convolutions against the im2col path (itself held to
// the conformance suite) on the shapes of Monodepth2's networks and on the odd ones of
// the suite, with heuristic and timed algorithm choice and with TF32, and that cuDNN
// really ran them.
func TestCUDNNConv(t *testing.T) {
	if info := Probe(); info.Err == nil && !info.CUDNNConv {
		t.Skipf("cuDNN cannot serve convolutions here: %v", info.CUDNN)
	}
	cache := t.TempDir()
	open := func(conv, search string, tf32 bool) *Backend {
		return openOrSkip(t, func(o *Options) {
			o.CacheDir, o.Conv, o.ConvSearch, o.TF32 = cache, conv, search, tf32
		})
	}
	ref := open(ConvIm2col, "", false)
	if ref.dnn != nil {
		t.Fatalf("Conv %q made a cuDNN handle", ConvIm2col)
	}
	cases := []struct {
		x, w    tensor.Shape
		p       tensor.Conv2DParams
		bias    bool
		onCUDNN bool // must run on cuDNN (all of Monodepth2's shapes)
	}{
		{tensor.Shape{2, 3, 96, 320}, tensor.Shape{64, 3, 7, 7}, tensor.Conv2DParams{Stride: [2]int{2, 2}, Padding: [2]int{3, 3}}, false, true},
		{tensor.Shape{2, 6, 96, 320}, tensor.Shape{64, 6, 7, 7}, tensor.Conv2DParams{Stride: [2]int{2, 2}, Padding: [2]int{3, 3}}, false, true},
		{tensor.Shape{2, 64, 24, 80}, tensor.Shape{64, 64, 3, 3}, tensor.Conv2DParams{Padding: [2]int{1, 1}}, false, true},
		{tensor.Shape{2, 64, 24, 80}, tensor.Shape{128, 64, 3, 3}, tensor.Conv2DParams{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}, false, true},
		{tensor.Shape{2, 64, 24, 80}, tensor.Shape{128, 64, 1, 1}, tensor.Conv2DParams{Stride: [2]int{2, 2}}, false, true},
		{tensor.Shape{2, 512, 3, 10}, tensor.Shape{256, 512, 3, 3}, tensor.Conv2DParams{Padding: [2]int{1, 1}}, true, true},
		{tensor.Shape{2, 16, 98, 322}, tensor.Shape{1, 16, 3, 3}, tensor.Conv2DParams{}, true, true},
		{tensor.Shape{2, 256, 3, 10}, tensor.Shape{12, 256, 1, 1}, tensor.Conv2DParams{}, true, true},
		// ResNet-18's layers 3 and 4 on a 64x96 image (the parity case stereo-b1-64x96).
		{tensor.Shape{1, 512, 2, 3}, tensor.Shape{512, 512, 3, 3}, tensor.Conv2DParams{Padding: [2]int{1, 1}}, false, true},
		{tensor.Shape{2, 512, 2, 3}, tensor.Shape{512, 512, 3, 3}, tensor.Conv2DParams{Padding: [2]int{1, 1}}, false, true},
		{tensor.Shape{1, 256, 4, 6}, tensor.Shape{512, 256, 3, 3}, tensor.Conv2DParams{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}, false, true},
		{tensor.Shape{1, 256, 4, 6}, tensor.Shape{512, 256, 1, 1}, tensor.Conv2DParams{Stride: [2]int{2, 2}}, false, true},
		{tensor.Shape{1, 256, 4, 6}, tensor.Shape{256, 256, 3, 3}, tensor.Conv2DParams{Padding: [2]int{1, 1}}, false, true},
		{tensor.Shape{3, 4, 6, 5}, tensor.Shape{6, 2, 3, 3}, tensor.Conv2DParams{Padding: [2]int{1, 1}, Groups: 2}, true, false},
		{tensor.Shape{1, 4, 5, 5}, tensor.Shape{4, 1, 3, 3}, tensor.Conv2DParams{Padding: [2]int{1, 1}, Groups: 4}, false, false},
		{tensor.Shape{1, 1, 4, 4}, tensor.Shape{2, 1, 2, 2}, tensor.Conv2DParams{Padding: [2]int{2, 2}}, false, false},
		{tensor.Shape{1, 1, 4, 4}, tensor.Shape{2, 1, 3, 3}, tensor.Conv2DParams{Stride: [2]int{3, 3}, Padding: [2]int{2, 2}}, false, false},
		{tensor.Shape{1, 2, 6, 7}, tensor.Shape{3, 2, 2, 3}, tensor.Conv2DParams{Stride: [2]int{2, 1}, Padding: [2]int{0, 2}}, true, false},
	}
	for _, v := range []struct {
		name, search string
		tf32         bool
		tol          float64
	}{
		{"heuristic", SearchHeuristic, false, 2e-5},
		{"find", SearchFind, false, 2e-5},
		{"heuristic-tf32", SearchHeuristic, true, 1e-2},
	} {
		t.Run(v.name, func(t *testing.T) {
			b := open(ConvCUDNN, v.search, v.tf32)
			t.Logf("conv: %s", b.ConvImpl())
			start := b.Live()
			r := rand.New(rand.NewPCG(7, 11))
			for _, c := range cases {
				want := convAll(t, ref, r, c.x, c.w, c.p, c.bias)
				got := convAll(t, b, nil, c.x, c.w, c.p, c.bias, want.inputs...)
				ref.discard(want.inputs...)
				b.discard(got.inputs...)
				line := fmt.Sprintf("x%v w%v %+v: relative difference from im2col", c.x, c.w, c.p)
				for i, name := range []string{"y", "dx", "dw", "dbias"} {
					if i < len(want.out) {
						e := relErr(got.out[i], want.out[i])
						if e > v.tol || math.IsNaN(e) {
							t.Errorf("x%v w%v %+v: %s differs from im2col by %.3g (tolerance %.0g)", c.x, c.w, c.p, name, e, v.tol)
						}
						line += fmt.Sprintf(" %s %.2g", name, e)
					}
				}
				t.Log(line)
				if c.onCUDNN {
					g := geom(t, c.x, c.w, c.p)
					var calls [3]int
					_ = b.run(func() error {
						if p := b.dnn.plans[g.key()]; p != nil {
							calls = p.calls
						}
						return nil
					})
					if calls[0] == 0 || calls[1] == 0 || calls[2] == 0 {
						t.Errorf("x%v w%v %+v: cuDNN calls forward/data/filter %v, want all", c.x, c.w, c.p, calls)
					}
				}
			}
			t.Logf("%s", b.convSummary())
			if live := waitLive(b, start); live != start {
				t.Errorf("%d device buffers live after the cases (started with %d)", live, start)
			}
		})
	}
}

type convResults struct {
	inputs []*tensor.Tensor // x, w, dy, bias (nil without) on the backend that made them: the caller frees them
	out    [][]float32      // y, dx, dw and, with a bias, dbias
}

// convAll runs Conv2D and Conv2DBackward on b: with random operands drawn from r, or
// with copies of the host values of inputs (made on another backend).
func convAll(t *testing.T, b *Backend, r *rand.Rand, xs, ws tensor.Shape, p tensor.Conv2DParams, bias bool, inputs ...*tensor.Tensor) convResults {
	t.Helper()
	g := geom(t, xs, ws, p)
	shapes := []tensor.Shape{xs, ws, {g.n, g.o, g.oh, g.ow}, {g.o}}
	var res convResults
	for i, s := range shapes {
		if i == 3 && !bias {
			res.inputs = append(res.inputs, nil)
			continue
		}
		v := make([]float32, s.Len())
		if r != nil {
			for j := range v {
				v[j] = float32(r.NormFloat64())
			}
		} else {
			v = host(t, inputs[i].Buffer.(*buffer).b, inputs[i])
		}
		x, err := b.FromHost(v, s...)
		if err != nil {
			t.Fatal(err)
		}
		res.inputs = append(res.inputs, x)
	}
	x, w, dy, bt := res.inputs[0], res.inputs[1], res.inputs[2], res.inputs[3]
	y, err := b.Conv2D(x, w, bt, p)
	if err != nil {
		t.Fatalf("Conv2D x%v w%v: %v", xs, ws, err)
	}
	dx, dw, db, err := b.Conv2DBackward(x, w, dy, p, true, bias)
	if err != nil {
		t.Fatalf("Conv2DBackward x%v w%v: %v", xs, ws, err)
	}
	for _, o := range []*tensor.Tensor{y, dx, dw, db} {
		if o != nil {
			res.out = append(res.out, host(t, b, o))
			b.Free(o)
		}
	}
	return res
}

func host(t *testing.T, b *Backend, x *tensor.Tensor) []float32 {
	t.Helper()
	v, err := b.ToHost(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// relErr is ‖got − want‖ / ‖want‖ (the absolute norm when want is zero).
func relErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var d, n float64
	for i := range got {
		e := float64(got[i]) - float64(want[i])
		d += e * e
		n += float64(want[i]) * float64(want[i])
	}
	if n == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / n)
}
