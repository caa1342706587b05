package cpu

// Placeholders until the real kernels land; this file is deleted then.

import "github.com/edgedepth/edgedepth/tensor"

func (b *Backend) Pad2D(x *tensor.Tensor, p tensor.Pad2DParams) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) Pad2DBackward(dy *tensor.Tensor, p tensor.Pad2DParams) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) BatchNorm(x, gamma, beta, runMean, runVar *tensor.Tensor, p tensor.BatchNormParams) (y, mean, invStd *tensor.Tensor, err error) {
	return nil, nil, nil, tensor.ErrNotImplemented
}
func (b *Backend) BatchNormBackward(x, gamma, mean, invStd, dy *tensor.Tensor, training bool) (dx, dgamma, dbeta *tensor.Tensor, err error) {
	return nil, nil, nil, tensor.ErrNotImplemented
}
func (b *Backend) MaxPool2D(x *tensor.Tensor, p tensor.Pool2DParams) (y, argmax *tensor.Tensor, err error) {
	return nil, nil, tensor.ErrNotImplemented
}
func (b *Backend) MaxPool2DBackward(dy, argmax *tensor.Tensor, inShape tensor.Shape) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) AvgPool2D(x *tensor.Tensor, p tensor.Pool2DParams) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) AvgPool2DBackward(dy *tensor.Tensor, inShape tensor.Shape, p tensor.Pool2DParams) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) UpsampleNearest(x *tensor.Tensor, factor int) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) UpsampleNearestBackward(dy *tensor.Tensor, factor int) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) ResizeBilinear(x *tensor.Tensor, h, w int) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) ResizeBilinearBackward(dy *tensor.Tensor, inShape tensor.Shape) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
