package cpu

import (
	"fmt"
	"math"

	"github.com/edgedepth/edgedepth/tensor"
)

// Element-wise ops. Broadcasting goes through ewPlan: every operand is described by
// its strides in the index space of the output, and the space is simplified until the
// innermost dimension is a long run that each operand either walks contiguously or not
// at all. The kernels are then plain loops over slices, one per op and stride pattern,
// written out so that the op is chosen once per run and not once per element.

// ewCheckUnary rejects an op this backend does not know (a newer tensor package).
func ewCheckUnary(op tensor.UnaryOp) error {
	switch op {
	case tensor.Neg, tensor.Abs, tensor.Exp, tensor.Log, tensor.Sqrt, tensor.Reciprocal, tensor.Square,
		tensor.Sin, tensor.Cos, tensor.ReLU, tensor.ELU, tensor.Sigmoid, tensor.Tanh:
		return nil
	}
	return fmt.Errorf("unary: unknown op %d", uint8(op))
}

// ewCheckBinary rejects an op this backend does not know.
func ewCheckBinary(op tensor.BinaryOp) error {
	switch op {
	case tensor.Add, tensor.Sub, tensor.Mul, tensor.Div:
		return nil
	}
	return fmt.Errorf("binary: unknown op %d", uint8(op))
}

// Unary implements tensor.Backend.
func (b *Backend) Unary(op tensor.UnaryOp, x *tensor.Tensor) (*tensor.Tensor, error) {
	if err := ewCheckUnary(op); err != nil {
		return nil, err
	}
	if err := tensor.CheckFloat(op.String(), x); err != nil {
		return nil, err
	}
	y := newF(x.Shape)
	xv, yv := f32(x), f32(y)
	b.parallel(len(xv), func(lo, hi int) { ewUnaryRun(op, yv[lo:hi], xv[lo:hi]) })
	return y, nil
}

// ewUnaryRun computes y = op(x) over one chunk. The transcendental functions go through
// float64: Go's math package has no float32 versions, and rounding a float64 result
// once gives the correctly rounded float32 in almost every case.
func ewUnaryRun(op tensor.UnaryOp, y, x []float32) {
	y = y[:len(x)]
	switch op {
	case tensor.Neg:
		for i, v := range x {
			y[i] = -v
		}
	case tensor.Abs:
		for i, v := range x {
			y[i] = math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
		}
	case tensor.Exp:
		for i, v := range x {
			y[i] = expf(v)
		}
	case tensor.Log:
		for i, v := range x {
			y[i] = float32(math.Log(float64(v)))
		}
	case tensor.Sqrt:
		for i, v := range x {
			y[i] = float32(math.Sqrt(float64(v)))
		}
	case tensor.Reciprocal:
		for i, v := range x {
			y[i] = 1 / v
		}
	case tensor.Square:
		for i, v := range x {
			y[i] = v * v
		}
	case tensor.Sin:
		for i, v := range x {
			y[i] = float32(math.Sin(float64(v)))
		}
	case tensor.Cos:
		for i, v := range x {
			y[i] = float32(math.Cos(float64(v)))
		}
	case tensor.ReLU:
		for i, v := range x {
			// Written so that NaN falls through unchanged, as in PyTorch.
			if v <= 0 {
				v = 0
			}
			y[i] = v
		}
	case tensor.ELU:
		for i, v := range x {
			if !(v > 0) {
				// expm1 keeps the precision of small negative inputs that e^x - 1 loses.
				v = expm1f(v)
			}
			y[i] = v
		}
	case tensor.Sigmoid:
		for i, v := range x {
			// e^-x overflows to +Inf for very negative x, and 1/(1+Inf) is the right 0.
			y[i] = 1 / (1 + expf(-v))
		}
	case tensor.Tanh:
		for i, v := range x {
			y[i] = float32(math.Tanh(float64(v)))
		}
	}
}

// ewUnaryReads reports which forward operands the gradient of op is computed from:
// the output where that saves a transcendental function (exp, sigmoid, tanh, elu) or
// is what PyTorch uses (sqrt, reciprocal), the input otherwise.
func ewUnaryReads(op tensor.UnaryOp) (needX, needY bool) {
	switch op {
	case tensor.Neg:
		return false, false
	case tensor.Exp, tensor.Sqrt, tensor.Reciprocal, tensor.ELU, tensor.Sigmoid, tensor.Tanh:
		return false, true
	}
	return true, false
}

