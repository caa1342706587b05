package cpu

import "github.com/edgedepth/edgedepth/tensor"

// imgGrain is roughly how many elements one goroutine of an image op should touch:
// these ops do a few flops per element, so a goroutine (about a microsecond) pays off
// only over some ten microseconds of memory traffic.
const imgGrain = 1 << 14

// imgSplit runs fn over [0, n) where each item (an image row or plane) touches about
// cost elements. b.parallel's chunk rule counts iterations and would leave a loop over
// a few large rows or planes on one goroutine; this one counts elements instead.
func (b *Backend) imgSplit(n, cost int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	b.parallelN(n, max(n*max(cost, 1)/imgGrain, 1), fn)
}

// Pad2D implements tensor.Backend. Every output row is built whole by one goroutine:
// the middle is a copy of an input row (a reflected one in the top and bottom bands) and
// the side bands are zeros or that row read backwards.
func (b *Backend) Pad2D(x *tensor.Tensor, p tensor.Pad2DParams) (*tensor.Tensor, error) {
	shape, err := tensor.Pad2DCheck(x, p)
	if err != nil {
		return nil, err
	}
	r := len(shape)
	h, w := x.Shape[r-2], x.Shape[r-1]
	oh, ow := shape[r-2], shape[r-1]
	planes := tensor.Shape(shape[:r-2]).Len()
	reflect := p.Mode == tensor.PadReflect
	y := newF(shape)
	src, dst := f32(x), f32(y)
	b.imgSplit(planes*oh, ow, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			pl, iy := row/oh, row%oh-p.Top
			if iy < 0 || iy >= h {
				if !reflect {
					continue // newF zeroed it
				}
				// Pad2DShape keeps the padding below the size, so one mirror suffices.
				if iy < 0 {
					iy = -iy
				} else {
					iy = 2*(h-1) - iy
				}
			}
			in := src[(pl*h+iy)*w:][:w]
			out := dst[row*ow:][:ow]
			copy(out[p.Left:], in)
			if reflect {
				for k := 1; k <= p.Left; k++ {
					out[p.Left-k] = in[k]
				}
				for k := 1; k <= p.Right; k++ {
					out[p.Left+w-1+k] = in[w-1-k]
				}
			}
		}
	})
	return y, nil
}

// Pad2DBackward implements tensor.Backend. It gathers rather than scatters so that
// input rows can be split over goroutines without races: input row iy receives the
// output row in front of it and, with reflection, the (at most two) rows mirrored
// onto it, each folded along the columns the same way.
func (b *Backend) Pad2DBackward(dy *tensor.Tensor, p tensor.Pad2DParams) (*tensor.Tensor, error) {
	shape, err := tensor.Pad2DBackwardShape(dy, p)
	if err != nil {
		return nil, err
	}
	r := len(shape)
	h, w, oh, ow := shape[r-2], shape[r-1], dy.Shape[r-2], dy.Shape[r-1]
	reflect := p.Mode == tensor.PadReflect
	planes := tensor.Shape(shape[:r-2]).Len()
	dx := newF(shape)
	g, d := f32(dy), f32(dx)
	// fold adds one padded row to an input row: its middle, and with reflection the
	// side bands mirrored back (column Left-k came from k, Left+w-1+k from w-1-k).
	fold := func(out, row []float32) {
		for j, v := range row[p.Left:][:w] {
			out[j] += v
		}
		if reflect {
			for k := 1; k <= p.Left; k++ {
				out[k] += row[p.Left-k]
			}
			for k := 1; k <= p.Right; k++ {
				out[w-1-k] += row[p.Left+w-1+k]
			}
		}
	}
	b.imgSplit(planes*h, 3*ow, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			pl, iy := row/h, row%h
			out := d[row*w:][:w]
			plane := g[pl*oh*ow:][:oh*ow]
			fold(out, plane[(iy+p.Top)*ow:][:ow])
			if !reflect {
				continue
			}
			if iy >= 1 && iy <= p.Top {
				fold(out, plane[(p.Top-iy)*ow:][:ow])
			}
			if iy <= h-2 && iy >= h-1-p.Bottom {
				fold(out, plane[(p.Top+2*(h-1)-iy)*ow:][:ow])
			}
		}
	})
	return dx, nil
}
