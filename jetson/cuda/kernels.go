package cuda

import (
	"fmt"
	"strings"

	"github.com/edgedepth/edgedepth/tensor"
)

// The CUDA C sources. Each family is one module, compiled on first use. The prelude is
// shared: the Dims parameter type, the grid-stride loop and the index arithmetic of
// plan.go's (size, stride) lists. Kernels are extern "C" so their names are the names
// the Go side looks up.
//
// Numerics follow the CPU backend: float32 storage and arithmetic, IEEE division and
// square roots (no fast-math), and float64 accumulation of sums, so that reductions of
// millions of values stay within float32 precision of the exact result.

const kernelPrelude = `
typedef long long i64;
#define MAXD 8
struct Dims { i64 d[MAXD]; };

#define GRID_LOOP(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

// offset of flat position i of the space size[0:rank] read with stride
__device__ __forceinline__ i64 strided(i64 i, int rank, const Dims &size, const Dims &stride) {
	if (rank == 1) return i * stride.d[0];
	i64 off = 0;
	for (int d = rank - 1; d >= 0; d--) {
		i64 s = size.d[d], q = i / s;
		off += (i - q * s) * stride.d[d];
		i = q;
	}
	return off;
}

// the same for two operands at once
__device__ __forceinline__ void strided2(i64 i, int rank, const Dims &size, const Dims &sa, const Dims &sb, i64 &oa, i64 &ob) {
	if (rank == 1) { oa = i * sa.d[0]; ob = i * sb.d[0]; return; }
	oa = 0; ob = 0;
	for (int d = rank - 1; d >= 0; d--) {
		i64 s = size.d[d], q = i / s, r = i - q * s;
		oa += r * sa.d[d];
		ob += r * sb.d[d];
		i = q;
	}
}

// sum of v over the block (blockDim.x a multiple of 32, at most 1024); the result is
// valid in thread 0
__device__ double block_sum(double v) {
	__shared__ double warp[32];
	for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffff, v, o);
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
	if (lane == 0) warp[w] = v;
	__syncthreads();
	if (w == 0) {
		v = lane < (blockDim.x >> 5) ? warp[lane] : 0.0;
		for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffff, v, o);
	}
	__syncthreads(); // warp[] may be reused by a following call
	return v;
}
`

// unaryKernel is the CUDA C of one UnaryOp: fwd is y in terms of v (the input), grad
// is dx in terms of g (dy) and x or y, whichever reads says.
type unaryKernel struct {
	fwd   string
	grad  string
	readX bool
	readY bool
}

// unaryKernels has an entry for every tensor.UnaryOp (a test checks this). The
// gradients read what the CPU backend reads (cpu/elementwise.go's ewUnaryReads), so
// both give the same float32 results.
var unaryKernels = map[tensor.UnaryOp]unaryKernel{
	tensor.Neg:        {fwd: "-v", grad: "-g"},
	tensor.Abs:        {fwd: "fabsf(v)", grad: "x > 0.0f ? g : (x < 0.0f ? -g : 0.0f)", readX: true},
	tensor.Exp:        {fwd: "expf(v)", grad: "g * y", readY: true},
	tensor.Log:        {fwd: "logf(v)", grad: "g / x", readX: true},
	tensor.Sqrt:       {fwd: "sqrtf(v)", grad: "g / (2.0f * y)", readY: true},
	tensor.Reciprocal: {fwd: "1.0f / v", grad: "-g * y * y", readY: true},
	tensor.Square:     {fwd: "v * v", grad: "2.0f * x * g", readX: true},
	tensor.Sin:        {fwd: "sinf(v)", grad: "g * cosf(x)", readX: true},
	tensor.Cos:        {fwd: "cosf(v)", grad: "-g * sinf(x)", readX: true},
	// Written so that NaN passes through, as in PyTorch; relu(x) > 0 exactly where
	// x > 0, so the gradient may read y in x's place.
	tensor.ReLU: {fwd: "v <= 0.0f ? 0.0f : v", grad: "x > 0.0f ? g : 0.0f", readX: true},
	// expm1 keeps the precision of small negative inputs; e^x = y + 1 below 0.
	tensor.ELU:     {fwd: "v > 0.0f ? v : expm1f(v)", grad: "y > 0.0f ? g : g * (y + 1.0f)", readY: true},
	tensor.Sigmoid: {fwd: "1.0f / (1.0f + expf(-v))", grad: "g * y * (1.0f - y)", readY: true},
	tensor.Tanh:    {fwd: "tanhf(v)", grad: "g * (1.0f - y * y)", readY: true},
}

