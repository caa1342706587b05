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
		!(d.Metric.AbsRel < 0.3) || !(d.Metric.Delta1 > 0.6) || !(e.TimePerFrameMS.Mean > 0) || e.Trajectory != nil {
		t.Errorf("sgbm: %+v, depth %+v", e, d)
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
