package cuda

import (
	"math"

	"github.com/edgedepth/edgedepth/tensor"
)

// Concat, Slice and SliceBackward view a tensor around an axis as rows: the dimensions
// before the axis index the rows, the axis and everything after it make one contiguous
// row. Each op is then one strided copy of a block of columns per operand.

// layRows returns the number of rows and the elements per index of axis.
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

// copyRows copies rows×cols elements between row-strided blocks (owner).
func (b *Backend) copyRows(dst devptr, dstStride int, src devptr, srcStride int, rows, cols int) error {
	n := int64(rows) * int64(cols)
	if n == 0 {
		return nil
	}
	if dstStride == cols && srcStride == cols {
		return cuMemcpyDtoD(dst, src, int(n), b.stream)
	}
	return b.launch1D(layoutFamily, "copy_rows", n, new(kargs).ptr(dst).i64(int64(dstStride)).ptr(src).i64(int64(srcStride)).i64(int64(rows)).i64(int64(cols)))
}

// Concat implements tensor.Backend.
func (b *Backend) Concat(axis int, xs ...*tensor.Tensor) (*tensor.Tensor, error) {
	shape, ax, err := tensor.ConcatShape(axis, xs...)
	if err != nil {
		return nil, err
	}
	var out *tensor.Tensor
	err = b.run(func() error {
		var err error
		if out, err = b.newTensor(tensor.Float32, shape); err != nil {
			return err
		}
		rows, inner := layRows(shape, ax)
		rowOut := shape[ax] * inner
		col := 0
		for _, x := range xs {
			w := x.Shape[ax] * inner
			if err := b.copyRows(b.ptr(out).at(col), rowOut, b.ptr(x), w, rows, w); err != nil {
				return err
			}
			col += w
		}
		return nil
	})
	if err != nil {
		b.discard(out)
		return nil, err
	}
	return out, nil
}

// Slice implements tensor.Backend. 0 <= start <= end <= the axis's size.
func (b *Backend) Slice(x *tensor.Tensor, axis, start, end int) (*tensor.Tensor, error) {
	shape, ax, err := tensor.SliceShape(x, axis, start, end)
	if err != nil {
		return nil, err
	}
	var out *tensor.Tensor
	err = b.run(func() error {
		var err error
		if out, err = b.newTensor(tensor.Float32, shape); err != nil {
			return err
		}
		rows, inner := layRows(shape, ax)
		w := shape[ax] * inner
		return b.copyRows(b.ptr(out), w, b.ptr(x).at(start*inner), x.Shape[ax]*inner, rows, w)
	})
	if err != nil {
		b.discard(out)
		return nil, err
	}
	return out, nil
}

// SliceBackward implements tensor.Backend.
func (b *Backend) SliceBackward(dy *tensor.Tensor, shape tensor.Shape, axis, start int) (*tensor.Tensor, error) {
	ax, err := tensor.SliceBackwardCheck(dy, shape, axis, start)
	if err != nil {
		return nil, err
	}
	var dx *tensor.Tensor
	err = b.run(func() error {
		var err error
		if dx, err = b.newTensor(tensor.Float32, shape); err != nil {
			return err
		}
		if err := cuMemsetD32(b.ptr(dx), 0, dx.Len(), b.stream); err != nil {
			return err
		}
		rows, inner := layRows(shape, ax)
		w := dy.Shape[ax] * inner
		return b.copyRows(b.ptr(dx).at(start*inner), shape[ax]*inner, b.ptr(dy), w, rows, w)
	})
	if err != nil {
		b.discard(dx)
		return nil, err
	}
	return dx, nil
}

// AdamStep implements tensor.Backend, following torch.optim.Adam (amsgrad off) with the
// bias corrections computed once in float64 as PyTorch computes them in Python floats.
func (b *Backend) AdamStep(param, grad, m, v *tensor.Tensor, p tensor.AdamParams) error {
	if err := tensor.AdamCheck(param, grad, m, v, p); err != nil {
		return err
	}
	bc1 := 1 - math.Pow(float64(p.Beta1), float64(p.Step))
	bc2 := 1 - math.Pow(float64(p.Beta2), float64(p.Step))
	stepSize := float32(float64(p.LR) / bc1)
	bc2Sqrt := float32(math.Sqrt(bc2))
	c1, c2 := float32(1-float64(p.Beta1)), float32(1-float64(p.Beta2))
	n := int64(param.Len())
	args := new(kargs).ptr(b.ptr(param)).ptr(b.ptr(grad)).ptr(b.ptr(m)).ptr(b.ptr(v)).i64(n).
		f32(p.Beta1).f32(p.Beta2).f32(c1).f32(c2).f32(p.WeightDecay).f32(p.Eps).f32(stepSize).f32(bc2Sqrt)
	return b.run(func() error { return b.launch1D(adamFamily, "adam_step", n, args) })
}
