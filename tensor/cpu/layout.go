package cpu

import (
	"fmt"

	"github.com/edgedepth/edgedepth/tensor"
)

// Concat, Slice and SliceBackward view a tensor around an axis as rows: the dimensions
// before the axis are the row index, the axis and everything after it one contiguous
// row. Each op is then a sequence of copies between rows, split across goroutines by
// output position so that any mix of few long rows and many short ones parallelises.

// layRows returns the number of rows and the elements per index of axis (the product of
// the dimensions after it).
func layRows(shape tensor.Shape, axis int) (rows, inner int) {
	rows, inner = 1, 1
	for d, n := range shape {
		switch {
		case d < axis:
			rows *= n
		case d > axis:
			inner *= n
		}
	}
	return rows, inner
}

// Concat implements tensor.Backend.
func (b *Backend) Concat(axis int, xs ...*tensor.Tensor) (*tensor.Tensor, error) {
	const name = "concat"
	if len(xs) == 0 {
		return nil, fmt.Errorf("%s: no tensors", name)
	}
	if err := tensor.CheckFloat(name, xs...); err != nil {
		return nil, err
	}
	ax, err := tensor.NormAxis(name, xs[0], axis)
	if err != nil {
		return nil, err
	}
	shape := xs[0].Shape.Clone()
	for _, x := range xs[1:] {
		if len(x.Shape) != len(shape) {
			return nil, tensor.ShapeError(name, "ranks differ", xs...)
		}
		for d, n := range x.Shape {
			if d != ax && n != shape[d] {
				return nil, tensor.ShapeError(name, fmt.Sprintf("dimension %d differs (concatenating along %d)", d, ax), xs...)
			}
		}
		shape[ax] += x.Shape[ax]
	}
	out := newF(shape)
	o := f32(out)
	if len(o) == 0 {
		return out, nil
	}
	rows, inner := layRows(shape, ax)
	rowOut := len(o) / rows
	// Input i fills columns [start[i], start[i]+width[i]) of every output row.
	start, width := make([]int, len(xs)), make([]int, len(xs))
	src := make([][]float32, len(xs))
	col := 0
	for i, x := range xs {
		start[i], width[i], src[i] = col, x.Shape[ax]*inner, f32(x)
		col += width[i]
	}
	b.parallel(len(o), func(lo, hi int) {
		i := 0
		for pos := lo; pos < hi; {
			row, col := pos/rowOut, pos%rowOut
			for col >= start[i]+width[i] || col < start[i] {
				i = (i + 1) % len(xs) // inputs of width 0 are passed over
			}
			within := col - start[i]
			n := min(width[i]-within, hi-pos)
			copy(o[pos:pos+n], src[i][row*width[i]+within:])
			pos += n
		}
	})
	return out, nil
}

// Slice implements tensor.Backend. 0 <= start <= end <= the axis's size.
func (b *Backend) Slice(x *tensor.Tensor, axis, start, end int) (*tensor.Tensor, error) {
	const name = "slice"
	if err := tensor.CheckFloat(name, x); err != nil {
		return nil, err
	}
	ax, err := tensor.NormAxis(name, x, axis)
	if err != nil {
		return nil, err
	}
	if start < 0 || end < start || end > x.Shape[ax] {
		return nil, tensor.ShapeError(name, fmt.Sprintf("range [%d:%d] outside dimension %d of size %d", start, end, ax, x.Shape[ax]), x)
	}
	shape := x.Shape.Clone()
	shape[ax] = end - start
	out := newF(shape)
	o, xv := f32(out), f32(x)
	if len(o) == 0 {
		return out, nil
	}
	rows, inner := layRows(shape, ax)
	rowOut, rowIn := len(o)/rows, x.Shape[ax]*inner
	b.parallel(len(o), func(lo, hi int) {
		for pos := lo; pos < hi; {
			row, col := pos/rowOut, pos%rowOut
			n := min(rowOut-col, hi-pos)
			copy(o[pos:pos+n], xv[row*rowIn+start*inner+col:])
			pos += n
		}
	})
	return out, nil
}

// SliceBackward implements tensor.Backend.
func (b *Backend) SliceBackward(dy *tensor.Tensor, shape tensor.Shape, axis, start int) (*tensor.Tensor, error) {
	const name = "slice backward"
	if err := tensor.CheckFloat(name, dy); err != nil {
		return nil, err
	}
	if err := checkDims(name, shape); err != nil {
		return nil, err
	}
	target := &tensor.Tensor{Shape: shape}
	ax, err := tensor.NormAxis(name, target, axis)
	if err != nil {
		return nil, err
	}
	if len(dy.Shape) != len(shape) {
		return nil, tensor.ShapeError(name, "dy and the input differ in rank", dy, target)
	}
	for d, n := range shape {
		if d != ax && dy.Shape[d] != n {
			return nil, tensor.ShapeError(name, fmt.Sprintf("dimension %d differs", d), dy, target)
		}
	}
	if start < 0 || start+dy.Shape[ax] > shape[ax] {
		return nil, tensor.ShapeError(name, fmt.Sprintf("range [%d:%d] outside dimension %d of size %d", start, start+dy.Shape[ax], ax, shape[ax]), dy, target)
	}
	dx := newF(shape) // zeros outside the slice
	o, dv := f32(dx), f32(dy)
	if len(dv) == 0 {
		return dx, nil
	}
	rows, inner := layRows(shape, ax)
	rowIn, rowOut := len(dv)/rows, len(o)/rows
	b.parallel(len(dv), func(lo, hi int) {
		for pos := lo; pos < hi; {
			row, col := pos/rowIn, pos%rowIn
			n := min(rowIn-col, hi-pos)
			copy(o[row*rowOut+start*inner+col:], dv[pos:pos+n])
			pos += n
		}
	})
	return dx, nil
}
