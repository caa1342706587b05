package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/odom"
)

// ReportSchema is the version of the summary.json layout; fields may be added within a
// version, never renamed or removed.
const ReportSchema = 1

// Report is the summary of an evaluation, written as summary.json and summary.md. Units
// are in the JSON names (_m metres, _ms milliseconds, _pct percent); the depth ratios
// (abs_rel, rmse_log, the δ accuracies, coverage) have none.
type Report struct {
	Schema int `json:"schema"`
	// Tool and Version name the program that wrote the report; Version is set by the
	// caller.
	Tool    string    `json:"tool"`
	Version string    `json:"version,omitempty"`
	Created time.Time `json:"created"`
	// Interrupted is true when the evaluation was stopped before its last frame: the
	// numbers cover Frames.Evaluated frames only.
	Interrupted bool          `json:"interrupted"`
	Source      SourceInfo    `json:"source"`
	Options     ReportOptions `json:"options"`
	Frames      FrameCounts   `json:"frames"`
	// Estimators are in the order they were given.
	Estimators []EstimatorReport `json:"estimators"`
	// Files are the files Write produced, relative to its directory.
	Files []string `json:"files,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// ReportOptions are the options of the evaluation, as used.
type ReportOptions struct {
	MinDepthM float64 `json:"min_depth_m"`
	// MaxDepthM 0 means no cap.
	MaxDepthM float64 `json:"max_depth_m"`
	Crop      Crop    `json:"crop"`
	// CropRowsFrac and CropColsFrac are the crop as fractions [from, to) of the image
	// height and width.
	CropRowsFrac [2]float64 `json:"crop_rows_frac"`
	CropColsFrac [2]float64 `json:"crop_cols_frac"`
	// DepthAveraging says how frames are combined: the mean over frames of each
	// frame's metrics, as the KITTI evaluation of Monodepth2 does.
	DepthAveraging string `json:"depth_averaging"`
	// MedianScaling says how the median-scaled metrics scale each prediction.
	MedianScaling string `json:"median_scaling"`
	// RPE options (odom.TrajectoryOptions with its defaults filled in).
	RPESegmentLengthsM []float64 `json:"rpe_segment_lengths_m"`
	RPESegmentStep     int       `json:"rpe_segment_step_frames"`
	RPEDeltaFrames     int       `json:"rpe_delta_frames"`
	// PoseTruthMaxDiffMS is the association window of an external pose truth, if any.
	PoseTruthMaxDiffMS float64 `json:"pose_truth_max_diff_ms,omitempty"`
}

// FrameCounts count the frames of the evaluation.
type FrameCounts struct {
	// Start is the first frame's index in the sequence; Requested the number of frames
	// asked for from it, Evaluated the number read and given to every estimator.
	Start     int `json:"start"`
	Requested int `json:"requested"`
	Evaluated int `json:"evaluated"`
	// WithDepthTruth and WithPoseTruth count the evaluated frames with ground truth.
	WithDepthTruth int `json:"with_depth_truth"`
	WithPoseTruth  int `json:"with_pose_truth"`
}

// EstimatorReport is one estimator's results.
type EstimatorReport struct {
	Name string `json:"name"`
	// FramesOutput counts the frames the estimator gave a prediction for;
	// FramesMissing those it had nothing for (ErrNoOutput: the daemon published no
	// depth for them, say). They add up to Frames.Evaluated.
	FramesOutput  int `json:"frames_output"`
	FramesMissing int `json:"frames_missing"`
	// Depth is absent when the estimator gave no depth for any frame with depth truth.
	Depth *DepthReport `json:"depth,omitempty"`
	// Trajectory is absent when the estimator gave no pose.
	Trajectory *TrajectoryReport `json:"trajectory,omitempty"`
	// TimePerFrameMS is the wall time of Predict, over the frames with output.
	TimePerFrameMS Timing   `json:"time_per_frame_ms"`
	Notes          []string `json:"notes,omitempty"`
}

// DepthReport are the depth metrics of one estimator.
type DepthReport struct {
	// Frames is the number of frames averaged: those with depth truth and a
	// prediction sharing at least one valid pixel. FramesNoValidPixels are frames
	// with both but no such pixel (left out of the averages).
	Frames              int `json:"frames"`
	FramesNoValidPixels int `json:"frames_no_valid_pixels"`
	// Metric judges the depth as it is; MedianScaled after scaling each frame's
	// prediction by median(truth)/median(prediction) (monocular estimators).
	Metric       DepthMetrics `json:"metric"`
	MedianScaled DepthMetrics `json:"median_scaled"`
	// ScaleMean and ScaleStd are the mean and standard deviation over frames of the
	// median scaling factors: 1 and 0 for a metric estimator with unbiased scale.
	ScaleMean float64 `json:"median_scale_mean"`
	ScaleStd  float64 `json:"median_scale_std"`
	// Coverage is the mean over frames of the fraction of usable truth pixels (within
	// crop and caps) where the estimator gave a depth; metrics count only those.
	Coverage float64 `json:"coverage"`
}

// DepthMetrics are the KITTI depth metrics, averaged over frames (depth.Metrics).
type DepthMetrics struct {
	AbsRel  float64 `json:"abs_rel"`
	SqRelM  float64 `json:"sq_rel_m"`
	RMSEM   float64 `json:"rmse_m"`
	RMSELog float64 `json:"rmse_log"`
	// Delta1..3 are the fractions of pixels with max(p/t, t/p) below 1.25, 1.25², 1.25³.
	Delta1 float64 `json:"delta_1_25"`
	Delta2 float64 `json:"delta_1_25_2"`
	Delta3 float64 `json:"delta_1_25_3"`
	// Pixels is the number of pixels compared over all frames.
	Pixels int64 `json:"pixels"`
}

// TrajectoryReport are the trajectory metrics of one estimator (odom.TrajectoryMetrics,
// whose fields appear inline in JSON).
type TrajectoryReport struct {
	// FramesWithPose counts the frames the estimator gave a pose for; of those, the
	// ones with pose truth are compared (TrajectoryMetrics.Frames).
	FramesWithPose int `json:"frames_with_pose"`
	// Error says why there are no metrics (fewer than 2 frames with truth, no
	// motion, ...); empty when there are.
	Error string `json:"error,omitempty"`
	odom.TrajectoryMetrics
}

// Timing summarises per-frame times in milliseconds.
type Timing struct {
	Mean   float64 `json:"mean"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Max    float64 `json:"max"`
}

