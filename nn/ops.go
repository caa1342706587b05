package nn

import (
	"github.com/edgedepth/edgedepth/tensor"
)

// The differentiable ops of a Tape: each runs the backend's forward kernel now and
// records its backward kernel for Backward. On error every op returns nil (see Tape).

// grads keeps the tensors a backward kernel made and accumulates them into vs.
func (t *Tape) grads(vs []*Var, gs ...*tensor.Tensor) error {
	for i, g := range gs {
		t.keep(g)
		if err := t.accumulate(vs[i], g); err != nil {
			return err
		}
	}
	return nil
}

// Unary applies an element-wise function.
func (t *Tape) Unary(op tensor.UnaryOp, x *Var) *Var {
	if !t.ok(op.String(), x) {
		return nil
	}
	y, err := t.B.Unary(op, x.Value)
	if err != nil {
		return t.fail(err)
	}
	return t.record(y, func(dy *tensor.Tensor) error {
		dx, err := t.B.UnaryBackward(op, x.Value, y, dy)
		if err != nil {
			return err
		}
		return t.grads([]*Var{x}, dx)
	}, x)
}

// Affine returns x*scale + shift.
func (t *Tape) Affine(x *Var, scale, shift float32) *Var {
	if !t.ok("affine", x) {
		return nil
	}
	y, err := t.B.Affine(x.Value, scale, shift)
	if err != nil {
		return t.fail(err)
	}
	return t.record(y, func(dy *tensor.Tensor) error {
		dx, err := t.B.Affine(dy, scale, 0)
		if err != nil {
			return err
		}
		return t.grads([]*Var{x}, dx)
	}, x)
}

// Binary applies an element-wise function of two broadcast operands.
func (t *Tape) Binary(op tensor.BinaryOp, a, b *Var) *Var {
	if !t.ok(op.String(), a, b) {
		return nil
	}
	y, err := t.B.Binary(op, a.Value, b.Value)
	if err != nil {
		return t.fail(err)
	}
	return t.record(y, func(dy *tensor.Tensor) error {
		da, db, err := t.B.BinaryBackward(op, a.Value, b.Value, dy, a.NeedsGrad(), b.NeedsGrad())
		if err != nil {
			return err
		}
		return t.grads([]*Var{a, b}, da, db)
	}, a, b)
}

// Add returns a + b (broadcast).
func (t *Tape) Add(a, b *Var) *Var { return t.Binary(tensor.Add, a, b) }

// Sub returns a - b (broadcast).
func (t *Tape) Sub(a, b *Var) *Var { return t.Binary(tensor.Sub, a, b) }

// Mul returns a * b (broadcast).
func (t *Tape) Mul(a, b *Var) *Var { return t.Binary(tensor.Mul, a, b) }

// Div returns a / b (broadcast).
func (t *Tape) Div(a, b *Var) *Var { return t.Binary(tensor.Div, a, b) }

// Reduce sums or averages over axes (all axes when none are given), keeping them.
func (t *Tape) Reduce(op tensor.ReduceOp, x *Var, axes ...int) *Var {
	if !t.ok(op.String(), x) {
		return nil
	}
	y, err := t.B.Reduce(op, x.Value, axes...)
	if err != nil {
		return t.fail(err)
	}
	shape := x.Value.Shape.Clone()
	return t.record(y, func(dy *tensor.Tensor) error {
		dx, err := t.B.ReduceBackward(op, dy, shape)
		if err != nil {
			return err
		}
		return t.grads([]*Var{x}, dx)
	}, x)
}

// Mean averages over axes (all axes when none are given), keeping them.
func (t *Tape) Mean(x *Var, axes ...int) *Var { return t.Reduce(tensor.Mean, x, axes...) }

// Sum sums over axes (all axes when none are given), keeping them.
func (t *Tape) Sum(x *Var, axes ...int) *Var { return t.Reduce(tensor.Sum, x, axes...) }

// Reshape returns x with a new shape (no copy).
func (t *Tape) Reshape(x *Var, shape ...int) *Var {
	if !t.ok("reshape", x) {
		return nil
	}
	y, err := x.Value.Reshape(shape...)
	if err != nil {
		return t.fail(err)
	}
	in := x.Value.Shape.Clone()
	// Not kept: the buffer belongs to x's value.
	out := &Var{Value: y, needGrad: x.NeedsGrad() && !t.NoGrad}
	if out.needGrad {
		t.steps = append(t.steps, step{out: out, view: true, backward: func(dy *tensor.Tensor) error {
			dx, err := dy.Reshape(in...)
			if err != nil {
				return err
			}
			return t.accumulate(x, dx)
		}})
	}
	return out
}

