package tensor

import "fmt"

// Operand checks and output shapes of the ops, shared by every backend so that they
// all accept and reject the same operands with the same messages. Each returns what a
// backend needs to run the op once the operands are known to be good.

// CheckDims rejects negative dimensions.
func CheckDims(op string, shape []int) error {
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("%s: negative dimension in %v: %w", op, Shape(shape), ErrShape)
		}
	}
	return nil
}

// FromHostCheck checks FromHost's operands.
func FromHostCheck(data []float32, shape []int) error {
	if err := CheckDims("fromhost", shape); err != nil {
		return err
	}
	if n := Shape(shape).Len(); n != len(data) {
		return fmt.Errorf("fromhost: %d values for shape %v (%d elements): %w", len(data), Shape(shape), n, ErrShape)
	}
	return nil
}

// CopyCheck checks the operands of Copy and AddTo (op "copy" or "addto").
func CopyCheck(op string, dst, src *Tensor) error {
	if err := CheckFloat(op, dst, src); err != nil {
		return err
	}
	if dst.Len() != src.Len() {
		return ShapeError(op, "element counts differ", dst, src)
	}
	return nil
}

// UnaryBackwardCheck checks UnaryBackward's operands: dy, and x and y where not nil,
// float32 tensors of one shape. Which of x and y the op needs is the backend's affair.
func UnaryBackwardCheck(op UnaryOp, x, y, dy *Tensor) error {
	name := op.String() + " backward"
	if err := CheckFloat(name, dy); err != nil {
		return err
	}
	for _, t := range []*Tensor{x, y} {
		if t == nil {
			continue
		}
		if err := CheckFloat(name, t); err != nil {
			return err
		}
		if !t.Shape.Equal(dy.Shape) {
			return ShapeError(name, "x, y and dy must have one shape", x, y, dy)
		}
	}
	return nil
}

// BinaryShape checks Binary's operands and returns the output (broadcast) shape.
func BinaryShape(op BinaryOp, a, c *Tensor) (Shape, error) {
	name := op.String()
	if err := CheckFloat(name, a, c); err != nil {
		return nil, err
	}
	return BroadcastShape(name, a, c)
}

// BinaryBackwardShape checks BinaryBackward's operands and returns the broadcast shape
// of a and c (dy's shape).
func BinaryBackwardShape(op BinaryOp, a, c, dy *Tensor) (Shape, error) {
	name := op.String() + " backward"
	if err := CheckFloat(name, a, c, dy); err != nil {
		return nil, err
	}
	shape, err := BroadcastShape(name, a, c)
	if err != nil {
		return nil, err
	}
	if !shape.Equal(dy.Shape) {
		return nil, ShapeError(name, fmt.Sprintf("dy must have the broadcast shape %v", shape), a, c, dy)
	}
	return shape, nil
}

// ReduceShape checks Reduce's operands and returns the output shape: x's, with the
// reduced dimensions (all of them when axes is empty) of size 1.
func ReduceShape(op ReduceOp, x *Tensor, axes ...int) (Shape, error) {
	if op != Sum && op != Mean {
		return nil, fmt.Errorf("reduce: unknown op %d", uint8(op))
	}
	name := op.String()
	if err := CheckFloat(name, x); err != nil {
		return nil, err
	}
	reduced := make([]bool, len(x.Shape))
	if len(axes) == 0 {
		for d := range reduced {
			reduced[d] = true
		}
	}
	for _, axis := range axes {
		d, err := NormAxis(name, x, axis)
		if err != nil {
			return nil, err
		}
		if reduced[d] {
			return nil, ShapeError(name, fmt.Sprintf("axes %v name dimension %d twice", axes, d), x)
		}
		reduced[d] = true
	}
	shape := x.Shape.Clone()
	for d, r := range reduced {
		if r {
			shape[d] = 1
		}
	}
	return shape, nil
}

