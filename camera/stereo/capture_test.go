package stereo

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

// sendPix delivers a 4x2 frame captured at ms milliseconds whose first byte is v.
func (r *fakeRun) sendPix(t *testing.T, ms int, v byte) {
	t.Helper()
	im := camera.NewImage(4, 2)
	im.Pix[0] = v
	f := camera.Frame{CaptureTime: epoch.Add(time.Duration(ms) * time.Millisecond), Clock: camera.ClockNTP, Image: im}
	select {
	case r.frames <- f:
	case <-time.After(waitLimit):
		t.Fatal("camera run is not taking frames")
	}
	<-r.ack
}

// markRectifier "rectifies" by writing its id into the first byte of new images and
// reports id as its baseline, so that a frame shows which rectifier made it. With gate
// set, Rectify announces itself on entered and waits for gate.
type markRectifier struct {
	id      byte
	entered chan struct{}
	gate    chan struct{}
}

func (r *markRectifier) Rectify(l, rt camera.Image) (camera.Image, camera.Image, error) {
	if r.gate != nil {
		r.entered <- struct{}{}
		<-r.gate
	}
	ol, or := cloneImage(l), cloneImage(rt)
	ol.Pix[0], or.Pix[0] = r.id, r.id
	return ol, or, nil
}
func (r *markRectifier) Intrinsics() camera.Intrinsics {
	k := testK
	k.Fx = float64(r.id)
	return k
}
func (r *markRectifier) BaselineM() float64 { return float64(r.id) }

// waitCaptures waits until k CaptureRaw calls are registered with src.
func waitCaptures(t *testing.T, src *Source, k int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		src.mu.Lock()
		n := len(src.captures)
		src.mu.Unlock()
		if n == k {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d captures registered, want %d", n, k)
		}
		time.Sleep(time.Millisecond) // polling another goroutine's registration: nothing to wait on
	}
}

type captureResult struct {
	pairs []RawPair
	err   error
}

func startCapture(ctx context.Context, src *Source, n int, every time.Duration) <-chan captureResult {
	done := make(chan captureResult, 1)
	go func() {
		p, err := src.CaptureRaw(ctx, n, every)
		done <- captureResult{p, err}
	}()
	return done
}

func waitCapture(t *testing.T, done <-chan captureResult) captureResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(waitLimit):
		t.Fatal("CaptureRaw did not return")
		return captureResult{}
	}
}

func TestCaptureRawSpacedUnrectifiedAndPipelineUntouched(t *testing.T) {
	l, r := newFakeCamera("left-cam"), newFakeCamera("right-cam")
	src := newTestSource(l, r, nil)
	src.Rectifier = &markRectifier{id: 200}
	out, stop := runSource(t, src)
	defer stop()
	lr, rr := l.nextRun(t), r.nextRun(t)
	warmUp(t, lr, rr)

	done := startCapture(context.Background(), src, 3, 100*time.Millisecond)
	waitCaptures(t, src, 1)
	// Pairs every 40 ms: those at 0, 120 and 240 ms are at least 100 ms apart.
	for i := range 8 {
		lr.sendPix(t, 40*i, byte(i+1))
		rr.sendPix(t, 40*i, byte(i+1))
		sf := nextPair(t, out)
		if sf.Left.Pix[0] != 200 || sf.BaselineM != 200 {
			t.Fatalf("pair %d not rectified by the pipeline: first byte %d, baseline %g", i, sf.Left.Pix[0], sf.BaselineM)
		}
	}
	res := waitCapture(t, done)
	if res.err != nil {
		t.Fatal(res.err)
	}
	var gotMs []int64
	for _, p := range res.pairs {
		gotMs = append(gotMs, p.CaptureTime.Sub(epoch).Milliseconds())
		// Raw: the cameras' bytes, not the rectifier's mark.
		if want := byte(p.CaptureTime.Sub(epoch).Milliseconds()/40 + 1); p.Left.Pix[0] != want || p.Right.Pix[0] != want {
			t.Errorf("pair at %d ms: first bytes %d, %d, want the raw %d", gotMs[len(gotMs)-1], p.Left.Pix[0], p.Right.Pix[0], want)
		}
	}
	if len(gotMs) != 3 || gotMs[0] != 0 || gotMs[1] != 120 || gotMs[2] != 240 {
		t.Fatalf("captured pairs at %v ms, want [0 120 240]", gotMs)
	}
	if st := src.Stats(); st.Emitted != 8 {
		t.Errorf("emitted %d pairs, want all 8", st.Emitted)
	}
	waitCaptures(t, src, 0)
}

