package backendtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
)

func (s *suite) testLinalg(t *testing.T) {
	t.Run("matmul", s.testMatMul)
	t.Run("matmul_backward", s.testMatMulBackward)
	t.Run("matmul_errors", s.testMatMulErrors)
	t.Run("conv2d", s.testConv2D)
	t.Run("conv2d_backward", s.testConv2DBackward)
	t.Run("conv2d_backward_large", s.testConv2DBackwardLarge)
	t.Run("conv2d_errors", s.testConv2DErrors)
}

// ---------------------------------------------------------------- matrix products

// mmCase is one MatMul: a's and b's batch dimensions, the product's m, k, n; a is built
// (…, m, k) or, with transA, (…, k, m), and b likewise.
type mmCase struct {
	batchA, batchB []int
	m, k, n        int
	transA, transB bool
}

func (c mmCase) shapes() (as, bs []int) {
	as = append(append([]int(nil), c.batchA...), c.m, c.k)
	if c.transA {
		as[len(as)-2], as[len(as)-1] = c.k, c.m
	}
	bs = append(append([]int(nil), c.batchB...), c.k, c.n)
	if c.transB {
		bs[len(bs)-2], bs[len(bs)-1] = c.n, c.k
	}
	return as, bs
}

func (c mmCase) String() string {
	as, bs := c.shapes()
	return fmt.Sprintf("%v%s×%v%s", as, transMark(c.transA), bs, transMark(c.transB))
}

func transMark(t bool) string {
	if t {
		return "ᵀ"
	}
	return ""
}

// withTrans returns the case under every combination of transA and transB.
func withTrans(cs ...mmCase) []mmCase {
	var out []mmCase
	for _, c := range cs {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				c.transA, c.transB = ta, tb
				out = append(out, c)
			}
		}
	}
	return out
}

func linalgLen(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// refMatMul is the float64 reference of MatMul: naive loops, batch dimensions aligned
// at the end with size 1 (or missing) repeating.
func refMatMul(a []float64, as []int, b []float64, bs []int, transA, transB bool) ([]float64, []int) {
	ra, rb := len(as), len(bs)
	m, k := as[ra-2], as[ra-1]
	if transA {
		m, k = k, m
	}
	n := bs[rb-1]
	if transB {
		n = bs[rb-2]
	}
	r := max(ra, rb) - 2
	dimOf := func(s []int, i int) int { // batch dimension i (of r) of shape s, 1 if missing
		if j := len(s) - 2 - r + i; j >= 0 {
			return s[j]
		}
		return 1
	}
	batch := make([]int, r)
	for i := range batch {
		batch[i] = dimOf(as, i)
		if batch[i] == 1 {
			batch[i] = dimOf(bs, i) // 1 stretches to the other's size, even to 0
		}
	}
	out := make([]float64, linalgLen(batch)*m*n)
	idx := make([]int, r)
	for bi := 0; bi < linalgLen(batch); bi++ {
		rem := bi
		for i := r - 1; i >= 0; i-- {
			idx[i] = rem % batch[i]
			rem /= batch[i]
		}
		offA, offB := 0, 0
		for i := 0; i < r; i++ {
			da, db := dimOf(as, i), dimOf(bs, i)
			offA = offA*da + idx[i]%da
			offB = offB*db + idx[i]%db
		}
		offA *= m * k
		offB *= k * n
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var sum float64
				for l := 0; l < k; l++ {
					av := a[offA+i*k+l]
					if transA {
						av = a[offA+l*m+i]
					}
					bv := b[offB+l*n+j]
					if transB {
						bv = b[offB+j*k+l]
					}
					sum += av * bv
				}
				out[bi*m*n+i*n+j] = sum
			}
		}
	}
	return out, append(batch, m, n)
}

