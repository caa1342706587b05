// Package sgbm estimates metric depth from a rectified stereo pair with OpenCV's
// semi-global block matching: a classical, training-free estimator that runs on any
// CPU, serves as the baseline the learned networks are judged against, and gives depth
// when no network is available.
//
// Pipeline per frame: RGB → grey (BT.601 luma, written straight into OpenCV's buffers)
// → SGBM disparity (camera/calib3d) → Z = fx·B/d (depth.DisparityToDepth) → clipping to
// [MinDepthM, MaxDepthM]. Pixels the matcher rejects (no unique match, failed
// left-right check, speckles, the left border outside the search range) are 0.
package sgbm

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"gocv.io/x/gocv"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/calib3d"
	"github.com/edgedepth/edgedepth/depth"
)

// Name is the estimator's identifier in status messages and depth payloads.
const Name = "sgbm"

// ErrClosed is returned by Estimate after Close.
var ErrClosed = errors.New("sgbm: estimator is closed")

// Estimator is a depth.Estimator backed by OpenCV's StereoSGBM. It keeps its OpenCV
// buffers between frames (re-allocating only when the frame size changes), so a
// stream of same-sized frames allocates only the returned maps. Use it from one
// goroutine at a time; Close frees the C++ memory.
type Estimator struct {
	params  Params
	res     *resources
	cleanup runtime.Cleanup
}

var _ depth.Estimator = (*Estimator)(nil)

// resources are the C++-side buffers, apart from Estimator so that a safety-net
// cleanup can free them if an Estimator is dropped without Close.
type resources struct {
	once    sync.Once
	matcher *calib3d.StereoSGBM
	// left and right are CV_8UC1 grey images; leftPix and rightPix view their memory.
	left, right       gocv.Mat
	leftPix, rightPix []byte
	disp              gocv.Mat // CV_32FC1 disparity, pixels
	width, height     int
}

func (r *resources) free() {
	r.once.Do(func() {
		r.releaseImages()
		r.disp.Close()
		_ = r.matcher.Close()
	})
}

func (r *resources) releaseImages() {
	if r.width > 0 {
		r.left.Close()
		r.right.Close()
	}
	r.leftPix, r.rightPix = nil, nil
	r.width, r.height = 0, 0
}

// ensureSize (re)allocates the grey images when the frame size changes.
func (r *resources) ensureSize(w, h int) error {
	if w == r.width && h == r.height {
		return nil
	}
	r.releaseImages()
	r.left = gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC1)
	r.right = gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC1)
	r.width, r.height = w, h
	l, errL := r.left.DataPtrUint8()
	rt, errR := r.right.DataPtrUint8()
	if err := errors.Join(errL, errR); err != nil || len(l) != w*h || len(rt) != w*h {
		r.releaseImages()
		return fmt.Errorf("grey images for %dx%d: %d and %d bytes: %v", w, h, len(l), len(rt), err)
	}
	r.leftPix, r.rightPix = l, rt
	return nil
}

// New validates p and creates an estimator.
func New(p Params) (*Estimator, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	m, err := calib3d.NewStereoSGBM(p.matcherParams())
	if err != nil {
		return nil, fmt.Errorf("sgbm: %w", err)
	}
	e := &Estimator{params: p, res: &resources{matcher: m, disp: gocv.NewMat()}}
	e.cleanup = runtime.AddCleanup(e, (*resources).free, e.res)
	return e, nil
}

// Name implements depth.Estimator.
func (e *Estimator) Name() string { return Name }

// Params returns the parameters the estimator was created with.
func (e *Estimator) Params() Params { return e.params }

// Estimate implements depth.Estimator: the depth of every pixel of f.Left in metres,
// in a newly allocated map the caller owns.
func (e *Estimator) Estimate(f camera.StereoFrame) (depth.Map, error) {
	if err := checkFrame(f); err != nil {
		return depth.Map{}, err
	}
	out := depth.NewMap(f.Left.Width, f.Left.Height)
	if err := e.EstimateInto(f, out); err != nil {
		return depth.Map{}, err
	}
	return out, nil
}

