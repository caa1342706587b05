package backendtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
)

// The image ops (NCHW): padding, batch norm, pooling, nearest and bilinear resizing.
//
// The ops that only move or mix pixels are linear, so their float64 reference is a
// sparse matrix (for every output element, the input elements and weights it sums),
// written here from PyTorch's definitions with naive loops. Its product is the
// forward, its transpose the backward of every shape, large ones included (they are
// what splits work over threads); finite differences of the product check the
// backward kernels on small shapes, as for every other op.

func (s *suite) testImage(t *testing.T) {
	t.Run("pad2d", s.testPad2D)
	t.Run("batchnorm", s.testBatchNorm)
	t.Run("maxpool2d", s.testMaxPool2D)
	t.Run("avgpool2d", s.testAvgPool2D)
	t.Run("upsamplenearest", s.testUpsampleNearest)
	t.Run("resizebilinear", s.testResizeBilinear)
	t.Run("shapes", s.testImageShapes)
}

// gradLimit is the largest input whose gradient is checked by finite differences.
const gradLimit = 600

func prod(shape []int) int { return tensor.Shape(shape).Len() }

// tap is one term of a sparse row: weight w times input element i.
type tap struct {
	i int
	w float64
}

// sparse is a linear map from in elements: out[o] = Σ w·x[i] over rows[o].
type sparse struct {
	in   int
	rows [][]tap
}

func (m *sparse) apply(x []float64) []float64 {
	y := make([]float64, len(m.rows))
	for o, row := range m.rows {
		for _, t := range row {
			y[o] += t.w * x[t.i]
		}
	}
	return y
}

func (m *sparse) transpose(dy []float64) []float64 {
	dx := make([]float64, m.in)
	for o, row := range m.rows {
		for _, t := range row {
			dx[t.i] += t.w * dy[o]
		}
	}
	return dx
}

// linCase is a linear image op on one input shape, with its reference.
type linCase struct {
	name     string
	in, out  []int
	ref      *sparse
	forward  func(x *tensor.Tensor) (*tensor.Tensor, error)
	backward func(dy *tensor.Tensor) (*tensor.Tensor, error)
}

// checkLinear runs c's forward and backward kernels on fresh random operands against
// the reference and, for small inputs, the backward against finite differences.
func (s *suite) checkLinear(t *testing.T, r *rand.Rand, c linCase) {
	t.Helper()
	x := randn(r, prod(c.in))
	y, err := c.forward(s.put(t, x, c.in...))
	if err != nil {
		t.Fatalf("%s forward: %v", c.name, err)
	}
	xr := rounded(x)
	close(t, c.name+" forward", s.get(t, c.name+" forward", y, c.out...), c.ref.apply(xr), s.tol.Forward)
	dy := randn(r, prod(c.out))
	dx, err := c.backward(s.put(t, dy, c.out...))
	if err != nil {
		t.Fatalf("%s backward: %v", c.name, err)
	}
	dyr := rounded(dy)
	got := s.get(t, c.name+" backward", dx, c.in...)
	close(t, c.name+" backward", got, c.ref.transpose(dyr), s.tol.Forward)
	if len(x) <= gradLimit {
		s.checkGrad(t, c.name+" gradient", got, c.ref.apply, xr, dyr)
	}
}

// ---------------------------------------------------------------- pad

// reflectRef mirrors index i into [0, n) without repeating the edge: -1 is 1, n is
// n-2 (PyTorch's "reflect").
func reflectRef(i, n int) int {
	if i < 0 {
		return -i
	}
	if i >= n {
		return 2*(n-1) - i
	}
	return i
}

// refPad is Pad2D over the last two dimensions of shape.
func refPad(shape []int, p tensor.Pad2DParams) (*sparse, []int) {
	r := len(shape)
	h, w := shape[r-2], shape[r-1]
	oh, ow := h+p.Top+p.Bottom, w+p.Left+p.Right
	out := append(append([]int(nil), shape[:r-2]...), oh, ow)
	planes := prod(shape[:r-2])
	m := &sparse{in: prod(shape), rows: make([][]tap, prod(out))}
	for pl := 0; pl < planes; pl++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				iy, ix := oy-p.Top, ox-p.Left
				if p.Mode == tensor.PadReflect {
					iy, ix = reflectRef(iy, h), reflectRef(ix, w)
				} else if iy < 0 || iy >= h || ix < 0 || ix >= w {
					continue
				}
				o := (pl*oh+oy)*ow + ox
				m.rows[o] = []tap{{(pl*h+iy)*w + ix, 1}}
			}
		}
	}
	return m, out
}