func (s *suite) testMatMul(t *testing.T) {
	r := s.rng(t)
	cases := withTrans(
		mmCase{m: 3, k: 4, n: 5},
		mmCase{m: 1, k: 7, n: 1},     // vectors
		mmCase{m: 5, k: 1, n: 3},     // outer product
		mmCase{m: 13, k: 17, n: 11},  // odd sizes
		mmCase{m: 64, k: 80, n: 72},  // large enough to be split across threads
		mmCase{m: 200, k: 48, n: 24}, // split along the rows
		mmCase{batchA: []int{2}, batchB: []int{2}, m: 3, k: 5, n: 4},
		mmCase{batchA: []int{2, 3}, batchB: []int{3}, m: 2, k: 3, n: 4},       // b's batch broadcasts
		mmCase{batchA: []int{2, 1}, batchB: []int{3, 1, 2}, m: 2, k: 3, n: 2}, // both broadcast
		mmCase{batchA: []int{1}, batchB: []int{4}, m: 3, k: 2, n: 5},          // size-1 batch
		mmCase{batchB: []int{3}, m: 4, k: 3, n: 2},                            // a without batch
		mmCase{batchA: []int{2, 3}, m: 5, k: 4, n: 6},                         // b without batch: one big product
		mmCase{batchA: []int{3}, batchB: []int{3}, m: 64, k: 64, n: 80},       // a few large products, each split
		mmCase{batchA: []int{8}, batchB: []int{8}, m: 32, k: 32, n: 32},       // many batch items in parallel
		mmCase{batchA: []int{0}, batchB: []int{1}, m: 2, k: 3, n: 2},          // empty batch
		mmCase{m: 3, k: 0, n: 2},                                              // empty inner dimension
	)
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			as, bs := c.shapes()
			av, bv := randn(r, linalgLen(as)), randn(r, linalgLen(bs))
			a, b := s.put(t, av, as...), s.put(t, bv, bs...)
			want, ws := refMatMul(rounded(av), as, rounded(bv), bs, c.transA, c.transB)
			y, err := s.b.MatMul(a, b, c.transA, c.transB)
			if err != nil {
				t.Fatalf("MatMul: %v", err)
			}
			close(t, "MatMul", s.get(t, "MatMul", y, ws...), want, s.tol.Forward)
			close(t, "MatMul input a", s.get(t, "a", a, as...), rounded(av), 0)
			close(t, "MatMul input b", s.get(t, "b", b, bs...), rounded(bv), 0)
		})
	}
}

func (s *suite) testMatMulBackward(t *testing.T) {
	r := s.rng(t)
	cases := withTrans(
		mmCase{m: 3, k: 4, n: 5},
		mmCase{m: 1, k: 5, n: 2},
		mmCase{batchA: []int{2}, batchB: []int{2}, m: 2, k: 3, n: 4},
		mmCase{batchA: []int{2, 3}, batchB: []int{3}, m: 2, k: 3, n: 2},       // b's batch broadcasts
		mmCase{batchA: []int{2, 1}, batchB: []int{3, 1, 2}, m: 2, k: 3, n: 2}, // both broadcast
		mmCase{batchA: []int{1}, batchB: []int{3}, m: 3, k: 2, n: 2},          // a's size-1 batch sums
		mmCase{batchB: []int{3}, m: 2, k: 3, n: 2},                            // a without batch sums
		mmCase{batchA: []int{2, 2}, m: 3, k: 4, n: 3},                         // b without batch: one big product
		mmCase{batchA: []int{3}, batchB: []int{3}, m: 20, k: 12, n: 16},       // split across threads
	)
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			as, bs := c.shapes()
			av, bv := rounded(randn(r, linalgLen(as))), rounded(randn(r, linalgLen(bs)))
			_, ys := refMatMul(av, as, bv, bs, c.transA, c.transB)
			dyv := rounded(randn(r, linalgLen(ys)))
			a, b, dy := s.put(t, av, as...), s.put(t, bv, bs...), s.put(t, dyv, ys...)
			da, db, err := s.b.MatMulBackward(a, b, dy, c.transA, c.transB, true, true)
			if err != nil {
				t.Fatalf("MatMulBackward: %v", err)
			}
			s.checkGrad(t, "MatMulBackward da", s.get(t, "da", da, as...), func(x []float64) []float64 {
				y, _ := refMatMul(x, as, bv, bs, c.transA, c.transB)
				return y
			}, av, dyv)
			s.checkGrad(t, "MatMulBackward db", s.get(t, "db", db, bs...), func(x []float64) []float64 {
				y, _ := refMatMul(av, as, x, bs, c.transA, c.transB)
				return y
			}, bv, dyv)

			// A gradient nobody needs is not computed; the other one is unchanged.
			da2, db2, err := s.b.MatMulBackward(a, b, dy, c.transA, c.transB, false, true)
			if err != nil || da2 != nil {
				t.Fatalf("MatMulBackward needA=false: da %v, err %v; want nil, nil", da2, err)
			}
			close(t, "MatMulBackward db (needA=false)", s.get(t, "db", db2, bs...), s.get(t, "db", db, bs...), 0)
			da3, db3, err := s.b.MatMulBackward(a, b, dy, c.transA, c.transB, true, false)
			if err != nil || db3 != nil {
				t.Fatalf("MatMulBackward needB=false: db %v, err %v; want nil, nil", db3, err)
			}
			close(t, "MatMulBackward da (needB=false)", s.get(t, "da", da3, as...), s.get(t, "da", da, as...), 0)
		})
	}
}

