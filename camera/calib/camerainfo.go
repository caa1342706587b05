package calib

import (
	"fmt"
	"math"
)

// CameraInfo is one camera's calibration as ROS stores it (sensor_msgs/CameraInfo, in
// the YAML that camera_calibration_parsers writes and camera_info_manager loads).
type CameraInfo struct {
	// Name is camera_name; informative only.
	Name string
	Size ImageSize
	// K is camera_matrix, row-major.
	K [9]float64
	// DistortionModel is "plumb_bob" (5 coefficients) or "rational_polynomial" (8).
	DistortionModel string
	// D is distortion_coefficients, in OpenCV's order.
	D []float64
	// R is rectification_matrix: the rotation from the camera's frame to the rectified
	// frame shared by the stereo pair (OpenCV's R1 or R2).
	R [9]float64
	// P is projection_matrix, 3x4 row-major: the rectified camera (OpenCV's P1 or P2).
	// For the right camera P[0,3] = −fx'·baseline.
	P [12]float64
}

// ParseCameraInfo reads a ROS camera_info YAML file. file names it in errors.
func ParseCameraInfo(file string, data []byte) (CameraInfo, error) {
	d, err := parseYAMLDoc(file, data)
	if err != nil {
		return CameraInfo{}, err
	}
	return cameraInfoFromDoc(d)
}

func cameraInfoFromDoc(d *doc) (CameraInfo, error) {
	var ci CameraInfo
	need := func(key string) (*node, error) {
		n := d.root.get(key)
		if n == nil {
			return nil, &ParseError{File: d.file, Key: key, Msg: "missing"}
		}
		return n, nil
	}
	if n := d.root.get("camera_name"); n != nil && !n.isMap() && !n.isSeq {
		ci.Name = n.scalar
	}
	for _, f := range []struct {
		key string
		v   *int
	}{{"image_width", &ci.Size.Width}, {"image_height", &ci.Size.Height}} {
		n, err := need(f.key)
		if err != nil {
			return CameraInfo{}, err
		}
		if *f.v, err = d.intValue(f.key, n); err != nil {
			return CameraInfo{}, err
		}
		if *f.v <= 0 {
			return CameraInfo{}, d.errorf(f.key, n, "%d must be positive", *f.v)
		}
	}
	mat := func(key string, rows, cols int, dst []float64) error {
		n, err := need(key)
		if err != nil {
			return err
		}
		m, err := d.asMatrix(key, n, false)
		if err != nil {
			return err
		}
		if m.rows != rows || m.cols != cols {
			return d.errorf(key, n, "is %dx%d, want %dx%d", m.rows, m.cols, rows, cols)
		}
		copy(dst, m.data)
		return nil
	}
	if err := mat("camera_matrix", 3, 3, ci.K[:]); err != nil {
		return CameraInfo{}, err
	}
	if err := validateCameraMatrix(ci.K); err != nil {
		return CameraInfo{}, d.errorf("camera_matrix", d.root.get("camera_matrix"), "%v", err)
	}
	if err := mat("rectification_matrix", 3, 3, ci.R[:]); err != nil {
		return CameraInfo{}, err
	}
	if err := validateRotation(ci.R); err != nil {
		return CameraInfo{}, d.errorf("rectification_matrix", d.root.get("rectification_matrix"), "%v", err)
	}
	if err := mat("projection_matrix", 3, 4, ci.P[:]); err != nil {
		return CameraInfo{}, err
	}
	pk := [9]float64{ci.P[0], ci.P[1], ci.P[2], ci.P[4], ci.P[5], ci.P[6], ci.P[8], ci.P[9], ci.P[10]}
	if err := validateCameraMatrix(pk); err != nil {
		return CameraInfo{}, d.errorf("projection_matrix", d.root.get("projection_matrix"), "left 3x3 block: %v", err)
	}

	n, err := need("distortion_model")
	if err != nil {
		return CameraInfo{}, err
	}
	ci.DistortionModel = n.scalar
	dn, err := need("distortion_coefficients")
	if err != nil {
		return CameraInfo{}, err
	}
	m, err := d.asMatrix("distortion_coefficients", dn, false)
	switch {
	case err != nil && dn.isMap() && dn.get("rows") != nil && dn.get("data") != nil && d.isEmptySeq(dn.get("data")):
		// ROS writes an uncalibrated (or already rectified) camera as rows: 1, cols: 0
		// (or 5) with no data: no distortion.
		m = matrix{}
	case err != nil:
		return CameraInfo{}, err
	case m.rows != 1 && m.cols != 1:
		return CameraInfo{}, d.errorf("distortion_coefficients", dn, "is %dx%d, want one row", m.rows, m.cols)
	}
	want := 0
	switch ci.DistortionModel {
	case "plumb_bob":
		want = 5
	case "rational_polynomial":
		want = 8
	case "equidistant", "fisheye":
		return CameraInfo{}, d.errorf("distortion_model", n, "%q (fisheye) is not supported: only plumb_bob and rational_polynomial", ci.DistortionModel)
	default:
		return CameraInfo{}, d.errorf("distortion_model", n, "%q is not supported: only plumb_bob and rational_polynomial", ci.DistortionModel)
	}
	switch len(m.data) {
	case 0:
		ci.D = make([]float64, want)
	case want:
		ci.D = m.data
	default:
		return CameraInfo{}, d.errorf("distortion_coefficients", dn, "has %d coefficients, %s has %d", len(m.data), ci.DistortionModel, want)
	}
	for _, v := range ci.D {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return CameraInfo{}, d.errorf("distortion_coefficients", dn, "%v is not finite", ci.D)
		}
	}
	return ci, nil
}

