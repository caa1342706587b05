package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Kernel parameters travel as one packed buffer laid out as the C ABI lays out the
// kernel's parameter list: each value at the next multiple of its alignment. Building
// it in Go keeps Go pointers out of C (the buffer holds device addresses and numbers
// only) and needs no per-kernel C code.

// maxDims is the largest rank a kernel's index arithmetic handles, after dimensions of
// size 1 are dropped and contiguous ones merged (dims.h's Dims).
const maxDims = 8

// kargs is a kernel's packed parameter buffer.
type kargs struct{ buf []byte }

func (a *kargs) align(n int) {
	for len(a.buf)%n != 0 {
		a.buf = append(a.buf, 0)
	}
}

// ptr appends a device pointer (a T* parameter).
func (a *kargs) ptr(p devptr) *kargs {
	a.align(8)
	a.buf = binary.LittleEndian.AppendUint64(a.buf, uint64(p))
	return a
}

// i32 appends an int parameter.
func (a *kargs) i32(v int) *kargs {
	a.align(4)
	a.buf = binary.LittleEndian.AppendUint32(a.buf, uint32(int32(v)))
	return a
}

// i64 appends a long long parameter.
func (a *kargs) i64(v int64) *kargs {
	a.align(8)
	a.buf = binary.LittleEndian.AppendUint64(a.buf, uint64(v))
	return a
}

// f32 appends a float parameter.
func (a *kargs) f32(v float32) *kargs {
	a.align(4)
	a.buf = binary.LittleEndian.AppendUint32(a.buf, math.Float32bits(v))
	return a
}

// f64 appends a double parameter.
func (a *kargs) f64(v float64) *kargs {
	a.align(8)
	a.buf = binary.LittleEndian.AppendUint64(a.buf, math.Float64bits(v))
	return a
}

// dims appends a Dims parameter (struct { long long d[maxDims]; }), zero-filled past
// len(v).
func (a *kargs) dims(v []int64) *kargs {
	if len(v) > maxDims {
		panic(fmt.Sprintf("cuda: %d dimensions, kernels take at most %d", len(v), maxDims))
	}
	a.align(8)
	for i := 0; i < maxDims; i++ {
		var x int64
		if i < len(v) {
			x = v[i]
		}
		a.buf = binary.LittleEndian.AppendUint64(a.buf, uint64(x))
	}
	return a
}

// ptrs appends a struct of n device pointers (a Ptrs parameter), zero-filled past
// len(ps).
func (a *kargs) ptrs(ps []devptr, n int) *kargs {
	if len(ps) > n {
		panic(fmt.Sprintf("cuda: %d pointers, the kernel takes %d", len(ps), n))
	}
	a.align(8)
	for i := 0; i < n; i++ {
		var p devptr
		if i < len(ps) {
			p = ps[i]
		}
		a.buf = binary.LittleEndian.AppendUint64(a.buf, uint64(p))
	}
	return a
}

// blockSize is the threads per block of the one-dimensional kernels.
const blockSize = 256

// gridFor is the number of blocks for n independent elements: one per element up to a
// few waves of blocks per multiprocessor, beyond which the kernels' grid-stride loops
// take over (fewer, longer-lived blocks cost less to schedule).
func gridFor(n int64, multiprocessors int) uint32 {
	if n <= 0 {
		return 0
	}
	blocks := (n + blockSize - 1) / blockSize
	limit := int64(max(multiprocessors, 1) * 32)
	return uint32(min(blocks, limit))
}

// launch1D runs kernel name of family over n elements (nothing when n is 0).
func (b *Backend) launch1D(f *family, name string, n int64, a *kargs) error {
	if n <= 0 {
		return nil
	}
	return b.launch(f, name, [3]uint32{gridFor(n, b.dev.Multiprocessors), 1, 1}, [3]uint32{blockSize, 1, 1}, a)
}

// launch runs kernel name of family with the given grid and blocks (owner only).
func (b *Backend) launch(f *family, name string, grid, block [3]uint32, a *kargs) error {
	fn, err := b.function(f, name)
	if err != nil {
		return err
	}
	if err := cuLaunchKernel(fn, grid, block, 0, b.stream, a.buf); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if b.opts.SyncEveryLaunch {
		if err := cuStreamSynchronize(b.stream); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}
