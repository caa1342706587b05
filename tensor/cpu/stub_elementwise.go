package cpu

// Placeholders until the real kernels land; this file is deleted then.

import "github.com/edgedepth/edgedepth/tensor"

func (b *Backend) Unary(op tensor.UnaryOp, x *tensor.Tensor) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) UnaryBackward(op tensor.UnaryOp, x, y, dy *tensor.Tensor) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) Affine(x *tensor.Tensor, scale, shift float32) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) Binary(op tensor.BinaryOp, a, c *tensor.Tensor) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) BinaryBackward(op tensor.BinaryOp, a, c, dy *tensor.Tensor, needA, needB bool) (da, db *tensor.Tensor, err error) {
	return nil, nil, tensor.ErrNotImplemented
}
func (b *Backend) Reduce(op tensor.ReduceOp, x *tensor.Tensor, axes ...int) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) ReduceBackward(op tensor.ReduceOp, dy *tensor.Tensor, shape tensor.Shape) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) Concat(axis int, xs ...*tensor.Tensor) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) Slice(x *tensor.Tensor, axis, start, end int) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) SliceBackward(dy *tensor.Tensor, shape tensor.Shape, axis, start int) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) AdamStep(param, grad, m, v *tensor.Tensor, p tensor.AdamParams) error {
	return tensor.ErrNotImplemented
}