func (s *suite) testMatMulErrors(t *testing.T) {
	z := func(shape ...int) *tensor.Tensor {
		x, err := s.b.Zeros(tensor.Float32, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	for _, c := range []struct {
		a, b           *tensor.Tensor
		transA, transB bool
	}{
		{z(2, 3), z(4, 5), false, false},       // inner dimensions differ
		{z(3, 2), z(3, 5), false, false},       // would fit with transA
		{z(2, 3), z(5, 3), false, false},       // would fit with transB
		{z(2, 3, 4), z(3, 4, 5), false, false}, // batch dimensions do not broadcast
		{z(4), z(4, 2), false, false},          // a vector is not a matrix
	} {
		_, err := s.b.MatMul(c.a, c.b, c.transA, c.transB)
		wantShapeErrorNaming(t, "matmul", err, c.a, c.b)
	}
	a, b := z(2, 3), z(3, 4)
	for _, dc := range []*tensor.Tensor{z(2, 5), z(4, 2), z(1, 2, 4)} {
		_, _, err := s.b.MatMulBackward(a, b, dc, false, false, true, true)
		wantShapeErrorNaming(t, "matmul backward", err, a, b, dc)
	}
	_, _, err := s.b.MatMulBackward(z(2, 3), z(4, 5), z(2, 5), false, false, true, true)
	wantShapeErrorNaming(t, "matmul backward", err, z(2, 3), z(4, 5))

	idx, err := s.b.Zeros(tensor.Int32, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.b.MatMul(a, idx, false, false); err == nil || !strings.Contains(err.Error(), "matmul") {
		t.Errorf("MatMul of an int32 tensor: error %v, want one naming matmul", err)
	}
}

// wantShapeErrorNaming is wantShapeError that also wants every operand's shape named.
func wantShapeErrorNaming(t *testing.T, op string, err error, ts ...*tensor.Tensor) {
	t.Helper()
	wantShapeError(t, op, err)
	if err == nil {
		return
	}
	for _, x := range ts {
		if !strings.Contains(err.Error(), x.Shape.String()) {
			t.Errorf("%s: error %q does not name the shape %v", op, err, x.Shape)
		}
	}
}

// ---------------------------------------------------------------- convolutions

type convCase struct {
	x, w   []int // (N, C, H, W) and (O, C/groups, KH, KW)
	stride [2]int
	pad    [2]int
	groups int
	bias   bool
}

func (c convCase) params() tensor.Conv2DParams {
	return tensor.Conv2DParams{Stride: c.stride, Padding: c.pad, Groups: c.groups}
}

func (c convCase) String() string {
	p := c.params().Norm()
	s := fmt.Sprintf("x%v_w%v_s%dx%d_p%dx%d_g%d", c.x, c.w, p.Stride[0], p.Stride[1], p.Padding[0], p.Padding[1], p.Groups)
	if c.bias {
		s += "_bias"
	}
	return strings.ReplaceAll(s, " ", ",")
}

// convOutShape is the shape of Conv2D's output.
func convOutShape(xs, ws []int, p tensor.Conv2DParams) []int {
	p = p.Norm()
	return []int{xs[0], ws[0], (xs[2]+2*p.Padding[0]-ws[2])/p.Stride[0] + 1, (xs[3]+2*p.Padding[1]-ws[3])/p.Stride[1] + 1}
}

// refConv2D is the float64 reference of Conv2D (bias nil for none): naive loops.
func refConv2D(x []float64, xs []int, w []float64, ws []int, bias []float64, p tensor.Conv2DParams) ([]float64, []int) {
	p = p.Norm()
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	o, cg, kh, kw := ws[0], ws[1], ws[2], ws[3]
	og := o / p.Groups
	oh := (h+2*p.Padding[0]-kh)/p.Stride[0] + 1
	ow := (wd+2*p.Padding[1]-kw)/p.Stride[1] + 1
	y := make([]float64, n*o*oh*ow)
	for ni := 0; ni < n; ni++ {
		for oc := 0; oc < o; oc++ {
			g := oc / og
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					var sum float64
					if bias != nil {
						sum = bias[oc]
					}
					for ci := 0; ci < cg; ci++ {
						ch := g*cg + ci
						for i := 0; i < kh; i++ {
							iy := oy*p.Stride[0] - p.Padding[0] + i
							if iy < 0 || iy >= h {
								continue
							}
							for j := 0; j < kw; j++ {
								ix := ox*p.Stride[1] - p.Padding[1] + j
								if ix < 0 || ix >= wd {
									continue
								}
								sum += x[((ni*c+ch)*h+iy)*wd+ix] * w[((oc*cg+ci)*kh+i)*kw+j]
							}
						}
					}
					y[((ni*o+oc)*oh+oy)*ow+ox] = sum
				}
			}
		}
	}
	return y, []int{n, o, oh, ow}
}

// refConv2DBackward is the adjoint of refConv2D, for cases too large for finite
// differences; testConv2DBackward checks it against finite differences on the small
// cases.
func refConv2DBackward(x []float64, xs []int, w []float64, ws []int, dy []float64, p tensor.Conv2DParams) (dx, dw, db []float64) {
	p = p.Norm()
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	o, cg, kh, kw := ws[0], ws[1], ws[2], ws[3]
	og := o / p.Groups
	oh := (h+2*p.Padding[0]-kh)/p.Stride[0] + 1
	ow := (wd+2*p.Padding[1]-kw)/p.Stride[1] + 1
	dx, dw, db = make([]float64, len(x)), make([]float64, len(w)), make([]float64, o)
	for ni := 0; ni < n; ni++ {
		for oc := 0; oc < o; oc++ {
			g := oc / og
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					d := dy[((ni*o+oc)*oh+oy)*ow+ox]
					db[oc] += d
					for ci := 0; ci < cg; ci++ {
						ch := g*cg + ci
						for i := 0; i < kh; i++ {
							iy := oy*p.Stride[0] - p.Padding[0] + i
							if iy < 0 || iy >= h {
								continue
							}
							for j := 0; j < kw; j++ {
								ix := ox*p.Stride[1] - p.Padding[1] + j
								if ix < 0 || ix >= wd {
									continue
								}
								xi, wi := ((ni*c+ch)*h+iy)*wd+ix, ((oc*cg+ci)*kh+i)*kw+j
								dx[xi] += d * w[wi]
								dw[wi] += d * x[xi]
							}
						}
					}
				}
			}
		}
	}
	return dx, dw, db
}

