package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

const trainUsage = `Usage: edgedepth train (--data DIR | --sim SCENE) [flags]

Trains the depth and pose networks offline, self-supervised (no labels): each frame is
predicted from its neighbours in time and from the other eye, whose calibrated baseline
gives the depth its metric scale.

Data: --data DIR is a sequence recorded with 'edgedepth record' or written with
'edgedepth sim write'; --sim street|room renders the simulated world directly (with
ground truth, so validation also reports metric depth errors). Every --val-every-th
frame is held out for validation, and the frames next to it are not trained on.

Weights: from the store's active version (--from active, the default when there is
one), a version number, or random (--from random, the default for an empty store).
--resume continues the newest version written by a previous run, its step count and
learning-rate schedule included (Adam's moments start afresh). Checkpoints are written
into the model store as candidates; the last one is judged on the validation set. When
the store has no base model yet, the final weights become the base.

Progress goes to stderr: step, loss, samples per second, and validation lines. Ctrl-C
stops after the current step and writes a checkpoint.

`

func cmdTrain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgedepth train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "recorded sequence `directory`")
	scene := fs.String("sim", "", "train on the simulated world: street or room")
	simSeed := fs.Int64("sim-seed", 1, "seed of the simulated world")
	simFrames := fs.Int("sim-frames", 1000, "frames of the simulated world to train on")
	width := fs.Int("width", 320, "training width in `pixels` (multiple of 32)")
	height := fs.Int("height", 96, "training height in `pixels` (multiple of 32)")
	batch := fs.Int("batch", 4, "batch size")
	steps := fs.Int("steps", 2000, "steps to train (in total, with --resume)")
	lr := fs.Float64("lr", 1e-4, "Adam learning rate")
	decaySteps := fs.Int("lr-decay-steps", 0, "multiply the learning rate by --lr-decay every this many steps (0: constant)")
	decay := fs.Float64("lr-decay", 0.1, "learning-rate decay factor")
	scale := fs.Float64("channel-scale", 1, "network width: 1 is Monodepth2's, 0.5 a faster variant for CPUs (new models only)")
	signals := fs.String("signals", "both", "training signals: both, temporal or stereo")
	augment := fs.Bool("augment", true, "colour jitter and horizontal flips")
	bnTrain := fs.Bool("bn-train", false, "batch norm with batch statistics (default: on when training from random weights or resuming)")
	valEvery := fs.Int("val-every", 250, "validate every this many steps (0: only at the end)")
	valSplit := fs.Int("val-split", 10, "hold out every this-many-th frame for validation (at least 6)")
	ckptEvery := fs.Int("checkpoint-every", 500, "write a checkpoint every this many steps (0: only at the end)")
	store := fs.String("store", filepath.Join("data", "models"), "model store `directory`")
	from := fs.String("from", "", "start from: active, random, or a version number (default: active if the store has one, else random)")
	resume := fs.Bool("resume", false, "continue the newest version in the store")
	threads := fs.Int("threads", runtime.NumCPU(), "CPU threads")
	seed := fs.Uint64("seed", 1, "seed of initialisation, shuffling and augmentation")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), trainUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*data == "") == (*scene == "") {
		return usageError(fs, "give either --data DIR or --sim street|room")
	}
	if *width%32 != 0 || *height%32 != 0 || *width <= 0 || *height <= 0 {
		return usageError(fs, fmt.Sprintf("--width %d and --height %d must be positive multiples of 32", *width, *height))
	}
	if *valSplit < 6 {
		return usageError(fs, "--val-split must be at least 6: the frames beside each held-out one are not trained on")
	}
	var sig trainer.Signals
	switch *signals {
	case "both":
		sig = trainer.SignalsBoth
	case "temporal":
		sig = trainer.SignalsTemporal
	case "stereo":
		sig = trainer.SignalsStereo
	default:
		return usageError(fs, fmt.Sprintf("--signals %q: want both, temporal or stereo", *signals))
	}

	// Data.
	var ds *trainer.StereoDataset
	var note string
	var err error
	if *data != "" {
		seq, err := sim.OpenSequence(*data)
		if err != nil {
			return err
		}
		if ds, err = trainer.NewSequenceDataset(seq, *width, *height, trainer.DatasetOptions{}); err != nil {
			return err
		}
		abs, _ := filepath.Abs(*data)
		note = "edgedepth train on " + abs
	} else {
		cfg := sim.DefaultConfig()
		cfg.Scene, cfg.Seed, cfg.Width, cfg.Height = *scene, *simSeed, *width, *height
		world, err := sim.NewWorld(cfg)
		if err != nil {
			return err
		}
		if ds, err = trainer.NewSimDataset(world, *simFrames, *width, *height, trainer.DatasetOptions{}); err != nil {
			return err
		}
		note = "edgedepth train on " + world.Name()
	}
	train, val, err := trainer.Split(ds, *valSplit)
	if err != nil {
		return err
	}
	note += fmt.Sprintf(" at %dx%d, signals %s", *width, *height, *signals)

	// Model and starting weights.
	st, err := trainer.OpenStore(*store, 0)
	if err != nil {
		return err
	}
	b := cpu.New(*threads)
	var start trainer.Version
	switch {
	case *resume:
		vs := st.List()
		if len(vs) == 0 {
			return fmt.Errorf("--resume: the store %s is empty", *store)
		}
		start = vs[len(vs)-1]
	case *from == "random":
	case *from == "" || *from == "active":
		if a, ok := st.Active(); ok {
			start = a
		} else if *from == "active" {
			return fmt.Errorf("--from active: the store %s has no active version", *store)
		}
	default:
		n, err := strconv.Atoi(*from)
		if err != nil {
			return usageError(fs, fmt.Sprintf("--from %q: want active, random or a version number", *from))
		}
		if start, err = st.Get(n); err != nil {
			return err
		}
	}
	opts := monodepth2.Options{ChannelScale: *scale}
	if start.Version != 0 {
		opts.ChannelScale = start.ChannelScale
	}
	m, err := monodepth2.NewWithOptions(b, opts)
	if err != nil {
		return err
	}
	fromText := "random weights"
	if start.Version != 0 {
		if _, err := trainer.Restore(b, m, st, start.Version); err != nil {
			return err
		}
		fromText = fmt.Sprintf("version %d (%d steps)", start.Version, start.Steps)
	} else if err := m.Init(b, *seed); err != nil {
		return err
	}
	bnSet := false
	fs.Visit(func(f *flag.Flag) { bnSet = bnSet || f.Name == "bn-train" })
	if !bnSet {
		*bnTrain = start.Version == 0 || *resume
	}
	tr, err := trainer.NewTrainer(b, m, trainer.Optim{LR: *lr, LRDecaySteps: *decaySteps, LRDecay: *decay})
	if err != nil {
		return err
	}
	if *resume {
		tr.SetSteps(start.Steps)
	}
	vb, err := trainer.ValidationBatches(val, *batch, trainer.BatchOptions{Signals: sig})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "edgedepth train: %d training and %d validation samples (%s), from %s, %dx%d, batch %d, %d steps, %d threads\n",
		train.Len(), val.Len(), ds.Info(0).Source, fromText, *width, *height, *batch, *steps, *threads)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bar := newStatusLine(stderr)
	last, err := trainer.Run(ctx, tr, train, vb, st, trainer.RunConfig{
		Steps: *steps, BatchSize: *batch, Signals: sig, Augment: *augment, Seed: *seed,
		ValEvery: *valEvery, CheckpointEvery: *ckptEvery, BatchNormTraining: *bnTrain,
		Note: note, Parent: start.Version,
	}, func(p trainer.Progress) {
		eta := ""
		if p.SamplesPerSec > 0 {
			left := float64((p.Steps-p.Step)*(*batch)) / p.SamplesPerSec
			eta = " ETA " + (time.Duration(left) * time.Second).String()
		}
		skipped := ""
		if p.Skipped > 0 {
			skipped = fmt.Sprintf(" (%d steps skipped: non-finite)", p.Skipped)
		}
		if p.Loss != 0 {
			bar.update(fmt.Sprintf("step %d/%d  loss %.4f  %.1f samples/s  lr %.2g%s%s", p.Step, p.Steps, p.Loss, p.SamplesPerSec, p.LR, eta, skipped))
		}
		if p.Eval != nil {
			bar.line(fmt.Sprintf("validation at step %d: %v", p.Step, *p.Eval))
		}
		if p.Checkpoint != nil {
			bar.line(fmt.Sprintf("checkpoint: version %d (%d steps) in %s", p.Checkpoint.Version, p.Checkpoint.Steps, *store))
		}
		if p.CheckpointErr != nil {
			bar.line(fmt.Sprintf("checkpoint failed (training goes on in memory): %v", p.CheckpointErr))
		}
	})
	bar.done()
	if err != nil {
		return err
	}
	if last.Version == 0 {
		return errors.New("no checkpoint was written")
	}
	if _, ok := st.Base(); !ok {
		ts, _, err := st.Load(last.Version)
		if err != nil {
			return err
		}
		base, err := st.Add(ts, trainer.Version{State: trainer.StateBase, Steps: last.Steps, Parent: last.Version,
			ChannelScale: last.ChannelScale, Note: note + " (the store's first model)"})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "trained %d steps: version %d, now the store's base (version %d, active)\n", last.Steps, last.Version, base.Version)
		return nil
	}
	fmt.Fprintf(stdout, "trained %d steps: candidate version %d in %s (activate it with the model/rollback command)\n", last.Steps, last.Version, *store)
	return nil
}

// usageError prints why the command line is wrong and the usage.
func usageError(fs *flag.FlagSet, msg string) error {
	fmt.Fprintln(fs.Output(), msg)
	fs.Usage()
	return errUsage
}

// statusLine rewrites one status line on a terminal; elsewhere (a log file, CI) it
// prints a line at most every 10 s.
type statusLine struct {
	w        io.Writer
	tty      bool
	last     time.Time
	pending  bool
	lastText string
}

func newStatusLine(w io.Writer) *statusLine {
	p := &statusLine{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *statusLine) update(s string) {
	p.lastText = s
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", s)
		p.pending = true
		return
	}
	if time.Since(p.last) >= 10*time.Second {
		fmt.Fprintln(p.w, s)
		p.last = time.Now()
	}
}

func (p *statusLine) line(s string) {
	if p.pending {
		fmt.Fprintln(p.w)
		p.pending = false
	}
	fmt.Fprintln(p.w, s)
	if p.tty && p.lastText != "" {
		fmt.Fprintf(p.w, "%s", strings.TrimSpace(p.lastText))
		p.pending = true
	}
}

func (p *statusLine) done() {
	if p.pending {
		fmt.Fprintln(p.w)
	}
}
