package runtime

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgedepth/edgedepth/runtime/config"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestDaemonRunsAndStopsCleanly runs the whole daemon in-process on a small simulated
// rig with the embedded broker, waits for depth to flow, cancels, and checks that Run
// returns nil and that every goroutine it started has ended.
func TestDaemonRunsAndStopsCleanly(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := config.Default()
	cfg.RobotID = "unit"
	cfg.DataDir = t.TempDir()
	cfg.Source.Sim.Width, cfg.Source.Sim.Height, cfg.Source.Sim.FPS = 320, 240, 20
	broker := freeAddr(t)
	cfg.MQTT.Embedded.Addr = broker
	cfg.MQTT.BrokerURL = "tcp://" + broker
	cfg.HTTP.Addr = freeAddr(t)
	// A status LED on a machine without GPIO: skipped with its reason, not degraded.
	cfg.GPIO.LEDPin = "PQ.06"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	deadline := time.Now().Add(30 * time.Second)
	for d.stats.framesPublished.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no depth published within 30 s; health: %+v", d.Health().Warnings())
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(20 * time.Millisecond): // the daemon has no "frame done" hook to wait on
		}
	}
	if st := d.status(""); st.FramesIn == 0 || st.RobotID != "unit" {
		t.Fatalf("status %+v", st)
	}
	for _, w := range d.Health().Warnings() {
		if w.Component == "gpio" {
			t.Fatalf("no GPIO on this machine should be skipped, not a health warning: %+v", w)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(cfg.ShutdownTimeout + 5*time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestDaemonNamesMissingCalibration(t *testing.T) {
	cfg := config.Default()
	cfg.Source.Kind = "rtsp"
	cfg.Source.RTSP.Left.URL = "rtsp://127.0.0.1:1/left"
	cfg.Source.RTSP.Right.URL = "rtsp://127.0.0.1:1/right"
	cfg.Source.RTSP.Calibration = []string{filepath.Join(t.TempDir(), "stereo.yaml")}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	err := d.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "source.rtsp.calibration") || !strings.Contains(err.Error(), "stereo.yaml") {
		t.Fatalf("Run: %v; want an error naming source.rtsp.calibration and the file", err)
	}
}