func (s *suite) testConv2D(t *testing.T) {
	r := s.rng(t)
	cases := []convCase{
		{x: []int{2, 3, 7, 9}, w: []int{4, 3, 3, 3}, pad: [2]int{1, 1}, bias: true},
		{x: []int{1, 4, 9, 11}, w: []int{6, 4, 3, 3}, stride: [2]int{2, 2}, pad: [2]int{1, 1}},     // ResNet stride-2 3×3, odd size
		{x: []int{2, 3, 13, 15}, w: []int{5, 3, 7, 7}, stride: [2]int{2, 2}, pad: [2]int{3, 3}},    // ResNet conv1
		{x: []int{2, 6, 7, 8}, w: []int{8, 6, 1, 1}, stride: [2]int{2, 2}},                         // 1×1 stride-2 downsample
		{x: []int{2, 5, 4, 6}, w: []int{3, 5, 1, 1}, bias: true},                                   // 1×1 (pose squeeze)
		{x: []int{3, 4, 6, 5}, w: []int{6, 2, 3, 3}, pad: [2]int{1, 1}, groups: 2, bias: true},     // groups
		{x: []int{1, 3, 5, 5}, w: []int{6, 1, 3, 3}, pad: [2]int{1, 1}, groups: 3},                 // depthwise ×2
		{x: []int{1, 4, 3, 5}, w: []int{4, 2, 1, 1}, groups: 2},                                    // grouped 1×1
		{x: []int{1, 2, 6, 7}, w: []int{3, 2, 2, 3}, stride: [2]int{2, 1}, pad: [2]int{0, 2}},      // asymmetric
		{x: []int{1, 2, 3, 3}, w: []int{4, 2, 3, 3}, bias: true},                                   // 1×1 output
		{x: []int{1, 1, 4, 4}, w: []int{2, 1, 3, 3}, stride: [2]int{3, 3}, pad: [2]int{2, 2}},      // windows all padding
		{x: []int{2, 3, 1, 9}, w: []int{2, 3, 1, 3}, stride: [2]int{1, 2}},                         // one row
		{x: []int{2, 16, 10, 12}, w: []int{8, 16, 3, 3}, pad: [2]int{1, 1}, bias: true},            // decoder 3×3
		{x: []int{1, 64, 40, 20}, w: []int{4, 64, 3, 3}, pad: [2]int{1, 1}},                        // several tiles
		{x: []int{2, 8, 40, 48}, w: []int{12, 8, 3, 3}, stride: [2]int{2, 2}, pad: [2]int{1, 1}},   // parallel
		{x: []int{1, 32, 30, 40}, w: []int{16, 32, 1, 1}, bias: true},                              // parallel 1×1
		{x: []int{2, 8, 24, 28}, w: []int{8, 2, 3, 3}, pad: [2]int{1, 1}, groups: 4, bias: true},   // parallel groups
		{x: []int{1, 3, 38, 50}, w: []int{8, 3, 7, 7}, stride: [2]int{2, 2}, pad: [2]int{3, 3}},    // parallel conv1
		{x: []int{1, 64, 12, 16}, w: []int{32, 64, 3, 3}, stride: [2]int{2, 2}, pad: [2]int{1, 1}}, // batch 1 tiles
		{x: []int{1, 96, 40, 40}, w: []int{8, 96, 3, 3}, stride: [2]int{1, 1}, pad: [2]int{1, 1}},  // 2+ tiles, one image
		{x: []int{0, 3, 5, 5}, w: []int{2, 3, 3, 3}, pad: [2]int{1, 1}},                            // empty batch
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			xv, wv := randn(r, linalgLen(c.x)), randn(r, linalgLen(c.w))
			x, w := s.put(t, xv, c.x...), s.put(t, wv, c.w...)
			var bias *tensor.Tensor
			var bv []float64
			if c.bias {
				bv = randn(r, c.w[0])
				bias = s.put(t, bv, c.w[0])
				bv = rounded(bv)
			}
			want, ys := refConv2D(rounded(xv), c.x, rounded(wv), c.w, bv, c.params())
			y, err := s.b.Conv2D(x, w, bias, c.params())
			if err != nil {
				t.Fatalf("Conv2D: %v", err)
			}
			close(t, "Conv2D", s.get(t, "Conv2D", y, ys...), want, s.tol.Forward)
			close(t, "Conv2D input x", s.get(t, "x", x, c.x...), rounded(xv), 0)
			close(t, "Conv2D input w", s.get(t, "w", w, c.w...), rounded(wv), 0)
		})
	}
}

