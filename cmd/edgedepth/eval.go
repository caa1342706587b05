package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edgedepth/edgedepth/depth/sgbm"
	"github.com/edgedepth/edgedepth/eval"
	"github.com/edgedepth/edgedepth/inference"
	"github.com/edgedepth/edgedepth/odom"
	"github.com/edgedepth/edgedepth/runtime/config"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

const evalUsage = `Usage: edgedepth eval (--data DIR | --kitti-raw DIR | --kitti-odometry DIR --sequence NN)
                      [--estimator sgbm[,model]] [--live CAPTURE_DIR] [--out DIR] [flags]

Measures how well estimators do on a recorded sequence with ground truth and writes,
in --out (default eval-out/<date>T<time>):

  summary.json, summary.md   per estimator: depth metrics (abs rel, sq rel in m, RMSE
                             in m, RMSE log, δ<1.25, δ<1.25², δ<1.25³), metric and
                             median-scaled, with coverage; trajectory metrics (ATE RMSE
                             in m after SE(3) and Sim(3) alignment, Sim(3) scale, RPE in
                             % and °/m, drift in % of distance); frame counts (missing
                             frames included); time per frame in ms; the options used
  trajectory.png             top view (x–z, metres) of the aligned trajectories and
                             the ground truth
  trajectory_error.png       position error (m) over time (s) after alignment
  depth_error.png            abs rel per frame over time (s)
  depth_error_NNNNNN.png     image | prediction | truth | |error| for a few frames

Several estimators are evaluated side by side on the same frames. Sequences:

  --data DIR             the sequence format of 'edgedepth sim write' and 'record'
                         (depth/ in mm and poses.txt are the ground truth)
  --kitti-raw DIR        a KITTI raw drive (the *_sync folder: image_02/data,
                         image_03/data; calib_cam_to_cam.txt in DIR or its parent);
                         depth truth from the depth benchmark's groundtruth/image_02
                         PNGs (depth = value/256 m), by default in
                         DIR/proj_depth/groundtruth/image_02, else --kitti-gt
  --kitti-odometry DIR   a KITTI odometry root (sequences/NN/image_2, image_3,
                         calib.txt; poses/NN.txt as the pose truth, carried from
                         camera 0 to camera 2); with --sequence NN
  --gt-poses FILE        a TUM trajectory (stamp tx ty tz qx qy qz qw) replacing the
                         sequence's pose truth, matched to frames by capture time

Estimators: --estimator sgbm (OpenCV semi-global matching with the configuration's
depth.sgbm settings, --config; its trajectory from the photometric odometry on its
depth), --estimator model --model STORE_DIR (the depth and pose networks of the model
store's active version at depth.network's size, on the CPU, with the refined
odometry, as the daemon runs them), and --live DIR: the daemon's own output captured from MQTT
by 'edgedepth capture' while it read this sequence from its first frame (captured
output n is matched to frame n; frames without output count as missing).

Examples:

  edgedepth sim write --out seq --frames 100
  edgedepth eval --data seq --estimator sgbm --out eval-out/sgbm
  edgedepth eval --kitti-raw 2011_09_26/2011_09_26_drive_0002_sync --crop garg --max-depth 80

Progress goes to stderr; --json prints summary.json to stdout.

`

// estimatorConfig is what an estimator factory may use to build its Predictor.
type estimatorConfig struct {
	// Config is the daemon's configuration (--config, else the built-in defaults with
	// the EDGEDEPTH_* environment): depth.sgbm, depth.min_depth_m/max_depth_m,
	// depth.network, backend, training.width/height, odom, ...
	Config config.Config
	// Model is --model: a model store directory or a weights file ("" if not given).
	Model string
	// Source describes the sequence: image size, baseline, frame rate.
	Source eval.SourceInfo
	// Log is for what the estimator wants to say (stderr, warn level unless the
	// configuration says debug).
	Log *slog.Logger
}

// estimatorFactory builds one estimator for an evaluation. The Predictor's Name is the
// name in the report; Close is called when the evaluation ends.
type estimatorFactory func(estimatorConfig) (eval.Predictor, error)

// evalEstimators are the estimators --estimator can name. Add an entry to add one.
var evalEstimators = map[string]estimatorFactory{
	"sgbm":  newSGBMPredictor,
	"model": newModelPredictor,
}

// newTracker is the daemon's visual odometry of the configuration (odom.*), or nil
// when odom.enabled is false.
func newTracker(c config.Odom) *odom.Tracker {
	if !c.Enabled {
		return nil
	}
	return odom.NewTracker(c.TrackerConfig())
}