// ReduceBackwardCheck checks ReduceBackward's operands: dy must broadcast to shape.
func ReduceBackwardCheck(op ReduceOp, dy *Tensor, shape Shape) error {
	if op != Sum && op != Mean {
		return fmt.Errorf("reduce backward: unknown op %d", uint8(op))
	}
	name := op.String() + " backward"
	if err := CheckFloat(name, dy); err != nil {
		return err
	}
	if err := CheckDims(name, shape); err != nil {
		return err
	}
	target := &Tensor{Shape: shape}
	if bs, err := BroadcastShape(name, dy, target); err != nil || !bs.Equal(shape) {
		return ShapeError(name, fmt.Sprintf("dy does not broadcast to %v", shape), dy, target)
	}
	return nil
}

// ConcatShape checks Concat's operands and returns the output shape and the axis as an
// index.
func ConcatShape(axis int, xs ...*Tensor) (Shape, int, error) {
	const name = "concat"
	if len(xs) == 0 {
		return nil, 0, fmt.Errorf("%s: no tensors", name)
	}
	if err := CheckFloat(name, xs...); err != nil {
		return nil, 0, err
	}
	ax, err := NormAxis(name, xs[0], axis)
	if err != nil {
		return nil, 0, err
	}
	shape := xs[0].Shape.Clone()
	for _, x := range xs[1:] {
		if len(x.Shape) != len(shape) {
			return nil, 0, ShapeError(name, "ranks differ", xs...)
		}
		for d, n := range x.Shape {
			if d != ax && n != shape[d] {
				return nil, 0, ShapeError(name, fmt.Sprintf("dimension %d differs (concatenating along %d)", d, ax), xs...)
			}
		}
		shape[ax] += x.Shape[ax]
	}
	return shape, ax, nil
}

// SliceShape checks Slice's operands and returns the output shape and the axis as an
// index.
func SliceShape(x *Tensor, axis, start, end int) (Shape, int, error) {
	const name = "slice"
	if err := CheckFloat(name, x); err != nil {
		return nil, 0, err
	}
	ax, err := NormAxis(name, x, axis)
	if err != nil {
		return nil, 0, err
	}
	if start < 0 || end < start || end > x.Shape[ax] {
		return nil, 0, ShapeError(name, fmt.Sprintf("range [%d:%d] outside dimension %d of size %d", start, end, ax, x.Shape[ax]), x)
	}
	shape := x.Shape.Clone()
	shape[ax] = end - start
	return shape, ax, nil
}

// SliceBackwardCheck checks SliceBackward's operands and returns the axis as an index.
func SliceBackwardCheck(dy *Tensor, shape Shape, axis, start int) (int, error) {
	const name = "slice backward"
	if err := CheckFloat(name, dy); err != nil {
		return 0, err
	}
	if err := CheckDims(name, shape); err != nil {
		return 0, err
	}
	target := &Tensor{Shape: shape}
	ax, err := NormAxis(name, target, axis)
	if err != nil {
		return 0, err
	}
	if len(dy.Shape) != len(shape) {
		return 0, ShapeError(name, "dy and the input differ in rank", dy, target)
	}
	for d, n := range shape {
		if d != ax && dy.Shape[d] != n {
			return 0, ShapeError(name, fmt.Sprintf("dimension %d differs", d), dy, target)
		}
	}
	if start < 0 || start+dy.Shape[ax] > shape[ax] {
		return 0, ShapeError(name, fmt.Sprintf("range [%d:%d] outside dimension %d of size %d", start, start+dy.Shape[ax], ax, shape[ax]), dy, target)
	}
	return ax, nil
}

// AdamCheck checks AdamStep's operands.
func AdamCheck(param, grad, m, v *Tensor, p AdamParams) error {
	const name = "adam"
	if err := CheckFloat(name, param, grad, m, v); err != nil {
		return err
	}
	if err := SameShape(name, param, grad, m, v); err != nil {
		return err
	}
	if p.Step < 1 {
		return fmt.Errorf("%s: step %d, want 1 or more (steps count from 1)", name, p.Step)
	}
	return nil
}

// MatMulCheck checks MatMul's operands and returns the output shape.
func MatMulCheck(a, b *Tensor, transA, transB bool) (Shape, error) {
	if err := CheckFloat("matmul", a, b); err != nil {
		return nil, err
	}
	return MatMulShape(a, b, transA, transB)
}