func (s *suite) testPad2D(t *testing.T) {
	r := s.rng(t)
	zero, refl := tensor.PadZero, tensor.PadReflect
	for _, c := range []struct {
		in []int
		p  tensor.Pad2DParams
	}{
		{[]int{2, 3, 5, 7}, tensor.Pad2DParams{Top: 1, Bottom: 2, Left: 3, Right: 0, Mode: zero}},
		{[]int{1, 2, 3, 3}, tensor.Pad2DParams{Mode: zero}},
		{[]int{2, 3, 5, 7}, tensor.Pad2DParams{Top: 1, Bottom: 1, Left: 1, Right: 1, Mode: refl}},
		{[]int{1, 2, 6, 5}, tensor.Pad2DParams{Top: 2, Bottom: 3, Left: 4, Right: 1, Mode: refl}},
		{[]int{1, 1, 2, 2}, tensor.Pad2DParams{Top: 1, Bottom: 1, Left: 1, Right: 1, Mode: refl}},
		{[]int{3, 4, 6}, tensor.Pad2DParams{Top: 3, Bottom: 0, Left: 0, Right: 5, Mode: refl}},
		{[]int{4, 8, 47, 61}, tensor.Pad2DParams{Top: 1, Bottom: 1, Left: 1, Right: 1, Mode: refl}},
		{[]int{3, 8, 45, 60}, tensor.Pad2DParams{Top: 2, Bottom: 1, Left: 0, Right: 3, Mode: zero}},
	} {
		ref, out := refPad(c.in, c.p)
		s.checkLinear(t, r, linCase{
			name: fmt.Sprintf("pad2d %v %+v", tensor.Shape(c.in), c.p),
			in:   c.in, out: out, ref: ref,
			forward:  func(x *tensor.Tensor) (*tensor.Tensor, error) { return s.b.Pad2D(x, c.p) },
			backward: func(dy *tensor.Tensor) (*tensor.Tensor, error) { return s.b.Pad2DBackward(dy, c.p) },
		})
	}
}

// ---------------------------------------------------------------- pooling

// poolOut is the floor-mode output size of one axis.
func poolOut(in, k, s, p int) int { return (in+2*p-k)/s + 1 }

// refAvgPool is AvgPool2D with count_include_pad: padding adds zeros to each window,
// which always divides by the kernel's area.
func refAvgPool(shape []int, p tensor.Pool2DParams) (*sparse, []int) {
	p = p.Norm()
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	oh := poolOut(h, p.Kernel[0], p.Stride[0], p.Padding[0])
	ow := poolOut(w, p.Kernel[1], p.Stride[1], p.Padding[1])
	out := []int{n, c, oh, ow}
	wt := 1 / float64(p.Kernel[0]*p.Kernel[1])
	m := &sparse{in: prod(shape), rows: make([][]tap, prod(out))}
	for pl := 0; pl < n*c; pl++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				var row []tap
				for ky := 0; ky < p.Kernel[0]; ky++ {
					for kx := 0; kx < p.Kernel[1]; kx++ {
						iy, ix := oy*p.Stride[0]-p.Padding[0]+ky, ox*p.Stride[1]-p.Padding[1]+kx
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							row = append(row, tap{(pl*h+iy)*w + ix, wt})
						}
					}
				}
				m.rows[(pl*oh+oy)*ow+ox] = row
			}
		}
	}
	return m, out
}

