package cuda

import (
	"fmt"
	"math"

	"github.com/edgedepth/edgedepth/tensor"
)

// Element-wise ops and reductions.

// Unary implements tensor.Backend.
func (b *Backend) Unary(op tensor.UnaryOp, x *tensor.Tensor) (*tensor.Tensor, error) {
	if _, ok := unaryKernels[op]; !ok {
		return nil, fmt.Errorf("unary: unknown op %d", uint8(op))
	}
	if err := tensor.CheckFloat(op.String(), x); err != nil {
		return nil, err
	}
	var y *tensor.Tensor
	err := b.run(func() error {
		var err error
		y, err = b.unary(op, x)
		return err
	})
	return y, err
}

// unary is Unary on the owner goroutine.
func (b *Backend) unary(op tensor.UnaryOp, x *tensor.Tensor) (*tensor.Tensor, error) {
	y, err := b.newTensor(tensor.Float32, x.Shape)
	if err != nil {
		return nil, err
	}
	n := int64(x.Len())
	if err := b.launch1D(elementwiseFamily, unaryName(op), n, new(kargs).ptr(b.ptr(y)).ptr(b.ptr(x)).i64(n)); err != nil {
		b.discard(y)
		return nil, err
	}
	return y, nil
}

// UnaryBackward implements tensor.Backend. As in the CPU backend, an operand the
// gradient does not read may be nil, relu's gradient may come from y alone, and a
// missing y that is needed is recomputed from x.
func (b *Backend) UnaryBackward(op tensor.UnaryOp, x, y, dy *tensor.Tensor) (*tensor.Tensor, error) {
	k, ok := unaryKernels[op]
	if !ok {
		return nil, fmt.Errorf("unary backward: unknown op %d", uint8(op))
	}
	if err := tensor.UnaryBackwardCheck(op, x, y, dy); err != nil {
		return nil, err
	}
	name := op.String() + " backward"
	readX, readY := k.readX, k.readY
	if op == tensor.ReLU && x == nil && y != nil {
		x, readX = y, true // relu(x) > 0 exactly where x > 0
	}
	if readX && x == nil {
		return nil, fmt.Errorf("%s: x is nil", name)
	}
	if readY && y == nil && x == nil {
		return nil, fmt.Errorf("%s: x and y are both nil", name)
	}
	var dx *tensor.Tensor
	err := b.run(func() error {
		var xp, yp devptr
		if readX {
			xp = b.ptr(x)
		}
		if readY {
			if y == nil {
				tmp, err := b.unary(op, x)
				if err != nil {
					return err
				}
				defer b.Free(tmp)
				y = tmp
			}
			yp = b.ptr(y)
		}
		var err error
		if dx, err = b.newTensor(tensor.Float32, dy.Shape); err != nil {
			return err
		}
		n := int64(dy.Len())
		return b.launch1D(elementwiseFamily, unaryGradName(op), n, new(kargs).ptr(b.ptr(dx)).ptr(xp).ptr(yp).ptr(b.ptr(dy)).i64(n))
	})
	if err != nil {
		b.discard(dx)
		return nil, err
	}
	return dx, nil
}

// Affine implements tensor.Backend.
func (b *Backend) Affine(x *tensor.Tensor, scale, shift float32) (*tensor.Tensor, error) {
	if err := tensor.CheckFloat("affine", x); err != nil {
		return nil, err
	}
	var y *tensor.Tensor
	err := b.run(func() error {
		var err error
		if y, err = b.newTensor(tensor.Float32, x.Shape); err != nil {
			return err
		}
		n := int64(x.Len())
		return b.launch1D(elementwiseFamily, "affine", n, new(kargs).ptr(b.ptr(y)).ptr(b.ptr(x)).i64(n).f32(scale).f32(shift))
	})
	if err != nil {
		b.discard(y)
		return nil, err
	}
	return y, nil
}

// binaryPlan is the index space of op(a, c) broadcast to shape, reading a and c.
func binaryPlan(op string, shape, as, cs tensor.Shape) (*stridePlan, error) {
	p := newStridePlan(shape, broadcastStrides(as, shape), broadcastStrides(cs, shape))
	return p, p.check(op)
}

