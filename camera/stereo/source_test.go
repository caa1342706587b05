package stereo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/health"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeCamera is a camera.MonoSource the test drives: every Run hands the test a fakeRun
// through runs, then delivers the frames the test sends, each acknowledged once emit has
// returned, until the test fails the run or ctx ends.
type fakeCamera struct {
	name string
	runs chan *fakeRun
}

type fakeRun struct {
	frames chan camera.Frame
	ack    chan struct{}
	fail   chan error
}

func newFakeCamera(name string) *fakeCamera {
	return &fakeCamera{name: name, runs: make(chan *fakeRun)}
}

func (c *fakeCamera) Name() string { return c.name }

func (c *fakeCamera) Run(ctx context.Context, emit func(camera.Frame)) error {
	r := &fakeRun{frames: make(chan camera.Frame), ack: make(chan struct{}), fail: make(chan error)}
	select {
	case c.runs <- r:
	case <-ctx.Done():
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-r.fail:
			return err
		case f := <-r.frames:
			emit(f)
			r.ack <- struct{}{}
		}
	}
}

const waitLimit = 10 * time.Second // a deadline for failure reports, never a synchronisation

func (c *fakeCamera) nextRun(t *testing.T) *fakeRun {
	t.Helper()
	select {
	case r := <-c.runs:
		return r
	case <-time.After(waitLimit):
		t.Fatalf("camera %s was not (re)started", c.name)
		return nil
	}
}

// send delivers a frame captured at ms milliseconds and waits until the Source has taken it.
func (r *fakeRun) send(t *testing.T, ms int, w, h int) {
	t.Helper()
	f := camera.Frame{CaptureTime: epoch.Add(time.Duration(ms) * time.Millisecond), Clock: camera.ClockNTP, Image: camera.NewImage(w, h)}
	select {
	case r.frames <- f:
	case <-time.After(waitLimit):
		t.Fatal("camera run is not taking frames")
	}
	<-r.ack
}

// warmUp brings both cameras up: a camera's frames are discarded until the other has
// delivered its first, so the first left frame never pairs.
func warmUp(t *testing.T, l, r *fakeRun) {
	t.Helper()
	l.send(t, -1000, 4, 2)
	r.send(t, -1000, 4, 2)
}

func nextPair(t *testing.T, out <-chan camera.StereoFrame) camera.StereoFrame {
	t.Helper()
	select {
	case sf := <-out:
		return sf
	case <-time.After(waitLimit):
		t.Fatal("no stereo pair")
		return camera.StereoFrame{}
	}
}

// runSource starts src and returns the pairs channel and a stop function that cancels
// it and checks that Run returned nil.
func runSource(t *testing.T, src *Source) (<-chan camera.StereoFrame, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan camera.StereoFrame, 100)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, func(sf camera.StereoFrame) { out <- sf }) }()
	return out, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v on cancel, want nil", err)
		}
	}
}

var testK = camera.Intrinsics{Fx: 100, Fy: 100, Cx: 2, Cy: 1, Width: 4, Height: 2}

func newTestSource(l, r camera.MonoSource, h *health.Tracker) *Source {
	return &Source{
		Left: l, Right: r, Intrinsics: testK, BaselineM: 0.12, Health: h,
		Config:     Config{FramePeriod: 40 * time.Millisecond},
		restartMin: time.Millisecond, restartMax: 4 * time.Millisecond,
	}
}

func TestSourcePairs(t *testing.T) {
	l, r := newFakeCamera("rtsp://cam1/stream"), newFakeCamera("rtsp://cam2/stream")
	src := newTestSource(l, r, nil)
	out, stop := runSource(t, src)
	defer stop()
	lr, rr := l.nextRun(t), r.nextRun(t)
	warmUp(t, lr, rr)
	for i := range 5 {
		lr.send(t, 40*i, 4, 2)
		rr.send(t, 40*i, 4, 2) // equal times pair at once (no need to wait for a closer frame)
		sf := nextPair(t, out)
		if sf.Seq != uint64(i) || !sf.CaptureTime.Equal(epoch.Add(time.Duration(40*i)*time.Millisecond)) {
			t.Fatalf("pair %d: Seq %d at %v", i, sf.Seq, sf.CaptureTime)
		}
		if sf.Intrinsics != testK || sf.BaselineM != 0.12 || sf.Left.Width != 4 {
			t.Fatalf("pair %d lacks the configured geometry: %+v %g", i, sf.Intrinsics, sf.BaselineM)
		}
	}
	if st := src.Stats(); st.Emitted != 5 || st.Pairing.Pairs != 5 || !st.Left.Up || st.Left.Name != "rtsp://cam1/stream" {
		t.Errorf("stats %+v", st)
	}
}

