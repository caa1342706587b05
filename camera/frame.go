// Package camera turns stereo cameras into synchronised stereo pairs: the frame types
// shared by every source, the drop-oldest ring between a source and its consumer, and
// (in sub-packages) the sources themselves. It knows nothing of tensors.
package camera

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"time"
)

// Image is an 8-bit RGB image, packed row-major, 3 bytes a pixel, no padding:
// pixel (x, y) starts at Pix[3*(y*Width+x)].
type Image struct {
	Width, Height int
	Pix           []byte
}

// NewImage allocates a black image.
func NewImage(width, height int) Image {
	return Image{Width: width, Height: height, Pix: make([]byte, 3*width*height)}
}

// ColorModel, Bounds and At make Image an image.Image (for PNG/JPEG encoding).
func (m Image) ColorModel() color.Model { return color.RGBAModel }

// Bounds implements image.Image.
func (m Image) Bounds() image.Rectangle { return image.Rect(0, 0, m.Width, m.Height) }

// At implements image.Image.
func (m Image) At(x, y int) color.Color {
	i := 3 * (y*m.Width + x)
	return color.RGBA{m.Pix[i], m.Pix[i+1], m.Pix[i+2], 255}
}

// RGBA converts to a standard library *image.RGBA (for encoders that want it).
func (m Image) RGBA() *image.RGBA {
	out := image.NewRGBA(m.Bounds())
	for i, j := 0, 0; i < len(m.Pix); i, j = i+3, j+4 {
		out.Pix[j], out.Pix[j+1], out.Pix[j+2], out.Pix[j+3] = m.Pix[i], m.Pix[i+1], m.Pix[i+2], 255
	}
	return out
}

// FromImage converts any image.Image to a packed RGB Image.
func FromImage(src image.Image) Image {
	b := src.Bounds()
	out := NewImage(b.Dx(), b.Dy())
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := src.At(x, y).RGBA()
			out.Pix[i], out.Pix[i+1], out.Pix[i+2] = byte(r>>8), byte(g>>8), byte(bl>>8)
			i += 3
		}
	}
	return out
}

// Intrinsics of a pinhole camera in pixels, for an image of Width x Height pixels.
// For a rectified stereo pair both eyes share them.
type Intrinsics struct {
	Fx, Fy, Cx, Cy float64
	Width, Height  int
}

// Validate reports intrinsics that cannot describe a camera.
func (k Intrinsics) Validate() error {
	if k.Width <= 0 || k.Height <= 0 {
		return fmt.Errorf("intrinsics: image size %dx%d must be positive", k.Width, k.Height)
	}
	if k.Fx <= 0 || k.Fy <= 0 {
		return fmt.Errorf("intrinsics: focal lengths fx=%g fy=%g must be positive", k.Fx, k.Fy)
	}
	return nil
}

// Pose is a rigid transform from the camera frame to the world frame (world_T_camera):
// a point p in camera coordinates is at R(Orientation)·p + Position in the world.
// Camera axes follow OpenCV: x right, y down, z forward. Position is in metres,
// Orientation a unit quaternion (x, y, z, w).
type Pose struct {
	Position    [3]float64
	Orientation [4]float64
}

// GroundTruth accompanies frames from the simulator only.
type GroundTruth struct {
	// DepthM is the z-depth of every pixel of the left image in metres, row-major,
	// Width*Height values; 0 where nothing was hit (sky).
	DepthM []float32
	// Pose of the left camera in the world.
	Pose Pose
}

// StereoFrame is one rectified, synchronised stereo pair.
type StereoFrame struct {
	// Seq counts pairs from 0 in the order the source produced them.
	Seq uint64
	// CaptureTime is when both eyes exposed (the source's best estimate).
	CaptureTime time.Time
	// Left and Right are rectified: a point appears on the same row in both.
	Left, Right Image
	// Intrinsics are the rectified intrinsics, shared by both eyes.
	Intrinsics Intrinsics
	// BaselineM is the distance between the two optical centres in metres
	// (the right camera sits at +BaselineM along the left camera's x axis).
	BaselineM float64
	// Truth is nil except for simulated frames.
	Truth *GroundTruth
}

// Source produces stereo pairs until ctx is cancelled. Run calls emit for every pair, in
// order, from one goroutine; emit must not block for long (hand the frame to a Ring).
// Run returns nil when ctx is cancelled and an error when the source failed; its owner
// decides whether to restart it.
type Source interface {
	Name() string
	Run(ctx context.Context, emit func(StereoFrame)) error
}

// Frame is one decoded picture from one camera, before pairing.
type Frame struct {
	// Seq counts the frames this camera delivered since its stream (re)started.
	Seq uint64
	// CaptureTime is when the picture was exposed, as well as the source can tell.
	CaptureTime time.Time
	// Clock says where CaptureTime came from: ClockNTP (the camera's RTCP sender
	// reports) or ClockReceive (presentation time anchored to our receive clock).
	Clock Clock
	Image Image
}

// Clock names the origin of a frame's capture time.
type Clock string

const (
	// ClockNTP: the camera's own wall clock, from RTCP sender reports. Comparable across
	// cameras when their clocks are synchronised (PTP/NTP on the cameras).
	ClockNTP Clock = "ntp"
	// ClockReceive: the stream's presentation time anchored to our clock at the first
	// frame. Comparable across cameras up to the network delay difference.
	ClockReceive Clock = "receive"
	// ClockSim: the simulator's clock.
	ClockSim Clock = "sim"
)

// MonoSource produces the frames of one camera until ctx is cancelled, calling emit for
// each from one goroutine; emit must not block for long. Run returns nil on cancel and an
// error when the stream failed (its owner restarts it with backoff).
type MonoSource interface {
	Name() string
	Run(ctx context.Context, emit func(Frame)) error
}

// Rectifier turns a raw (distorted, unaligned) stereo pair into a rectified one, in which
// a point appears on the same row in both images, with the rectified intrinsics and
// baseline that travel with every StereoFrame. Rectify is called from one goroutine at a
// time; it may reuse its output buffers once the caller has handed on the previous pair,
// so it returns fresh images unless documented otherwise.
type Rectifier interface {
	Rectify(left, right Image) (rectLeft, rectRight Image, err error)
	// Intrinsics are the rectified intrinsics shared by both eyes.
	Intrinsics() Intrinsics
	// BaselineM is the rectified baseline in metres.
	BaselineM() float64
}
