package calib3d

/*
#include <stdlib.h>
#include "calib3d.h"
*/
import "C"

import (
	"fmt"
	"image"
	"runtime"
	"sync"
	"unsafe"

	"gocv.io/x/gocv"
)

// RectifyFlags are the flags of cv::stereoRectify.
type RectifyFlags int

// ZeroDisparity (cv::CALIB_ZERO_DISPARITY) gives both rectified cameras the same
// principal point, so that a point at infinity has zero disparity and disparity is
// simply x_left − x_right. Depth estimation wants it.
const ZeroDisparity RectifyFlags = 1 << 10

// StereoRectification is what cv::stereoRectify computes, besides the matrices it writes
// to the caller's Mats: the rectangles, in each rectified image, where every pixel comes
// from inside the raw image.
type StereoRectification struct {
	ValidROI1, ValidROI2 image.Rectangle
}

// StereoRectify computes the rotations that make a calibrated stereo pair row-aligned,
// and the projection matrices of the rectified cameras (cv::stereoRectify).
//
// k1, k2 are 3x3 camera matrices; d1, d2 their distortion coefficients (4, 5, 8, 12 or
// 14, or an empty Mat for none); r (3x3, or a 3x1 Rodrigues vector) and t (3 values) take
// a point from camera 1's frame to camera 2's: X2 = r·X1 + t. imageSize is the size the
// calibration was made at. alpha is 0 (crop to pixels valid in both images) to 1 (keep
// every raw pixel, with black corners), or -1 for OpenCV's own choice. newSize of
// (0, 0) keeps imageSize.
//
// r1, r2 (3x3), p1, p2 (3x4) and q (4x4, disparity-to-depth) are written as CV_64FC1.
// All matrices stay owned by the caller.
func StereoRectify(k1, d1, k2, d2 gocv.Mat, imageSize image.Point, r, t gocv.Mat,
	flags RectifyFlags, alpha float64, newSize image.Point,
	r1, r2, p1, p2, q *gocv.Mat) (StereoRectification, error) {
	const op = "stereo rectify"
	var in [6]C.EdcvMat
	for i, m := range []struct {
		name string
		m    *gocv.Mat
	}{{"K1", &k1}, {"D1", &d1}, {"K2", &k2}, {"D2", &d2}, {"R", &r}, {"T", &t}} {
		p, err := matPtr(op, m.name, m.m)
		if err != nil {
			return StereoRectification{}, err
		}
		in[i] = p
	}
	var out [5]C.EdcvMat
	for i, m := range []struct {
		name string
		m    *gocv.Mat
	}{{"R1", r1}, {"R2", r2}, {"P1", p1}, {"P2", p2}, {"Q", q}} {
		p, err := matPtr(op, m.name, m.m)
		if err != nil {
			return StereoRectification{}, err
		}
		out[i] = p
	}
	var roi1, roi2 C.EdcvRect
	st := C.edcv_stereo_rectify(in[0], in[1], in[2], in[3],
		C.int(imageSize.X), C.int(imageSize.Y), in[4], in[5], C.int(flags), C.double(alpha),
		C.int(newSize.X), C.int(newSize.Y), out[0], out[1], out[2], out[3], out[4], &roi1, &roi2)
	if err := statusError(op, st); err != nil {
		return StereoRectification{}, err
	}
	return StereoRectification{ValidROI1: rect(roi1), ValidROI2: rect(roi2)}, nil
}

func rect(r C.EdcvRect) image.Rectangle {
	return image.Rect(int(r.x), int(r.y), int(r.x+r.width), int(r.y+r.height))
}

// MapType is the representation of a rectification map.
type MapType int

const (
	// MapFixedPoint (CV_16SC2 + CV_16UC1): integer source coordinates plus an index into
	// a 32x32 table of interpolation weights, i.e. 1/32 pixel. Half the memory (and
	// memory traffic) of the float forms, at an accuracy far below a stereo matcher's;
	// what a live stream wants.
	MapFixedPoint MapType = MapType(gocv.MatTypeCV16SC2)
	// MapFloat (CV_32FC1 x 2): exact source coordinates, x in map1 and y in map2.
	MapFloat MapType = MapType(gocv.MatTypeCV32FC1)
	// MapFloatPacked (CV_32FC2): x,y pairs in map1; map2 is empty.
	MapFloatPacked MapType = MapType(gocv.MatTypeCV32FC2)
)

// InitUndistortRectifyMap computes, for every pixel of the size.X x size.Y rectified
// image, where to sample the raw image of a camera with matrix k and distortion d
// (cv::initUndistortRectifyMap). r is the rectifying rotation (R1 or R2 of
// StereoRectify; an empty Mat for none) and p the new camera matrix (P1 or P2; an empty
// Mat for k). map1 and map2 are written in the form mapType names.
func InitUndistortRectifyMap(k, d, r, p gocv.Mat, size image.Point, mapType MapType, map1, map2 *gocv.Mat) error {
	const op = "init undistort rectify map"
	var ptrs [6]C.EdcvMat
	for i, m := range []struct {
		name string
		m    *gocv.Mat
	}{{"K", &k}, {"D", &d}, {"R", &r}, {"P", &p}, {"map1", map1}, {"map2", map2}} {
		cp, err := matPtr(op, m.name, m.m)
		if err != nil {
			return err
		}
		ptrs[i] = cp
	}
	return statusError(op, C.edcv_init_undistort_rectify_map(ptrs[0], ptrs[1], ptrs[2], ptrs[3],
		C.int(size.X), C.int(size.Y), C.int(mapType), ptrs[4], ptrs[5]))
}

