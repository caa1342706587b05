package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/odom"
)

// Options configure an evaluation. Start from DefaultOptions.
type Options struct {
	// Start is the first frame evaluated (index in the sequence, from 0). Default 0.
	Start int
	// Frames is how many frames from Start are evaluated; 0 = to the end. Default 0.
	Frames int
	// MinDepthM and MaxDepthM (metres) bound the ground-truth depths the metrics use;
	// predictions are clamped to them (depth.CompareOptions). MaxDepthM 0 = no cap.
	// Defaults 1e-3 and 80, KITTI's.
	MinDepthM, MaxDepthM float64
	// Crop restricts the depth metrics to a region of the image. Default CropNone.
	Crop Crop
	// DepthMaps is how many depth error figures (image | prediction | truth | error)
	// Write draws, for evenly spaced frames with depth truth. Default 4; 0 = none.
	DepthMaps int
	// Trajectory configures the trajectory metrics (odom.EvaluateTrajectory); the
	// zero value takes odom's defaults.
	Trajectory odom.TrajectoryOptions
	// PoseTruth, when not nil, replaces the source's pose truth: each frame gets the
	// pose of PoseTruth whose stamp is closest to its capture time, within
	// PoseTruthMaxDiff (odom.AssociateByTime; frames without a match have no pose
	// truth). For a TUM file (odom.ReadTUM) of a sequence without poses, or a better one.
	PoseTruth []odom.StampedPose
	// PoseTruthMaxDiff is the largest stamp difference PoseTruth matches across.
	// Default 20 ms (TUM's associate.py); 0 matches equal stamps only.
	PoseTruthMaxDiff time.Duration
	// Progress, if not nil, is called after every frame with the frames done, the
	// frames to do in all and the time since the start, from Evaluate's goroutine.
	Progress func(done, total int, elapsed time.Duration)
}

// DefaultOptions returns KITTI's depth caps, no crop, 4 depth error figures, the odom
// package's default trajectory options and a 20 ms pose association window.
func DefaultOptions() Options {
	return Options{MinDepthM: 1e-3, MaxDepthM: 80, Crop: CropNone, DepthMaps: 4, PoseTruthMaxDiff: 20 * time.Millisecond}
}

func (o Options) compare(medianScaling bool) depth.CompareOptions {
	return depth.CompareOptions{MinDepthM: o.MinDepthM, MaxDepthM: o.MaxDepthM, MedianScaling: medianScaling}
}

// Validate reports options Evaluate cannot use.
func (o Options) Validate() error {
	if o.Start < 0 {
		return fmt.Errorf("eval: start %d: must not be negative", o.Start)
	}
	if o.Frames < 0 {
		return fmt.Errorf("eval: frames %d: must not be negative (0 = to the end)", o.Frames)
	}
	if o.PoseTruthMaxDiff < 0 {
		return fmt.Errorf("eval: pose truth max diff %v: must not be negative", o.PoseTruthMaxDiff)
	}
	if o.DepthMaps < 0 {
		return fmt.Errorf("eval: depth maps %d: must not be negative", o.DepthMaps)
	}
	if _, err := ParseCrop(string(o.Crop)); err != nil {
		return err
	}
	if err := o.compare(false).Validate(); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	return nil
}

// Evaluation is the outcome of Evaluate: the Report, and what Write needs for the
// plots.
type Evaluation struct {
	Report Report

	runs   []*estimatorRun
	maps   []mapSample
	stamps []time.Time // capture time of every frame evaluated, from Start
	start  int         // Options.Start
	truth  []framePose // the pose truth of the frames evaluated
	opt    Options
}

// estimatorRun collects one estimator's results frame by frame.
type estimatorRun struct {
	p       Predictor
	times   []time.Duration
	missing int

	depth   []frameDepth
	noValid int // frames with truth and a prediction but no pixel valid in both

	poses []framePose // predicted poses, in frame order
	traj  *trajectoryResult
}

// framePose is a pose of frame index.
type framePose struct {
	index int
	pose  odom.Pose
}

// frameDepth is one frame's depth metrics.
type frameDepth struct {
	index          int
	metric, scaled depth.Metrics
	coverage       float64
}

