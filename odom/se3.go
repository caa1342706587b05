// Package odom is the camera's ego-motion: SE(3) maths, trajectory integration and
// refinement, and trajectory evaluation (ATE, RPE, drift) against ground truth.
package odom

import (
	"math"

	"github.com/edgedepth/edgedepth/camera"
)

// Pose is a rigid transform: a point p maps to R·p + T. It serves both as an absolute
// pose (world_T_camera: camera coordinates to world coordinates) and as a relative motion
// (a_T_b: frame b to frame a). Values are float64, T in metres, axes as OpenCV's camera
// (x right, y down, z forward).
//
// The zero value is not a valid pose (R is all zeros); start from Identity.
type Pose struct {
	R [3][3]float64
	T [3]float64
}

// Identity returns the transform that maps every point to itself.
func Identity() Pose {
	return Pose{R: [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}
}

// Mul returns the composition a·b: the transform that applies b first, then a.
// With a = w_T_c1 and b = c1_T_c2 the result is w_T_c2.
func (a Pose) Mul(b Pose) Pose {
	var out Pose
	out.R = matMul(a.R, b.R)
	out.T = add(matVec(a.R, b.T), a.T)
	return out
}

// Inverse returns the transform that undoes a: Rᵀ, -Rᵀ·T. It assumes R is a rotation.
func (a Pose) Inverse() Pose {
	var out Pose
	out.R = transpose(a.R)
	t := matVec(out.R, a.T)
	out.T = [3]float64{-t[0], -t[1], -t[2]}
	return out
}

// Apply maps the point p: R·p + T.
func (a Pose) Apply(p [3]float64) [3]float64 {
	return add(matVec(a.R, p), a.T)
}

// FromQuat returns the pose with translation t (metres) and the rotation of quaternion
// q = (x, y, z, w). q is normalised here, so any non-zero multiple of a unit quaternion
// gives the same rotation. A zero or non-finite q gives a rotation of NaNs: callers that
// read quaternions from outside validate them first (ReadTUM does).
func FromQuat(t [3]float64, q [4]float64) Pose {
	n := math.Sqrt(q[0]*q[0] + q[1]*q[1] + q[2]*q[2] + q[3]*q[3])
	if !(n > 0) || math.IsInf(n, 0) {
		nan := math.NaN()
		return Pose{R: [3][3]float64{{nan, nan, nan}, {nan, nan, nan}, {nan, nan, nan}}, T: t}
	}
	x, y, z, w := q[0]/n, q[1]/n, q[2]/n, q[3]/n
	return Pose{R: quatToMat(x, y, z, w), T: t}
}

// quatToMat is the rotation matrix of the unit quaternion (x, y, z, w).
func quatToMat(x, y, z, w float64) [3][3]float64 {
	xx, yy, zz := x*x, y*y, z*z
	xy, xz, yz := x*y, x*z, y*z
	wx, wy, wz := w*x, w*y, w*z
	return [3][3]float64{
		{1 - 2*(yy+zz), 2 * (xy - wz), 2 * (xz + wy)},
		{2 * (xy + wz), 1 - 2*(xx+zz), 2 * (yz - wx)},
		{2 * (xz - wy), 2 * (yz + wx), 1 - 2*(xx+yy)},
	}
}

// Quat returns the rotation as a unit quaternion (x, y, z, w) with w >= 0. The extraction
// (Shepperd's method: divide by the largest of the four candidate components) is accurate
// for every angle, including 0 and pi, and tolerates a slightly non-orthonormal R.
func (a Pose) Quat() [4]float64 {
	r := a.R
	tr := r[0][0] + r[1][1] + r[2][2]
	var x, y, z, w float64
	switch {
	case tr >= r[0][0] && tr >= r[1][1] && tr >= r[2][2]:
		s := math.Sqrt(1+tr) * 2 // 4w
		w = s / 4
		x = (r[2][1] - r[1][2]) / s
		y = (r[0][2] - r[2][0]) / s
		z = (r[1][0] - r[0][1]) / s
	case r[0][0] >= r[1][1] && r[0][0] >= r[2][2]:
		s := math.Sqrt(1+r[0][0]-r[1][1]-r[2][2]) * 2 // 4x
		x = s / 4
		w = (r[2][1] - r[1][2]) / s
		y = (r[0][1] + r[1][0]) / s
		z = (r[0][2] + r[2][0]) / s
	case r[1][1] >= r[2][2]:
		s := math.Sqrt(1+r[1][1]-r[0][0]-r[2][2]) * 2 // 4y
		y = s / 4
		w = (r[0][2] - r[2][0]) / s
		x = (r[0][1] + r[1][0]) / s
		z = (r[1][2] + r[2][1]) / s
	default:
		s := math.Sqrt(1+r[2][2]-r[0][0]-r[1][1]) * 2 // 4z
		z = s / 4
		w = (r[1][0] - r[0][1]) / s
		x = (r[0][2] + r[2][0]) / s
		y = (r[1][2] + r[2][1]) / s
	}
	n := math.Sqrt(x*x + y*y + z*z + w*w)
	if w < 0 {
		n = -n
	}
	return [4]float64{x / n, y / n, z / n, w / n}
}

// FromAxisAngle returns the pose with translation t (metres) and the rotation of the
// rotation vector aa = axis·angle (radians, right-handed), by Rodrigues' formula.
func FromAxisAngle(aa, t [3]float64) Pose {
	theta := norm(aa)
	// q = (sin(θ/2)/θ · aa, cos(θ/2)); sin(θ/2)/θ by its series near 0.
	var k float64
	if theta < 1e-4 {
		k = 0.5 - theta*theta/48
	} else {
		k = math.Sin(theta/2) / theta
	}
	return Pose{R: quatToMat(k*aa[0], k*aa[1], k*aa[2], math.Cos(theta/2)), T: t}
}

// AxisAngle returns the rotation vector axis·angle (radians) of the rotation, with angle
// in [0, pi]. Near pi the axis sign is arbitrary (both describe the same rotation).
func (a Pose) AxisAngle() [3]float64 {
	q := a.Quat()
	s := math.Sqrt(q[0]*q[0] + q[1]*q[1] + q[2]*q[2])
	// angle = 2·atan2(s, w); aa = q_xyz · angle/s, the factor by its series near 0.
	var k float64
	if s < 1e-8 {
		w := q[3]
		k = 2 / w * (1 - s*s/(3*w*w))
	} else {
		k = 2 * math.Atan2(s, q[3]) / s
	}
	return [3]float64{k * q[0], k * q[1], k * q[2]}
}

// Exp is the se(3) exponential: xi = (v1, v2, v3, w1, w2, w3), translation part first
// (metres), rotation vector second (radians). The rotation is FromAxisAngle(w) and the
// translation V(w)·v, with V = I + B·[w]× + C·[w]×², B = (1-cos θ)/θ², C = (θ-sin θ)/θ³
// (series near θ = 0).
func Exp(xi [6]float64) Pose {
	v := [3]float64{xi[0], xi[1], xi[2]}
	w := [3]float64{xi[3], xi[4], xi[5]}
	p := FromAxisAngle(w, [3]float64{})
	theta := norm(w)
	t2 := theta * theta
	var b, c float64
	if theta < 0.05 {
		t4 := t2 * t2
		b = 0.5 - t2/24 + t4/720 - t4*t2/40320 + t4*t4/3628800
		c = 1.0/6 - t2/120 + t4/5040 - t4*t2/362880 + t4*t4/39916800
	} else {
		sh := math.Sin(theta / 2)
		b = 2 * sh * sh / t2
		c = (theta - math.Sin(theta)) / (t2 * theta)
	}
	wv := cross(w, v)
	wwv := cross(w, wv)
	for i := range 3 {
		p.T[i] = v[i] + b*wv[i] + c*wwv[i]
	}
	return p
}

// Log is the inverse of Exp: it returns xi = (v, w) with |w| in [0, pi] such that
// Exp(xi) == a. The translation part is V⁻¹·T with V⁻¹ = I - ½[w]× + D·[w]×²,
// D = (1 - (θ/2)·cot(θ/2))/θ² (series near θ = 0; finite at θ = pi).
func Log(a Pose) [6]float64 {
	w := a.AxisAngle()
	theta := norm(w)
	t2 := theta * theta
	var d float64
	if theta < 0.05 {
		t4 := t2 * t2
		d = 1.0/12 + t2/720 + t4/30240 + t4*t2/1209600
	} else {
		h := theta / 2
		d = (1 - h*math.Cos(h)/math.Sin(h)) / t2
	}
	wt := cross(w, a.T)
	wwt := cross(w, wt)
	var xi [6]float64
	for i := range 3 {
		xi[i] = a.T[i] - 0.5*wt[i] + d*wwt[i]
		xi[3+i] = w[i]
	}
	return xi
}

// Angle returns the rotation angle in radians, in [0, pi].
func (a Pose) Angle() float64 {
	q := a.Quat()
	s := math.Sqrt(q[0]*q[0] + q[1]*q[1] + q[2]*q[2])
	return 2 * math.Atan2(s, q[3])
}

// Distance returns the length of the translation |T| in metres.
func (a Pose) Distance() float64 {
	return norm(a.T)
}

// FromCamera converts the camera package's pose (position, quaternion x y z w).
func FromCamera(p camera.Pose) Pose {
	return FromQuat(p.Position, p.Orientation)
}

// Camera converts to the camera package's pose (position, unit quaternion x y z w, w >= 0).
func (a Pose) Camera() camera.Pose {
	return camera.Pose{Position: a.T, Orientation: a.Quat()}
}

// IsFinite reports whether every element of R and T is finite.
func (a Pose) IsFinite() bool {
	for i := range 3 {
		if !finite(a.T[i]) {
			return false
		}
		for j := range 3 {
			if !finite(a.R[i][j]) {
				return false
			}
		}
	}
	return true
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func matMul(a, b [3][3]float64) [3][3]float64 {
	var c [3][3]float64
	for i := range 3 {
		for j := range 3 {
			c[i][j] = a[i][0]*b[0][j] + a[i][1]*b[1][j] + a[i][2]*b[2][j]
		}
	}
	return c
}

func matVec(a [3][3]float64, v [3]float64) [3]float64 {
	return [3]float64{
		a[0][0]*v[0] + a[0][1]*v[1] + a[0][2]*v[2],
		a[1][0]*v[0] + a[1][1]*v[1] + a[1][2]*v[2],
		a[2][0]*v[0] + a[2][1]*v[1] + a[2][2]*v[2],
	}
}

func transpose(a [3][3]float64) [3][3]float64 {
	return [3][3]float64{
		{a[0][0], a[1][0], a[2][0]},
		{a[0][1], a[1][1], a[2][1]},
		{a[0][2], a[1][2], a[2][2]},
	}
}

func add(a, b [3]float64) [3]float64 { return [3]float64{a[0] + b[0], a[1] + b[1], a[2] + b[2]} }

func sub(a, b [3]float64) [3]float64 { return [3]float64{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }

func dot(a, b [3]float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

func norm(a [3]float64) float64 { return math.Sqrt(dot(a, a)) }

func cross(a, b [3]float64) [3]float64 {
	return [3]float64{
		a[1]*b[2] - a[2]*b[1],
		a[2]*b[0] - a[0]*b[2],
		a[0]*b[1] - a[1]*b[0],
	}
}
