package trainer

import (
	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/tensor"
)

// RotationFromAxisAngle turns axis-angle vectors (N, 3), radians, into homogeneous
// rotation matrices (N, 4, 4) by Rodrigues' formula, differentiably. The axis is
// v / (|v| + 1e-7), as in Monodepth2, so a zero vector gives the identity.
func RotationFromAxisAngle(t *nn.Tape, v *nn.Var) *nn.Var {
	if v == nil {
		return nil // an earlier op failed: the tape holds its error
	}
	n := v.Shape()[0]
	angle := t.Unary(tensor.Sqrt, t.Sum(t.Unary(tensor.Square, v), 1)) // (N, 1)
	axis := t.Div(v, t.Affine(angle, 1, 1e-7))
	ca, sa := t.Unary(tensor.Cos, angle), t.Unary(tensor.Sin, angle)
	c := t.Affine(ca, -1, 1) // 1 - cos
	x, y, z := t.Slice(axis, 1, 0, 1), t.Slice(axis, 1, 1, 2), t.Slice(axis, 1, 2, 3)
	xs, ys, zs := t.Mul(x, sa), t.Mul(y, sa), t.Mul(z, sa)
	xC, yC, zC := t.Mul(x, c), t.Mul(y, c), t.Mul(z, c)
	xyC, yzC, zxC := t.Mul(x, yC), t.Mul(y, zC), t.Mul(z, xC)
	zero, one := t.Full(0, n, 1), t.Full(1, n, 1)
	m := t.Concat(1,
		t.Add(t.Mul(x, xC), ca), t.Sub(xyC, zs), t.Add(zxC, ys), zero,
		t.Add(xyC, zs), t.Add(t.Mul(y, yC), ca), t.Sub(yzC, xs), zero,
		t.Sub(zxC, ys), t.Add(yzC, xs), t.Add(t.Mul(z, zC), ca), zero,
		zero, zero, zero, one)
	return t.Reshape(m, n, 4, 4)
}

// TranslationMatrix turns translations (N, 3) into homogeneous matrices (N, 4, 4).
func TranslationMatrix(t *nn.Tape, tr *nn.Var) *nn.Var {
	if tr == nil {
		return nil
	}
	n := tr.Shape()[0]
	zero, one := t.Full(0, n, 1), t.Full(1, n, 1)
	m := t.Concat(1,
		one, zero, zero, t.Slice(tr, 1, 0, 1),
		zero, one, zero, t.Slice(tr, 1, 1, 2),
		zero, zero, one, t.Slice(tr, 1, 2, 3),
		zero, zero, zero, one)
	return t.Reshape(m, n, 4, 4)
}

// TransformFromParams is the target→source transform predicted by the pose network:
// T·R from axis-angle and translation, or, with invert (a source before the target,
// whose pose was predicted the other way round), Rᵀ·T(−t).
func TransformFromParams(t *nn.Tape, axisAngle, translation *nn.Var, invert bool) *nn.Var {
	r := RotationFromAxisAngle(t, axisAngle)
	if invert {
		return t.MatMul(r, TranslationMatrix(t, t.Affine(translation, -1, 0)), true, false)
	}
	return t.MatMul(TranslationMatrix(t, translation), r, false, false)
}

// stereoTransform is the fixed target→source transform of the other eye: identity
// rotation, x translation −baseline (baseline signed, see Batch.Baseline; one per
// item or one for all).
func stereoTransform(t *nn.Tape, n int, baseline []float32) *nn.Var {
	m := make([]float32, 16*n)
	for i := 0; i < n; i++ {
		e := m[16*i:]
		e[0], e[5], e[10], e[15] = 1, 1, 1, 1
		e[3] = -baseline[min(i, len(baseline)-1)]
	}
	return t.FromHost(m, n, 4, 4)
}

// camera holds what warping needs of the intrinsics: K (N, 4, 4) and the rays
// K⁻¹·(u, v, 1) of every target pixel (N, 3, H·W).
type camera struct {
	k    *nn.Var
	rays *nn.Var
	h, w int
}

func newCamera(t *nn.Tape, k []float32, n, h, w int) *camera {
	// K⁻¹ of a pinhole matrix [fx s cx; 0 fy cy; 0 0 1] in closed form, in float64.
	rays := make([]float32, n*3*h*w)
	for i := 0; i < n; i++ {
		e := k[16*i:]
		fx, s, cx := float64(e[0]), float64(e[1]), float64(e[2])
		fy, cy := float64(e[5]), float64(e[6])
		r := rays[i*3*h*w:]
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				ry := (float64(y) - cy) / fy
				rx := (float64(x) - cx - s*ry) / fx
				p := y*w + x
				r[p], r[h*w+p], r[2*h*w+p] = float32(rx), float32(ry), 1
			}
		}
	}
	return &camera{k: t.FromHost(k, n, 4, 4), rays: t.FromHost(rays, n, 3, h*w), h: h, w: w}
}

// warp samples src at the projection of every target pixel, given the target's
// depth (N, 1, H, W) and the target→source transform (N, 4, 4).
func (c *camera) warp(t *nn.Tape, src, depth, T *nn.Var) *nn.Var {
	if depth == nil {
		return nil
	}
	n := depth.Shape()[0]
	cam := t.Mul(t.Reshape(depth, n, 1, c.h*c.w), c.rays)                              // (N, 3, HW)
	cam = t.Concat(1, cam, t.Full(1, n, 1, c.h*c.w))                                   // homogeneous
	p := t.MatMul(t.Slice(t.MatMul(c.k, T, false, false), 1, 0, 3), cam, false, false) // (N, 3, HW)
	uv := t.Div(t.Slice(p, 1, 0, 2), t.Affine(t.Slice(p, 1, 2, 3), 1, 1e-7))
	return t.GridSample(src, t.Reshape(uv, n, 2, c.h, c.w))
}
