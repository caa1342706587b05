package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/edgedepth/edgedepth/camera/rtsp"
	"github.com/edgedepth/edgedepth/camera/stereo"
)

func cmdProbe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgedepth probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seconds := fs.Float64("seconds", 10, "how long to pull the streams, in seconds")
	sbs := fs.Bool("side-by-side", false, "one URL whose frames carry both eyes (left eye in the left half)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	transport := fs.String("transport", "auto", "RTP transport: auto (UDP, falling back to TCP), udp or tcp")
	decoder := fs.String("decoder", "", "libavcodec decoder name (default: the codec's software decoder; h264_nvv4l2dec on a Jetson)")
	passwordEnv := fs.String("password-env", "", "environment `variable` holding the cameras' password (user from the URL)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: edgedepth probe [flags] LEFT_URL RIGHT_URL
       edgedepth probe [flags] --side-by-side URL

Pulls the camera streams for --seconds and prints what it saw: codec, resolution and
frame rate per camera, frames lost or corrupt, whether NTP time (RTCP sender reports)
was available, pairs per second, pairing error and drift. The first thing to run when
wiring cameras. Flags go before the URLs.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return errUsage
	}
	urls := fs.Args()
	if (*sbs && len(urls) != 1) || (!*sbs && len(urls) != 2) {
		fmt.Fprintln(stderr, "edgedepth probe: want LEFT_URL RIGHT_URL, or one URL with --side-by-side")
		fs.Usage()
		return errUsage
	}
	if !(*seconds > 0) {
		return fmt.Errorf("--seconds: %g must be positive", *seconds)
	}
	log := newLogger(stderr, "warn")
	newCam := func(name, url string) (*rtsp.Camera, error) {
		cfg := rtsp.Config{URL: url, Transport: *transport, Decoder: *decoder, PasswordEnv: *passwordEnv}
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("%s camera: %w", name, err)
		}
		return rtsp.New(name, cfg, log)
	}
	src := &stereo.Source{Label: "probe", Log: log}
	var err error
	if *sbs {
		src.SideBySide, err = newCam("side-by-side", urls[0])
	} else {
		if src.Left, err = newCam("left", urls[0]); err == nil {
			src.Right, err = newCam("right", urls[1])
		}
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "probing for %g s...\n", *seconds)
	rep, err := stereo.Probe(ctx, src, time.Duration(*seconds*float64(time.Second)))
	if err != nil && ctx.Err() == nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprint(stdout, rep.Text())
	return nil
}
