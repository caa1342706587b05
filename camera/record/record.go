// Package record saves what a live stereo source delivers, pair by pair, to a Writer —
// in practice a sim.SequenceWriter, so that a recording of real cameras is a sequence in
// the on-disk format that the simulator, `eval` and `train` share.
//
// # Lifecycle
//
// Record runs the source until the recording is over: Options.Frames pairs written,
// Options.Duration elapsed since the first pair arrived, the source ended, a write
// failed, or ctx was cancelled (the operator's Ctrl-C: a clean end, not an error). It
// returns once every goroutine it started has returned and every pair it accepted has
// been written or counted as dropped; the caller then finalises the sequence (Close).
//
// # Concurrency
//
// The source's emit only stamps and enqueues: pairs wait in a bounded drop-oldest
// queue (camera.Ring) for one writer goroutine that encodes and writes them, numbering
// them 0, 1, 2, ... in the order written. A disk slower than the cameras therefore costs
// dropped pairs (Stats.Dropped), never a stalled camera or a pairing buffer overflow.
// When the source stops, the pairs still queued are written before Record returns.
// Options.Progress is called from a goroutine of Record's own.
package record

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

// Writer takes the pairs of a recording, numbered from 0 by their Seq.
// *sim.SequenceWriter implements it.
type Writer interface {
	WriteFrame(camera.StereoFrame) error
}

// Defaults of Options.
const (
	DefaultQueueLen         = 16
	DefaultProgressInterval = time.Second
	// DurationGrace is how long after Duration (counted from the first pair's
	// arrival) the recording of a source that has gone quiet ends.
	DurationGrace = 250 * time.Millisecond
)

// Options bound and observe a recording. The zero value records until ctx ends.
type Options struct {
	// Frames ends the recording once this many pairs are written; 0: no limit.
	Frames int
	// Duration ends the recording at the first pair captured Duration or more after
	// the first pair (which is not recorded): Duration × frame rate pairs from a steady
	// source, whatever the time spent connecting to the cameras. A source that goes
	// quiet ends it DurationGrace later than that. 0: no limit.
	Duration time.Duration
	// QueueLen is how many pairs may wait for the writer; when the queue is full the
	// oldest is dropped and counted. Default DefaultQueueLen.
	QueueLen int
	// Progress, when set, receives a snapshot every ProgressInterval (default
	// DefaultProgressInterval) while recording. It must not block for long.
	Progress         func(Stats)
	ProgressInterval time.Duration
}

// Validate reports options that cannot describe a recording.
func (o Options) Validate() error {
	switch {
	case o.Frames < 0:
		return fmt.Errorf("record: frames = %d: must not be negative", o.Frames)
	case o.Duration < 0:
		return fmt.Errorf("record: duration = %s: must not be negative", o.Duration)
	case o.QueueLen < 0:
		return fmt.Errorf("record: queue length = %d: must not be negative", o.QueueLen)
	case o.ProgressInterval < 0:
		return fmt.Errorf("record: progress interval = %s: must not be negative", o.ProgressInterval)
	}
	return nil
}

// StopReason says why a recording ended.
type StopReason string

const (
	// StopFrames: Options.Frames pairs were written.
	StopFrames StopReason = "frames"
	// StopDuration: Options.Duration passed since the first pair.
	StopDuration StopReason = "duration"
	// StopCancelled: the caller's context ended (Ctrl-C).
	StopCancelled StopReason = "cancelled"
	// StopSourceEnded: the source returned by itself (a sequence played to its end).
	StopSourceEnded StopReason = "source ended"
	// StopFailed: the source or the writer failed; Record's error says how.
	StopFailed StopReason = "failed"
)

// Stats describe a recording, while it runs (Options.Progress) and once it is over.
type Stats struct {
	// Received counts the pairs the source emitted into the recording.
	Received uint64
	// Written counts the pairs written: the sequence's frames 0 .. Written-1.
	Written uint64
	// Dropped counts pairs dropped from the queue because the writer was behind.
	Dropped uint64
	// Queued is the number of pairs waiting for the writer now.
	Queued int
	// Started is when the first pair arrived (zero while waiting for it).
	Started time.Time
	// Elapsed is the time since Started (frozen when the recording ended).
	Elapsed time.Duration
	// FirstCapture and LastCapture are the capture times of the first and last pair
	// written.
	FirstCapture, LastCapture time.Time
	// Period is the median interval between the capture times of consecutive pairs
	// written: the source's frame period, insensitive to the odd lost pair. Set in the
	// final Stats only, and only with at least two pairs.
	Period time.Duration
	// Stopped says why the recording ended; empty while it runs.
	Stopped StopReason
}

// FPS is the rate at which pairs were written, per second of Elapsed.
func (s Stats) FPS() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Written) / s.Elapsed.Seconds()
}

// Internal causes of the recording's end, given to the source's context.
var (
	errFramesDone   = errors.New("record: frames recorded")
	errDurationDone = errors.New("record: duration recorded")
)

// recorder is the state Record shares between emit, the writer and progress.
type recorder struct {
	opts Options
	ring *camera.Ring
	ctx  context.Context // the source's; cancelled with the reason the recording ends
	stop context.CancelCauseFunc

	mu        sync.Mutex
	stats     Stats
	ended     time.Time       // when the recording stopped accepting pairs
	firstAt   time.Time       // capture time of the first pair, for Duration
	intervals []time.Duration // between consecutive written capture times
	timer     *time.Timer     // the Duration limit, armed by the first pair
}

