package trainer

import (
	"math/rand/v2"

	"github.com/edgedepth/edgedepth/tensor"
)

// RandomBatch makes a batch of smooth random images (noise at 1/8 resolution,
// upsampled bilinearly, so warps and SSIM see structure), the reference's
// intrinsics (fx = 0.58 W, fy = 1.92 H, centred) and a 0.1 m baseline: inputs for
// benchmarks and tests, the same kind the PyTorch reference's bench uses.
func RandomBatch(b tensor.Backend, n, h, w int, stereo bool, seed uint64) (*Batch, error) {
	r := rand.New(rand.NewPCG(seed, 0xba7c))
	img := func() (*tensor.Tensor, error) {
		sh, sw := max(h/8, 1), max(w/8, 1)
		v := make([]float32, n*3*sh*sw)
		for i := range v {
			v[i] = r.Float32()
		}
		small, err := b.FromHost(v, n, 3, sh, sw)
		if err != nil {
			return nil, err
		}
		defer b.Free(small)
		return b.ResizeBilinear(small, h, w)
	}
	batch := &Batch{Baseline: []float32{0.1}}
	var err error
	for _, p := range []**tensor.Tensor{&batch.Target, &batch.Prev, &batch.Next} {
		if *p, err = img(); err != nil {
			return nil, err
		}
	}
	if stereo {
		if batch.Stereo, err = img(); err != nil {
			return nil, err
		}
	}
	for i := 0; i < n; i++ {
		batch.K = append(batch.K,
			0.58*float32(w), 0, 0.5*float32(w), 0,
			0, 1.92*float32(h), 0.5*float32(h), 0,
			0, 0, 1, 0,
			0, 0, 0, 1)
	}
	noise := make([]float32, n*len(batch.Sources())*h*w)
	for i := range noise {
		noise[i] = float32(r.NormFloat64() * 1e-5)
	}
	if batch.IdentityNoise, err = b.FromHost(noise, n, len(batch.Sources()), h, w); err != nil {
		return nil, err
	}
	return batch, nil
}