// UnaryBackward implements tensor.Backend. An operand the gradient does not read may be
// nil; a missing y that is needed is recomputed from x.
func (b *Backend) UnaryBackward(op tensor.UnaryOp, x, y, dy *tensor.Tensor) (*tensor.Tensor, error) {
	if err := ewCheckUnary(op); err != nil {
		return nil, err
	}
	if err := tensor.UnaryBackwardCheck(op, x, y, dy); err != nil {
		return nil, err
	}
	name := op.String() + " backward"
	needX, needY := ewUnaryReads(op)
	if op == tensor.ReLU && x == nil && y != nil {
		// relu(x) > 0 exactly where x > 0, so the output serves as well.
		needX, needY = false, true
	}
	if needX && x == nil {
		return nil, fmt.Errorf("%s: x is nil", name)
	}
	if needY && y == nil {
		if x == nil {
			return nil, fmt.Errorf("%s: x and y are both nil", name)
		}
		var err error
		if y, err = b.Unary(op, x); err != nil {
			return nil, err
		}
	}
	dx := newF(dy.Shape)
	var xv, yv []float32
	if needX {
		xv = f32(x)
	}
	if needY {
		yv = f32(y)
	}
	dv, gv := f32(dy), f32(dx)
	b.parallel(len(dv), func(lo, hi int) {
		var xs, ys []float32
		if xv != nil {
			xs = xv[lo:hi]
		}
		if yv != nil {
			ys = yv[lo:hi]
		}
		ewUnaryGradRun(op, gv[lo:hi], xs, ys, dv[lo:hi])
	})
	return dx, nil
}

// ewUnaryGradRun computes dx over one chunk from whichever of x and y ewUnaryReads
// named (ReLU from y when x is nil).
func ewUnaryGradRun(op tensor.UnaryOp, dx, x, y, dy []float32) {
	dx = dx[:len(dy)]
	switch op {
	case tensor.Neg:
		for i, g := range dy {
			dx[i] = -g
		}
	case tensor.Abs:
		x = x[:len(dy)]
		for i, g := range dy {
			switch v := x[i]; {
			case v > 0:
				dx[i] = g
			case v < 0:
				dx[i] = -g
			default: // 0 at the kink, as PyTorch
				dx[i] = 0
			}
		}
	case tensor.Exp:
		y = y[:len(dy)]
		for i, g := range dy {
			dx[i] = g * y[i]
		}
	case tensor.Log:
		x = x[:len(dy)]
		for i, g := range dy {
			dx[i] = g / x[i]
		}
	case tensor.Sqrt:
		y = y[:len(dy)]
		for i, g := range dy {
			dx[i] = g / (2 * y[i])
		}
	case tensor.Reciprocal:
		y = y[:len(dy)]
		for i, g := range dy {
			dx[i] = -g * y[i] * y[i]
		}
	case tensor.Square:
		x = x[:len(dy)]
		for i, g := range dy {
			dx[i] = 2 * x[i] * g
		}
	case tensor.Sin:
		x = x[:len(dy)]
		for i, g := range dy {
			dx[i] = g * float32(math.Cos(float64(x[i])))
		}
	case tensor.Cos:
		x = x[:len(dy)]
		for i, g := range dy {
			dx[i] = -g * float32(math.Sin(float64(x[i])))
		}
	case tensor.ReLU:
		s := x
		if s == nil {
			s = y
		}
		s = s[:len(dy)]
		for i, g := range dy {
			if s[i] > 0 {
				dx[i] = g
			} else {
				dx[i] = 0
			}
		}
	case tensor.ELU:
		// d/dx (e^x - 1) = e^x = y + 1 for x <= 0; y > 0 exactly where x > 0.
		y = y[:len(dy)]
		for i, g := range dy {
			if v := y[i]; v > 0 {
				dx[i] = g
			} else {
				dx[i] = g * (v + 1)
			}
		}
	case tensor.Sigmoid:
		y = y[:len(dy)]
		for i, g := range dy {
			dx[i] = g * y[i] * (1 - y[i])
		}
	case tensor.Tanh:
		y = y[:len(dy)]
		for i, g := range dy {
			dx[i] = g * (1 - y[i]*y[i])
		}
	}
}

// Affine implements tensor.Backend.
func (b *Backend) Affine(x *tensor.Tensor, scale, shift float32) (*tensor.Tensor, error) {
	if err := tensor.CheckFloat("affine", x); err != nil {
		return nil, err
	}
	y := newF(x.Shape)
	xv, yv := f32(x), f32(y)
	b.parallel(len(xv), func(lo, hi int) {
		xs, ys := xv[lo:hi], yv[lo:hi]
		for i, v := range xs {
			ys[i] = v*scale + shift
		}
	})
	return y, nil
}

