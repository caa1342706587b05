package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edgedepth/edgedepth/camera/calib"
	"github.com/edgedepth/edgedepth/telemetry/command"
)

// The calibrate/chessboard command: a full stereo calibration (intrinsics, distortion
// and extrinsics) from chessboard pairs captured from the live cameras, with the
// procedure of `edgedepth calib` (calib.CalibrateChessboardFrames). Pairs that do not
// show the whole board in both eyes are skipped and more are captured until enough are
// usable. The result is applied to the running pipeline only when asked, and saved
// with a backup of the old calibration only when asked and applied.
//
// Args (all optional): {"board": "9x6", "square_m": 0.025, "pairs": 12,
// "every_ms": 700, "apply": false, "save": false}. Result:
//
//	{"pairs_used": 12, "pairs_rejected": 3, "pairs_seen": 15,
//	 "rms_px": 0.41, "epipolar_px": 0.33, "baseline_m": 0.0836, "fx": 534.0,
//	 "applied": true, "saved": true, "file": "/etc/edgedepth/stereo.yaml",
//	 "backup": "/etc/edgedepth/stereo.yaml.20250102-150405.bak"}
//
// with "not_applied" and "not_saved" saying why when applied or saved is false.

// chessboardTimeout is the command's time limit: capturing pairs while the operator
// moves the board around, then calibrating on the robot's CPU.
const chessboardTimeout = 180 * time.Second

// chessboardCalibReserve is the part of the command's time kept for the calibration:
// capturing stops this long before the deadline.
const chessboardCalibReserve = 30 * time.Second

// Limits of the calibrate/chessboard args.
const (
	chessMinPairs, chessMaxPairs = 3, 60
	chessMaxEveryMs              = 5000
	chessMaxSquareM              = 1.0
	chessMaxCorners              = 100 // per side of the board
	// chessMaxCapture bounds pairs × every_ms, leaving time for rejected pairs and the
	// calibration within chessboardTimeout.
	chessMaxCapture = 100 * time.Second
)

type chessboardArgs struct {
	Board   string  `json:"board"`
	SquareM float64 `json:"square_m"`
	Pairs   int     `json:"pairs"`
	EveryMs int     `json:"every_ms"`
	Apply   bool    `json:"apply"`
	Save    bool    `json:"save"`

	cols, rows int
}

// ChessboardCalibrationResult is the reply of the calibrate/chessboard command.
type ChessboardCalibrationResult struct {
	// PairsUsed showed the board in both eyes; PairsRejected did not; PairsSeen is
	// every pair captured.
	PairsUsed     int `json:"pairs_used"`
	PairsRejected int `json:"pairs_rejected"`
	PairsSeen     int `json:"pairs_seen"`
	// RMSPx is stereoCalibrate's RMS reprojection error, EpipolarPx the mean epipolar
	// error (OpenCV stereo_calib's), both in pixels.
	RMSPx      float64 `json:"rms_px"`
	EpipolarPx float64 `json:"epipolar_px"`
	BaselineM  float64 `json:"baseline_m"`
	Fx         float64 `json:"fx"`
	CalibrationUpdate
}

// registerChessboard adds the calibrate/chessboard command to disp.
func (d *Daemon) registerChessboard(disp *command.Dispatcher) {
	disp.Register("calibrate/chessboard", d.calibrateChessboard, command.WithTimeout(chessboardTimeout))
}

// calibrateChessboard is the calibrate/chessboard command's handler.
func (d *Daemon) calibrateChessboard(ctx context.Context, raw json.RawMessage) (any, error) {
	args, err := parseChessboardArgs(raw)
	if err != nil {
		return nil, err
	}
	if d.recal == nil {
		return nil, command.InvalidArgs("chessboard calibration needs source.kind rtsp with a calibration (source.rtsp.calibration); this robot's source is %q", d.cfg.Source.Kind)
	}
	return d.recal.chessboard(ctx, args)
}