func TestSourceCameraFailsAndRecovers(t *testing.T) {
	var h health.Tracker
	l, r := newFakeCamera("rtsp://cam1/stream"), newFakeCamera("rtsp://cam2/stream")
	src := newTestSource(l, r, &h)
	out, stop := runSource(t, src)
	defer stop()
	lr, rr := l.nextRun(t), r.nextRun(t)
	warmUp(t, lr, rr)
	lr.send(t, 0, 4, 2)
	rr.send(t, 0, 4, 2)
	nextPair(t, out)
	rr.send(t, 400, 4, 2) // buffered on the right, waiting for a partner

	lr.fail <- errors.New("no packets for 5s")
	lr = l.nextRun(t) // the warning is set before the retry
	w := h.Warnings()
	if len(w) != 1 || w[0].Component != HealthLeft || !strings.HasPrefix(w[0].Message, "camera left (rtsp://cam1/stream): no packets for 5s; retrying in ") {
		t.Fatalf("warnings while the left camera is down: %+v", w)
	}
	rr.send(t, 440, 4, 2) // the left camera is restarting but has no frame yet: discarded
	if st := src.Stats(); st.Right.DroppedPartnerDown != 1 || st.Left.Restarts != 1 || st.Left.LastError != "no packets for 5s" {
		t.Fatalf("stats while down: %+v", st)
	}

	// Back: the stale right frame at 400 must not pair with the left one at 400.
	lr.send(t, 400, 4, 2)
	if !h.OK() {
		t.Fatalf("warning not cleared by the first frame back: %+v", h.Warnings())
	}
	rr.send(t, 480, 4, 2)
	lr.send(t, 480, 4, 2)
	sf := nextPair(t, out)
	if want := epoch.Add(480 * time.Millisecond); !sf.CaptureTime.Equal(want) {
		t.Fatalf("first pair after the outage at %v, want %v (no pair across the outage)", sf.CaptureTime, want)
	}
}

// failingCamera never starts; each attempt is announced on attempts.
type failingCamera struct{ attempts chan struct{} }

