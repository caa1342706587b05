package stereo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/health"
)

// Health components of a Source. Each camera reports under its own, so that status and
// /healthz say which camera is down.
const (
	HealthLeft       = "camera left"
	HealthRight      = "camera right"
	HealthSideBySide = "camera side-by-side"
	HealthRectify    = "camera rectify"
)

// Restart backoff of a failed camera: the first retry after restartMin, doubling up to
// restartMax, back to restartMin once the camera has delivered frames for restartReset.
// restartMax is short because a retry costs one TCP connect, while a robot waiting for its
// camera is blind: a camera that comes back is picked up within restartMax (plus its
// connection time), however long it was gone.
const (
	restartMin   = 500 * time.Millisecond
	restartMax   = 4 * time.Second
	restartReset = time.Minute
)

// pairQueue is how many pairs wait between pairing and rectification: live video drops
// the oldest pair (counted) rather than make a camera wait.
const pairQueue = 2

// ErrNoCameras is returned by Run when the Source names neither two cameras nor one
// side-by-side camera.
var ErrNoCameras = errors.New("stereo: source needs Left and Right cameras or one SideBySide camera")

// Source is a camera.Source built from two cameras (Left and Right) or one camera whose
// frames carry both eyes (SideBySide), with an optional Rectifier.
//
// Each camera is supervised on its own: when it fails (or delivers no frame for
// Config.StallTimeout) it is restarted with backoff and its health component says which
// camera, why, and when it is retried. While a camera is down pairing pauses: the other
// camera's frames are discarded (counted), and when it comes back the pairing buffers are
// flushed so that no pair spans the outage. Pairs are rectified by Rectifier, which
// supplies the intrinsics and baseline; without one, the streams must already be
// rectified and Intrinsics and BaselineM describe them.
//
// Set the fields, then call Run; Stats may be called at any time from any goroutine.
type Source struct {
	// Label is the source's name (Name); default "stereo".
	Label string
	// Left and Right are the two cameras; or leave both nil and set SideBySide.
	Left, Right camera.MonoSource
	// SideBySide is one camera with the left eye in the left half of each frame.
	SideBySide camera.MonoSource
	// Rectifier rectifies each pair and gives its intrinsics and baseline; nil when the
	// streams are already rectified. Set it before Run; while Run runs, change it only
	// with SetRectifier.
	Rectifier camera.Rectifier
	// Intrinsics and BaselineM (metres) of the already-rectified streams, used only
	// without a Rectifier.
	Intrinsics camera.Intrinsics
	BaselineM  float64
	// Config tunes pairing and supervision; zero fields mean their defaults.
	Config Config
	// Health receives the cameras' and the pairing's warnings; nil for none.
	Health *health.Tracker
	// Log receives restarts and failures; nil for none.
	Log *slog.Logger

	// Restart backoff; zero means the production values (tests shorten them).
	restartMin, restartMax, restartReset time.Duration

	// rectMu guards Rectifier once Run has started, and is held while a pair is
	// rectified: SetRectifier therefore waits for the pair in progress, and the
	// rectifier it replaces is unused once it returns.
	rectMu sync.Mutex

	mu            sync.Mutex
	running       bool          // Run is between start-up and its return
	captures      []*rawCapture // CaptureRaw calls waiting for pairs
	cams          [2]camState
	pairer        *Pairer
	pairs         *camera.Ring
	sbsPairs      uint64
	emitted       uint64
	rectifyErrors uint64
	rectifyFailed bool // the last pair failed to rectify: log only the first of a streak
}

// camState is what the Source knows of one camera.
type camState struct {
	component, name    string
	up                 bool
	frames             uint64
	restarts           uint64
	lastErr            string
	width, height      int
	clock              camera.Clock
	ntp                bool
	droppedPartnerDown uint64
	// first and last capture time of the current run, for the frame rate.
	runFrames   uint64
	first, last time.Time
}

// Name implements camera.Source.
func (s *Source) Name() string {
	if s.Label == "" {
		return "stereo"
	}
	return s.Label
}

// Run runs the cameras and emits rectified pairs until ctx ends; it returns nil then,
// once every goroutine it started has returned. It returns an error at once when the
// Source is misconfigured; camera failures are retried, never returned.
func (s *Source) Run(ctx context.Context, emit func(camera.StereoFrame)) error {
	return s.run(ctx, emit, true)
}

