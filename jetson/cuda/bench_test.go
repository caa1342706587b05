package cuda

import (
	"math/rand/v2"
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
)

// Benchmarks at the sizes of a Monodepth2 training step (batch 12, 640x192), for the
// first versions of the kernels: where the time goes before any tuning.

func benchTensor(b *testing.B, be *Backend, shape ...int) *tensor.Tensor {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]float32, tensor.Shape(shape).Len())
	for i := range v {
		v[i] = r.Float32()
	}
	t, err := be.FromHost(v, shape...)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func benchOpen(b *testing.B) *Backend {
	b.Helper()
	be, err := Open(DefaultOptions())
	if err != nil {
		b.Skipf("%v", err)
	}
	b.Cleanup(func() { be.Close() })
	return be
}

// convTag names the convolution implementation and math of a backend in benchmark
// names: "auto" (cuDNN above batch 1, im2col at batch 1), "cudnn", "im2col", with "-find" and
// "-tf32" where they are on.
func convTag(be *Backend) string {
	tag := ConvIm2col
	if be.dnn != nil {
		tag = ConvCUDNN
		if be.dnn.batched {
			tag = ConvAuto
		}
		if be.dnn.search == SearchFind {
			tag += "-find"
		}
	}
	if be.opts.TF32 {
		tag += "-tf32"
	}
	return tag
}

// benchLoop times f, which queues work and frees what it made, waiting for the GPU
// after each call (b.Loop stops the clock when it returns, so a wait after the loop
// would not be timed).
func benchLoop(b *testing.B, be *Backend, f func() error) {
	b.Helper()
	if err := f(); err != nil { // compile and warm up
		b.Fatal(err)
	}
	if err := be.Sync(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := f(); err != nil {
			b.Fatal(err)
		}
		if err := be.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPhotometricMin(b *testing.B) {
	be := benchOpen(b)
	y := benchTensor(b, be, 12, 3, 192, 640)
	xs := []*tensor.Tensor{benchTensor(b, be, 12, 3, 192, 640), benchTensor(b, be, 12, 3, 192, 640), benchTensor(b, be, 12, 3, 192, 640), benchTensor(b, be, 12, 3, 192, 640)}
	benchLoop(b, be, func() error {
		m, a, err := be.PhotometricMin(y, xs, nil)
		be.Free(m)
		be.Free(a)
		return err
	})
}

func BenchmarkPhotometricMinBackward(b *testing.B) {
	be := benchOpen(b)
	y := benchTensor(b, be, 12, 3, 192, 640)
	xs := []*tensor.Tensor{benchTensor(b, be, 12, 3, 192, 640), benchTensor(b, be, 12, 3, 192, 640), benchTensor(b, be, 12, 3, 192, 640), benchTensor(b, be, 12, 3, 192, 640)}
	_, arg, err := be.PhotometricMin(y, xs, nil)
	if err != nil {
		b.Fatal(err)
	}
	dm := benchTensor(b, be, 12, 1, 192, 640)
	benchLoop(b, be, func() error {
		gs, err := be.PhotometricMinBackward(y, xs, arg, dm, []bool{true, true, true, true})
		be.discard(gs...)
		return err
	})
}

// The convolution benchmarks run under the implementation EDGEDEPTH_CUDA_CONV selects
// (cuDNN where it loads), named in the sub-benchmark, and report TFLOP/s.
func BenchmarkConv2D3x3(b *testing.B) {
	be := benchOpen(b)
	x := benchTensor(b, be, 12, 64, 96, 320)
	w := benchTensor(b, be, 64, 64, 3, 3)
	p := tensor.Conv2DParams{Padding: [2]int{1, 1}}
	b.Run(convTag(be), func(b *testing.B) {
		benchLoop(b, be, func() error {
			y, err := be.Conv2D(x, w, nil, p)
			be.Free(y)
			return err
		})
		reportConvFlops(b, 1, x.Shape, w.Shape)
	})
	b.Logf("%s", be.convSummary())
}

func BenchmarkConv2D3x3Backward(b *testing.B) {
	be := benchOpen(b)
	x := benchTensor(b, be, 12, 64, 96, 320)
	w := benchTensor(b, be, 64, 64, 3, 3)
	dy := benchTensor(b, be, 12, 64, 96, 320)
	p := tensor.Conv2DParams{Padding: [2]int{1, 1}}
	b.Run(convTag(be), func(b *testing.B) {
		benchLoop(b, be, func() error {
			dx, dw, _, err := be.Conv2DBackward(x, w, dy, p, true, false)
			be.discard(dx, dw)
			return err
		})
		reportConvFlops(b, 2, x.Shape, w.Shape)
	})
	b.Logf("%s", be.convSummary())
}

// BenchmarkConv2DSmall times a convolution of batch-1 inference, where the GPU's work
// is a few microseconds and the time per call (host side included) decides.
func BenchmarkConv2DSmall(b *testing.B) {
	be := benchOpen(b)
	x := benchTensor(b, be, 1, 512, 6, 20)
	w := benchTensor(b, be, 512, 512, 3, 3)
	p := tensor.Conv2DParams{Padding: [2]int{1, 1}}
	b.Run(convTag(be), func(b *testing.B) {
		benchLoop(b, be, func() error {
			for range 20 { // 20 calls queued per wait, as in a network
				y, err := be.Conv2D(x, w, nil, p)
				if err != nil {
					return err
				}
				be.Free(y)
			}
			return nil
		})
		if b.N > 0 {
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(20*b.N), "µs/conv")
		}
	})
	b.Logf("%s", be.convSummary())
}

// reportConvFlops reports the TFLOP/s of passes products of a stride-1, same-size
// convolution of x by w (2·N·O·H·W·C·KH·KW operations each).
func reportConvFlops(b *testing.B, passes int, x, w tensor.Shape) {
	flops := 2 * float64(passes) * float64(x[0]*w[0]*x[2]*x[3]) * float64(w[1]*w[2]*w[3])
	if s := b.Elapsed().Seconds(); s > 0 && b.N > 0 {
		b.ReportMetric(flops*float64(b.N)/s/1e12, "TFLOP/s")
	}
}

func BenchmarkMatMul4096(b *testing.B) {
	be := benchOpen(b)
	x := benchTensor(b, be, 4096, 4096)
	w := benchTensor(b, be, 4096, 4096)
	benchLoop(b, be, func() error {
		y, err := be.MatMul(x, w, false, false)
		be.Free(y)
		return err
	})
}
