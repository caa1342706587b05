// Command edgedepth is the stereo depth and ego-motion daemon for robots; see
// `edgedepth help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	edruntime "github.com/edgedepth/edgedepth/runtime"
	"github.com/edgedepth/edgedepth/runtime/config"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise it comes
// from the module's build information.
var version = ""

const usage = `edgedepth — stereo depth and ego-motion for robots, published over MQTT.

Usage:
  edgedepth <command> [flags]

Commands:
  run       run the daemon (default config: the simulated stereo rig, SGBM depth,
            an embedded MQTT broker on 127.0.0.1:1883, HTTP on 127.0.0.1:8080;
            source.kind rtsp for two RTSP cameras)
  doctor    check this machine: build, OpenCV, CUDA, cameras, broker, data directory
  probe     pull two RTSP cameras (or one side-by-side stream) for a few seconds and
            say what they deliver and how well they pair
  calib     calibrate a stereo pair offline from chessboard images (left/right
            alternating, or a folder); writes OpenCV YAML (edgedepth calib -h)
  record    record the configured stereo source (RTSP cameras, rectified, or the
            simulated rig) to a sequence on disk for training (edgedepth record -h)
  train     train the depth and pose networks offline on a recorded sequence or the
            simulated world (edgedepth train -h)
  import    convert a Monodepth2 checkpoint folder into the model store
            (edgedepth import monodepth2 -h)
  export    write a model store version's networks as ONNX for ONNX Runtime and
            TensorRT (edgedepth export onnx -h)
  bench     time a training step and inference beside the PyTorch reference
            (edgedepth bench -h)
  eval      measure depth and trajectory quality (SGBM, a model, or the daemon's
            captured output) on a sequence with ground truth: plots and a summary
            (edgedepth eval -h)
  capture   record a running daemon's depth and poses from MQTT for 'eval --live'
            (edgedepth capture -h)
  cmd       send a signed command to a running daemon over MQTT and print its reply
            (edgedepth cmd -h)
  sim       the simulated stereo world: run the daemon on it, serve it over RTSP,
            or write a sequence to disk (edgedepth sim -h)
  version   print the version
  help      print this help

Run 'edgedepth <command> -h' for a command's flags.

Configuration: a YAML file (--config, or $EDGEDEPTH_CONFIG), over built-in defaults,
then EDGEDEPTH_* environment variables (mqtt.broker_url → EDGEDEPTH_MQTT_BROKER_URL).
An unknown key is an error that names it. See configs/ and README.md.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status: 0 success, 1 failure,
// 2 usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		err = cmdRun(rest, stderr, false)
	case "doctor":
		err = cmdDoctor(rest, stdout, stderr)
	case "sim":
		err = cmdSim(rest, stdout, stderr)
	case "probe":
		err = cmdProbe(rest, stdout, stderr)
	case "calib":
		err = cmdCalib(rest, stdout, stderr)
	case "cmd":
		err = cmdCmd(rest, stdout, stderr)
	case "train":
		err = cmdTrain(rest, stdout, stderr)
	case "bench":
		err = cmdBench(rest, stdout, stderr)
	case "record":
		err = cmdRecord(rest, stdout, stderr)
	case "import":
		err = cmdImport(rest, stdout, stderr)
	case "eval":
		err = cmdEval(rest, stdout, stderr)
	case "capture":
		err = cmdCapture(rest, stdout, stderr)
	case "export":
		err = cmdExport(rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "edgedepth", buildVersion())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "edgedepth: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "edgedepth:", err)
		return 1
	}
}

// errUsage marks an error already explained by the flag package.
var errUsage = errors.New("usage")

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// loadConfig reads --config (or $EDGEDEPTH_CONFIG); without either, the built-in
// defaults plus the environment.
func loadConfig(path string) (config.Config, error) {
	if path == "" {
		path = os.Getenv("EDGEDEPTH_CONFIG")
	}
	if path == "" {
		return config.FromEnv(os.Environ())
	}
	return config.Load(path, os.Environ())
}

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "YAML configuration `file` (default: $EDGEDEPTH_CONFIG, else the built-in defaults)")
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func cmdRun(args []string, stderr io.Writer, forceSim bool) error {
	name := "run"
	if forceSim {
		name = "sim run"
	}
	fs := flag.NewFlagSet("edgedepth "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: edgedepth %s [--config FILE]\n\n", name)
		if forceSim {
			fmt.Fprintln(fs.Output(), "Runs the daemon on the simulated stereo rig, whatever source the configuration names.")
		} else {
			fmt.Fprintln(fs.Output(), "Runs the daemon until SIGINT or SIGTERM; shuts down within shutdown_timeout.")
		}
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if forceSim {
		cfg.Source.Kind = "sim"
		if err := cfg.Validate(); err != nil {
			return err
		}
	}
	log := newLogger(stderr, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal a second one kills the process at once.
		<-ctx.Done()
		stop()
	}()
	return edruntime.New(cfg, log, buildVersion()).Run(ctx)
}

func cmdDoctor(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgedepth doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: edgedepth doctor [--config FILE]\n\nChecks what the configuration needs on this machine and says what it finds.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if failed := edruntime.Doctor(context.Background(), cfg, buildVersion(), stdout); failed > 0 {
		return fmt.Errorf("doctor: %d check(s) failed", failed)
	}
	return nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	if v == "(devel)" {
		v = "devel"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v = strings.TrimPrefix(v+"+"+rev, "devel+")
		if dirty {
			v += "-dirty"
		}
	}
	if v == "" {
		v = "devel"
	}
	return v
}
