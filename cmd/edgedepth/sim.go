package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/codec"
	"github.com/edgedepth/edgedepth/camera/rtspserve"
	"github.com/edgedepth/edgedepth/camera/sim"
)

const simUsage = `Usage: edgedepth sim <command> [flags]

The simulated stereo world: textured street and room scenes rendered on the CPU, with
ground-truth depth and pose for every frame.

Commands:
  run     run the daemon on the simulated rig (as 'edgedepth run', source forced to sim)
  serve   serve the simulated rig over RTSP as two streams, rtsp://ADDR/left and /right
  write   write a sequence to disk: left/right PNG, 16-bit depth PNG in millimetres,
          poses in TUM format, intrinsics and baseline in calib.yaml

Run 'edgedepth sim <command> -h' for its flags.
`

func cmdSim(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, simUsage)
		return errUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr, true)
	case "serve":
		return cmdSimServe(args[1:], stdout, stderr)
	case "write":
		return cmdSimWrite(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, simUsage)
		return nil
	}
	fmt.Fprintf(stderr, "edgedepth sim: unknown command %q\n\n%s", args[0], simUsage)
	return errUsage
}

// worldFlags adds the flags that describe a simulated world and returns a function that
// builds it after parsing.
func worldFlags(fs *flag.FlagSet) func() (*sim.World, error) {
	d := sim.DefaultConfig()
	scene := fs.String("scene", d.Scene, "scene kind: street or room")
	seed := fs.Int64("seed", d.Seed, "world seed (different seeds give different scenes)")
	width := fs.Int("width", d.Width, "image width in pixels")
	height := fs.Int("height", d.Height, "image height in pixels")
	fps := fs.Float64("fps", d.FPS, "frame rate in frames per second")
	hfov := fs.Float64("hfov-deg", d.HFOVDeg, "horizontal field of view in degrees")
	baseline := fs.Float64("baseline-m", d.BaselineM, "stereo baseline in metres (0: the scene's default, 0.20 street, 0.12 room)")
	return func() (*sim.World, error) {
		c := d
		c.Scene, c.Seed, c.Width, c.Height, c.FPS, c.HFOVDeg, c.BaselineM = *scene, *seed, *width, *height, *fps, *hfov, *baseline
		return sim.NewWorld(c)
	}
}

func cmdSimServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgedepth sim serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	world := worldFlags(fs)
	dc := rtspserve.Config{}.WithDefaults()
	addr := fs.String("addr", dc.Addr, "RTSP listen address (host:port)")
	videoCodec := fs.String("codec", dc.Codec, "video codec: mjpeg or h264")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: edgedepth sim serve [flags]\n\nServes the simulated stereo rig over RTSP until SIGINT/SIGTERM.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	w, err := world()
	if err != nil {
		return err
	}
	cfg := dc
	cfg.Addr, cfg.Codec, cfg.FPS = *addr, *videoCodec, w.Config().FPS
	cfg.GOP = 0 // one second of frames at the world's rate
	log := newLogger(stderr, "info")
	codec.SetLogger(log) // libavcodec's own messages go to our log, not raw stderr
	srv, err := rtspserve.New(cfg, &firstPairLogger{Source: sim.NewSource(w), out: stdout}, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
		k := w.Intrinsics()
		fmt.Fprintf(stdout, "serving %s %dx%d at %g fps (%s)\n  left:  %s\n  right: %s\nintrinsics fx=%.2f fy=%.2f cx=%.2f cy=%.2f, baseline %.3f m\n",
			w.Config().Scene, k.Width, k.Height, w.Config().FPS, cfg.Codec, srv.URL("left"), srv.URL("right"),
			k.Fx, k.Fy, k.Cx, k.Cy, w.BaselineM())
	case err := <-errc:
		return err
	}
	return <-errc
}

func cmdSimWrite(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgedepth sim write", flag.ContinueOnError)
	fs.SetOutput(stderr)
	world := worldFlags(fs)
	out := fs.String("out", "", "output `directory` (required; created if missing)")
	frames := fs.Int("frames", 100, "number of stereo frames to write")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: edgedepth sim write --out DIR [--frames N] [flags]\n\nWrites a simulated sequence with ground truth to DIR.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		fmt.Fprintln(stderr, "edgedepth sim write: --out is required")
		fs.Usage()
		return errUsage
	}
	if *frames < 1 {
		return fmt.Errorf("--frames: %d must be at least 1", *frames)
	}
	w, err := world()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	progress := func(done, total int) {
		rate := float64(done) / time.Since(start).Seconds()
		fmt.Fprintf(stderr, "\rwriting %s: %d/%d frames (%3.0f%%), %.1f frames/s ", *out, done, total, 100*float64(done)/float64(total), rate)
	}
	if err := sim.WriteSequence(ctx, *out, w, *frames, progress); err != nil {
		fmt.Fprintln(stderr)
		return err
	}
	fmt.Fprintf(stderr, "\n")
	fmt.Fprintf(stdout, "wrote %d frames to %s in %.1f s\n", *frames, *out, time.Since(start).Seconds())
	return nil
}

// firstPairLogger prints the capture time of the first pair the simulated rig emits.
// The rig's frame k is captured k/fps seconds after it, so a client that gets capture
// times over RTSP (from RTCP sender reports) can tell which world frame, and so which
// ground truth, every pair it receives is.
type firstPairLogger struct {
	camera.Source
	out  io.Writer
	once sync.Once
}

func (l *firstPairLogger) Run(ctx context.Context, emit func(camera.StereoFrame)) error {
	return l.Source.Run(ctx, func(f camera.StereoFrame) {
		l.once.Do(func() {
			fmt.Fprintf(l.out, "first pair: frame %d captured at %s\n", f.Seq, f.CaptureTime.UTC().Format(time.RFC3339Nano))
		})
		emit(f)
	})
}