func parseChessboardArgs(raw json.RawMessage) (chessboardArgs, error) {
	a := chessboardArgs{Board: "9x6", SquareM: 0.025, Pairs: 12, EveryMs: 700}
	if err := command.DecodeArgs(raw, &a); err != nil {
		return a, err
	}
	c, r, ok := strings.Cut(strings.ToLower(a.Board), "x")
	var errC, errR error
	a.cols, errC = strconv.Atoi(c)
	a.rows, errR = strconv.Atoi(r)
	switch {
	case !ok || errC != nil || errR != nil:
		return a, command.InvalidArgs("board: %q is not COLSxROWS inner corners, e.g. 9x6", a.Board)
	case a.cols < 3 || a.rows < 3 || a.cols > chessMaxCorners || a.rows > chessMaxCorners:
		return a, command.InvalidArgs("board: %dx%d: each side needs 3 to %d inner corners", a.cols, a.rows, chessMaxCorners)
	case !(a.SquareM > 0 && a.SquareM <= chessMaxSquareM):
		return a, command.InvalidArgs("square_m: %g must be above 0 and at most %g (metres)", a.SquareM, chessMaxSquareM)
	case a.Pairs < chessMinPairs || a.Pairs > chessMaxPairs:
		return a, command.InvalidArgs("pairs: %d must be %d to %d", a.Pairs, chessMinPairs, chessMaxPairs)
	case a.EveryMs < 0 || a.EveryMs > chessMaxEveryMs:
		return a, command.InvalidArgs("every_ms: %d must be 0 to %d", a.EveryMs, chessMaxEveryMs)
	case time.Duration(a.Pairs-1)*time.Duration(a.EveryMs)*time.Millisecond > chessMaxCapture:
		return a, command.InvalidArgs("every_ms: %d ms between %d pairs takes longer than %v", a.EveryMs, a.Pairs, chessMaxCapture)
	}
	return a, nil
}

type chessboardCalibration struct {
	res calib.ChessboardResult
	err error
}

func (r *recalibration) chessboard(ctx context.Context, a chessboardArgs) (any, error) {
	// One calibration change at a time: this and recalibrate share busy.
	if !r.busy.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("%w: a recalibration is already running", command.ErrBusy)
	}
	handedOver := false
	defer func() {
		if !handedOver {
			r.busy.Store(false)
		}
	}()
	board := calib.Board{Cols: a.cols, Rows: a.rows, SquareM: a.SquareM}
	every := time.Duration(a.EveryMs) * time.Millisecond

	// Capture until enough pairs show the board, leaving time for the calibration.
	capCtx := ctx
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) > 2*chessboardCalibReserve {
		var cancel context.CancelFunc
		capCtx, cancel = context.WithDeadline(ctx, dl.Add(-chessboardCalibReserve))
		defer cancel()
	}
	var (
		used       []calib.FramePair
		seen       int
		lastReason string
	)
	for len(used) < a.Pairs {
		raw, capErr := r.src.CaptureRaw(capCtx, a.Pairs-len(used), every)
		for _, p := range raw {
			fp := calib.FramePair{Left: p.Left, Right: p.Right}
			seen++
			found, reason, err := calib.ChessboardInFrames(fp, board)
			if err != nil {
				return nil, fmt.Errorf("looking for the chessboard: %w", err)
			}
			if found {
				used = append(used, fp)
			} else {
				lastReason = reason
			}
			if len(used) == a.Pairs {
				break
			}
		}
		if len(used) == a.Pairs {
			break
		}
		if capErr != nil {
			if capCtx.Err() != nil && ctx.Err() == nil {
				break // capture time is up: report below
			}
			return nil, fmt.Errorf("capturing raw stereo pairs (%d of %d usable so far, %d rejected): %w",
				len(used), a.Pairs, seen-len(used), capErr)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(used) < a.Pairs {
		msg := fmt.Sprintf("only %d of %d pairs show the whole %dx%d board in both cameras (%d seen, %d rejected",
			len(used), a.Pairs, a.cols, a.rows, seen, seen-len(used))
		if lastReason != "" {
			msg += ", last: " + lastReason
		}
		return nil, fmt.Errorf("%s) before the time ran out: hold the board fully in view of both cameras, well lit, and move it slowly", msg)
	}

	// The calibration takes seconds of CPU and cannot be interrupted: as in
	// recalibrate, at the deadline it is discarded and busy released when it ends.
	done := make(chan chessboardCalibration, 1)
	handedOver = true
	go func() {
		defer r.busy.Store(false)
		res, err := calib.CalibrateChessboardFrames(used, board, nil)
		done <- chessboardCalibration{res, err}
	}()
	var c chessboardCalibration
	select {
	case c = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("chessboard calibration: %w (the calibration will be discarded)", ctx.Err())
	}
	if c.err != nil {
		return nil, c.err
	}
	s := c.res.Stereo
	res := ChessboardCalibrationResult{
		PairsUsed: len(c.res.PairsUsed), PairsRejected: seen - len(c.res.PairsUsed), PairsSeen: seen,
		RMSPx: c.res.RMS, EpipolarPx: c.res.EpipolarError, BaselineM: s.Baseline(), Fx: s.K1[0],
	}
	var err error
	if res.CalibrationUpdate, err = r.update(ctx, s, a.Apply, a.Save, ""); err != nil {
		return nil, fmt.Errorf("chessboard calibration not applied: %w", err)
	}
	return res, nil
}
