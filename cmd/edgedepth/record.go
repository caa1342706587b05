package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/edgedepth/edgedepth/camera/codec"
	"github.com/edgedepth/edgedepth/camera/record"
	"github.com/edgedepth/edgedepth/camera/sim"
	edruntime "github.com/edgedepth/edgedepth/runtime"
	"github.com/edgedepth/edgedepth/runtime/config"
)

func cmdRecord(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgedepth record", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs)
	out := fs.String("out", "", "sequence `directory` to create (required; must not exist or be empty)")
	duration := fs.Duration("duration", 0, "record this long, counted from the first stereo pair (e.g. 30s)")
	frames := fs.Int("frames", 0, "record this many stereo pairs")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: edgedepth record [--config FILE] --out DIR (--duration 30s | --frames N)

Records the configured stereo source into DIR in the sequence format that 'sim write',
'train' and 'eval' share: rectified left/right PNGs, capture times (times.txt) and
calib.yaml with the rectified intrinsics and the baseline; the simulated rig adds depth
and poses. RTSP cameras (source.kind rtsp) need their calibration: training needs
rectified frames and a baseline. With both --duration and --frames, whichever comes
first ends the recording; Ctrl-C ends it early and keeps what was recorded. calib.yaml
is written last: a directory without it is a recording that was killed.

`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	usageErr := func(msg string) error {
		fmt.Fprintln(stderr, "edgedepth record:", msg)
		fs.Usage()
		return errUsage
	}
	switch {
	case *out == "":
		return usageErr("--out is required")
	case *duration < 0:
		return usageErr(fmt.Sprintf("--duration %s must be positive", *duration))
	case *frames < 0:
		return usageErr(fmt.Sprintf("--frames %d must be positive", *frames))
	case *duration == 0 && *frames == 0:
		return usageErr("say how much to record: --duration (e.g. 30s) or --frames N (or both: whichever comes first)")
	}

	cfg, err := recordConfig(*cfgPath)
	if err != nil {
		return err
	}
	level := "warn" // progress lines say how it goes; the log says what went wrong
	if cfg.LogLevel == "debug" {
		level = cfg.LogLevel
	}
	log := newLogger(stderr, level)
	codec.SetLogger(log) // libavcodec's complaints about a stream joined mid-GOP go to the log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, which ends the recording cleanly, a second one
		// kills the process at once.
		<-ctx.Done()
		stop()
	}()
	what := "the simulated " + cfg.Source.Sim.Scene + " rig"
	if cfg.Source.Kind == "rtsp" {
		what = "the RTSP cameras"
	}
	fmt.Fprintf(stderr, "recording %s to %s (Ctrl-C stops and keeps what was recorded)\n", what, *out)
	res, err := edruntime.Record(ctx, cfg, edruntime.RecordOptions{
		Out: *out, Frames: *frames, Duration: *duration,
		Progress: func(p edruntime.RecordProgress) { fmt.Fprintln(stderr, progressLine(p, cfg.Source.Kind)) },
	}, log)
	switch {
	case errors.Is(err, sim.ErrNotEmpty):
		return fmt.Errorf("--out %s: %w: give a new or empty directory (a recording never overwrites or adds to another)", *out, err)
	case errors.Is(err, edruntime.ErrNothingRecorded):
		if cfg.Source.Kind == "rtsp" {
			return fmt.Errorf("%w (the cameras delivered %d left and %d right pictures): check them with 'edgedepth probe'",
				err, res.LeftFrames, res.RightFrames)
		}
		return err
	case err != nil && res.Written == 0:
		return err
	}
	k := res.Calib
	why := map[record.StopReason]string{
		record.StopFrames: "--frames reached", record.StopDuration: "--duration reached",
		record.StopCancelled: "interrupted", record.StopSourceEnded: "the source ended", record.StopFailed: "failed",
	}[res.Stopped]
	fmt.Fprintf(stdout, "recorded %d frames in %.1f s (%.1f fps) to %s (%s)\n", res.Written, res.Elapsed.Seconds(), res.FPS(), res.Dir, why)
	fmt.Fprintf(stdout, "  rectified %dx%d, fx=%.2f fy=%.2f cx=%.2f cy=%.2f, baseline %.4f m, %.2f fps\n", k.Width, k.Height, k.Fx, k.Fy, k.Cx, k.Cy, k.BaselineM, k.FPS)
	fmt.Fprintf(stdout, "  dropped: %d (disk behind), %d (in the source); unpaired pictures: %d left, %d right\n",
		res.Dropped, res.SourceDropped, res.UnpairedLeft, res.UnpairedRight)
	return err
}

// recordConfig loads the configuration. The loader refuses RTSP cameras without a
// calibration among its validation problems; a recording says why it needs one and how
// to get it (ErrNoCalibration), and names the other problems, if any, after it.
func recordConfig(path string) (config.Config, error) {
	cfg, err := loadConfig(path)
	if cfg.Source.Kind != "rtsp" || len(cfg.Source.RTSP.Calibration) > 0 {
		return cfg, err
	}
	if err != nil {
		verr := cfg.Validate()
		if verr == nil || !strings.HasSuffix(err.Error(), verr.Error()) {
			return cfg, err // not a validation problem: the file could not be read
		}
		withCalib := cfg
		withCalib.Source.RTSP.Calibration = []string{"stereo.yaml"}
		if other := withCalib.Validate(); other != nil {
			return cfg, fmt.Errorf("%w; the configuration has other problems too: %v", edruntime.ErrNoCalibration, other)
		}
	}
	return cfg, edruntime.ErrNoCalibration
}

// progressLine is one line of a recording's progress, for stderr once a second.
func progressLine(p edruntime.RecordProgress, kind string) string {
	if p.Started.IsZero() {
		if kind == "rtsp" {
			return fmt.Sprintf("waiting for the first stereo pair: %d left and %d right pictures so far", p.LeftFrames, p.RightFrames)
		}
		return "waiting for the first stereo pair"
	}
	line := fmt.Sprintf("%5.1f s: %d frames written, %.1f fps, %d dropped (disk behind, %d queued)",
		p.Elapsed.Seconds(), p.Written, p.FPS(), p.Dropped, p.Queued)
	if kind == "rtsp" {
		return line + fmt.Sprintf(", %d lost in the source, unpaired %d left %d right", p.SourceDropped, p.UnpairedLeft, p.UnpairedRight)
	}
	return line + fmt.Sprintf(", %d skipped by the renderer", p.SourceDropped)
}
