package cpu

import (
	"fmt"

	"github.com/edgedepth/edgedepth/tensor"
)

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

// imgInShape turns the input shape a backward kernel was given into a tensor for error
// messages, after checking that it is an image shape (4 dimensions, none negative).
func imgInShape(op string, dy *tensor.Tensor, inShape tensor.Shape) (*tensor.Tensor, error) {
	in := &tensor.Tensor{Shape: inShape}
	if len(inShape) != 4 {
		return nil, tensor.ShapeError(op, "input shape must have 4 dimensions", dy, in)
	}
	for _, d := range inShape {
		if d < 0 {
			return nil, tensor.ShapeError(op, "negative dimension in the input shape", dy, in)
		}
	}
	if err := tensor.CheckRank(op, dy, 4); err != nil {
		return nil, err
	}
	if dy.Shape[0] != inShape[0] || dy.Shape[1] != inShape[1] {
		return nil, tensor.ShapeError(op, "batch and channels of the gradient and the input differ", dy, in)
	}
	return in, nil
}

// Pad2D implements tensor.Backend. Every output row is built whole by one goroutine:
// the middle is a copy of an input row (a reflected one in the top and bottom bands) and
// the side bands are zeros or that row read backwards.
func (b *Backend) Pad2D(x *tensor.Tensor, p tensor.Pad2DParams) (*tensor.Tensor, error) {
	const op = "pad2d"
	if err := tensor.CheckFloat(op, x); err != nil {
		return nil, err
	}
	if p.Mode != tensor.PadZero && p.Mode != tensor.PadReflect {
		return nil, fmt.Errorf("%s: unknown pad mode %d", op, p.Mode)
	}
	shape, err := tensor.Pad2DShape(x, p)
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
	const op = "pad2dbackward"
	if err := tensor.CheckFloat(op, dy); err != nil {
		return nil, err
	}
	if p.Mode != tensor.PadZero && p.Mode != tensor.PadReflect {
		return nil, fmt.Errorf("%s: unknown pad mode %d", op, p.Mode)
	}
	if p.Top < 0 || p.Bottom < 0 || p.Left < 0 || p.Right < 0 {
		return nil, fmt.Errorf("%s: negative padding %+v", op, p)
	}
	if len(dy.Shape) < 2 {
		return nil, tensor.ShapeError(op, "want at least 2 dimensions", dy)
	}
	r := len(dy.Shape)
	oh, ow := dy.Shape[r-2], dy.Shape[r-1]
	h, w := oh-p.Top-p.Bottom, ow-p.Left-p.Right
	if h < 0 || w < 0 {
		return nil, tensor.ShapeError(op, fmt.Sprintf("padding %+v is larger than the gradient", p), dy)
	}
	reflect := p.Mode == tensor.PadReflect
	if reflect && (p.Top >= h || p.Bottom >= h || p.Left >= w || p.Right >= w) {
		return nil, tensor.ShapeError(op, fmt.Sprintf("reflection padding %+v needs a larger input than %dx%d", p, h, w), dy)
	}
	shape := dy.Shape.Clone()
	shape[r-2], shape[r-1] = h, w
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