// ewPlan is the index space of a broadcast op: sizes, and for every operand the stride
// with which it is read along each dimension (0 where it is broadcast). Dimensions of
// size 1 are dropped and neighbours that every operand reads as one are merged, so
// that same-shape operands become one long run, a scalar one run with stride 0, and
// (N,C,H,W)·(1,C,1,1) the space (N, C, H·W) with strides (C·H·W, H·W, 1) and (0, 1, 0).
// After this the innermost stride of every operand is 0 or 1.
type ewPlan struct {
	dims []int
	st   [][]int // st[k][d]: stride of operand k along dimension d
}

// ewStrides returns the strides at which a contiguous operand of shape s is read at
// each index of shape out, s aligned at the last dimension as in NumPy: its row-major
// strides, and 0 along dimensions it lacks or has size 1 in.
func ewStrides(s, out tensor.Shape) []int {
	r := len(out)
	st := make([]int, r)
	stride := 1
	for d := r - 1; d >= 0; d-- {
		j := d - (r - len(s))
		if j < 0 {
			continue
		}
		if s[j] != 1 {
			st[d] = stride
		}
		stride *= s[j]
	}
	return st
}

// newEwPlan simplifies the space shape read by operands with the given strides.
func newEwPlan(shape tensor.Shape, strides ...[]int) *ewPlan {
	p := &ewPlan{st: make([][]int, len(strides))}
	for d, n := range shape {
		if n == 1 {
			continue
		}
		if m := len(p.dims) - 1; m >= 0 {
			merge := true
			for k, s := range strides {
				if p.st[k][m] != s[d]*n {
					merge = false
					break
				}
			}
			if merge {
				p.dims[m] *= n
				for k, s := range strides {
					p.st[k][m] = s[d]
				}
				continue
			}
		}
		p.dims = append(p.dims, n)
		for k, s := range strides {
			p.st[k] = append(p.st[k], s[d])
		}
	}
	p.fill()
	return p
}

// fill gives a space without dimensions (one element) one dimension of size 1, so
// that walk always has an innermost dimension.
func (p *ewPlan) fill() {
	if len(p.dims) > 0 {
		return
	}
	p.dims = []int{1}
	for k := range p.st {
		p.st[k] = []int{0}
	}
}

// size is the number of positions in the space.
func (p *ewPlan) size() int {
	n := 1
	for _, d := range p.dims {
		n *= d
	}
	return n
}

// inner is operand k's stride along the innermost dimension (0 or 1).
func (p *ewPlan) inner(k int) int { return p.st[k][len(p.dims)-1] }

// offsets sets off to base plus every operand's offset at flat position pos.
func (p *ewPlan) offsets(pos int, base, off []int) {
	if base == nil {
		clear(off)
	} else {
		copy(off, base)
	}
	for d := len(p.dims) - 1; d >= 0; d-- {
		i := pos % p.dims[d]
		pos /= p.dims[d]
		for k := range off {
			off[k] += i * p.st[k][d]
		}
	}
}

// walk calls run for every stretch of the flat range [lo, hi) that stays within one
// innermost row, with off holding base (nil for zeros) plus each operand's offset at
// the stretch's start. run must neither keep nor change off.
func (p *ewPlan) walk(base []int, lo, hi int, run func(off []int, n int)) {
	if lo >= hi {
		return
	}
	r := len(p.dims)
	last := r - 1
	idx := make([]int, r)
	off := make([]int, len(p.st))
	if base != nil {
		copy(off, base)
	}
	rem := lo
	for d := last; d >= 0; d-- {
		i := rem % p.dims[d]
		rem /= p.dims[d]
		idx[d] = i
		for k := range off {
			off[k] += i * p.st[k][d]
		}
	}
	inner := p.dims[last]
	for pos := lo; ; {
		n := min(inner-idx[last], hi-pos)
		run(off, n)
		pos += n
		if pos >= hi {
			return
		}
		// The stretch ended its row: go back to the row's start, then carry into the
		// outer dimensions like an odometer.
		for k := range off {
			off[k] -= idx[last] * p.st[k][last]
		}
		idx[last] = 0
		for d := last - 1; d >= 0; d-- {
			idx[d]++
			for k := range off {
				off[k] += p.st[k][d]
			}
			if idx[d] < p.dims[d] {
				break
			}
			for k := range off {
				off[k] -= p.dims[d] * p.st[k][d]
			}
			idx[d] = 0
		}
	}
}