// Binary implements tensor.Backend.
func (b *Backend) Binary(op tensor.BinaryOp, a, c *tensor.Tensor) (*tensor.Tensor, error) {
	if _, ok := binaryKernels[op]; !ok {
		return nil, fmt.Errorf("binary: unknown op %d", uint8(op))
	}
	name := op.String()
	shape, err := tensor.BinaryShape(op, a, c)
	if err != nil {
		return nil, err
	}
	p, err := binaryPlan(name, shape, a.Shape, c.Shape)
	if err != nil {
		return nil, err
	}
	var out *tensor.Tensor
	err = b.run(func() error {
		var err error
		if out, err = b.newTensor(tensor.Float32, shape); err != nil {
			return err
		}
		n := int64(out.Len())
		args := new(kargs).ptr(b.ptr(out)).ptr(b.ptr(a)).ptr(b.ptr(c)).i64(n).i32(p.rank()).dims(p.size).dims(p.st[0]).dims(p.st[1])
		return b.launch1D(elementwiseFamily, binaryName(op), n, args)
	})
	if err != nil {
		b.discard(out)
		return nil, err
	}
	return out, nil
}

// BinaryBackward implements tensor.Backend. The gradient of an operand of dy's shape
// is one element-wise pass; that of a broadcast operand is the same pass into a
// temporary of dy's shape, summed over the broadcast dimensions.
func (b *Backend) BinaryBackward(op tensor.BinaryOp, a, c, dy *tensor.Tensor, needA, needB bool) (da, db *tensor.Tensor, err error) {
	if _, ok := binaryKernels[op]; !ok {
		return nil, nil, fmt.Errorf("binary backward: unknown op %d", uint8(op))
	}
	name := op.String() + " backward"
	shape, err := tensor.BinaryBackwardShape(op, a, c, dy)
	if err != nil {
		return nil, nil, err
	}
	p, err := binaryPlan(name, shape, a.Shape, c.Shape)
	if err != nil {
		return nil, nil, err
	}
	err = b.run(func() error {
		grad := func(operand byte, target tensor.Shape) (*tensor.Tensor, error) {
			g, err := b.newTensor(tensor.Float32, target)
			if err != nil {
				return nil, err
			}
			n := int64(dy.Len())
			if g.Len() == 0 || n == 0 {
				return g, cuMemsetD32(b.ptr(g), 0, g.Len(), b.stream) // sums over nothing
			}
			full := g
			if g.Len() != dy.Len() {
				if full, err = b.newTensor(tensor.Float32, shape); err != nil {
					b.discard(g)
					return nil, err
				}
				defer b.Free(full)
			}
			args := new(kargs).ptr(b.ptr(full)).ptr(b.ptr(dy)).ptr(b.ptr(a)).ptr(b.ptr(c)).i64(n).i32(p.rank()).dims(p.size).dims(p.st[0]).dims(p.st[1])
			err = b.launch1D(elementwiseFamily, binaryGradName(op, operand), n, args)
			if err == nil && full != g {
				err = b.reduceInto(b.ptr(g), b.ptr(full), shape, alignedShape(target, len(shape)), 1)
			}
			if err != nil {
				b.discard(g)
				return nil, err
			}
			return g, nil
		}
		var err error
		if needA {
			if da, err = grad('a', a.Shape); err != nil {
				return err
			}
		}
		if needB {
			if db, err = grad('b', c.Shape); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.discard(da, db)
		return nil, nil, err
	}
	return da, db, nil
}

// Reduce implements tensor.Backend.
func (b *Backend) Reduce(op tensor.ReduceOp, x *tensor.Tensor, axes ...int) (*tensor.Tensor, error) {
	shape, err := tensor.ReduceShape(op, x, axes...)
	if err != nil {
		return nil, err
	}
	var out *tensor.Tensor
	err = b.run(func() error {
		var err error
		if out, err = b.newTensor(tensor.Float32, shape); err != nil {
			return err
		}
		if out.Len() == 0 {
			return nil
		}
		if x.Len() == 0 {
			// Sums over empty dimensions are 0, their means 0/0: NaN, as in PyTorch.
			v := float32(0)
			if op == tensor.Mean {
				v = nan32()
			}
			return b.fill(b.ptr(out), out.Len(), v)
		}
		scale := 1.0
		if op == tensor.Mean {
			scale = float64(out.Len()) / float64(x.Len())
		}
		return b.reduceInto(b.ptr(out), b.ptr(x), x.Shape, shape, scale)
	})
	if err != nil {
		b.discard(out)
		return nil, err
	}
	return out, nil
}

// ReduceBackward implements tensor.Backend. dy may have any shape that broadcasts to
// shape (Reduce's output keeps the reduced dimensions with size 1, so it does).
func (b *Backend) ReduceBackward(op tensor.ReduceOp, dy *tensor.Tensor, shape tensor.Shape) (*tensor.Tensor, error) {
	if err := tensor.ReduceBackwardCheck(op, dy, shape); err != nil {
		return nil, err
	}
	var dx *tensor.Tensor
	err := b.run(func() error {
		var err error
		if dx, err = b.newTensor(tensor.Float32, shape); err != nil {
			return err
		}
		scale := 1.0
		if op == tensor.Mean && dx.Len() > 0 {
			scale = float64(dy.Len()) / float64(dx.Len())
		}
		return b.broadcastScale(b.ptr(dx), shape, b.ptr(dy), dy.Shape, scale)
	})
	if err != nil {
		b.discard(dx)
		return nil, err
	}
	return dx, nil
}

// broadcastScale writes x (shape xs) broadcast to shape, times scale, into out (owner).
func (b *Backend) broadcastScale(out devptr, shape tensor.Shape, x devptr, xs tensor.Shape, scale float64) error {
	n := int64(shape.Len())
	if n == 0 {
		return nil
	}
	p := newStridePlan(shape, broadcastStrides(xs, shape))
	if err := p.check("broadcast"); err != nil {
		return err
	}
	return b.launch1D(elementwiseFamily, "broadcast_scale", n, new(kargs).ptr(out).ptr(x).i64(n).i32(p.rank()).dims(p.size).dims(p.st[0]).f64(scale))
}

// fill sets n float32 elements at p to v (owner).
func (b *Backend) fill(p devptr, n int, v float32) error {
	return b.launch1D(reduceFamily, "fill_f32", int64(n), new(kargs).ptr(p).i64(int64(n)).f32(v))
}

// Reductions split into blocks of at least reduceChunk values per block; an output
// with fewer than reduceSmall values gets one thread.
const (
	reduceChunk = 2048
	reduceSmall = 512
)

// reduceInto writes scale times the sum of x (contiguous, shape in) over the
// dimensions where out (same rank) is 1 into dst (owner). Neither may be empty.
func (b *Backend) reduceInto(dst, x devptr, in, out tensor.Shape, scale float64) error {
	p, err := newReducePlan(in, out)
	if err != nil {
		return err
	}
	if p.count == 1 { // only dimensions of size 1 were named
		if scale == 1 {
			return cuMemcpyDtoD(dst, x, int(p.nOut), b.stream)
		}
		return b.broadcastScale(dst, out, x, out, scale)
	}
	kr, rr := len(p.keptSize), len(p.reducedSize)
	if p.count < reduceSmall || p.nOut >= 1<<16 {
		args := new(kargs).ptr(dst).ptr(x).i64(p.nOut).i64(p.count).
			i32(kr).dims(p.keptSize).dims(p.keptStride).i32(rr).dims(p.reducedSize).dims(p.redStride).f64(scale)
		return b.launch1D(reduceFamily, "reduce_small", p.nOut, args)
	}
	// One block per output, and per split of its values when there are too few
	// outputs to fill the GPU.
	splits := int64(1)
	if want := int64(4 * b.dev.Multiprocessors); p.nOut < want {
		splits = min((want+p.nOut-1)/p.nOut, (p.count+reduceChunk-1)/reduceChunk, 65535)
	}
	chunk := (p.count + splits - 1) / splits
	var partial devptr
	if splits > 1 {
		bl, err := b.pool.get(8 * p.nOut * splits)
		if err != nil {
			return err
		}
		defer b.pool.put(bl)
		partial = bl.ptr
	}
	args := new(kargs).ptr(dst).ptr(partial).ptr(x).i64(p.count).
		i32(kr).dims(p.keptSize).dims(p.keptStride).i32(rr).dims(p.reducedSize).dims(p.redStride).i64(chunk).f64(scale)
	if err := b.launch(reduceFamily, "reduce_large", [3]uint32{uint32(p.nOut), uint32(splits), 1}, [3]uint32{blockSize, 1, 1}, args); err != nil {
		return err
	}
	if splits == 1 {
		return nil
	}
	return b.launch1D(reduceFamily, "reduce_finish", p.nOut, new(kargs).ptr(dst).ptr(partial).i64(p.nOut).i32(int(splits)).f64(scale))
}

func nan32() float32 { return float32(math.NaN()) }
