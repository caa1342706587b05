package calib3d

/*
#include <stdlib.h>
#include "calib3d.h"
*/
import "C"

import (
	"fmt"
	"image"
	"math"
	"unsafe"

	"gocv.io/x/gocv"
)

// CalibFlags are the flags of cv::stereoCalibrate (cv::CALIB_*).
type CalibFlags int

// Calibration flags, with OpenCV's values.
const (
	// CalibUseIntrinsicGuess starts from the camera matrices (and distortion) given
	// in StereoCalibrateOptions instead of OpenCV's own initial estimate.
	CalibUseIntrinsicGuess CalibFlags = C.EDCV_CALIB_USE_INTRINSIC_GUESS
	// CalibFixAspectRatio keeps fx/fy of the initial camera matrices.
	CalibFixAspectRatio CalibFlags = C.EDCV_CALIB_FIX_ASPECT_RATIO
	// CalibFixPrincipalPoint keeps the initial cx, cy.
	CalibFixPrincipalPoint CalibFlags = C.EDCV_CALIB_FIX_PRINCIPAL_POINT
	// CalibZeroTangentDist fixes the tangential coefficients p1, p2 at zero.
	CalibZeroTangentDist CalibFlags = C.EDCV_CALIB_ZERO_TANGENT_DIST
	// CalibFixFocalLength keeps the initial fx, fy.
	CalibFixFocalLength CalibFlags = C.EDCV_CALIB_FIX_FOCAL_LENGTH
	// CalibFixK1 … CalibFixK6 keep one radial coefficient at its initial value (zero
	// without a guess).
	CalibFixK1 CalibFlags = C.EDCV_CALIB_FIX_K1
	CalibFixK2 CalibFlags = C.EDCV_CALIB_FIX_K2
	CalibFixK3 CalibFlags = C.EDCV_CALIB_FIX_K3
	CalibFixK4 CalibFlags = C.EDCV_CALIB_FIX_K4
	CalibFixK5 CalibFlags = C.EDCV_CALIB_FIX_K5
	CalibFixK6 CalibFlags = C.EDCV_CALIB_FIX_K6
	// CalibRationalModel fits the 8-coefficient rational model (k4, k5, k6 in the
	// denominator) instead of the 5-coefficient one.
	CalibRationalModel CalibFlags = C.EDCV_CALIB_RATIONAL_MODEL
	// CalibThinPrismModel adds s1…s4 (12 coefficients).
	CalibThinPrismModel CalibFlags = C.EDCV_CALIB_THIN_PRISM_MODEL
	// CalibTiltedModel adds the sensor tilt τx, τy (14 coefficients).
	CalibTiltedModel CalibFlags = C.EDCV_CALIB_TILTED_MODEL
	// CalibFixIntrinsic estimates only R, T, E and F, keeping the given intrinsics.
	CalibFixIntrinsic CalibFlags = C.EDCV_CALIB_FIX_INTRINSIC
	// CalibSameFocalLength forces fx, fy of both cameras to be equal.
	CalibSameFocalLength CalibFlags = C.EDCV_CALIB_SAME_FOCAL_LENGTH
)

// SampleStereoCalibFlags are the flags of OpenCV's stereo_calib sample
// (samples/cpp/stereo_calib.cpp), with camera matrices from InitCameraMatrix2D as the
// guess: one focal length and aspect ratio for both cameras, no tangential distortion,
// and a rational model whose only free radial terms are k1, k2 and k6. Constraining a
// chessboard calibration this much is what keeps a dozen views of one board from
// over-fitting the distortion.
const SampleStereoCalibFlags = CalibFixAspectRatio | CalibZeroTangentDist | CalibUseIntrinsicGuess |
	CalibSameFocalLength | CalibRationalModel | CalibFixK3 | CalibFixK4 | CalibFixK5

// distortionCount is how many coefficients the model that flags select has.
func (f CalibFlags) distortionCount() int {
	switch {
	case f&CalibTiltedModel != 0:
		return 14
	case f&CalibThinPrismModel != 0:
		return 12
	case f&CalibRationalModel != 0:
		return 8
	}
	return 5
}

// TermCriteria stops the Levenberg–Marquardt optimisation of a calibration after
// MaxCount iterations or once the parameters change by less than Epsilon, whichever
// comes first; a zero field is not used. The zero value keeps OpenCV's default for
// stereoCalibrate (30 iterations, 1e-6).
type TermCriteria struct {
	MaxCount int
	Epsilon  float64
}

// SampleTermCriteria is what OpenCV's stereo_calib sample uses: more iterations than
// the default, which a rational model starting from a rough guess needs.
var SampleTermCriteria = TermCriteria{MaxCount: 100, Epsilon: 1e-5}

