package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/calib"
	"github.com/edgedepth/edgedepth/camera/calib3d"
	"github.com/edgedepth/edgedepth/camera/stereo"
	"github.com/edgedepth/edgedepth/runtime/config"
	"github.com/edgedepth/edgedepth/telemetry/command"
)

func TestRecalibrateArgs(t *testing.T) {
	a, err := parseRecalibrateArgs(nil)
	if err != nil || a != (recalibrateArgs{Frames: 10, EveryMs: 300, Apply: true, Save: true}) {
		t.Fatalf("no args: %+v, %v; want the defaults", a, err)
	}
	a, err = parseRecalibrateArgs(json.RawMessage(`{"frames": 20, "apply": false}`))
	if err != nil || a != (recalibrateArgs{Frames: 20, EveryMs: 300, Apply: false, Save: true}) {
		t.Fatalf("some args: %+v, %v", a, err)
	}
	for args, want := range map[string]string{
		`{"frames": 1}`:                    "frames: 1 must be 2 to 60",
		`{"frames": 61}`:                   "frames: 61 must be 2 to 60",
		`{"frames": "ten"}`:                "frames: want a JSON number",
		`{"every_ms": -1}`:                 "every_ms: -1 must be 0 to 5000",
		`{"frames": 60, "every_ms": 2000}`: "every_ms: 2000 ms between 60 frames takes longer than 1m0s",
		`{"apply": 1}`:                     "apply: want a JSON boolean",
		`{"frame": 10}`:                    `unknown field "frame"`,
	} {
		_, err := parseRecalibrateArgs(json.RawMessage(args))
		if !errors.Is(err, command.ErrInvalidArgs) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want invalid args saying %q", args, err, want)
		}
	}
}

// A source without a calibration (sim) has nothing to recalibrate: invalid_args that
// says what is needed.
func TestRecalibrateSimSource(t *testing.T) {
	d := New(config.Default(), slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	_, err := d.recalibrate(context.Background(), json.RawMessage(`{}`))
	if !errors.Is(err, command.ErrInvalidArgs) || !strings.Contains(err.Error(), "needs source.kind rtsp with a calibration") ||
		!strings.Contains(err.Error(), `"sim"`) {
		t.Fatalf("recalibrate on the sim source: %v", err)
	}
}

func testStereo() calib.Stereo {
	k := [9]float64{400, 0, 160, 0, 400, 120, 0, 0, 1}
	return calib.Stereo{
		Size: calib.ImageSize{Width: 320, Height: 240}, K1: k, K2: k,
		D1: make([]float64, 5), D2: make([]float64, 5),
		R: [9]float64{1, 0, 0, 0, 1, 0, 0, 0, 1}, T: [3]float64{-0.1, 0, 0},
	}
}

// apply swaps the live rectifier and closes the old one; after the daemon's Close,
// nothing is applied and the current rectifier is closed.
func TestRecalibrationApplyAndClose(t *testing.T) {
	before := calib3d.LiveObjects()
	cal := testStereo()
	old, err := calib.NewRectifier(cal, cal.Size, calib.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src := &stereo.Source{Rectifier: old}
	r := &recalibration{src: src, cal: cal, unitM: 1, rect: old}
	corrected := cal
	corrected.T = [3]float64{-0.1, 0.002, 0}
	if err := r.apply(corrected); err != nil {
		t.Fatal(err)
	}
	if src.Rectifier == camera.Rectifier(old) || src.Rectifier != camera.Rectifier(r.rect) || r.cal.T != corrected.T {
		t.Fatal("the source does not rectify with the new rectifier")
	}
	im := camera.NewImage(320, 240)
	if _, _, err := old.Rectify(im, im); !errors.Is(err, calib3d.ErrClosed) {
		t.Errorf("old rectifier after apply: %v, want closed", err)
	}
	if _, _, err := r.rect.Rectify(im, im); err != nil {
		t.Errorf("new rectifier: %v", err)
	}
	r.Close()
	if err := r.apply(cal); err == nil || !strings.Contains(err.Error(), "pipeline has stopped") {
		t.Errorf("apply after Close: %v", err)
	}
	if live := calib3d.LiveObjects(); live != before {
		t.Errorf("%d OpenCV objects live after Close, %d before", live, before)
	}
}
