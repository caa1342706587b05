package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgedepth/edgedepth/camera/calib"
	"github.com/edgedepth/edgedepth/camera/stereo"
	"github.com/edgedepth/edgedepth/telemetry/command"
)

// The recalibrate command: targetless re-estimation of the stereo rig's extrinsic
// rotation from raw pairs of the live cameras (calib.EstimateRotation), applied to the
// running pipeline only when it lowers the rectified vertical disparity, and saved
// with a backup of the old calibration file.
//
// Args (all optional): {"frames": 10, "every_ms": 300, "apply": true, "save": true}.
// Result:
//
//	{"before": {"median_px": 2.1, "p90_px": 3.4, "matches": 1800},
//	 "after": {"median_px": 0.08, "p90_px": 0.2, "matches": 1850},
//	 "delta_deg": 0.5, "matches": 2100, "inliers": 1900, "frames": 10,
//	 "better": true, "applied": true, "saved": true,
//	 "file": "/etc/edgedepth/stereo.yaml", "backup": "/etc/edgedepth/stereo.yaml.20250102-150405.bak"}
//
// with "not_applied" and "not_saved" saying why when applied or saved is false.

// recalibrateTimeout is the command's time limit: capturing frames × every_ms, then
// matching and estimating on the robot's CPU, take seconds to tens of seconds.
const recalibrateTimeout = 120 * time.Second

// Limits of the recalibrate args.
const (
	recalMinFrames, recalMaxFrames = 2, 60
	recalMaxEveryMs                = 5000
	// recalMaxCapture bounds frames × every_ms: the capture must leave the estimation
	// time within recalibrateTimeout.
	recalMaxCapture = 60 * time.Second
)

// recalibration is the live calibration of an RTSP stereo source: what the
// recalibrate command estimates from and replaces. It is also the daemon's closer of
// the current rectifier.
type recalibration struct {
	src   *stereo.Source
	unitM float64  // source.rtsp.calibration_unit_m: the files' translation unit
	files []string // source.rtsp.calibration
	alpha float64

	busy atomic.Bool // a recalibration is running

	mu     sync.Mutex
	cal    calib.Stereo // current, translation in metres
	rect   *calib.Rectifier
	closed bool // the pipeline has stopped: rect is closed and nothing may be applied
}

// Close closes the current rectifier; the daemon calls it once the pipeline has
// stopped. Nothing is applied after it.
func (r *recalibration) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.rect.Close()
}

var _ io.Closer = (*recalibration)(nil)

type recalibrateArgs struct {
	Frames  int  `json:"frames"`
	EveryMs int  `json:"every_ms"`
	Apply   bool `json:"apply"`
	Save    bool `json:"save"`
}

// RecalibrationStats is the vertical disparity of feature matches between rectified
// images, in pixels.
type RecalibrationStats struct {
	MedianPx float64 `json:"median_px"`
	P90Px    float64 `json:"p90_px"`
	Matches  int     `json:"matches"`
}

// RecalibrationResult is the reply of the recalibrate command.
type RecalibrationResult struct {
	// Before and After: the vertical disparity of the captured pairs rectified with
	// the current and with the re-estimated calibration.
	Before RecalibrationStats `json:"before"`
	After  RecalibrationStats `json:"after"`
	// DeltaDeg is the angle of the rotation correction.
	DeltaDeg float64 `json:"delta_deg"`
	// Matches were pooled over Frames raw pairs; Inliers fit the correction.
	Matches int  `json:"matches"`
	Inliers int  `json:"inliers"`
	Frames  int  `json:"frames"`
	Better  bool `json:"better"`
	CalibrationUpdate
}

// CalibrationUpdate says what became of a new calibration; its fields appear at the top
// level of a command's reply.
type CalibrationUpdate struct {
	// Applied: the live pipeline rectifies with the new calibration; NotApplied says
	// why not.
	Applied    bool   `json:"applied"`
	NotApplied string `json:"not_applied,omitempty"`
	// Saved: File holds the new calibration and Backup the old one (empty when there
	// was no old file); NotSaved says why not.
	Saved    bool   `json:"saved"`
	File     string `json:"file,omitempty"`
	Backup   string `json:"backup,omitempty"`
	NotSaved string `json:"not_saved,omitempty"`
}

// registerRecalibrate adds the recalibrate command to disp.
func (d *Daemon) registerRecalibrate(disp *command.Dispatcher) {
	disp.Register("recalibrate", d.recalibrate, command.WithTimeout(recalibrateTimeout))
}

// recalibrate is the recalibrate command's handler.
func (d *Daemon) recalibrate(ctx context.Context, raw json.RawMessage) (any, error) {
	args, err := parseRecalibrateArgs(raw)
	if err != nil {
		return nil, err
	}
	if d.recal == nil {
		return nil, command.InvalidArgs("recalibration needs source.kind rtsp with a calibration (source.rtsp.calibration); this robot's source is %q", d.cfg.Source.Kind)
	}
	return d.recal.run(ctx, args)
}