// refMaxPool is MaxPool2D: the maximum over the in-bounds part of each window, scanned
// row-major with the first maximum winning, and its index within the plane.
func refMaxPool(x []float64, shape []int, p tensor.Pool2DParams) (y []float64, argmax []int, out []int) {
	p = p.Norm()
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	oh := poolOut(h, p.Kernel[0], p.Stride[0], p.Padding[0])
	ow := poolOut(w, p.Kernel[1], p.Stride[1], p.Padding[1])
	out = []int{n, c, oh, ow}
	y, argmax = make([]float64, prod(out)), make([]int, prod(out))
	for pl := 0; pl < n*c; pl++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				best, bi := 0.0, -1
				for ky := 0; ky < p.Kernel[0]; ky++ {
					for kx := 0; kx < p.Kernel[1]; kx++ {
						iy, ix := oy*p.Stride[0]-p.Padding[0]+ky, ox*p.Stride[1]-p.Padding[1]+kx
						if iy < 0 || iy >= h || ix < 0 || ix >= w {
							continue
						}
						if v := x[(pl*h+iy)*w+ix]; bi < 0 || v > best {
							best, bi = v, iy*w+ix
						}
					}
				}
				o := (pl*oh+oy)*ow + ox
				y[o], argmax[o] = best, bi
			}
		}
	}
	return y, argmax, out
}

var poolCases = []struct {
	in []int
	p  tensor.Pool2DParams
}{
	{[]int{2, 3, 9, 10}, tensor.Pool2DParams{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}}, // ResNet stem
	{[]int{2, 3, 8, 10}, tensor.Pool2DParams{Kernel: [2]int{2, 2}}},                                              // Monodepth2 pyramid
	{[]int{1, 3, 9, 11}, tensor.Pool2DParams{Kernel: [2]int{2, 2}}},                                              // odd: floor drops a row and a column
	{[]int{2, 2, 7, 6}, tensor.Pool2DParams{Kernel: [2]int{3, 3}, Stride: [2]int{1, 1}, Padding: [2]int{1, 1}}},
	{[]int{1, 2, 7, 8}, tensor.Pool2DParams{Kernel: [2]int{3, 2}, Stride: [2]int{2, 1}, Padding: [2]int{1, 1}}},
	{[]int{2, 2, 8, 7}, tensor.Pool2DParams{Kernel: [2]int{2, 3}, Stride: [2]int{3, 2}, Padding: [2]int{1, 0}}},
	{[]int{1, 2, 5, 6}, tensor.Pool2DParams{Kernel: [2]int{2, 2}, Stride: [2]int{1, 1}, Padding: [2]int{1, 1}}},   // corner windows hold one pixel
	{[]int{2, 2, 10, 11}, tensor.Pool2DParams{Kernel: [2]int{2, 2}, Stride: [2]int{3, 3}, Padding: [2]int{1, 1}}}, // gaps between windows
	{[]int{1, 2, 9, 8}, tensor.Pool2DParams{Kernel: [2]int{3, 2}, Stride: [2]int{3, 2}, Padding: [2]int{1, 0}}},
	{[]int{1, 2, 9, 10}, tensor.Pool2DParams{Kernel: [2]int{3, 3}, Stride: [2]int{2, 3}}},
	{[]int{4, 8, 64, 90}, tensor.Pool2DParams{Kernel: [2]int{2, 2}}},
	{[]int{3, 8, 41, 57}, tensor.Pool2DParams{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}},
}

func (s *suite) testAvgPool2D(t *testing.T) {
	r := s.rng(t)
	for _, c := range poolCases {
		ref, out := refAvgPool(c.in, c.p)
		s.checkLinear(t, r, linCase{
			name: fmt.Sprintf("avgpool2d %v %+v", tensor.Shape(c.in), c.p),
			in:   c.in, out: out, ref: ref,
			forward: func(x *tensor.Tensor) (*tensor.Tensor, error) { return s.b.AvgPool2D(x, c.p) },
			backward: func(dy *tensor.Tensor) (*tensor.Tensor, error) {
				return s.b.AvgPool2DBackward(dy, tensor.Shape(c.in), c.p)
			},
		})
	}
}

