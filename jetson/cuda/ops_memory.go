package cuda

import (
	"fmt"
	"math"

	"github.com/edgedepth/edgedepth/tensor"
)

// Zeros implements tensor.Backend.
func (b *Backend) Zeros(dtype tensor.DType, shape ...int) (*tensor.Tensor, error) {
	if err := tensor.CheckDims("zeros", shape); err != nil {
		return nil, err
	}
	if dtype != tensor.Float32 && dtype != tensor.Int32 {
		return nil, fmt.Errorf("zeros: unknown dtype %v", dtype)
	}
	return b.filled(dtype, shape, 0)
}

// Full implements tensor.Backend.
func (b *Backend) Full(v float32, shape ...int) (*tensor.Tensor, error) {
	if err := tensor.CheckDims("full", shape); err != nil {
		return nil, err
	}
	return b.filled(tensor.Float32, shape, math.Float32bits(v))
}

// filled makes a tensor whose every 32-bit element has the given bits.
func (b *Backend) filled(dtype tensor.DType, shape tensor.Shape, bits uint32) (*tensor.Tensor, error) {
	var t *tensor.Tensor
	err := b.run(func() error {
		var err error
		if t, err = b.newTensor(dtype, shape); err != nil {
			return err
		}
		return cuMemsetD32(b.ptr(t), bits, t.Len(), b.stream)
	})
	if err != nil {
		b.discard(t)
		return nil, err
	}
	return t, nil
}

// FromHost implements tensor.Backend.
func (b *Backend) FromHost(data []float32, shape ...int) (*tensor.Tensor, error) {
	if err := tensor.FromHostCheck(data, shape); err != nil {
		return nil, err
	}
	var t *tensor.Tensor
	err := b.run(func() error {
		var err error
		if t, err = b.newTensor(tensor.Float32, shape); err != nil {
			return err
		}
		return cuMemcpyHtoD(b.ptr(t), data, b.stream)
	})
	if err != nil {
		b.discard(t)
		return nil, fmt.Errorf("fromhost: %w", err)
	}
	return t, nil
}

// ToHost implements tensor.Backend. It waits for the work that computes t.
func (b *Backend) ToHost(t *tensor.Tensor) ([]float32, error) {
	if err := tensor.CheckFloat("tohost", t); err != nil {
		return nil, err
	}
	out := make([]float32, t.Len())
	p := b.ptr(t)
	err := b.run(func() error {
		if err := cuMemcpyDtoH(out, p, b.stream); err != nil {
			return err
		}
		// A copy into pageable memory has finished on return; the synchronisation
		// reports the failure of any earlier kernel under its own name.
		return cuStreamSynchronize(b.stream)
	})
	if err != nil {
		return nil, fmt.Errorf("tohost: %w", err)
	}
	return out, nil
}

// Copy implements tensor.Backend.
func (b *Backend) Copy(dst, src *tensor.Tensor) error {
	if err := tensor.CopyCheck("copy", dst, src); err != nil {
		return err
	}
	d, s := b.ptr(dst), b.ptr(src)
	return b.run(func() error { return cuMemcpyDtoD(d, s, dst.Len(), b.stream) })
}

// AddTo implements tensor.Backend.
func (b *Backend) AddTo(dst, src *tensor.Tensor) error {
	if err := tensor.CopyCheck("addto", dst, src); err != nil {
		return err
	}
	d, s, n := b.ptr(dst), b.ptr(src), int64(dst.Len())
	return b.run(func() error {
		return b.launch1D(elementwiseFamily, "add_to", n, new(kargs).ptr(d).ptr(s).i64(n))
	})
}

// Free implements tensor.Backend: the block goes back to the pool at once (later work
// that reuses it is queued after the work that read it). Freeing again does nothing.
func (b *Backend) Free(t *tensor.Tensor) {
	if t == nil {
		return
	}
	if bf, ok := t.Buffer.(*buffer); ok && bf.b == b {
		b.free(bf)
	}
}
