package cpu

import (
	"math"

	"github.com/edgedepth/edgedepth/tensor"
)

// AdamStep implements tensor.Backend, following torch.optim.Adam (amsgrad off):
//
//	g = grad + weight_decay·param
//	m = β1·m + (1-β1)·g
//	v = β2·v + (1-β2)·g²
//	param -= lr/(1-β1^t) · m / (√v/√(1-β2^t) + eps)
//
// The bias corrections are computed once in float64, as PyTorch computes them in
// Python floats; the per-element arithmetic is float32, in one pass over the four
// tensors.
func (b *Backend) AdamStep(param, grad, m, v *tensor.Tensor, p tensor.AdamParams) error {
	if err := tensor.AdamCheck(param, grad, m, v, p); err != nil {
		return err
	}
	bc1 := 1 - math.Pow(float64(p.Beta1), float64(p.Step))
	bc2 := 1 - math.Pow(float64(p.Beta2), float64(p.Step))
	stepSize := float32(float64(p.LR) / bc1)
	bc2Sqrt := float32(math.Sqrt(bc2))
	b1, b2 := p.Beta1, p.Beta2
	c1, c2 := float32(1-float64(b1)), float32(1-float64(b2))
	wd, eps := p.WeightDecay, p.Eps
	pv, gv, mv, vv := f32(param), f32(grad), f32(m), f32(v)
	b.parallel(len(pv), func(lo, hi int) {
		ps, gs, ms, vs := pv[lo:hi], gv[lo:hi], mv[lo:hi], vv[lo:hi]
		for i, g := range gs {
			if wd != 0 {
				g += wd * ps[i]
			}
			mi := b1*ms[i] + c1*g
			vi := b2*vs[i] + c2*g*g
			ms[i], vs[i] = mi, vi
			ps[i] -= stepSize * mi / (float32(math.Sqrt(float64(vi)))/bc2Sqrt + eps)
		}
	})
	return nil
}