// The captured images are copies: the pipeline and the caller never share pixels.
func TestCaptureRawCopies(t *testing.T) {
	l, r := newFakeCamera("left-cam"), newFakeCamera("right-cam")
	src := newTestSource(l, r, nil)
	src.Rectifier = &passRectifier{}
	out, stop := runSource(t, src)
	defer stop()
	lr, rr := l.nextRun(t), r.nextRun(t)
	warmUp(t, lr, rr)
	done := startCapture(context.Background(), src, 1, 0)
	waitCaptures(t, src, 1)
	lr.sendPix(t, 0, 7)
	rr.sendPix(t, 0, 7)
	sf := nextPair(t, out)
	res := waitCapture(t, done)
	if res.err != nil || len(res.pairs) != 1 {
		t.Fatalf("capture: %d pairs, %v", len(res.pairs), res.err)
	}
	sf.Left.Pix[0] = 99 // the pipeline's (here unchanged) image
	if res.pairs[0].Left.Pix[0] != 7 {
		t.Fatalf("captured image shares pixels with the emitted one")
	}
}

// passRectifier hands the raw images through: the emitted frame shares the camera's
// buffer, the capture must not.
type passRectifier struct{}

func (passRectifier) Rectify(l, r camera.Image) (camera.Image, camera.Image, error) { return l, r, nil }
func (passRectifier) Intrinsics() camera.Intrinsics                                 { return testK }
func (passRectifier) BaselineM() float64                                            { return 0.1 }

func TestCaptureRawCameraDown(t *testing.T) {
	l := failingCamera{attempts: make(chan struct{}, 10000)} // never blocks: every attempt fails at once
	r := newFakeCamera("rtsp://cam2/stream")
	src := newTestSource(l, r, nil)
	src.Config.StallTimeout = 100 * time.Millisecond
	_, stop := runSource(t, src)
	defer stop()
	r.nextRun(t)
	<-l.attempts
	start := time.Now()
	res := waitCapture(t, startCapture(context.Background(), src, 2, 0))
	if !errors.Is(res.err, ErrNoPairs) || !strings.Contains(res.err.Error(), "camera left (rtsp://cam1/stream) is down: dial tcp 10.0.0.5:554: connection refused") {
		t.Fatalf("err %v, want ErrNoPairs naming the left camera and why", res.err)
	}
	if el := time.Since(start); el < minNoPairsWait || el > minNoPairsWait+2*time.Second {
		t.Errorf("gave up after %v, want about %v", el, minNoPairsWait)
	}
}

func TestCaptureRawContextEnds(t *testing.T) {
	l, r := newFakeCamera("left-cam"), newFakeCamera("right-cam")
	src := newTestSource(l, r, nil)
	out, stop := runSource(t, src)
	defer stop()
	lr, rr := l.nextRun(t), r.nextRun(t)
	warmUp(t, lr, rr)
	ctx, cancel := context.WithCancel(context.Background())
	done := startCapture(ctx, src, 5, 0)
	waitCaptures(t, src, 1)
	lr.sendPix(t, 0, 1)
	rr.sendPix(t, 0, 1)
	nextPair(t, out) // emitted after the copy was handed to the capture
	cancel()
	res := waitCapture(t, done)
	if !errors.Is(res.err, context.Canceled) || !strings.Contains(res.err.Error(), "1 of 5 raw pairs") || len(res.pairs) != 1 {
		t.Fatalf("err %v with %d pairs, want context.Canceled after 1 of 5", res.err, len(res.pairs))
	}
	waitCaptures(t, src, 0)
}

