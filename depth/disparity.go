package depth

import (
	"errors"
	"fmt"
	"math"
)

// ErrSizeMismatch is wrapped by errors about buffers whose sizes do not agree.
var ErrSizeMismatch = errors.New("size mismatch")

// checkMap reports a map whose buffer does not hold Width*Height values.
func checkMap(name string, m Map) error {
	if m.Width < 0 || m.Height < 0 || len(m.M) != m.Width*m.Height {
		return fmt.Errorf("depth: %s map is %dx%d with %d values: %w",
			name, m.Width, m.Height, len(m.M), ErrSizeMismatch)
	}
	return nil
}

// checkStereo reports a focal length or baseline that cannot turn disparity into depth.
func checkStereo(fx, baselineM float64) error {
	if !(fx > 0) || math.IsInf(fx, 0) {
		return fmt.Errorf("depth: focal length fx=%g px must be positive and finite", fx)
	}
	if !(baselineM > 0) || math.IsInf(baselineM, 0) {
		return fmt.Errorf("depth: baseline %g m must be positive and finite", baselineM)
	}
	return nil
}

// DisparityToDepth converts the disparity of every left-image pixel (pixels, as a
// rectified pair's x_left − x_right) to depth in metres, Z = fx·B/d, writing out.M.
// A disparity that is not a positive finite number (the matchers' marker for "no match"
// is negative) or that gives a depth beyond float32 range becomes 0, so out never holds
// NaN or Inf. disp must have out.Width*out.Height values.
func DisparityToDepth(disp []float32, fx, baselineM float64, out Map) error {
	if err := checkStereo(fx, baselineM); err != nil {
		return err
	}
	if err := checkMap("output", out); err != nil {
		return err
	}
	if len(disp) != len(out.M) {
		return fmt.Errorf("depth: %d disparities for a %dx%d map: %w",
			len(disp), out.Width, out.Height, ErrSizeMismatch)
	}
	fb := float32(fx * baselineM)
	dst := out.M[:len(disp)]
	for i, d := range disp {
		z := float32(0)
		if d > 0 { // false for NaN too
			z = fb / d
			if z > math.MaxFloat32 { // d so small that Z overflowed to +Inf
				z = 0
			}
		}
		dst[i] = z
	}
	return nil
}

// DepthToDisparity is the inverse of DisparityToDepth: d = fx·B/Z in pixels for every
// pixel of m, written to out; invalid depth (0, or anything not positive and finite)
// becomes disparity 0, which DisparityToDepth maps back to invalid.
func DepthToDisparity(m Map, fx, baselineM float64, out []float32) error {
	if err := checkStereo(fx, baselineM); err != nil {
		return err
	}
	if err := checkMap("input", m); err != nil {
		return err
	}
	if len(out) != len(m.M) {
		return fmt.Errorf("depth: %d disparities for a %dx%d map: %w",
			len(out), m.Width, m.Height, ErrSizeMismatch)
	}
	fb := float32(fx * baselineM)
	dst := out[:len(m.M)]
	for i, z := range m.M {
		d := float32(0)
		if z > 0 && z <= math.MaxFloat32 {
			d = fb / z
			if d > math.MaxFloat32 {
				d = 0
			}
		}
		dst[i] = d
	}
	return nil
}
