package tensor

// Backend runs tensor ops on one kind of hardware. Every op checks its operands and
// returns an error naming the op and the shapes (wrapping ErrShape) instead of
// computing garbage. Ops allocate their outputs; nothing writes into an input unless
// the op says "in place". Outputs are Float32 unless stated otherwise.
//
// Backward kernels take the forward operands (and, where cheaper, the forward output)
// and the gradient of the output (dy), and return the gradients of the inputs. A "need"
// flag that is false lets a backend skip a gradient nobody wants; it then returns nil.
//
// A Backend is not safe for concurrent use unless its documentation says so.
type Backend interface {
	// Name is the registry name ("cpu", "cuda").
	Name() string
	// Close releases everything the backend holds. Tensors made by it become invalid.
	Close() error

	// --- memory

	// Zeros makes a tensor of the given shape filled with 0.
	Zeros(dtype DType, shape ...int) (*Tensor, error)
	// Full makes a Float32 tensor filled with v.
	Full(v float32, shape ...int) (*Tensor, error)
	// FromHost makes a Float32 tensor holding a copy of data (len(data) == shape.Len()).
	FromHost(data []float32, shape ...int) (*Tensor, error)
	// ToHost copies a Float32 tensor's elements to host memory.
	ToHost(t *Tensor) ([]float32, error)
	// Copy copies src into dst, in place; the shapes must have the same length.
	Copy(dst, src *Tensor) error
	// AddTo adds src to dst element-wise, in place (gradient accumulation).
	AddTo(dst, src *Tensor) error
	// Free releases t's buffer now instead of when it is garbage. t and every tensor
	// sharing its buffer must not be used afterwards. Freeing a buffer again does
	// nothing.
	Free(t *Tensor)

	// --- element-wise

	// Unary applies op to every element.
	Unary(op UnaryOp, x *Tensor) (*Tensor, error)
	// UnaryBackward returns dx for y = op(x).
	UnaryBackward(op UnaryOp, x, y, dy *Tensor) (*Tensor, error)
	// Affine returns x*scale + shift. Its backward is Affine(dy, scale, 0).
	Affine(x *Tensor, scale, shift float32) (*Tensor, error)
	// Binary applies op with NumPy broadcasting: shapes are aligned at the last
	// dimension and a dimension of 1 (or a missing one) stretches to the other's.
	Binary(op BinaryOp, a, b *Tensor) (*Tensor, error)
	// BinaryBackward returns da and db, each summed over the dimensions that
	// broadcasting stretched, so they have a's and b's shapes.
	BinaryBackward(op BinaryOp, a, b, dy *Tensor, needA, needB bool) (da, db *Tensor, err error)

	// --- reductions

	// Reduce sums or averages over the given axes, keeping them with size 1.
	Reduce(op ReduceOp, x *Tensor, axes ...int) (*Tensor, error)
	// ReduceBackward spreads dy (the shape Reduce returned) back over shape.
	ReduceBackward(op ReduceOp, dy *Tensor, shape Shape) (*Tensor, error)

	// --- layout

	// Concat joins tensors along axis; the other dimensions must agree. Its backward
	// is one Slice per input.
	Concat(axis int, xs ...*Tensor) (*Tensor, error)
	// Slice returns x[start:end] along axis (a copy).
	Slice(x *Tensor, axis, start, end int) (*Tensor, error)
	// SliceBackward returns a zero tensor of shape with dy placed at start along axis.
	SliceBackward(dy *Tensor, shape Shape, axis, start int) (*Tensor, error)

	// --- linear algebra

	// MatMul multiplies the last two dimensions: a is (..., M, K) or, with transA,
	// (..., K, M); b is (..., K, N) or, with transB, (..., N, K). Leading (batch)
	// dimensions broadcast as in Binary.
	MatMul(a, b *Tensor, transA, transB bool) (*Tensor, error)
	// MatMulBackward returns da and db in a's and b's shapes.
	MatMulBackward(a, b, dc *Tensor, transA, transB, needA, needB bool) (da, db *Tensor, err error)

	// --- images (NCHW)

	// Conv2D convolves x (N, C, H, W) with w (O, C/Groups, KH, KW) and adds bias (O)
	// when it is not nil. Padding is zeros; use Pad2D first for other modes.
	Conv2D(x, w, bias *Tensor, p Conv2DParams) (*Tensor, error)
	// Conv2DBackward returns dx (if needX), dw and, when needBias, dbias.
	Conv2DBackward(x, w, dy *Tensor, p Conv2DParams, needX, needBias bool) (dx, dw, dbias *Tensor, err error)
	// Pad2D pads the last two dimensions.
	Pad2D(x *Tensor, p Pad2DParams) (*Tensor, error)
	// Pad2DBackward returns the gradient of the unpadded input.
	Pad2DBackward(dy *Tensor, p Pad2DParams) (*Tensor, error)
	// BatchNorm normalises each channel of x (N, C, H, W) and applies gamma and beta
	// (C). With p.Training it uses the batch's mean and biased variance and updates
	// runMean and runVar in place with p.Momentum (the variance update uses the
	// unbiased estimate, as PyTorch does); otherwise it uses runMean and runVar. It
	// returns the mean and 1/sqrt(var+eps) it used, for BatchNormBackward.
	BatchNorm(x, gamma, beta, runMean, runVar *Tensor, p BatchNormParams) (y, mean, invStd *Tensor, err error)
	// BatchNormBackward returns dx, dgamma and dbeta. With training false the
	// statistics are constants (frozen batch norm).
	BatchNormBackward(x, gamma, mean, invStd, dy *Tensor, training bool) (dx, dgamma, dbeta *Tensor, err error)
	// MaxPool2D takes the maximum over each window; padding never wins. argmax
	// (Int32, y's shape) is the index of the winner within its (n, c) plane; the
	// first maximum wins ties.
	MaxPool2D(x *Tensor, p Pool2DParams) (y, argmax *Tensor, err error)
	// MaxPool2DBackward routes dy to the winners.
	MaxPool2DBackward(dy, argmax *Tensor, inShape Shape) (*Tensor, error)
	// AvgPool2D averages each window; zero padding counts in the average.
	AvgPool2D(x *Tensor, p Pool2DParams) (*Tensor, error)
	// AvgPool2DBackward spreads dy evenly over each window.
	AvgPool2DBackward(dy *Tensor, inShape Shape, p Pool2DParams) (*Tensor, error)
	// UpsampleNearest repeats every pixel factor times in both directions.
	UpsampleNearest(x *Tensor, factor int) (*Tensor, error)
	// UpsampleNearestBackward sums each factor x factor block of dy.
	UpsampleNearestBackward(dy *Tensor, factor int) (*Tensor, error)
	// ResizeBilinear resizes the last two dimensions to (h, w), PyTorch's
	// interpolate(mode="bilinear", align_corners=False).
	ResizeBilinear(x *Tensor, h, w int) (*Tensor, error)
	// ResizeBilinearBackward returns the gradient of an input of shape inShape.
	ResizeBilinearBackward(dy *Tensor, inShape Shape) (*Tensor, error)
	// GridSample samples src (N, C, Hs, Ws) bilinearly at coords (N, 2, H, W), which
	// holds pixel coordinates: channel 0 is x (column), channel 1 is y (row), and
	// integer values are pixel centres (PyTorch's align_corners=True after
	// normalisation). Coordinates outside the image are clamped to its border
	// (padding_mode="border"). The result is (N, C, H, W).
	GridSample(src, coords *Tensor) (*Tensor, error)
	// GridSampleBackward returns dsrc and dcoords. Where a coordinate was clamped its
	// gradient is 0, as in PyTorch.
	GridSampleBackward(src, coords, dy *Tensor, needSrc, needCoords bool) (dsrc, dcoords *Tensor, err error)

	// --- fused losses

	// PhotometricMin computes, for every candidate image (N, C, H, W) against target
	// (N, C, H, W), the photometric error
	//   0.85 * mean_c clamp((1 - SSIM)/2, 0, 1) + 0.15 * mean_c |target - candidate|
	// with SSIM over 3x3 windows of the reflection-padded images (C1 = 0.01²,
	// C2 = 0.03²), adds offset[:, k] (N, K, H, W; nil for none) to candidate k's error
	// and returns the per-pixel minimum over the K candidates (N, 1, H, W) and which
	// candidate won (Int32, N, 1, H, W; the first minimum wins ties).
	PhotometricMin(target *Tensor, candidates []*Tensor, offset *Tensor) (minErr, argmin *Tensor, err error)
	// PhotometricMinBackward returns the gradient of each candidate for which need[k]
	// is true (nil for the others): only pixels where the candidate won receive one.
	PhotometricMinBackward(target *Tensor, candidates []*Tensor, argmin, dMin *Tensor, need []bool) ([]*Tensor, error)

	// --- optimiser

	// AdamStep updates param, m and v in place from grad, PyTorch's Adam with bias
	// correction (p.Step counts from 1) and L2 weight decay added to the gradient.
	AdamStep(param, grad, m, v *Tensor, p AdamParams) error
}