// Concat joins vars along axis.
func (t *Tape) Concat(axis int, xs ...*Var) *Var {
	if !t.ok("concat", xs...) {
		return nil
	}
	vals := make([]*tensor.Tensor, len(xs))
	for i, x := range xs {
		vals[i] = x.Value
	}
	y, err := t.B.Concat(axis, vals...)
	if err != nil {
		return t.fail(err)
	}
	return t.record(y, func(dy *tensor.Tensor) error {
		start := 0
		ax := axis
		if ax < 0 {
			ax += len(dy.Shape)
		}
		for _, x := range xs {
			n := x.Value.Shape[ax]
			if x.NeedsGrad() {
				dx, err := t.B.Slice(dy, ax, start, start+n)
				if err != nil {
					return err
				}
				if err := t.grads([]*Var{x}, dx); err != nil {
					return err
				}
			}
			start += n
		}
		return nil
	}, xs...)
}

// Slice returns x[start:end] along axis.
func (t *Tape) Slice(x *Var, axis, start, end int) *Var {
	if !t.ok("slice", x) {
		return nil
	}
	y, err := t.B.Slice(x.Value, axis, start, end)
	if err != nil {
		return t.fail(err)
	}
	shape := x.Value.Shape.Clone()
	return t.record(y, func(dy *tensor.Tensor) error {
		dx, err := t.B.SliceBackward(dy, shape, axis, start)
		if err != nil {
			return err
		}
		return t.grads([]*Var{x}, dx)
	}, x)
}

// MatMul multiplies the last two dimensions (see tensor.Backend.MatMul).
func (t *Tape) MatMul(a, b *Var, transA, transB bool) *Var {
	if !t.ok("matmul", a, b) {
		return nil
	}
	y, err := t.B.MatMul(a.Value, b.Value, transA, transB)
	if err != nil {
		return t.fail(err)
	}
	return t.record(y, func(dy *tensor.Tensor) error {
		da, db, err := t.B.MatMulBackward(a.Value, b.Value, dy, transA, transB, a.NeedsGrad(), b.NeedsGrad())
		if err != nil {
			return err
		}
		return t.grads([]*Var{a, b}, da, db)
	}, a, b)
}

// Conv2D convolves x with w and adds bias (nil for none).
func (t *Tape) Conv2D(x, w, bias *Var, p tensor.Conv2DParams) *Var {
	in := []*Var{x, w}
	var bv *tensor.Tensor
	if bias != nil {
		in = append(in, bias)
		bv = bias.Value
	}
	if !t.ok("conv2d", in...) {
		return nil
	}
	y, err := t.B.Conv2D(x.Value, w.Value, bv, p)
	if err != nil {
		return t.fail(err)
	}
	return t.record(y, func(dy *tensor.Tensor) error {
		dx, dw, db, err := t.B.Conv2DBackward(x.Value, w.Value, dy, p, x.NeedsGrad(), bias.NeedsGrad())
		if err != nil {
			return err
		}
		if err := t.grads([]*Var{x, w}, dx, dw); err != nil {
			return err
		}
		if bias != nil {
			return t.grads([]*Var{bias}, db)
		}
		return nil
	}, in...)
}

// Pad2D pads the last two dimensions.
func (t *Tape) Pad2D(x *Var, p tensor.Pad2DParams) *Var {
	if !t.ok("pad2d", x) {
		return nil
	}
	y, err := t.B.Pad2D(x.Value, p)
	if err != nil {
		return t.fail(err)
	}
	return t.record(y, func(dy *tensor.Tensor) error {
		dx, err := t.B.Pad2DBackward(dy, p)
		if err != nil {
			return err
		}
		return t.grads([]*Var{x}, dx)
	}, x)
}

// BatchNorm normalises x per channel (see tensor.Backend.BatchNorm); with
// p.Training the running statistics are updated in place.
func (t *Tape) BatchNorm(x, gamma, beta *Var, runMean, runVar *tensor.Tensor, p tensor.BatchNormParams) *Var {
	if !t.ok("batchnorm", x, gamma, beta) {
		return nil
	}
	y, mean, invStd, err := t.B.BatchNorm(x.Value, gamma.Value, beta.Value, runMean, runVar, p)
	if err != nil {
		return t.fail(err)
	}
	t.keep(mean)
	t.keep(invStd)
	return t.record(y, func(dy *tensor.Tensor) error {
		dx, dg, db, err := t.B.BatchNormBackward(x.Value, gamma.Value, mean, invStd, dy, p.Training)
		if err != nil {
			return err
		}
		return t.grads([]*Var{x, gamma, beta}, dx, dg, db)
	}, x, gamma, beta)
}