func (failingCamera) Name() string { return "rtsp://cam1/stream" }
func (c failingCamera) Run(ctx context.Context, _ func(camera.Frame)) error {
	select {
	case c.attempts <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	return fmt.Errorf("dial tcp 10.0.0.5:554: connection refused")
}

func TestSourceCameraNeverStarts(t *testing.T) {
	var h health.Tracker
	l := failingCamera{attempts: make(chan struct{})}
	r := newFakeCamera("rtsp://cam2/stream")
	src := newTestSource(l, r, &h)
	_, stop := runSource(t, src)
	defer stop()
	r.nextRun(t)
	for range 4 {
		select {
		case <-l.attempts:
		case <-time.After(waitLimit):
			t.Fatal("left camera not retried")
		}
	}
	w := h.Warnings()
	if len(w) != 1 || !strings.Contains(w[0].Message, "camera left (rtsp://cam1/stream): dial tcp 10.0.0.5:554: connection refused; retrying in") {
		t.Fatalf("warnings: %+v", w)
	}
	if st := src.Stats(); st.Left.Restarts < 3 || st.Left.Up {
		t.Errorf("left stats %+v", st.Left)
	}
}

// A camera that stays connected but sends nothing is restarted by the watchdog.
func TestSourceStalledCameraRestarted(t *testing.T) {
	var h health.Tracker
	l, r := newFakeCamera("left-cam"), newFakeCamera("right-cam")
	src := newTestSource(l, r, &h)
	src.Config.StallTimeout = 100 * time.Millisecond
	_, stop := runSource(t, src)
	defer stop()
	l.nextRun(t)
	rr := r.nextRun(t)
	_ = rr
	l.nextRun(t)
	found := false
	for _, w := range h.Warnings() {
		found = found || (w.Component == HealthLeft && strings.Contains(w.Message, "camera left (left-cam): no frames for 100ms"))
	}
	if !found {
		t.Fatalf("warnings: %+v", h.Warnings())
	}
}

// sizeRectifier accepts only 4x2 images and records the health warnings it sees.
type sizeRectifier struct {
	h    *health.Tracker
	seen chan []health.Warning
}

func (r sizeRectifier) Rectify(l, rt camera.Image) (camera.Image, camera.Image, error) {
	r.seen <- r.h.Warnings()
	if l.Width != 4 || l.Height != 2 {
		return camera.Image{}, camera.Image{}, fmt.Errorf("calib: image %dx%d, calibrated for 4x2", l.Width, l.Height)
	}
	return l, rt, nil
}
func (sizeRectifier) Intrinsics() camera.Intrinsics { return testK }
func (sizeRectifier) BaselineM() float64            { return 0.2 }

func TestSourceSizeChangeRectifyError(t *testing.T) {
	var h health.Tracker
	l, r := newFakeCamera("left-cam"), newFakeCamera("right-cam")
	rect := sizeRectifier{h: &h, seen: make(chan []health.Warning, 10)}
	src := newTestSource(l, r, &h)
	src.Rectifier = rect
	out, stop := runSource(t, src)
	defer stop()
	lr, rr := l.nextRun(t), r.nextRun(t)
	warmUp(t, lr, rr)
	lr.send(t, 0, 4, 2)
	rr.send(t, 0, 4, 2)
	if sf := nextPair(t, out); sf.BaselineM != 0.2 {
		t.Fatalf("baseline %g, want the rectifier's 0.2", sf.BaselineM)
	}
	<-rect.seen
	lr.send(t, 40, 8, 4) // the cameras changed resolution
	rr.send(t, 40, 8, 4)
	<-rect.seen
	lr.send(t, 80, 4, 2)
	rr.send(t, 80, 4, 2)
	if w := <-rect.seen; len(w) != 1 || w[0].Component != HealthRectify || !strings.Contains(w[0].Message, "calibrated for 4x2") {
		t.Fatalf("warnings after the bad pair: %+v", w)
	}
	if sf := nextPair(t, out); sf.Seq != 2 {
		t.Fatalf("pair after the error has Seq %d, want 2 (the gap shows the dropped pair)", sf.Seq)
	}
	if st := src.Stats(); st.RectifyErrors != 1 || st.Emitted != 2 {
		t.Errorf("rectify errors %d, emitted %d: want 1, 2", st.RectifyErrors, st.Emitted)
	}
	if !h.OK() {
		t.Errorf("rectify warning not cleared by a good pair: %+v", h.Warnings())
	}
}

func TestSourceSideBySide(t *testing.T) {
	cam := newFakeCamera("rtsp://sbs/stream")
	src := &Source{SideBySide: cam, Intrinsics: testK, BaselineM: 0.06, restartMin: time.Millisecond}
	out, stop := runSource(t, src)
	defer stop()
	run := cam.nextRun(t)
	run.send(t, 0, 8, 2)
	run.fail <- errors.New("eof")
	run = cam.nextRun(t)
	run.send(t, 40, 8, 2)
	for i := range 2 {
		sf := nextPair(t, out)
		if sf.Seq != uint64(i) || sf.Left.Width != 4 || sf.Right.Width != 4 || sf.Intrinsics != testK {
			t.Fatalf("pair %d: %+v", i, sf)
		}
	}
	if st := src.Stats(); st.Pairing.Pairs != 2 || st.Left.Restarts != 1 || !st.SideBySide {
		t.Errorf("stats %+v", st)
	}
}

func TestSourceMisconfigured(t *testing.T) {
	cam := newFakeCamera("c")
	tests := []struct {
		name string
		src  *Source
		want string
	}{
		{"no cameras", &Source{}, "needs Left and Right"},
		{"both kinds", &Source{Left: cam, Right: cam, SideBySide: cam}, "needs Left and Right"},
		{"no geometry", &Source{Left: cam, Right: cam}, "must be rectified"},
		{"bad config", &Source{Left: cam, Right: cam, Intrinsics: testK, BaselineM: 1, Config: Config{BufferFrames: 1}}, "buffer_frames"},
	}
	for _, tc := range tests {
		if err := tc.src.Run(context.Background(), func(camera.StereoFrame) {}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}
