package cuda

import (
	"fmt"

	"github.com/edgedepth/edgedepth/tensor"
)

// GridSample implements tensor.Backend.
func (b *Backend) GridSample(src, coords *tensor.Tensor) (*tensor.Tensor, error) {
	const op = "gridsample"
	shape, err := tensor.GridSampleShape(op, src, coords)
	if err != nil {
		return nil, err
	}
	n, c, hs, ws := src.Shape[0], src.Shape[1], src.Shape[2], src.Shape[3]
	hw := int64(shape[2] * shape[3])
	var out *tensor.Tensor
	err = b.run(func() error {
		var err error
		if out, err = b.newTensor(tensor.Float32, shape); err != nil {
			return err
		}
		if out.Len() == 0 {
			return nil
		}
		total := int64(n) * hw
		return b.launch1D(samplingFamily, "grid_sample", total, new(kargs).ptr(b.ptr(out)).ptr(b.ptr(src)).ptr(b.ptr(coords)).
			i64(total).i32(c).i32(hs).i32(ws).i64(hw))
	})
	if err != nil {
		b.discard(out)
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// GridSampleBackward implements tensor.Backend.
func (b *Backend) GridSampleBackward(src, coords, dy *tensor.Tensor, needSrc, needCoords bool) (dsrc, dcoords *tensor.Tensor, err error) {
	const op = "gridsample backward"
	shape, err := tensor.GridSampleBackwardShape(src, coords, dy)
	if err != nil {
		return nil, nil, err
	}
	n, c, hs, ws := src.Shape[0], src.Shape[1], src.Shape[2], src.Shape[3]
	hw := int64(shape[2] * shape[3])
	total := int64(n) * hw
	err = b.run(func() error {
		var err error
		if needSrc {
			if dsrc, err = b.newTensor(tensor.Float32, src.Shape); err != nil {
				return err
			}
			if err := cuMemsetD32(b.ptr(dsrc), 0, dsrc.Len(), b.stream); err != nil {
				return err
			}
			if c > 0 {
				err := b.launch1D(samplingFamily, "grid_sample_dsrc", total, new(kargs).ptr(b.ptr(dsrc)).ptr(b.ptr(coords)).ptr(b.ptr(dy)).
					i64(total).i32(c).i32(hs).i32(ws).i64(hw))
				if err != nil {
					return err
				}
			}
		}
		if needCoords {
			if dcoords, err = b.newTensor(tensor.Float32, coords.Shape); err != nil {
				return err
			}
			return b.launch1D(samplingFamily, "grid_sample_dcoords", total, new(kargs).ptr(b.ptr(dcoords)).ptr(b.ptr(src)).ptr(b.ptr(coords)).ptr(b.ptr(dy)).
				i64(total).i32(c).i32(hs).i32(ws).i64(hw))
		}
		return nil
	})
	if err != nil {
		b.discard(dsrc, dcoords)
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	return dsrc, dcoords, nil
}

// maxCandidates is how many candidates the photometric kernels take (MAXCAND).
const maxCandidates = 16

// checkPhotometric is tensor.PhotometricCheck plus this backend's limit on the number of
// candidates, checked where it always was: after the target's dtype, before the rest.
func checkPhotometric(op string, target *tensor.Tensor, candidates []*tensor.Tensor) error {
	if err := tensor.CheckFloat(op, target); err != nil {
		return err
	}
	if len(candidates) > maxCandidates {
		return fmt.Errorf("%s: %d candidates, the CUDA kernels take at most %d", op, len(candidates), maxCandidates)
	}
	return tensor.PhotometricCheck(op, target, candidates)
}

// candidatePtrs are the candidates' device addresses.
func (b *Backend) candidatePtrs(candidates []*tensor.Tensor) []devptr {
	ps := make([]devptr, len(candidates))
	for i, x := range candidates {
		ps[i] = b.ptr(x)
	}
	return ps
}

// PhotometricMin implements tensor.Backend.
func (b *Backend) PhotometricMin(target *tensor.Tensor, candidates []*tensor.Tensor, offset *tensor.Tensor) (minErr, argmin *tensor.Tensor, err error) {
	const op = "photometricmin"
	if err := checkPhotometric(op, target, candidates); err != nil {
		return nil, nil, err
	}
	if err := tensor.PhotometricMinCheck(target, candidates, offset); err != nil {
		return nil, nil, err
	}
	n, c, h, w := target.Shape[0], target.Shape[1], target.Shape[2], target.Shape[3]
	nk := len(candidates)
	var offPtr devptr
	if offset != nil {
		offPtr = b.ptr(offset)
	}
	shape := tensor.Shape{n, 1, h, w}
	err = b.run(func() error {
		var err error
		if minErr, err = b.newTensor(tensor.Float32, shape); err != nil {
			return err
		}
		if argmin, err = b.newTensor(tensor.Int32, shape); err != nil {
			return err
		}
		total := int64(shape.Len())
		return b.launch1D(samplingFamily, "photometric_min", total, new(kargs).ptr(b.ptr(minErr)).ptr(b.ptr(argmin)).ptr(b.ptr(target)).
			ptrs(b.candidatePtrs(candidates), maxCandidates).ptr(offPtr).i64(total).i32(nk).i32(c).i32(h).i32(w))
	})
	if err != nil {
		b.discard(minErr, argmin)
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	return minErr, argmin, nil
}

// PhotometricMinBackward implements tensor.Backend. As in the CPU backend, the target
// and the offsets get no gradient. An argmin entry that is not a candidate index (one
// not made by PhotometricMin) routes no gradient: checking would cost a
// synchronisation.
func (b *Backend) PhotometricMinBackward(target *tensor.Tensor, candidates []*tensor.Tensor, argmin, dMin *tensor.Tensor, need []bool) ([]*tensor.Tensor, error) {
	const op = "photometricmin backward"
	if err := checkPhotometric(op, target, candidates); err != nil {
		return nil, err
	}
	if err := tensor.PhotometricMinBackwardCheck(target, candidates, argmin, dMin, need); err != nil {
		return nil, err
	}
	n, c, h, w := target.Shape[0], target.Shape[1], target.Shape[2], target.Shape[3]
	nk := len(candidates)
	mask := 0
	for k, nd := range need {
		if nd {
			mask |= 1 << k
		}
	}
	grads := make([]*tensor.Tensor, nk)
	err := b.run(func() error {
		for k := range grads {
			if need[k] {
				var err error
				if grads[k], err = b.newTensor(tensor.Float32, target.Shape); err != nil {
					return err
				}
			}
		}
		if mask == 0 || n == 0 {
			return nil
		}
		total := int64(target.Len())
		coef, err := b.pool.get(4 * 3 * total)
		if err != nil {
			return err
		}
		defer b.pool.put(coef)
		err = b.launch1D(samplingFamily, "photometric_coef", total, new(kargs).ptr(coef.ptr).ptr(b.ptr(target)).
			ptrs(b.candidatePtrs(candidates), maxCandidates).ptr(b.ptr(argmin)).ptr(b.ptr(dMin)).i32(mask).i64(total).i32(c).i32(h).i32(w))
		if err != nil {
			return err
		}
		wl := float32(0.15) / float32(c)
		for k, g := range grads {
			if g == nil {
				continue
			}
			err := b.launch1D(samplingFamily, "photometric_grad", total, new(kargs).ptr(b.ptr(g)).ptr(b.ptr(candidates[k])).ptr(b.ptr(target)).
				ptr(coef.ptr).ptr(b.ptr(argmin)).ptr(b.ptr(dMin)).i64(total).i32(k).i32(c).i32(h).i32(w).f32(wl))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.discard(grads...)
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return grads, nil
}