func timingOf(ds []time.Duration) Timing {
	if len(ds) == 0 {
		return Timing{}
	}
	ms := make([]float64, len(ds))
	var sum float64
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
		sum += ms[i]
	}
	slices.Sort(ms)
	return Timing{Mean: sum / float64(len(ms)), Median: quantile(ms, 0.5), P90: quantile(ms, 0.9), Max: ms[len(ms)-1]}
}

// quantile of sorted v by linear interpolation.
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	pos := q * float64(len(v)-1)
	i := int(pos)
	if i+1 >= len(v) {
		return v[len(v)-1]
	}
	return v[i] + (pos-float64(i))*(v[i+1]-v[i])
}

func (ev *Evaluation) buildReport(info SourceInfo, opt Options, counts FrameCounts) Report {
	top, bottom, left, right := opt.Crop.Fractions()
	to := trajectoryDefaults(opt.Trajectory)
	r := Report{
		Schema: ReportSchema, Tool: "edgedepth eval", Created: time.Now().UTC(), Source: info, Frames: counts,
		Options: ReportOptions{
			MinDepthM: opt.MinDepthM, MaxDepthM: opt.MaxDepthM, Crop: opt.Crop,
			CropRowsFrac: [2]float64{top, bottom}, CropColsFrac: [2]float64{left, right},
			DepthAveraging:     "mean over frames of each frame's metrics",
			MedianScaling:      "per frame: median(truth)/median(prediction) over the pixels compared",
			RPESegmentLengthsM: to.SegmentLengthsM, RPESegmentStep: to.SegmentStepFrames, RPEDeltaFrames: to.RPEDeltaFrames,
		},
	}
	if r.Options.Crop == "" {
		r.Options.Crop = CropNone
	}
	if opt.PoseTruth != nil {
		r.Options.PoseTruthMaxDiffMS = float64(opt.PoseTruthMaxDiff) / float64(time.Millisecond)
	}
	for _, run := range ev.runs {
		er := EstimatorReport{
			Name: run.p.Name(), FramesOutput: len(run.times), FramesMissing: run.missing,
			TimePerFrameMS: timingOf(run.times),
		}
		if len(run.depth) > 0 || run.noValid > 0 {
			er.Depth = depthReport(run.depth, run.noValid)
		}
		if t := run.traj; t != nil {
			tr := &TrajectoryReport{FramesWithPose: t.predicted, TrajectoryMetrics: t.metrics}
			if t.err != nil {
				tr.Error = t.err.Error()
			}
			er.Trajectory = tr
		}
		if n, ok := run.p.(Noter); ok {
			er.Notes = n.Notes()
		}
		r.Estimators = append(r.Estimators, er)
	}
	return r
}