// MatMulBackwardShape checks MatMulBackward's operands and returns the product's
// shape (dc's).
func MatMulBackwardShape(a, b, dc *Tensor, transA, transB bool) (Shape, error) {
	const op = "matmul backward"
	if err := CheckFloat(op, a, b, dc); err != nil {
		return nil, err
	}
	shape, err := MatMulShape(a, b, transA, transB)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !dc.Shape.Equal(shape) {
		return nil, ShapeError(op, fmt.Sprintf("dc must be %v", shape), a, b, dc)
	}
	return shape, nil
}

// Conv2DCheck checks Conv2D's operands (bias may be nil) and returns the output shape.
func Conv2DCheck(x, w, bias *Tensor, p Conv2DParams) (Shape, error) {
	const op = "conv2d"
	if err := CheckFloat(op, x, w); err != nil {
		return nil, err
	}
	if bias != nil {
		if err := CheckFloat(op, bias); err != nil {
			return nil, err
		}
	}
	return Conv2DShape(x, w, bias, p.Norm())
}

// Conv2DBackwardShape checks Conv2DBackward's operands and returns the forward output
// shape (dy's).
func Conv2DBackwardShape(x, w, dy *Tensor, p Conv2DParams) (Shape, error) {
	const op = "conv2d backward"
	if err := CheckFloat(op, x, w, dy); err != nil {
		return nil, err
	}
	shape, err := Conv2DShape(x, w, nil, p.Norm())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !dy.Shape.Equal(shape) {
		return nil, ShapeError(op, fmt.Sprintf("dy must be %v", shape), x, w, dy)
	}
	return shape, nil
}

// checkPadMode rejects a pad mode no backend knows.
func checkPadMode(op string, p Pad2DParams) error {
	if p.Mode != PadZero && p.Mode != PadReflect {
		return fmt.Errorf("%s: unknown pad mode %d", op, p.Mode)
	}
	return nil
}

// Pad2DCheck checks Pad2D's operands and returns the output shape.
func Pad2DCheck(x *Tensor, p Pad2DParams) (Shape, error) {
	const op = "pad2d"
	if err := CheckFloat(op, x); err != nil {
		return nil, err
	}
	if err := checkPadMode(op, p); err != nil {
		return nil, err
	}
	return Pad2DShape(x, p)
}

// Pad2DBackwardShape checks Pad2DBackward's operands and returns the shape of the
// unpadded input (dx's).
func Pad2DBackwardShape(dy *Tensor, p Pad2DParams) (Shape, error) {
	const op = "pad2dbackward"
	if err := CheckFloat(op, dy); err != nil {
		return nil, err
	}
	if err := checkPadMode(op, p); err != nil {
		return nil, err
	}
	if p.Top < 0 || p.Bottom < 0 || p.Left < 0 || p.Right < 0 {
		return nil, fmt.Errorf("%s: negative padding %+v", op, p)
	}
	if len(dy.Shape) < 2 {
		return nil, ShapeError(op, "want at least 2 dimensions", dy)
	}
	r := len(dy.Shape)
	oh, ow := dy.Shape[r-2], dy.Shape[r-1]
	h, w := oh-p.Top-p.Bottom, ow-p.Left-p.Right
	if h < 0 || w < 0 {
		return nil, ShapeError(op, fmt.Sprintf("padding %+v is larger than the gradient", p), dy)
	}
	if p.Mode == PadReflect && (p.Top >= h || p.Bottom >= h || p.Left >= w || p.Right >= w) {
		return nil, ShapeError(op, fmt.Sprintf("reflection padding %+v needs a larger input than %dx%d", p, h, w), dy)
	}
	shape := dy.Shape.Clone()
	shape[r-2], shape[r-1] = h, w
	return shape, nil
}

