package cuda

import (
	"fmt"
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
	const name = "adam"
	if err := tensor.CheckFloat(name, param, grad, m, v); err != nil {
		return err
	}
	if err := tensor.SameShape(name, param, grad, m, v); err != nil {
		return err
	}
	if p.Step < 1 {
		return fmt.Errorf("%s: step %d, want 1 or more (steps count from 1)", name, p.Step)
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
