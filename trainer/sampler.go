package trainer

import (
	"errors"
	"fmt"
	"math"
	"time"

	cam "github.com/edgedepth/edgedepth/camera"
)

// SamplerConfig configures a Sampler. The zero value of a field means its default.
type SamplerConfig struct {
	// Width and Height are the training resolution in pixels (multiples of 32, as
	// the networks need). Required.
	Width, Height int
	// MinMotion is the least mean absolute difference, in grey levels (0–255),
	// between a frame and the previous frame of the triplet, both shrunk to a
	// thumbnail MotionThumbWidth pixels wide, for the frame to join the triplet.
	// Frames closer than that are skipped (counted): a rig that barely moves gives
	// the temporal signal nothing to learn from and fills the replay buffer with
	// copies. The thumbnail's averaging brings a camera's sensor noise (σ ≈ 2 grey
	// levels per pixel) well below the default; the simulated rig moves 2.5 (street)
	// to 5 (room) grey levels a frame. Default 1; negative means 0 (accept all).
	MinMotion float64
	// Interval is the least time between the first frames of two triplets (capture
	// times): it bounds the sampler's CPU use and keeps consecutive triplets from
	// being near copies of each other (so held-out triplets are not almost trained
	// on). Default 1s; negative means 0.
	Interval time.Duration
	// MaxGap is the longest time between two frames of one triplet; a longer gap
	// (frames dropped, the rig stopped) starts the triplet afresh. Default 1s.
	MaxGap time.Duration
	// ValidationEvery holds out every ValidationEvery-th triplet (both its samples)
	// for validation. Default 10; at least 2.
	ValidationEvery int
	// Name prefixes the sample IDs. Default "live".
	Name string
}

// MotionThumbWidth is the width of the thumbnails the motion test compares.
const MotionThumbWidth = 64

// WithDefaults fills the zero fields.
func (c SamplerConfig) WithDefaults() SamplerConfig {
	// Negative values stay as they are (they mean 0 where used), so that filling the
	// defaults twice changes nothing.
	if c.MinMotion == 0 {
		c.MinMotion = 1
	}
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.MaxGap == 0 {
		c.MaxGap = time.Second
	}
	if c.ValidationEvery == 0 {
		c.ValidationEvery = 10
	}
	if c.Name == "" {
		c.Name = "live"
	}
	return c
}

// Validate names the first field out of range (after WithDefaults).
func (c SamplerConfig) Validate() error {
	switch {
	case c.Width <= 0 || c.Height <= 0 || c.Width%32 != 0 || c.Height%32 != 0:
		return fmt.Errorf("trainer: sampler: training size %dx%d: must be positive multiples of 32", c.Width, c.Height)
	case math.IsNaN(c.MinMotion) || math.IsInf(c.MinMotion, 0):
		return fmt.Errorf("trainer: sampler: min motion %g grey levels: must be a number", c.MinMotion)
	case c.MaxGap <= 0:
		return fmt.Errorf("trainer: sampler: max gap %s: must be positive", c.MaxGap)
	case c.ValidationEvery < 2:
		return fmt.Errorf("trainer: sampler: validation every %d: must be at least 2 (one triplet in that many is held out)", c.ValidationEvery)
	}
	return nil
}

// SamplerStats counts what a Sampler did with its frames.
type SamplerStats struct {
	Frames     uint64 // frames pushed
	Resting    uint64 // frames passed over while waiting for the next triplet's Interval
	Static     uint64 // frames skipped because the rig barely moved since the last one kept
	Gaps       uint64 // triplets restarted because of a gap longer than MaxGap
	Triplets   uint64 // triplets completed (two samples each)
	Validation uint64 // of those, held out for validation
}

// Sampler turns a live stream of rectified stereo pairs into training samples, the
// way the datasets do: three consecutive kept frames t−1, t, t+1 make a triplet, and
// a triplet makes two samples — the left eye of t as target (previous and next left
// frames, the right eye as the other eye) and the right eye of t (and the right
// frames, the left eye, a negative baseline). Images are resized to the training
// resolution with ResizeImage and the intrinsics with ScaleIntrinsics; ground truth
// (simulated frames) is kept for validation metrics. A frame joins the triplet only
// if it differs from the previous one by MinMotion, so a resting robot yields nothing.
// After a triplet the sampler rests for Interval (by capture time), and every
// ValidationEvery-th triplet is held out.
//
// A Sampler is not safe for concurrent use; Push is cheap for frames it does not keep
// (a thumbnail for the motion test) and resizes six images per triplet.
type Sampler struct {
	cfg    SamplerConfig
	window []samplerFrame // the triplet being gathered
	resume time.Time      // no new triplet starts before this capture time
	stats  SamplerStats
}

type samplerFrame struct {
	f     cam.StereoFrame
	thumb []float32 // grey, MotionThumbWidth wide
}

// NewSampler checks cfg (with defaults filled) and returns a Sampler.
func NewSampler(cfg SamplerConfig) (*Sampler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Sampler{cfg: cfg}, nil
}