func (s *suite) testConv2DBackward(t *testing.T) {
	r := s.rng(t)
	cases := []convCase{
		{x: []int{2, 2, 5, 6}, w: []int{3, 2, 3, 3}, pad: [2]int{1, 1}, bias: true},
		{x: []int{1, 3, 7, 6}, w: []int{2, 3, 3, 3}, stride: [2]int{2, 2}, pad: [2]int{1, 1}},
		{x: []int{1, 2, 9, 8}, w: []int{2, 2, 7, 7}, stride: [2]int{2, 2}, pad: [2]int{3, 3}, bias: true},
		{x: []int{2, 3, 5, 5}, w: []int{4, 3, 1, 1}, stride: [2]int{2, 2}},
		{x: []int{2, 3, 3, 4}, w: []int{2, 3, 1, 1}, bias: true},
		{x: []int{1, 4, 5, 4}, w: []int{6, 2, 3, 3}, pad: [2]int{1, 1}, groups: 2, bias: true},
		{x: []int{1, 2, 4, 4}, w: []int{2, 1, 3, 3}, pad: [2]int{1, 1}, groups: 2},
		{x: []int{1, 2, 5, 6}, w: []int{2, 2, 2, 3}, stride: [2]int{2, 1}, pad: [2]int{0, 2}},
		{x: []int{1, 1, 4, 4}, w: []int{2, 1, 3, 3}, stride: [2]int{3, 3}, pad: [2]int{2, 2}},
		{x: []int{1, 2, 3, 3}, w: []int{3, 2, 3, 3}, bias: true},
		{x: []int{2, 2, 4, 5}, w: []int{3, 2, 2, 3}, pad: [2]int{1, 0}},                       // even kernel, stride 1
		{x: []int{1, 1, 4, 4}, w: []int{2, 1, 2, 2}, pad: [2]int{2, 2}},                       // padding ≥ kernel
		{x: []int{1, 3, 3, 4}, w: []int{2, 3, 1, 1}, pad: [2]int{1, 1}},                       // padded 1×1
		{x: []int{1, 4, 5, 5}, w: []int{4, 1, 3, 3}, pad: [2]int{1, 1}, groups: 4},            // depthwise
		{x: []int{1, 2, 6, 6}, w: []int{4, 2, 3, 3}, stride: [2]int{1, 2}, pad: [2]int{1, 1}}, // stride in one direction
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			p := c.params()
			xv, wv := rounded(randn(r, linalgLen(c.x))), rounded(randn(r, linalgLen(c.w)))
			bv := rounded(randn(r, c.w[0]))
			ys := convOutShape(c.x, c.w, p)
			dyv := rounded(randn(r, linalgLen(ys)))
			x, w, dy := s.put(t, xv, c.x...), s.put(t, wv, c.w...), s.put(t, dyv, ys...)
			dx, dw, db, err := s.b.Conv2DBackward(x, w, dy, p, true, c.bias)
			if err != nil {
				t.Fatalf("Conv2DBackward: %v", err)
			}
			s.checkGrad(t, "Conv2DBackward dx", s.get(t, "dx", dx, c.x...), func(v []float64) []float64 {
				y, _ := refConv2D(v, c.x, wv, c.w, bv, p)
				return y
			}, xv, dyv)
			s.checkGrad(t, "Conv2DBackward dw", s.get(t, "dw", dw, c.w...), func(v []float64) []float64 {
				y, _ := refConv2D(xv, c.x, v, c.w, bv, p)
				return y
			}, wv, dyv)
			if c.bias {
				s.checkGrad(t, "Conv2DBackward dbias", s.get(t, "dbias", db, c.w[0]), func(v []float64) []float64 {
					y, _ := refConv2D(xv, c.x, wv, c.w, v, p)
					return y
				}, bv, dyv)
			} else if db != nil {
				t.Errorf("Conv2DBackward needBias=false: dbias %v, want nil", db)
			}
			// The adjoint used for the large cases agrees with finite differences too.
			rdx, rdw, rdb := refConv2DBackward(xv, c.x, wv, c.w, dyv, p)
			s.checkGrad(t, "refConv2DBackward dx", rdx, func(v []float64) []float64 {
				y, _ := refConv2D(v, c.x, wv, c.w, bv, p)
				return y
			}, xv, dyv)
			s.checkGrad(t, "refConv2DBackward dw", rdw, func(v []float64) []float64 {
				y, _ := refConv2D(xv, c.x, v, c.w, bv, p)
				return y
			}, wv, dyv)
			s.checkGrad(t, "refConv2DBackward dbias", rdb, func(v []float64) []float64 {
				y, _ := refConv2D(xv, c.x, wv, c.w, v, p)
				return y
			}, bv, dyv)
			// needX=false: no dx, the same dw.
			dx2, dw2, _, err := s.b.Conv2DBackward(x, w, dy, p, false, false)
			if err != nil || dx2 != nil {
				t.Fatalf("Conv2DBackward needX=false: dx %v, err %v; want nil, nil", dx2, err)
			}
			close(t, "Conv2DBackward dw (needX=false)", s.get(t, "dw", dw2, c.w...), s.get(t, "dw", dw, c.w...), 0)
		})
	}
}

