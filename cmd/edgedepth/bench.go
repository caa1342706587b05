package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/edgedepth/edgedepth/inference"
	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

const benchUsage = `Usage: edgedepth bench [flags]

Times a full Monodepth2 training step (forward, loss, backward, Adam; temporal and,
by default, stereo sources) and batch-1 depth+pose inference on the CPU backend, and
runs the PyTorch reference's bench with the same shapes and thread count right after,
so the two can be compared on the same machine in the same run. Prints medians in
milliseconds and the peak resident memory of each process.

With --live it times the daemon's live path instead: for each pair of the simulated
street, the depth and pose networks and the refined odometry, back to back, first
alone and then with a continual learner (batch --batch, duty 0.3, on 1 thread of its
own) training beside them: pairs per second and per-pair latency.

The reference is ../shared/reference/monodepth2_ref.py (or trainer/testdata's copy)
run with /usr/bin/python3 (Debian's python3-torch); --torch=false skips it.

`

type benchResult struct {
	StepMS, InferMS float64
	PeakRSSMB       float64
}

func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgedepth bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	batch := fs.Int("batch", 2, "training batch size")
	height := fs.Int("height", 192, "image height in `pixels` (a multiple of 32)")
	width := fs.Int("width", 640, "image width in `pixels` (a multiple of 32)")
	stereo := fs.Bool("stereo", true, "add the stereo source to the temporal ones")
	steps := fs.Int("steps", 5, "timed steps")
	warmup := fs.Int("warmup", 2, "untimed steps first")
	threads := fs.Int("threads", runtime.NumCPU(), "threads for both sides")
	torch := fs.Bool("torch", true, "also run the PyTorch reference's bench")
	ref := fs.String("reference", defaultReference(), "the PyTorch reference `script`")
	conv := fs.Bool("conv", true, "also time Monodepth2's convolution shapes (forward, forward+backward) against PyTorch")
	convScript := fs.String("conv-script", "tensor/cpu/testdata/conv_bench.py", "PyTorch convolution benchmark `script` (lists the shapes)")
	live := fs.Bool("live", false, "instead: time the daemon's live path (networks + odometry per pair) with continual training off, then on")
	pairs := fs.Int("pairs", 60, "with --live: pairs timed")
	scale := fs.Float64("channel-scale", 1, "with --live: network width (1: Monodepth2's, 0.25 the end-to-end test model's)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *height%32 != 0 || *width%32 != 0 || *height <= 0 || *width <= 0 {
		return fmt.Errorf("--height %d and --width %d must be positive multiples of 32 (the encoder halves them five times)", *height, *width)
	}
	if *steps < 1 || *batch < 1 || *threads < 1 {
		return errors.New("--steps, --batch and --threads must be at least 1")
	}
	runtime.GOMAXPROCS(*threads)
	if *live {
		return benchLive(stdout, *width, *height, *scale, *pairs, *batch, *threads)
	}
	src := "temporal"
	if *stereo {
		src = "temporal+stereo"
	}
	fmt.Fprintf(stdout, "training step: batch %d, %dx%d, %s; inference: batch 1; %d threads, %d timed steps after %d warm-up\n",
		*batch, *width, *height, src, *threads, *steps, *warmup)

	// PyTorch first: a child's peak memory counts its parent's at the fork, so the
	// child is started while this process is still small.
	var theirs *benchResult
	var torchVersion string
	var err error
	if *torch {
		fmt.Fprintln(stderr, "edgedepth: running the PyTorch reference")
		theirs, torchVersion, err = benchTorch(*ref, *batch, *height, *width, *stereo, *steps, *warmup, *threads)
		if err != nil {
			return fmt.Errorf("PyTorch reference: %w (--torch=false skips it)", err)
		}
	}
	ours, err := benchOurs(*batch, *height, *width, *stereo, *steps, *warmup, *threads, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%-28s %12s", "", "edgedepth")
	if theirs != nil {
		fmt.Fprintf(stdout, " %12s %8s", "torch "+torchVersion, "ratio")
	}
	fmt.Fprintln(stdout)
	row := func(name string, a float64, b func(*benchResult) float64) {
		fmt.Fprintf(stdout, "%-28s %12.1f", name, a)
		if theirs != nil {
			fmt.Fprintf(stdout, " %12.1f %7.2fx", b(theirs), a/b(theirs))
		}
		fmt.Fprintln(stdout)
	}
	row("train step, median (ms)", ours.StepMS, func(r *benchResult) float64 { return r.StepMS })
	row("depth+pose b1, median (ms)", ours.InferMS, func(r *benchResult) float64 { return r.InferMS })
	row("peak resident memory (MB)", ours.PeakRSSMB, func(r *benchResult) float64 { return r.PeakRSSMB })
	if theirs != nil {
		fmt.Fprintln(stdout, "(ratio: edgedepth / PyTorch; below 1 is faster or smaller. PyTorch's memory includes its interpreter and libraries.)")
	}
	if *conv {
		return benchConv(*convScript, *threads, stdout, stderr)
	}
	return nil
}

