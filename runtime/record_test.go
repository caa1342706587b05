package runtime

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgedepth/edgedepth/camera/calib"
	"github.com/edgedepth/edgedepth/camera/record"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/runtime/config"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestRecordSim(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := config.Default()
	cfg.Source.Sim.Scene, cfg.Source.Sim.Width, cfg.Source.Sim.Height, cfg.Source.Sim.FPS = "room", 96, 64, 25
	out := filepath.Join(t.TempDir(), "rec")
	res, err := Record(context.Background(), cfg, RecordOptions{Out: out, Frames: 5}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Calib
	if res.Written != 5 || res.Stopped != record.StopFrames || res.Dir != out ||
		c.Width != 96 || c.Height != 64 || c.Cx != 47.5 || c.Cy != 31.5 || c.BaselineM != 0.12 || c.FPS != 25 {
		t.Fatalf("result %+v, calib %+v", res.RecordProgress, res.Calib)
	}
	seq, err := sim.OpenSequence(out)
	if err != nil {
		t.Fatal(err)
	}
	if seq.Len() != 5 || !seq.HasTruth() || seq.Calib().Scene != "room" {
		t.Fatalf("sequence: %d frames, truth %v, calib %+v", seq.Len(), seq.HasTruth(), seq.Calib())
	}
}

// writeIdentityCalibration writes the calibration of an ideal 64x48 rig.
func writeIdentityCalibration(t *testing.T) string {
	t.Helper()
	K := [9]float64{50, 0, 31.5, 0, 50, 23.5, 0, 0, 1}
	s := calib.Stereo{
		Size: calib.ImageSize{Width: 64, Height: 48}, K1: K, K2: K,
		D1: make([]float64, 5), D2: make([]float64, 5),
		R: [9]float64{1, 0, 0, 0, 1, 0, 0, 0, 1}, T: [3]float64{-0.1, 0, 0},
	}
	p := filepath.Join(t.TempDir(), "stereo.yaml")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := calib.WriteOpenCVYAML(f, s); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRecordNoPairs: cameras that never answer, then Ctrl-C: nothing recorded, said so,
// and no empty skeleton left behind to make the same --out "not empty" next time.
func TestRecordNoPairs(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := config.Default()
	cfg.Source.Kind = "rtsp"
	dead := "rtsp://" + freeAddr(t) + "/x" // nothing listens there now
	cfg.Source.RTSP.Left.URL, cfg.Source.RTSP.Right.URL = dead, dead
	cfg.Source.RTSP.Calibration = []string{writeIdentityCalibration(t)}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "rec")
	ctx, cancel := context.WithCancel(context.Background())
	var reports atomic.Int32
	opts := RecordOptions{Out: out, Duration: time.Minute, Progress: func(p RecordProgress) {
		if reports.Add(1) == 2 { // two progress reports without a pair: give up
			cancel()
		}
	}}
	// Progress comes once a second: the test takes about two.
	res, err := Record(ctx, cfg, opts, quiet)
	if !errors.Is(err, ErrNothingRecorded) || res.Written != 0 {
		t.Fatalf("err = %v, written %d; want ErrNothingRecorded", err, res.Written)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s left behind (%v)", out, err)
	}
}

func TestRecordRefusals(t *testing.T) {
	cfg := config.Default()
	cfg.Source.Kind = "rtsp"
	if _, err := Record(context.Background(), cfg, RecordOptions{Out: t.TempDir(), Frames: 1}, quiet); !errors.Is(err, ErrNoCalibration) {
		t.Errorf("RTSP without calibration: err = %v, want ErrNoCalibration", err)
	}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = config.Default()
	cfg.Source.Sim.Width, cfg.Source.Sim.Height = 64, 48
	if _, err := Record(context.Background(), cfg, RecordOptions{Out: full, Frames: 1}, quiet); !errors.Is(err, sim.ErrNotEmpty) {
		t.Errorf("non-empty out: err = %v, want sim.ErrNotEmpty", err)
	}
	if _, err := Record(context.Background(), cfg, RecordOptions{Frames: 1}, quiet); err == nil {
		t.Errorf("no out: no error")
	}
}