// Remap samples src where map1 and map2 point (cv::remap) into dst, which is
// re-created with the maps' size and src's type when it differs. Pixels that map outside
// src take borderValue in every channel when border is gocv.BorderConstant.
func Remap(src gocv.Mat, dst *gocv.Mat, map1, map2 gocv.Mat, interpolation gocv.InterpolationFlags,
	border gocv.BorderType, borderValue float64) error {
	const op = "remap"
	var ptrs [4]C.EdcvMat
	for i, m := range []struct {
		name string
		m    *gocv.Mat
	}{{"src", &src}, {"dst", dst}, {"map1", &map1}, {"map2", &map2}} {
		cp, err := matPtr(op, m.name, m.m)
		if err != nil {
			return err
		}
		ptrs[i] = cp
	}
	return statusError(op, C.edcv_remap(ptrs[0], ptrs[1], ptrs[2], ptrs[3],
		C.int(interpolation), C.int(border), C.double(borderValue)))
}

// RectifyMap holds one camera's precomputed rectification maps and remaps packed 8-bit
// images with them, reading and writing the caller's buffers in place: the form a
// stream wants, one object per eye, made once and used for every frame.
type RectifyMap struct {
	mu       sync.Mutex // guards h against Close racing a forgotten concurrent caller
	h        *rectifyMapHandle
	cleanup  runtime.Cleanup
	src, dst image.Point
}

// rectifyMapHandle is apart from RectifyMap so that the safety-net cleanup can free it
// without keeping the RectifyMap reachable.
type rectifyMapHandle struct {
	once sync.Once
	p    *C.EdcvRectifyMap
}

func (h *rectifyMapHandle) free() {
	h.once.Do(func() {
		C.edcv_rectify_map_free(h.p)
		h.p = nil
		live.Add(-1)
	})
}

// NewRectifyMap computes the maps that turn a raw srcSize image of the camera (k, d)
// into a dstSize rectified one, with rectifying rotation r and new camera matrix p, as
// InitUndistortRectifyMap does, and keeps them. Call Close when done.
func NewRectifyMap(k, d, r, p gocv.Mat, srcSize, dstSize image.Point, mapType MapType) (*RectifyMap, error) {
	const op = "rectify map"
	var ptrs [4]C.EdcvMat
	for i, m := range []struct {
		name string
		m    *gocv.Mat
	}{{"K", &k}, {"D", &d}, {"R", &r}, {"P", &p}} {
		cp, err := matPtr(op, m.name, m.m)
		if err != nil {
			return nil, err
		}
		ptrs[i] = cp
	}
	var cm *C.EdcvRectifyMap
	st := C.edcv_rectify_map_new(ptrs[0], ptrs[1], ptrs[2], ptrs[3], C.int(srcSize.X), C.int(srcSize.Y),
		C.int(dstSize.X), C.int(dstSize.Y), C.int(mapType), &cm)
	if err := statusError(op, st); err != nil {
		return nil, err
	}
	live.Add(1)
	m := &RectifyMap{h: &rectifyMapHandle{p: cm}, src: srcSize, dst: dstSize}
	m.cleanup = runtime.AddCleanup(m, (*rectifyMapHandle).free, m.h)
	return m, nil
}

// SourceSize is the size of the raw images the map accepts.
func (m *RectifyMap) SourceSize() image.Point { return m.src }

// Size is the size of the rectified images the map produces.
func (m *RectifyMap) Size() image.Point { return m.dst }

// RemapPacked rectifies src, a packed image of SourceSize with channels 8-bit channels
// a pixel (rows without padding), into dst, a packed image of Size with as many
// channels. Linear interpolation; pixels whose source lies outside the raw image are 0.
// Both buffers are used in place by OpenCV during the call and not kept.
func (m *RectifyMap) RemapPacked(src []byte, channels int, dst []byte) error {
	const op = "rectify map remap"
	if channels < 1 || channels > 4 {
		return &Error{Op: op, Code: CodeBadArgument, Message: fmt.Sprintf("%d channels, want 1 to 4", channels)}
	}
	// Checked here, not only in C++: a short slice would let OpenCV read or write past
	// its end, which no exception reports.
	if want := m.src.X * m.src.Y * channels; len(src) != want {
		return &Error{Op: op, Code: CodeBadArgument, Message: fmt.Sprintf(
			"source buffer has %d bytes, want %d (%dx%d, %d channels)", len(src), want, m.src.X, m.src.Y, channels)}
	}
	if want := m.dst.X * m.dst.Y * channels; len(dst) != want {
		return &Error{Op: op, Code: CodeBadArgument, Message: fmt.Sprintf(
			"destination buffer has %d bytes, want %d (%dx%d, %d channels)", len(dst), want, m.dst.X, m.dst.Y, channels)}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h == nil {
		return ErrClosed
	}
	// Passing Go memory for the duration of the call is within cgo's rules: the bytes
	// hold no Go pointers and C keeps no reference after returning.
	st := C.edcv_rectify_map_remap_packed(m.h.p,
		(*C.uchar)(unsafe.Pointer(&src[0])), C.int(m.src.X), C.int(m.src.Y), C.int(channels),
		(*C.uchar)(unsafe.Pointer(&dst[0])), C.int(m.dst.X), C.int(m.dst.Y))
	return statusError(op, st)
}

// Close frees the maps. It is safe to call more than once.
func (m *RectifyMap) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h == nil {
		return nil
	}
	m.cleanup.Stop()
	m.h.free()
	m.h = nil
	return nil
}