// convShape is one line of conv_bench.py --json: a convolution and PyTorch's best
// times for it.
type convShape struct {
	Name     string  `json:"name"`
	X        []int   `json:"x"`
	W        []int   `json:"w"`
	Stride   int     `json:"stride"`
	Pad      int     `json:"pad"`
	Bias     bool    `json:"bias"`
	NeedX    bool    `json:"need_x"`
	FwdMS    float64 `json:"fwd_ms"`
	FwdBwdMS float64 `json:"fwdbwd_ms"`
	Torch    string  `json:"torch"`
}

// benchConv runs the PyTorch convolution benchmark, then the same shapes (taken from
// its output, so the two lists cannot drift) on our CPU backend, and prints both.
func benchConv(script string, threads int, stdout, stderr io.Writer) error {
	fmt.Fprintln(stderr, "edgedepth: timing convolutions in PyTorch")
	cmd := exec.Command("/usr/bin/python3", script, "--json", "--threads", strconv.Itoa(threads), "--reps", "3")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s (--conv=false skips it)", script, err, bytes.TrimSpace(errb.Bytes()))
	}
	var shapes []convShape
	for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		var c convShape
		if err := json.Unmarshal(line, &c); err != nil {
			return fmt.Errorf("%s: unexpected output %q: %v", script, line, err)
		}
		shapes = append(shapes, c)
	}
	if len(shapes) == 0 {
		return fmt.Errorf("%s printed no shapes", script)
	}
	b := cpu.New(threads)
	fmt.Fprintf(stdout, "\nconvolutions, best of 3 (ms):   %30s %23s\n", "edgedepth fwd / fwd+bwd", "torch "+shapes[0].Torch+" fwd / fwd+bwd")
	var sumOurs, sumTheirs float64
	for _, c := range shapes {
		fwd, fb, err := timeConv(b, c)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		sumOurs += fb
		sumTheirs += c.FwdBwdMS
		fmt.Fprintf(stdout, "%-40s %9.1f / %7.1f %12.1f / %7.1f  %5.2fx\n", c.Name, fwd, fb, c.FwdMS, c.FwdBwdMS, fb/c.FwdBwdMS)
	}
	fmt.Fprintf(stdout, "%-40s %19.1f %22.1f  %5.2fx\n", "sum of forward+backward", sumOurs, sumTheirs, sumOurs/sumTheirs)
	return nil
}

