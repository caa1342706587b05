package cpu

import (
	"math"

	"github.com/edgedepth/edgedepth/tensor"
)

// Sums over dimensions, for Reduce and for the gradients of broadcast operands. Sums
// accumulate in float64: a float32 running sum over a million values near 1 would lose
// about three digits, and a mean of a loss map is exactly such a sum.

// redGrain is the number of summed elements below which a reduction is not split
// further across goroutines.
const redGrain = 1 << 14

// redMinCols is the narrowest column block a goroutine accumulates on its own when the
// kept dimension is the innermost one.
const redMinCols = 1024

// Reduce implements tensor.Backend.
func (b *Backend) Reduce(op tensor.ReduceOp, x *tensor.Tensor, axes ...int) (*tensor.Tensor, error) {
	shape, err := tensor.ReduceShape(op, x, axes...)
	if err != nil {
		return nil, err
	}
	out := newF(shape)
	o, xv := f32(out), f32(x)
	if len(o) == 0 {
		return out, nil
	}
	if len(xv) == 0 {
		// Sums over empty dimensions are 0; their means 0/0, NaN as in PyTorch.
		if op == tensor.Mean {
			for i := range o {
				o[i] = float32(math.NaN())
			}
		}
		return out, nil
	}
	count := len(xv) / len(o)
	if count == 1 {
		copy(o, xv) // only dimensions of size 1 were named
		return out, nil
	}
	scale := 1.0
	if op == tensor.Mean {
		scale = 1 / float64(count)
	}
	p := newEwPlan(x.Shape, ewStrides(x.Shape, x.Shape), ewStrides(shape, x.Shape))
	b.redInto(o, p, 1, scale,
		func(off []int, n int) float64 { return redSum(xv[off[0] : off[0]+n]) },
		func(off []int, n int, to []float64) {
			to = to[:n]
			for i, v := range xv[off[0] : off[0]+n] {
				to[i] += float64(v)
			}
		})
	return out, nil
}

// ReduceBackward implements tensor.Backend. dy may have any shape that broadcasts to
// shape (Reduce's output keeps the reduced dimensions with size 1, so it does).
func (b *Backend) ReduceBackward(op tensor.ReduceOp, dy *tensor.Tensor, shape tensor.Shape) (*tensor.Tensor, error) {
	if err := tensor.ReduceBackwardCheck(op, dy, shape); err != nil {
		return nil, err
	}
	dx := newF(shape)
	o, dv := f32(dx), f32(dy)
	if len(o) == 0 {
		return dx, nil
	}
	scale := 1.0
	if op == tensor.Mean {
		scale = float64(len(dv)) / float64(len(o))
	}
	p := newEwPlan(shape, ewStrides(shape, shape), ewStrides(dy.Shape, shape))
	sd := p.inner(1)
	b.parallel(len(o), func(lo, hi int) {
		p.walk(nil, lo, hi, func(off []int, n int) {
			run := o[off[0] : off[0]+n]
			if sd == 0 {
				v := float32(float64(dv[off[1]]) * scale)
				for i := range run {
					run[i] = v
				}
				return
			}
			src := dv[off[1] : off[1]+n]
			if scale == 1 {
				copy(run, src)
				return
			}
			for i, v := range src {
				run[i] = float32(float64(v) * scale)
			}
		})
	})
	return dx, nil
}

