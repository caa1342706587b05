package cuda

import "github.com/edgedepth/edgedepth/tensor"

// Matrix products through cuBLAS. cuBLAS is column-major; a row-major matrix with row
// stride ld is, read column-major, its own transpose with leading dimension ld. So the
// row-major C = op(A)·op(B) is the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: gemm swaps the
// operands and their transposition flags and calls cuBLAS with the same pointers.

// gemm computes batch products C = op(A)·op(B) + beta·C in row-major terms: op(A) is
// m×k, op(B) k×n, C m×n with row stride ldc; lda and ldb are the row strides of A and
// B as stored; sA, sB and sC step from one batch item to the next (owner).
func (b *Backend) gemm(transA, transB bool, m, n, k int, A devptr, lda int, sA int64, B devptr, ldb int, sB int64,
	beta float32, C devptr, ldc int, sC int64, batch int) error {
	if m == 0 || n == 0 || batch == 0 {
		return nil
	}
	return cublasSgemmStridedBatched(b.blas, transB, transA, n, m, k, 1, B, ldb, sB, A, lda, sA, beta, C, ldc, sC, batch)
}

// gemmRun is a stretch of batch items [start, start+count) whose operands' matrix
// indices advance by constant steps: one strided-batched call.
type gemmRun struct {
	start, count int
	step         [3]int // per operand (A, B, C)
}

// gemmRuns cuts the batch into runs along which every operand's matrix index (maps[k][i]
// for item i) advances by a constant step (0 for a broadcast operand): NumPy batch
// broadcasting over several dimensions is not one stride, but it is a few.
func gemmRuns(maps [3][]int) []gemmRun {
	n := len(maps[0])
	var runs []gemmRun
	for i := 0; i < n; {
		r := gemmRun{start: i, count: 1}
		if i+1 < n {
			for k := range maps {
				r.step[k] = maps[k][i+1] - maps[k][i]
			}
			j := i + 1
			for ; j < n; j++ {
				ok := true
				for k := range maps {
					if maps[k][j]-maps[k][j-1] != r.step[k] {
						ok = false
						break
					}
				}
				if !ok {
					break
				}
			}
			r.count = j - i
		}
		runs = append(runs, r)
		i += r.count
	}
	return runs
}

// mat is one operand of a batched product: its matrices' base address, row stride,
// elements per matrix, and which matrix each batch item uses.
type mat struct {
	p    devptr
	ld   int
	size int
	idx  []int
}

// batchedGemm runs C_i = op(A_i)·op(B_i) for every batch item i (owner).
func (b *Backend) batchedGemm(transA, transB bool, m, n, k int, A, B, C mat) error {
	for _, r := range gemmRuns([3][]int{A.idx, B.idx, C.idx}) {
		err := b.gemm(transA, transB, m, n, k,
			A.p.at(A.idx[r.start]*A.size), A.ld, int64(r.step[0]*A.size),
			B.p.at(B.idx[r.start]*B.size), B.ld, int64(r.step[1]*B.size),
			0, C.p.at(C.idx[r.start]*C.size), C.ld, int64(r.step[2]*C.size), r.count)
		if err != nil {
			return err
		}
	}
	return nil
}

// mmGeom is the geometry of one batched matrix product.
type mmGeom struct {
	m, n, k             int
	lda, ldb            int // row strides of a's and b's matrices as stored
	sizeA, sizeB, sizeC int // elements per matrix
	batch               tensor.Shape
	ia, ib, ic          []int // the matrix of a, b and c each output item uses
	folded              bool  // the batch is folded into m (one product)
}

func newMMGeom(a, b *tensor.Tensor, out tensor.Shape, transA, transB bool) mmGeom {
	ra, rb, ro := len(a.Shape), len(b.Shape), len(out)
	g := mmGeom{m: out[ro-2], n: out[ro-1], lda: a.Shape[ra-1], ldb: b.Shape[rb-1]}
	g.k = a.Shape[ra-1]
	if transA {
		g.k = a.Shape[ra-2]
	}
	g.sizeA, g.sizeB, g.sizeC = a.Shape[ra-2]*a.Shape[ra-1], b.Shape[rb-2]*b.Shape[rb-1], g.m*g.n
	g.batch = out[:ro-2].Clone()
	nb, na, nB := g.batch.Len(), a.Shape[:ra-2].Len(), b.Shape[:rb-2].Len()
	if nB == 1 && na == nb && nb > 1 && !transA {
		// One b for every item, and a stored (…, m, k) contiguously: the batch is one
		// (batch·m)×k matrix, so the product and both gradients are single products.
		g.m *= nb
		g.sizeA, g.sizeC = g.sizeA*nb, g.sizeC*nb
		g.folded = true
		g.ia, g.ib, g.ic = []int{0}, []int{0}, []int{0}
		return g
	}
	g.ia, g.ib = batchIndex(g.batch, a.Shape[:ra-2]), batchIndex(g.batch, b.Shape[:rb-2])
	g.ic = make([]int, nb)
	for i := range g.ic {
		g.ic[i] = i
	}
	return g
}

// batchIndex returns, for every item of the (row-major) batch shape out, the index of
// the item of sub (aligned at the last dimension, size-1 and missing dimensions
// repeating) that broadcasts to it.
func batchIndex(out, sub tensor.Shape) []int {
	st := broadcastStrides(sub, out)
	idx := make([]int, out.Len())
	for i := range idx {
		rem, off := i, int64(0)
		for d := len(out) - 1; d >= 0; d-- {
			off += int64(rem%out[d]) * st[d]
			rem /= out[d]
		}
		idx[i] = int(off)
	}
	return idx
}