// StereoCalibrateOptions are the flags and the initial guess of StereoCalibrate.
type StereoCalibrateOptions struct {
	Flags CalibFlags
	// K1, K2 are the initial camera matrices (row-major), read when Flags has
	// CalibUseIntrinsicGuess or CalibFixIntrinsic (InitCameraMatrix2D gives them).
	K1, K2 [9]float64
	// D1, D2 are initial distortion coefficients (4, 5, 8, 12 or 14, the same count
	// for both), or nil for none.
	D1, D2   []float64
	Criteria TermCriteria
}

// StereoCalibration is the result of StereoCalibrate, in OpenCV's conventions.
type StereoCalibration struct {
	// RMS is the root-mean-square reprojection error over all points of both cameras,
	// in pixels.
	RMS float64
	// K1, K2 are the camera matrices, row-major.
	K1, K2 [9]float64
	// D1, D2 hold as many distortion coefficients as the model the flags select: 5,
	// or 8 with CalibRationalModel, 12 with CalibThinPrismModel, 14 with
	// CalibTiltedModel.
	D1, D2 []float64
	// R (row-major) and T take a point from camera 1's frame to camera 2's:
	// X2 = R·X1 + T, T in the units of the object points.
	R [9]float64
	T [3]float64
	// E and F are the essential and fundamental matrices (row-major): x2ᵀ·F·x1 = 0 for
	// undistorted pixel coordinates of one scene point in both images.
	E, F [9]float64
}

// FindChessboardCorners looks for a chessboard with pattern.X x pattern.Y inner
// corners (9x6 for OpenCV's sample board) in img, an 8-bit grey or BGR image, as
// OpenCV's stereo_calib sample does: cv::findChessboardCorners with adaptive
// thresholding, retried on the image upscaled 2x, then cv::cornerSubPix with an 11x11
// half-window. The corners come row by row, in the order OpenCV reports them; found is
// false, with no corners, when no complete board was seen.
//
// The refinement window needs squares larger than about 12 pixels.
func FindChessboardCorners(img gocv.Mat, pattern image.Point) (corners []gocv.Point2f, found bool, err error) {
	const op = "find chessboard corners"
	p, err := matPtr(op, "image", &img)
	if err != nil {
		return nil, false, err
	}
	if err := checkPattern(op, pattern); err != nil {
		return nil, false, err
	}
	buf := make([]float32, 2*pattern.X*pattern.Y)
	var f C.int
	st := C.edcv_find_chessboard_corners(p, C.int(pattern.X), C.int(pattern.Y),
		(*C.float)(unsafe.Pointer(&buf[0])), &f)
	if err := statusError(op, st); err != nil {
		return nil, false, err
	}
	if f == 0 {
		return nil, false, nil
	}
	return points2f(buf), true, nil
}

// FindChessboardCornersGray is FindChessboardCorners on a Go grey image, which OpenCV
// reads in place during the call: no Mat, no copy. (gocv.NewMatFromBytes would leave
// C++ holding a pointer into Go memory after the call returns, which cgo's rules
// forbid.)
func FindChessboardCornersGray(img *image.Gray, pattern image.Point) (corners []gocv.Point2f, found bool, err error) {
	const op = "find chessboard corners"
	if err := checkPattern(op, pattern); err != nil {
		return nil, false, err
	}
	if img == nil {
		return nil, false, &Error{Op: op, Code: CodeBadArgument, Message: "nil image"}
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	// Checked here and not only in C++: a short buffer would let OpenCV read past its
	// end, which no exception reports.
	if w <= 0 || h <= 0 || img.Stride < w || len(img.Pix) < (h-1)*img.Stride+w {
		return nil, false, &Error{Op: op, Code: CodeBadArgument, Message: fmt.Sprintf(
			"image %v with stride %d and %d bytes is not a valid grey image", img.Rect, img.Stride, len(img.Pix))}
	}
	buf := make([]float32, 2*pattern.X*pattern.Y)
	var f C.int
	// Go memory for the duration of the call only, holding no Go pointers: within
	// cgo's rules. PixOffset finds the first pixel of a sub-image.
	st := C.edcv_find_chessboard_corners_gray((*C.uchar)(unsafe.Pointer(&img.Pix[img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y)])),
		C.int(w), C.int(h), C.int(img.Stride), C.int(pattern.X), C.int(pattern.Y),
		(*C.float)(unsafe.Pointer(&buf[0])), &f)
	if err := statusError(op, st); err != nil {
		return nil, false, err
	}
	if f == 0 {
		return nil, false, nil
	}
	return points2f(buf), true, nil
}