// imgInShape turns the input shape a backward kernel was given into a tensor for error
// messages, after checking that it is an image shape (4 dimensions, none negative) with
// dy's batch and channels.
func imgInShape(op string, dy *Tensor, inShape Shape) (*Tensor, error) {
	in := &Tensor{Shape: inShape}
	if len(inShape) != 4 {
		return nil, ShapeError(op, "input shape must have 4 dimensions", dy, in)
	}
	for _, d := range inShape {
		if d < 0 {
			return nil, ShapeError(op, "negative dimension in the input shape", dy, in)
		}
	}
	if err := CheckRank(op, dy, 4); err != nil {
		return nil, err
	}
	if dy.Shape[0] != inShape[0] || dy.Shape[1] != inShape[1] {
		return nil, ShapeError(op, "batch and channels of the gradient and the input differ", dy, in)
	}
	return in, nil
}

// bnChannels checks that every per-channel operand of a batch norm is [c].
func bnChannels(op string, x *Tensor, per ...*Tensor) error {
	c := x.Shape[1]
	for _, t := range per {
		if len(t.Shape) != 1 || t.Shape[0] != c {
			return ShapeError(op, fmt.Sprintf("per-channel operands must be [%d]", c), append([]*Tensor{x}, per...)...)
		}
	}
	return nil
}

// bnValues refuses training statistics over fewer than two values per channel.
func bnValues(op string, x *Tensor, training bool) error {
	if m := x.Shape[0] * x.Shape[2] * x.Shape[3]; training && m < 2 {
		// PyTorch refuses this too: the unbiased variance would divide by zero.
		return ShapeError(op, fmt.Sprintf("training needs more than one value per channel, have %d", m), x)
	}
	return nil
}

// BatchNormCheck checks BatchNorm's operands.
func BatchNormCheck(x, gamma, beta, runMean, runVar *Tensor, p BatchNormParams) error {
	const op = "batchnorm"
	if err := CheckFloat(op, x, gamma, beta, runMean, runVar); err != nil {
		return err
	}
	if err := CheckRank(op, x, 4); err != nil {
		return err
	}
	if err := bnChannels(op, x, gamma, beta, runMean, runVar); err != nil {
		return err
	}
	return bnValues(op, x, p.Training)
}

// BatchNormBackwardCheck checks BatchNormBackward's operands.
func BatchNormBackwardCheck(x, gamma, mean, invStd, dy *Tensor, training bool) error {
	const op = "batchnormbackward"
	if err := CheckFloat(op, x, gamma, mean, invStd, dy); err != nil {
		return err
	}
	if err := CheckRank(op, x, 4); err != nil {
		return err
	}
	if err := SameShape(op, x, dy); err != nil {
		return err
	}
	if err := bnChannels(op, x, gamma, mean, invStd); err != nil {
		return err
	}
	return bnValues(op, x, training)
}

// poolShape is Pool2DShape plus a check it lacks: Go's division truncates towards
// zero, so (size + 2·pad - kernel)/stride + 1 is 1, not below 1, for a kernel up to
// one stride larger than the padded input. PyTorch refuses those; so do we.
func poolShape(op string, x *Tensor, p Pool2DParams) (Shape, error) {
	shape, err := Pool2DShape(op, x, p)
	if err != nil {
		return nil, err
	}
	if x.Shape[2]+2*p.Padding[0] < p.Kernel[0] || x.Shape[3]+2*p.Padding[1] < p.Kernel[1] {
		return nil, ShapeError(op, fmt.Sprintf("kernel %v larger than the input padded by %v", p.Kernel, p.Padding), x)
	}
	return shape, nil
}

// PoolCheck checks the operand of a pooling (op "maxpool2d" or "avgpool2d") and
// returns the output shape.
func PoolCheck(op string, x *Tensor, p Pool2DParams) (Shape, error) {
	if err := CheckFloat(op, x); err != nil {
		return nil, err
	}
	return poolShape(op, x, p)
}

// MaxPool2DBackwardCheck checks MaxPool2DBackward's operands. The indices in argmax
// are the backend's to check.
func MaxPool2DBackwardCheck(dy, argmax *Tensor, inShape Shape) error {
	const op = "maxpool2dbackward"
	if err := CheckFloat(op, dy); err != nil {
		return err
	}
	if argmax == nil || argmax.DType != Int32 {
		return fmt.Errorf("%s: argmax must be an int32 tensor", op)
	}
	if _, err := imgInShape(op, dy, inShape); err != nil {
		return err
	}
	return SameShape(op, dy, argmax)
}

