package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/record"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/runtime/config"
)

// ErrNoCalibration: a recording of RTSP cameras needs their stereo calibration.
var ErrNoCalibration = errors.New("source.rtsp.calibration is empty: a recording for training needs rectified " +
	"frames and the stereo baseline, and both come from the calibration. Calibrate the rig from chessboard " +
	"pairs with `edgedepth calib --board 9x6 --square 0.025 --out stereo.yaml IMAGE...` (or, on a daemon " +
	"already running with a calibration, with the calibrate/chessboard command: `edgedepth cmd " +
	"calibrate/chessboard save=true ...`), then list the file under source.rtsp.calibration")

// ErrNothingRecorded: the recording ended before the source delivered a single pair.
var ErrNothingRecorded = errors.New("nothing recorded: no stereo pair arrived")

// RecordOptions say where a recording goes and when it ends.
type RecordOptions struct {
	// Out is the sequence directory; it must not exist or be empty.
	Out string
	// Frames and Duration end the recording (record.Options); both 0: when ctx ends.
	Frames   int
	Duration time.Duration
	// QueueLen is how many pairs may wait for the disk (default record.DefaultQueueLen).
	QueueLen int
	// Progress, when set, receives the recording's state about once a second.
	Progress func(RecordProgress)
}

// RecordProgress is a recording's state, with what the source lost before the recorder
// saw its pairs.
type RecordProgress struct {
	record.Stats
	// LeftFrames and RightFrames count the pictures the cameras delivered (RTSP; a
	// side-by-side camera counts under LeftFrames). 0 for the simulated rig.
	LeftFrames, RightFrames uint64
	// UnpairedLeft and UnpairedRight count pictures that found no partner (RTSP).
	UnpairedLeft, UnpairedRight uint64
	// SourceDropped counts pairs the source lost itself: rectification behind or
	// failing (RTSP), frames rendered too late (the simulated rig).
	SourceDropped uint64
}

// RecordResult is what a finished recording holds.
type RecordResult struct {
	RecordProgress
	// Dir is the sequence directory and Calib its calib.yaml.
	Dir   string
	Calib sim.Calib
}

// recordSource is the configured source, ready to record.
type recordSource struct {
	src   camera.Source
	calib sim.Calib // FPS is provisional when measureFPS is set
	// measureFPS: the frame rate is measured while recording (real cameras).
	measureFPS bool
	// cameraFPS is the cameras' measured frame rate (0: unknown), with measureFPS.
	cameraFPS func() float64
	progress  func(*RecordProgress)
	close     func()
}

// Record records the configured stereo source into a new sequence directory in the
// format of camera/sim (rectified left and right frames, capture times, calib.yaml with
// the rectified intrinsics and baseline; depth and poses only from the simulated rig).
// It ends as opts says or when ctx ends, and always finalises what it recorded:
// calib.yaml is written last, so a directory without it is a recording that was killed.
// It refuses an Out that is not empty (sim.ErrNotEmpty) and RTSP cameras without a
// calibration (ErrNoCalibration).
func Record(ctx context.Context, cfg config.Config, opts RecordOptions, log *slog.Logger) (RecordResult, error) {
	res := RecordResult{Dir: opts.Out}
	if opts.Out == "" {
		return res, errors.New("record: no output directory")
	}
	ro := record.Options{Frames: opts.Frames, Duration: opts.Duration, QueueLen: opts.QueueLen}
	if err := ro.Validate(); err != nil {
		return res, err
	}
	rs, err := openRecordSource(cfg, log)
	if err != nil {
		return res, err
	}
	defer rs.close()

	_, statErr := os.Stat(opts.Out)
	created := errors.Is(statErr, fs.ErrNotExist)
	sw, err := sim.CreateSequence(opts.Out, rs.calib)
	if err != nil {
		return res, err
	}
	progress := func(st record.Stats) RecordProgress {
		p := RecordProgress{Stats: st}
		rs.progress(&p)
		return p
	}
	if opts.Progress != nil {
		ro.Progress = func(st record.Stats) { opts.Progress(progress(st)) }
	}
	st, recErr := record.Record(ctx, rs.src, sw, ro)
	res.RecordProgress = progress(st)

	if st.Written == 0 {
		// Leave no empty skeleton behind: it would make the same --out "not empty".
		for _, sub := range []string{"left", "right"} {
			os.Remove(filepath.Join(opts.Out, sub))
		}
		if created {
			os.Remove(opts.Out)
		}
		if recErr != nil {
			return res, recErr
		}
		return res, ErrNothingRecorded
	}
	res.Calib = rs.calib
	if rs.measureFPS {
		if fps := measuredFPS(st, rs.cameraFPS()); fps > 0 {
			if err := sw.SetFPS(fps); err != nil {
				return res, errors.Join(recErr, err)
			}
			res.Calib.FPS = fps
		}
	}
	return res, errors.Join(recErr, sw.Close())
}

// measuredFPS is the rate of the recorded pairs: the median frame period when there
// are two pairs or more, else the cameras' measured rate (0: unknown).
func measuredFPS(st record.Stats, cameraFPS float64) float64 {
	if st.Period > 0 {
		return 1 / st.Period.Seconds()
	}
	return cameraFPS
}

// openRecordSource builds the configured source and the calibration of what it
// delivers; it connects to nothing yet.
func openRecordSource(cfg config.Config, log *slog.Logger) (*recordSource, error) {
	switch cfg.Source.Kind {
	case "sim":
		w, err := sim.NewWorld(cfg.Source.Sim)
		if err != nil {
			return nil, fmt.Errorf("source.sim: %w", err)
		}
		src := sim.NewSource(w)
		return &recordSource{
			src:      src,
			calib:    sim.CalibOf(w),
			progress: func(p *RecordProgress) { p.SourceDropped = src.Skipped() },
			close:    func() {},
		}, nil
	case "rtsp":
		r := cfg.Source.RTSP
		if len(r.Calibration) == 0 {
			return nil, ErrNoCalibration
		}
		rs, err := buildRTSPSource(r, nil, log)
		if err != nil {
			return nil, err
		}
		k := rs.rect.Intrinsics()
		// Provisional: replaced by the measured rate before calib.yaml is written.
		fps := 30.0
		if p := r.Pairing.FramePeriod; p > 0 {
			fps = 1 / p.Seconds()
		}
		return &recordSource{
			src: rs.src,
			calib: sim.Calib{
				Fx: k.Fx, Fy: k.Fy, Cx: k.Cx, Cy: k.Cy, Width: k.Width, Height: k.Height,
				BaselineM: rs.rect.BaselineM(), FPS: fps,
			},
			measureFPS: true,
			cameraFPS:  func() float64 { return rs.src.Stats().Left.FPS },
			progress: func(p *RecordProgress) {
				s := rs.src.Stats()
				p.LeftFrames, p.RightFrames = s.Left.Frames, s.Right.Frames
				p.UnpairedLeft, p.UnpairedRight = s.Pairing.UnpairedLeft, s.Pairing.UnpairedRight
				p.SourceDropped = s.DroppedPairs + s.RectifyErrors
			},
			close: func() { rs.rect.Close() },
		}, nil
	}
	return nil, fmt.Errorf("source.kind: %q unknown", cfg.Source.Kind)
}
