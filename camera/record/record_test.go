package record

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgedepth/edgedepth/camera"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

// pair k of a fake 10 fps rig: Seq k (the source's numbering, which the recording
// replaces), captured k·100 ms after t0.
func pair(k int) camera.StereoFrame {
	return camera.StereoFrame{Seq: uint64(1000 + k), CaptureTime: t0.Add(time.Duration(k) * 100 * time.Millisecond)}
}

// scriptSource runs script on Run's goroutine, then waits for ctx unless end is set.
type scriptSource struct {
	script func(ctx context.Context, emit func(camera.StereoFrame))
	end    bool  // return after the script instead of waiting for ctx
	err    error // returned after the script (implies end)
}

func (s *scriptSource) Name() string { return "script" }

func (s *scriptSource) Run(ctx context.Context, emit func(camera.StereoFrame)) error {
	s.script(ctx, emit)
	if s.end || s.err != nil {
		return s.err
	}
	<-ctx.Done()
	return nil
}

// emitN emits pairs from..to-1.
func emitN(from, to int) func(context.Context, func(camera.StereoFrame)) {
	return func(_ context.Context, emit func(camera.StereoFrame)) {
		for k := from; k < to; k++ {
			emit(pair(k))
		}
	}
}

// fakeWriter records what it is given. While gate is non-nil, each WriteFrame first
// announces itself on entered and then waits for gate to be closed: a disk that has
// stalled. failAt makes that frame's write fail.
type fakeWriter struct {
	mu      sync.Mutex
	got     []camera.StereoFrame
	entered chan uint64
	gate    chan struct{}
	failAt  int
}

func (w *fakeWriter) WriteFrame(f camera.StereoFrame) error {
	if w.gate != nil {
		select {
		case w.entered <- f.Seq:
		default:
		}
		<-w.gate
	}
	if w.failAt > 0 && int(f.Seq) == w.failAt {
		return errors.New("disk full")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, f)
	return nil
}

// check verifies that the writer got pairs numbered 0..n-1, with the capture times of
// the source's pairs ks.
func (w *fakeWriter) check(t *testing.T, ks ...int) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.got) != len(ks) {
		t.Fatalf("writer got %d pairs, want %d", len(w.got), len(ks))
	}
	for i, f := range w.got {
		if f.Seq != uint64(i) || !f.CaptureTime.Equal(pair(ks[i]).CaptureTime) {
			t.Fatalf("written pair %d: Seq %d, captured %s; want Seq %d, the source's pair %d (%s)",
				i, f.Seq, f.CaptureTime.Sub(t0), i, ks[i], pair(ks[i]).CaptureTime.Sub(t0))
		}
	}
}

func seq(from, to int) []int {
	var s []int
	for k := from; k < to; k++ {
		s = append(s, k)
	}
	return s
}

func TestRecordFrames(t *testing.T) {
	w := &fakeWriter{}
	st, err := Record(context.Background(), &scriptSource{script: emitN(0, 100)}, w, Options{Frames: 10, QueueLen: 200})
	if err != nil {
		t.Fatal(err)
	}
	w.check(t, seq(0, 10)...)
	if st.Stopped != StopFrames || st.Written != 10 || st.Dropped != 0 || st.Received < 10 {
		t.Fatalf("stats %+v, want stopped by frames after 10 written, none dropped", st)
	}
	if st.Period != 100*time.Millisecond || !st.FirstCapture.Equal(t0) || !st.LastCapture.Equal(pair(9).CaptureTime) {
		t.Fatalf("period %s, first %s, last %s; want 100ms, 0s, 900ms", st.Period, st.FirstCapture.Sub(t0), st.LastCapture.Sub(t0))
	}
}

// TestRecordSlowDisk: while the writer is stuck on pair 0, the source goes on emitting;
// the queue keeps the newest QueueLen pairs, drops and counts the rest, and everything
// queued is written once the disk comes back and the source has ended.
func TestRecordSlowDisk(t *testing.T) {
	w := &fakeWriter{entered: make(chan uint64, 1), gate: make(chan struct{})}
	src := &scriptSource{end: true, script: func(ctx context.Context, emit func(camera.StereoFrame)) {
		emit(pair(0))
		<-w.entered // the writer holds pair 0 and is stuck
		for k := 1; k < 50; k++ {
			emit(pair(k))
		}
		close(w.gate)
	}}
	st, err := Record(context.Background(), src, w, Options{QueueLen: 4})
	if err != nil {
		t.Fatal(err)
	}
	w.check(t, 0, 46, 47, 48, 49)
	if st.Stopped != StopSourceEnded || st.Received != 50 || st.Written != 5 || st.Dropped != 45 {
		t.Fatalf("stats %+v, want 50 received, 5 written, 45 dropped, source ended", st)
	}
	// Pairs 0 and 46 are 4.6 s apart; the median interval is still the frame period.
	if st.Period != 100*time.Millisecond {
		t.Fatalf("period %s, want the 100 ms median", st.Period)
	}
}