// Record runs src and writes its pairs to w until the recording is over (see the
// package comment); w is not closed. It returns the final Stats and nil when the
// recording ended as asked (frames, duration, cancellation, the source's own end), or
// an error naming the source's or the writer's failure.
func Record(ctx context.Context, src camera.Source, w Writer, opts Options) (Stats, error) {
	if err := opts.Validate(); err != nil {
		return Stats{}, err
	}
	if opts.QueueLen == 0 {
		opts.QueueLen = DefaultQueueLen
	}
	if opts.ProgressInterval == 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	srcCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	r := &recorder{opts: opts, ring: camera.NewRing(opts.QueueLen), ctx: srcCtx, stop: stop}
	defer r.disarm()

	// popCtx ends once the source has returned: the writer then drains the queue.
	popCtx, sourceDone := context.WithCancel(context.WithoutCancel(ctx))
	defer sourceDone()
	writerErr := make(chan error, 1)
	go func() { writerErr <- r.write(popCtx, w) }()

	progressDone := make(chan struct{})
	var progress sync.WaitGroup
	if opts.Progress != nil {
		progress.Go(func() { r.report(progressDone) })
	}

	srcErr := src.Run(srcCtx, r.emit)
	r.mu.Lock()
	if r.ended.IsZero() {
		r.ended = time.Now()
	}
	r.mu.Unlock()
	sourceDone()
	wErr := <-writerErr
	close(progressDone)
	progress.Wait()

	st := r.final()
	cause := context.Cause(srcCtx)
	switch {
	case wErr != nil:
		st.Stopped = StopFailed
		return st, wErr
	case srcErr != nil:
		st.Stopped = StopFailed
		return st, fmt.Errorf("record: source %s: %w", src.Name(), srcErr)
	case errors.Is(cause, errFramesDone):
		st.Stopped = StopFrames
	case errors.Is(cause, errDurationDone):
		st.Stopped = StopDuration
	case srcCtx.Err() != nil:
		st.Stopped = StopCancelled
	default:
		st.Stopped = StopSourceEnded
	}
	return st, nil
}

// emit is the source's callback: it notes the first pair, applies the duration limit
// and queues the pair. It never blocks on the writer.
func (r *recorder) emit(f camera.StereoFrame) {
	if r.ctx.Err() != nil {
		return // over: a pair the source had in flight
	}
	now := time.Now()
	r.mu.Lock()
	if r.stats.Started.IsZero() {
		r.stats.Started, r.firstAt = now, f.CaptureTime
		if d := r.opts.Duration; d > 0 {
			// The capture times end the recording (below); the timer ends it when
			// the source has gone quiet.
			r.timer = time.AfterFunc(d+DurationGrace, func() { r.finish(errDurationDone) })
		}
	}
	if d := r.opts.Duration; d > 0 && f.CaptureTime.Sub(r.firstAt) >= d {
		r.mu.Unlock()
		r.finish(errDurationDone)
		return
	}
	r.stats.Received++
	r.mu.Unlock()
	r.ring.Push(f)
}

// finish ends the recording with cause (the first cause wins).
func (r *recorder) finish(cause error) {
	r.mu.Lock()
	if r.ended.IsZero() {
		r.ended = time.Now()
	}
	r.mu.Unlock()
	r.stop(cause)
}

// disarm stops the duration timer, so that nothing of the recording outlives Record.
func (r *recorder) disarm() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
	}
}

// write is the writer goroutine: it writes queued pairs until the source has returned
// (popCtx ends) and the queue is empty, the frame limit is reached, or a write fails.
func (r *recorder) write(popCtx context.Context, w Writer) error {
	for {
		// Pop hands out what is queued before it looks at popCtx: once the source has
		// returned, the pairs left in the queue are written, then the writer ends.
		f, err := r.ring.Pop(popCtx)
		if err != nil {
			return nil
		}
		done, err := r.writeOne(w, f)
		if err != nil {
			r.finish(err)
			return err
		}
		if done {
			r.finish(errFramesDone)
			return nil
		}
	}
}

// writeOne writes f as the next frame; done reports that the frame limit is reached.
func (r *recorder) writeOne(w Writer, f camera.StereoFrame) (done bool, err error) {
	r.mu.Lock()
	n := r.stats.Written
	r.mu.Unlock()
	f.Seq = n
	if err := w.WriteFrame(f); err != nil {
		return false, fmt.Errorf("record: write pair %d: %w", n, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n > 0 {
		r.intervals = append(r.intervals, f.CaptureTime.Sub(r.stats.LastCapture))
	} else {
		r.stats.FirstCapture = f.CaptureTime
	}
	r.stats.LastCapture = f.CaptureTime
	r.stats.Written++
	return r.opts.Frames > 0 && r.stats.Written >= uint64(r.opts.Frames), nil
}

// snapshot returns the current Stats.
func (r *recorder) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats
	st.Dropped = r.ring.Dropped()
	st.Queued = r.ring.Len()
	if !st.Started.IsZero() {
		end := r.ended
		if end.IsZero() {
			end = time.Now()
		}
		st.Elapsed = end.Sub(st.Started)
	}
	return st
}

// final is the snapshot at the end, with the median frame period.
func (r *recorder) final() Stats {
	st := r.snapshot()
	st.Queued = 0 // pairs left behind after the frame limit are not waiting for anything
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.intervals) > 0 {
		iv := slices.Clone(r.intervals)
		slices.Sort(iv)
		st.Period = iv[len(iv)/2]
	}
	return st
}

// report calls Options.Progress every ProgressInterval until done is closed.
func (r *recorder) report(done <-chan struct{}) {
	t := time.NewTicker(r.opts.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			r.opts.Progress(r.snapshot())
		}
	}
}
