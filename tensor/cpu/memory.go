package cpu

import (
	"fmt"

	"github.com/edgedepth/edgedepth/tensor"
)

// Zeros implements tensor.Backend.
func (b *Backend) Zeros(dtype tensor.DType, shape ...int) (*tensor.Tensor, error) {
	if err := tensor.CheckDims("zeros", shape); err != nil {
		return nil, err
	}
	switch dtype {
	case tensor.Float32:
		return newF(shape), nil
	case tensor.Int32:
		return newI(shape), nil
	}
	return nil, fmt.Errorf("zeros: unknown dtype %v", dtype)
}

// Full implements tensor.Backend.
func (b *Backend) Full(v float32, shape ...int) (*tensor.Tensor, error) {
	if err := tensor.CheckDims("full", shape); err != nil {
		return nil, err
	}
	t := newF(shape)
	d := f32(t)
	for i := range d {
		d[i] = v
	}
	return t, nil
}

// FromHost implements tensor.Backend.
func (b *Backend) FromHost(data []float32, shape ...int) (*tensor.Tensor, error) {
	if err := tensor.FromHostCheck(data, shape); err != nil {
		return nil, err
	}
	t := newF(shape)
	copy(f32(t), data)
	return t, nil
}

// ToHost implements tensor.Backend.
func (b *Backend) ToHost(t *tensor.Tensor) ([]float32, error) {
	if err := tensor.CheckFloat("tohost", t); err != nil {
		return nil, err
	}
	return append([]float32(nil), f32(t)...), nil
}

// Copy implements tensor.Backend.
func (b *Backend) Copy(dst, src *tensor.Tensor) error {
	if err := tensor.CopyCheck("copy", dst, src); err != nil {
		return err
	}
	copy(f32(dst), f32(src))
	return nil
}

// AddTo implements tensor.Backend.
func (b *Backend) AddTo(dst, src *tensor.Tensor) error {
	if err := tensor.CopyCheck("addto", dst, src); err != nil {
		return err
	}
	d, s := f32(dst), f32(src)
	b.parallel(len(d), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d[i] += s[i]
		}
	})
	return nil
}

// Free implements tensor.Backend: the buffer goes to a pool that later allocations of
// the same size reuse. Any later use of t (or of a tensor sharing its buffer) panics
// instead of reading memory that has been handed on.
func (b *Backend) Free(t *tensor.Tensor) {
	if bf, ok := t.Buffer.(*buffer); ok {
		if bf.f != nil {
			hostPool.put(bf.f[:cap(bf.f)])
		}
		bf.f, bf.i = nil, nil
	}
}