// AvgPool2DBackwardShape checks AvgPool2DBackward's operands and returns the forward
// output shape (dy's).
func AvgPool2DBackwardShape(dy *Tensor, inShape Shape, p Pool2DParams) (Shape, error) {
	const op = "avgpool2dbackward"
	if err := CheckFloat(op, dy); err != nil {
		return nil, err
	}
	in, err := imgInShape(op, dy, inShape)
	if err != nil {
		return nil, err
	}
	want, err := poolShape(op, in, p)
	if err != nil {
		return nil, err
	}
	if !want.Equal(dy.Shape) {
		return nil, ShapeError(op, fmt.Sprintf("pooling %+v of this input gives %v", p, want), dy, in)
	}
	return want, nil
}

// UpsampleNearestShape checks UpsampleNearest's operands and returns the output shape.
func UpsampleNearestShape(x *Tensor, factor int) (Shape, error) {
	const op = "upsamplenearest"
	if err := CheckFloat(op, x); err != nil {
		return nil, err
	}
	if err := CheckRank(op, x, 4); err != nil {
		return nil, err
	}
	if factor < 1 {
		return nil, fmt.Errorf("%s: factor %d, want at least 1", op, factor)
	}
	return Shape{x.Shape[0], x.Shape[1], x.Shape[2] * factor, x.Shape[3] * factor}, nil
}

// UpsampleNearestBackwardShape checks UpsampleNearestBackward's operands and returns
// the input shape (dx's).
func UpsampleNearestBackwardShape(dy *Tensor, factor int) (Shape, error) {
	const op = "upsamplenearestbackward"
	if err := CheckFloat(op, dy); err != nil {
		return nil, err
	}
	if err := CheckRank(op, dy, 4); err != nil {
		return nil, err
	}
	if factor < 1 {
		return nil, fmt.Errorf("%s: factor %d, want at least 1", op, factor)
	}
	oh, ow := dy.Shape[2], dy.Shape[3]
	if oh%factor != 0 || ow%factor != 0 {
		return nil, ShapeError(op, fmt.Sprintf("height and width must be multiples of the factor %d", factor), dy)
	}
	return Shape{dy.Shape[0], dy.Shape[1], oh / factor, ow / factor}, nil
}

// resizeCheck checks a bilinear resize between planes of h x w and oh x ow.
func resizeCheck(op string, h, w, oh, ow int, ts ...*Tensor) error {
	if h < 1 || w < 1 || oh < 1 || ow < 1 {
		return ShapeError(op, fmt.Sprintf("cannot resize %dx%d to %dx%d: sizes must be positive", h, w, oh, ow), ts...)
	}
	return nil
}

// ResizeBilinearCheck checks ResizeBilinear's operands (x resized to h x w).
func ResizeBilinearCheck(x *Tensor, h, w int) error {
	const op = "resizebilinear"
	if err := CheckFloat(op, x); err != nil {
		return err
	}
	if err := CheckRank(op, x, 4); err != nil {
		return err
	}
	return resizeCheck(op, x.Shape[2], x.Shape[3], h, w, x)
}

// ResizeBilinearBackwardCheck checks ResizeBilinearBackward's operands.
func ResizeBilinearBackwardCheck(dy *Tensor, inShape Shape) error {
	const op = "resizebilinearbackward"
	if err := CheckFloat(op, dy); err != nil {
		return err
	}
	in, err := imgInShape(op, dy, inShape)
	if err != nil {
		return err
	}
	return resizeCheck(op, inShape[2], inShape[3], dy.Shape[2], dy.Shape[3], dy, in)
}