// mapSample is a frame kept for a depth error figure.
type mapSample struct {
	index int
	left  Frame
	pred  []depth.Map // per estimator; Width 0 where it gave none
}

// Evaluate runs every predictor on the frames of src chosen by opt, compares their
// depth and trajectories with the ground truth, and returns the report. The
// predictors are not closed. When ctx is cancelled, Evaluate stops after the frame in
// progress and returns the evaluation of the frames done (Report.Interrupted set)
// together with ctx's error.
func Evaluate(ctx context.Context, src Source, preds []Predictor, opt Options) (*Evaluation, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if len(preds) == 0 {
		return nil, errors.New("eval: no estimator to evaluate")
	}
	seen := map[string]bool{}
	for _, p := range preds {
		if seen[p.Name()] {
			return nil, fmt.Errorf("eval: two estimators named %q: give them distinct names (eval.Named)", p.Name())
		}
		seen[p.Name()] = true
	}
	info := src.Info()
	if opt.Start >= info.Frames {
		return nil, fmt.Errorf("eval: start %d: the sequence has %d frames", opt.Start, info.Frames)
	}
	end := info.Frames
	if opt.Frames > 0 {
		end = min(end, opt.Start+opt.Frames)
	}
	total := end - opt.Start

	ev := &Evaluation{start: opt.Start, opt: opt}
	var truthPoses []framePose
	for _, p := range preds {
		ev.runs = append(ev.runs, &estimatorRun{p: p})
	}
	targets := mapTargets(opt.Start, end, opt.DepthMaps)
	var counts FrameCounts
	masks := map[[2]int][]bool{}
	began := time.Now()
	interrupted := false

	for i := opt.Start; i < end; i++ {
		if ctx.Err() != nil {
			interrupted = true
			break
		}
		f, err := src.Frame(i)
		if err != nil {
			return nil, err
		}
		ev.stamps = append(ev.stamps, f.CaptureTime)
		counts.Evaluated++
		hasDepth := f.TruthDepth.Width > 0
		if hasDepth {
			counts.WithDepthTruth++
		}
		if f.HasTruthPose {
			truthPoses = append(truthPoses, framePose{i, f.TruthPose})
		}
		var sample *mapSample
		if hasDepth && len(targets) > 0 && i >= targets[0] {
			targets = targets[1:]
			sample = &mapSample{index: i, left: f, pred: make([]depth.Map, len(preds))}
		}

		for k, r := range ev.runs {
			t0 := time.Now()
			pred, err := r.p.Predict(f.StereoFrame)
			dt := time.Since(t0)
			if errors.Is(err, ErrNoOutput) {
				r.missing++
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("eval: %s: frame %d: %w", r.p.Name(), i, err)
			}
			r.times = append(r.times, dt)

			if hasDepth && pred.Depth.Width > 0 {
				pm := pred.Depth
				if pm.Width != f.TruthDepth.Width || pm.Height != f.TruthDepth.Height {
					pm = resampleNearest(pm, f.TruthDepth.Width, f.TruthDepth.Height)
				}
				key := [2]int{pm.Width, pm.Height}
				mask, ok := masks[key]
				if !ok {
					mask = opt.Crop.Mask(pm.Width, pm.Height)
					masks[key] = mask
				}
				if err := r.addDepth(i, f, pm, mask, opt); err != nil {
					return nil, fmt.Errorf("eval: %s: frame %d: %w", r.p.Name(), i, err)
				}
				if sample != nil {
					sample.pred[k] = pm
				}
			}
			if pred.HasPose {
				if !pred.Pose.IsFinite() {
					return nil, fmt.Errorf("eval: %s: frame %d: the predicted pose is not finite", r.p.Name(), i)
				}
				r.poses = append(r.poses, framePose{i, pred.Pose})
			}
		}
		if sample != nil {
			ev.maps = append(ev.maps, *sample)
		}
		if opt.Progress != nil {
			opt.Progress(counts.Evaluated, total, time.Since(began))
		}
	}
	counts.Start, counts.Requested = opt.Start, total
	var notes []string
	if opt.PoseTruth != nil {
		truthPoses = ev.associatePoseTruth(opt.PoseTruth, opt.PoseTruthMaxDiff)
		notes = append(notes, fmt.Sprintf("pose truth from the given TUM trajectory (%d poses), associated by capture time within %v: %d of %d frames matched",
			len(opt.PoseTruth), opt.PoseTruthMaxDiff, len(truthPoses), counts.Evaluated))
	}
	counts.WithPoseTruth = len(truthPoses)
	ev.truth = truthPoses
	for _, r := range ev.runs {
		r.traj = evaluateTrajectory(r.poses, truthPoses, opt.Trajectory)
	}
	ev.Report = ev.buildReport(info, opt, counts)
	ev.Report.Notes = append(ev.Report.Notes, notes...)
	ev.Report.Interrupted = interrupted
	if interrupted {
		return ev, ctx.Err()
	}
	return ev, nil
}