func (s *suite) testMaxPool2D(t *testing.T) {
	r := s.rng(t)
	// distinct: a shuffled ramp with steps of 1/64, far above the finite-difference
	// step, so no perturbation changes a winner.
	distinct := func(n int) []float64 {
		v := make([]float64, n)
		for i, k := range r.Perm(n) {
			v[i] = float64(k-n/2) / 64
		}
		return v
	}
	// ties: few distinct values, so windows hold equal maxima and the first must win.
	ties := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(r.IntN(3) - 1)
		}
		return v
	}
	// negative: with padding, a zero from the border would win if padding took part.
	negative := func(n int) []float64 { return uniform(r, n, -2, -1) }
	inputs := []struct {
		name string
		gen  func(int) []float64
	}{{"distinct", distinct}, {"ties", ties}, {"negative", negative}, {"normal", func(n int) []float64 { return randn(r, n) }}}
	for _, c := range poolCases {
		for _, in := range inputs {
			name := fmt.Sprintf("maxpool2d %s %v %+v", in.name, tensor.Shape(c.in), c.p)
			x := in.gen(prod(c.in))
			xr := rounded(x)
			wantY, wantArg, out := refMaxPool(xr, c.in, c.p)
			y, arg, err := s.b.MaxPool2D(s.put(t, x, c.in...), c.p)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			close(t, name, s.get(t, name, y, out...), wantY, s.tol.Forward)
			if arg == nil || arg.DType != tensor.Int32 || !arg.Shape.Equal(out) {
				t.Fatalf("%s: argmax %v, want int32%v", name, arg, tensor.Shape(out))
			}
			// Int32 tensors need not come back to the host: the argmax is checked
			// through the backward kernel, which must route a one-hot gradient to it.
			dy := randn(r, prod(out))
			dyr := rounded(dy)
			dx, err := s.b.MaxPool2DBackward(s.put(t, dy, out...), arg, tensor.Shape(c.in))
			if err != nil {
				t.Fatalf("%s backward: %v", name, err)
			}
			got := s.get(t, name+" backward", dx, c.in...)
			want := make([]float64, len(x))
			for o, i := range wantArg {
				pl := o / (out[2] * out[3])
				want[pl*c.in[2]*c.in[3]+i] += dyr[o]
			}
			close(t, name+" backward", got, want, s.tol.Forward)
			// A wrong argmax (a later one of equal maxima, say) routes a gradient to
			// another pixel, which a norm over many pixels could hide.
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-5*(1+math.Abs(want[i])) {
					t.Errorf("%s: gradient of pixel %d is %g, want %g: is the argmax the window's first maximum?", name, i, got[i], want[i])
					break
				}
			}
			if in.name == "distinct" && len(x) <= gradLimit {
				s.checkGrad(t, name+" gradient", got, func(v []float64) []float64 {
					y, _, _ := refMaxPool(v, c.in, c.p)
					return y
				}, xr, dyr)
			}
		}
	}
}

// ---------------------------------------------------------------- resizing

// refUpsample is nearest upsampling by an integer factor: output (y, x) reads input
// (y/f, x/f).
func refUpsample(shape []int, f int) (*sparse, []int) {
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	out := []int{n, c, h * f, w * f}
	m := &sparse{in: prod(shape), rows: make([][]tap, prod(out))}
	for pl := 0; pl < n*c; pl++ {
		for oy := 0; oy < h*f; oy++ {
			for ox := 0; ox < w*f; ox++ {
				m.rows[(pl*h*f+oy)*w*f+ox] = []tap{{(pl*h+oy/f)*w + ox/f, 1}}
			}
		}
	}
	return m, out
}

func (s *suite) testUpsampleNearest(t *testing.T) {
	r := s.rng(t)
	for _, c := range []struct {
		in []int
		f  int
	}{
		{[]int{2, 3, 5, 7}, 2},
		{[]int{2, 3, 5, 7}, 3},
		{[]int{1, 2, 4, 3}, 1},
		{[]int{1, 1, 1, 1}, 4},
		{[]int{4, 8, 40, 50}, 2},
		{[]int{2, 8, 23, 31}, 3},
	} {
		ref, out := refUpsample(c.in, c.f)
		s.checkLinear(t, r, linCase{
			name: fmt.Sprintf("upsamplenearest %v x%d", tensor.Shape(c.in), c.f),
			in:   c.in, out: out, ref: ref,
			forward:  func(x *tensor.Tensor) (*tensor.Tensor, error) { return s.b.UpsampleNearest(x, c.f) },
			backward: func(dy *tensor.Tensor) (*tensor.Tensor, error) { return s.b.UpsampleNearestBackward(dy, c.f) },
		})
	}
}