// Config is the sampler's configuration with defaults filled.
func (s *Sampler) Config() SamplerConfig { return s.cfg }

// Stats returns the counters.
func (s *Sampler) Stats() SamplerStats { return s.stats }

// errFrame reports a frame the sampler cannot use.
var errFrame = errors.New("trainer: sampler: unusable frame")

// Push takes the next frame of the stream (frames in capture order). When it
// completes a triplet it returns its two samples and whether they are held out for
// validation; otherwise nil. The frame's images are only read, never kept beyond the
// triplet's resized copies.
func (s *Sampler) Push(f cam.StereoFrame) (samples []Sample, validation bool, err error) {
	s.stats.Frames++
	if err := checkFrame(f); err != nil {
		return nil, false, err
	}
	if len(s.window) == 0 && f.CaptureTime.Before(s.resume) {
		s.stats.Resting++
		return nil, false, nil
	}
	thumb := greyThumb(f.Left)
	if n := len(s.window); n > 0 {
		last := s.window[n-1]
		gap := f.CaptureTime.Sub(last.f.CaptureTime)
		if gap > s.cfg.MaxGap || gap < 0 || len(thumb) != len(last.thumb) {
			s.stats.Gaps++
			s.window = s.window[:0]
		} else if meanAbsDiff(thumb, last.thumb) < math.Max(s.cfg.MinMotion, 0) {
			s.stats.Static++
			return nil, false, nil
		}
	}
	s.window = append(s.window, samplerFrame{f: f, thumb: thumb})
	if len(s.window) < 3 {
		return nil, false, nil
	}
	prev, mid, next := s.window[0].f, s.window[1].f, s.window[2].f
	s.window = s.window[:0]
	s.resume = prev.CaptureTime.Add(max(s.cfg.Interval, 0))
	s.stats.Triplets++
	validation = s.stats.Triplets%uint64(s.cfg.ValidationEvery) == 0
	if validation {
		s.stats.Validation++
	}
	return s.samples(prev, mid, next), validation, nil
}

// checkFrame rejects frames whose images do not match their intrinsics.
func checkFrame(f cam.StereoFrame) error {
	k := f.Intrinsics
	if err := k.Validate(); err != nil {
		return fmt.Errorf("%w %d: %v", errFrame, f.Seq, err)
	}
	for _, m := range []cam.Image{f.Left, f.Right} {
		if m.Width != k.Width || m.Height != k.Height || len(m.Pix) != 3*k.Width*k.Height {
			return fmt.Errorf("%w %d: a %dx%d image (%d bytes) with %dx%d intrinsics", errFrame, f.Seq, m.Width, m.Height, len(m.Pix), k.Width, k.Height)
		}
	}
	if !(f.BaselineM > 0) {
		return fmt.Errorf("%w %d: baseline %g m: must be positive", errFrame, f.Seq, f.BaselineM)
	}
	return nil
}

// samples resizes a triplet to the training resolution and makes its two samples.
func (s *Sampler) samples(prev, mid, next cam.StereoFrame) []Sample {
	w, h := s.cfg.Width, s.cfg.Height
	rs := func(m cam.Image) cam.Image { return ResizeImage(m, w, h) }
	pl, pr := rs(prev.Left), rs(prev.Right)
	ml, mr := rs(mid.Left), rs(mid.Right)
	nl, nr := rs(next.Left), rs(next.Right)
	k := ScaleIntrinsics(mid.Intrinsics, w, h)
	id := fmt.Sprintf("%s#%06d", s.cfg.Name, mid.Seq)
	left := Sample{ID: id + "L", Frame: int(mid.Seq), Target: ml, Prev: pl, Next: nl, Other: mr,
		Intrinsics: k, BaselineM: mid.BaselineM}
	if mid.Truth != nil && mid.Truth.DepthM != nil {
		left.TruthDepth = ResizeDepth(mid.Truth.DepthM, mid.Left.Width, mid.Left.Height, w, h)
	}
	right := Sample{ID: id + "R", Frame: int(mid.Seq), Right: true, Target: mr, Prev: pr, Next: nr, Other: ml,
		Intrinsics: k, BaselineM: -mid.BaselineM}
	return []Sample{left, right}
}

// greyThumb shrinks m to MotionThumbWidth pixels wide (area averaging, so noise
// averages out) and returns its grey levels.
func greyThumb(m cam.Image) []float32 {
	w := min(MotionThumbWidth, m.Width)
	h := max(1, int(math.Round(float64(m.Height)*float64(w)/float64(m.Width))))
	t := ResizeImage(m, w, h)
	g := make([]float32, w*h)
	for i := range g {
		p := t.Pix[3*i : 3*i+3]
		g[i] = 0.299*float32(p[0]) + 0.587*float32(p[1]) + 0.114*float32(p[2])
	}
	return g
}

func meanAbsDiff(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i] - b[i]))
	}
	return s / float64(len(a))
}