// associatePoseTruth gives the evaluated frames the poses of truth closest in time.
func (ev *Evaluation) associatePoseTruth(truth []odom.StampedPose, maxDiff time.Duration) []framePose {
	frames := make([]odom.StampedPose, len(ev.stamps))
	for k, t := range ev.stamps {
		frames[k].Stamp = t
	}
	var out []framePose
	for _, p := range odom.AssociateByTime(frames, truth, maxDiff) {
		out = append(out, framePose{ev.start + p[0], truth[p[1]].Pose})
	}
	// AssociateByTime orders by the frames' stamps; frame order is what the
	// trajectory needs, and the two differ only for stamps that go backwards.
	slices.SortFunc(out, func(a, b framePose) int { return a.index - b.index })
	return out
}

// addDepth compares one frame's prediction with its truth, metric and median-scaled.
func (r *estimatorRun) addDepth(i int, f Frame, pm depth.Map, mask []bool, opt Options) error {
	metric, err := depth.Compare(pm, f.TruthDepth, mask, opt.compare(false))
	if errors.Is(err, depth.ErrNoValidPixels) {
		r.noValid++
		return nil
	}
	if err != nil {
		return err
	}
	scaled, err := depth.Compare(pm, f.TruthDepth, mask, opt.compare(true))
	if err != nil {
		return err
	}
	r.depth = append(r.depth, frameDepth{
		index: i, metric: metric, scaled: scaled,
		coverage: coverage(pm, f.TruthDepth, mask, opt),
	})
	return nil
}

// coverage is the fraction of the usable truth pixels (in the mask, within the caps)
// where the prediction holds a depth.
func coverage(pred, truth depth.Map, mask []bool, opt Options) float64 {
	maxT := opt.MaxDepthM
	if maxT == 0 {
		maxT = math.MaxFloat64
	}
	var n, have int
	for i, t := range truth.M {
		tv := float64(t)
		if (mask != nil && !mask[i]) || !(tv > 0) || tv < opt.MinDepthM || tv > maxT {
			continue
		}
		n++
		if p := pred.M[i]; p > 0 && p <= math.MaxFloat32 {
			have++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(have) / float64(n)
}

// resampleNearest resizes m to w x h by nearest neighbour (pixel centres aligned), so
// that holes stay holes.
func resampleNearest(m depth.Map, w, h int) depth.Map {
	out := depth.NewMap(w, h)
	if m.Width == 0 || m.Height == 0 {
		return out
	}
	xs := make([]int, w)
	for x := range w {
		xs[x] = min(m.Width-1, int((float64(x)+0.5)*float64(m.Width)/float64(w)))
	}
	for y := range h {
		sy := min(m.Height-1, int((float64(y)+0.5)*float64(m.Height)/float64(h)))
		src := m.M[sy*m.Width : (sy+1)*m.Width]
		dst := out.M[y*w : (y+1)*w]
		for x, sx := range xs {
			dst[x] = src[sx]
		}
	}
	return out
}

// mapTargets returns n frame indices evenly spaced over [start, end).
func mapTargets(start, end, n int) []int {
	if n <= 0 || end <= start {
		return nil
	}
	n = min(n, end-start)
	out := make([]int, 0, n)
	for k := range n {
		// Centres of n equal slices: never the very first frame alone when n > 1.
		out = append(out, start+int((float64(k)+0.5)*float64(end-start)/float64(n)))
	}
	return slices.Compact(out)
}