func parseRecalibrateArgs(raw json.RawMessage) (recalibrateArgs, error) {
	a := recalibrateArgs{Frames: 10, EveryMs: 300, Apply: true, Save: true}
	if err := command.DecodeArgs(raw, &a); err != nil {
		return a, err
	}
	switch {
	case a.Frames < recalMinFrames || a.Frames > recalMaxFrames:
		return a, command.InvalidArgs("frames: %d must be %d to %d", a.Frames, recalMinFrames, recalMaxFrames)
	case a.EveryMs < 0 || a.EveryMs > recalMaxEveryMs:
		return a, command.InvalidArgs("every_ms: %d must be 0 to %d", a.EveryMs, recalMaxEveryMs)
	case time.Duration(a.Frames-1)*time.Duration(a.EveryMs)*time.Millisecond > recalMaxCapture:
		return a, command.InvalidArgs("every_ms: %d ms between %d frames takes longer than %v", a.EveryMs, a.Frames, recalMaxCapture)
	}
	return a, nil
}

type estimation struct {
	est calib.RotationEstimate
	err error
}

func (r *recalibration) run(ctx context.Context, a recalibrateArgs) (any, error) {
	if !r.busy.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("%w: a recalibration is already running", command.ErrBusy)
	}
	handedOver := false
	defer func() {
		if !handedOver {
			r.busy.Store(false)
		}
	}()

	raw, err := r.src.CaptureRaw(ctx, a.Frames, time.Duration(a.EveryMs)*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("capturing raw stereo pairs: %w", err)
	}
	pairs := make([]calib.FramePair, len(raw))
	for i, p := range raw {
		pairs[i] = calib.FramePair{Left: p.Left, Right: p.Right}
	}
	r.mu.Lock()
	cal := r.cal
	r.mu.Unlock()

	// The estimation takes seconds of CPU and cannot be interrupted: at the deadline
	// the operator gets the timeout while it finishes in the background, is discarded,
	// and only then may another recalibration start.
	done := make(chan estimation, 1)
	handedOver = true
	go func() {
		defer r.busy.Store(false)
		est, err := calib.EstimateRotation(cal, cal.Size, pairs)
		done <- estimation{est, err}
	}()
	var e estimation
	select {
	case e = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("estimating the rotation: %w (the estimate will be discarded)", ctx.Err())
	}
	if e.err != nil {
		if errors.Is(e.err, calib.ErrTooFewMatches) {
			return nil, fmt.Errorf("%w: point the cameras at a textured scene (not a blank wall, not in the dark) and retry", e.err)
		}
		return nil, e.err
	}
	est := e.est
	res := RecalibrationResult{
		Before:   RecalibrationStats{MedianPx: est.Before.Median, P90Px: est.Before.P90, Matches: est.Before.Matches},
		After:    RecalibrationStats{MedianPx: est.After.Median, P90Px: est.After.P90, Matches: est.After.Matches},
		DeltaDeg: est.DeltaDeg,
		Matches:  est.Matches, Inliers: est.Inliers, Frames: len(pairs),
		Better: est.Better,
	}
	keep := ""
	if !est.Better {
		keep = "the correction does not lower the median vertical disparity: the calibration is kept"
	}
	if res.CalibrationUpdate, err = r.update(ctx, est.Corrected, a.Apply, a.Save, keep); err != nil {
		return nil, fmt.Errorf("recalibration not applied: %w", err)
	}
	return res, nil
}

// update applies s to the live pipeline (unless keep says why not, or apply is false)
// and then saves it over the calibration file with a backup (if save, and the
// calibration came from one file). It returns ctx's error, applying nothing, when the
// command's time is up.
func (r *recalibration) update(ctx context.Context, s calib.Stereo, apply, save bool, keep string) (CalibrationUpdate, error) {
	var u CalibrationUpdate
	switch {
	case keep != "":
		u.NotApplied = keep
	case !apply:
		u.NotApplied = "apply is false"
	case ctx.Err() != nil:
		return u, ctx.Err()
	default:
		if err := r.apply(s); err != nil {
			u.NotApplied = err.Error()
		} else {
			u.Applied = true
		}
	}
	switch {
	case !u.Applied:
		u.NotSaved = "not applied"
	case !save:
		u.NotSaved = "save is false"
	case len(r.files) != 1:
		u.NotSaved = fmt.Sprintf("the calibration comes from %d files (%v), not one OpenCV YAML/XML file: write the new one with `edgedepth calib` or by hand", len(r.files), r.files)
	default:
		saved := s
		if r.unitM != 1 {
			saved = saved.ScaleTranslation(1 / r.unitM) // back to the file's unit
		}
		u.File = r.files[0]
		backup, err := calib.SaveWithBackup(r.files[0], saved)
		u.Backup = backup
		if err != nil {
			u.NotSaved = err.Error()
		} else {
			u.Saved = true
		}
	}
	return u, nil
}

// apply makes the live source rectify with corrected and closes the replaced
// rectifier. Only one recalibration runs at a time (busy), so the calibration is still
// the one the estimate started from.
func (r *recalibration) apply(corrected calib.Stereo) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("the pipeline has stopped")
	}
	rect, err := calib.NewRectifier(corrected, corrected.Size, calib.Options{Alpha: r.alpha})
	if err != nil {
		return fmt.Errorf("rectifier for the new calibration: %w", err)
	}
	// SetRectifier returns once no pair uses the previous rectifier: it can be closed.
	prev := r.src.SetRectifier(rect)
	if c, ok := prev.(io.Closer); ok {
		c.Close()
	}
	r.rect, r.cal = rect, corrected
	return nil
}