// binaryKernel is the CUDA C of one BinaryOp in terms of x (a) and y (b), and its
// partial derivatives times g.
type binaryKernel struct {
	fwd, gradA, gradB string
}

var binaryKernels = map[tensor.BinaryOp]binaryKernel{
	tensor.Add: {fwd: "x + y", gradA: "g", gradB: "g"},
	tensor.Sub: {fwd: "x - y", gradA: "g", gradB: "-g"},
	tensor.Mul: {fwd: "x * y", gradA: "g * y", gradB: "g * x"},
	// -g·x/y² in double, as the CPU backend does, so that y² cannot under- or overflow.
	tensor.Div: {fwd: "x / y", gradA: "g / y", gradB: "(float)(-(double)g * (double)x / ((double)y * (double)y))"},
}

// unaryName and binaryName are the kernels' names.
func unaryName(op tensor.UnaryOp) string     { return "unary_" + op.String() }
func unaryGradName(op tensor.UnaryOp) string { return "unary_grad_" + op.String() }
func binaryName(op tensor.BinaryOp) string   { return "binary_" + op.String() }
func binaryGradName(op tensor.BinaryOp, operand byte) string {
	return fmt.Sprintf("binary_grad_%s_%c", op, operand)
}

// elementwiseSource generates the element-wise family from the tables above.
func elementwiseSource() string {
	var b strings.Builder
	b.WriteString(`
extern "C" __global__ void add_to(float *d, const float *s, i64 n) {
	GRID_LOOP(i, n) d[i] += s[i];
}

extern "C" __global__ void affine(float *y, const float *x, i64 n, float scale, float shift) {
	GRID_LOOP(i, n) y[i] = x[i] * scale + shift;
}

// out = x broadcast over the space (size, sx), times scale (in double, as the CPU does)
extern "C" __global__ void broadcast_scale(float *out, const float *x, i64 n, int rank, Dims size, Dims sx, double scale) {
	GRID_LOOP(i, n) out[i] = (float)((double)x[strided(i, rank, size, sx)] * scale);
}
`)
	for _, op := range tensor.UnaryOps() {
		k := unaryKernels[op]
		fmt.Fprintf(&b, "\nextern \"C\" __global__ void %s(float *y, const float *x, i64 n) {\n\tGRID_LOOP(i, n) { float v = x[i]; y[i] = %s; }\n}\n", unaryName(op), k.fwd)
		reads := ""
		if k.readX {
			reads += " float x = xs[i];"
		}
		if k.readY {
			reads += " float y = ys[i];"
		}
		fmt.Fprintf(&b, "\nextern \"C\" __global__ void %s(float *dx, const float *xs, const float *ys, const float *dy, i64 n) {\n\tGRID_LOOP(i, n) { float g = dy[i];%s dx[i] = %s; }\n}\n", unaryGradName(op), reads, k.grad)
	}
	for _, op := range tensor.BinaryOps() {
		k := binaryKernels[op]
		fmt.Fprintf(&b, `
extern "C" __global__ void %s(float *out, const float *a, const float *b, i64 n, int rank, Dims size, Dims sa, Dims sb) {
	GRID_LOOP(i, n) { i64 oa, ob; strided2(i, rank, size, sa, sb, oa, ob); float x = a[oa], y = b[ob]; out[i] = %s; }
}
`, binaryName(op), k.fwd)
		for _, g := range []struct {
			operand byte
			expr    string
		}{{'a', k.gradA}, {'b', k.gradB}} {
			fmt.Fprintf(&b, `
extern "C" __global__ void %s(float *out, const float *dy, const float *a, const float *b, i64 n, int rank, Dims size, Dims sa, Dims sb) {
	GRID_LOOP(i, n) { i64 oa, ob; strided2(i, rank, size, sa, sb, oa, ob); float x = a[oa], y = b[ob], g = dy[i]; (void)x; (void)y; out[i] = %s; }
}
`, binaryGradName(op, g.operand), g.expr)
		}
	}
	return b.String()
}