// Binary implements tensor.Backend.
func (b *Backend) Binary(op tensor.BinaryOp, a, c *tensor.Tensor) (*tensor.Tensor, error) {
	if err := ewCheckBinary(op); err != nil {
		return nil, err
	}
	shape, err := tensor.BinaryShape(op, a, c)
	if err != nil {
		return nil, err
	}
	out := newF(shape)
	if out.Len() == 0 {
		return out, nil
	}
	b.ewBinaryInto(op, f32(out), shape, f32(a), a.Shape, f32(c), c.Shape)
	return out, nil
}

// ewBinaryInto writes op(a, c) broadcast to shape into o.
func (b *Backend) ewBinaryInto(op tensor.BinaryOp, o []float32, shape tensor.Shape, av []float32, as tensor.Shape, cv []float32, cs tensor.Shape) {
	p := newEwPlan(shape, ewStrides(shape, shape), ewStrides(as, shape), ewStrides(cs, shape))
	sa, sc := p.inner(1), p.inner(2)
	b.parallel(len(o), func(lo, hi int) {
		p.walk(nil, lo, hi, func(off []int, n int) {
			ewBinaryRun(op, o[off[0]:off[0]+n], av[off[1]:], sa, cv[off[2]:], sc)
		})
	})
}

// ewBinaryRun computes o = a op c over one run; sa and sc (0 or 1) are the operands'
// strides along it.
func ewBinaryRun(op tensor.BinaryOp, o, a []float32, sa int, c []float32, sc int) {
	n := len(o)
	switch {
	case sa == 1 && sc == 1:
		a, c = a[:n], c[:n]
		switch op {
		case tensor.Add:
			for i := range o {
				o[i] = a[i] + c[i]
			}
		case tensor.Sub:
			for i := range o {
				o[i] = a[i] - c[i]
			}
		case tensor.Mul:
			for i := range o {
				o[i] = a[i] * c[i]
			}
		case tensor.Div:
			for i := range o {
				o[i] = a[i] / c[i]
			}
		}
	case sa == 1:
		a = a[:n]
		s := c[0]
		switch op {
		case tensor.Add:
			for i := range o {
				o[i] = a[i] + s
			}
		case tensor.Sub:
			for i := range o {
				o[i] = a[i] - s
			}
		case tensor.Mul:
			for i := range o {
				o[i] = a[i] * s
			}
		case tensor.Div:
			// A true division rather than a multiplication by 1/s: it stays correctly
			// rounded, and the loop is bound by memory anyway.
			for i := range o {
				o[i] = a[i] / s
			}
		}
	case sc == 1:
		c = c[:n]
		s := a[0]
		switch op {
		case tensor.Add:
			for i := range o {
				o[i] = s + c[i]
			}
		case tensor.Sub:
			for i := range o {
				o[i] = s - c[i]
			}
		case tensor.Mul:
			for i := range o {
				o[i] = s * c[i]
			}
		case tensor.Div:
			for i := range o {
				o[i] = s / c[i]
			}
		}
	default:
		var v float32
		switch op {
		case tensor.Add:
			v = a[0] + c[0]
		case tensor.Sub:
			v = a[0] - c[0]
		case tensor.Mul:
			v = a[0] * c[0]
		case tensor.Div:
			v = a[0] / c[0]
		}
		for i := range o {
			o[i] = v
		}
	}
}

// BinaryBackward implements tensor.Backend. A gradient whose operand was not broadcast
// is one element-wise pass; one that was is summed in the same pass that computes it,
// in float64, without an intermediate of dy's size.
func (b *Backend) BinaryBackward(op tensor.BinaryOp, a, c, dy *tensor.Tensor, needA, needB bool) (da, db *tensor.Tensor, err error) {
	if err := ewCheckBinary(op); err != nil {
		return nil, nil, err
	}
	shape, err := tensor.BinaryBackwardShape(op, a, c, dy)
	if err != nil {
		return nil, nil, err
	}
	if needA {
		da = newF(a.Shape)
	}
	if needB {
		db = newF(c.Shape)
	}
	if dy.Len() == 0 {
		return da, db, nil // sums over nothing: zeros
	}
	p := newEwPlan(shape, ewStrides(shape, shape), ewStrides(a.Shape, shape), ewStrides(c.Shape, shape))
	if needA {
		b.ewBinaryGrad(op, 1, f32(da), p, f32(dy), f32(a), f32(c))
	}
	if needB {
		b.ewBinaryGrad(op, 2, f32(db), p, f32(dy), f32(a), f32(c))
	}
	return da, db, nil
}

