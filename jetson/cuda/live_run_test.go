package cuda

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/eval"
	"github.com/edgedepth/edgedepth/inference"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/odom"
	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/trainer"
)

// TestLiveOnGPU is a measurement for the notes, not a pass/fail check; it runs only
// with EDGEDEPTH_GPU_LIVE_MINUTES set (the minutes of adaptation in part 2):
//
//  1. The daemon's live path on the GPU (inference.LiveBench): the full-width
//     networks at 640x192 and the refined odometry, pair after pair, with continual
//     training off and on (its own CUDA backend, batch 4, duty 0.3 and 1).
//  2. Adaptation: the end-to-end test's model (hil-tests/testdata/models, trained on
//     the simulated street seed 1) evaluated on an unseen street (seed 3, 320x96,
//     frames 600–799) before and after self-supervised fine-tuning on the first 600
//     frames of that street (no ground truth used), and on a street neither saw
//     (seed 4) to show what it forgets. Reports go to EDGEDEPTH_GPU_LIVE_OUT.
func TestLiveOnGPU(t *testing.T) {
	minutes, err := strconv.ParseFloat(os.Getenv("EDGEDEPTH_GPU_LIVE_MINUTES"), 64)
	if err != nil || minutes <= 0 {
		t.Skip("set EDGEDEPTH_GPU_LIVE_MINUTES to run the live-path and adaptation measurement")
	}
	out := os.Getenv("EDGEDEPTH_GPU_LIVE_OUT")
	if out == "" {
		out = t.TempDir()
	}
	liveMeasure(t, openOrSkip(t, nil), openOrSkip(t, nil), minutes, 200, 640, 192, out)
}

// liveMeasure is TestLiveOnGPU's body on any two backends.
func liveMeasure(t *testing.T, infer, train tensor.Backend, minutes float64, pairs, width, height int, out string) {
	ctx := context.Background()

	for _, c := range []struct {
		training bool
		duty     float64
	}{{false, 0}, {true, 0.3}, {true, 1}} {
		res, err := inference.LiveBench(ctx, infer, train, inference.LiveBenchConfig{
			Width: width, Height: height, Pairs: pairs, Training: c.training, TrainBatch: 4, TrainDuty: c.duty, StoreDir: t.TempDir(),
			MinConfidence: 0.9, TrackWidth: 320,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("live %dx%d full width, training %v duty %.1f: %v", width, height, c.training, c.duty, res)
	}

	// Part 2.
	seq := func(seed int64, frames int) (*sim.World, string) {
		cfg := sim.DefaultConfig()
		cfg.Seed, cfg.Width, cfg.Height = seed, 320, 96
		w, err := sim.NewWorld(cfg)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("street-%d", seed))
		if err := sim.WriteSequence(ctx, dir, w, frames, nil); err != nil {
			t.Fatal(err)
		}
		return w, dir
	}
	w3, dir3 := seq(3, 800)
	_, dir4 := seq(4, 200)
	// The test binary runs in the package directory under go test, in the
	// repository root on the GPU machine.
	models := filepath.Join("hil-tests", "testdata", "models")
	if _, err := os.Stat(models); err != nil {
		models = filepath.Join("..", "..", models)
	}
	store, err := trainer.OpenStore(models, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts, v, _, err := store.LoadActive()
	if err != nil {
		t.Fatal(err)
	}
	m, err := monodepth2.NewWithOptions(infer, monodepth2.Options{ChannelScale: v.ChannelScale})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Params.Load(infer, v.File, "", ts, nil); err != nil {
		t.Fatal(err)
	}
	evaluate := func(label, dir string, start int) {
		src, err := eval.OpenSim(dir)
		if err != nil {
			t.Fatal(err)
		}
		e, err := inference.New(inference.NativeModel(infer, m, 320, 96), v.Version, inference.Options{Width: 320, Height: 96})
		if err != nil {
			t.Fatal(err)
		}
		p := &inference.NetworkPredictor{Label: label, Engine: e, Tracker: odom.NewTracker(odom.TrackerConfig{Refine: true}), MinConfidence: 0.9, TrackWidth: 320}
		o := eval.DefaultOptions()
		o.Start, o.Frames, o.MaxDepthM = start, 200, 60
		ev, err := eval.Evaluate(ctx, src, []eval.Predictor{p}, o)
		if err != nil {
			t.Fatal(err)
		}
		d := filepath.Join(out, label)
		if err := ev.Write(d); err != nil {
			t.Fatal(err)
		}
		md, _ := os.ReadFile(filepath.Join(d, "summary.md"))
		t.Logf("%s:\n%s", label, md)
	}
	evaluate("before-seed3", dir3, 600)
	evaluate("before-seed4", dir4, 0)

	ds, err := trainer.NewSimDataset(w3, 600, 320, 96, trainer.DatasetOptions{CacheFrames: 1200})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trainer.NewTrainer(infer, m, trainer.Optim{LR: 5e-5, L2SP: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, time.Duration(minutes*float64(time.Minute)))
	defer cancel()
	adaptStore, err := trainer.OpenStore(t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := trainer.Run(tctx, tr, ds, nil, adaptStore, trainer.RunConfig{
		Steps: 1 << 30, BatchSize: 8, Augment: true, Seed: 1, Note: "adaptation to the unseen street",
	}, func(trainer.Progress) {}); err != nil {
		t.Fatal(err)
	}
	t.Logf("adapted for %.1f min, %d steps (batch 8, lr 5e-5, L2-SP 0.01, batch norm frozen)", time.Since(start).Minutes(), tr.Steps())
	evaluate("after-seed3", dir3, 600)
	evaluate("after-seed4", dir4, 0)
}
