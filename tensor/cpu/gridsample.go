package cpu

import (
	"math"

	"github.com/edgedepth/edgedepth/tensor"
)

// Grid sampling: bilinear interpolation of src at pixel coordinates, the warp of the
// photometric loss. Coordinates are clamped to the image (PyTorch's border padding with
// align_corners=True), so every sample is a convex combination of at most four
// in-image pixels and no bounds test is needed per corner.

// bilinearTap is where one sample reads: the top-left corner (x0, y0), the corner one
// step right and down (x1, y1; equal to x0 or y0 on the last column or row, where its
// weight is 0 anyway), the fractional offsets fx, fy, and whether each coordinate lies
// strictly inside the image, that is, whether it carries a gradient.
type bilinearTap struct {
	x0, x1, y0, y1 int
	fx, fy         float32
	gx, gy         bool
}

// tap clamps the pixel coordinate (x, y) to an image of ws x hs pixels and splits it
// into corners and weights. Like PyTorch, a coordinate on the border counts as clamped
// (no gradient). NaN is clamped to 0 so that it cannot index out of range.
func tap(x, y float32, ws, hs int) bilinearTap {
	var t bilinearTap
	x, t.gx = clampCoord(x, float32(ws-1))
	y, t.gy = clampCoord(y, float32(hs-1))
	fx0, fy0 := float32(math.Floor(float64(x))), float32(math.Floor(float64(y)))
	t.x0, t.y0 = int(fx0), int(fy0)
	t.fx, t.fy = x-fx0, y-fy0
	t.x1, t.y1 = min(t.x0+1, ws-1), min(t.y0+1, hs-1)
	return t
}

// clampCoord clamps v to [0, hi] and reports whether it was strictly inside.
func clampCoord(v, hi float32) (float32, bool) {
	switch {
	case !(v > 0): // also NaN
		return 0, false
	case v >= hi:
		return hi, false
	}
	return v, true
}

// GridSample implements tensor.Backend.
func (b *Backend) GridSample(src, coords *tensor.Tensor) (*tensor.Tensor, error) {
	shape, err := tensor.GridSampleShape("gridsample", src, coords)
	if err != nil {
		return nil, err
	}
	out := newF(shape)
	n, c, hs, ws := src.Shape[0], src.Shape[1], src.Shape[2], src.Shape[3]
	hw := shape[2] * shape[3]
	if n*c*hw == 0 {
		return out, nil
	}
	s, xy, o := f32(src), f32(coords), f32(out)
	splane := hs * ws
	// One work item per output pixel: its weights are computed once and used for
	// every channel.
	b.parallel(n*hw, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			bi, p := i/hw, i%hw
			t := tap(xy[(2*bi)*hw+p], xy[(2*bi+1)*hw+p], ws, hs)
			w00 := (1 - t.fx) * (1 - t.fy)
			w01 := t.fx * (1 - t.fy)
			w10 := (1 - t.fx) * t.fy
			w11 := t.fx * t.fy
			r0, r1 := t.y0*ws, t.y1*ws
			for ch := 0; ch < c; ch++ {
				pl := s[(bi*c+ch)*splane : (bi*c+ch+1)*splane]
				o[(bi*c+ch)*hw+p] = w00*pl[r0+t.x0] + w01*pl[r0+t.x1] + w10*pl[r1+t.x0] + w11*pl[r1+t.x1]
			}
		}
	})
	return out, nil
}

// GridSampleBackward implements tensor.Backend.
func (b *Backend) GridSampleBackward(src, coords, dy *tensor.Tensor, needSrc, needCoords bool) (dsrc, dcoords *tensor.Tensor, err error) {
	shape, err := tensor.GridSampleBackwardShape(src, coords, dy)
	if err != nil {
		return nil, nil, err
	}
	n, c, hs, ws := src.Shape[0], src.Shape[1], src.Shape[2], src.Shape[3]
	hw := shape[2] * shape[3]
	splane := hs * ws
	s, xy, g := f32(src), f32(coords), f32(dy)
	if needSrc {
		dsrc = newF(src.Shape)
		ds := f32(dsrc)
		// dsrc is a scatter: neighbouring samples hit the same source pixels, so the
		// work is split by (n, c) plane, which no two samples of different planes
		// share. The weights are recomputed per channel; that is cheaper than storing
		// them.
		if hw > 0 {
			b.parallelN(n*c, b.threads, func(lo, hi int) {
				for pi := lo; pi < hi; pi++ {
					bi := pi / c
					cx, cy := xy[(2*bi)*hw:(2*bi+1)*hw], xy[(2*bi+1)*hw:(2*bi+2)*hw]
					d := ds[pi*splane : (pi+1)*splane]
					gp := g[pi*hw : (pi+1)*hw]
					for p := range gp {
						gv := gp[p]
						if gv == 0 {
							continue
						}
						t := tap(cx[p], cy[p], ws, hs)
						r0, r1 := t.y0*ws, t.y1*ws
						d[r0+t.x0] += gv * (1 - t.fx) * (1 - t.fy)
						d[r0+t.x1] += gv * t.fx * (1 - t.fy)
						d[r1+t.x0] += gv * (1 - t.fx) * t.fy
						d[r1+t.x1] += gv * t.fx * t.fy
					}
				}
			})
		}
	}
	if needCoords {
		dcoords = newF(coords.Shape)
		dc := f32(dcoords)
		if hw > 0 {
			// dcoords is a gather over channels: one work item per output pixel.
			b.parallel(n*hw, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					bi, p := i/hw, i%hw
					t := tap(xy[(2*bi)*hw+p], xy[(2*bi+1)*hw+p], ws, hs)
					if !t.gx && !t.gy {
						continue
					}
					r0, r1 := t.y0*ws, t.y1*ws
					var gx, gy float32
					for ch := 0; ch < c; ch++ {
						gv := g[(bi*c+ch)*hw+p]
						pl := s[(bi*c+ch)*splane : (bi*c+ch+1)*splane]
						v00, v01, v10, v11 := pl[r0+t.x0], pl[r0+t.x1], pl[r1+t.x0], pl[r1+t.x1]
						// d/dx of the bilinear form: the horizontal differences, blended
						// vertically; d/dy symmetrically.
						gx += gv * ((v01-v00)*(1-t.fy) + (v11-v10)*t.fy)
						gy += gv * ((v10-v00)*(1-t.fx) + (v11-v01)*t.fx)
					}
					if t.gx {
						dc[(2*bi)*hw+p] = gx
					}
					if t.gy {
						dc[(2*bi+1)*hw+p] = gy
					}
				}
			})
		}
	}
	return dsrc, dcoords, nil
}