// timeConv returns the best of three forward and forward+backward times in ms, after
// one warm-up of each.
func timeConv(b *cpu.Backend, c convShape) (fwd, fwdBwd float64, err error) {
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(shape ...int) (*tensor.Tensor, error) {
		v := make([]float32, tensor.Shape(shape).Len())
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return b.FromHost(v, shape...)
	}
	x, err := rnd(c.X...)
	if err != nil {
		return 0, 0, err
	}
	w, err := rnd(c.W...)
	if err != nil {
		return 0, 0, err
	}
	var bias *tensor.Tensor
	if c.Bias {
		if bias, err = rnd(c.W[0]); err != nil {
			return 0, 0, err
		}
	}
	p := tensor.Conv2DParams{Stride: [2]int{c.Stride, c.Stride}, Padding: [2]int{c.Pad, c.Pad}}
	best := func(f func() error) (float64, error) {
		m := math.Inf(1)
		for i := 0; i < 4; i++ {
			start := time.Now()
			if err := f(); err != nil {
				return 0, err
			}
			if i > 0 {
				m = math.Min(m, ms(time.Since(start)))
			}
		}
		return m, nil
	}
	fwd, err = best(func() error {
		y, err := b.Conv2D(x, w, bias, p)
		if err == nil {
			b.Free(y)
		}
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	fwdBwd, err = best(func() error {
		y, err := b.Conv2D(x, w, bias, p)
		if err != nil {
			return err
		}
		dx, dw, db, err := b.Conv2DBackward(x, w, y, p, c.NeedX, c.Bias)
		for _, t := range []*tensor.Tensor{y, dx, dw, db} {
			if t != nil {
				b.Free(t)
			}
		}
		return err
	})
	return fwd, fwdBwd, err
}

func benchOurs(n, h, w int, stereo bool, steps, warmup, threads int, progress io.Writer) (*benchResult, error) {
	b := cpu.New(threads)
	m, err := monodepth2.New(b)
	if err != nil {
		return nil, err
	}
	if err := m.Init(b, 1); err != nil {
		return nil, err
	}
	batch, err := trainer.RandomBatch(b, n, h, w, stereo, 1)
	if err != nil {
		return nil, err
	}
	tr, err := trainer.NewTrainer(b, m, trainer.DefaultOptim())
	if err != nil {
		return nil, err
	}
	var times []float64
	for i := 0; i < warmup+steps; i++ {
		start := time.Now()
		if _, err := tr.Step(batch); err != nil {
			return nil, err
		}
		if i >= warmup {
			times = append(times, ms(time.Since(start)))
		}
		fmt.Fprintf(progress, "\redgedepth: training step %d/%d", i+1, warmup+steps)
	}
	fmt.Fprintln(progress)
	res := &benchResult{StepMS: median(times), PeakRSSMB: peakRSSMB()}
	one, err := trainer.RandomBatch(b, 1, h, w, false, 2)
	if err != nil {
		return nil, err
	}
	times = times[:0]
	for i := 0; i < warmup+steps; i++ {
		start := time.Now()
		t := nn.NewTape(b)
		if _, _, _, err := trainer.Predict(t, m, one.Target, one.Prev); err != nil {
			return nil, err
		}
		t.Release()
		if i >= warmup {
			times = append(times, ms(time.Since(start)))
		}
	}
	res.InferMS = median(times)
	return res, nil
}

func benchTorch(ref string, n, h, w int, stereo bool, steps, warmup, threads int) (*benchResult, string, error) {
	args := []string{ref, "bench", "--batch", strconv.Itoa(n), "--height", strconv.Itoa(h), "--width", strconv.Itoa(w),
		"--steps", strconv.Itoa(steps), "--warmup", strconv.Itoa(warmup)}
	if stereo {
		args = append(args, "--stereo")
	}
	cmd := exec.Command("/usr/bin/python3", args...)
	th := strconv.Itoa(threads)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS="+th, "MKL_NUM_THREADS="+th, "CUDA_VISIBLE_DEVICES=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, "", fmt.Errorf("%v: %s", err, bytes.TrimSpace(errb.Bytes()))
	}
	var r struct {
		Torch   string  `json:"torch"`
		StepMS  float64 `json:"train_step_ms_median"`
		InferMS float64 `json:"infer_depth_pose_b1_ms_median"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &r); err != nil {
		return nil, "", fmt.Errorf("unexpected output %q: %v", out.String(), err)
	}
	res := &benchResult{StepMS: r.StepMS, InferMS: r.InferMS}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.PeakRSSMB = float64(ru.Maxrss) / 1024
	}
	return res, r.Torch, nil
}

// defaultReference is the shared reference beside the repository when this runs
// from the repository root, else the copy kept in trainer/testdata.
func defaultReference() string {
	shared := "../shared/reference/monodepth2_ref.py"
	if _, err := os.Stat(shared); err == nil {
		return shared
	}
	return "trainer/testdata/monodepth2_ref.py"
}

func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // Linux reports kilobytes
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchLive runs inference.LiveBench with training off, then on.
func benchLive(stdout io.Writer, width, height int, scale float64, pairs, batch, threads int) error {
	fmt.Fprintf(stdout, "live path: %dx%d, channel scale %g, %d pairs, inference on %d threads\n", width, height, scale, pairs, threads)
	for _, training := range []bool{false, true} {
		dir, err := os.MkdirTemp("", "edgedepth-bench-")
		if err != nil {
			return err
		}
		res, err := inference.LiveBench(context.Background(), cpu.New(threads), cpu.New(1), inference.LiveBenchConfig{
			Width: width, Height: height, ChannelScale: scale, Pairs: pairs,
			Training: training, TrainBatch: batch, TrainDuty: 0.3, StoreDir: dir, MinConfidence: 0.9, TrackWidth: 320,
		})
		os.RemoveAll(dir)
		if err != nil {
			return err
		}
		label := "training off"
		if training {
			label = "training on "
		}
		fmt.Fprintf(stdout, "%s: %v\n", label, res)
	}
	return nil
}