func TestCaptureRawNotRunningAndStopped(t *testing.T) {
	l, r := newFakeCamera("left-cam"), newFakeCamera("right-cam")
	src := newTestSource(l, r, nil)
	if _, err := src.CaptureRaw(context.Background(), 1, 0); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("before Run: %v, want ErrNotRunning", err)
	}
	if _, err := src.CaptureRaw(context.Background(), 0, 0); err == nil {
		t.Fatal("n 0 accepted")
	}
	_, stop := runSource(t, src)
	l.nextRun(t)
	r.nextRun(t)
	done := startCapture(context.Background(), src, 3, 0)
	waitCaptures(t, src, 1)
	stop()
	res := waitCapture(t, done)
	if res.err == nil || !strings.Contains(res.err.Error(), "source stopped after 0 of 3") {
		t.Fatalf("capture when Run returned: %v", res.err)
	}
	if _, err := src.CaptureRaw(context.Background(), 1, 0); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("after Run: %v, want ErrNotRunning", err)
	}
}

// SetRectifier while a pair is being rectified waits for it: that pair is wholly the
// old rectifier's (images, intrinsics, baseline), the next wholly the new one's.
func TestSetRectifierWhileRectifying(t *testing.T) {
	l, r := newFakeCamera("left-cam"), newFakeCamera("right-cam")
	src := newTestSource(l, r, nil)
	old := &markRectifier{id: 1, entered: make(chan struct{}), gate: make(chan struct{})}
	src.Rectifier = old
	out, stop := runSource(t, src)
	defer stop()
	lr, rr := l.nextRun(t), r.nextRun(t)
	warmUp(t, lr, rr)
	lr.sendPix(t, 0, 50)
	rr.sendPix(t, 0, 50)
	<-old.entered // the pair is in old's Rectify

	swapped := make(chan camera.Rectifier, 1)
	go func() { swapped <- src.SetRectifier(&markRectifier{id: 2}) }()
	select {
	case <-swapped:
		t.Fatal("SetRectifier returned while the old rectifier was still rectifying")
	case <-time.After(50 * time.Millisecond): // proving a negative: it must still be waiting
	}
	close(old.gate)
	select {
	case prev := <-swapped:
		if prev != old {
			t.Fatalf("SetRectifier returned %v, want the old rectifier", prev)
		}
	case <-time.After(waitLimit):
		t.Fatal("SetRectifier did not return once the pair was done")
	}
	sf := nextPair(t, out)
	if sf.Left.Pix[0] != 1 || sf.BaselineM != 1 || sf.Intrinsics.Fx != 1 {
		t.Fatalf("pair in flight during the swap: image %d, baseline %g, fx %g; want all the old rectifier's (1)", sf.Left.Pix[0], sf.BaselineM, sf.Intrinsics.Fx)
	}
	lr.sendPix(t, 40, 50)
	rr.sendPix(t, 40, 50)
	sf = nextPair(t, out)
	if sf.Left.Pix[0] != 2 || sf.BaselineM != 2 || sf.Intrinsics.Fx != 2 {
		t.Fatalf("pair after the swap: image %d, baseline %g, fx %g; want the new rectifier's (2)", sf.Left.Pix[0], sf.BaselineM, sf.Intrinsics.Fx)
	}
}

// Swapping rectifiers over and over while pairs flow (run with -race): every pair is
// consistent, made by one rectifier.
func TestSetRectifierConcurrent(t *testing.T) {
	l, r := newFakeCamera("left-cam"), newFakeCamera("right-cam")
	src := newTestSource(l, r, nil)
	src.Rectifier = &markRectifier{id: 1}
	out, stop := runSource(t, src)
	defer stop()
	lr, rr := l.nextRun(t), r.nextRun(t)
	warmUp(t, lr, rr)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			default:
			}
			src.SetRectifier(&markRectifier{id: byte(1 + i%200)})
		}
	})
	for i := range 50 {
		lr.sendPix(t, 40*i, 0)
		rr.sendPix(t, 40*i, 0)
		sf := nextPair(t, out)
		id := float64(sf.Left.Pix[0])
		if sf.Right.Pix[0] != sf.Left.Pix[0] || sf.BaselineM != id || sf.Intrinsics.Fx != id {
			t.Fatalf("pair %d mixes rectifiers: images %d/%d, baseline %g, fx %g", i, sf.Left.Pix[0], sf.Right.Pix[0], sf.BaselineM, sf.Intrinsics.Fx)
		}
	}
	close(quit)
	wg.Wait()
}