// newSGBMPredictor is SGBM depth as the daemon computes it (the configuration's
// depth.sgbm parameters, clipped to depth.min_depth_m..max_depth_m), with the
// trajectory of the photometric odometry on it, as the daemon tracks SGBM depth.
func newSGBMPredictor(c estimatorConfig) (eval.Predictor, error) {
	est, err := sgbm.New(c.Config.Depth.SGBMParams())
	if err != nil {
		return nil, fmt.Errorf("sgbm: %w", err)
	}
	return &inference.DepthOdometryPredictor{Estimator: est, Tracker: newTracker(c.Config.Odom), TrackWidth: c.Config.Odom.Width}, nil
}

// newModelPredictor is the networks of the model store --model (its active version)
// as the daemon runs them: at depth.network's size (training's by default), on the
// CPU, with the refined odometry on the confident depth pixels.
func newModelPredictor(c estimatorConfig) (eval.Predictor, error) {
	if c.Model == "" {
		return nil, errors.New("--estimator model needs --model STORE_DIR (a model store: edgedepth import or train fill one)")
	}
	store, err := trainer.OpenStore(c.Model, 0)
	if err != nil {
		return nil, fmt.Errorf("--model: %w", err)
	}
	ts, v, failed, err := store.LoadActive()
	if err != nil {
		return nil, fmt.Errorf("--model: %w", err)
	}
	for _, f := range failed {
		c.Log.Warn("a model version does not load", "err", f)
	}
	w, h := c.Config.NetworkSize()
	nets, err := inference.NewNative(cpu.New(runtime.NumCPU()), v.ChannelScale, ts, v.File, w, h)
	if err != nil {
		return nil, fmt.Errorf("--model: version %d: %w", v.Version, err)
	}
	e, err := inference.New(nets, v.Version, inference.Options{Width: w, Height: h})
	if err != nil {
		nets.Close()
		return nil, err
	}
	return &inference.NetworkPredictor{
		Label: fmt.Sprintf("model v%d", v.Version), Engine: e, Tracker: newTracker(c.Config.Odom),
		MinConfidence: float32(c.Config.Odom.MinConfidence), TrackWidth: c.Config.Odom.Width,
	}, nil
}

// estimatorList is a repeatable flag of comma-separated names.
type estimatorList []string

func (l *estimatorList) String() string { return strings.Join(*l, ",") }

func (l *estimatorList) Set(v string) error {
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if slices.Contains(*l, name) {
			return fmt.Errorf("%q given twice", name)
		}
		*l = append(*l, name)
	}
	return nil
}

// newFlagSet is a flag set writing to stderr whose usage is text and the defaults.
func newFlagSet(name string, stderr io.Writer, text string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), text)
		fs.PrintDefaults()
	}
	return fs
}