var elementwiseFamily = &family{name: "elementwise", src: elementwiseSource()}

// reduceFamily sums over the reduced dimensions of reducePlan. reduce_small gives each
// output one thread (few values per output); reduce_large one block per output and
// split of its values, the splits combined by reduce_finish. Sums are in double.
var reduceFamily = &family{name: "reduce", src: `
extern "C" __global__ void reduce_small(float *out, const float *x, i64 nOut, i64 count,
		int kr, Dims ks, Dims kst, int rr, Dims rs, Dims rst, double scale) {
	GRID_LOOP(o, nOut) {
		const float *p = x + (kr > 0 ? strided(o, kr, ks, kst) : 0);
		double acc = 0.0;
		if (rr == 1) {
			i64 st = rst.d[0];
			for (i64 r = 0; r < count; r++) acc += p[r * st];
		} else {
			for (i64 r = 0; r < count; r++) acc += p[strided(r, rr, rs, rst)];
		}
		out[o] = (float)(acc * scale);
	}
}

extern "C" __global__ void reduce_large(float *out, double *partial, const float *x, i64 count,
		int kr, Dims ks, Dims kst, int rr, Dims rs, Dims rst, i64 chunk, double scale) {
	i64 o = blockIdx.x;
	i64 lo = (i64)blockIdx.y * chunk, hi = min(count, lo + chunk);
	const float *p = x + (kr > 0 ? strided(o, kr, ks, kst) : 0);
	double acc = 0.0;
	if (rr == 1) {
		i64 st = rst.d[0];
		for (i64 r = lo + threadIdx.x; r < hi; r += blockDim.x) acc += p[r * st];
	} else {
		for (i64 r = lo + threadIdx.x; r < hi; r += blockDim.x) acc += p[strided(r, rr, rs, rst)];
	}
	acc = block_sum(acc);
	if (threadIdx.x == 0) {
		if (gridDim.y == 1) out[o] = (float)(acc * scale);
		else partial[o * gridDim.y + blockIdx.y] = acc;
	}
}

extern "C" __global__ void reduce_finish(float *out, const double *partial, i64 nOut, int splits, double scale) {
	GRID_LOOP(o, nOut) {
		double acc = 0.0;
		for (int s = 0; s < splits; s++) acc += partial[o * splits + s];
		out[o] = (float)(acc * scale);
	}
}

extern "C" __global__ void fill_f32(float *out, i64 n, float v) {
	GRID_LOOP(i, n) out[i] = v;
}
`}

// layoutFamily copies blocks of rows: Concat, Slice and SliceBackward are each a few
// such copies between tensors viewed as (rows, columns).
var layoutFamily = &family{name: "layout", src: `
extern "C" __global__ void copy_rows(float *dst, i64 dstStride, const float *src, i64 srcStride, i64 rows, i64 cols) {
	GRID_LOOP(i, rows * cols) {
		i64 r = i / cols, c = i - r * cols;
		dst[r * dstStride + c] = src[r * srcStride + c];
	}
}
`}

// adamFamily is torch.optim.Adam's update in one pass over the four tensors, with the
// CPU backend's float32 arithmetic (cpu/adam.go).
var adamFamily = &family{name: "adam", src: `
extern "C" __global__ void adam_step(float *p, const float *g, float *m, float *v, i64 n,
		float b1, float b2, float c1, float c2, float wd, float eps, float stepSize, float bc2Sqrt) {
	GRID_LOOP(i, n) {
		float gi = g[i];
		if (wd != 0.0f) gi += wd * p[i];
		float mi = b1 * m[i] + c1 * gi;
		float vi = b2 * v[i] + c2 * gi * gi;
		m[i] = mi;
		v[i] = vi;
		p[i] -= stepSize * mi / (sqrtf(vi) / bc2Sqrt + eps);
	}
}
`}

// allFamilies lists every family, for tests that compile them all.
var allFamilies = []*family{elementwiseFamily, reduceFamily, layoutFamily, adamFamily, convFamily, imageFamily, samplingFamily}
