package tensor

import "fmt"

// The shape rules of the ops, shared by every backend so that they all accept and
// reject the same operands with the same messages.

// BroadcastShape is the shape of Binary(op, a, b), or an error naming op.
func BroadcastShape(op string, a, b *Tensor) (Shape, error) {
	n := max(len(a.Shape), len(b.Shape))
	out := make(Shape, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a.Shape) - n + i; j >= 0 {
			da = a.Shape[j]
		}
		if j := len(b.Shape) - n + i; j >= 0 {
			db = b.Shape[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, ShapeError(op, fmt.Sprintf("dimension %d is %d and %d", i-n, da, db), a, b)
		}
	}
	return out, nil
}

// CheckFloat returns an error naming op if any tensor is nil or not Float32.
func CheckFloat(op string, ts ...*Tensor) error {
	for i, t := range ts {
		if t == nil {
			return fmt.Errorf("%s: operand %d is nil", op, i)
		}
		if t.DType != Float32 {
			return fmt.Errorf("%s: operand %d is %v, want float32", op, i, t)
		}
	}
	return nil
}

// CheckRank returns a shape error naming op unless x has rank dims.
func CheckRank(op string, x *Tensor, rank int) error {
	if len(x.Shape) != rank {
		return ShapeError(op, fmt.Sprintf("want %d dimensions", rank), x)
	}
	return nil
}

// NormAxis turns a possibly negative axis into an index, or reports it out of range.
func NormAxis(op string, x *Tensor, axis int) (int, error) {
	r := len(x.Shape)
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		return 0, ShapeError(op, fmt.Sprintf("axis %d out of range", axis), x)
	}
	return axis, nil
}

// Conv2DShape checks Conv2D's operands and returns the output shape.
func Conv2DShape(x, w, bias *Tensor, p Conv2DParams) (Shape, error) {
	const op = "conv2d"
	p = p.Norm()
	if err := CheckRank(op, x, 4); err != nil {
		return nil, err
	}
	if err := CheckRank(op, w, 4); err != nil {
		return nil, err
	}
	n, c, h, wd := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	o, cg, kh, kw := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	if p.Groups < 1 || c%p.Groups != 0 || o%p.Groups != 0 {
		return nil, ShapeError(op, fmt.Sprintf("%d groups do not divide the channels", p.Groups), x, w)
	}
	if cg*p.Groups != c {
		return nil, ShapeError(op, fmt.Sprintf("input has %d channels, weight expects %d", c, cg*p.Groups), x, w)
	}
	if bias != nil && (len(bias.Shape) != 1 || bias.Shape[0] != o) {
		return nil, ShapeError(op, fmt.Sprintf("bias must be [%d]", o), w, bias)
	}
	if p.Stride[0] < 1 || p.Stride[1] < 1 || p.Padding[0] < 0 || p.Padding[1] < 0 {
		return nil, fmt.Errorf("%s: bad stride %v or padding %v", op, p.Stride, p.Padding)
	}
	// Checked before dividing: Go's division truncates towards zero, so a kernel
	// slightly larger than the padded input would otherwise give one output.
	if h+2*p.Padding[0] < kh || wd+2*p.Padding[1] < kw {
		return nil, ShapeError(op, "kernel larger than the padded input", x, w)
	}
	oh := (h+2*p.Padding[0]-kh)/p.Stride[0] + 1
	ow := (wd+2*p.Padding[1]-kw)/p.Stride[1] + 1
	return Shape{n, o, oh, ow}, nil
}

// Pool2DShape checks a pooling's operand and returns the output shape (floor mode).
func Pool2DShape(op string, x *Tensor, p Pool2DParams) (Shape, error) {
	p = p.Norm()
	if err := CheckRank(op, x, 4); err != nil {
		return nil, err
	}
	if p.Kernel[0] < 1 || p.Kernel[1] < 1 || p.Stride[0] < 1 || p.Stride[1] < 1 ||
		p.Padding[0] < 0 || p.Padding[1] < 0 || 2*p.Padding[0] > p.Kernel[0] || 2*p.Padding[1] > p.Kernel[1] {
		return nil, fmt.Errorf("%s: bad kernel %v, stride %v or padding %v", op, p.Kernel, p.Stride, p.Padding)
	}
	if x.Shape[2]+2*p.Padding[0] < p.Kernel[0] || x.Shape[3]+2*p.Padding[1] < p.Kernel[1] {
		return nil, ShapeError(op, fmt.Sprintf("kernel %v larger than the padded input", p.Kernel), x)
	}
	oh := (x.Shape[2]+2*p.Padding[0]-p.Kernel[0])/p.Stride[0] + 1
	ow := (x.Shape[3]+2*p.Padding[1]-p.Kernel[1])/p.Stride[1] + 1
	return Shape{x.Shape[0], x.Shape[1], oh, ow}, nil
}

// Pad2DShape checks Pad2D's operand and returns the output shape.
func Pad2DShape(x *Tensor, p Pad2DParams) (Shape, error) {
	const op = "pad2d"
	if len(x.Shape) < 2 {
		return nil, ShapeError(op, "want at least 2 dimensions", x)
	}
	if p.Top < 0 || p.Bottom < 0 || p.Left < 0 || p.Right < 0 {
		return nil, fmt.Errorf("%s: negative padding %+v", op, p)
	}
	r := len(x.Shape)
	h, w := x.Shape[r-2], x.Shape[r-1]
	if p.Mode == PadReflect && (p.Top >= h || p.Bottom >= h || p.Left >= w || p.Right >= w) {
		return nil, ShapeError(op, fmt.Sprintf("reflection padding %+v needs a larger input", p), x)
	}
	s := x.Shape.Clone()
	s[r-2] = h + p.Top + p.Bottom
	s[r-1] = w + p.Left + p.Right
	return s, nil
}

// MatMulShape checks MatMul's operands and returns the output shape.
func MatMulShape(a, b *Tensor, transA, transB bool) (Shape, error) {
	const op = "matmul"
	if len(a.Shape) < 2 || len(b.Shape) < 2 {
		return nil, ShapeError(op, "want at least 2 dimensions", a, b)
	}
	ra, rb := len(a.Shape), len(b.Shape)
	m, ka := a.Shape[ra-2], a.Shape[ra-1]
	if transA {
		m, ka = ka, m
	}
	kb, n := b.Shape[rb-2], b.Shape[rb-1]
	if transB {
		kb, n = n, kb
	}
	if ka != kb {
		return nil, ShapeError(op, fmt.Sprintf("inner dimensions %d and %d differ", ka, kb), a, b)
	}
	batch, err := BroadcastShape(op, &Tensor{Shape: a.Shape[:ra-2]}, &Tensor{Shape: b.Shape[:rb-2]})
	if err != nil {
		return nil, ShapeError(op, "batch dimensions do not broadcast", a, b)
	}
	return append(batch, m, n), nil
}

// SameShape returns a shape error naming op unless every tensor has a's shape.
func SameShape(op string, a *Tensor, others ...*Tensor) error {
	for _, o := range others {
		if o == nil || !o.Shape.Equal(a.Shape) {
			return ShapeError(op, "shapes must be equal", append([]*Tensor{a}, others...)...)
		}
	}
	return nil
}
