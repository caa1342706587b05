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

func BenchmarkConv2D3x3(b *testing.B) {
	be := benchOpen(b)
	x := benchTensor(b, be, 12, 64, 96, 320)
	w := benchTensor(b, be, 64, 64, 3, 3)
	p := tensor.Conv2DParams{Padding: [2]int{1, 1}}
	benchLoop(b, be, func() error {
		y, err := be.Conv2D(x, w, nil, p)
		be.Free(y)
		return err
	})
}

func BenchmarkConv2D3x3Backward(b *testing.B) {
	be := benchOpen(b)
	x := benchTensor(b, be, 12, 64, 96, 320)
	w := benchTensor(b, be, 64, 64, 3, 3)
	dy := benchTensor(b, be, 12, 64, 96, 320)
	p := tensor.Conv2DParams{Padding: [2]int{1, 1}}
	benchLoop(b, be, func() error {
		dx, dw, _, err := be.Conv2DBackward(x, w, dy, p, true, false)
		be.discard(dx, dw)
		return err
	})
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
