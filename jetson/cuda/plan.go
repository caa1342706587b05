package cuda

import (
	"fmt"

	"github.com/edgedepth/edgedepth/tensor"
)

// Index plans: the host-side arithmetic that turns NumPy broadcasting and reductions
// over arbitrary axes into the few (size, stride) pairs a kernel walks. Dimensions of
// size 1 are dropped and neighbours that every operand reads as one run are merged, so
// same-shape operands become one flat run, a per-channel operand (1,C,1,1) against
// (N,C,H,W) the space (N, C, H·W), and most reductions one or two dimensions each.

// stridePlan is an index space (outermost first) and, for each operand, the element
// stride with which it is read along each dimension (0 where it is broadcast).
type stridePlan struct {
	size []int64
	st   [][]int64
}

// broadcastStrides returns the strides at which a contiguous operand of shape s is
// read at each index of shape out (s aligned at the last dimension): its row-major
// strides, 0 along dimensions it lacks or has size 1 in.
func broadcastStrides(s, out tensor.Shape) []int64 {
	r := len(out)
	st := make([]int64, r)
	stride := int64(1)
	for d := r - 1; d >= 0; d-- {
		j := d - (r - len(s))
		if j < 0 {
			continue
		}
		if s[j] != 1 {
			st[d] = stride
		}
		stride *= int64(s[j])
	}
	return st
}

// newStridePlan simplifies space shape as read by operands with the given strides.
func newStridePlan(shape tensor.Shape, strides ...[]int64) *stridePlan {
	p := &stridePlan{st: make([][]int64, len(strides))}
	for d, n := range shape {
		if n == 1 {
			continue
		}
		if m := len(p.size) - 1; m >= 0 {
			merge := true
			for k, s := range strides {
				if p.st[k][m] != s[d]*int64(n) {
					merge = false
					break
				}
			}
			if merge {
				p.size[m] *= int64(n)
				for k, s := range strides {
					p.st[k][m] = s[d]
				}
				continue
			}
		}
		p.size = append(p.size, int64(n))
		for k, s := range strides {
			p.st[k] = append(p.st[k], s[d])
		}
	}
	if len(p.size) == 0 { // one element
		p.size = []int64{1}
		for k := range p.st {
			p.st[k] = []int64{0}
		}
	}
	return p
}

// rank is the number of dimensions left.
func (p *stridePlan) rank() int { return len(p.size) }

// check reports a plan too deep for the kernels (more than maxDims dimensions that
// cannot be merged), which no shape of edgedepth's networks produces.
func (p *stridePlan) check(op string) error {
	if len(p.size) > maxDims {
		return fmt.Errorf("%s: %d independent dimensions, the CUDA kernels handle %d", op, len(p.size), maxDims)
	}
	return nil
}

// reducePlan describes summing x into out, where out has x's rank and each of its
// dimensions equals x's (kept) or is 1 (reduced): the kept dimensions with x's strides
// (out is contiguous over them, in order) and the reduced ones with x's strides.
type reducePlan struct {
	nOut, count            int64
	keptSize, keptStride   []int64
	reducedSize, redStride []int64
}

// newReducePlan plans the sum of a contiguous x of shape in into shape out.
func newReducePlan(in, out tensor.Shape) (*reducePlan, error) {
	if len(in) != len(out) {
		return nil, fmt.Errorf("reduce plan: ranks of %v and %v differ", in, out)
	}
	p := &reducePlan{nOut: 1, count: 1}
	stride := int64(1)
	xs := make([]int64, len(in))
	for d := len(in) - 1; d >= 0; d-- {
		xs[d] = stride
		stride *= int64(in[d])
	}
	// push appends dimension (n, st) to a list, merging it into the previous one when
	// that one is read as its continuation (its stride is st·n). Only dimensions next
	// to each other in x merge: a kept one between two reduced ones separates them.
	last := -1 // kind of the previous dimension pushed: 0 kept, 1 reduced
	push := func(size, strides *[]int64, n, st int64, kind int) {
		if m := len(*size) - 1; m >= 0 && last == kind && (*strides)[m] == st*n {
			(*size)[m] *= n
			(*strides)[m] = st
			return
		}
		*size = append(*size, n)
		*strides = append(*strides, st)
		last = kind
	}
	for d := range in {
		n := int64(in[d])
		switch {
		case out[d] == in[d] && n != 1:
			push(&p.keptSize, &p.keptStride, n, xs[d], 0)
			p.nOut *= n
		case out[d] == 1 && n != 1:
			push(&p.reducedSize, &p.redStride, n, xs[d], 1)
			p.count *= n
		case out[d] == in[d]: // both 1
		default:
			return nil, fmt.Errorf("reduce plan: %v does not reduce to %v", in, out)
		}
	}
	if len(p.keptSize) > maxDims || len(p.reducedSize) > maxDims {
		return nil, fmt.Errorf("reduce %v to %v: too many separate dimensions for the CUDA kernels", in, out)
	}
	return p, nil
}

// alignedShape is s with leading 1s up to rank r (NumPy's alignment at the last
// dimension), the shape a broadcast operand's gradient is summed into.
func alignedShape(s tensor.Shape, r int) tensor.Shape {
	out := make(tensor.Shape, r)
	for i := range out {
		out[i] = 1
	}
	copy(out[r-len(s):], s)
	return out
}
