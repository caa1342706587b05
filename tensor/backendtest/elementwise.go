package backendtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
)

// The element-wise, reduction, layout and optimiser ops. Their float64 references
// below work on multi-indices one element at a time, with no strides, merging or
// splitting, so that they share nothing with the kernels they check. Small shapes are
// checked against finite differences; large ones (which make backends split work
// across threads) against the analytic gradients of the same references.

func (s *suite) testElementwise(t *testing.T) {
	t.Run("unary", s.testUnary)
	t.Run("affine", s.testAffine)
	t.Run("binary", s.testBinary)
	t.Run("reduce", s.testReduce)
	t.Run("concat", s.testConcat)
	t.Run("slice", s.testSlice)
	t.Run("adam", s.testAdam)
	t.Run("shapes", s.testElementwiseShapes)
}

// ewGradLimit is the largest output for which gradients are checked by finite
// differences (the check costs twice the input size times the output size).
const ewGradLimit = 400

func ewLen(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// ewUnflat returns the multi-index of flat position pos in shape.
func ewUnflat(shape []int, pos int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		idx[d] = pos % shape[d]
		pos /= shape[d]
	}
	return idx
}

// ewFlat returns the flat position of multi-index idx in shape.
func ewFlat(shape, idx []int) int {
	pos := 0
	for d, n := range shape {
		pos = pos*n + idx[d]
	}
	return pos
}

// --- unary

func ewUnaryRef(op tensor.UnaryOp, x float64) float64 {
	switch op {
	case tensor.Neg:
		return -x
	case tensor.Abs:
		return math.Abs(x)
	case tensor.Exp:
		return math.Exp(x)
	case tensor.Log:
		return math.Log(x)
	case tensor.Sqrt:
		return math.Sqrt(x)
	case tensor.Reciprocal:
		return 1 / x
	case tensor.Square:
		return x * x
	case tensor.Sin:
		return math.Sin(x)
	case tensor.Cos:
		return math.Cos(x)
	case tensor.ReLU:
		return math.Max(x, 0)
	case tensor.ELU:
		if x > 0 {
			return x
		}
		return math.Expm1(x)
	case tensor.Sigmoid:
		return 1 / (1 + math.Exp(-x))
	case tensor.Tanh:
		return math.Tanh(x)
	}
	panic(fmt.Sprintf("no reference for unary op %v", op))
}

// ewUnaryDeriv is the derivative of ewUnaryRef (0 at the kinks of abs and relu).
func ewUnaryDeriv(op tensor.UnaryOp, x float64) float64 {
	switch op {
	case tensor.Neg:
		return -1
	case tensor.Abs:
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return 0
	case tensor.Exp:
		return math.Exp(x)
	case tensor.Log:
		return 1 / x
	case tensor.Sqrt:
		return 0.5 / math.Sqrt(x)
	case tensor.Reciprocal:
		return -1 / (x * x)
	case tensor.Square:
		return 2 * x
	case tensor.Sin:
		return math.Cos(x)
	case tensor.Cos:
		return -math.Sin(x)
	case tensor.ReLU:
		if x > 0 {
			return 1
		}
		return 0
	case tensor.ELU:
		if x > 0 {
			return 1
		}
		return math.Exp(x)
	case tensor.Sigmoid:
		y := 1 / (1 + math.Exp(-x))
		return y * (1 - y)
	case tensor.Tanh:
		y := math.Tanh(x)
		return 1 - y*y
	}
	panic(fmt.Sprintf("no reference for unary op %v", op))
}

// ewUnaryInput draws inputs valid for op: positive and away from 0 where the function
// or its derivative blows up there, away from the kink of abs, relu and elu (so that
// finite differences do not straddle it), and where exp stays moderate.
func ewUnaryInput(r *rand.Rand, op tensor.UnaryOp, n int) []float64 {
	switch op {
	case tensor.Log, tensor.Sqrt, tensor.Reciprocal:
		return uniform(r, n, 0.5, 3)
	case tensor.Abs, tensor.ReLU, tensor.ELU:
		v := uniform(r, n, 0.05, 3)
		for i := range v {
			if r.IntN(2) == 0 {
				v[i] = -v[i]
			}
		}
		return v
	case tensor.Exp, tensor.Sigmoid, tensor.Tanh:
		return uniform(r, n, -4, 4)
	}
	v := randn(r, n)
	for i := range v {
		v[i] *= 2
	}
	return v
}