// UnaryOp names an element-wise function.
type UnaryOp uint8

const (
	Neg        UnaryOp = iota // -x
	Abs                       // |x| (gradient 0 at 0)
	Exp                       // e^x
	Log                       // ln x
	Sqrt                      // √x
	Reciprocal                // 1/x
	Square                    // x²
	Sin                       // sin x
	Cos                       // cos x
	ReLU                      // max(x, 0) (gradient 0 at 0)
	ELU                       // x if x > 0 else e^x - 1 (alpha 1)
	Sigmoid                   // 1/(1+e^-x)
	Tanh                      // tanh x
	numUnaryOps
)

var unaryNames = [...]string{"neg", "abs", "exp", "log", "sqrt", "reciprocal", "square", "sin", "cos", "relu", "elu", "sigmoid", "tanh"}

func (op UnaryOp) String() string {
	if op < numUnaryOps {
		return unaryNames[op]
	}
	return "unary?"
}

// UnaryOps lists every UnaryOp, for tests.
func UnaryOps() []UnaryOp {
	ops := make([]UnaryOp, numUnaryOps)
	for i := range ops {
		ops[i] = UnaryOp(i)
	}
	return ops
}

// BinaryOp names an element-wise function of two broadcast operands.
type BinaryOp uint8

const (
	Add BinaryOp = iota
	Sub
	Mul
	Div
	numBinaryOps
)