// testConv2DBackwardLarge checks the gradients of shapes that take the backend's
// tiled and parallel paths against the float64 adjoint.
func (s *suite) testConv2DBackwardLarge(t *testing.T) {
	r := s.rng(t)
	cases := []convCase{
		{x: []int{2, 16, 20, 24}, w: []int{8, 16, 3, 3}, pad: [2]int{1, 1}, bias: true},
		{x: []int{1, 64, 40, 20}, w: []int{4, 64, 3, 3}, pad: [2]int{1, 1}},
		{x: []int{1, 96, 40, 40}, w: []int{8, 96, 3, 3}, pad: [2]int{1, 1}, bias: true},
		{x: []int{3, 8, 30, 34}, w: []int{16, 8, 3, 3}, stride: [2]int{2, 2}, pad: [2]int{1, 1}},
		{x: []int{1, 3, 38, 50}, w: []int{8, 3, 7, 7}, stride: [2]int{2, 2}, pad: [2]int{3, 3}},
		{x: []int{2, 16, 20, 22}, w: []int{32, 16, 1, 1}, stride: [2]int{2, 2}},
		{x: []int{1, 32, 30, 40}, w: []int{16, 32, 1, 1}, bias: true},
		{x: []int{2, 8, 24, 28}, w: []int{8, 2, 3, 3}, pad: [2]int{1, 1}, groups: 4, bias: true},
		{x: []int{1, 64, 12, 16}, w: []int{32, 64, 3, 3}, stride: [2]int{2, 2}, pad: [2]int{1, 1}},
		// Many weights, as in ResNet's last layers: small images, large kernels.
		{x: []int{3, 256, 5, 6}, w: []int{128, 256, 3, 3}, pad: [2]int{1, 1}, bias: true},
		{x: []int{2, 512, 4, 3}, w: []int{128, 256, 3, 3}, pad: [2]int{1, 1}, groups: 2},
		{x: []int{1, 512, 27, 20}, w: []int{64, 512, 3, 3}, pad: [2]int{1, 1}},
		{x: []int{2, 256, 9, 7}, w: []int{256, 256, 3, 3}, stride: [2]int{2, 2}, pad: [2]int{1, 1}},
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			p := c.params()
			xv, wv := rounded(randn(r, linalgLen(c.x))), rounded(randn(r, linalgLen(c.w)))
			ys := convOutShape(c.x, c.w, p)
			dyv := rounded(randn(r, linalgLen(ys)))
			x, w, dy := s.put(t, xv, c.x...), s.put(t, wv, c.w...), s.put(t, dyv, ys...)
			dx, dw, db, err := s.b.Conv2DBackward(x, w, dy, p, true, c.bias)
			if err != nil {
				t.Fatalf("Conv2DBackward: %v", err)
			}
			wdx, wdw, wdb := refConv2DBackward(xv, c.x, wv, c.w, dyv, p)
			close(t, "Conv2DBackward dx", s.get(t, "dx", dx, c.x...), wdx, s.tol.Forward)
			close(t, "Conv2DBackward dw", s.get(t, "dw", dw, c.w...), wdw, s.tol.Forward)
			if c.bias {
				close(t, "Conv2DBackward dbias", s.get(t, "dbias", db, c.w[0]), wdb, s.tol.Forward)
			}
			close(t, "Conv2DBackward input x", s.get(t, "x", x, c.x...), xv, 0)
			close(t, "Conv2DBackward input dy", s.get(t, "dy", dy, ys...), dyv, 0)
		})
	}
}

