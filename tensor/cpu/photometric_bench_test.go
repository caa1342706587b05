package cpu_test

import (
	"math/rand/v2"
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/tensor/cpu"
)

// The photometric minimum at the size of one training scale of Monodepth2 at batch 2:
// 3x192x640 images, 6 candidates (3 identity and 3 reprojected sources, as with
// stereo) plus the auto-masking offset.
const (
	benchN, benchC, benchH, benchW, benchK = 2, 3, 192, 640, 6
)

type photoBench struct {
	target     *tensor.Tensor
	candidates []*tensor.Tensor
	offset     *tensor.Tensor
	dMin       *tensor.Tensor
}

// newPhotoBench makes random images; the winners are then scattered at random, the
// backward pass's worst case (real winners come in patches).
func newPhotoBench(b *testing.B, be *cpu.Backend) photoBench {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	img := func(channels int, lo, hi float32) *tensor.Tensor {
		v := make([]float32, benchN*channels*benchH*benchW)
		for i := range v {
			v[i] = lo + (hi-lo)*r.Float32()
		}
		t, err := be.FromHost(v, benchN, channels, benchH, benchW)
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	pb := photoBench{target: img(benchC, 0, 1), offset: img(benchK, 0, 1e-5), dMin: img(1, -1, 1)}
	for range benchK {
		pb.candidates = append(pb.candidates, img(benchC, 0, 1))
	}
	return pb
}

func BenchmarkPhotometricMin(b *testing.B) {
	be := cpu.New(0)
	pb := newPhotoBench(b, be)
	for b.Loop() {
		if _, _, err := be.PhotometricMin(pb.target, pb.candidates, pb.offset); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPhotometricMinBackward(b *testing.B) {
	be := cpu.New(0)
	pb := newPhotoBench(b, be)
	_, argmin, err := be.PhotometricMin(pb.target, pb.candidates, pb.offset)
	if err != nil {
		b.Fatal(err)
	}
	need := make([]bool, benchK)
	for i := range need {
		need[i] = true
	}
	for b.Loop() {
		if _, err := be.PhotometricMinBackward(pb.target, pb.candidates, argmin, pb.dMin, need); err != nil {
			b.Fatal(err)
		}
	}
}