// MaxPool2D takes the maximum over windows.
func (t *Tape) MaxPool2D(x *Var, p tensor.Pool2DParams) *Var {
	if !t.ok("maxpool2d", x) {
		return nil
	}
	y, argmax, err := t.B.MaxPool2D(x.Value, p)
	if err != nil {
		return t.fail(err)
	}
	t.keep(argmax)
	shape := x.Value.Shape.Clone()
	return t.record(y, func(dy *tensor.Tensor) error {
		dx, err := t.B.MaxPool2DBackward(dy, argmax, shape)
		if err != nil {
			return err
		}
		return t.grads([]*Var{x}, dx)
	}, x)
}

// AvgPool2D averages over windows.
func (t *Tape) AvgPool2D(x *Var, p tensor.Pool2DParams) *Var {
	if !t.ok("avgpool2d", x) {
		return nil
	}
	y, err := t.B.AvgPool2D(x.Value, p)
	if err != nil {
		return t.fail(err)
	}
	shape := x.Value.Shape.Clone()
	return t.record(y, func(dy *tensor.Tensor) error {
		dx, err := t.B.AvgPool2DBackward(dy, shape, p)
		if err != nil {
			return err
		}
		return t.grads([]*Var{x}, dx)
	}, x)
}

// UpsampleNearest repeats pixels factor times in both directions.
func (t *Tape) UpsampleNearest(x *Var, factor int) *Var {
	if !t.ok("upsample", x) {
		return nil
	}
	y, err := t.B.UpsampleNearest(x.Value, factor)
	if err != nil {
		return t.fail(err)
	}
	return t.record(y, func(dy *tensor.Tensor) error {
		dx, err := t.B.UpsampleNearestBackward(dy, factor)
		if err != nil {
			return err
		}
		return t.grads([]*Var{x}, dx)
	}, x)
}

// ResizeBilinear resizes to (h, w) with align_corners=False.
func (t *Tape) ResizeBilinear(x *Var, h, w int) *Var {
	if !t.ok("resize", x) {
		return nil
	}
	y, err := t.B.ResizeBilinear(x.Value, h, w)
	if err != nil {
		return t.fail(err)
	}
	shape := x.Value.Shape.Clone()
	return t.record(y, func(dy *tensor.Tensor) error {
		dx, err := t.B.ResizeBilinearBackward(dy, shape)
		if err != nil {
			return err
		}
		return t.grads([]*Var{x}, dx)
	}, x)
}

// GridSample samples src bilinearly at pixel coordinates (see
// tensor.Backend.GridSample).
func (t *Tape) GridSample(src, coords *Var) *Var {
	if !t.ok("gridsample", src, coords) {
		return nil
	}
	y, err := t.B.GridSample(src.Value, coords.Value)
	if err != nil {
		return t.fail(err)
	}
	return t.record(y, func(dy *tensor.Tensor) error {
		ds, dc, err := t.B.GridSampleBackward(src.Value, coords.Value, dy, src.NeedsGrad(), coords.NeedsGrad())
		if err != nil {
			return err
		}
		return t.grads([]*Var{src, coords}, ds, dc)
	}, src, coords)
}

// PhotometricMin is the per-pixel minimum of the photometric errors of candidates
// against target plus offset (nil for none); see tensor.Backend.PhotometricMin. No
// gradient flows to target or offset.
func (t *Tape) PhotometricMin(target *Var, candidates []*Var, offset *Var) *Var {
	in := append([]*Var{target}, candidates...)
	var off *tensor.Tensor
	if offset != nil {
		in = append(in, offset)
		off = offset.Value
	}
	if !t.ok("photometric", in...) {
		return nil
	}
	candidates = append([]*Var(nil), candidates...) // the backward closure keeps them
	cands := make([]*tensor.Tensor, len(candidates))
	for i, c := range candidates {
		cands[i] = c.Value
	}
	y, argmin, err := t.B.PhotometricMin(target.Value, cands, off)
	if err != nil {
		return t.fail(err)
	}
	t.keep(argmin)
	return t.record(y, func(dy *tensor.Tensor) error {
		need := make([]bool, len(candidates))
		for i, c := range candidates {
			need[i] = c.NeedsGrad()
		}
		gs, err := t.B.PhotometricMinBackward(target.Value, cands, argmin, dy, need)
		if err != nil {
			return err
		}
		return t.grads(candidates, gs...)
	}, candidates...)
}

// Full makes a constant filled with v.
func (t *Tape) Full(v float32, shape ...int) *Var {
	if t.err != nil {
		return nil
	}
	x, err := t.B.Full(v, shape...)
	if err != nil {
		return t.fail(err)
	}
	return t.Const(t.keep(x))
}

// FromHost makes a constant holding data.
func (t *Tape) FromHost(data []float32, shape ...int) *Var {
	if t.err != nil {
		return nil
	}
	x, err := t.B.FromHost(data, shape...)
	if err != nil {
		return t.fail(err)
	}
	return t.Const(t.keep(x))
}
