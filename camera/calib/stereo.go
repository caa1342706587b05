package calib

import (
	"errors"
	"fmt"
	"math"
)

// MaxBaselineM is the largest baseline Validate accepts, in metres. No robot stereo rig
// is wider; a calibration that claims more is almost always in millimetres or in
// chessboard squares.
const MaxBaselineM = 5.0

// ImageSize is the size of an image in pixels.
type ImageSize struct {
	Width, Height int
}

func (s ImageSize) String() string { return fmt.Sprintf("%dx%d", s.Width, s.Height) }

// Stereo is the calibration of a stereo pair in OpenCV's conventions: camera 1 is the
// left eye, camera 2 the right; camera axes x right, y down, z forward.
type Stereo struct {
	// Size is the width and height of the images the calibration was made with. Zero
	// when the file did not record it (see the package documentation).
	Size ImageSize
	// K1, K2 are the camera matrices [fx s cx; 0 fy cy; 0 0 1], row-major, in pixels.
	K1, K2 [9]float64
	// D1, D2 are the distortion coefficients of OpenCV's model, in its order
	// (k1, k2, p1, p2[, k3[, k4, k5, k6[, s1, s2, s3, s4[, τx, τy]]]]): 4, 5, 8, 12 or 14.
	D1, D2 []float64
	// R, row-major, and T take a point from the left camera's frame to the right
	// camera's: X2 = R·X1 + T. T is in metres (see ScaleTranslation); for a rig whose
	// right camera sits b metres to the right of the left one, T ≈ (−b, 0, 0).
	R [9]float64
	T [3]float64
}

// Baseline is the distance between the two optical centres, in the units of T.
func (s Stereo) Baseline() float64 { return math.Sqrt(s.T[0]*s.T[0] + s.T[1]*s.T[1] + s.T[2]*s.T[2]) }

// ScaleTranslation returns a copy of s with T multiplied by f, to bring a calibration
// made in other units to metres: f = 0.001 for millimetres, or the chessboard square
// size in metres for a calibration in squares.
func (s Stereo) ScaleTranslation(f float64) Stereo {
	s.D1 = append([]float64(nil), s.D1...)
	s.D2 = append([]float64(nil), s.D2...)
	for i := range s.T {
		s.T[i] *= f
	}
	return s
}

// Validate reports a calibration that cannot describe a stereo rig, naming the field.
func (s Stereo) Validate() error {
	if s.Size.Width <= 0 || s.Size.Height <= 0 {
		return fmt.Errorf("calib: image size %v must be positive (image_width, image_height)", s.Size)
	}
	return s.validateGeometry()
}

// validateGeometry is Validate without the image size, which some files do not record.
func (s Stereo) validateGeometry() error {
	for _, c := range []struct {
		name string
		err  error
	}{
		{"K1", validateCameraMatrix(s.K1)},
		{"K2", validateCameraMatrix(s.K2)},
		{"D1", validateDistortion(s.D1)},
		{"D2", validateDistortion(s.D2)},
		{"R", validateRotation(s.R)},
	} {
		if c.err != nil {
			return fmt.Errorf("calib: %s: %w", c.name, c.err)
		}
	}
	for _, v := range s.T {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("calib: T %v is not finite", s.T)
		}
	}
	switch b := s.Baseline(); {
	case b == 0:
		return errors.New("calib: T is zero: the two cameras cannot be at the same place")
	case b > MaxBaselineM:
		return fmt.Errorf("calib: T %v gives a baseline of %g, more than %g m: the calibration is "+
			"probably in millimetres or chessboard squares; scale it to metres (ScaleTranslation)",
			s.T, b, float64(MaxBaselineM))
	}
	return nil
}

// The validators return what is wrong without saying which field; callers name it.

func validateCameraMatrix(k [9]float64) error {
	for _, v := range k {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%v is not finite", k)
		}
	}
	if k[0] <= 0 || k[4] <= 0 {
		return fmt.Errorf("focal lengths fx=%g fy=%g must be positive", k[0], k[4])
	}
	if k[3] != 0 || k[6] != 0 || k[7] != 0 || k[8] != 1 {
		return fmt.Errorf("%v is not a camera matrix: the last two rows must be [0 fy cy; 0 0 1]", k)
	}
	return nil
}

func validateDistortion(d []float64) error {
	switch len(d) {
	case 4, 5, 8, 12, 14:
	default:
		return fmt.Errorf("has %d coefficients, want 4, 5, 8, 12 or 14", len(d))
	}
	for _, v := range d {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%v is not finite", d)
		}
	}
	return nil
}

// rotationTolerance bounds |R·Rᵀ − I| for a matrix to count as a rotation: loose enough
// for one stored as 32-bit floats (dt: f), tight enough to catch a transposed or
// hand-edited matrix.
const rotationTolerance = 1e-5

func validateRotation(r [9]float64) error {
	for _, v := range r {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%v is not finite", r)
		}
	}
	for i := range 3 {
		for j := range 3 {
			var s float64
			for k := range 3 {
				s += r[3*i+k] * r[3*j+k]
			}
			if i == j {
				s--
			}
			if math.Abs(s) > rotationTolerance {
				return fmt.Errorf("%v is not a rotation matrix (R·Rᵀ differs from I by %.2g)", r, math.Abs(s))
			}
		}
	}
	if d := det3(r); d < 0 {
		return fmt.Errorf("%v is a reflection (determinant %g), not a rotation", r, d)
	}
	return nil
}

func det3(m [9]float64) float64 {
	return m[0]*(m[4]*m[8]-m[5]*m[7]) - m[1]*(m[3]*m[8]-m[5]*m[6]) + m[2]*(m[3]*m[7]-m[4]*m[6])
}

// mul3 returns a·b for row-major 3x3 matrices.
func mul3(a, b [9]float64) [9]float64 {
	var c [9]float64
	for i := range 3 {
		for j := range 3 {
			for k := range 3 {
				c[3*i+j] += a[3*i+k] * b[3*k+j]
			}
		}
	}
	return c
}

func transpose3(a [9]float64) [9]float64 {
	return [9]float64{a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8]}
}

func mulVec3(a [9]float64, v [3]float64) [3]float64 {
	return [3]float64{
		a[0]*v[0] + a[1]*v[1] + a[2]*v[2],
		a[3]*v[0] + a[4]*v[1] + a[5]*v[2],
		a[6]*v[0] + a[7]*v[1] + a[8]*v[2],
	}
}

// rodrigues turns a rotation vector (axis times angle in radians), the form some tools
// store R in, into a rotation matrix.
func rodrigues(v [3]float64) [9]float64 {
	theta := math.Sqrt(v[0]*v[0] + v[1]*v[1] + v[2]*v[2])
	if theta < 1e-12 {
		return [9]float64{1, 0, 0, 0, 1, 0, 0, 0, 1}
	}
	x, y, z := v[0]/theta, v[1]/theta, v[2]/theta
	c, s := math.Cos(theta), math.Sin(theta)
	t := 1 - c
	return [9]float64{
		c + x*x*t, x*y*t - z*s, x*z*t + y*s,
		y*x*t + z*s, c + y*y*t, y*z*t - x*s,
		z*x*t - y*s, z*y*t + x*s, c + z*z*t,
	}
}