// redInto sets every element of dst (the target, operand tgt of p, contiguous) to
// scale times the sum of the values at the positions of p that read it, that is the
// positions that differ only along the dimensions where the target's stride is 0.
// sum returns the sum of the values along a run of the innermost dimension when the
// target is constant along it; acc adds them to to[0:n] when the target advances along
// it with stride 1. Every value is visited once, the order of the float64 partial sums
// is fixed, so results do not depend on timing.
func (b *Backend) redInto(dst []float32, p *ewPlan, tgt int, scale float64,
	sum func(off []int, n int) float64, acc func(off []int, n int, to []float64)) {
	kept := p.subPlan(func(d int) bool { return p.st[tgt][d] != 0 })
	red := p.subPlan(func(d int) bool { return p.st[tgt][d] == 0 })
	T, R := len(dst), red.size()
	workers := max(1, min(b.threads, T*R/redGrain))
	last := len(p.dims) - 1

	if p.st[tgt][last] == 0 {
		// The innermost dimension is summed. Ordering the space as (kept..., summed...)
		// makes target o own the flat positions [o·R, (o+1)·R): a goroutine walks its
		// targets' positions in one go and flushes a sum whenever the target changes.
		// With fewer targets than goroutines each target's range is cut into parts.
		all := &ewPlan{dims: append(append([]int(nil), kept.dims...), red.dims...), st: make([][]int, len(p.st))}
		for k := range p.st {
			all.st[k] = append(append([]int(nil), kept.st[k]...), red.st[k]...)
		}
		parts := 1
		if T < workers {
			parts = min(R, (workers+T-1)/T)
		}
		partial := make([]float64, T*parts)
		b.parallelN(T*parts, workers, func(lo, hi int) {
			if parts == 1 {
				cur, s := -1, 0.0
				all.walk(nil, lo*R, hi*R, func(off []int, n int) {
					if t := off[tgt]; t != cur {
						if cur >= 0 {
							partial[cur] = s
						}
						cur, s = t, 0
					}
					s += sum(off, n)
				})
				if cur >= 0 {
					partial[cur] = s
				}
				return
			}
			for it := lo; it < hi; it++ {
				o, c := it/parts, it%parts
				s := 0.0
				all.walk(nil, o*R+R*c/parts, o*R+R*(c+1)/parts, func(off []int, n int) { s += sum(off, n) })
				partial[it] = s
			}
		})
		for o := range dst {
			s := 0.0
			for _, v := range partial[o*parts : (o+1)*parts] {
				s += v
			}
			dst[o] = float32(s * scale)
		}
		return
	}

	// The innermost dimension is kept: every summed position adds a row of K values to
	// K consecutive targets. Work is split over the outer kept positions, then over
	// column blocks, then (for few, narrow rows) over the summed positions.
	K := p.dims[last]
	outer := kept.subPlan(func(d int) bool { return d < len(kept.dims)-1 })
	G := outer.size()
	cols := 1
	if G < workers {
		cols = max(1, min((workers+G-1)/G, K/redMinCols))
	}
	parts := 1
	if G*cols < workers {
		parts = min(R, (workers+G*cols-1)/(G*cols))
	}
	partial := make([]float64, parts*T)
	rl := len(red.dims) - 1
	b.parallelN(G*cols*parts, workers, func(lo, hi int) {
		base := make([]int, len(p.st))
		at := make([]int, len(p.st))
		for it := lo; it < hi; it++ {
			g, rest := it/(cols*parts), it%(cols*parts)
			cc, c := rest/parts, rest%parts
			c0, c1 := K*cc/cols, K*(cc+1)/cols
			outer.offsets(g, nil, base)
			for k := range base {
				base[k] += c0 * p.st[k][last]
			}
			to := partial[c*T : (c+1)*T]
			red.walk(base, R*c/parts, R*(c+1)/parts, func(off []int, n int) {
				for t := 0; t < n; t++ {
					for k := range at {
						at[k] = off[k] + t*red.st[k][rl]
					}
					acc(at, c1-c0, to[at[tgt]:])
				}
			})
		}
	})
	for o := range dst {
		s := 0.0
		for c := 0; c < parts; c++ {
			s += partial[c*T+o]
		}
		dst[o] = float32(s * scale)
	}
}

// subPlan is the space of p's dimensions for which keep holds, in order, with every
// operand's strides; one placeholder dimension of size 1 if none does.
func (p *ewPlan) subPlan(keep func(d int) bool) *ewPlan {
	s := &ewPlan{st: make([][]int, len(p.st))}
	for d, n := range p.dims {
		if n == 1 || !keep(d) {
			continue
		}
		s.dims = append(s.dims, n)
		for k := range p.st {
			s.st[k] = append(s.st[k], p.st[k][d])
		}
	}
	s.fill()
	return s
}

// redSum is Σ x in float64, with four accumulators so that the additions do not wait
// on one another.
func redSum(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		s0 += float64(v[0])
		s1 += float64(v[1])
		s2 += float64(v[2])
		s3 += float64(v[3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// redDot is Σ x·y in float64 (len(y) >= len(x)).
func redDot(x, y []float32) float64 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v, w := x[i:i+4:i+4], y[i:i+4:i+4]
		s0 += float64(v[0]) * float64(w[0])
		s1 += float64(v[1]) * float64(w[1])
		s2 += float64(v[2]) * float64(w[2])
		s3 += float64(v[3]) * float64(w[3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i]) * float64(y[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// redDotDiv is Σ x/y in float64 (len(y) >= len(x)).
func redDotDiv(x, y []float32) float64 {
	y = y[:len(x)]
	var s float64
	for i, v := range x {
		s += float64(v) / float64(y[i])
	}
	return s
}
