package cpu

// Placeholders until the real kernels land; this file is deleted then.

import "github.com/edgedepth/edgedepth/tensor"

func (b *Backend) MatMul(a, c *tensor.Tensor, transA, transB bool) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) MatMulBackward(a, c, dc *tensor.Tensor, transA, transB, needA, needB bool) (da, db *tensor.Tensor, err error) {
	return nil, nil, tensor.ErrNotImplemented
}
func (b *Backend) Conv2D(x, w, bias *tensor.Tensor, p tensor.Conv2DParams) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) Conv2DBackward(x, w, dy *tensor.Tensor, p tensor.Conv2DParams, needX, needBias bool) (dx, dw, dbias *tensor.Tensor, err error) {
	return nil, nil, nil, tensor.ErrNotImplemented
}
