package rtsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/codec"
	"github.com/edgedepth/edgedepth/camera/rtspserve"
)

func TestMain(m *testing.M) {
	codec.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "camera/rtsp: goroutines leaked: %v\n", err)
			code = 1
		}
		if n := codec.Live(); n != 0 {
			fmt.Fprintf(os.Stderr, "camera/rtsp: %d encoders/decoders not closed\n", n)
			code = 1
		}
	}
	os.Exit(code)
}

// checkLeaks registers, first, a cleanup that runs after every other cleanup of the test
// (servers and cameras stopped) and fails the test if it left goroutines behind.
func checkLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// The test scene: a pattern that moves a few pixels a pair, with the pair's sequence
// number written as a row of black and white 16x16 cells along the top, so whatever a
// client decodes can be matched to what was sent.
const (
	sceneW, sceneH = 320, 240
	cell           = 16
	seqBits        = 12
	scenePeriod    = time.Second / 30
)

func renderScene(seq uint64, eye int) camera.Image {
	img := camera.NewImage(sceneW, sceneH)
	shift := float64(seq*4) + float64(eye*10)
	for y := range sceneH {
		for x := range sceneW {
			fx, fy := float64(x)+shift, float64(y)
			v := 128 + 70*math.Sin(fx/11)*math.Cos(fy/17) + 30*math.Sin((fx-fy)/29)
			i := 3 * (y*sceneW + x)
			img.Pix[i] = byte(max(0, min(255, v)))
			img.Pix[i+1] = byte(max(0, min(255, 255-v)))
			img.Pix[i+2] = byte((x + y) / 3 % 256)
		}
	}
	for bit := range seqBits {
		v := byte(20)
		if seq>>bit&1 == 1 {
			v = 235
		}
		for y := range cell {
			for x := bit * cell; x < (bit+1)*cell; x++ {
				i := 3 * (y*sceneW + x)
				img.Pix[i], img.Pix[i+1], img.Pix[i+2] = v, v, v
			}
		}
	}
	return img
}

func readSceneSeq(img camera.Image) uint64 {
	var seq uint64
	for bit := range seqBits {
		sum := 0
		for y := 4; y < cell-4; y++ {
			for x := bit*cell + 4; x < (bit+1)*cell-4; x++ {
				i := 3 * (y*img.Width + x)
				sum += int(img.Pix[i]) + int(img.Pix[i+1]) + int(img.Pix[i+2])
			}
		}
		if sum/(3*8*8) > 128 {
			seq |= 1 << bit
		}
	}
	return seq
}

func psnr(a, b camera.Image) float64 {
	if a.Width != b.Width || a.Height != b.Height {
		return 0
	}
	var se float64
	for i := range a.Pix {
		d := float64(a.Pix[i]) - float64(b.Pix[i])
		se += d * d
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255*float64(len(a.Pix))/se)
}

// sceneSource is a camera.Source of the test scene at 30 pairs a second, captured at
// t0 + seq/30 s. After stallAfter pairs (if > 0) it stops emitting, as a camera that
// hangs without closing its connection.
type sceneSource struct {
	t0         time.Time
	stallAfter uint64
}

func (s *sceneSource) Name() string { return "test scene" }

