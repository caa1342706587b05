package cpu

import (
	"sync"
	"sync/atomic"

	"github.com/edgedepth/edgedepth/tensor"
)

// MatMul implements tensor.Backend: c = op(a)·op(b) over broadcast batch dimensions.
func (b *Backend) MatMul(lhs, rhs *tensor.Tensor, transA, transB bool) (*tensor.Tensor, error) {
	shape, err := tensor.MatMulCheck(lhs, rhs, transA, transB)
	if err != nil {
		return nil, err
	}
	g := newMMGeom(lhs, rhs, shape, transA, transB)
	out := newF(shape)
	av, bv, cv := f32(lhs), f32(rhs), f32(out)
	chains := make([][]gemmJob, g.batch)
	for i := range chains {
		chains[i] = []gemmJob{{
			transA: transA, transB: transB, m: g.m, n: g.n, k: g.k,
			a: av[g.ia[i]*g.sizeA:], lda: g.lda,
			b: bv[g.ib[i]*g.sizeB:], ldb: g.ldb,
			c: cv[i*g.sizeC:], ldc: g.n,
		}}
	}
	b.runGemms(chains)
	return out, nil
}

// MatMulBackward implements tensor.Backend. With c = op(a)·op(b):
//
//	d op(a) = dc·op(b)ᵀ, so da = dc·op(b)ᵀ, or (transA) da = op(b)·dcᵀ;
//	d op(b) = op(a)ᵀ·dc, so db = op(a)ᵀ·dc, or (transB) db = dcᵀ·op(a).
//
// An operand whose batch dimensions broadcast receives the sum over the batch items
// that shared it.
func (b *Backend) MatMulBackward(lhs, rhs, dc *tensor.Tensor, transA, transB, needA, needB bool) (da, db *tensor.Tensor, err error) {
	shape, err := tensor.MatMulBackwardShape(lhs, rhs, dc, transA, transB)
	if err != nil {
		return nil, nil, err
	}
	g := newMMGeom(lhs, rhs, shape, transA, transB)
	av, bv, dcv := f32(lhs), f32(rhs), f32(dc)
	m, n, k := g.m, g.n, g.k
	if needA {
		da = newF(lhs.Shape)
		dav := f32(da)
		chains := make([][]gemmJob, g.numA)
		for i := 0; i < g.batch; i++ {
			j := g.ia[i]
			job := gemmJob{c: dav[j*g.sizeA:], beta: 1}
			dci, bi := dcv[i*g.sizeC:], bv[g.ib[i]*g.sizeB:]
			if !transA { // da (m×k) += dc (m×n) · op(b)ᵀ
				job.transA, job.transB, job.m, job.n, job.k = false, !transB, m, k, n
				job.a, job.lda, job.b, job.ldb, job.ldc = dci, n, bi, g.ldb, k
			} else { // da (k×m) += op(b) (k×n) · dcᵀ
				job.transA, job.transB, job.m, job.n, job.k = transB, true, k, m, n
				job.a, job.lda, job.b, job.ldb, job.ldc = bi, g.ldb, dci, n, m
			}
			chains[j] = append(chains[j], job)
		}
		b.runGemms(chains)
	}
	if needB {
		db = newF(rhs.Shape)
		dbv := f32(db)
		chains := make([][]gemmJob, g.numB)
		for i := 0; i < g.batch; i++ {
			j := g.ib[i]
			job := gemmJob{c: dbv[j*g.sizeB:], beta: 1}
			dci, ai := dcv[i*g.sizeC:], av[g.ia[i]*g.sizeA:]
			if !transB { // db (k×n) += op(a)ᵀ (k×m) · dc (m×n)
				job.transA, job.transB, job.m, job.n, job.k = !transA, false, k, n, m
				job.a, job.lda, job.b, job.ldb, job.ldc = ai, g.lda, dci, n, n
			} else { // db (n×k) += dcᵀ (n×m) · op(a) (m×k)
				job.transA, job.transB, job.m, job.n, job.k = true, transA, n, k, m
				job.a, job.lda, job.b, job.ldb, job.ldc = dci, n, ai, g.lda, k
			}
			chains[j] = append(chains[j], job)
		}
		b.runGemms(chains)
	}
	return da, db, nil
}

// mmGeom is the geometry of one batched matrix product.
type mmGeom struct {
	m, n, k             int
	lda, ldb            int // row strides of a's and b's matrices as stored
	sizeA, sizeB, sizeC int // elements per matrix
	batch               int // output matrices
	numA, numB          int // a's and b's matrices
	ia, ib              []int
}