// MatMul implements tensor.Backend.
func (b *Backend) MatMul(lhs, rhs *tensor.Tensor, transA, transB bool) (*tensor.Tensor, error) {
	shape, err := tensor.MatMulCheck(lhs, rhs, transA, transB)
	if err != nil {
		return nil, err
	}
	g := newMMGeom(lhs, rhs, shape, transA, transB)
	var out *tensor.Tensor
	err = b.run(func() error {
		var err error
		if out, err = b.newTensor(tensor.Float32, shape); err != nil {
			return err
		}
		if out.Len() == 0 {
			return nil
		}
		if g.k == 0 {
			return cuMemsetD32(b.ptr(out), 0, out.Len(), b.stream)
		}
		return b.batchedGemm(transA, transB, g.m, g.n, g.k,
			mat{b.ptr(lhs), g.lda, g.sizeA, g.ia}, mat{b.ptr(rhs), g.ldb, g.sizeB, g.ib}, mat{b.ptr(out), g.n, g.sizeC, g.ic})
	})
	if err != nil {
		b.discard(out)
		return nil, err
	}
	return out, nil
}

// MatMulBackward implements tensor.Backend. With c = op(a)·op(b):
//
//	da = dc·op(b)ᵀ, or (transA) da = op(b)·dcᵀ;
//	db = op(a)ᵀ·dc, or (transB) db = dcᵀ·op(a).
//
// An operand whose batch dimensions broadcast gets the per-item products in a
// temporary, summed over the items that shared it.
func (b *Backend) MatMulBackward(lhs, rhs, dc *tensor.Tensor, transA, transB, needA, needB bool) (da, db *tensor.Tensor, err error) {
	shape, err := tensor.MatMulBackwardShape(lhs, rhs, dc, transA, transB)
	if err != nil {
		return nil, nil, err
	}
	g := newMMGeom(lhs, rhs, shape, transA, transB)
	m, n, k := g.m, g.n, g.k
	err = b.run(func() error {
		A := mat{b.ptr(lhs), g.lda, g.sizeA, g.ia}
		B := mat{b.ptr(rhs), g.ldb, g.sizeB, g.ib}
		DC := mat{b.ptr(dc), n, g.sizeC, g.ic}
		var err error
		if needA {
			da, err = b.mmGrad(lhs.Shape, g, g.ia, g.sizeA, func(C mat) error {
				if !transA { // da (m×k) = dc (m×n) · op(b)ᵀ
					return b.batchedGemm(false, !transB, m, k, n, DC, B, C)
				}
				// da (k×m) = op(b) (k×n) · dcᵀ
				return b.batchedGemm(transB, true, k, m, n, B, DC, C)
			}, lhs.Shape[len(lhs.Shape)-1])
			if err != nil {
				return err
			}
		}
		if needB {
			db, err = b.mmGrad(rhs.Shape, g, g.ib, g.sizeB, func(C mat) error {
				if !transB { // db (k×n) = op(a)ᵀ (k×m) · dc (m×n)
					return b.batchedGemm(!transA, false, k, n, m, A, DC, C)
				}
				// db (n×k) = dcᵀ (n×m) · op(a) (m×k)
				return b.batchedGemm(true, transA, n, k, m, DC, A, C)
			}, rhs.Shape[len(rhs.Shape)-1])
			if err != nil {
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

// mmGrad makes the gradient of an operand of shape s whose items are used by the batch
// items as idx says: products writes one gradient matrix (size elements, row stride
// ld) per batch item into the mat it is given. When every item has its own matrix the
// products go straight into the gradient; otherwise into a temporary, summed (owner).
func (b *Backend) mmGrad(s tensor.Shape, g mmGeom, idx []int, size int, products func(C mat) error, ld int) (*tensor.Tensor, error) {
	grad, err := b.newTensor(tensor.Float32, s)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*tensor.Tensor, error) {
		b.discard(grad)
		return nil, err
	}
	if grad.Len() == 0 {
		return grad, nil
	}
	// An empty batch, or an empty inner dimension of the products: sums over nothing.
	if len(g.ic) == 0 || g.batch.Len() == 0 || g.m == 0 || g.n == 0 || g.k == 0 {
		if err := cuMemsetD32(b.ptr(grad), 0, grad.Len(), b.stream); err != nil {
			return fail(err)
		}
		if g.batch.Len() == 0 || g.m == 0 || g.n == 0 {
			return grad, nil
		}
	}
	if g.folded || distinct(idx) {
		if err := products(mat{b.ptr(grad), ld, size, idx}); err != nil {
			return fail(err)
		}
		return grad, nil
	}
	r := len(s)
	full := append(g.batch.Clone(), s[r-2], s[r-1])
	tmp, err := b.newTensor(tensor.Float32, full)
	if err != nil {
		return fail(err)
	}
	defer b.Free(tmp)
	if err := products(mat{b.ptr(tmp), ld, size, g.ic}); err != nil {
		return fail(err)
	}
	if err := b.reduceInto(b.ptr(grad), b.ptr(tmp), full, alignedShape(s, len(full)), 1); err != nil {
		return fail(err)
	}
	return grad, nil
}

// distinct reports whether no two batch items share a matrix.
func distinct(idx []int) bool {
	seen := make(map[int]bool, len(idx))
	for _, i := range idx {
		if seen[i] {
			return false
		}
		seen[i] = true
	}
	return true
}