func checkPattern(op string, pattern image.Point) error {
	// Also bounds the corner buffer: 10⁴ corners is far beyond any printed board.
	if pattern.X < 3 || pattern.Y < 3 || pattern.X*pattern.Y > 10000 {
		return &Error{Op: op, Code: CodeBadArgument, Message: fmt.Sprintf(
			"chessboard pattern %dx%d inner corners: each side needs at least 3, and 10000 in all at most", pattern.X, pattern.Y)}
	}
	return nil
}

func points2f(buf []float32) []gocv.Point2f {
	pts := make([]gocv.Point2f, len(buf)/2)
	for i := range pts {
		pts[i] = gocv.Point2f{X: buf[2*i], Y: buf[2*i+1]}
	}
	return pts
}

// views is a set of views flattened for C: the point counts and the coordinates.
type views struct {
	counts []C.int
	obj    []float32 // x, y, z
	img    [][]float32
}

// flattenViews checks that the object points and every set of image points describe the
// same views with the same number of points each, and flattens them. The C side trusts
// the counts to size its reads, so this is what keeps it inside the buffers.
func flattenViews(op string, objectPoints [][]gocv.Point3f, imagePoints ...[][]gocv.Point2f) (views, error) {
	bad := func(format string, args ...any) (views, error) {
		return views{}, &Error{Op: op, Code: CodeBadArgument, Message: fmt.Sprintf(format, args...)}
	}
	if len(objectPoints) == 0 {
		return bad("no views")
	}
	var v views
	v.counts = make([]C.int, len(objectPoints))
	v.img = make([][]float32, len(imagePoints))
	for k, ip := range imagePoints {
		if len(ip) != len(objectPoints) {
			return bad("%d views of object points but %d of image points (camera %d)", len(objectPoints), len(ip), k+1)
		}
	}
	for i, obj := range objectPoints {
		n := len(obj)
		if n < 4 || n > math.MaxInt32 {
			return bad("view %d has %d points, want at least 4", i, n)
		}
		v.counts[i] = C.int(n)
		for _, p := range obj {
			v.obj = append(v.obj, p.X, p.Y, p.Z)
		}
		for k, ip := range imagePoints {
			if len(ip[i]) != n {
				return bad("view %d has %d object points but %d image points (camera %d)", i, n, len(ip[i]), k+1)
			}
			for _, p := range ip[i] {
				v.img[k] = append(v.img[k], p.X, p.Y)
			}
		}
	}
	return v, nil
}

// InitCameraMatrix2D estimates a first camera matrix (row-major) from views of a planar
// target (cv::initCameraMatrix2D), as an initial guess for calibration. aspectRatio 0
// estimates fx and fy independently; otherwise fx = aspectRatio·fy.
func InitCameraMatrix2D(objectPoints [][]gocv.Point3f, imagePoints [][]gocv.Point2f, imageSize image.Point,
	aspectRatio float64) ([9]float64, error) {
	const op = "init camera matrix"
	v, err := flattenViews(op, objectPoints, imagePoints)
	if err != nil {
		return [9]float64{}, err
	}
	var k [9]C.double
	st := C.edcv_init_camera_matrix_2d((*C.float)(unsafe.Pointer(&v.obj[0])), (*C.float)(unsafe.Pointer(&v.img[0][0])),
		&v.counts[0], C.int(len(v.counts)), C.int(imageSize.X), C.int(imageSize.Y), C.double(aspectRatio), &k[0])
	if err := statusError(op, st); err != nil {
		return [9]float64{}, err
	}
	var out [9]float64
	for i := range k {
		out[i] = float64(k[i])
	}
	return out, nil
}