func newMMGeom(a, b *tensor.Tensor, out tensor.Shape, transA, transB bool) mmGeom {
	ra, rb, ro := len(a.Shape), len(b.Shape), len(out)
	g := mmGeom{m: out[ro-2], n: out[ro-1], lda: a.Shape[ra-1], ldb: b.Shape[rb-1]}
	g.k = a.Shape[ra-1]
	if transA {
		g.k = a.Shape[ra-2]
	}
	g.sizeA, g.sizeB, g.sizeC = a.Shape[ra-2]*a.Shape[ra-1], b.Shape[rb-2]*b.Shape[rb-1], g.m*g.n
	batch := out[:ro-2]
	g.batch, g.numA, g.numB = batch.Len(), a.Shape[:ra-2].Len(), b.Shape[:rb-2].Len()
	if g.numB == 1 && g.numA == g.batch && !transA {
		// One b for every batch item and a stored (…, m, k) contiguously: the batch is
		// one (batch·m)×k matrix, so the whole product, and both gradients, are a
		// single large sgemm instead of many small ones.
		g.m *= g.batch
		g.sizeA, g.sizeC = g.sizeA*g.batch, g.sizeC*g.batch
		g.batch, g.numA = 1, 1
		g.ia, g.ib = []int{0}, []int{0}
		return g
	}
	g.ia, g.ib = batchMap(batch, a.Shape[:ra-2]), batchMap(batch, b.Shape[:rb-2])
	return g
}

// batchMap returns, for every index of the (row-major, flattened) batch shape out, the
// flattened index of the operand batch shape sub that broadcasts to it: sub is aligned
// at the last dimension, and its dimensions of size 1 and missing ones repeat.
func batchMap(out, sub tensor.Shape) []int {
	r := len(out)
	stride := make([]int, r) // sub's stride for each dimension of out; 0 where it repeats
	s := 1
	for i := r - 1; i >= 0; i-- {
		if j := len(sub) - r + i; j >= 0 && sub[j] != 1 {
			stride[i] = s
			s *= sub[j]
		}
	}
	idx := make([]int, out.Len())
	pos := make([]int, r)
	cur := 0
	for n := range idx {
		idx[n] = cur
		for i := r - 1; i >= 0; i-- { // odometer increment of pos, tracking cur
			pos[i]++
			cur += stride[i]
			if pos[i] < out[i] {
				break
			}
			cur -= stride[i] * pos[i]
			pos[i] = 0
		}
	}
	return idx
}

// gemmJob is one sgemm call: c = op(a)·op(b) + beta·c (see sgemm).
type gemmJob struct {
	transA, transB bool
	m, n, k        int
	a              []float32
	lda            int
	b              []float32
	ldb            int
	beta           float32
	c              []float32
	ldc            int
}

func (j *gemmJob) run() {
	sgemm(j.transA, j.transB, j.m, j.n, j.k, 1, j.a, j.lda, j.b, j.ldb, j.beta, j.c, j.ldc)
}

// macs is the job's number of multiply-adds.
func (j *gemmJob) macs() int { return j.m * j.n * j.k }

// Work below these sizes (multiply-adds) runs on the calling goroutine: starting and
// joining goroutines costs a few microseconds, about what 64k multiply-adds take.
const (
	minParallelMACs = 1 << 16
	minSplitMACs    = 1 << 18
)

// runGemms runs chains of jobs: the jobs of one chain in order (they accumulate into
// the same matrix), different chains independently. Many chains are shared out whole
// among the threads; few are run one after the other, each job split across threads.
func (b *Backend) runGemms(chains [][]gemmJob) {
	total := 0
	for _, ch := range chains {
		for i := range ch {
			total += ch[i].macs()
		}
	}
	nc := len(chains)
	switch {
	case b.threads <= 1 || total < minParallelMACs:
		for _, ch := range chains {
			for i := range ch {
				ch[i].run()
			}
		}
	case nc >= 4*b.threads || nc%b.threads == 0:
		// Enough chains to balance: the threads take them in turn.
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < b.threads; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c := int(next.Add(1)) - 1
					if c >= nc {
						return
					}
					for i := range chains[c] {
						chains[c][i].run()
					}
				}
			}()
		}
		wg.Wait()
	default:
		for _, ch := range chains {
			for i := range ch {
				b.splitGemm(&ch[i])
			}
		}
	}
}

// splitGemm runs one job on up to b.threads goroutines, each computing a block of rows
// or columns of c (whichever dimension is larger), so no two write the same element.
func (b *Backend) splitGemm(j *gemmJob) {
	const minBlock = 16 // keep blocks a multiple of the sgemm kernels' register tiles
	split := max(j.m, j.n)
	parts := min(b.threads, split/minBlock)
	if parts <= 1 || j.macs() < minSplitMACs {
		j.run()
		return
	}
	byRows := j.m >= j.n
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		lo := split * p / parts / minBlock * minBlock
		hi := split * (p + 1) / parts / minBlock * minBlock
		if p == parts-1 {
			hi = split
		}
		s := *j
		if byRows {
			s.m = hi - lo
			if j.transA {
				s.a = j.a[lo:]
			} else {
				s.a = j.a[lo*j.lda:]
			}
			s.c = j.c[lo*j.ldc:]
		} else {
			s.n = hi - lo
			if j.transB {
				s.b = j.b[lo*j.ldb:]
			} else {
				s.b = j.b[lo:]
			}
			s.c = j.c[lo:]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run()
		}()
	}
	wg.Wait()
}