// cmdEval implements `edgedepth eval`.
func cmdEval(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("edgedepth eval", stderr, evalUsage)
	cfgPath := configFlag(fs)
	data := fs.String("data", "", "sequence `directory` in the sim/record format")
	kittiRaw := fs.String("kitti-raw", "", "KITTI raw drive `directory` (the *_sync folder)")
	kittiGT := fs.String("kitti-gt", "", "the depth benchmark's groundtruth/image_02 `directory` for --kitti-raw (default DIR/proj_depth/groundtruth/image_02)")
	kittiCalib := fs.String("kitti-calib", "", "calib_cam_to_cam.txt `file` for --kitti-raw (default in DIR or its parent)")
	kittiOdom := fs.String("kitti-odometry", "", "KITTI odometry root `directory` (holding sequences/ and poses/)")
	sequence := fs.String("sequence", "", "KITTI odometry sequence `number` (00, 01, ...)")
	gtPoses := fs.String("gt-poses", "", "TUM trajectory `file` replacing the sequence's pose truth")
	gtMaxDiff := fs.Duration("gt-max-diff", 20*time.Millisecond, "largest capture-time difference when matching --gt-poses to frames")
	var estimators estimatorList
	fs.Var(&estimators, "estimator", "estimators to evaluate, comma-separated or repeated: "+strings.Join(estimatorNames(), ", ")+" (default sgbm, unless --live alone)")
	model := fs.String("model", "", "model store `directory` or weights file for --estimator model")
	live := fs.String("live", "", "capture `directory` of the daemon's output (edgedepth capture) to evaluate")
	out := fs.String("out", "", "output `directory` (default eval-out/<date>T<time>)")
	start := fs.Int("start", 0, "first frame to evaluate (index from 0)")
	frames := fs.Int("frames", 0, "number of frames to evaluate from --start (0: to the end)")
	minDepth := fs.Float64("min-depth", 1e-3, "smallest ground-truth depth used, `metres`")
	maxDepth := fs.Float64("max-depth", 80, "largest ground-truth depth used, `metres` (predictions are clamped to it; 0: no cap)")
	cropName := fs.String("crop", "none", "region the depth metrics use: none, garg or eigen (KITTI crops, as fractions of the image)")
	depthMaps := fs.Int("depth-maps", 4, "number of depth error figures, evenly spaced over the frames")
	rpeSegments := fs.String("rpe-segments", "", "RPE segment `lengths` in metres of true path, comma-separated (default 1,2,5,10; KITTI's benchmark: 100,200,...,800)")
	rpeStep := fs.Int("rpe-step", 0, "frames between the first frames of RPE segments (default 1; KITTI's benchmark: 10)")
	jsonOut := fs.Bool("json", false, "print summary.json to stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	usageErr := func(msg string) error {
		fmt.Fprintln(stderr, "edgedepth eval:", msg)
		fmt.Fprintln(stderr, "Run 'edgedepth eval -h' for the flags.")
		return errUsage
	}
	nSources := 0
	for _, s := range []string{*data, *kittiRaw, *kittiOdom} {
		if s != "" {
			nSources++
		}
	}
	switch {
	case nSources != 1:
		return usageErr("give one sequence: --data DIR, --kitti-raw DIR or --kitti-odometry DIR --sequence NN")
	case *kittiOdom != "" && *sequence == "":
		return usageErr("--kitti-odometry needs --sequence NN")
	case *kittiOdom == "" && *sequence != "":
		return usageErr("--sequence goes with --kitti-odometry")
	case *kittiRaw == "" && (*kittiGT != "" || *kittiCalib != ""):
		return usageErr("--kitti-gt and --kitti-calib go with --kitti-raw")
	case *model != "" && !slices.Contains(estimators, "model"):
		return usageErr("--model goes with --estimator model")
	}
	if len(estimators) == 0 && *live == "" {
		estimators = estimatorList{"sgbm"}
	}
	for _, name := range estimators {
		if _, ok := evalEstimators[name]; !ok {
			return usageErr(fmt.Sprintf("unknown estimator %q (known: %s)", name, strings.Join(estimatorNames(), ", ")))
		}
	}
	crop, err := eval.ParseCrop(*cropName)
	if err != nil {
		return usageErr(err.Error())
	}
	opt := eval.DefaultOptions()
	opt.Start, opt.Frames, opt.MinDepthM, opt.MaxDepthM, opt.Crop, opt.DepthMaps = *start, *frames, *minDepth, *maxDepth, crop, *depthMaps
	opt.PoseTruthMaxDiff = *gtMaxDiff
	opt.Trajectory.SegmentStepFrames = *rpeStep
	if *rpeSegments != "" {
		for _, f := range strings.Split(*rpeSegments, ",") {
			l, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || !(l > 0) || math.IsInf(l, 0) {
				return usageErr(fmt.Sprintf("--rpe-segments %q: want positive lengths in metres, comma-separated", *rpeSegments))
			}
			opt.Trajectory.SegmentLengthsM = append(opt.Trajectory.SegmentLengthsM, l)
		}
	}
	if *rpeStep < 0 {
		return usageErr(fmt.Sprintf("--rpe-step %d must not be negative", *rpeStep))
	}
	if err := opt.Validate(); err != nil {
		return usageErr(err.Error())
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	level := "warn"
	if cfg.LogLevel == "debug" {
		level = cfg.LogLevel
	}
	log := newLogger(stderr, level).With("component", "eval")

	var src eval.Source
	switch {
	case *data != "":
		src, err = eval.OpenSim(*data)
	case *kittiRaw != "":
		src, err = eval.OpenKITTIRaw(*kittiRaw, eval.KITTIRawOptions{CalibFile: *kittiCalib, GroundTruthDir: *kittiGT})
	default:
		src, err = eval.OpenKITTIOdometry(*kittiOdom, *sequence)
	}
	if err != nil {
		return err
	}
	if *gtPoses != "" {
		if opt.PoseTruth, err = readTUMFile(*gtPoses); err != nil {
			return err
		}
	}

	ec := estimatorConfig{Config: cfg, Model: *model, Source: src.Info(), Log: log}
	var preds []eval.Predictor
	defer func() {
		for _, p := range preds {
			if err := p.Close(); err != nil {
				log.Warn("closing an estimator failed", "estimator", p.Name(), "error", err)
			}
		}
	}()
	for _, name := range estimators {
		p, err := evalEstimators[name](ec)
		if err != nil {
			return fmt.Errorf("eval: estimator %s: %w", name, err)
		}
		preds = append(preds, p)
	}
	if *live != "" {
		lp, err := eval.OpenLive(*live)
		if err != nil {
			return err
		}
		preds = append(preds, lp)
	}

	if *out == "" {
		*out = filepath.Join("eval-out", time.Now().Format("2006-01-02T15-04-05"))
	}
	info := src.Info()
	names := make([]string, len(preds))
	for i, p := range preds {
		names[i] = p.Name()
	}
	fmt.Fprintf(stderr, "evaluating %s on %s (%s, %d frames, %dx%d)\n", strings.Join(names, ", "), info.Path, info.Kind, info.Frames, info.Width, info.Height)
	var lastReport time.Duration
	opt.Progress = func(done, total int, elapsed time.Duration) {
		if elapsed-lastReport < time.Second && done < total {
			return
		}
		lastReport = elapsed
		fmt.Fprintf(stderr, "%5.1f s: %d/%d frames, %.1f fps\n", elapsed.Seconds(), done, total, float64(done)/max(elapsed.Seconds(), 1e-9))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ev, err := eval.Evaluate(ctx, src, preds, opt)
	if ev == nil {
		return err
	}
	ev.Report.Version = buildVersion()
	if werr := ev.Write(*out); werr != nil {
		return werr
	}
	if *jsonOut {
		if jerr := ev.Report.WriteJSON(stdout); jerr != nil {
			return jerr
		}
	} else {
		printEvalSummary(stdout, &ev.Report, *out)
	}
	if err != nil {
		return fmt.Errorf("eval: interrupted after %d frames; the partial results are in %s", ev.Report.Frames.Evaluated, *out)
	}
	return nil
}

func estimatorNames() []string {
	names := make([]string, 0, len(evalEstimators))
	for n := range evalEstimators {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// readTUMFile reads a TUM trajectory file (odom.ReadTUM).
func readTUMFile(path string) ([]odom.StampedPose, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eval: --gt-poses: %w", err)
	}
	defer f.Close()
	poses, err := odom.ReadTUM(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("eval: --gt-poses %s: %w", path, err)
	}
	if len(poses) == 0 {
		return nil, fmt.Errorf("eval: --gt-poses %s: no poses", path)
	}
	return poses, nil
}

// printEvalSummary prints the headline numbers of each estimator.
func printEvalSummary(w io.Writer, r *eval.Report, dir string) {
	fmt.Fprintf(w, "evaluated %d frames of %s (%d with depth truth, %d with pose truth)\n",
		r.Frames.Evaluated, r.Source.Path, r.Frames.WithDepthTruth, r.Frames.WithPoseTruth)
	for _, e := range r.Estimators {
		fmt.Fprintf(w, "  %s: %d frames with output, %d missing, %.1f ms/frame\n", e.Name, e.FramesOutput, e.FramesMissing, e.TimePerFrameMS.Mean)
		if d := e.Depth; d != nil && d.Frames > 0 {
			fmt.Fprintf(w, "    depth (metric):        abs_rel %.4f  sq_rel %.4f m  rmse %.3f m  rmse_log %.4f  d1 %.4f  d2 %.4f  d3 %.4f  coverage %.3f\n",
				d.Metric.AbsRel, d.Metric.SqRelM, d.Metric.RMSEM, d.Metric.RMSELog, d.Metric.Delta1, d.Metric.Delta2, d.Metric.Delta3, d.Coverage)
			fmt.Fprintf(w, "    depth (median-scaled): abs_rel %.4f  sq_rel %.4f m  rmse %.3f m  rmse_log %.4f  d1 %.4f  d2 %.4f  d3 %.4f  scale %.4f±%.4f\n",
				d.MedianScaled.AbsRel, d.MedianScaled.SqRelM, d.MedianScaled.RMSEM, d.MedianScaled.RMSELog,
				d.MedianScaled.Delta1, d.MedianScaled.Delta2, d.MedianScaled.Delta3, d.ScaleMean, d.ScaleStd)
		}
		if t := e.Trajectory; t != nil {
			if t.Error != "" {
				fmt.Fprintf(w, "    trajectory: no metrics: %s\n", t.Error)
			} else {
				fmt.Fprintf(w, "    trajectory: %d frames, %.2f m; ATE SE(3) %.4f m, Sim(3) %.4f m (scale %.4f); drift %.3f %% of distance\n",
					t.Frames, t.LengthM, t.ATESE3RMSEM, t.ATESim3RMSEM, t.Sim3Scale, t.DriftPct)
			}
		}
	}
	fmt.Fprintf(w, "wrote %s\n", filepath.Join(dir, "summary.md"))
}