func (s *sceneSource) Run(ctx context.Context, emit func(camera.StereoFrame)) error {
	tick := time.NewTicker(scenePeriod)
	defer tick.Stop()
	for seq := uint64(0); ; seq++ {
		if s.stallAfter > 0 && seq >= s.stallAfter {
			<-ctx.Done()
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		emit(camera.StereoFrame{
			Seq: seq, CaptureTime: s.t0.Add(time.Duration(seq) * scenePeriod),
			Left: renderScene(seq, 0), Right: renderScene(seq, 1),
		})
	}
}

// server is an rtspserve.Server whose Run goroutine the test owns.
type server struct {
	*rtspserve.Server
	src    *sceneSource
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// startServer serves the scene with cfg (on 127.0.0.1:0 unless cfg.Addr is set) until
// stop is called or the test ends.
func startServer(t *testing.T, cfg rtspserve.Config, src *sceneSource) *server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if src == nil {
		src = &sceneSource{t0: time.Now()}
	}
	s, err := rtspserve.New(cfg, src, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs := &server{Server: s, src: src, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rs.done)
		rs.err = s.Run(ctx)
	}()
	t.Cleanup(rs.stop)
	select {
	case <-s.Ready():
	case <-rs.done:
		t.Fatalf("server ended before it was ready: %v", rs.err)
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready after 30 s")
	}
	return rs
}

func (s *server) stop() {
	s.cancel()
	<-s.done
}

// runningCamera is a Camera whose Run goroutine the test owns; frames arrive on a channel.
type runningCamera struct {
	*Camera
	frames chan camera.Frame
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func startCamera(t *testing.T, cfg Config) *runningCamera {
	t.Helper()
	cam, err := New("left", cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rc := &runningCamera{Camera: cam, frames: make(chan camera.Frame, 1000)}
	rc.run(t)
	return rc
}

// run starts (or restarts) Run.
func (rc *runningCamera) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rc.cancel, rc.done = cancel, make(chan struct{})
	done := rc.done
	go func() {
		defer close(done)
		rc.err = rc.Run(ctx, func(f camera.Frame) {
			select {
			case rc.frames <- f:
			default: // a test that stopped reading does not block the camera
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// next returns the next frame or fails the test after timeout.
func (rc *runningCamera) next(t *testing.T, timeout time.Duration) camera.Frame {
	t.Helper()
	select {
	case f := <-rc.frames:
		return f
	case <-rc.done:
		t.Fatalf("Run returned before a frame: %v", rc.err)
	case <-time.After(timeout):
		t.Fatalf("no frame within %v; stats %+v", timeout, rc.Stats())
	}
	return camera.Frame{}
}

// waitErr waits for Run to return by itself and returns its error.
func (rc *runningCamera) waitErr(t *testing.T, timeout time.Duration) (error, time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case <-rc.done:
		return rc.err, time.Since(start)
	case <-time.After(timeout):
		t.Fatalf("Run still running after %v", timeout)
	}
	return nil, 0
}

func TestStreamFromRTSPServe(t *testing.T) {
	tests := []struct {
		name       string
		codec      string
		served     []string // transports the server offers
		transport  string   // the client's
		want       string   // transport in use
		minPSNR    float64
		fallbackTO time.Duration
	}{
		{"h264 tcp", rtspserve.CodecH264, nil, TransportTCP, TransportTCP, 30, 0},
		{"h264 udp", rtspserve.CodecH264, nil, TransportUDP, TransportUDP, 30, 0},
		{"mjpeg tcp", rtspserve.CodecMJPEG, nil, TransportTCP, TransportTCP, 30, 0},
		{"mjpeg udp", rtspserve.CodecMJPEG, nil, TransportUDP, TransportUDP, 30, 0},
		{"h264 auto prefers udp", rtspserve.CodecH264, nil, TransportAuto, TransportUDP, 30, 0},
		{"h264 auto falls back to tcp", rtspserve.CodecH264, []string{"tcp"}, TransportAuto, TransportTCP, 30, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			srv := startServer(t, rtspserve.Config{Codec: tt.codec, Transports: tt.served, BitrateKbps: 2000}, nil)
			cam := startCamera(t, Config{URL: srv.URL("left"), Transport: tt.transport, ReadTimeout: 5 * time.Second})

			const n = 45 // 1.5 s of video
			var frames []camera.Frame
			for len(frames) < n {
				frames = append(frames, cam.next(t, 15*time.Second))
			}
			var last time.Time
			for i, f := range frames {
				if f.Image.Width != sceneW || f.Image.Height != sceneH {
					t.Fatalf("frame %d: %dx%d, want %dx%d", i, f.Image.Width, f.Image.Height, sceneW, sceneH)
				}
				if !f.CaptureTime.After(last) {
					t.Fatalf("frame %d: capture time %v not after %v", i, f.CaptureTime, last)
				}
				last = f.CaptureTime
				if f.Seq != uint64(i) {
					t.Fatalf("frame %d has Seq %d", i, f.Seq)
				}
				seq := readSceneSeq(f.Image)
				if p := psnr(renderScene(seq, 0), f.Image); p < tt.minPSNR {
					t.Errorf("frame %d (scene %d): PSNR %.1f dB, want >= %.0f", i, seq, p, tt.minPSNR)
				}
			}
			// The pictures are consecutive and their capture times follow the stream's
			// timestamps: the scene's period between neighbours.
			// Each picture's capture time follows the stream's timestamps and matches its
			// content: k periods after the previous one for a scene number k further on
			// (k > 1 where the server dropped pairs under load, or where the switch to NTP
			// time dropped a picture).
			for i := 1; i < n; i++ {
				ds := int64(readSceneSeq(frames[i].Image)) - int64(readSceneSeq(frames[i-1].Image))
				if ds < 1 {
					t.Fatalf("frames %d-%d: scene numbers do not grow (%d)", i-1, i, ds)
				}
				if frames[i].Clock != frames[i-1].Clock {
					continue // the switch to NTP time moves the clock by the network delay
				}
				d := frames[i].CaptureTime.Sub(frames[i-1].CaptureTime)
				if want := time.Duration(ds) * scenePeriod; d < want-time.Millisecond || d > want+time.Millisecond {
					t.Errorf("frames %d-%d: capture times %v apart for %d scene periods", i-1, i, d, ds)
				}
			}
			t.Logf("server stats %+v", srv.Stats())
			st := cam.Stats()
			t.Logf("stats: %+v", st)
			if st.Transport != tt.want {
				t.Errorf("transport %q, want %q", st.Transport, tt.want)
			}
			wantCodec := CodecH264
			if tt.codec == rtspserve.CodecMJPEG {
				wantCodec = CodecMJPEG
			}
			if st.Codec != wantCodec || st.Width != sceneW || st.Height != sceneH || st.Frames < n {
				t.Errorf("stats %+v: want codec %s, %dx%d, >= %d frames", st, wantCodec, sceneW, sceneH, n)
			}
			// Measured, so it shows what the server managed to encode on a loaded machine.
			if st.FPS <= 0 || st.FPS > 40 {
				t.Errorf("measured FPS %.1f, want up to 30", st.FPS)
			}
			if st.Corrupt != 0 || st.LostPackets != 0 {
				t.Errorf("corrupt %d, lost packets %d on loopback", st.Corrupt, st.LostPackets)
			}
		})
	}
}

// TestNTPClock checks that capture times switch to the server's RTCP time (rtspserve
// sends a sender report a second) and then equal the source's capture times, and that a
// camera clock far behind ours is not followed back in time.
func TestNTPClock(t *testing.T) {
	tests := []struct {
		name    string
		offset  time.Duration // of the camera's clock from ours
		wantNTP bool
	}{
		{"synchronised", 0, true},
		{"an hour behind", -time.Hour, false},
		{"an hour ahead", time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			src := &sceneSource{t0: time.Now().Add(tt.offset)}
			srv := startServer(t, rtspserve.Config{}, src)
			cam := startCamera(t, Config{URL: srv.URL("left"), Transport: TransportTCP})
			var last time.Time
			// Sender reports come every second: 90 frames (3 s) see at least two.
			for i := range 90 {
				f := cam.next(t, 15*time.Second)
				if !f.CaptureTime.After(last) {
					t.Fatalf("frame %d: capture time %v not after %v", i, f.CaptureTime, last)
				}
				last = f.CaptureTime
				if f.Clock != camera.ClockNTP {
					continue
				}
				if !tt.wantNTP {
					t.Fatalf("frame %d: NTP time %v an hour off was followed", i, f.CaptureTime)
				}
				seq := readSceneSeq(f.Image)
				want := src.t0.Add(time.Duration(seq) * scenePeriod)
				if d := f.CaptureTime.Sub(want); d < -time.Millisecond || d > time.Millisecond {
					t.Fatalf("frame %d (scene %d): NTP capture time %v, source captured it at %v (%v off)", i, seq, f.CaptureTime, want, d)
				}
				t.Logf("NTP time from frame %d on; stats %+v", i, cam.Stats())
				return
			}
			if tt.wantNTP {
				t.Fatalf("no NTP-timed frame in 90; stats %+v", cam.Stats())
			}
			if st := cam.Stats(); st.Clock != camera.ClockReceive {
				t.Errorf("stats clock %q, want %q", st.Clock, camera.ClockReceive)
			}
		})
	}
}

// TestServerStopsAndRestarts: Run returns an error naming the camera soon after the
// server goes away, and Run again works once a server is back on the same address.
func TestServerStopsAndRestarts(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, rtspserve.Config{}, nil)
	url := srv.URL("left")
	cam := startCamera(t, Config{URL: url, Transport: TransportTCP, ReadTimeout: time.Second})
	cam.next(t, 15*time.Second)

	srv.stop()
	err, took := cam.waitErr(t, 10*time.Second)
	if err == nil {
		t.Fatal("Run returned nil after the server stopped")
	}
	t.Logf("after %v: %v", took, err)
	if !strings.Contains(err.Error(), "camera left") || !strings.Contains(err.Error(), url) {
		t.Errorf("error %q does not name the camera and its URL", err)
	}
	if !errors.Is(err, ErrServerClosed) && !errors.Is(err, ErrReadTimeout) {
		t.Errorf("error %q is neither ErrServerClosed nor ErrReadTimeout", err)
	}

	// Nothing listens now: connection refused, quickly and clearly.
	cam.run(t)
	err, _ = cam.waitErr(t, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Run against a stopped server: %v, want connection refused", err)
	}

	startServer(t, rtspserve.Config{Addr: strings.TrimPrefix(strings.TrimSuffix(url, "/left"), "rtsp://")}, nil)
	for len(cam.frames) > 0 {
		<-cam.frames
	}
	cam.run(t)
	cam.next(t, 15*time.Second)
	if st := cam.Stats(); st.Reconnects != 1 {
		t.Errorf("Reconnects = %d, want 1", st.Reconnects)
	}
}

// TestReadTimeout: a server that keeps the session open but sends nothing.
func TestReadTimeout(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, rtspserve.Config{}, &sceneSource{t0: time.Now(), stallAfter: 20})
	cam := startCamera(t, Config{URL: srv.URL("left"), Transport: TransportTCP, ReadTimeout: 700 * time.Millisecond})
	err, took := cam.waitErr(t, 15*time.Second)
	t.Logf("after %v: %v", took, err)
	if !errors.Is(err, ErrReadTimeout) {
		t.Fatalf("Run: %v, want ErrReadTimeout", err)
	}
}
