package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/camera/sim"
	edruntime "github.com/edgedepth/edgedepth/runtime"
)

// smallSim is a configuration of a small, fast simulated rig.
const smallSim = `
source:
  kind: sim
  sim:
    scene: room
    width: 160
    height: 120
    fps: 20
`

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "edgedepth.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runRecord(args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	err = cmdRecord(args, &o, &e)
	return o.String(), e.String(), err
}

func TestRecordUsage(t *testing.T) {
	cfg := writeConfig(t, smallSim)
	out := filepath.Join(t.TempDir(), "rec")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no out", []string{"--config", cfg, "--frames", "3"}, "--out is required"},
		{"no amount", []string{"--config", cfg, "--out", out}, "--duration (e.g. 30s) or --frames N"},
		{"negative frames", []string{"--config", cfg, "--out", out, "--frames", "-2"}, "--frames -2 must be positive"},
		{"negative duration", []string{"--config", cfg, "--out", out, "--duration", "-1s"}, "--duration -1s must be positive"},
		{"bad duration", []string{"--config", cfg, "--out", out, "--duration", "30"}, "invalid value"},
		{"stray argument", []string{"--config", cfg, "--out", out, "--frames", "3", "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := runRecord(tc.args...)
			if !errors.Is(err, errUsage) || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "Usage: edgedepth record") {
				t.Fatalf("err = %v, stderr lacks %q or the usage:\n%s", err, tc.want, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a usage error created %s (%v)", out, err)
	}
	if _, stderr, err := runRecord("-h"); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr, "calib.yaml") {
		t.Fatalf("-h: err = %v, stderr:\n%s", err, stderr)
	}
	var o, e bytes.Buffer
	if code := run([]string{"help"}, &o, &e); code != 0 || !strings.Contains(o.String(), "record ") {
		t.Fatalf("help does not list record (exit %d):\n%s", code, o.String())
	}
}

// TestRecordRefusesNonEmptyOut: a recording never mixes into old files, and says what
// to do; the old files are untouched and nothing is added.
func TestRecordRefusesNonEmptyOut(t *testing.T) {
	out := t.TempDir()
	old := filepath.Join(out, "notes.txt")
	if err := os.WriteFile(old, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := runRecord("--config", writeConfig(t, smallSim), "--out", out, "--frames", "3")
	if !errors.Is(err, sim.ErrNotEmpty) || !strings.Contains(err.Error(), "give a new or empty directory") || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("err = %v, want ErrNotEmpty naming the file and saying what to do", err)
	}
	entries, _ := os.ReadDir(out)
	if b, _ := os.ReadFile(old); len(entries) != 1 || string(b) != "keep me" {
		t.Fatalf("--out changed: %d entries, notes.txt %q", len(entries), b)
	}
}

// TestRecordNeedsCalibration: RTSP cameras without a calibration are refused before
// anything is connected or created, with the reason and how to calibrate.
func TestRecordNeedsCalibration(t *testing.T) {
	cfg := writeConfig(t, `
source:
  kind: rtsp
  rtsp:
    left:
      url: rtsp://127.0.0.1:1/left
    right:
      url: rtsp://127.0.0.1:1/right
`)
	out := filepath.Join(t.TempDir(), "rec")
	_, _, err := runRecord("--config", cfg, "--out", out, "--duration", "2s")
	if !errors.Is(err, edruntime.ErrNoCalibration) {
		t.Fatalf("err = %v, want ErrNoCalibration", err)
	}
	for _, want := range []string{"rectified frames", "baseline", "edgedepth calib --board", "calibrate/chessboard", "source.rtsp.calibration"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused recording created %s (%v)", out, err)
	}
	if strings.Contains(err.Error(), "other problems") {
		t.Errorf("the missing calibration alone reads as more problems: %v", err)
	}
	// Other problems of the configuration are named after it.
	bad := writeConfig(t, `
log_level: loud
source:
  kind: rtsp
  rtsp:
    left:
      url: rtsp://127.0.0.1:1/left
    right:
      url: rtsp://127.0.0.1:1/right
`)
	if _, _, err := runRecord("--config", bad, "--out", out, "--frames", "1"); !errors.Is(err, edruntime.ErrNoCalibration) ||
		!strings.Contains(err.Error(), "other problems too: log_level") {
		t.Errorf("err = %v, want ErrNoCalibration and the log_level problem", err)
	}
	// Through main's error path: exit status 1 and the message on stderr.
	var o, e bytes.Buffer
	if code := run([]string{"record", "--config", cfg, "--out", out, "--frames", "1"}, &o, &e); code != 1 || !strings.Contains(e.String(), "edgedepth calib") {
		t.Fatalf("exit %d, stderr:\n%s", code, e.String())
	}
}

// TestRecordSim records a few frames of the simulated rig: a complete sequence with
// ground truth and the world's calibration.
func TestRecordSim(t *testing.T) {
	out := filepath.Join(t.TempDir(), "rec")
	stdout, stderr, err := runRecord("--config", writeConfig(t, smallSim), "--out", out, "--frames", "4")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "recorded 4 frames") || !strings.Contains(stdout, "(--frames reached)") {
		t.Errorf("stdout:\n%s", stdout)
	}
	seq, err := sim.OpenSequence(out)
	if err != nil {
		t.Fatal(err)
	}
	c := seq.Calib()
	if seq.Len() != 4 || !seq.HasTruth() || c.Width != 160 || c.Height != 120 || c.FPS != 20 || c.Scene != "room" || c.BaselineM != 0.12 {
		t.Fatalf("sequence of %d frames, truth %v, calib %+v", seq.Len(), seq.HasTruth(), c)
	}
}