func ewMap(x []float64, f func(float64) float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = f(v)
	}
	return y
}

func (s *suite) testUnary(t *testing.T) {
	r := s.rng(t)
	for _, op := range tensor.UnaryOps() {
		for _, shape := range [][]int{{3, 4, 5}, {}, {2, 3, 1500}} {
			name := fmt.Sprintf("%v%v", op, tensor.Shape(shape))
			n := ewLen(shape)
			xv := rounded(ewUnaryInput(r, op, n))
			x := s.put(t, xv, shape...)
			y, err := s.b.Unary(op, x)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			close(t, name, s.get(t, name, y, shape...), ewMap(xv, func(v float64) float64 { return ewUnaryRef(op, v) }), s.tol.Forward)

			dyv := rounded(randn(r, n))
			dx, err := s.b.UnaryBackward(op, x, y, s.put(t, dyv, shape...))
			if err != nil {
				t.Fatalf("%s backward: %v", name, err)
			}
			got := s.get(t, name+" backward", dx, shape...)
			want := make([]float64, n)
			for i, v := range xv {
				want[i] = dyv[i] * ewUnaryDeriv(op, v)
			}
			close(t, name+" backward (analytic)", got, want, s.tol.Backward)
			if n <= ewGradLimit {
				s.checkGrad(t, name+" backward", got,
					func(x []float64) []float64 { return ewMap(x, func(v float64) float64 { return ewUnaryRef(op, v) }) }, xv, dyv)
			}
		}
	}
	// PyTorch's convention at the kinks: the gradient of abs and relu at 0 is 0.
	for _, op := range []tensor.UnaryOp{tensor.Abs, tensor.ReLU} {
		x := s.put(t, []float64{0, 0, 1, -1}, 4)
		y, err := s.b.Unary(op, x)
		if err != nil {
			t.Fatal(err)
		}
		dx, err := s.b.UnaryBackward(op, x, y, s.put(t, []float64{3, -3, 2, 2}, 4))
		if err != nil {
			t.Fatal(err)
		}
		want := []float64{0, 0, 2, ewUnaryDeriv(op, -1) * 2}
		close(t, op.String()+" backward at 0", s.get(t, op.String(), dx, 4), want, 0)
	}
}

func (s *suite) testAffine(t *testing.T) {
	r := s.rng(t)
	for _, shape := range [][]int{{2, 3, 5}, {}, {4, 2000}} {
		xv := rounded(randn(r, ewLen(shape)))
		scale, shift := float32(r.NormFloat64()), float32(r.NormFloat64())
		y, err := s.b.Affine(s.put(t, xv, shape...), scale, shift)
		if err != nil {
			t.Fatal(err)
		}
		want := ewMap(xv, func(v float64) float64 { return v*float64(scale) + float64(shift) })
		close(t, fmt.Sprintf("affine%v", tensor.Shape(shape)), s.get(t, "affine", y, shape...), want, s.tol.Forward)
	}
}

// --- binary

