package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/runtime/config"
	"github.com/edgedepth/edgedepth/telemetry/command"
)

func TestChessboardArgs(t *testing.T) {
	def := chessboardArgs{Board: "9x6", SquareM: 0.025, Pairs: 12, EveryMs: 700, cols: 9, rows: 6}
	a, err := parseChessboardArgs(nil)
	if err != nil || a != def {
		t.Fatalf("no args: %+v, %v; want the defaults %+v", a, err, def)
	}
	a, err = parseChessboardArgs(json.RawMessage(`{"board": "7X5", "square_m": 0.03, "pairs": 3, "apply": true, "save": true}`))
	if err != nil || a != (chessboardArgs{Board: "7X5", SquareM: 0.03, Pairs: 3, EveryMs: 700, Apply: true, Save: true, cols: 7, rows: 5}) {
		t.Fatalf("some args: %+v, %v", a, err)
	}
	for args, want := range map[string]string{
		`{"board": "9"}`:                  `board: "9" is not COLSxROWS`,
		`{"board": "9x"}`:                 `board: "9x" is not COLSxROWS`,
		`{"board": "2x6"}`:                "board: 2x6: each side needs 3 to 100",
		`{"board": 96}`:                   "board: want a JSON string",
		`{"square_m": 0}`:                 "square_m: 0 must be above 0",
		`{"square_m": 25}`:                "square_m: 25 must be above 0 and at most 1",
		`{"pairs": 2}`:                    "pairs: 2 must be 3 to 60",
		`{"pairs": 61}`:                   "pairs: 61 must be 3 to 60",
		`{"every_ms": -1}`:                "every_ms: -1 must be 0 to 5000",
		`{"pairs": 60, "every_ms": 2000}`: "every_ms: 2000 ms between 60 pairs takes longer than 1m40s",
		`{"apply": "yes"}`:                "apply: want a JSON boolean",
		`{"pair": 10}`:                    `unknown field "pair"`,
	} {
		_, err := parseChessboardArgs(json.RawMessage(args))
		if !errors.Is(err, command.ErrInvalidArgs) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want invalid args saying %q", args, err, want)
		}
	}
}

// The sim source has no calibration to replace: invalid_args, as recalibrate.
func TestChessboardSimSource(t *testing.T) {
	d := New(config.Default(), slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	_, err := d.calibrateChessboard(context.Background(), json.RawMessage(`{}`))
	if !errors.Is(err, command.ErrInvalidArgs) || !strings.Contains(err.Error(), "needs source.kind rtsp with a calibration") ||
		!strings.Contains(err.Error(), `"sim"`) {
		t.Fatalf("calibrate/chessboard on the sim source: %v", err)
	}
}

// One calibration change at a time: while a recalibration runs, the chessboard
// calibration is busy.
func TestChessboardBusy(t *testing.T) {
	r := &recalibration{}
	r.busy.Store(true)
	_, err := r.chessboard(context.Background(), chessboardArgs{Pairs: 3, cols: 9, rows: 6, SquareM: 0.025})
	if !errors.Is(err, command.ErrBusy) {
		t.Fatalf("err = %v, want busy", err)
	}
}
