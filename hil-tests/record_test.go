package hiltests

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/calib"
	"github.com/edgedepth/edgedepth/camera/codec"
	"github.com/edgedepth/edgedepth/camera/rtspserve"
	"github.com/edgedepth/edgedepth/camera/rtsptest"
	"github.com/edgedepth/edgedepth/camera/sim"
)

// Recording over RTSP: the simulated room served by our RTSP server (H.264), recorded by
// `edgedepth record` (a real process) as two RTSP cameras with the rig's calibration.
const (
	recW, recH = 320, 240
	recFPS     = 10
	recSeconds = 2.5
	// recBitrateKbps per eye: 1.3 bit per pixel per frame, what a good camera spends
	// on a textured scene, so that the comparison below measures the recording and not
	// a starved encoder.
	recBitrateKbps = 1000
	// minRecPSNR is the least PSNR (dB, over all bytes of RGB) of a recorded image of
	// frame 0 against the sim's rendering of the same world frame and eye, rectified
	// the same way. H.264 at this bitrate (4:2:0, QP 11–15) keeps the room within about
	// 39 dB. Measured on this room at 320x240 against the right rendering: the
	// neighbouring world frames (5 cm of rig motion on finely textured surfaces) score
	// about 24 dB (the test logs them), the same frame shifted by one pixel 26–29 dB, the
	// other eye or swapped colour channels about 20 dB. 30 dB rejects all of these and
	// leaves the encoder and decoder versions a few dB of room.
	minRecPSNR = 30.0
)

// seqTap remembers the world frame number (Seq) of every pair the sim emits, by capture
// time: the RTSP server carries capture times to the client (RTP timestamps, RTCP sender
// reports), so a recorded frame's time names the world frame it shows.
type seqTap struct {
	camera.Source
	mu  sync.Mutex
	seq map[int64]uint64 // CaptureTime.UnixNano() → Seq
}

func (s *seqTap) Run(ctx context.Context, emit func(camera.StereoFrame)) error {
	return s.Source.Run(ctx, func(f camera.StereoFrame) {
		s.mu.Lock()
		s.seq[f.CaptureTime.UnixNano()] = f.Seq
		s.mu.Unlock()
		emit(f)
	})
}

// nearest returns the world frame captured nearest to t and how far from t.
func (s *seqTap) nearest(t time.Time) (k uint64, off time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off = time.Duration(math.MaxInt64)
	for ns, seq := range s.seq {
		if d := time.Duration(t.UnixNano() - ns); d.Abs() < off.Abs() {
			k, off = seq, d
		}
	}
	return k, off
}