// bilinearRef is where output index d of an axis resized from in to out reads, by
// PyTorch's align_corners=False: pixel centres line up, so d sits at
// (d + 0.5)·in/out - 0.5 in input coordinates; a coordinate below 0 reads pixel 0
// (no extrapolation), and the upper neighbour is clamped to the last pixel.
func bilinearRef(d, in, out int) (i0, i1 int, w0, w1 float64) {
	src := (float64(d)+0.5)*float64(in)/float64(out) - 0.5
	if src < 0 {
		src = 0
	}
	i0 = int(math.Floor(src))
	i1 = i0 + 1
	if i1 > in-1 {
		i1 = in - 1
	}
	w1 = src - float64(i0)
	return i0, i1, 1 - w1, w1
}

func refResize(shape []int, oh, ow int) (*sparse, []int) {
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	out := []int{n, c, oh, ow}
	m := &sparse{in: prod(shape), rows: make([][]tap, prod(out))}
	for pl := 0; pl < n*c; pl++ {
		for oy := 0; oy < oh; oy++ {
			y0, y1, wy0, wy1 := bilinearRef(oy, h, oh)
			for ox := 0; ox < ow; ox++ {
				x0, x1, wx0, wx1 := bilinearRef(ox, w, ow)
				base := pl * h * w
				m.rows[(pl*oh+oy)*ow+ox] = []tap{
					{base + y0*w + x0, wy0 * wx0}, {base + y0*w + x1, wy0 * wx1},
					{base + y1*w + x0, wy1 * wx0}, {base + y1*w + x1, wy1 * wx1},
				}
			}
		}
	}
	return m, out
}

func (s *suite) testResizeBilinear(t *testing.T) {
	r := s.rng(t)
	for _, c := range []struct {
		in     []int
		oh, ow int
	}{
		{[]int{2, 3, 5, 7}, 10, 14}, // x2
		{[]int{1, 2, 4, 5}, 12, 15}, // x3
		{[]int{2, 3, 5, 7}, 13, 9},  // up by non-integer ratios
		{[]int{2, 3, 9, 11}, 4, 5},  // down by non-integer ratios
		{[]int{1, 2, 8, 12}, 2, 3},  // down by 4
		{[]int{2, 2, 6, 5}, 4, 11},  // down in one axis, up in the other
		{[]int{1, 3, 5, 7}, 5, 7},   // identity
		{[]int{1, 2, 1, 1}, 4, 5},   // a single pixel spread
		{[]int{1, 2, 6, 7}, 1, 1},   // to a single pixel
		{[]int{2, 4, 48, 64}, 192, 256},
		{[]int{2, 4, 96, 128}, 37, 53},
	} {
		ref, out := refResize(c.in, c.oh, c.ow)
		s.checkLinear(t, r, linCase{
			name: fmt.Sprintf("resizebilinear %v to %dx%d", tensor.Shape(c.in), c.oh, c.ow),
			in:   c.in, out: out, ref: ref,
			forward: func(x *tensor.Tensor) (*tensor.Tensor, error) { return s.b.ResizeBilinear(x, c.oh, c.ow) },
			backward: func(dy *tensor.Tensor) (*tensor.Tensor, error) {
				return s.b.ResizeBilinearBackward(dy, tensor.Shape(c.in))
			},
		})
	}
}

// ---------------------------------------------------------------- batch norm

type bnOut struct {
	y, mean, invStd, runMean, runVar []float64
}

