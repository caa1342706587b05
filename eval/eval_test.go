package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/odom"
)

// writeSim renders a small street sequence (64x48, 6 frames) and opens it.
func writeSim(t *testing.T) *SimSource {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.Width, cfg.Height, cfg.Seed = 64, 48, 2
	w, err := sim.NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "seq")
	if err := sim.WriteSequence(context.Background(), dir, w, 6, nil); err != nil {
		t.Fatal(err)
	}
	src, err := OpenSim(dir)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// fakePredictor returns the source's ground truth, with the depth multiplied by
// depthScale and the position by poseScale. It fails the test if it is given truth.
type fakePredictor struct {
	t                     *testing.T
	name                  string
	src                   Source
	depthScale, poseScale float64
	noPose                bool
	missing               map[uint64]bool
	closed                bool
}

func (p *fakePredictor) Name() string { return p.name }

func (p *fakePredictor) Predict(f camera.StereoFrame) (Prediction, error) {
	if f.Truth != nil {
		p.t.Errorf("%s: Predict got a frame with ground truth", p.name)
	}
	if p.missing[f.Seq] {
		return Prediction{}, fmt.Errorf("no output: %w", ErrNoOutput)
	}
	tf, err := p.src.Frame(int(f.Seq))
	if err != nil {
		return Prediction{}, err
	}
	var out Prediction
	if tf.TruthDepth.Width > 0 {
		out.Depth = depth.NewMap(tf.TruthDepth.Width, tf.TruthDepth.Height)
		for i, z := range tf.TruthDepth.M {
			out.Depth.M[i] = float32(float64(z) * p.depthScale)
		}
	}
	if tf.HasTruthPose && !p.noPose {
		out.Pose, out.HasPose = tf.TruthPose, true
		for i := range 3 {
			out.Pose.T[i] *= p.poseScale
		}
	}
	return out, nil
}

func (p *fakePredictor) Close() error { p.closed = true; return nil }

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func decodePNGFile(t *testing.T, path string) image.Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

