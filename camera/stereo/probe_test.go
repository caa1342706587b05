package stereo

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/edgedepth/edgedepth/camera"
)

// scriptedCamera emits n frames, taking turns with its partner (mine, theirs), then
// waits for cancellation; it describes itself.
type scriptedCamera struct {
	name         string
	phase        time.Duration
	n            int
	mine, theirs chan struct{}
}

// lockstep returns two cameras that emit alternately, left first.
func lockstep(n int) (l, r scriptedCamera) {
	a, b := make(chan struct{}, 1), make(chan struct{}, 1)
	a <- struct{}{}
	return scriptedCamera{"rtsp://cam1/s", 0, n, a, b}, scriptedCamera{"rtsp://cam2/s", 2 * time.Millisecond, n, b, a}
}

func (c scriptedCamera) Name() string { return c.name }
func (c scriptedCamera) Describe() map[string]any {
	return map[string]any{"codec": "h264", "frames_lost": 0}
}
func (c scriptedCamera) Run(ctx context.Context, emit func(camera.Frame)) error {
	for i := range c.n {
		select {
		case <-c.mine:
		case <-ctx.Done():
			return nil
		}
		emit(camera.Frame{CaptureTime: epoch.Add(time.Duration(i)*p30 + c.phase), Clock: camera.ClockReceive, Image: camera.NewImage(4, 2)})
		c.theirs <- struct{}{}
	}
	<-ctx.Done()
	return nil
}

func TestProbe(t *testing.T) {
	l, r := lockstep(60)
	rep, err := ProbeCameras(context.Background(), l, r, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Cameras) != 2 || rep.Cameras[0].Frames != 60 || rep.Cameras[0].Width != 4 || rep.Cameras[0].Details["codec"] != "h264" {
		t.Fatalf("cameras %+v", rep.Cameras)
	}
	if fps := rep.Cameras[1].FPS; fps < 29.9 || fps > 30.1 {
		t.Errorf("fps %.2f, want 30", fps)
	}
	// The first left frame is discarded (the right camera is not up yet), and the
	// period must be measured before pairing starts: most of the rest pair.
	if rep.Pairs < 45 || rep.PairErrorMax > 2 || rep.Seconds <= 0 || rep.Cameras[0].NTP {
		t.Errorf("report %+v", rep)
	}
	text := rep.Text()
	for _, want := range []string{"camera left: rtsp://cam1/s", "codec: h264", "30.00 fps", "no NTP time", "unpaired frames"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil || !strings.Contains(string(b), `"pairs_per_second"`) {
		t.Errorf("json %s, %v", b, err)
	}
}

func TestProbeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l, r := lockstep(1)
	_, err := ProbeCameras(ctx, l, r, time.Hour)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

func TestSplitSideBySide(t *testing.T) {
	img := camera.NewImage(4, 2)
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	l, r, err := SplitSideBySide(img)
	if err != nil {
		t.Fatal(err)
	}
	// Row 0: pixels 0,1 left (bytes 0–5), 2,3 right (bytes 6–11); row 1 starts at byte 12.
	if l.Width != 2 || l.Pix[0] != 0 || l.Pix[6] != 12 || r.Pix[0] != 6 || r.Pix[6] != 18 {
		t.Fatalf("left %v right %v", l.Pix, r.Pix)
	}
	tests := []camera.Image{camera.NewImage(5, 2), {Width: 4, Height: 2, Pix: make([]byte, 3)}, {}}
	for _, bad := range tests {
		if _, _, err := SplitSideBySide(bad); err == nil {
			t.Errorf("%dx%d (%d bytes): no error", bad.Width, bad.Height, len(bad.Pix))
		}
	}
	if _, _, err := SplitSideBySide(camera.NewImage(5, 2)); !errors.Is(err, ErrOddWidth) {
		t.Errorf("odd width: %v, want ErrOddWidth", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantKey string
	}{
		{Config{}, ""},
		{DefaultConfig(), ""},
		{Config{PairTolerance: -time.Millisecond}, "pair_tolerance"},
		{Config{FramePeriod: 11 * time.Second}, "frame_period"},
		{Config{BufferFrames: 1}, "buffer_frames"},
		{Config{DriftWindow: time.Millisecond}, "drift_window"},
		{Config{DriftWarnMsPerMin: -1}, "drift_warn_ms_per_min"},
		{Config{StallTimeout: time.Millisecond}, "stall_timeout"},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		var ce *ConfigError
		switch {
		case tc.wantKey == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.wantKey != "" && (!errors.As(err, &ce) || ce.Key != tc.wantKey || !errors.Is(err, ErrConfig)):
			t.Errorf("%+v: %v, want key %s", tc.cfg, err, tc.wantKey)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader("pair_tolerance: 12ms\nbuffer_frames: 16\ndrift_warn_ms_per_min: 5\nstall_timeout: 3s\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := Config{PairTolerance: 12 * time.Millisecond, BufferFrames: 16, DriftWarnMsPerMin: 5, StallTimeout: 3 * time.Second}
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
}
