package cpu

import (
	"math"

	"github.com/edgedepth/edgedepth/tensor"
)

// BatchNorm implements tensor.Backend.
//
// Training statistics take one pass over x: per-(n, c)-plane sums in float64 of
// d = x - k and d², k being one sample of the channel. The shift costs one subtraction
// and keeps Σd²/m - (Σd/m)² from cancelling however large a channel's mean is against
// its spread (plain Σx² loses the variance once mean²/var nears 1/ε of float64).
func (b *Backend) BatchNorm(x, gamma, beta, runMean, runVar *tensor.Tensor, p tensor.BatchNormParams) (y, mean, invStd *tensor.Tensor, err error) {
	if err := tensor.BatchNormCheck(x, gamma, beta, runMean, runVar, p); err != nil {
		return nil, nil, nil, err
	}
	n, c, hw := x.Shape[0], x.Shape[1], x.Shape[2]*x.Shape[3]
	m := n * hw
	xs := f32(x)
	mean, invStd = newF(tensor.Shape{c}), newF(tensor.Shape{c})
	mu, is := f32(mean), f32(invStd)
	rm, rv := f32(runMean), f32(runVar)
	eps := float64(p.Eps)
	if p.Training {
		shift := make([]float64, c)
		for ch := range shift {
			shift[ch] = float64(xs[ch*hw])
		}
		s1, s2 := make([]float64, n*c), make([]float64, n*c)
		b.imgSplit(n*c, hw, func(lo, hi int) {
			for pl := lo; pl < hi; pl++ {
				k := shift[pl%c]
				var a1, a2 float64
				for _, v := range xs[pl*hw:][:hw] {
					d := float64(v) - k
					a1 += d
					a2 += d * d
				}
				s1[pl], s2[pl] = a1, a2
			}
		})
		mom, fm := float64(p.Momentum), float64(m)
		for ch := range c {
			var t1, t2 float64
			for i := range n {
				t1 += s1[i*c+ch]
				t2 += s2[i*c+ch]
			}
			d := t1 / fm
			v := max(t2/fm-d*d, 0) // biased: what the batch is normalised with
			mu64 := shift[ch] + d
			mu[ch] = float32(mu64)
			is[ch] = float32(1 / math.Sqrt(v+eps))
			rm[ch] = float32((1-mom)*float64(rm[ch]) + mom*mu64)
			rv[ch] = float32((1-mom)*float64(rv[ch]) + mom*v*fm/(fm-1))
		}
	} else {
		for ch := range c {
			mu[ch] = rm[ch]
			is[ch] = float32(1 / math.Sqrt(float64(rv[ch])+eps))
		}
	}
	gs, bs := f32(gamma), f32(beta)
	scale := make([]float32, c)
	for ch := range c {
		scale[ch] = float32(float64(gs[ch]) * float64(is[ch]))
	}
	y = newF(x.Shape)
	ys := f32(y)
	b.imgSplit(n*c, hw, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			ch := pl % c
			// (x - mean)·scale + beta rather than x·scale + (beta - mean·scale): the
			// latter loses digits when the mean is large against the spread.
			mc, a, sh := mu[ch], scale[ch], bs[ch]
			out := ys[pl*hw:][:hw]
			for i, v := range xs[pl*hw:][:hw] {
				out[i] = (v-mc)*a + sh
			}
		}
	})
	return y, mean, invStd, nil
}

// BatchNormBackward implements tensor.Backend.
//
// With x̂ = (x - mean)·invStd, dbeta = Σdy and dgamma = Σdy·x̂ over (n, h, w). Frozen
// statistics make dx = dy·gamma·invStd, computed in the same pass as the sums. Batch
// statistics add their own dependence on x:
// dx = gamma·invStd·(dy - mean(dy) - x̂·mean(dy·x̂)), which needs the sums first and so
// a second pass.
func (b *Backend) BatchNormBackward(x, gamma, mean, invStd, dy *tensor.Tensor, training bool) (dx, dgamma, dbeta *tensor.Tensor, err error) {
	if err := tensor.BatchNormBackwardCheck(x, gamma, mean, invStd, dy, training); err != nil {
		return nil, nil, nil, err
	}
	n, c, hw := x.Shape[0], x.Shape[1], x.Shape[2]*x.Shape[3]
	m := n * hw
	xs, gs, mu, is, g := f32(x), f32(gamma), f32(mean), f32(invStd), f32(dy)
	dx = newF(x.Shape)
	d := f32(dx)
	scale := make([]float32, c)
	for ch := range c {
		scale[ch] = float32(float64(gs[ch]) * float64(is[ch]))
	}
	sdy, sdyx := make([]float64, n*c), make([]float64, n*c)
	b.imgSplit(n*c, hw, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			ch := pl % c
			mc := float64(mu[ch])
			xp, gp := xs[pl*hw:][:hw], g[pl*hw:][:hw]
			var a1, a2 float64
			if training {
				for i, v := range gp {
					a1 += float64(v)
					a2 += float64(v) * (float64(xp[i]) - mc)
				}
			} else {
				a := scale[ch]
				out := d[pl*hw:][:hw]
				for i, v := range gp {
					a1 += float64(v)
					a2 += float64(v) * (float64(xp[i]) - mc)
					out[i] = v * a
				}
			}
			sdy[pl], sdyx[pl] = a1, a2
		}
	})
	dgamma, dbeta = newF(tensor.Shape{c}), newF(tensor.Shape{c})
	dgs, dbs := f32(dgamma), f32(dbeta)
	c1, c2 := make([]float32, c), make([]float32, c)
	fm := float64(m)
	for ch := range c {
		var t1, t2 float64
		for i := range n {
			t1 += sdy[i*c+ch]
			t2 += sdyx[i*c+ch]
		}
		s := float64(is[ch])
		dbs[ch] = float32(t1)
		dgs[ch] = float32(t2 * s)
		if training {
			c1[ch] = float32(t1 / fm)         // mean(dy)
			c2[ch] = float32(t2 * s * s / fm) // mean(dy·x̂)·invStd, to multiply x - mean
		}
	}
	if training {
		b.imgSplit(n*c, 2*hw, func(lo, hi int) {
			for pl := lo; pl < hi; pl++ {
				ch := pl % c
				mc, a, k1, k2 := mu[ch], scale[ch], c1[ch], c2[ch]
				xp, gp, out := xs[pl*hw:][:hw], g[pl*hw:][:hw], d[pl*hw:][:hw]
				for i, v := range gp {
					out[i] = a * (v - k1 - (xp[i]-mc)*k2)
				}
			}
		})
	}
	return dx, dgamma, dbeta, nil
}