func TestEvaluatePerfectAndKnownErrors(t *testing.T) {
	src := writeSim(t)
	info := src.Info()
	if info.Frames != 6 || !info.DepthTruth || !info.PoseTruth || info.Width != 64 || info.Height != 48 {
		t.Fatalf("source info %+v", info)
	}
	perfect := &fakePredictor{t: t, name: "truth", src: src, depthScale: 1, poseScale: 1}
	scaled := &fakePredictor{t: t, name: "scaled", src: src, depthScale: 1.1, poseScale: 2}
	opt := DefaultOptions()
	var progress []int
	opt.Progress = func(done, total int, _ time.Duration) {
		if total != 6 {
			t.Errorf("progress total %d, want 6", total)
		}
		progress = append(progress, done)
	}
	ev, err := Evaluate(context.Background(), src, []Predictor{perfect, scaled}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(progress) != 6 || progress[5] != 6 {
		t.Errorf("progress calls %v", progress)
	}
	if perfect.closed {
		t.Error("Evaluate closed a predictor")
	}
	r := ev.Report
	if r.Frames.Evaluated != 6 || r.Frames.WithDepthTruth != 6 || r.Frames.WithPoseTruth != 6 || len(r.Estimators) != 2 {
		t.Fatalf("frames %+v, %d estimators", r.Frames, len(r.Estimators))
	}

	p := r.Estimators[0]
	if p.FramesOutput != 6 || p.FramesMissing != 0 || p.Depth == nil || p.Trajectory == nil {
		t.Fatalf("perfect: %+v", p)
	}
	for name, m := range map[string]DepthMetrics{"metric": p.Depth.Metric, "median-scaled": p.Depth.MedianScaled} {
		if m.AbsRel != 0 || m.SqRelM != 0 || m.RMSEM != 0 || m.RMSELog != 0 || m.Delta1 != 1 || m.Delta3 != 1 || m.Pixels == 0 {
			t.Errorf("perfect %s depth: %+v", name, m)
		}
	}
	if p.Depth.Coverage != 1 || p.Depth.ScaleMean != 1 || p.Depth.ScaleStd != 0 || p.Depth.Frames != 6 {
		t.Errorf("perfect depth: %+v", p.Depth)
	}
	pt := p.Trajectory
	if pt.Error != "" || pt.Frames != 6 || !near(pt.ATESE3RMSEM, 0, 1e-9) || !near(pt.ATESim3RMSEM, 0, 1e-9) ||
		!near(pt.Sim3Scale, 1, 1e-9) || !near(pt.DriftPct, 0, 1e-7) || !near(pt.RPEFrameTransRMSEM, 0, 1e-9) || !(pt.LengthM > 0.5) {
		t.Errorf("perfect trajectory: %+v", pt)
	}

	s := r.Estimators[1]
	if s.Depth == nil || !near(s.Depth.Metric.AbsRel, 0.1, 1e-5) || !near(s.Depth.MedianScaled.AbsRel, 0, 1e-5) ||
		!near(s.Depth.ScaleMean, 1/1.1, 1e-5) || s.Depth.Metric.Delta1 != 1 {
		t.Errorf("depth ×1.1: %+v", s.Depth)
	}
	st := s.Trajectory
	if st == nil || st.Error != "" || !near(st.ATESim3RMSEM, 0, 1e-6) || !near(st.Sim3Scale, 0.5, 1e-6) || !(st.ATESE3RMSEM > 0.05) {
		t.Errorf("translation ×2: %+v", st)
	}

	dir := filepath.Join(t.TempDir(), "out")
	if err := ev.Write(dir); err != nil {
		t.Fatal(err)
	}
	_, _, figW, figH := depthFigureLayout(64, 48, 2)
	sizes := map[string][2]int{
		"trajectory.png":       {TrajectoryPlotPx, TrajectoryPlotPx},
		"trajectory_error.png": {LinePlotWidthPx, LinePlotHeightPx},
		"depth_error.png":      {LinePlotWidthPx, LinePlotHeightPx},
	}
	figures := 0
	for _, f := range ev.Report.Files {
		if strings.HasPrefix(f, "depth_error_") {
			sizes[f] = [2]int{figW, figH}
			figures++
		}
	}
	if figures != 4 {
		t.Errorf("%d depth error figures (%v), want 4", figures, ev.Report.Files)
	}
	for name, size := range sizes {
		b := decodePNGFile(t, filepath.Join(dir, name)).Bounds()
		if b.Dx() != size[0] || b.Dy() != size[1] {
			t.Errorf("%s is %dx%d, want %dx%d", name, b.Dx(), b.Dy(), size[0], size[1])
		}
	}

	var back Report
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Schema != ReportSchema || len(back.Estimators) != 2 || back.Estimators[1].Trajectory.Sim3Scale != st.Sim3Scale ||
		!strings.Contains(string(b), `"ate_sim3_rmse_m"`) || !strings.Contains(string(b), `"abs_rel"`) {
		t.Errorf("summary.json does not round-trip:\n%s", b)
	}
	md, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| truth | 6 | 1.000 | 0.0000 |",  // metric depth, perfect
		"| scaled | 6 | 1.000 | 0.1000 |", // metric depth ×1.1
		"| scaled | 6 |",                  // trajectory row
		fmt.Sprintf("%.4f", st.ATESE3RMSEM),
		"| 0.5000 |", // Sim(3) scale of the ×2 trajectory
		"![trajectory](trajectory.png)",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}
}

func TestEvaluateCountsMissingFramesAndCrops(t *testing.T) {
	src := writeSim(t)
	p := &fakePredictor{t: t, name: "gappy", src: src, depthScale: 1, poseScale: 1, missing: map[uint64]bool{2: true, 4: true}}
	opt := DefaultOptions()
	opt.Start, opt.Frames, opt.Crop, opt.DepthMaps = 1, 4, CropGarg, 1
	ev, err := Evaluate(context.Background(), src, []Predictor{p}, opt)
	if err != nil {
		t.Fatal(err)
	}
	r := ev.Report.Estimators[0]
	if ev.Report.Frames.Evaluated != 4 || ev.Report.Frames.Start != 1 || r.FramesOutput != 2 || r.FramesMissing != 2 {
		t.Fatalf("frames %+v, estimator %+v", ev.Report.Frames, r)
	}
	x0, y0, x1, y1 := CropGarg.Rect(64, 48)
	if r.Depth == nil || r.Depth.Frames != 2 || r.Depth.Metric.Pixels > int64(2*(x1-x0)*(y1-y0)) {
		t.Errorf("cropped depth: %+v (crop %d..%d x %d..%d)", r.Depth, x0, x1, y0, y1)
	}
	if ev.Report.Options.Crop != CropGarg || ev.Report.Options.CropRowsFrac[0] != 0.40810811 {
		t.Errorf("options %+v", ev.Report.Options)
	}
}