func (s *suite) testConv2DErrors(t *testing.T) {
	z := func(shape ...int) *tensor.Tensor {
		x, err := s.b.Zeros(tensor.Float32, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	for _, c := range []struct {
		x, w, bias *tensor.Tensor
		p          tensor.Conv2DParams
	}{
		{z(1, 3, 5, 5), z(4, 2, 3, 3), nil, tensor.Conv2DParams{}},                   // channels differ
		{z(1, 4, 5, 5), z(4, 2, 3, 3), nil, tensor.Conv2DParams{Groups: 3}},          // groups do not divide
		{z(1, 4, 5, 5), z(3, 2, 3, 3), nil, tensor.Conv2DParams{Groups: 2}},          // … the output channels
		{z(1, 3, 2, 5), z(4, 3, 3, 3), nil, tensor.Conv2DParams{}},                   // kernel larger than the input
		{z(1, 3, 5, 5), z(4, 3, 3, 3), z(3), tensor.Conv2DParams{}},                  // bias size
		{z(1, 3, 5, 5), z(4, 3, 3, 3), z(1, 4), tensor.Conv2DParams{}},               // bias rank
		{z(3, 5, 5), z(4, 3, 3, 3), nil, tensor.Conv2DParams{}},                      // x not NCHW
		{z(1, 3, 5, 5), z(4, 3, 9), nil, tensor.Conv2DParams{Padding: [2]int{1, 1}}}, // w not OIHW
	} {
		_, err := s.b.Conv2D(c.x, c.w, c.bias, c.p)
		wantShapeError(t, "conv2d", err)
		if err != nil && !strings.Contains(err.Error(), c.w.Shape.String()) && !strings.Contains(err.Error(), c.x.Shape.String()) {
			t.Errorf("conv2d: error %q names neither %v nor %v", err, c.x.Shape, c.w.Shape)
		}
	}
	x, w := z(2, 3, 6, 6), z(4, 3, 3, 3)
	p := tensor.Conv2DParams{Padding: [2]int{1, 1}}
	for _, dy := range []*tensor.Tensor{z(2, 4, 4, 4), z(2, 3, 6, 6), z(1, 4, 6, 6), z(2, 4, 36)} {
		_, _, _, err := s.b.Conv2DBackward(x, w, dy, p, true, true)
		wantShapeErrorNaming(t, "conv2d backward", err, x, w, dy)
	}
	_, _, _, err := s.b.Conv2DBackward(z(2, 2, 6, 6), w, z(2, 4, 6, 6), p, true, true)
	wantShapeError(t, "conv2d backward", err)

	idx, err := s.b.Zeros(tensor.Int32, 2, 3, 6, 6)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.b.Conv2D(idx, w, nil, p); err == nil || !strings.Contains(err.Error(), "conv2d") {
		t.Errorf("Conv2D of an int32 tensor: error %v, want one naming conv2d", err)
	}
}