func (d *doc) isEmptySeq(n *node) bool { return n.isSeq && len(n.seq) == 0 }

// StereoFromCameraInfo recovers the stereo calibration from the camera_info of the left
// and the right camera of a pair, as ROS's stereo_image_proc interprets them.
//
// ROS stores each camera's rectifying rotation R_i (camera frame → rectified frame) and
// rectified projection P_i = K'·[I | t_i], where t_i is the offset of camera i in the
// rectified frame, in the units of the calibration (metres by ROS convention): t_left is
// usually zero and t_right = (−baseline, 0, 0), hence P_right[0,3] = −fx'·baseline.
// A point X_i in camera i's frame is at R_i·X_i − t_i in the common rectified frame, so
// X_right = R_rightᵀ·(R_left·X_left − t_left + t_right): R = R_rightᵀ·R_left and
// T = R_rightᵀ·(t_right − t_left).
func StereoFromCameraInfo(left, right CameraInfo) (Stereo, error) {
	if left.Size != right.Size {
		return Stereo{}, fmt.Errorf("calib: camera_info: left image is %v, right image is %v: a stereo pair has one size", left.Size, right.Size)
	}
	tl, err := projectionOffset(left.P)
	if err != nil {
		return Stereo{}, fmt.Errorf("calib: camera_info left: projection_matrix: %w", err)
	}
	tr, err := projectionOffset(right.P)
	if err != nil {
		return Stereo{}, fmt.Errorf("calib: camera_info right: projection_matrix: %w", err)
	}
	if tr == tl {
		return Stereo{}, fmt.Errorf("calib: camera_info right: projection_matrix %v has no baseline (P[0,3] = 0): "+
			"it is not the right camera of a calibrated stereo pair, or left and right are the same file", right.P)
	}
	rt := transpose3(right.R)
	s := Stereo{
		Size: left.Size,
		K1:   left.K,
		K2:   right.K,
		D1:   append([]float64(nil), left.D...),
		D2:   append([]float64(nil), right.D...),
		R:    mul3(rt, left.R),
		T:    mulVec3(rt, [3]float64{tr[0] - tl[0], tr[1] - tl[1], tr[2] - tl[2]}),
	}
	if err := s.Validate(); err != nil {
		return Stereo{}, fmt.Errorf("camera_info pair: %w", err)
	}
	return s, nil
}

// projectionOffset returns t with P = K'·[I | t], i.e. K'⁻¹·P[:,3]. K' is upper
// triangular with a positive diagonal (validated on parsing), so back substitution
// solves it.
func projectionOffset(p [12]float64) ([3]float64, error) {
	fx, s, cx := p[0], p[1], p[2]
	fy, cy := p[5], p[6]
	if fx <= 0 || fy <= 0 || p[4] != 0 || p[8] != 0 || p[9] != 0 || p[10] != 1 {
		return [3]float64{}, fmt.Errorf("%v is not K'·[I | t]", p)
	}
	tz := p[11]
	ty := (p[7] - cy*tz) / fy
	tx := (p[3] - s*ty - cx*tz) / fx
	return [3]float64{tx, ty, tz}, nil
}
