package sim

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

// Source is a live simulated camera: it renders the world in real time, one frame every
// 1/FPS seconds of wall clock, as a real rig would expose them. It implements
// camera.Source.
//
// The world's clock follows the wall clock: if rendering falls behind, the frames whose
// time has passed are skipped (and counted by Skipped) rather than delivered late, so
// the rig still moves at its configured speed. Seq is the world's frame number k (a gap
// is a skipped frame), so World.Render(Seq) reproduces any emitted frame; CaptureTime
// is the wall clock at emission; Truth is filled. Each Run starts again from frame 0: a
// restarted source replays the world from the beginning.
type Source struct {
	w       *World
	skipped atomic.Uint64
}

// NewSource returns a live source over w. It starts nothing: Run does.
func NewSource(w *World) *Source { return &Source{w: w} }

// Name implements camera.Source, e.g. "sim:street:seed=1".
func (s *Source) Name() string { return s.w.Name() }

// Skipped is the number of frames not rendered because rendering fell behind real time.
func (s *Source) Skipped() uint64 { return s.skipped.Load() }

// Run renders and emits frames until ctx is cancelled, then returns nil. It renders on up
// to GOMAXPROCS goroutines and waits for them before returning.
func (s *Source) Run(ctx context.Context, emit func(camera.StereoFrame)) error {
	period := time.Duration(math.Round(1e9 / s.w.cfg.FPS))
	return runPaced(ctx, period, -1, &s.skipped, func(k int) (camera.StereoFrame, error) {
		// A fresh frame each time: the previous one now belongs to the consumer.
		return s.w.Render(k), nil
	}, emit)
}

// Playback replays a sequence on disk as a live source, paced like Source: frame k is
// due k periods after Run starts, late frames are skipped. It implements camera.Source.
// Seq is the playback's frame number k (frame k % Len of the sequence; a gap is a
// skipped frame) and CaptureTime is the wall clock at emission (the
// recorded times stay available through Sequence.Frame); Truth is as Frame gives it.
type Playback struct {
	seq     *Sequence
	loop    bool
	fps     float64
	skipped atomic.Uint64
}

// Source returns a playback of s at fps frames per second (0: the recorded rate). With
// loop it starts again from frame 0 after the last frame; without, Run returns
// ErrEndOfSequence after emitting the last frame.
func (s *Sequence) Source(loop bool, fps float64) *Playback {
	if !(fps > 0) || math.IsInf(fps, 0) {
		fps = s.calib.FPS
	}
	return &Playback{seq: s, loop: loop, fps: fps}
}

// Name implements camera.Source.
func (p *Playback) Name() string { return "sequence:" + p.seq.dir }

// Skipped is the number of frames not emitted because reading fell behind real time.
func (p *Playback) Skipped() uint64 { return p.skipped.Load() }

// Run emits the frames until ctx is cancelled (nil), the sequence ends
// (ErrEndOfSequence, without loop) or a frame cannot be read.
func (p *Playback) Run(ctx context.Context, emit func(camera.StereoFrame)) error {
	period := time.Duration(math.Round(1e9 / p.fps))
	n, end := p.seq.Len(), -1
	if !p.loop {
		end = n
	}
	return runPaced(ctx, period, end, &p.skipped, func(k int) (camera.StereoFrame, error) {
		if k >= n && !p.loop {
			return camera.StereoFrame{}, ErrEndOfSequence
		}
		f, err := p.seq.Frame(k % n)
		if err != nil {
			return f, fmt.Errorf("playback: %w", err)
		}
		return f, nil
	}, emit)
}

// runPaced makes frame k (k = 0, 1, ...) with produce and emits it at start + k·period,
// skipping frames whose slot has passed. It returns nil when ctx ends and produce's error
// otherwise. Producing ahead of the due time hides its latency: the frame is ready when
// its slot comes. end, if not negative, is the number of frames there are: skipping
// counts none beyond it, and produce(end) ends the run.
func runPaced(ctx context.Context, period time.Duration, end int, skipped *atomic.Uint64,
	produce func(k int) (camera.StereoFrame, error), emit func(camera.StereoFrame)) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	for k := 0; ; {
		if ctx.Err() != nil {
			return nil
		}
		f, err := produce(k)
		if err != nil {
			return err
		}
		if wait := time.Until(start.Add(time.Duration(k) * period)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return nil
		}
		// Seq is the world's frame number, so that a consumer can look up the ground
		// truth of any published result (World.Render(Seq)); a gap is a skipped frame.
		f.Seq = uint64(k)
		f.CaptureTime = time.Now()
		emit(f)
		// The next frame is k+1, unless its slot has already passed: then the frame of
		// the current slot, so that the sequence keeps real time.
		next := k + 1
		if now := int(time.Since(start) / period); now > next {
			if end >= 0 {
				now = min(now, end)
			}
			skipped.Add(uint64(now - next))
			next = now
		}
		k = next
	}
}
