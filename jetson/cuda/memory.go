package cuda

import (
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/edgedepth/edgedepth/tensor"
)

// Device memory. cuMemAlloc and cuMemFree are slow (they may synchronise the whole
// device) and a training step allocates the same sizes every time, so freed blocks go
// to a pool, by size class, and are handed out again. All pool state belongs to the
// owner goroutine; the only thing other goroutines do is append to pending, which the
// owner drains before it allocates. Reuse is safe without synchronising with the GPU:
// every kernel runs on the one stream, so a kernel that reads a block's old contents
// was queued before, and runs before, any kernel that writes the block's new ones.

// buffer is a tensor's device memory.
type buffer struct {
	b     *Backend
	ptr   devptr // 0 for an empty tensor, and after Free
	class int64  // bytes of the block (its size class)
	elems int
	freed atomic.Bool
	// cleanup frees the block if the tensor is dropped without Free: the safety net.
	cleanup runtime.Cleanup
}

// Elems implements tensor.Buffer.
func (bf *buffer) Elems() int { return bf.elems }

// block is a device allocation as the pool sees it.
type block struct {
	ptr   devptr
	class int64
}

// pool is the device memory of one backend. Owned by the owner goroutine, except
// pending (under pendingMu) and the counters (atomic).
type pool struct {
	free      map[int64][]devptr // by size class
	cached    int64              // bytes in free
	maxCached int64              // beyond this, freed blocks are returned to the driver
	blocks    map[devptr]int64   // every block from cuMemAlloc not yet given back, by address

	pendingMu sync.Mutex
	pending   []block // freed by other goroutines, not yet back in free

	live       atomic.Int64 // buffers handed out and not yet freed (the leak counter)
	deviceUsed atomic.Int64 // bytes held from cuMemAlloc, pooled ones included
}

func newPool(maxCached int64) *pool {
	return &pool{free: map[int64][]devptr{}, blocks: map[devptr]int64{}, maxCached: maxCached}
}

// minClass is the smallest block: 512 bytes, the alignment the kernels' vector loads
// and cuBLAS prefer anyway.
const minClass = 512

// sizeClass rounds a request up to its block size: a multiple of a quarter of the
// power of two below it, so at most a quarter of a block is wasted while few distinct
// sizes circulate.
func sizeClass(bytes int64) int64 {
	if bytes <= minClass {
		return minClass
	}
	k := bits.Len64(uint64(bytes-1)) - 1 // 2^k < bytes <= 2^(k+1)
	step := int64(1) << (k - 2)
	return (bytes + step - 1) / step * step
}

// get returns a block of at least bytes (owner only).
func (p *pool) get(bytes int64) (block, error) {
	p.drain()
	c := sizeClass(bytes)
	if l := p.free[c]; len(l) > 0 {
		ptr := l[len(l)-1]
		p.free[c] = l[:len(l)-1]
		p.cached -= c
		return block{ptr, c}, nil
	}
	ptr, err := cuMemAlloc(c)
	if errors.Is(err, ErrOutOfMemory) && p.cached > 0 {
		// The pool holds memory of other sizes: give it back and try once more.
		if ferr := p.trim(0); ferr != nil {
			return block{}, ferr
		}
		ptr, err = cuMemAlloc(c)
	}
	if err != nil {
		return block{}, fmt.Errorf("allocate %d bytes: %w", c, err)
	}
	p.blocks[ptr] = c
	p.deviceUsed.Add(c)
	return block{ptr, c}, nil
}

// put takes a block back (owner only).
func (p *pool) put(bl block) error {
	p.free[bl.class] = append(p.free[bl.class], bl.ptr)
	p.cached += bl.class
	if p.cached > p.maxCached {
		return p.trim(p.maxCached / 2)
	}
	return nil
}

// release queues a block freed on another goroutine (Free, the cleanup).
func (p *pool) release(bl block) {
	p.pendingMu.Lock()
	p.pending = append(p.pending, bl)
	p.pendingMu.Unlock()
}

// drain moves pending blocks into the pool (owner only).
func (p *pool) drain() {
	p.pendingMu.Lock()
	pend := p.pending
	p.pending = nil
	p.pendingMu.Unlock()
	for _, bl := range pend {
		p.free[bl.class] = append(p.free[bl.class], bl.ptr)
		p.cached += bl.class
	}
	if p.cached > p.maxCached {
		_ = p.trim(p.maxCached / 2) // an error here resurfaces at the next allocation
	}
}

// trim returns cached blocks to the driver until at most keep bytes stay cached.
func (p *pool) trim(keep int64) error {
	for c, l := range p.free {
		for len(l) > 0 && p.cached > keep {
			ptr := l[len(l)-1]
			if err := cuMemFree(ptr); err != nil {
				p.free[c] = l
				return err
			}
			l = l[:len(l)-1]
			p.cached -= c
			delete(p.blocks, ptr)
			p.deviceUsed.Add(-c)
		}
		p.free[c] = l
	}
	return nil
}

// releaseAll gives every block back to the driver, live ones included (Close).
func (p *pool) releaseAll() error {
	var first error
	for ptr, c := range p.blocks {
		if err := cuMemFree(ptr); err != nil && first == nil {
			first = err
		}
		p.deviceUsed.Add(-c)
	}
	p.blocks = map[devptr]int64{}
	p.free = map[int64][]devptr{}
	p.cached = 0
	p.pendingMu.Lock()
	p.pending = nil
	p.pendingMu.Unlock()
	return first
}

// newTensor allocates an uninitialised tensor (owner only).
func (b *Backend) newTensor(dtype tensor.DType, shape tensor.Shape) (*tensor.Tensor, error) {
	n := shape.Len()
	bf := &buffer{b: b, elems: n}
	if n > 0 {
		bl, err := b.pool.get(4 * int64(n))
		if err != nil {
			return nil, err
		}
		bf.ptr, bf.class = bl.ptr, bl.class
		b.pool.live.Add(1)
		// The cleanup must not hold bf (or it would never run): it gets the block.
		bf.cleanup = runtime.AddCleanup(bf, b.dropped, bl)
	}
	return &tensor.Tensor{Shape: shape.Clone(), DType: dtype, Buffer: bf}, nil
}

// dropped is the safety net: a buffer became garbage without Free.
func (b *Backend) dropped(bl block) {
	if b.closed.Load() {
		return
	}
	b.pool.live.Add(-1)
	b.pool.release(bl)
}

// free releases bf's block (any goroutine). Idempotent.
func (b *Backend) free(bf *buffer) {
	if bf.ptr == 0 || bf.freed.Swap(true) {
		return
	}
	bf.cleanup.Stop()
	if b.closed.Load() {
		return // Close gave every block back
	}
	b.pool.live.Add(-1)
	b.pool.release(block{bf.ptr, bf.class})
}

// discard frees tensors made inside an op that failed (owner or not).
func (b *Backend) discard(ts ...*tensor.Tensor) {
	for _, t := range ts {
		if t != nil {
			b.Free(t)
		}
	}
}

// Live is the number of device buffers handed out as tensors and not yet freed
// (explicitly or by the garbage collector's safety net). Tests check that it returns
// to its starting value.
func (b *Backend) Live() int64 { return b.pool.live.Load() }

// DeviceBytes is the device memory the backend holds from the driver, blocks cached
// for reuse included.
func (b *Backend) DeviceBytes() int64 { return b.pool.deviceUsed.Load() }