// StereoCalibrate estimates the intrinsics of both cameras and their relative pose from
// views of a known target seen by both (cv::stereoCalibrate): objectPoints[i] are the
// target's points in its own frame (z = 0 for a chessboard) and imagePoints1[i],
// imagePoints2[i] where camera 1 and camera 2 saw them in view i. imageSize is the size
// of every image. T comes out in the units of objectPoints.
func StereoCalibrate(objectPoints [][]gocv.Point3f, imagePoints1, imagePoints2 [][]gocv.Point2f,
	imageSize image.Point, opts StereoCalibrateOptions) (StereoCalibration, error) {
	const op = "stereo calibrate"
	bad := func(format string, args ...any) (StereoCalibration, error) {
		return StereoCalibration{}, &Error{Op: op, Code: CodeBadArgument, Message: fmt.Sprintf(format, args...)}
	}
	v, err := flattenViews(op, objectPoints, imagePoints1, imagePoints2)
	if err != nil {
		return StereoCalibration{}, err
	}
	if opts.Flags&(CalibUseIntrinsicGuess|CalibFixIntrinsic) != 0 {
		// OpenCV would start from (or keep) an all-zero matrix and return garbage, or
		// fail with an assertion that does not say which argument is missing.
		for i, k := range [][9]float64{opts.K1, opts.K2} {
			if !(k[0] > 0 && k[4] > 0 && k[8] == 1) {
				return bad("the flags ask for an intrinsic guess but K%d %v is not a camera matrix", i+1, k)
			}
		}
	}
	if len(opts.D1) != len(opts.D2) {
		return bad("initial D1 has %d coefficients and D2 %d: give both or neither", len(opts.D1), len(opts.D2))
	}
	switch len(opts.D1) {
	case 0, 4, 5, 8, 12, 14:
	default:
		return bad("initial distortion has %d coefficients, want 0, 4, 5, 8, 12 or 14", len(opts.D1))
	}
	var c C.EdcvStereoCalibration
	for i := range 9 {
		c.k1[i] = C.double(opts.K1[i])
		c.k2[i] = C.double(opts.K2[i])
	}
	for i := range opts.D1 {
		c.d1[i] = C.double(opts.D1[i])
		c.d2[i] = C.double(opts.D2[i])
	}
	c.d_len = C.int(len(opts.D1))
	st := C.edcv_stereo_calibrate((*C.float)(unsafe.Pointer(&v.obj[0])),
		(*C.float)(unsafe.Pointer(&v.img[0][0])), (*C.float)(unsafe.Pointer(&v.img[1][0])),
		&v.counts[0], C.int(len(v.counts)), C.int(imageSize.X), C.int(imageSize.Y), C.int(opts.Flags),
		C.int(opts.Criteria.MaxCount), C.double(opts.Criteria.Epsilon), &c)
	if err := statusError(op, st); err != nil {
		return StereoCalibration{}, err
	}
	nd := int(c.d_len)
	if nd != opts.Flags.distortionCount() {
		return StereoCalibration{}, &Error{Op: op, Code: CodeUnknown, Message: fmt.Sprintf(
			"%d distortion coefficients returned, want %d", nd, opts.Flags.distortionCount())}
	}
	out := StereoCalibration{RMS: float64(c.rms), D1: make([]float64, nd), D2: make([]float64, nd)}
	for i := range 9 {
		out.K1[i], out.K2[i] = float64(c.k1[i]), float64(c.k2[i])
		out.R[i], out.E[i], out.F[i] = float64(c.r[i]), float64(c.e[i]), float64(c.f[i])
	}
	for i := range nd {
		out.D1[i], out.D2[i] = float64(c.d1[i]), float64(c.d2[i])
	}
	for i := range 3 {
		out.T[i] = float64(c.t[i])
	}
	return out, nil
}

// UndistortPoints removes lens distortion from pixel coordinates seen by the camera
// (k, d) (cv::undistortPoints). With p nil the result is in normalised coordinates
// (x/z, y/z); otherwise it is projected with the camera matrix *p, usually k itself,
// which gives the pixel coordinates an ideal pinhole camera would have seen.
func UndistortPoints(pts []gocv.Point2f, k [9]float64, d []float64, p *[9]float64) ([]gocv.Point2f, error) {
	const op = "undistort points"
	switch len(d) {
	case 0, 4, 5, 8, 12, 14:
	default:
		return nil, &Error{Op: op, Code: CodeBadArgument, Message: fmt.Sprintf(
			"%d distortion coefficients, want 0, 4, 5, 8, 12 or 14", len(d))}
	}
	if len(pts) == 0 {
		return nil, nil
	}
	if len(pts) > math.MaxInt32/2 {
		return nil, &Error{Op: op, Code: CodeBadArgument, Message: fmt.Sprintf("%d points is too many", len(pts))}
	}
	buf := make([]float32, 2*len(pts))
	for i, q := range pts {
		buf[2*i], buf[2*i+1] = q.X, q.Y
	}
	var kc, pc [9]C.double
	for i := range 9 {
		kc[i] = C.double(k[i])
	}
	var pp *C.double
	if p != nil {
		for i := range 9 {
			pc[i] = C.double(p[i])
		}
		pp = &pc[0]
	}
	var dp *C.double
	dc := make([]C.double, len(d))
	for i, v := range d {
		dc[i] = C.double(v)
	}
	if len(dc) > 0 {
		dp = &dc[0]
	}
	bp := (*C.float)(unsafe.Pointer(&buf[0]))
	if err := statusError(op, C.edcv_undistort_points(bp, C.int(len(pts)), &kc[0], dp, C.int(len(d)), pp, bp)); err != nil {
		return nil, err
	}
	return points2f(buf), nil
}