// checkFrame reports frames the matcher cannot use, before anything reaches OpenCV.
func checkFrame(f camera.StereoFrame) error {
	l, r := f.Left, f.Right
	switch {
	case l.Width <= 0 || l.Height <= 0:
		return fmt.Errorf("sgbm: frame %d: empty %dx%d left image", f.Seq, l.Width, l.Height)
	case l.Width != r.Width || l.Height != r.Height:
		return fmt.Errorf("sgbm: frame %d: left %dx%d and right %dx%d differ in size",
			f.Seq, l.Width, l.Height, r.Width, r.Height)
	case len(l.Pix) != 3*l.Width*l.Height || len(r.Pix) != 3*r.Width*r.Height:
		return fmt.Errorf("sgbm: frame %d: %dx%d RGB images need %d bytes, have %d and %d",
			f.Seq, l.Width, l.Height, 3*l.Width*l.Height, len(l.Pix), len(r.Pix))
	case !(f.Intrinsics.Fx > 0) || math.IsInf(f.Intrinsics.Fx, 0):
		return fmt.Errorf("sgbm: frame %d: focal length fx=%g px must be positive", f.Seq, f.Intrinsics.Fx)
	case !(f.BaselineM > 0) || math.IsInf(f.BaselineM, 0):
		return fmt.Errorf("sgbm: frame %d: baseline %g m must be positive", f.Seq, f.BaselineM)
	}
	return nil
}

// EstimateInto is Estimate writing into out, which must be the size of the frame; for
// callers that recycle their maps.
func (e *Estimator) EstimateInto(f camera.StereoFrame, out depth.Map) error {
	if e.res == nil {
		return ErrClosed
	}
	if err := checkFrame(f); err != nil {
		return err
	}
	w, h := f.Left.Width, f.Left.Height
	if out.Width != w || out.Height != h || len(out.M) != w*h {
		return fmt.Errorf("sgbm: frame %d: %dx%d output map for a %dx%d frame: %w",
			f.Seq, out.Width, out.Height, w, h, depth.ErrSizeMismatch)
	}
	r := e.res
	if err := r.ensureSize(w, h); err != nil {
		return fmt.Errorf("sgbm: %w", err)
	}
	toGrey(f.Left.Pix, r.leftPix)
	toGrey(f.Right.Pix, r.rightPix)
	if err := r.matcher.Compute(r.left, r.right, &r.disp); err != nil {
		return fmt.Errorf("sgbm: frame %d: %w", f.Seq, err)
	}
	disp, err := r.disp.DataPtrFloat32()
	if err != nil {
		return fmt.Errorf("sgbm: frame %d: disparity: %w", f.Seq, err)
	}
	if err := depth.DisparityToDepth(disp, f.Intrinsics.Fx, f.BaselineM, out); err != nil {
		return fmt.Errorf("sgbm: frame %d: %w", f.Seq, err)
	}
	// The matcher marks rejected pixels MinDisparity-1, which is a positive disparity
	// when MinDisparity > 1; its depth lies beyond fx·B/MinDisparity, the farthest the
	// search range can see, so capping there removes it along with the range clip.
	maxZ := e.params.MaxDepthM
	if e.params.MinDisparity > 0 {
		maxZ = min(maxZ, f.Intrinsics.Fx*f.BaselineM/float64(e.params.MinDisparity))
	}
	clip(out.M, float32(e.params.MinDepthM), float32(maxZ))
	return nil
}

// toGrey converts packed RGB to BT.601 luma with 8-bit fixed-point weights
// (77, 150, 29)/256, rounding to nearest.
func toGrey(rgb, grey []byte) {
	rgb = rgb[:3*len(grey)]
	for i := range grey {
		p := rgb[3*i : 3*i+3 : 3*i+3]
		grey[i] = byte((77*uint32(p[0]) + 150*uint32(p[1]) + 29*uint32(p[2]) + 128) >> 8)
	}
}

// clip sets depths outside [lo, hi] to 0 (invalid).
func clip(m []float32, lo, hi float32) {
	for i, z := range m {
		if z < lo || z > hi {
			m[i] = 0
		}
	}
}

// Close frees the OpenCV buffers. It is safe to call more than once.
func (e *Estimator) Close() error {
	if e.res == nil {
		return nil
	}
	e.cleanup.Stop()
	e.res.free()
	e.res = nil
	return nil
}
