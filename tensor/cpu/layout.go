package cpu

import "github.com/edgedepth/edgedepth/tensor"

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
	shape, ax, err := tensor.ConcatShape(axis, xs...)
	if err != nil {
		return nil, err
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
	shape, ax, err := tensor.SliceShape(x, axis, start, end)
	if err != nil {
		return nil, err
	}
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
	ax, err := tensor.SliceBackwardCheck(dy, shape, axis, start)
	if err != nil {
		return nil, err
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