// run is Run; needGeometry false (the probe) lets unrectified streams through without
// intrinsics.
func (s *Source) run(ctx context.Context, emit func(camera.StereoFrame), needGeometry bool) error {
	if err := s.check(needGeometry); err != nil {
		return err
	}
	cfg := s.Config.Resolved()
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "camera "+s.Name())

	s.mu.Lock()
	s.pairer = NewPairer(cfg, s.Health)
	s.pairs = camera.NewRing(pairQueue)
	s.sbsPairs, s.emitted, s.rectifyErrors, s.rectifyFailed = 0, 0, 0, false
	s.running = true
	if s.SideBySide != nil {
		s.cams = [2]camState{{component: HealthSideBySide, name: s.SideBySide.Name()}}
	} else {
		s.cams = [2]camState{
			{component: HealthLeft, name: s.Left.Name()},
			{component: HealthRight, name: s.Right.Name()},
		}
	}
	pairs := s.pairs
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if s.SideBySide != nil {
		sbs := SideBySide{Camera: frameCounter{s.SideBySide, func(f camera.Frame) { s.sbsFrame(f) }}}
		wg.Go(func() {
			s.supervise(ctx, log, cfg, Left, func(ctx context.Context, alive func()) error {
				return sbs.Run(ctx, func(sf camera.StereoFrame) {
					alive()
					// SideBySide counts from 0 on every run: number across restarts here.
					s.mu.Lock()
					sf.Seq = s.sbsPairs
					s.sbsPairs++
					s.mu.Unlock()
					pairs.Push(sf)
				})
			})
		})
	} else {
		for side, cam := range [2]camera.MonoSource{s.Left, s.Right} {
			wg.Go(func() {
				s.supervise(ctx, log, cfg, Side(side), func(ctx context.Context, alive func()) error {
					return cam.Run(ctx, func(f camera.Frame) {
						alive()
						s.frame(Side(side), f)
					})
				})
			})
		}
	}

	// Rectification runs here, on Run's goroutine, so that emit is called from one
	// goroutine in order and a slow rectifier only ever costs dropped pairs.
	for {
		sf, err := pairs.Pop(ctx)
		if err != nil {
			break
		}
		// Raw pairs for CaptureRaw are copied before rectification, so that they are
		// exactly what the cameras delivered.
		s.offerRaw(sf)
		if out, ok := s.finish(log, sf, needGeometry); ok {
			s.mu.Lock()
			s.emitted++
			s.mu.Unlock()
			emit(out)
		}
	}
	cancel()
	wg.Wait()
	s.stopCaptures()
	// A stopped source is not a degraded one: leave no stale warnings behind.
	if s.Health != nil {
		for _, c := range []string{HealthLeft, HealthRight, HealthSideBySide, HealthRectify, HealthPairing} {
			s.Health.Clear(c)
		}
	}
	return nil
}

func (s *Source) check(needGeometry bool) error {
	two := s.Left != nil && s.Right != nil && s.SideBySide == nil
	one := s.SideBySide != nil && s.Left == nil && s.Right == nil
	if !two && !one {
		return ErrNoCameras
	}
	if err := s.Config.Validate(); err != nil {
		return err
	}
	s.rectMu.Lock()
	rect := s.Rectifier
	s.rectMu.Unlock()
	if rect == nil && needGeometry {
		if err := s.Intrinsics.Validate(); err != nil {
			return fmt.Errorf("stereo: no rectifier, so the streams must be rectified and described: %w", err)
		}
		if !(s.BaselineM > 0) {
			return fmt.Errorf("stereo: no rectifier, so the streams must be rectified and described: baseline %g m must be positive", s.BaselineM)
		}
	}
	return nil
}

