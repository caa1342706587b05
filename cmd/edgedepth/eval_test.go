package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/eval"
)

// TestEvalModel runs `edgedepth eval --estimator model` with the end-to-end tests'
// model (trained on the street, seed 1) on an unseen street: metric depth and a
// trajectory from the networks and the odometry.
func TestEvalModel(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Width, cfg.Height, cfg.Seed = 320, 96, 3
	w, err := sim.NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	seq := filepath.Join(t.TempDir(), "seq")
	if err := sim.WriteSequence(context.Background(), seq, w, 20, nil); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "edgedepth.yaml")
	if err := os.WriteFile(conf, []byte("depth:\n  network:\n    width: 320\n    height: 96\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"eval", "--data", seq, "--estimator", "model", "--model", filepath.Join("..", "..", "hil-tests", "testdata", "models"),
		"--config", conf, "--out", t.TempDir(), "--json", "--depth-maps", "0", "--max-depth", "60"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("eval exit %d:\n%s", code, stderr.String())
	}
	var r eval.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("stdout is not the summary JSON: %v\n%s", err, stdout.String())
	}
	e := r.Estimators[0]
	if e.Name != "model v1" || e.Depth == nil || !(e.Depth.Metric.AbsRel < 0.2) || e.Depth.Coverage < 0.99 {
		t.Fatalf("model: %+v, depth %+v", e, e.Depth)
	}
	if tr := e.Trajectory; tr == nil || tr.FramesWithPose != 20 || !(tr.DriftPct < 10) {
		t.Fatalf("model trajectory: %+v", tr)
	}
	t.Logf("model v1 on 20 unseen frames: abs rel %.3f, drift %.2f %% of %.2f m", e.Depth.Metric.AbsRel, e.Trajectory.DriftPct, e.Trajectory.LengthM)
}

// TestEvalSGBM runs `edgedepth eval --estimator sgbm` on a small simulated street: the
// summary has SGBM's depth metrics on every frame and the plots are there.
func TestEvalSGBM(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Width, cfg.Height = 320, 240
	w, err := sim.NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	seq := filepath.Join(t.TempDir(), "seq")
	if err := sim.WriteSequence(context.Background(), seq, w, 6, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	code := run([]string{"eval", "--data", seq, "--estimator", "sgbm", "--out", out, "--json", "--depth-maps", "2"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("eval exit %d:\n%s", code, stderr.String())
	}
	var r eval.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("stdout is not the summary JSON: %v\n%s", err, stdout.String())
	}
	if len(r.Estimators) != 1 || r.Frames.Evaluated != 6 || r.Version == "" {
		t.Fatalf("report: %+v", r)
	}
	e := r.Estimators[0]
	d := e.Depth
	// SGBM on the simulated street: most answered pixels are right; the leftmost 128
	// columns (the disparity search range) and the sky have no depth.
	if e.Name != "sgbm" || e.FramesOutput != 6 || d == nil || d.Frames != 6 || !(d.Coverage > 0.2) ||
		!(d.Metric.AbsRel < 0.3) || !(d.Metric.Delta1 > 0.6) || !(e.TimePerFrameMS.Mean > 0) {
		t.Errorf("sgbm: %+v, depth %+v", e, d)
	}
	// Its trajectory comes from the photometric odometry on its depth.
	if tr := e.Trajectory; tr == nil || tr.FramesWithPose != 6 || tr.Error != "" || !(tr.DriftPct < 10) {
		t.Errorf("sgbm trajectory: %+v", tr)
	}
	if !strings.Contains(stderr.String(), "6/6 frames") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
	for _, f := range []string{"summary.json", "summary.md", "depth_error.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	figures := 0
	for _, f := range r.Files {
		if strings.HasPrefix(f, "depth_error_0") {
			figures++
			b, err := os.ReadFile(filepath.Join(out, f))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := png.DecodeConfig(bytes.NewReader(b)); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
	if figures != 2 {
		t.Errorf("%d depth error figures in %v, want 2", figures, r.Files)
	}
}

func TestEvalUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "give one sequence"},
		{[]string{"--data", "a", "--kitti-raw", "b"}, 2, "give one sequence"},
		{[]string{"--kitti-odometry", "a"}, 2, "needs --sequence"},
		{[]string{"--data", "a", "--estimator", "magic"}, 2, `unknown estimator "magic"`},
		{[]string{"--data", "a", "--estimator", "sgbm,sgbm"}, 2, "given twice"},
		{[]string{"--data", "a", "--crop", "square"}, 2, "want none, garg or eigen"},
		{[]string{"--data", "a", "--min-depth", "5", "--max-depth", "1"}, 2, "MaxDepthM"},
		{[]string{"--data", "a", "--model", "m"}, 2, "--model goes with --estimator model"},
		{[]string{"--data", "a", "--rpe-segments", "1,x"}, 2, "want positive lengths"},
		{[]string{"--data", filepath.Join(t.TempDir(), "none")}, 1, "calib.yaml"},
		{[]string{"-h"}, 0, "--kitti-odometry"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"eval"}, c.args...), &out, &errb)
		if code != c.code || !strings.Contains(errb.String()+out.String(), c.want) {
			t.Errorf("eval %v: exit %d (want %d), output lacks %q:\n%s", c.args, code, c.code, c.want, errb.String())
		}
	}
}
