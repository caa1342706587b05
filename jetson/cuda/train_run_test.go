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
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/trainer"
)

// TestTrainRunOnGPU trains the networks from scratch on the simulated street (seed 1)
// for EDGEDEPTH_GPU_TRAIN_MINUTES minutes on the GPU and reports the held-out curve and
// the metric depth errors on an unseen street (seed 2). It is a measurement for the
// notes, not a pass/fail check: without the variable it skips.
//
// EDGEDEPTH_GPU_TRAIN_SCALE sets the channel scale (default 1, Monodepth2's width) and
// EDGEDEPTH_GPU_TRAIN_STORE a model store directory that receives the trained weights
// (default: a temporary one). The daemon's end-to-end test model
// (hil-tests/testdata/models) was made this way.
func TestTrainRunOnGPU(t *testing.T) {
	minutes, err := strconv.ParseFloat(os.Getenv("EDGEDEPTH_GPU_TRAIN_MINUTES"), 64)
	if err != nil || minutes <= 0 {
		t.Skip("set EDGEDEPTH_GPU_TRAIN_MINUTES to run the GPU training measurement")
	}
	scale := 1.0
	if s := os.Getenv("EDGEDEPTH_GPU_TRAIN_SCALE"); s != "" {
		if scale, err = strconv.ParseFloat(s, 64); err != nil {
			t.Fatalf("EDGEDEPTH_GPU_TRAIN_SCALE: %v", err)
		}
	}
	storeDir := os.Getenv("EDGEDEPTH_GPU_TRAIN_STORE")
	if storeDir == "" {
		storeDir = filepath.Join(t.TempDir(), "models")
	}
	b := openOrSkip(t, nil)
	w, h, batch := 320, 96, 12
	world := func(seed int64, frames int, leftOnly bool) *trainer.StereoDataset {
		cfg := sim.DefaultConfig()
		cfg.Seed, cfg.Width, cfg.Height = seed, w, h
		wd, err := sim.NewWorld(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ds, err := trainer.NewSimDataset(wd, frames, w, h, trainer.DatasetOptions{LeftOnly: leftOnly, CacheFrames: 2 * frames})
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	train, val, err := trainer.Split(world(1, 3000, false), 10)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := trainer.ValidationBatches(val, batch, trainer.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testBatches, err := trainer.ValidationBatches(world(2, 202, true), batch, trainer.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := monodepth2.NewWithOptions(b, monodepth2.Options{ChannelScale: scale})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(b, 1); err != nil {
		t.Fatal(err)
	}
	before, err := trainer.Evaluate(b, m, testBatches)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("unseen street before training: %v", before)
	tr, err := trainer.NewTrainer(b, m, trainer.DefaultOptim())
	if err != nil {
		t.Fatal(err)
	}
	store, err := trainer.OpenStore(storeDir, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(minutes*float64(time.Minute)))
	defer cancel()
	start := time.Now()
	_, err = trainer.Run(ctx, tr, train, vb, store, trainer.RunConfig{
		Steps: 1 << 30, BatchSize: batch, Augment: true, Seed: 1, ValEvery: 500, CheckpointEvery: 0,
		BatchNormTraining: true, Note: fmt.Sprintf("GPU training run: simulated street seed 1, %dx%d, batch %d, %.1f min", w, h, batch, minutes),
	}, func(p trainer.Progress) {
		if p.Eval != nil {
			t.Logf("%5.1f min, step %d, %.0f samples/s: held-out %v", time.Since(start).Minutes(), p.Step, p.SamplesPerSec, *p.Eval)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := trainer.Evaluate(b, m, testBatches)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("unseen street after %.1f min (%d steps): %v", time.Since(start).Minutes(), tr.Steps(), after)
}