// supervise runs one camera until ctx ends, restarting it with exponential backoff, and
// keeps its health component current. once runs the camera a single time and calls alive
// on every frame.
func (s *Source) supervise(ctx context.Context, log *slog.Logger, cfg Config, side Side, once func(ctx context.Context, alive func()) error) {
	minWait, maxWait, reset := orDefault(s.restartMin, restartMin), orDefault(s.restartMax, restartMax), orDefault(s.restartReset, restartReset)
	s.mu.Lock()
	component, name := s.cams[side].component, s.cams[side].name
	s.mu.Unlock()
	wait := minWait
	for {
		runCtx, stop := context.WithCancel(ctx)
		// The watchdog catches a camera that stays connected but sends nothing: its Run
		// would otherwise never return and the pipeline would pause forever.
		var stalled atomic.Bool
		watchdog := time.AfterFunc(cfg.StallTimeout, func() { stalled.Store(true); stop() })
		var firstFrame time.Time
		err := once(runCtx, func() {
			if firstFrame.IsZero() {
				firstFrame = time.Now()
				s.cameraUp(side)
			}
			watchdog.Reset(cfg.StallTimeout)
		})
		watchdog.Stop()
		stop()
		s.cameraDown(side)
		if ctx.Err() != nil {
			return
		}
		switch {
		case stalled.Load():
			err = fmt.Errorf("no frames for %s", cfg.StallTimeout)
		case err == nil:
			err = errors.New("stream ended")
		}
		if !firstFrame.IsZero() && time.Since(firstFrame) >= reset {
			wait = minWait // it was healthy for a while: this is a new fault, not the same one
		}
		msg := fmt.Sprintf("%s (%s): %v; retrying in %s", component, name, err, wait.Round(100*time.Millisecond))
		s.mu.Lock()
		s.cams[side].restarts++
		s.cams[side].lastErr = err.Error()
		s.mu.Unlock()
		if s.Health != nil {
			s.Health.Set(component, msg)
		}
		log.Warn("camera failed; restarting", "camera", component, "name", name, "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, maxWait)
	}
}

func orDefault(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// cameraUp is called on a camera's first frame of a run: pairing resumes from empty
// buffers and the camera's warning clears.
func (s *Source) cameraUp(side Side) {
	s.mu.Lock()
	s.cams[side].up = true
	s.cams[side].runFrames = 0 // the frame rate is of the current run
	component := s.cams[side].component
	p := s.pairer
	s.mu.Unlock()
	p.Flush()
	if s.Health != nil {
		s.Health.Clear(component)
	}
}

// cameraDown is called when a camera's run has ended: pairing pauses.
func (s *Source) cameraDown(side Side) {
	s.mu.Lock()
	s.cams[side].up = false
	p := s.pairer
	s.mu.Unlock()
	p.Flush()
}

// frame takes one frame of a two-camera source.
func (s *Source) frame(side Side, f camera.Frame) {
	s.mu.Lock()
	c := &s.cams[side]
	s.noteFrame(c, f)
	partnerUp := s.cams[1-side].up
	if !partnerUp {
		c.droppedPartnerDown++
	}
	p, pairs := s.pairer, s.pairs
	s.mu.Unlock()
	if partnerUp {
		p.Add(side, f, pairs.Push)
	}
}

// sbsFrame notes one raw frame of a side-by-side camera.
func (s *Source) sbsFrame(f camera.Frame) {
	s.mu.Lock()
	s.noteFrame(&s.cams[Left], f)
	s.mu.Unlock()
}

func (s *Source) noteFrame(c *camState, f camera.Frame) {
	if c.runFrames == 0 {
		c.first = f.CaptureTime
	}
	c.runFrames++
	c.last = f.CaptureTime
	c.frames++
	c.width, c.height, c.clock = f.Image.Width, f.Image.Height, f.Clock
	c.ntp = c.ntp || f.Clock == camera.ClockNTP
}

// finish rectifies a pair and attaches its geometry; false drops the pair (counted).
func (s *Source) finish(log *slog.Logger, sf camera.StereoFrame, needGeometry bool) (camera.StereoFrame, bool) {
	var err error
	// Held for the whole pair: the images, intrinsics and baseline all come from one
	// rectifier, whatever SetRectifier does meanwhile.
	s.rectMu.Lock()
	switch rect := s.Rectifier; {
	case rect != nil:
		var l, r camera.Image
		if l, r, err = rect.Rectify(sf.Left, sf.Right); err == nil {
			sf.Left, sf.Right = l, r
			sf.Intrinsics, sf.BaselineM = rect.Intrinsics(), rect.BaselineM()
		}
	case sf.Left.Width != sf.Right.Width || sf.Left.Height != sf.Right.Height:
		err = fmt.Errorf("left image is %dx%d, right %dx%d", sf.Left.Width, sf.Left.Height, sf.Right.Width, sf.Right.Height)
	case needGeometry && (sf.Left.Width != s.Intrinsics.Width || sf.Left.Height != s.Intrinsics.Height):
		err = fmt.Errorf("images are %dx%d, the configured intrinsics %dx%d", sf.Left.Width, sf.Left.Height, s.Intrinsics.Width, s.Intrinsics.Height)
	default:
		sf.Intrinsics, sf.BaselineM = s.Intrinsics, s.BaselineM
	}
	s.rectMu.Unlock()
	s.mu.Lock()
	first, recovered := err != nil && !s.rectifyFailed, err == nil && s.rectifyFailed
	s.rectifyFailed = err != nil
	if err != nil {
		s.rectifyErrors++
	}
	s.mu.Unlock()
	if err != nil {
		if first {
			log.Warn("stereo pair rejected; dropping pairs until it is fixed", "err", err)
		}
		if s.Health != nil {
			// No count in the message: an unchanged message keeps the warning's Since.
			s.Health.Set(HealthRectify, fmt.Sprintf("%s: %v: stereo pairs are dropped (did a camera change resolution? the calibration must match the streams)", HealthRectify, err))
		}
		return camera.StereoFrame{}, false
	}
	if recovered && s.Health != nil {
		s.Health.Clear(HealthRectify)
	}
	return sf, true
}

// frameCounter wraps a camera to observe its frames before they are passed on.
type frameCounter struct {
	camera.MonoSource
	observe func(camera.Frame)
}

func (c frameCounter) Run(ctx context.Context, emit func(camera.Frame)) error {
	return c.MonoSource.Run(ctx, func(f camera.Frame) { c.observe(f); emit(f) })
}

// CameraStats describes one camera of a Source.
type CameraStats struct {
	Name   string `json:"name"`
	Up     bool   `json:"up"`
	Frames uint64 `json:"frames"`
	// Restarts counts failed runs (each followed by a retry).
	Restarts  uint64 `json:"restarts"`
	LastError string `json:"last_error,omitempty"`
	// Width and Height of the last frame (before splitting, for a side-by-side camera).
	Width  int          `json:"width"`
	Height int          `json:"height"`
	Clock  camera.Clock `json:"clock"`
	// NTP tells whether any frame carried the camera's own (RTCP/NTP) time.
	NTP bool `json:"ntp"`
	// DroppedPartnerDown counts frames discarded because the other camera was down.
	DroppedPartnerDown uint64 `json:"dropped_partner_down"`
	// FPS is the frame rate of the current run, from capture times (0: too few frames).
	FPS float64 `json:"fps"`
}

// Stats describes a Source's cameras, pairing and rectification.
type Stats struct {
	// Left and Right; for a side-by-side source, Left is its one camera and Right is empty.
	Left       CameraStats `json:"left"`
	Right      CameraStats `json:"right"`
	SideBySide bool        `json:"side_by_side"`
	Pairing    PairStats   `json:"pairing"`
	// DroppedPairs were paired but dropped because rectification fell behind.
	DroppedPairs uint64 `json:"dropped_pairs"`
	// RectifyErrors counts pairs the Rectifier (or the geometry check) rejected.
	RectifyErrors uint64 `json:"rectify_errors"`
	// Emitted counts pairs handed to emit.
	Emitted uint64 `json:"emitted"`
}

// Stats returns a snapshot; zero before Run.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	st := Stats{
		Left: s.cams[Left].stats(), Right: s.cams[Right].stats(),
		SideBySide:    s.SideBySide != nil,
		RectifyErrors: s.rectifyErrors,
		Emitted:       s.emitted,
	}
	p, pairs, sbs := s.pairer, s.pairs, s.sbsPairs
	s.mu.Unlock()
	if p != nil {
		st.Pairing = p.Stats()
		st.DroppedPairs = pairs.Dropped()
	}
	if st.SideBySide {
		st.Pairing.Pairs = sbs
	}
	return st
}

func (c *camState) stats() CameraStats {
	return CameraStats{
		Name: c.name, Up: c.up, Frames: c.frames, Restarts: c.restarts, LastError: c.lastErr,
		Width: c.width, Height: c.height, Clock: c.clock, NTP: c.ntp,
		DroppedPartnerDown: c.droppedPartnerDown,
		FPS:                c.fps(),
	}
}

func (c *camState) fps() float64 {
	span := c.last.Sub(c.first)
	if c.runFrames < 2 || span <= 0 {
		return 0
	}
	return float64(c.runFrames-1) / span.Seconds()
}
