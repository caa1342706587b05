package sim

import "math"

// vec3 is a point or direction in the world frame (metres): x right across the street,
// y down (gravity), z forward along the street. See doc.go for the frame conventions.
type vec3 struct{ x, y, z float64 }

func (a vec3) add(b vec3) vec3      { return vec3{a.x + b.x, a.y + b.y, a.z + b.z} }
func (a vec3) sub(b vec3) vec3      { return vec3{a.x - b.x, a.y - b.y, a.z - b.z} }
func (a vec3) scale(s float64) vec3 { return vec3{a.x * s, a.y * s, a.z * s} }
func (a vec3) dot(b vec3) float64   { return a.x*b.x + a.y*b.y + a.z*b.z }
func (a vec3) norm() float64        { return math.Sqrt(a.dot(a)) }
func (a vec3) addScaled(b vec3, s float64) vec3 {
	return vec3{a.x + b.x*s, a.y + b.y*s, a.z + b.z*s}
}

// quat is a unit quaternion (x, y, z, w), the orientation format of camera.Pose.
type quat struct{ x, y, z, w float64 }

// axisAngle returns the rotation by angle radians about the unit axis (ax, ay, az).
func axisAngle(ax, ay, az, angle float64) quat {
	s, c := math.Sincos(angle / 2)
	return quat{ax * s, ay * s, az * s, c}
}

// mul returns the composition a·b (apply b first, then a).
func (a quat) mul(b quat) quat {
	return quat{
		a.w*b.x + a.x*b.w + a.y*b.z - a.z*b.y,
		a.w*b.y - a.x*b.z + a.y*b.w + a.z*b.x,
		a.w*b.z + a.x*b.y - a.y*b.x + a.z*b.w,
		a.w*b.w - a.x*b.x - a.y*b.y - a.z*b.z,
	}
}

// canonical normalises q and picks the sign with w >= 0 so that equal rotations print
// equal quaternions (q and -q are the same rotation).
func (a quat) canonical() quat {
	n := math.Sqrt(a.x*a.x + a.y*a.y + a.z*a.z + a.w*a.w)
	if a.w < 0 {
		n = -n
	}
	return quat{a.x / n, a.y / n, a.z / n, a.w / n}
}

// mat3 is a rotation matrix, row-major: m[r][c].
type mat3 [3][3]float64

// matrix converts the unit quaternion q to a rotation matrix.
func (a quat) matrix() mat3 {
	x, y, z, w := a.x, a.y, a.z, a.w
	return mat3{
		{1 - 2*(y*y+z*z), 2 * (x*y - z*w), 2 * (x*z + y*w)},
		{2 * (x*y + z*w), 1 - 2*(x*x+z*z), 2 * (y*z - x*w)},
		{2 * (x*z - y*w), 2 * (y*z + x*w), 1 - 2*(x*x+y*y)},
	}
}

func (m *mat3) apply(v vec3) vec3 {
	return vec3{
		m[0][0]*v.x + m[0][1]*v.y + m[0][2]*v.z,
		m[1][0]*v.x + m[1][1]*v.y + m[1][2]*v.z,
		m[2][0]*v.x + m[2][1]*v.y + m[2][2]*v.z,
	}
}

// col returns column c: the world direction of camera axis c.
func (m *mat3) col(c int) vec3 { return vec3{m[0][c], m[1][c], m[2][c]} }

// transpose returns the inverse rotation (world to camera).
func (m *mat3) transpose() mat3 {
	return mat3{
		{m[0][0], m[1][0], m[2][0]},
		{m[0][1], m[1][1], m[2][1]},
		{m[0][2], m[1][2], m[2][2]},
	}
}

// yawPitchRoll builds the camera orientation from heading angles in radians: yaw about
// the world's down axis (positive turns the view towards +x, to the right), then pitch
// about the camera's x axis (positive looks up), then roll about its optical axis.
func yawPitchRoll(yaw, pitch, roll float64) quat {
	qy := axisAngle(0, 1, 0, yaw)
	// A positive rotation about +x turns +z towards -y, which is up.
	qp := axisAngle(1, 0, 0, pitch)
	qr := axisAngle(0, 0, 1, roll)
	return qy.mul(qp).mul(qr).canonical()
}

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

func smoothstep(e0, e1, x float64) float64 {
	t := clamp((x-e0)/(e1-e0), 0, 1)
	return t * t * (3 - 2*t)
}

// fmin and fmax are math.Min and math.Max without their NaN and signed-zero handling,
// which the hot paths here do not need and which keeps them from inlining cheaply.
func fmin(a, b float64) float64 {
	if a < b {
		return a
	}
	return b
}

func fmax(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}
