package cuda

import (
	"fmt"

	"github.com/edgedepth/edgedepth/tensor"
)

// Padding, batch norm, pooling and resizing (NCHW). The operand checks are tensor's,
// shared with the CPU backend, so both reject the same shapes with the same messages.

// imageOp runs one kernel of imageFamily over total elements into a new tensor of
// shape (the common case of the ops below).
func (b *Backend) imageOp(op string, shape tensor.Shape, kernel string, total int64, fill func(out devptr) *kargs) (*tensor.Tensor, error) {
	var out *tensor.Tensor
	err := b.run(func() error {
		var err error
		if out, err = b.newTensor(tensor.Float32, shape); err != nil {
			return err
		}
		return b.launch1D(imageFamily, kernel, total, fill(b.ptr(out)))
	})
	if err != nil {
		b.discard(out)
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// Pad2D implements tensor.Backend.
func (b *Backend) Pad2D(x *tensor.Tensor, p tensor.Pad2DParams) (*tensor.Tensor, error) {
	const op = "pad2d"
	shape, err := tensor.Pad2DCheck(x, p)
	if err != nil {
		return nil, err
	}
	r := len(shape)
	h, w, oh, ow := x.Shape[r-2], x.Shape[r-1], shape[r-2], shape[r-1]
	total := int64(shape.Len())
	return b.imageOp(op, shape, "pad2d", total, func(out devptr) *kargs {
		return new(kargs).ptr(out).ptr(b.ptr(x)).i64(total).i32(h).i32(w).i32(oh).i32(ow).i32(p.Top).i32(p.Left).i32(boolInt(p.Mode == tensor.PadReflect))
	})
}

// Pad2DBackward implements tensor.Backend.
func (b *Backend) Pad2DBackward(dy *tensor.Tensor, p tensor.Pad2DParams) (*tensor.Tensor, error) {
	const op = "pad2dbackward"
	shape, err := tensor.Pad2DBackwardShape(dy, p)
	if err != nil {
		return nil, err
	}
	r := len(shape)
	h, w, oh, ow := shape[r-2], shape[r-1], dy.Shape[r-2], dy.Shape[r-1]
	reflect := p.Mode == tensor.PadReflect
	total := int64(shape.Len())
	return b.imageOp(op, shape, "pad2d_backward", total, func(out devptr) *kargs {
		return new(kargs).ptr(out).ptr(b.ptr(dy)).i64(total).i32(h).i32(w).i32(oh).i32(ow).
			i32(p.Top).i32(p.Bottom).i32(p.Left).i32(p.Right).i32(boolInt(reflect))
	})
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// BatchNorm implements tensor.Backend.
func (b *Backend) BatchNorm(x, gamma, beta, runMean, runVar *tensor.Tensor, p tensor.BatchNormParams) (y, mean, invStd *tensor.Tensor, err error) {
	const op = "batchnorm"
	if err := tensor.BatchNormCheck(x, gamma, beta, runMean, runVar, p); err != nil {
		return nil, nil, nil, err
	}
	n, c, hw := x.Shape[0], x.Shape[1], x.Shape[2]*x.Shape[3]
	err = b.run(func() error {
		var err error
		if y, err = b.newTensor(tensor.Float32, x.Shape); err != nil {
			return err
		}
		if mean, err = b.newTensor(tensor.Float32, tensor.Shape{c}); err != nil {
			return err
		}
		if invStd, err = b.newTensor(tensor.Float32, tensor.Shape{c}); err != nil {
			return err
		}
		if c == 0 {
			return nil
		}
		scale, err := b.pool.get(4 * int64(c))
		if err != nil {
			return err
		}
		defer b.pool.put(scale)
		args := new(kargs).ptr(b.ptr(mean)).ptr(b.ptr(invStd)).ptr(scale.ptr).ptr(b.ptr(runMean)).ptr(b.ptr(runVar)).
			ptr(b.ptr(x)).ptr(b.ptr(gamma)).i32(n).i32(c).i64(int64(hw)).f64(float64(p.Eps)).f64(float64(p.Momentum)).i32(boolInt(p.Training))
		if err := b.launch(imageFamily, "bn_stats", [3]uint32{uint32(c), 1, 1}, [3]uint32{blockSize, 1, 1}, args); err != nil {
			return err
		}
		total := int64(x.Len())
		return b.launch1D(imageFamily, "bn_apply", total, new(kargs).ptr(b.ptr(y)).ptr(b.ptr(x)).ptr(b.ptr(mean)).ptr(scale.ptr).ptr(b.ptr(beta)).
			i64(total).i32(c).i64(int64(hw)))
	})
	if err != nil {
		b.discard(y, mean, invStd)
		return nil, nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	return y, mean, invStd, nil
}

// BatchNormBackward implements tensor.Backend.
func (b *Backend) BatchNormBackward(x, gamma, mean, invStd, dy *tensor.Tensor, training bool) (dx, dgamma, dbeta *tensor.Tensor, err error) {
	const op = "batchnormbackward"
	if err := tensor.BatchNormBackwardCheck(x, gamma, mean, invStd, dy, training); err != nil {
		return nil, nil, nil, err
	}
	n, c, hw := x.Shape[0], x.Shape[1], x.Shape[2]*x.Shape[3]
	err = b.run(func() error {
		var err error
		if dx, err = b.newTensor(tensor.Float32, x.Shape); err != nil {
			return err
		}
		if dgamma, err = b.newTensor(tensor.Float32, tensor.Shape{c}); err != nil {
			return err
		}
		if dbeta, err = b.newTensor(tensor.Float32, tensor.Shape{c}); err != nil {
			return err
		}
		if c == 0 {
			return nil
		}
		coef, err := b.pool.get(4 * 3 * int64(c))
		if err != nil {
			return err
		}
		defer b.pool.put(coef)
		args := new(kargs).ptr(b.ptr(dgamma)).ptr(b.ptr(dbeta)).ptr(coef.ptr).ptr(b.ptr(x)).ptr(b.ptr(dy)).
			ptr(b.ptr(gamma)).ptr(b.ptr(mean)).ptr(b.ptr(invStd)).i32(n).i32(c).i64(int64(hw))
		if err := b.launch(imageFamily, "bn_grad_sums", [3]uint32{uint32(c), 1, 1}, [3]uint32{blockSize, 1, 1}, args); err != nil {
			return err
		}
		total := int64(x.Len())
		return b.launch1D(imageFamily, "bn_grad_apply", total, new(kargs).ptr(b.ptr(dx)).ptr(b.ptr(x)).ptr(b.ptr(dy)).ptr(b.ptr(mean)).ptr(coef.ptr).
			i64(total).i32(c).i64(int64(hw)).i32(boolInt(training)))
	})
	if err != nil {
		b.discard(dx, dgamma, dbeta)
		return nil, nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	return dx, dgamma, dbeta, nil
}

// poolArgs are the window parameters of the pooling kernels.
func poolArgs(a *kargs, p tensor.Pool2DParams) *kargs {
	return a.i32(p.Kernel[0]).i32(p.Kernel[1]).i32(p.Stride[0]).i32(p.Stride[1]).i32(p.Padding[0]).i32(p.Padding[1])
}

// MaxPool2D implements tensor.Backend.
func (b *Backend) MaxPool2D(x *tensor.Tensor, p tensor.Pool2DParams) (y, argmax *tensor.Tensor, err error) {
	const op = "maxpool2d"
	shape, err := tensor.PoolCheck(op, x, p)
	if err != nil {
		return nil, nil, err
	}
	p = p.Norm()
	err = b.run(func() error {
		var err error
		if y, err = b.newTensor(tensor.Float32, shape); err != nil {
			return err
		}
		if argmax, err = b.newTensor(tensor.Int32, shape); err != nil {
			return err
		}
		total := int64(y.Len())
		args := new(kargs).ptr(b.ptr(y)).ptr(b.ptr(argmax)).ptr(b.ptr(x)).i64(total).i32(x.Shape[2]).i32(x.Shape[3]).i32(shape[2]).i32(shape[3])
		return b.launch1D(imageFamily, "maxpool2d", total, poolArgs(args, p))
	})
	if err != nil {
		b.discard(y, argmax)
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	return y, argmax, nil
}

// MaxPool2DBackward implements tensor.Backend. An argmax index outside the input plane
// (one not made by MaxPool2D) is skipped: checking it would cost a synchronisation.
func (b *Backend) MaxPool2DBackward(dy, argmax *tensor.Tensor, inShape tensor.Shape) (*tensor.Tensor, error) {
	const op = "maxpool2dbackward"
	if err := tensor.MaxPool2DBackwardCheck(dy, argmax, inShape); err != nil {
		return nil, err
	}
	var dx *tensor.Tensor
	err := b.run(func() error {
		var err error
		if dx, err = b.newTensor(tensor.Float32, inShape); err != nil {
			return err
		}
		if err := cuMemsetD32(b.ptr(dx), 0, dx.Len(), b.stream); err != nil {
			return err
		}
		total := int64(dy.Len())
		return b.launch1D(imageFamily, "maxpool2d_backward", total, new(kargs).ptr(b.ptr(dx)).ptr(b.ptr(dy)).ptr(b.ptr(argmax)).
			i64(total).i32(dy.Shape[2]*dy.Shape[3]).i32(inShape[2]*inShape[3]))
	})
	if err != nil {
		b.discard(dx)
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return dx, nil
}

// AvgPool2D implements tensor.Backend.
func (b *Backend) AvgPool2D(x *tensor.Tensor, p tensor.Pool2DParams) (*tensor.Tensor, error) {
	const op = "avgpool2d"
	shape, err := tensor.PoolCheck(op, x, p)
	if err != nil {
		return nil, err
	}
	p = p.Norm()
	total := int64(shape.Len())
	inv := 1 / float32(p.Kernel[0]*p.Kernel[1])
	return b.imageOp(op, shape, "avgpool2d", total, func(out devptr) *kargs {
		a := new(kargs).ptr(out).ptr(b.ptr(x)).i64(total).i32(x.Shape[2]).i32(x.Shape[3]).i32(shape[2]).i32(shape[3])
		return poolArgs(a, p).f32(inv)
	})
}

// AvgPool2DBackward implements tensor.Backend.
func (b *Backend) AvgPool2DBackward(dy *tensor.Tensor, inShape tensor.Shape, p tensor.Pool2DParams) (*tensor.Tensor, error) {
	const op = "avgpool2dbackward"
	want, err := tensor.AvgPool2DBackwardShape(dy, inShape, p)
	if err != nil {
		return nil, err
	}
	p = p.Norm()
	total := int64(inShape.Len())
	inv := 1 / float32(p.Kernel[0]*p.Kernel[1])
	return b.imageOp(op, inShape, "avgpool2d_backward", total, func(out devptr) *kargs {
		a := new(kargs).ptr(out).ptr(b.ptr(dy)).i64(total).i32(inShape[2]).i32(inShape[3]).i32(want[2]).i32(want[3])
		return poolArgs(a, p).f32(inv)
	})
}

// UpsampleNearest implements tensor.Backend.
func (b *Backend) UpsampleNearest(x *tensor.Tensor, factor int) (*tensor.Tensor, error) {
	const op = "upsamplenearest"
	shape, err := tensor.UpsampleNearestShape(x, factor)
	if err != nil {
		return nil, err
	}
	h, w := x.Shape[2], x.Shape[3]
	total := int64(shape.Len())
	return b.imageOp(op, shape, "upsample_nearest", total, func(out devptr) *kargs {
		return new(kargs).ptr(out).ptr(b.ptr(x)).i64(total).i32(h).i32(w).i32(factor)
	})
}

// UpsampleNearestBackward implements tensor.Backend.
func (b *Backend) UpsampleNearestBackward(dy *tensor.Tensor, factor int) (*tensor.Tensor, error) {
	const op = "upsamplenearestbackward"
	shape, err := tensor.UpsampleNearestBackwardShape(dy, factor)
	if err != nil {
		return nil, err
	}
	h, w := shape[2], shape[3]
	total := int64(shape.Len())
	return b.imageOp(op, shape, "upsample_nearest_backward", total, func(out devptr) *kargs {
		return new(kargs).ptr(out).ptr(b.ptr(dy)).i64(total).i32(h).i32(w).i32(factor)
	})
}

// ResizeBilinear implements tensor.Backend.
func (b *Backend) ResizeBilinear(x *tensor.Tensor, h, w int) (*tensor.Tensor, error) {
	const op = "resizebilinear"
	if err := tensor.ResizeBilinearCheck(x, h, w); err != nil {
		return nil, err
	}
	ih, iw := x.Shape[2], x.Shape[3]
	shape := tensor.Shape{x.Shape[0], x.Shape[1], h, w}
	total := int64(shape.Len())
	return b.imageOp(op, shape, "resize_bilinear", total, func(out devptr) *kargs {
		return new(kargs).ptr(out).ptr(b.ptr(x)).i64(total).i32(ih).i32(iw).i32(h).i32(w).
			f64(float64(ih) / float64(h)).f64(float64(iw) / float64(w))
	})
}

// ResizeBilinearBackward implements tensor.Backend.
func (b *Backend) ResizeBilinearBackward(dy *tensor.Tensor, inShape tensor.Shape) (*tensor.Tensor, error) {
	const op = "resizebilinearbackward"
	if err := tensor.ResizeBilinearBackwardCheck(dy, inShape); err != nil {
		return nil, err
	}
	h, w, oh, ow := inShape[2], inShape[3], dy.Shape[2], dy.Shape[3]
	total := int64(inShape.Len())
	return b.imageOp(op, inShape, "resize_bilinear_backward", total, func(out devptr) *kargs {
		return new(kargs).ptr(out).ptr(b.ptr(dy)).i64(total).i32(h).i32(w).i32(oh).i32(ow).
			f64(float64(h) / float64(oh)).f64(float64(w) / float64(ow))
	})
}
