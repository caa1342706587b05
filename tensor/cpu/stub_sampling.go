package cpu

// Placeholders until the real kernels land; this file is deleted then.

import "github.com/edgedepth/edgedepth/tensor"

func (b *Backend) GridSample(src, coords *tensor.Tensor) (*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
func (b *Backend) GridSampleBackward(src, coords, dy *tensor.Tensor, needSrc, needCoords bool) (dsrc, dcoords *tensor.Tensor, err error) {
	return nil, nil, tensor.ErrNotImplemented
}
func (b *Backend) PhotometricMin(target *tensor.Tensor, candidates []*tensor.Tensor, offset *tensor.Tensor) (minErr, argmin *tensor.Tensor, err error) {
	return nil, nil, tensor.ErrNotImplemented
}
func (b *Backend) PhotometricMinBackward(target *tensor.Tensor, candidates []*tensor.Tensor, argmin, dMin *tensor.Tensor, need []bool) ([]*tensor.Tensor, error) {
	return nil, tensor.ErrNotImplemented
}