// TestRecordCancel: Ctrl-C ends the recording without an error, and the pairs already
// queued are still written.
func TestRecordCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := &fakeWriter{entered: make(chan uint64, 1), gate: make(chan struct{})}
	src := &scriptSource{script: func(_ context.Context, emit func(camera.StereoFrame)) {
		emit(pair(0))
		<-w.entered
		for k := 1; k < 6; k++ {
			emit(pair(k))
		}
		cancel()
		emit(pair(6)) // in flight when the context ended: not recorded
		close(w.gate)
	}}
	st, err := Record(ctx, src, w, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.check(t, seq(0, 6)...)
	if st.Stopped != StopCancelled || st.Written != 6 || st.Received != 6 {
		t.Fatalf("stats %+v, want cancelled with 6 written", st)
	}
}

// TestRecordDuration: a source that goes quiet still ends, DurationGrace after the
// duration.
func TestRecordDuration(t *testing.T) {
	w := &fakeWriter{}
	start := time.Now()
	st, err := Record(context.Background(), &scriptSource{script: emitN(0, 1)}, w, Options{Duration: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.check(t, 0)
	if min := 50*time.Millisecond + DurationGrace; st.Stopped != StopDuration || st.Elapsed < min || time.Since(start) < min {
		t.Fatalf("stats %+v, want stopped by duration after at least %s", st, min)
	}
}

// TestRecordDurationByCapture: the duration is a span of capture times, so a source
// that delivers faster than real time (a backlog) still records Duration × rate pairs,
// and the first pair beyond the span ends the recording at once.
func TestRecordDurationByCapture(t *testing.T) {
	w := &fakeWriter{}
	st, err := Record(context.Background(), &scriptSource{script: emitN(0, 10)}, w, Options{Duration: 450 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.check(t, 0, 1, 2, 3, 4)
	if st.Stopped != StopDuration || st.Received != 5 || st.Elapsed >= 450*time.Millisecond {
		t.Fatalf("stats %+v, want 5 pairs, stopped by the sixth before the timer", st)
	}
}

// TestRecordDurationLatePair: a pair that arrives after the duration is not recorded,
// even before the timer has ended the source.
func TestRecordDurationLatePair(t *testing.T) {
	w := &fakeWriter{}
	src := &scriptSource{end: true, script: func(ctx context.Context, emit func(camera.StereoFrame)) {
		emit(pair(0))
		<-ctx.Done() // the timer fired
		emit(pair(1))
	}}
	st, err := Record(context.Background(), src, w, Options{Duration: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.check(t, 0)
	if st.Stopped != StopDuration || st.Received != 1 {
		t.Fatalf("stats %+v, want 1 received, stopped by duration", st)
	}
}

func TestRecordWriteError(t *testing.T) {
	w := &fakeWriter{failAt: 3}
	st, err := Record(context.Background(), &scriptSource{script: emitN(0, 10)}, w, Options{QueueLen: 20})
	if err == nil || !strings.Contains(err.Error(), "write pair 3: disk full") {
		t.Fatalf("err = %v, want the failed write named", err)
	}
	w.check(t, 0, 1, 2)
	if st.Stopped != StopFailed || st.Written != 3 {
		t.Fatalf("stats %+v, want failed after 3 written", st)
	}
}

func TestRecordSourceError(t *testing.T) {
	boom := errors.New("boom")
	w := &fakeWriter{}
	st, err := Record(context.Background(), &scriptSource{script: emitN(0, 2), err: boom}, w, Options{})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "source script") {
		t.Fatalf("err = %v, want the source's error, named", err)
	}
	w.check(t, 0, 1) // what came before the failure is kept
	if st.Stopped != StopFailed {
		t.Fatalf("stopped %q, want failed", st.Stopped)
	}
}

func TestRecordProgress(t *testing.T) {
	w := &fakeWriter{}
	got := make(chan Stats, 100)
	src := &scriptSource{script: func(ctx context.Context, emit func(camera.StereoFrame)) {
		emit(pair(0))
	}}
	ctx, cancel := context.WithCancel(context.Background())
	opts := Options{ProgressInterval: time.Millisecond, Progress: func(s Stats) {
		select {
		case got <- s:
		default:
		}
		if s.Written == 1 {
			cancel()
		}
	}}
	st, err := Record(ctx, src, w, opts)
	if err != nil || st.Stopped != StopCancelled {
		t.Fatalf("err = %v, stopped %q", err, st.Stopped)
	}
	var last Stats
	for len(got) > 0 {
		last = <-got
	}
	if last.Written != 1 || last.Started.IsZero() || last.Stopped != "" {
		t.Fatalf("last progress %+v, want 1 written, started, not stopped", last)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{{Frames: -1}, {Duration: -time.Second}, {QueueLen: -1}, {ProgressInterval: -1}} {
		if _, err := Record(context.Background(), &scriptSource{script: emitN(0, 0)}, &fakeWriter{}, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
