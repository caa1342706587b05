// Package cpu is the reference tensor.Backend: plain Go loops split across goroutines,
// with matrix products (and so convolutions) in OpenBLAS through cgo. It runs
// everywhere edgedepth runs and defines, with tensor/backendtest, what every other
// backend must compute.
package cpu

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/edgedepth/edgedepth/tensor"
)

func init() {
	tensor.Register("cpu", func() (tensor.Backend, error) { return New(0), nil })
}

// Backend is the CPU backend. Its ops may be called from several goroutines at once.
type Backend struct {
	threads int
}

// New returns a CPU backend that splits work over threads goroutines (0: GOMAXPROCS).
func New(threads int) *Backend {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	return &Backend{threads: threads}
}

var _ tensor.Backend = (*Backend)(nil)

// Name implements tensor.Backend.
func (b *Backend) Name() string { return "cpu" }

// Threads is the number of goroutines an op uses.
func (b *Backend) Threads() int { return b.threads }

// Close implements tensor.Backend; the CPU backend holds nothing.
func (b *Backend) Close() error { return nil }

// buffer is host memory: exactly one of f and i is set, by the tensor's dtype.
type buffer struct {
	f []float32
	i []int32
}

func (b *buffer) Elems() int {
	if b.f != nil {
		return len(b.f)
	}
	return len(b.i)
}

// newF allocates a zeroed Float32 tensor, reusing a freed buffer of the same length
// when there is one.
func newF(shape tensor.Shape) *tensor.Tensor {
	return &tensor.Tensor{Shape: shape.Clone(), DType: tensor.Float32, Buffer: &buffer{f: hostPool.get(shape.Len())}}
}

// hostPool keeps the buffers of freed tensors for reuse, by exact length. A training
// step allocates the same sizes every time; reusing them keeps the resident memory
// at what one step needs instead of what the garbage collector lets pile up between
// collections (about twice that), and saves the page faults of fresh memory.
var hostPool = &bufferPool{free: map[int][][]float32{}}

type bufferPool struct {
	mu    sync.Mutex
	free  map[int][][]float32
	bytes int64
}

// poolMaxBytes bounds what the pool holds; beyond it freed buffers go to the GC.
const poolMaxBytes = 8 << 30

func (p *bufferPool) get(n int) []float32 {
	p.mu.Lock()
	l := p.free[n]
	if len(l) == 0 {
		p.mu.Unlock()
		return make([]float32, n)
	}
	f := l[len(l)-1]
	p.free[n] = l[:len(l)-1]
	p.bytes -= int64(4 * n)
	p.mu.Unlock()
	clear(f)
	return f
}

func (p *bufferPool) put(f []float32) {
	if len(f) < 1024 {
		return // small buffers are cheap to allocate and would only fragment the pool
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bytes+int64(4*len(f)) > poolMaxBytes {
		return
	}
	p.free[len(f)] = append(p.free[len(f)], f)
	p.bytes += int64(4 * len(f))
}

// newI allocates a zeroed Int32 tensor.
func newI(shape tensor.Shape) *tensor.Tensor {
	return &tensor.Tensor{Shape: shape.Clone(), DType: tensor.Int32, Buffer: &buffer{i: make([]int32, shape.Len())}}
}

// f32 is the element slice of a Float32 tensor made by this backend. A tensor from
// another backend is a programmer error.
func f32(t *tensor.Tensor) []float32 {
	b, ok := t.Buffer.(*buffer)
	if !ok || b.f == nil {
		panic(fmt.Sprintf("cpu: tensor %v is not a float32 tensor of the CPU backend", t))
	}
	return b.f[:t.Len()]
}

// i32 is the element slice of an Int32 tensor made by this backend.
func i32(t *tensor.Tensor) []int32 {
	b, ok := t.Buffer.(*buffer)
	if !ok || b.i == nil {
		panic(fmt.Sprintf("cpu: tensor %v is not an int32 tensor of the CPU backend", t))
	}
	return b.i[:t.Len()]
}

// parallel calls fn on contiguous chunks of [0, n), on up to b.threads goroutines, and
// waits for them. Small n runs inline: a goroutine costs about a microsecond.
func (b *Backend) parallel(n int, fn func(lo, hi int)) {
	const minChunk = 2048
	workers := min(b.threads, (n+minChunk-1)/minChunk)
	if workers <= 1 {
		fn(0, n)
		return
	}
	b.parallelN(n, workers, fn)
}

// parallelN splits [0, n) into exactly min(workers, n) chunks, for loops whose
// iterations are each large (one image plane, one batch item).
func (b *Backend) parallelN(n, workers int, fn func(lo, hi int)) {
	workers = min(workers, n, b.threads)
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