// ewBinaryGrad writes into g the gradient of operand tgt (1: a, 2: c) of a op c,
// whose space p reads dy, a and c as operands 0, 1 and 2.
func (b *Backend) ewBinaryGrad(op tensor.BinaryOp, tgt int, g []float32, p *ewPlan, dy, a, c []float32) {
	sa, sc := p.inner(1), p.inner(2)
	if !p.broadcasts(tgt) {
		// Same shape as dy: no sum, one pass writing float32.
		b.parallel(p.size(), func(lo, hi int) {
			p.walk(nil, lo, hi, func(off []int, n int) {
				ewBinaryGradRun(op, tgt, g[off[tgt]:off[tgt]+n], dy[off[0]:], a[off[1]:], sa, c[off[2]:], sc)
			})
		})
		return
	}
	// sum handles a run along which the target is one element (so constant), acc one
	// along which the target advances with dy. A run has more than one position, so
	// along a run that sum handles the other operand cannot be broadcast too: it
	// advances with stride 1.
	sum := func(off []int, n int) float64 {
		d := dy[off[0] : off[0]+n]
		switch {
		case op == tensor.Add || op == tensor.Sub && tgt == 1:
			return redSum(d)
		case op == tensor.Sub:
			return -redSum(d)
		case op == tensor.Mul && tgt == 1:
			return redDot(d, c[off[2]:off[2]+n])
		case op == tensor.Mul:
			return redDot(d, a[off[1]:off[1]+n])
		case tgt == 1: // div: Σ dy/c
			return redDotDiv(d, c[off[2]:off[2]+n])
		default: // div: -Σ dy·a / c²
			cb := float64(c[off[2]])
			return -redDot(d, a[off[1]:off[1]+n]) / (cb * cb)
		}
	}
	acc := func(off []int, n int, to []float64) {
		d := dy[off[0] : off[0]+n]
		to = to[:n]
		switch {
		case op == tensor.Add || op == tensor.Sub && tgt == 1:
			for i, v := range d {
				to[i] += float64(v)
			}
		case op == tensor.Sub:
			for i, v := range d {
				to[i] -= float64(v)
			}
		case op == tensor.Mul:
			o, so := c[off[2]:], sc
			if tgt == 2 {
				o, so = a[off[1]:], sa
			}
			if so == 1 {
				o = o[:n]
				for i, v := range d {
					to[i] += float64(v) * float64(o[i])
				}
			} else {
				s := float64(o[0])
				for i, v := range d {
					to[i] += float64(v) * s
				}
			}
		case tgt == 1: // div
			cs := c[off[2]:]
			for i, v := range d {
				to[i] += float64(v) / float64(cs[i*sc])
			}
		default: // div, target c advancing with dy
			as, cs := a[off[1]:], c[off[2]:off[2]+n]
			for i, v := range d {
				cb := float64(cs[i])
				to[i] -= float64(v) * float64(as[i*sa]) / (cb * cb)
			}
		}
	}
	b.redInto(g, p, tgt, 1, sum, acc)
}

// broadcasts reports whether operand k is read at several positions of the space.
func (p *ewPlan) broadcasts(k int) bool {
	for d, n := range p.dims {
		if n > 1 && p.st[k][d] == 0 {
			return true
		}
	}
	return false
}

// ewBinaryGradRun writes one run of the gradient of operand tgt where that operand is
// not broadcast (so it advances with dy).
func ewBinaryGradRun(op tensor.BinaryOp, tgt int, g, dy, a []float32, sa int, c []float32, sc int) {
	n := len(g)
	dy = dy[:n]
	switch {
	case op == tensor.Add || op == tensor.Sub && tgt == 1:
		copy(g, dy)
	case op == tensor.Sub:
		for i, v := range dy {
			g[i] = -v
		}
	case op == tensor.Mul:
		o, so := c, sc
		if tgt == 2 {
			o, so = a, sa
		}
		if so == 1 {
			o = o[:n]
			for i, v := range dy {
				g[i] = v * o[i]
			}
		} else {
			s := o[0]
			for i, v := range dy {
				g[i] = v * s
			}
		}
	case tgt == 1: // div
		if sc == 1 {
			c = c[:n]
			for i, v := range dy {
				g[i] = v / c[i]
			}
		} else {
			s := c[0]
			for i, v := range dy {
				g[i] = v / s
			}
		}
	default: // div: -dy·a/c², in float64 so that c² cannot underflow or overflow
		c = c[:n]
		for i, v := range dy {
			cb := float64(c[i])
			g[i] = float32(-float64(v) * float64(a[i*sa]) / (cb * cb))
		}
	}
}