// refBatchNorm is torch.nn.BatchNorm2d: in training the batch mean and biased
// variance over (n, h, w) normalise, and the running statistics move towards the
// mean and the unbiased variance; in eval the running statistics normalise.
func refBatchNorm(x []float64, shape []int, gamma, beta, runMean, runVar []float64, eps, momentum float64, training bool) bnOut {
	n, c, hw := shape[0], shape[1], shape[2]*shape[3]
	o := bnOut{
		y: make([]float64, len(x)), mean: make([]float64, c), invStd: make([]float64, c),
		runMean: append([]float64(nil), runMean...), runVar: append([]float64(nil), runVar...),
	}
	m := float64(n * hw)
	for ch := 0; ch < c; ch++ {
		mu, v := runMean[ch], runVar[ch]
		if training {
			var sum, sq float64
			for i := 0; i < n; i++ {
				for _, xv := range x[(i*c+ch)*hw : (i*c+ch+1)*hw] {
					sum += xv
				}
			}
			mu = sum / m
			for i := 0; i < n; i++ {
				for _, xv := range x[(i*c+ch)*hw : (i*c+ch+1)*hw] {
					sq += (xv - mu) * (xv - mu)
				}
			}
			v = sq / m
			o.runMean[ch] = (1-momentum)*runMean[ch] + momentum*mu
			o.runVar[ch] = (1-momentum)*runVar[ch] + momentum*sq/(m-1)
		}
		o.mean[ch], o.invStd[ch] = mu, 1/math.Sqrt(v+eps)
		for i := 0; i < n; i++ {
			for j := (i*c + ch) * hw; j < (i*c+ch+1)*hw; j++ {
				o.y[j] = (x[j]-mu)*o.invStd[ch]*gamma[ch] + beta[ch]
			}
		}
	}
	return o
}

// refBatchNormBackward is the analytic gradient, for shapes too large for finite
// differences: with x̂ = (x - mean)·invStd, dbeta = Σdy, dgamma = Σdy·x̂, and dx is
// dy·gamma·invStd for frozen statistics, gamma·invStd·(dy - mean(dy) - x̂·mean(dy·x̂))
// for batch ones.
func refBatchNormBackward(x, dy []float64, shape []int, gamma, mean, invStd []float64, training bool) (dx, dgamma, dbeta []float64) {
	n, c, hw := shape[0], shape[1], shape[2]*shape[3]
	dx, dgamma, dbeta = make([]float64, len(x)), make([]float64, c), make([]float64, c)
	m := float64(n * hw)
	for ch := 0; ch < c; ch++ {
		idx := func(yield func(int) bool) {
			for i := 0; i < n; i++ {
				for j := (i*c + ch) * hw; j < (i*c+ch+1)*hw; j++ {
					if !yield(j) {
						return
					}
				}
			}
		}
		for j := range idx {
			dbeta[ch] += dy[j]
			dgamma[ch] += dy[j] * (x[j] - mean[ch]) * invStd[ch]
		}
		for j := range idx {
			dx[j] = dy[j] * gamma[ch] * invStd[ch]
			if training {
				xh := (x[j] - mean[ch]) * invStd[ch]
				dx[j] = gamma[ch] * invStd[ch] * (dy[j] - dbeta[ch]/m - xh*dgamma[ch]/m)
			}
		}
	}
	return dx, dgamma, dbeta
}