var binaryNames = [...]string{"add", "sub", "mul", "div"}

func (op BinaryOp) String() string {
	if op < numBinaryOps {
		return binaryNames[op]
	}
	return "binary?"
}

// BinaryOps lists every BinaryOp, for tests.
func BinaryOps() []BinaryOp {
	ops := make([]BinaryOp, numBinaryOps)
	for i := range ops {
		ops[i] = BinaryOp(i)
	}
	return ops
}

// ReduceOp names a reduction.
type ReduceOp uint8

const (
	Sum ReduceOp = iota
	Mean
)

func (op ReduceOp) String() string {
	if op == Sum {
		return "sum"
	}
	return "mean"
}

// Conv2DParams configures Conv2D. Zero values mean stride 1, no padding, one group.
type Conv2DParams struct {
	Stride  [2]int // rows, columns
	Padding [2]int // zero padding on each side: rows, columns
	Groups  int
}

// Norm fills in the defaults of zero fields.
func (p Conv2DParams) Norm() Conv2DParams {
	if p.Stride[0] == 0 {
		p.Stride[0] = 1
	}
	if p.Stride[1] == 0 {
		p.Stride[1] = 1
	}
	if p.Groups == 0 {
		p.Groups = 1
	}
	return p
}

// PadMode selects what Pad2D fills the border with.
type PadMode uint8

const (
	PadZero    PadMode = iota // zeros
	PadReflect                // mirror without repeating the edge (PyTorch "reflect")
)

// Pad2DParams configures Pad2D: pixels added on each side.
type Pad2DParams struct {
	Top, Bottom, Left, Right int
	Mode                     PadMode
}

// Pool2DParams configures MaxPool2D and AvgPool2D. A zero Stride means the kernel size.
type Pool2DParams struct {
	Kernel  [2]int
	Stride  [2]int
	Padding [2]int
}

// Norm fills in the defaults of zero fields.
func (p Pool2DParams) Norm() Pool2DParams {
	if p.Stride[0] == 0 {
		p.Stride[0] = p.Kernel[0]
	}
	if p.Stride[1] == 0 {
		p.Stride[1] = p.Kernel[1]
	}
	return p
}

// BatchNormParams configures BatchNorm. PyTorch's defaults are Eps 1e-5, Momentum 0.1.
type BatchNormParams struct {
	Eps      float32
	Momentum float32
	Training bool
}

// AdamParams configures one AdamStep. PyTorch's defaults are Beta1 0.9, Beta2 0.999,
// Eps 1e-8.
type AdamParams struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	Step                               int // 1 for the first step
}