// trajectoryDefaults fills in the defaults odom applies to zero options, for the report.
func trajectoryDefaults(o odom.TrajectoryOptions) odom.TrajectoryOptions {
	if o.SegmentLengthsM == nil {
		o.SegmentLengthsM = odom.DefaultSegmentLengthsM
	}
	if o.SegmentStepFrames == 0 {
		o.SegmentStepFrames = 1
	}
	if o.RPEDeltaFrames == 0 {
		o.RPEDeltaFrames = 1
	}
	return o
}

func depthReport(frames []frameDepth, noValid int) *DepthReport {
	d := &DepthReport{Frames: len(frames), FramesNoValidPixels: noValid}
	if len(frames) == 0 {
		return d
	}
	avg := func(get func(frameDepth) depth.Metrics) DepthMetrics {
		var m DepthMetrics
		for _, f := range frames {
			x := get(f)
			m.AbsRel += x.AbsRel
			m.SqRelM += x.SqRel
			m.RMSEM += x.RMSE
			m.RMSELog += x.RMSELog
			m.Delta1 += x.Delta1
			m.Delta2 += x.Delta2
			m.Delta3 += x.Delta3
			m.Pixels += int64(x.N)
		}
		n := float64(len(frames))
		m.AbsRel /= n
		m.SqRelM /= n
		m.RMSEM /= n
		m.RMSELog /= n
		m.Delta1 /= n
		m.Delta2 /= n
		m.Delta3 /= n
		return m
	}
	d.Metric = avg(func(f frameDepth) depth.Metrics { return f.metric })
	d.MedianScaled = avg(func(f frameDepth) depth.Metrics { return f.scaled })
	var s, s2, c float64
	for _, f := range frames {
		s += f.scaled.Scale
		s2 += f.scaled.Scale * f.scaled.Scale
		c += f.coverage
	}
	n := float64(len(frames))
	d.ScaleMean = s / n
	d.ScaleStd = math.Sqrt(max(0, s2/n-d.ScaleMean*d.ScaleMean))
	d.Coverage = c / n
	return d
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("eval: report: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// Markdown renders the report for people: what was evaluated, one table per group of
// metrics with one row per estimator, the notes and the plots.
func (r *Report) Markdown() []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Evaluation: %s\n\n", r.Source.Path)
	p("%s, %s UTC.", strings.TrimSpace(r.Tool+" "+r.Version), r.Created.Format("2006-01-02 15:04:05"))
	if r.Interrupted {
		p(" **Interrupted**: the numbers cover the %d frames evaluated before the stop.", r.Frames.Evaluated)
	}
	p("\n\n")
	s := r.Source
	p("- Sequence: %s, %d frames, %dx%d px, baseline %.3f m", s.Kind, s.Frames, s.Width, s.Height, s.BaselineM)
	if s.FPS > 0 {
		p(", %.2f fps", s.FPS)
	}
	p("\n- Frames evaluated: %d from frame %d (%d with depth truth, %d with pose truth)\n",
		r.Frames.Evaluated, r.Frames.Start, r.Frames.WithDepthTruth, r.Frames.WithPoseTruth)
	o := r.Options
	maxD := "no cap"
	if o.MaxDepthM > 0 {
		maxD = fmt.Sprintf("%g m", o.MaxDepthM)
	}
	p("- Depth: truth between %g m and %s, crop %s (rows %.4g–%.4g, columns %.4g–%.4g of the image), %s\n",
		o.MinDepthM, maxD, o.Crop, o.CropRowsFrac[0], o.CropRowsFrac[1], o.CropColsFrac[0], o.CropColsFrac[1], o.DepthAveraging)
	p("- Estimators: ")
	for i, e := range r.Estimators {
		if i > 0 {
			p(", ")
		}
		p("%s (%d frames with output, %d missing)", e.Name, e.FramesOutput, e.FramesMissing)
	}
	p("\n\n")

	var withDepth, withTraj []EstimatorReport
	for _, e := range r.Estimators {
		if e.Depth != nil && e.Depth.Frames > 0 {
			withDepth = append(withDepth, e)
		}
		if e.Trajectory != nil {
			withTraj = append(withTraj, e)
		}
	}
	depthTable := func(title string, get func(*DepthReport) DepthMetrics) {
		p("## %s\n\n", title)
		p("| estimator | frames | coverage | abs rel | sq rel (m) | RMSE (m) | RMSE log | δ<1.25 | δ<1.25² | δ<1.25³ |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, e := range withDepth {
			m := get(e.Depth)
			p("| %s | %d | %.3f | %.4f | %.4f | %.3f | %.4f | %.4f | %.4f | %.4f |\n", e.Name, e.Depth.Frames, e.Depth.Coverage,
				m.AbsRel, m.SqRelM, m.RMSEM, m.RMSELog, m.Delta1, m.Delta2, m.Delta3)
		}
		p("\n")
	}
	if len(withDepth) > 0 {
		depthTable("Depth, metric", func(d *DepthReport) DepthMetrics { return d.Metric })
		depthTable("Depth, median-scaled", func(d *DepthReport) DepthMetrics { return d.MedianScaled })
		p("Median scale (truth/prediction) over frames: ")
		for i, e := range withDepth {
			if i > 0 {
				p("; ")
			}
			p("%s %.4f ± %.4f", e.Name, e.Depth.ScaleMean, e.Depth.ScaleStd)
		}
		p(". Coverage: the fraction of usable truth pixels where the estimator gave a depth; the metrics count only those.\n\n")
	} else {
		p("## Depth\n\nNo depth to compare (no depth truth, or no estimator gave depth).\n\n")
	}

	if len(withTraj) > 0 {
		p("## Trajectory\n\n")
		p("| estimator | frames | length (m) | ATE SE(3) RMSE (m) | ATE Sim(3) RMSE (m) | Sim(3) scale | RPE (%%) | RPE (°/m) | RPE frame RMSE (m) | drift (%% of distance) |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, e := range withTraj {
			t := e.Trajectory
			if t.Error != "" {
				p("| %s | %d | — | — | — | — | — | — | — | — |\n", e.Name, t.Frames)
				continue
			}
			rpeT, rpeR := "—", "—"
			if t.RPESegments > 0 {
				rpeT, rpeR = fmt.Sprintf("%.3f", t.RPETransPct), fmt.Sprintf("%.4f", t.RPERotDegPerM)
			}
			p("| %s | %d | %.2f | %.4f | %.4f | %.4f | %s | %s | %.4f | %.3f |\n", e.Name, t.Frames, t.LengthM,
				t.ATESE3RMSEM, t.ATESim3RMSEM, t.Sim3Scale, rpeT, rpeR, t.RPEFrameTransRMSEM, t.DriftPct)
		}
		p("\nRPE: KITTI's relative error over segments of %v m of true path (no alignment: scale errors count; — when the path is shorter than every segment); ",
			o.RPESegmentLengthsM)
		p("frame RMSE: between frames %d apart; drift: end-point error after aligning the first pose.\n", o.RPEDeltaFrames)
		for _, e := range withTraj {
			if e.Trajectory.Error != "" {
				p("- %s: no trajectory metrics: %s\n", e.Name, e.Trajectory.Error)
			}
		}
		p("\n")
	} else {
		p("## Trajectory\n\nNo estimator gave poses.\n\n")
	}

	p("## Time per frame (ms)\n\n| estimator | mean | median | p90 | max |\n|---|---:|---:|---:|---:|\n")
	for _, e := range r.Estimators {
		t := e.TimePerFrameMS
		p("| %s | %.1f | %.1f | %.1f | %.1f |\n", e.Name, t.Mean, t.Median, t.P90, t.Max)
	}
	p("\n")

	var notes []string
	notes = append(notes, r.Source.Notes...)
	notes = append(notes, r.Notes...)
	for _, e := range r.Estimators {
		for _, n := range e.Notes {
			notes = append(notes, e.Name+": "+n)
		}
	}
	if len(notes) > 0 {
		p("## Notes\n\n")
		for _, n := range notes {
			p("- %s\n", n)
		}
		p("\n")
	}
	var plots []string
	for _, f := range r.Files {
		if strings.HasSuffix(f, ".png") {
			plots = append(plots, f)
		}
	}
	if len(plots) > 0 {
		p("## Plots\n\n")
		for _, f := range plots {
			p("![%s](%s)\n\n", strings.TrimSuffix(f, ".png"), f)
		}
	}
	return b.Bytes()
}
