// Package depth holds what every depth estimator shares: the metric depth map, the
// conversion between disparity and depth, the depth payload published over MQTT
// (16-bit PNG in millimetres with its metadata inside), the colour preview, and the
// KITTI depth metrics used to judge an estimate against ground truth.
package depth

import (
	"github.com/edgedepth/edgedepth/camera"
)

// Map is a dense depth map in metres, row-major, Width*Height values. A value of 0
// means "no estimate" (occluded, untextured, out of range); it is never NaN or Inf.
type Map struct {
	Width, Height int
	M             []float32
}

// NewMap allocates a map with every pixel invalid.
func NewMap(width, height int) Map {
	return Map{Width: width, Height: height, M: make([]float32, width*height)}
}

// Estimator turns a rectified stereo pair into metric depth of the left image.
// An Estimator is used from one goroutine at a time.
type Estimator interface {
	// Name is a short identifier reported in status messages ("sgbm", "monodepth2").
	Name() string
	Estimate(f camera.StereoFrame) (Map, error)
	Close() error
}