// psnr of two images of the same size, over every byte, in dB.
func psnr(a, b camera.Image) float64 {
	var se float64
	for i := range a.Pix {
		d := float64(a.Pix[i]) - float64(b.Pix[i])
		se += d * d
	}
	mse := se / float64(len(a.Pix))
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

func TestRecordOverRTSP(t *testing.T) {
	sc := sim.DefaultConfig()
	sc.Scene, sc.Width, sc.Height, sc.FPS = sim.SceneRoom, recW, recH, recFPS
	world, err := sim.NewWorld(sc)
	if err != nil {
		t.Fatal(err)
	}
	// libav's warnings to stderr, not libx264's banner and statistics; back to plain
	// stderr once the server (stopped by a cleanup registered later, so run earlier)
	// has closed its encoders.
	codec.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.Cleanup(func() { codec.SetLogger(nil) })
	tap := &seqTap{Source: sim.NewSource(world), seq: map[int64]uint64{}}
	srv := rtsptest.StartServer(t, rtspserve.Config{Codec: rtspserve.CodecH264, FPS: recFPS, BitrateKbps: recBitrateKbps}, tap)

	calPath := writeSimCalibration(t, world)
	cfg := filepath.Join(t.TempDir(), "record.yaml")
	yaml := fmt.Sprintf(`
data_dir: %s
source:
  kind: rtsp
  rtsp:
    left:
      url: %s
      transport: tcp
    right:
      url: %s
      transport: tcp
    calibration: [%s]
`, t.TempDir(), srv.URL("left"), srv.URL("right"), calPath)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "rec")
	code, log := runOnce(t, "record", "--config", cfg, "--out", out, "--duration", fmt.Sprintf("%gs", recSeconds))
	t.Logf("edgedepth record:\n%s", log)
	if code != 0 || !strings.Contains(log, "(--duration reached)") {
		t.Fatalf("edgedepth record exit %d, want 0 and a recording stopped by its duration", code)
	}
	// Progress went to stderr once a second: frames, fps, drops, unpaired pictures.
	if !strings.Contains(log, "frames written") || !strings.Contains(log, "dropped") || !strings.Contains(log, "unpaired") {
		t.Errorf("no progress lines with frames, drops and unpaired pictures in the output")
	}

	seq, err := sim.OpenSequence(out)
	if err != nil {
		t.Fatal(err)
	}
	// Frame count: the duration is a span of capture times, so a steady 10 fps source
	// gives 25 frames (26 when the sim's timer jitter puts frame 25 a hair early).
	// Frames lost on a loaded two-core machine (the sim skipping, pairs dropped) may
	// cost some, not most.
	want := int(recSeconds * recFPS)
	if n := seq.Len(); n < want*6/10 || n > want+1 {
		t.Errorf("%d frames recorded in %g s at %d fps, want %d (at least %d)", n, recSeconds, recFPS, want, want*6/10)
	}

	// calib.yaml: the rectified intrinsics and baseline of the calibration, which for
	// the sim's ideal rig are the world's own.
	cal, err := calib.Load(calPath)
	if err != nil {
		t.Fatal(err)
	}
	rect, err := calib.NewRectifier(cal, cal.Size, calib.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rect.Close()
	got, rk, wk := seq.Calib(), rect.Intrinsics(), world.Intrinsics()
	near := func(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }
	if got.Width != rk.Width || got.Height != rk.Height || !near(got.Fx, rk.Fx, 1e-9) || !near(got.Fy, rk.Fy, 1e-9) ||
		!near(got.Cx, rk.Cx, 1e-9) || !near(got.Cy, rk.Cy, 1e-9) || !near(got.BaselineM, rect.BaselineM(), 1e-9) {
		t.Errorf("calib.yaml %+v; the rectifier says %+v, baseline %g m", got, rk, rect.BaselineM())
	}
	if got.Width != wk.Width || got.Height != wk.Height || !near(got.Fx, wk.Fx, 1e-3) || !near(got.Fy, wk.Fy, 1e-3) ||
		!near(got.Cx, wk.Cx, 1e-3) || !near(got.Cy, wk.Cy, 1e-3) || !near(got.BaselineM, world.BaselineM(), 1e-6) {
		t.Errorf("calib.yaml %+v; the served world has %+v, baseline %g m", got, wk, world.BaselineM())
	}
	if !near(got.FPS, recFPS, 0.05) || got.Scene != "" || got.Seed != nil {
		t.Errorf("calib.yaml fps %g (want the measured %d), scene %q, seed %v (want none for cameras)", got.FPS, recFPS, got.Scene, got.Seed)
	}
	if seq.HasTruth() {
		t.Errorf("a recording of cameras has ground truth")
	}

	// Capture times: strictly increasing, a frame period apart (or a few when a pair
	// was lost).
	var prev time.Time
	frames := make([]camera.StereoFrame, seq.Len())
	for i := range frames {
		if frames[i], err = seq.Frame(i); err != nil {
			t.Fatal(err)
		}
		at := frames[i].CaptureTime
		if i > 0 && !at.After(prev) {
			t.Fatalf("frame %d captured at %s, not after frame %d (%s)", i, at.Format(time.RFC3339Nano), i-1, prev.Format(time.RFC3339Nano))
		}
		if frames[i].Truth != nil {
			t.Fatalf("frame %d has ground truth", i)
		}
		prev = at
	}

	// Frame 0 is the world frame captured at its time (the RTSP clock carries capture
	// times exactly, to the 90 kHz tick), and its left image is that frame's rendering
	// up to the H.264 error.
	k, off := tap.nearest(frames[0].CaptureTime)
	if off.Abs() > time.Millisecond {
		t.Fatalf("recorded frame 0 is %s from the nearest served frame (%d): capture times did not come through", off, k)
	}
	score := func(k int) float64 {
		if k < 0 {
			return math.NaN()
		}
		f := world.Render(k)
		l, _, err := rect.Rectify(f.Left, f.Right)
		if err != nil {
			t.Fatal(err)
		}
		return psnr(frames[0].Left, l)
	}
	p, before, after := score(int(k)), score(int(k)-1), score(int(k)+1)
	t.Logf("recorded frame 0 = world frame %d (capture times %s apart): PSNR %.1f dB; world frames %d and %d: %.1f and %.1f dB",
		k, off, p, int(k)-1, k+1, before, after)
	if p < minRecPSNR {
		t.Errorf("recorded frame 0 against world frame %d: PSNR %.1f dB, want at least %.0f", k, p, minRecPSNR)
	}
	for _, other := range []float64{before, after} {
		if other >= minRecPSNR {
			t.Errorf("a neighbouring world frame also scores %.1f dB: the threshold does not identify the frame", other)
		}
	}
	// The right eye of the same pair, against the right rendering.
	f := world.Render(int(k))
	_, r, err := rect.Rectify(f.Left, f.Right)
	if err != nil {
		t.Fatal(err)
	}
	if pr := psnr(frames[0].Right, r); pr < minRecPSNR {
		t.Errorf("recorded right image of frame 0: PSNR %.1f dB against world frame %d, want at least %.0f", pr, k, minRecPSNR)
	}
}

// TestRecordInterrupted: Ctrl-C (SIGINT) ends a recording cleanly and finalises the
// sequence; SIGKILL leaves a directory without calib.yaml, which no reader takes for a
// finished sequence.
func TestRecordInterrupted(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "record.yaml")
	if err := os.WriteFile(cfg, []byte("source:\n  kind: sim\n  sim:\n    scene: room\n    width: 160\n    height: 120\n    fps: 20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sig      syscall.Signal
		finished bool
	}{{syscall.SIGINT, true}, {syscall.SIGKILL, false}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "rec")
			d := startDaemonArgs(t, nil, "record", "--config", cfg, "--out", out, "--duration", "1m")
			waitOutput(t, d, "frames written", 20*time.Second)
			err := d.stop(tc.sig, 10*time.Second)
			_, calibErr := os.Stat(filepath.Join(out, "calib.yaml"))
			seq, openErr := sim.OpenSequence(out)
			if !tc.finished {
				if calibErr == nil || openErr == nil {
					t.Fatalf("killed recording has calib.yaml (%v) or opens as a sequence (%v)", calibErr, openErr)
				}
				return
			}
			if err != nil || !strings.Contains(d.out.String(), "(interrupted)") {
				t.Fatalf("exit after SIGINT: %v; want 0 and a recording stopped by the interrupt", err)
			}
			if openErr != nil || seq.Len() < 1 || !seq.HasTruth() {
				t.Fatalf("interrupted recording: %v", openErr)
			}
			t.Logf("interrupted after %d frames", seq.Len())
		})
	}
}