// GridSampleShape checks GridSample's operands and returns the output shape; op names
// the op in errors ("gridsample" or "gridsample backward").
func GridSampleShape(op string, src, coords *Tensor) (Shape, error) {
	if err := CheckFloat(op, src, coords); err != nil {
		return nil, err
	}
	if len(src.Shape) != 4 || len(coords.Shape) != 4 {
		return nil, ShapeError(op, "want src (N, C, Hs, Ws) and coords (N, 2, H, W)", src, coords)
	}
	if coords.Shape[0] != src.Shape[0] || coords.Shape[1] != 2 {
		return nil, ShapeError(op, "coords must be (N, 2, H, W) with src's N", src, coords)
	}
	if (src.Shape[2] < 1 || src.Shape[3] < 1) && coords.Shape[2]*coords.Shape[3] > 0 {
		return nil, ShapeError(op, "cannot sample an empty image", src, coords)
	}
	return Shape{src.Shape[0], src.Shape[1], coords.Shape[2], coords.Shape[3]}, nil
}

// GridSampleBackwardShape checks GridSampleBackward's operands and returns the forward
// output shape (dy's).
func GridSampleBackwardShape(src, coords, dy *Tensor) (Shape, error) {
	const op = "gridsample backward"
	shape, err := GridSampleShape(op, src, coords)
	if err != nil {
		return nil, err
	}
	if err := CheckFloat(op, dy); err != nil {
		return nil, err
	}
	if !dy.Shape.Equal(shape) {
		return nil, ShapeError(op, fmt.Sprintf("dy must be %v", shape), src, coords, dy)
	}
	return shape, nil
}

// PhotometricCheck checks the target and candidates of PhotometricMin and its
// backward (op names which).
func PhotometricCheck(op string, target *Tensor, candidates []*Tensor) error {
	if err := CheckFloat(op, target); err != nil {
		return err
	}
	if len(candidates) == 0 {
		return ShapeError(op, "no candidates", target)
	}
	if err := CheckFloat(op, candidates...); err != nil {
		return err
	}
	if len(target.Shape) != 4 {
		return ShapeError(op, "target must be (N, C, H, W)", target)
	}
	if err := SameShape(op, target, candidates...); err != nil {
		return err
	}
	if target.Shape[1] < 1 || target.Shape[2] < 2 || target.Shape[3] < 2 {
		return ShapeError(op, "need at least 1 channel and 2x2 pixels for the reflection-padded 3x3 window", target)
	}
	return nil
}

// PhotometricMinCheck checks PhotometricMin's operands (offset may be nil).
func PhotometricMinCheck(target *Tensor, candidates []*Tensor, offset *Tensor) error {
	const op = "photometricmin"
	if err := PhotometricCheck(op, target, candidates); err != nil {
		return err
	}
	if offset == nil {
		return nil
	}
	n, h, w, nk := target.Shape[0], target.Shape[2], target.Shape[3], len(candidates)
	if err := CheckFloat(op, offset); err != nil {
		return err
	}
	if !offset.Shape.Equal(Shape{n, nk, h, w}) {
		return ShapeError(op, fmt.Sprintf("offset must be (N, K, H, W) = [%d %d %d %d]", n, nk, h, w), target, offset)
	}
	return nil
}

// PhotometricMinBackwardCheck checks PhotometricMinBackward's operands. The indices in
// argmin are the backend's to check.
func PhotometricMinBackwardCheck(target *Tensor, candidates []*Tensor, argmin, dMin *Tensor, need []bool) error {
	const op = "photometricmin backward"
	if err := PhotometricCheck(op, target, candidates); err != nil {
		return err
	}
	n, h, w := target.Shape[0], target.Shape[2], target.Shape[3]
	nk := len(candidates)
	if len(need) != nk {
		return fmt.Errorf("%s: %d need flags for %d candidates", op, len(need), nk)
	}
	if err := CheckFloat(op, dMin); err != nil {
		return err
	}
	outShape := Shape{n, 1, h, w}
	if argmin == nil || argmin.DType != Int32 {
		return fmt.Errorf("%s: argmin must be an int32 tensor, got %v", op, argmin)
	}
	if !argmin.Shape.Equal(outShape) || !dMin.Shape.Equal(outShape) {
		return ShapeError(op, fmt.Sprintf("argmin and dMin must be %v", outShape), target, argmin, dMin)
	}
	return nil
}
