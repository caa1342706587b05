package stereo

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgedepth/edgedepth/camera"
)

// ErrOddWidth is returned by SplitSideBySide for an image that cannot be halved.
var ErrOddWidth = errors.New("stereo: side-by-side image width is odd")

// SplitSideBySide splits one side-by-side stereo image (left eye in the left half, right
// eye in the right half, as stereo cameras that share one sensor or one encoder send
// them) into two images of half the width. The halves are copies: the decoder that
// produced img may reuse its buffer.
func SplitSideBySide(img camera.Image) (left, right camera.Image, err error) {
	if img.Width <= 0 || img.Height <= 0 {
		return camera.Image{}, camera.Image{}, fmt.Errorf("stereo: side-by-side image size %dx%d must be positive", img.Width, img.Height)
	}
	if img.Width%2 != 0 {
		return camera.Image{}, camera.Image{}, fmt.Errorf("%w: %dx%d", ErrOddWidth, img.Width, img.Height)
	}
	if len(img.Pix) != 3*img.Width*img.Height {
		return camera.Image{}, camera.Image{}, fmt.Errorf("stereo: side-by-side image %dx%d has %d bytes, want %d", img.Width, img.Height, len(img.Pix), 3*img.Width*img.Height)
	}
	half := img.Width / 2
	left, right = camera.NewImage(half, img.Height), camera.NewImage(half, img.Height)
	row, halfRow := 3*img.Width, 3*half
	for y := 0; y < img.Height; y++ {
		src := img.Pix[y*row : (y+1)*row]
		copy(left.Pix[y*halfRow:(y+1)*halfRow], src[:halfRow])
		copy(right.Pix[y*halfRow:(y+1)*halfRow], src[halfRow:])
	}
	return left, right, nil
}

// SideBySide turns one camera whose frames carry both eyes into unrectified stereo
// pairs: both halves were exposed together, so there is nothing to match and no pairing
// error. Seq counts pairs from 0 per Run; CaptureTime is the frame's.
type SideBySide struct {
	Camera camera.MonoSource
}

// Name is the camera's name.
func (s SideBySide) Name() string { return s.Camera.Name() }

// Run runs the camera until ctx ends and calls emit with every frame split into a pair.
// A frame that cannot be split (odd width) ends Run with an error: the stream is not
// side-by-side, which retrying will not fix quickly, and the owner's health report
// should say so.
func (s SideBySide) Run(ctx context.Context, emit func(camera.StereoFrame)) error {
	var seq uint64
	var splitErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := s.Camera.Run(ctx, func(f camera.Frame) {
		if splitErr != nil {
			return
		}
		l, r, err := SplitSideBySide(f.Image)
		if err != nil {
			splitErr = err
			cancel()
			return
		}
		emit(camera.StereoFrame{Seq: seq, CaptureTime: f.CaptureTime, Left: l, Right: r})
		seq++
	})
	if splitErr != nil {
		return splitErr
	}
	return err
}