func TestCrop(t *testing.T) {
	// KITTI's 1242x375 with the Garg crop: rows 153..371, columns 44..1197.
	x0, y0, x1, y1 := CropGarg.Rect(1242, 375)
	if x0 != 44 || y0 != 153 || x1 != 1197 || y1 != 371 {
		t.Errorf("garg 1242x375: columns %d..%d rows %d..%d", x0, x1, y0, y1)
	}
	m := CropEigen.Mask(100, 50)
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	ex0, ey0, ex1, ey1 := CropEigen.Rect(100, 50)
	if n != (ex1-ex0)*(ey1-ey0) || m[0] || !m[(ey0+1)*100+ex0+1] {
		t.Errorf("eigen mask: %d pixels set", n)
	}
	if CropNone.Mask(10, 10) != nil {
		t.Error("CropNone has a mask")
	}
	if _, err := ParseCrop("kitti"); err == nil {
		t.Error(`ParseCrop("kitti") did not fail`)
	}
}

func TestEvaluateRejects(t *testing.T) {
	src := writeSim(t)
	p := &fakePredictor{t: t, name: "a", src: src, depthScale: 1, poseScale: 1}
	for _, c := range []struct {
		name  string
		preds []Predictor
		mod   func(*Options)
		want  string
	}{
		{"no predictors", nil, func(*Options) {}, "no estimator"},
		{"duplicate names", []Predictor{p, p}, func(*Options) {}, "two estimators"},
		{"start past the end", []Predictor{p}, func(o *Options) { o.Start = 6 }, "6 frames"},
		{"bad caps", []Predictor{p}, func(o *Options) { o.MinDepthM, o.MaxDepthM = 10, 5 }, "MaxDepthM"},
		{"bad crop", []Predictor{p}, func(o *Options) { o.Crop = "x" }, "crop"},
	} {
		opt := DefaultOptions()
		c.mod(&opt)
		if _, err := Evaluate(context.Background(), src, c.preds, opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
	}
}

func TestEvaluateInterrupted(t *testing.T) {
	src := writeSim(t)
	p := &fakePredictor{t: t, name: "a", src: src, depthScale: 1, poseScale: 1}
	ctx, cancel := context.WithCancel(context.Background())
	opt := DefaultOptions()
	opt.Progress = func(done, _ int, _ time.Duration) {
		if done == 3 {
			cancel()
		}
	}
	ev, err := Evaluate(ctx, src, []Predictor{p}, opt)
	if !errors.Is(err, context.Canceled) || ev == nil || !ev.Report.Interrupted || ev.Report.Frames.Evaluated != 3 {
		t.Fatalf("err %v, evaluation %+v", err, ev)
	}
}

func TestPoseTruthFromTUM(t *testing.T) {
	src := writeSim(t)
	// A TUM trajectory of the same frames, 5 ms off and with only frames 0..3.
	var tum []odom.StampedPose
	for i := range 4 {
		f, err := src.Frame(i)
		if err != nil {
			t.Fatal(err)
		}
		tum = append(tum, odom.StampedPose{Stamp: f.CaptureTime.Add(5 * time.Millisecond), Pose: f.TruthPose})
	}
	p := &fakePredictor{t: t, name: "a", src: src, depthScale: 1, poseScale: 1}
	opt := DefaultOptions()
	opt.PoseTruth = tum
	ev, err := Evaluate(context.Background(), src, []Predictor{p}, opt)
	if err != nil {
		t.Fatal(err)
	}
	tr := ev.Report.Estimators[0].Trajectory
	if ev.Report.Frames.WithPoseTruth != 4 || tr == nil || tr.Frames != 4 || tr.FramesWithPose != 6 || !near(tr.ATESE3RMSEM, 0, 1e-9) {
		t.Fatalf("frames %+v trajectory %+v", ev.Report.Frames, tr)
	}
	if !strings.Contains(strings.Join(ev.Report.Notes, "\n"), "4 of 6 frames matched") {
		t.Errorf("notes %q", ev.Report.Notes)
	}
}
