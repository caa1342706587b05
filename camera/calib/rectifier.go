package calib

import (
	"errors"
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/calib3d"
)

// ErrSizeMismatch is wrapped by errors about images or streams whose size is not the
// calibration's.
var ErrSizeMismatch = errors.New("image size does not match the calibration")

// Options tune a Rectifier. The zero value is what a depth pipeline wants.
type Options struct {
	// Alpha chooses the rectified field of view, from 0 (the default: crop so that
	// every rectified pixel comes from inside both raw images, no black borders) to 1
	// (keep every raw pixel, with black areas where there is no data). Black borders
	// show up to a stereo matcher and to a self-supervised photometric loss as fake
	// structure, hence the default.
	Alpha float64
	// FloatMaps uses exact floating-point maps instead of OpenCV's fixed-point ones
	// (1/32 pixel): twice the map memory, for accuracy studies.
	FloatMaps bool
}

// Rectification is the geometry of a rectified pair, as cv::stereoRectify computes it.
type Rectification struct {
	// R1, R2 rotate the left and right camera frames into the common rectified frame.
	R1, R2 [9]float64
	// P1, P2 are the rectified projection matrices (3x4, row-major), in the left
	// rectified frame: P2[0,3] = −fx'·baseline.
	P1, P2 [12]float64
	// Q maps (x, y, disparity, 1) to homogeneous 3-D points in the left rectified frame.
	Q [16]float64
	// ValidROI1, ValidROI2 hold the rectified pixels whose source lies inside the raw
	// image (all of it with Alpha 0).
	ValidROI1, ValidROI2 image.Rectangle
}

// Rectifier rectifies raw stereo pairs with precomputed maps. It implements
// camera.Rectifier. Rectify is called from one goroutine at a time; Close frees the
// maps (OpenCV memory) and may be called from any goroutine.
type Rectifier struct {
	size       ImageSize
	maps       [2]*calib3d.RectifyMap
	rect       Rectification
	intrinsics camera.Intrinsics
	baseline   float64
}

var _ camera.Rectifier = (*Rectifier)(nil)

// NewRectifier computes the rectification of the calibrated pair s for a stream of
// streamSize images, and the maps that apply it. The stream must have the size the
// calibration was made at: intrinsics scale with resolution, and a calibration used at
// another one rectifies wrongly with nothing to show for it, so a mismatch is an error
// rather than a silent rescale. Call Close when done.
func NewRectifier(s Stereo, streamSize ImageSize, opts Options) (*Rectifier, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if streamSize != s.Size {
		return nil, fmt.Errorf("calib: stream images are %v but the calibration was made at %v: "+
			"recalibrate at %v or configure the cameras for %v: %w", streamSize, s.Size, streamSize, s.Size, ErrSizeMismatch)
	}
	if !(opts.Alpha >= 0 && opts.Alpha <= 1) {
		return nil, fmt.Errorf("calib: alpha %g must be in [0, 1]", opts.Alpha)
	}

	// The calibration as Mats, only for as long as OpenCV needs them.
	var mats []*gocv.Mat
	defer func() {
		for _, m := range mats {
			m.Close()
		}
	}()
	newMat := func(rows, cols int, v []float64) gocv.Mat {
		m := gocv.NewMatWithSize(rows, cols, gocv.MatTypeCV64F)
		for i, x := range v {
			m.SetDoubleAt(i/cols, i%cols, x)
		}
		mats = append(mats, &m)
		return m
	}
	out := func() *gocv.Mat {
		m := gocv.NewMat()
		mats = append(mats, &m)
		return &m
	}
	k1, k2 := newMat(3, 3, s.K1[:]), newMat(3, 3, s.K2[:])
	d1, d2 := newMat(1, len(s.D1), s.D1), newMat(1, len(s.D2), s.D2)
	rm, tm := newMat(3, 3, s.R[:]), newMat(3, 1, s.T[:])
	r1, r2, p1, p2, q := out(), out(), out(), out(), out()
	size := image.Pt(s.Size.Width, s.Size.Height)
	rois, err := calib3d.StereoRectify(k1, d1, k2, d2, size, rm, tm, calib3d.ZeroDisparity, opts.Alpha, size, r1, r2, p1, p2, q)
	if err != nil {
		return nil, fmt.Errorf("calib: rectification: %w", err)
	}
	rect := Rectification{ValidROI1: rois.ValidROI1, ValidROI2: rois.ValidROI2}
	read(*r1, rect.R1[:])
	read(*r2, rect.R2[:])
	read(*p1, rect.P1[:])
	read(*p2, rect.P2[:])
	read(*q, rect.Q[:])

	// stereoRectify makes a vertical pair (one camera above the other) row-aligned by
	// rotating it sideways, and a pair with the cameras swapped gets a positive
	// P2[0,3]; neither is the left/right pair that StereoFrame promises downstream.
	fx := rect.P1[0]
	switch {
	case rect.P2[7] != 0:
		return nil, fmt.Errorf("calib: T %v puts the second camera above or below the first: vertical stereo rigs are not supported", s.T)
	case rect.P2[3] >= 0:
		return nil, fmt.Errorf("calib: T %v puts the second camera to the left of the first: swap the left and right cameras", s.T)
	case !(fx > 0) || math.IsInf(fx, 0):
		return nil, fmt.Errorf("calib: rectification gives focal length %g: the calibration is degenerate", fx)
	}

	r := &Rectifier{
		size: streamSize,
		rect: rect,
		intrinsics: camera.Intrinsics{
			Fx: rect.P1[0], Fy: rect.P1[5], Cx: rect.P1[2], Cy: rect.P1[6],
			Width: streamSize.Width, Height: streamSize.Height,
		},
		baseline: math.Abs(rect.P2[3] / rect.P2[0]),
	}
	mapType := calib3d.MapFixedPoint
	if opts.FloatMaps {
		mapType = calib3d.MapFloat
	}
	for i, c := range []struct {
		k, d gocv.Mat
		r, p *gocv.Mat
	}{{k1, d1, r1, p1}, {k2, d2, r2, p2}} {
		m, err := calib3d.NewRectifyMap(c.k, c.d, *c.r, *c.p, size, size, mapType)
		if err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("calib: rectification maps: %w", err)
		}
		r.maps[i] = m
	}
	return r, nil
}