// ewBroadcast is the NumPy broadcast of two shapes (they must fit).
func ewBroadcast(a, b []int) []int {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := range out {
		da, db := 1, 1
		if j := i - (n - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (n - len(b)); j >= 0 {
			db = b[j]
		}
		out[i] = max(da, db)
		if da == 0 || db == 0 {
			out[i] = 0
		}
	}
	return out
}

// ewSource is the flat position in an operand of shape s of the element broadcast to
// multi-index idx of the output.
func ewSource(s, idx []int) int {
	sub := make([]int, len(s))
	for j := range s {
		if s[j] != 1 {
			sub[j] = idx[j+len(idx)-len(s)]
		}
	}
	return ewFlat(s, sub)
}

func ewBinaryF(op tensor.BinaryOp, a, b float64) float64 {
	switch op {
	case tensor.Add:
		return a + b
	case tensor.Sub:
		return a - b
	case tensor.Mul:
		return a * b
	case tensor.Div:
		return a / b
	}
	panic(fmt.Sprintf("no reference for binary op %v", op))
}

// ewBinaryPartials returns ∂f/∂a and ∂f/∂b.
func ewBinaryPartials(op tensor.BinaryOp, a, b float64) (float64, float64) {
	switch op {
	case tensor.Add:
		return 1, 1
	case tensor.Sub:
		return 1, -1
	case tensor.Mul:
		return b, a
	case tensor.Div:
		return 1 / b, -a / (b * b)
	}
	panic(fmt.Sprintf("no reference for binary op %v", op))
}

func ewBinaryRef(op tensor.BinaryOp, a []float64, as []int, b []float64, bs []int) []float64 {
	out := ewBroadcast(as, bs)
	y := make([]float64, ewLen(out))
	for p := range y {
		idx := ewUnflat(out, p)
		y[p] = ewBinaryF(op, a[ewSource(as, idx)], b[ewSource(bs, idx)])
	}
	return y
}

// ewBinaryGradRef sums dy times the partials back onto each operand's elements.
func ewBinaryGradRef(op tensor.BinaryOp, a []float64, as []int, b []float64, bs []int, dy []float64) (da, db []float64) {
	out := ewBroadcast(as, bs)
	da, db = make([]float64, len(a)), make([]float64, len(b))
	for p, g := range dy {
		idx := ewUnflat(out, p)
		i, j := ewSource(as, idx), ewSource(bs, idx)
		pa, pb := ewBinaryPartials(op, a[i], b[j])
		da[i] += g * pa
		db[j] += g * pb
	}
	return da, db
}

// ewBinaryCases cover same shapes, scalars and size-1 operands, per-channel patterns,
// size-1 dimensions on both sides, different ranks, and (the last ones) shapes large
// enough for a backend to split them.
var ewBinaryCases = [][2][]int{
	{{2, 3, 4, 5}, {2, 3, 4, 5}},
	{{2, 3, 4, 5}, {1, 3, 1, 1}},
	{{2, 3, 4, 5}, {3, 1, 1}},
	{{1, 3, 1, 1}, {2, 3, 4, 5}},
	{{2, 1, 4, 5}, {2, 3, 4, 5}},
	{{2, 3, 4, 5}, {2, 3, 1, 1}},
	{{2, 3, 4}, {}},
	{{}, {2, 3, 4}},
	{{}, {}},
	{{1}, {3, 4}},
	{{3, 4}, {1, 1}},
	{{4, 1}, {1, 5}},
	{{2, 1, 3, 1}, {4, 1, 5}},
	{{5}, {3, 5}},
	{{3, 1}, {3, 4}},
	{{1, 1, 1}, {2, 3}},
	{{2, 3, 1, 5}, {1, 1, 4, 1}},
	{{3, 1, 4}, {1, 5, 1}},
	{{2, 8, 32, 40}, {2, 8, 32, 40}},
	{{2, 8, 32, 40}, {1, 8, 1, 1}},
	{{8, 1, 1}, {2, 8, 32, 40}},
	{{2, 1, 32, 40}, {2, 8, 32, 40}},
	{{2, 8, 32, 40}, {}},
	{{1}, {2, 8, 32, 40}},
	{{64, 400}, {64, 1}},
	{{3000, 3}, {3}},
	{{40, 1, 600}, {40, 7, 600}},
	{{1, 7, 1, 3}, {500, 1, 9, 1}},
}

func (s *suite) testBinary(t *testing.T) {
	r := s.rng(t)
	for _, op := range tensor.BinaryOps() {
		for _, c := range ewBinaryCases {
			as, bs := c[0], c[1]
			name := fmt.Sprintf("%v %v %v", op, tensor.Shape(as), tensor.Shape(bs))
			out := ewBroadcast(as, bs)
			av := rounded(randn(r, ewLen(as)))
			// b is kept away from 0 so that div and its gradient stay moderate.
			bv := uniform(r, ewLen(bs), 0.5, 2)
			for i := range bv {
				if r.IntN(2) == 0 {
					bv[i] = -bv[i]
				}
			}
			bv = rounded(bv)
			a, b := s.put(t, av, as...), s.put(t, bv, bs...)
			y, err := s.b.Binary(op, a, b)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			close(t, name, s.get(t, name, y, out...), ewBinaryRef(op, av, as, bv, bs), s.tol.Forward)

			dyv := rounded(randn(r, ewLen(out)))
			dy := s.put(t, dyv, out...)
			da, db, err := s.b.BinaryBackward(op, a, b, dy, true, true)
			if err != nil {
				t.Fatalf("%s backward: %v", name, err)
			}
			gotA, gotB := s.get(t, name+" da", da, as...), s.get(t, name+" db", db, bs...)
			wantA, wantB := ewBinaryGradRef(op, av, as, bv, bs, dyv)
			close(t, name+" da (analytic)", gotA, wantA, s.tol.Backward)
			close(t, name+" db (analytic)", gotB, wantB, s.tol.Backward)
			if len(dyv) <= ewGradLimit {
				s.checkGrad(t, name+" da", gotA, func(x []float64) []float64 { return ewBinaryRef(op, x, as, bv, bs) }, av, dyv)
				s.checkGrad(t, name+" db", gotB, func(x []float64) []float64 { return ewBinaryRef(op, av, as, x, bs) }, bv, dyv)
			}

			// One gradient alone must be the same, and the other nil.
			onlyA, noB, err := s.b.BinaryBackward(op, a, b, dy, true, false)
			if err != nil {
				t.Fatalf("%s backward (a only): %v", name, err)
			}
			if noB != nil {
				t.Errorf("%s backward with needB false: db is not nil", name)
			}
			close(t, name+" da alone", s.get(t, name+" da alone", onlyA, as...), gotA, 0)
			noA, onlyB, err := s.b.BinaryBackward(op, a, b, dy, false, true)
			if err != nil {
				t.Fatalf("%s backward (b only): %v", name, err)
			}
			if noA != nil {
				t.Errorf("%s backward with needA false: da is not nil", name)
			}
			close(t, name+" db alone", s.get(t, name+" db alone", onlyB, bs...), gotB, 0)
		}
	}
}

// --- reductions

// ewReduceShape is x's shape with the reduced axes (all if none) set to 1.
func ewReduceShape(shape []int, axes []int) []int {
	out := append([]int(nil), shape...)
	if len(axes) == 0 {
		for d := range out {
			out[d] = 1
		}
	}
	for _, a := range axes {
		if a < 0 {
			a += len(shape)
		}
		out[a] = 1
	}
	return out
}

func ewReduceRef(op tensor.ReduceOp, x []float64, shape, axes []int) []float64 {
	out := ewReduceShape(shape, axes)
	y := make([]float64, ewLen(out))
	for p, v := range x {
		idx := ewUnflat(shape, p)
		for d := range idx {
			if out[d] == 1 {
				idx[d] = 0
			}
		}
		y[ewFlat(out, idx)] += v
	}
	if op == tensor.Mean {
		k := float64(len(x) / max(len(y), 1))
		for i := range y {
			y[i] /= k
		}
	}
	return y
}

type ewReduceCase struct {
	shape, axes []int
}

var ewReduceCases = []ewReduceCase{
	{[]int{2, 3, 4, 5}, nil},
	{[]int{2, 3, 4, 5}, []int{0}},
	{[]int{2, 3, 4, 5}, []int{1}},
	{[]int{2, 3, 4, 5}, []int{2}},
	{[]int{2, 3, 4, 5}, []int{-1}},
	{[]int{2, 3, 4, 5}, []int{0, 2}},
	{[]int{2, 3, 4, 5}, []int{1, 3}},
	{[]int{2, 3, 4, 5}, []int{0, 2, 3}},
	{[]int{2, 3, 4, 5}, []int{2, 3}},
	{[]int{2, 3, 4, 5}, []int{0, 1}},
	{[]int{2, 3, 4, 5}, []int{-3, -1}},
	{[]int{2, 3, 4, 5}, []int{3, 0}},
	{[]int{2, 3, 4, 5}, []int{0, 1, 2, 3}},
	{[]int{2, 1, 3}, []int{1}},
	{[]int{2, 1, 3}, []int{0, 1}},
	{[]int{7}, []int{0}},
	{[]int{}, nil},
	// Large enough to be split: one target, few targets, many targets, and the
	// innermost dimension kept (narrow and wide).
	{[]int{1, 1, 512, 1024}, nil},
	{[]int{1, 1, 100000}, []int{2}},
	{[]int{2, 3, 8192}, []int{-1}},
	{[]int{16, 8, 2048}, []int{0, 2}},
	{[]int{4096, 3}, []int{0}},
	{[]int{4096, 64}, []int{0}},
	{[]int{2, 64, 4096}, []int{1}},
	{[]int{3000, 7}, []int{1}},
}

func (s *suite) testReduce(t *testing.T) {
	r := s.rng(t)
	for _, op := range []tensor.ReduceOp{tensor.Sum, tensor.Mean} {
		for _, c := range ewReduceCases {
			name := fmt.Sprintf("%v%v over %v", op, tensor.Shape(c.shape), c.axes)
			out := ewReduceShape(c.shape, c.axes)
			xv := rounded(randn(r, ewLen(c.shape)))
			x := s.put(t, xv, c.shape...)
			y, err := s.b.Reduce(op, x, c.axes...)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			close(t, name, s.get(t, name, y, out...), ewReduceRef(op, xv, c.shape, c.axes), s.tol.Forward)

			dyv := rounded(randn(r, ewLen(out)))
			dx, err := s.b.ReduceBackward(op, s.put(t, dyv, out...), c.shape)
			if err != nil {
				t.Fatalf("%s backward: %v", name, err)
			}
			got := s.get(t, name+" backward", dx, c.shape...)
			// The reduction is linear: its gradient is dy (over the count for a mean)
			// at every element that fed it.
			want := make([]float64, len(xv))
			k := 1.0
			if op == tensor.Mean {
				k = float64(len(xv) / len(dyv))
			}
			for p := range want {
				idx := ewUnflat(c.shape, p)
				for d := range idx {
					if out[d] == 1 {
						idx[d] = 0
					}
				}
				want[p] = dyv[ewFlat(out, idx)] / k
			}
			close(t, name+" backward (analytic)", got, want, s.tol.Backward)
			if len(xv) <= ewGradLimit {
				s.checkGrad(t, name+" backward", got, func(x []float64) []float64 { return ewReduceRef(op, x, c.shape, c.axes) }, xv, dyv)
			}
		}
	}

	// A mean over about a million values near 1 stays within float32 precision; a
	// float32 running sum would be off by about 1e-4 here.
	shape := []int{1, 1, 1024, 1024}
	xv := rounded(uniform(r, ewLen(shape), 0.5, 1.5))
	y, err := s.b.Reduce(tensor.Mean, s.put(t, xv, shape...))
	if err != nil {
		t.Fatal(err)
	}
	close(t, "mean of 1M values", s.get(t, "mean", y, 1, 1, 1, 1), ewReduceRef(tensor.Mean, xv, shape, nil), 1e-6)
}

// --- layout

// ewConcatRef places every input at its offset along axis.
func ewConcatRef(axis int, xs [][]float64, shapes [][]int) ([]float64, []int) {
	out := append([]int(nil), shapes[0]...)
	for _, s := range shapes[1:] {
		out[axis] += s[axis]
	}
	y := make([]float64, ewLen(out))
	at := 0
	for i, x := range xs {
		for p, v := range x {
			idx := ewUnflat(shapes[i], p)
			idx[axis] += at
			y[ewFlat(out, idx)] = v
		}
		at += shapes[i][axis]
	}
	return y, out
}

func ewSliceRef(x []float64, shape []int, axis, start, end int) ([]float64, []int) {
	out := append([]int(nil), shape...)
	out[axis] = end - start
	y := make([]float64, ewLen(out))
	for p := range y {
		idx := ewUnflat(out, p)
		idx[axis] += start
		y[p] = x[ewFlat(shape, idx)]
	}
	return y, out
}

func (s *suite) testConcat(t *testing.T) {
	r := s.rng(t)
	cases := []struct {
		axis   int
		shapes [][]int
	}{
		{0, [][]int{{2, 3, 4}, {1, 3, 4}, {3, 3, 4}}},
		{1, [][]int{{2, 1, 4}, {2, 5, 4}}},
		{-1, [][]int{{2, 3, 4}, {2, 3, 1}, {2, 3, 2}}},
		{2, [][]int{{2, 3, 4}}},
		{1, [][]int{{2, 0, 4}, {2, 2, 4}, {2, 0, 4}, {2, 1, 4}}},
		{0, [][]int{{5}, {3}}},
		{1, [][]int{{2, 8, 32, 40}, {2, 4, 32, 40}}},
		{0, [][]int{{3000}, {5000}, {1}}},
		{-1, [][]int{{200, 30}, {200, 1}, {200, 17}}},
	}
	for _, c := range cases {
		name := fmt.Sprintf("concat axis %d of %v", c.axis, c.shapes)
		axis := c.axis
		if axis < 0 {
			axis += len(c.shapes[0])
		}
		xs := make([][]float64, len(c.shapes))
		ts := make([]*tensor.Tensor, len(c.shapes))
		for i, sh := range c.shapes {
			xs[i] = rounded(randn(r, ewLen(sh)))
			ts[i] = s.put(t, xs[i], sh...)
		}
		want, out := ewConcatRef(axis, xs, c.shapes)
		y, err := s.b.Concat(c.axis, ts...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		close(t, name, s.get(t, name, y, out...), want, 0)
		// Concat's backward is one Slice per input: each must give its input back.
		at := 0
		for i, sh := range c.shapes {
			part, err := s.b.Slice(y, c.axis, at, at+sh[axis])
			if err != nil {
				t.Fatalf("%s: slice %d: %v", name, i, err)
			}
			close(t, fmt.Sprintf("%s: slice %d", name, i), s.get(t, name, part, sh...), xs[i], 0)
			at += sh[axis]
		}
	}
}

func (s *suite) testSlice(t *testing.T) {
	r := s.rng(t)
	cases := []struct {
		shape            []int
		axis, start, end int
	}{
		{[]int{2, 5, 6}, 1, 1, 4},
		{[]int{2, 5, 6}, -1, 0, 6},
		{[]int{2, 5, 6}, 0, 1, 2},
		{[]int{2, 5, 6}, 2, 3, 5},
		{[]int{2, 5, 6}, 1, 2, 2},
		{[]int{9}, 0, 4, 9},
		{[]int{2, 16, 64, 40}, 1, 3, 11},
		{[]int{3, 4000}, -1, 1000, 3999},
		{[]int{6000, 2}, 0, 17, 5017},
	}
	for _, c := range cases {
		name := fmt.Sprintf("slice %v axis %d [%d:%d]", tensor.Shape(c.shape), c.axis, c.start, c.end)
		axis := c.axis
		if axis < 0 {
			axis += len(c.shape)
		}
		xv := rounded(randn(r, ewLen(c.shape)))
		want, out := ewSliceRef(xv, c.shape, axis, c.start, c.end)
		y, err := s.b.Slice(s.put(t, xv, c.shape...), c.axis, c.start, c.end)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		close(t, name, s.get(t, name, y, out...), want, 0)

		dyv := rounded(randn(r, ewLen(out)))
		dx, err := s.b.SliceBackward(s.put(t, dyv, out...), c.shape, c.axis, c.start)
		if err != nil {
			t.Fatalf("%s backward: %v", name, err)
		}
		got := s.get(t, name+" backward", dx, c.shape...)
		wantDx := make([]float64, len(xv))
		for p, g := range dyv {
			idx := ewUnflat(out, p)
			idx[axis] += c.start
			wantDx[ewFlat(c.shape, idx)] = g
		}
		close(t, name+" backward (analytic)", got, wantDx, 0)
		if len(xv) <= ewGradLimit && len(dyv) > 0 {
			s.checkGrad(t, name+" backward", got, func(x []float64) []float64 {
				y, _ := ewSliceRef(x, c.shape, axis, c.start, c.end)
				return y
			}, xv, dyv)
		}
	}
}

// --- optimiser

// ewAdamRef is one step of torch.optim.Adam in float64, updating p, m and v.
func ewAdamRef(p, g, m, v []float64, a tensor.AdamParams) {
	b1, b2 := float64(a.Beta1), float64(a.Beta2)
	bc1 := 1 - math.Pow(b1, float64(a.Step))
	bc2 := 1 - math.Pow(b2, float64(a.Step))
	for i := range p {
		gi := g[i] + float64(a.WeightDecay)*p[i]
		m[i] = b1*m[i] + (1-b1)*gi
		v[i] = b2*v[i] + (1-b2)*gi*gi
		p[i] -= float64(a.LR) / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + float64(a.Eps))
	}
}

func (s *suite) testAdam(t *testing.T) {
	r := s.rng(t)
	for _, wd := range []float32{0, 0.01} {
		for _, shape := range [][]int{{5, 7}, {3, 2000}} {
			name := fmt.Sprintf("adam%v weight decay %g", tensor.Shape(shape), wd)
			n := ewLen(shape)
			pv := rounded(randn(r, n))
			mv, vv := make([]float64, n), make([]float64, n)
			param, m, v := s.put(t, pv, shape...), s.put(t, mv, shape...), s.put(t, vv, shape...)
			gotBefore := append([]float64(nil), pv...)
			for step := 1; step <= 3; step++ {
				gv := rounded(randn(r, n))
				// The gradient of one element is 0: its update comes from m alone.
				gv[0] = 0
				a := tensor.AdamParams{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Step: step}
				if err := s.b.AdamStep(param, s.put(t, gv, shape...), m, v, a); err != nil {
					t.Fatalf("%s step %d: %v", name, step, err)
				}
				before := append([]float64(nil), pv...)
				ewAdamRef(pv, gv, mv, vv, a)
				what := fmt.Sprintf("%s step %d", name, step)
				got := s.get(t, what, param, shape...)
				close(t, what+" param", got, pv, s.tol.Forward)
				// The update is about lr, small beside the parameter: check it on its own
				// too (to the precision left after float32 rounding of the parameter).
				dGot, dWant := make([]float64, n), make([]float64, n)
				for i := range got {
					dGot[i], dWant[i] = got[i]-gotBefore[i], pv[i]-before[i]
				}
				close(t, what+" update", dGot, dWant, s.tol.Backward)
				gotBefore = got
				close(t, what+" m", s.get(t, what, m, shape...), mv, s.tol.Forward)
				close(t, what+" v", s.get(t, what, v, shape...), vv, s.tol.Forward)
			}
		}
	}
}

// --- shape errors

func (s *suite) testElementwiseShapes(t *testing.T) {
	z := func(shape ...int) *tensor.Tensor {
		x, err := s.b.Zeros(tensor.Float32, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	x23, x24, x3, x2345 := z(2, 3), z(2, 4), z(3), z(2, 3, 4, 5)

	_, err := s.b.Binary(tensor.Add, x23, x24)
	wantShapeError(t, "add", err)
	_, err = s.b.Binary(tensor.Div, z(2, 3, 4), z(3, 1, 5))
	wantShapeError(t, "div", err)
	_, _, err = s.b.BinaryBackward(tensor.Mul, x23, x3, x24, true, true)
	wantShapeError(t, "mul", err)
	_, _, err = s.b.BinaryBackward(tensor.Sub, x23, x24, x23, true, true)
	wantShapeError(t, "sub", err)

	_, err = s.b.UnaryBackward(tensor.Exp, x23, x23, x24)
	wantShapeError(t, "exp", err)
	_, err = s.b.UnaryBackward(tensor.Log, x24, x23, x23)
	wantShapeError(t, "log", err)

	_, err = s.b.Reduce(tensor.Sum, x2345, 1, -3)
	wantShapeError(t, "sum", err)
	_, err = s.b.Reduce(tensor.Mean, x2345, 0, 0)
	wantShapeError(t, "mean", err)
	_, err = s.b.Reduce(tensor.Sum, x2345, 4)
	wantShapeError(t, "sum", err)
	_, err = s.b.Reduce(tensor.Mean, x23, -3)
	wantShapeError(t, "mean", err)
	_, err = s.b.ReduceBackward(tensor.Sum, x23, tensor.Shape{2, 4})
	wantShapeError(t, "sum", err)
	_, err = s.b.ReduceBackward(tensor.Mean, x2345, tensor.Shape{2, 3})
	wantShapeError(t, "mean", err)

	_, err = s.b.Concat(1, x23, z(3, 3))
	wantShapeError(t, "concat", err)
	_, err = s.b.Concat(0, x23, x3)
	wantShapeError(t, "concat", err)
	_, err = s.b.Concat(2, x23, x23)
	wantShapeError(t, "concat", err)

	_, err = s.b.Slice(x23, 1, 1, 4)
	wantShapeError(t, "slice", err)
	_, err = s.b.Slice(x23, 0, 2, 1)
	wantShapeError(t, "slice", err)
	_, err = s.b.Slice(x23, 2, 0, 1)
	wantShapeError(t, "slice", err)
	_, err = s.b.SliceBackward(x23, tensor.Shape{2, 5}, 1, 3)
	wantShapeError(t, "slice", err)
	_, err = s.b.SliceBackward(x23, tensor.Shape{3, 5}, 1, 0)
	wantShapeError(t, "slice", err)
	_, err = s.b.SliceBackward(x23, tensor.Shape{2, 3, 1}, 1, 0)
	wantShapeError(t, "slice", err)

	err = s.b.AdamStep(x23, x24, x23, x23, tensor.AdamParams{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Step: 1})
	wantShapeError(t, "adam", err)
}