func (s *suite) testBatchNorm(t *testing.T) {
	r := s.rng(t)
	for _, c := range []struct {
		in            []int
		eps, momentum float32
		offset        float64 // added to x: a mean far from 0 against a spread of 1
		training      bool
	}{
		{[]int{2, 3, 5, 7}, 1e-5, 0.1, 0, false},
		{[]int{2, 3, 5, 7}, 1e-5, 0.1, 0, true},
		{[]int{1, 4, 3, 3}, 1e-3, 0.3, 0, true},
		{[]int{5, 2, 1, 1}, 1e-5, 0.1, 0, true},
		{[]int{2, 3, 4, 5}, 1e-5, 0.1, 10, true},
		{[]int{4, 32, 24, 40}, 1e-5, 0.1, 0, true},
		{[]int{4, 32, 24, 40}, 1e-5, 0.1, 0, false},
	} {
		name := fmt.Sprintf("batchnorm %v eps %g momentum %g offset %g training %v", tensor.Shape(c.in), c.eps, c.momentum, c.offset, c.training)
		ch := c.in[1]
		x := randn(r, prod(c.in))
		for i := range x {
			x[i] = c.offset + 2*x[i]
		}
		gamma, beta := uniform(r, ch, 0.5, 1.5), randn(r, ch)
		runMean, runVar := randn(r, ch), uniform(r, ch, 0.5, 2)
		xr, gr, br, rmr, rvr := rounded(x), rounded(gamma), rounded(beta), rounded(runMean), rounded(runVar)
		eps, mom := float64(c.eps), float64(c.momentum)
		want := refBatchNorm(xr, c.in, gr, br, rmr, rvr, eps, mom, c.training)

		xt, gt := s.put(t, x, c.in...), s.put(t, gamma, ch)
		rmt, rvt := s.put(t, runMean, ch), s.put(t, runVar, ch)
		p := tensor.BatchNormParams{Eps: c.eps, Momentum: c.momentum, Training: c.training}
		y, mean, invStd, err := s.b.BatchNorm(xt, gt, s.put(t, beta, ch), rmt, rvt, p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		close(t, name+" y", s.get(t, name+" y", y, c.in...), want.y, s.tol.Forward)
		close(t, name+" mean", s.get(t, name+" mean", mean, ch), want.mean, s.tol.Forward)
		close(t, name+" invStd", s.get(t, name+" invStd", invStd, ch), want.invStd, s.tol.Forward)
		// Eval leaves the running statistics exactly as they were.
		tol := 0.0
		if c.training {
			tol = s.tol.Forward
		}
		close(t, name+" running mean", s.get(t, name+" running mean", rmt, ch), want.runMean, tol)
		close(t, name+" running var", s.get(t, name+" running var", rvt, ch), want.runVar, tol)

		dy := randn(r, len(x))
		dyr := rounded(dy)
		meanUsed := s.get(t, name+" mean", mean, ch)
		invStdUsed := s.get(t, name+" invStd", invStd, ch)
		dx, dgamma, dbeta, err := s.b.BatchNormBackward(xt, gt, mean, invStd, s.put(t, dy, c.in...), c.training)
		if err != nil {
			t.Fatalf("%s backward: %v", name, err)
		}
		gotDx := s.get(t, name+" dx", dx, c.in...)
		gotDg := s.get(t, name+" dgamma", dgamma, ch)
		gotDb := s.get(t, name+" dbeta", dbeta, ch)
		wdx, wdg, wdb := refBatchNormBackward(xr, dyr, c.in, gr, meanUsed, invStdUsed, c.training)
		close(t, name+" dx", gotDx, wdx, s.tol.Forward)
		close(t, name+" dgamma", gotDg, wdg, s.tol.Forward)
		close(t, name+" dbeta", gotDb, wdb, s.tol.Forward)
		if len(x) > gradLimit {
			continue
		}
		// Finite differences through the whole forward: in training they see the
		// batch statistics move with x, which BatchNormBackward must account for.
		s.checkGrad(t, name+" dx gradient", gotDx, func(v []float64) []float64 {
			return refBatchNorm(v, c.in, gr, br, rmr, rvr, eps, mom, c.training).y
		}, xr, dyr)
		s.checkGrad(t, name+" dgamma gradient", gotDg, func(v []float64) []float64 {
			return refBatchNorm(xr, c.in, v, br, rmr, rvr, eps, mom, c.training).y
		}, gr, dyr)
		s.checkGrad(t, name+" dbeta gradient", gotDb, func(v []float64) []float64 {
			return refBatchNorm(xr, c.in, gr, v, rmr, rvr, eps, mom, c.training).y
		}, br, dyr)
	}
}

// ---------------------------------------------------------------- shape errors

func (s *suite) testImageShapes(t *testing.T) {
	r := s.rng(t)
	x := func(shape ...int) *tensor.Tensor { return s.put(t, randn(r, prod(shape)), shape...) }
	reflect1 := tensor.Pad2DParams{Top: 1, Bottom: 1, Left: 1, Right: 1, Mode: tensor.PadReflect}
	pool3 := tensor.Pool2DParams{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}
	bn := tensor.BatchNormParams{Eps: 1e-5, Momentum: 0.1, Training: true}
	second := func(_ *tensor.Tensor, err error) error { return err }
	third := func(_, _ *tensor.Tensor, err error) error { return err }
	fourth := func(_, _, _ *tensor.Tensor, err error) error { return err }
	x4 := x(2, 3, 6, 7)
	c3 := x(3)
	for _, c := range []struct {
		op  string
		err error
	}{
		{"pad2d", second(s.b.Pad2D(x(5), reflect1))},
		{"pad2d", second(s.b.Pad2D(x(1, 1, 3, 1), reflect1))}, // reflection needs a pad below the size
		{"pad2dbackward", second(s.b.Pad2DBackward(x(1, 1, 2, 5), tensor.Pad2DParams{Top: 2, Bottom: 1}))},
		{"pad2dbackward", second(s.b.Pad2DBackward(x(1, 1, 4, 4), tensor.Pad2DParams{Top: 2, Bottom: 1, Mode: tensor.PadReflect}))},
		{"batchnorm", fourth(s.b.BatchNorm(x4, x(4), c3, c3, c3, bn))},
		{"batchnorm", fourth(s.b.BatchNorm(x(3, 6, 7), c3, c3, c3, c3, bn))},
		{"batchnorm", fourth(s.b.BatchNorm(x(1, 3, 1, 1), c3, c3, c3, c3, bn))}, // one value per channel
		{"batchnormbackward", fourth(s.b.BatchNormBackward(x4, c3, c3, c3, x(2, 3, 7, 6), true))},
		{"batchnormbackward", fourth(s.b.BatchNormBackward(x4, c3, x(2), c3, x4, false))},
		{"maxpool2d", third(s.b.MaxPool2D(x(3, 6, 7), pool3))},
		{"maxpool2d", third(s.b.MaxPool2D(x(1, 1, 2, 2), tensor.Pool2DParams{Kernel: [2]int{5, 5}, Padding: [2]int{1, 1}}))},
		{"maxpool2d", third(s.b.MaxPool2D(x(1, 1, 2, 9), tensor.Pool2DParams{Kernel: [2]int{3, 3}}))},
		{"avgpool2d", second(s.b.AvgPool2D(x(1, 1, 9, 2), tensor.Pool2DParams{Kernel: [2]int{3, 3}}))},
		{"avgpool2dbackward", second(s.b.AvgPool2DBackward(x(2, 3, 3, 3), tensor.Shape{2, 3, 6, 7}, pool3))},
		{"avgpool2dbackward", second(s.b.AvgPool2DBackward(x(2, 3, 3, 4), tensor.Shape{2, 4, 6, 7}, pool3))},
		{"upsamplenearest", second(s.b.UpsampleNearest(x(3, 4, 5), 2))},
		{"upsamplenearestbackward", second(s.b.UpsampleNearestBackward(x(1, 2, 5, 6), 2))},
		{"resizebilinear", second(s.b.ResizeBilinear(x(4, 5), 8, 10))},
		{"resizebilinear", second(s.b.ResizeBilinear(x4, 0, 10))},
		{"resizebilinearbackward", second(s.b.ResizeBilinearBackward(x(2, 3, 8, 8), tensor.Shape{1, 3, 4, 4}))},
		{"resizebilinearbackward", second(s.b.ResizeBilinearBackward(x(2, 3, 8, 8), tensor.Shape{3, 4, 4}))},
	} {
		wantShapeError(t, c.op, c.err)
	}
	// MaxPool2DBackward needs an argmax; take it from a forward on the right shapes.
	y, arg, err := s.b.MaxPool2D(x4, pool3)
	if err != nil {
		t.Fatalf("maxpool2d %v: %v", x4.Shape, err)
	}
	_, err = s.b.MaxPool2DBackward(x(2, 3, 4, 3), arg, x4.Shape)
	wantShapeError(t, "maxpool2dbackward", err)
	_, err = s.b.MaxPool2DBackward(y, arg, tensor.Shape{2, 4, 6, 7})
	wantShapeError(t, "maxpool2dbackward", err)
}