// read copies a CV_64F Mat, row-major, into dst.
func read(m gocv.Mat, dst []float64) {
	cols := m.Cols()
	for i := range dst {
		dst[i] = m.GetDoubleAt(i/cols, i%cols)
	}
}

// Rectify rectifies a raw pair into newly allocated images (see RectifyInto to reuse
// them). Both images must have the stream size the Rectifier was made for.
func (r *Rectifier) Rectify(left, right camera.Image) (camera.Image, camera.Image, error) {
	rl := camera.NewImage(r.size.Width, r.size.Height)
	rr := camera.NewImage(r.size.Width, r.size.Height)
	if err := r.RectifyInto(left, right, rl, rr); err != nil {
		return camera.Image{}, camera.Image{}, err
	}
	return rl, rr, nil
}

// RectifyInto rectifies a raw pair into rectLeft and rectRight, which must have the
// stream size; their pixels are overwritten. OpenCV reads and writes the images' own
// buffers: nothing is copied.
func (r *Rectifier) RectifyInto(left, right, rectLeft, rectRight camera.Image) error {
	for _, im := range []struct {
		name string
		im   camera.Image
	}{{"left", left}, {"right", right}, {"rectified left", rectLeft}, {"rectified right", rectRight}} {
		if im.im.Width != r.size.Width || im.im.Height != r.size.Height {
			return fmt.Errorf("calib: %s image is %dx%d, the rectifier was made for %v: %w",
				im.name, im.im.Width, im.im.Height, r.size, ErrSizeMismatch)
		}
		if len(im.im.Pix) != 3*im.im.Width*im.im.Height {
			return fmt.Errorf("calib: %s image has %d bytes, want %d for %dx%d RGB",
				im.name, len(im.im.Pix), 3*im.im.Width*im.im.Height, im.im.Width, im.im.Height)
		}
	}
	if err := r.maps[0].RemapPacked(left.Pix, 3, rectLeft.Pix); err != nil {
		return fmt.Errorf("calib: rectify left: %w", err)
	}
	if err := r.maps[1].RemapPacked(right.Pix, 3, rectRight.Pix); err != nil {
		return fmt.Errorf("calib: rectify right: %w", err)
	}
	return nil
}

// Intrinsics are the rectified intrinsics shared by both eyes (from P1).
func (r *Rectifier) Intrinsics() camera.Intrinsics { return r.intrinsics }

// BaselineM is the rectified baseline |P2[0,3] / P2[0,0]|, in the units of the
// calibration's T (metres; see the package documentation).
func (r *Rectifier) BaselineM() float64 { return r.baseline }

// Rectification returns the full rectification geometry, for code that must relate
// rectified and raw camera frames (e.g. to express depth in the robot's frame).
func (r *Rectifier) Rectification() Rectification { return r.rect }

// Close frees the maps. Rectify fails after Close. It is safe to call more than once.
func (r *Rectifier) Close() error {
	for _, m := range r.maps {
		if m != nil {
			_ = m.Close()
		}
	}
	return nil
}
