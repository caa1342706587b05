package inference

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/odom"
	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/trainer"
)

// LiveBenchConfig describes a measurement of the live path (see LiveBench).
type LiveBenchConfig struct {
	// Width and Height are the networks' size and the simulated frames' size.
	Width, Height int
	// ChannelScale of the networks (0 or 1: Monodepth2's).
	ChannelScale float64
	// Pairs is the number of pairs measured (after 5 to warm up).
	Pairs int
	// Training runs a continual learner beside inference, on the backend given for
	// it, with this batch size and duty cycle.
	Training   bool
	TrainBatch int
	TrainDuty  float64
	// StoreDir receives the learner's versions (a temporary directory).
	StoreDir string
	// MinConfidence and TrackWidth configure the odometry as in the daemon
	// (odom.min_confidence, odom.width).
	MinConfidence float32
	TrackWidth    int
}

// LiveBenchResult is what LiveBench measured. Latencies are per pair, from the pair's
// arrival to its depth, confidence and pose being ready (what the daemon then encodes
// and publishes), in milliseconds.
type LiveBenchResult struct {
	Pairs                       int
	FPS                         float64 // pairs per second, back to back
	LatencyP50Ms, LatencyP95Ms  float64
	InferP50Ms, OdomP50Ms       float64
	TrainingSteps               int     // steps the learner took while the pairs ran
	TrainingStepsPerS           float64 // ... per second
	TrainingMeasuredDutyPercent float64
}

func (r LiveBenchResult) String() string {
	s := fmt.Sprintf("%d pairs: %.1f pairs/s, latency p50 %.1f ms p95 %.1f ms (networks %.1f ms, odometry %.1f ms)",
		r.Pairs, r.FPS, r.LatencyP50Ms, r.LatencyP95Ms, r.InferP50Ms, r.OdomP50Ms)
	if r.TrainingSteps > 0 {
		s += fmt.Sprintf("; learner %d steps (%.2f steps/s, duty %.0f %%)", r.TrainingSteps, r.TrainingStepsPerS, r.TrainingMeasuredDutyPercent)
	}
	return s
}

// LiveBench measures the daemon's live path without cameras or MQTT: pairs of the
// simulated street, rendered beforehand, go through the depth and pose networks on
// inferB and the refined odometry, back to back; with cfg.Training a continual learner
// trains at the same time on trainB (which may be the same backend) from the same
// pairs. The networks have random weights: speed does not depend on them.
func LiveBench(ctx context.Context, inferB, trainB tensor.Backend, cfg LiveBenchConfig) (LiveBenchResult, error) {
	sc := sim.DefaultConfig()
	sc.Width, sc.Height, sc.Seed = cfg.Width, cfg.Height, 3
	w, err := sim.NewWorld(sc)
	if err != nil {
		return LiveBenchResult{}, err
	}
	const warm = 5
	frames := make([]camera.StereoFrame, 0, 60)
	for i := range cap(frames) {
		frames = append(frames, w.Render(i))
	}
	opts := monodepth2.Options{ChannelScale: cfg.ChannelScale}
	m, err := monodepth2.NewWithOptions(inferB, opts)
	if err != nil {
		return LiveBenchResult{}, err
	}
	if err := m.Init(inferB, 1); err != nil {
		return LiveBenchResult{}, err
	}
	e, err := New(NativeModel(inferB, m, cfg.Width, cfg.Height), 0, Options{Width: cfg.Width, Height: cfg.Height})
	if err != nil {
		return LiveBenchResult{}, err
	}
	defer e.Close()
	tr := odom.NewTracker(odom.TrackerConfig{Refine: true})

	var learner *trainer.Continual
	stopLearner := func() {}
	if cfg.Training {
		lm, err := monodepth2.NewWithOptions(trainB, opts)
		if err != nil {
			return LiveBenchResult{}, err
		}
		if err := lm.Init(trainB, 2); err != nil {
			return LiveBenchResult{}, err
		}
		store, err := trainer.OpenStore(cfg.StoreDir, 2)
		if err != nil {
			return LiveBenchResult{}, err
		}
		learner, err = trainer.NewContinual(trainB, lm, store, trainer.Version{}, trainer.ContinualConfig{
			Sampler:   trainer.SamplerConfig{Width: cfg.Width, Height: cfg.Height, MinMotion: -1, Interval: -1, Name: "live bench"},
			BatchSize: cfg.TrainBatch, Duty: cfg.TrainDuty, BatchNormTraining: true, Seed: 1,
		})
		if err != nil {
			return LiveBenchResult{}, err
		}
		for _, f := range frames[:30] {
			if _, err := learner.AddFrame(f); err != nil {
				return LiveBenchResult{}, err
			}
		}
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- learner.Run(lctx) }()
		stopLearner = func() { cancel(); <-done }
		defer stopLearner()
		// Measure once the learner computes.
		for learner.Status().Steps < 1 {
			select {
			case <-ctx.Done():
				return LiveBenchResult{}, ctx.Err()
			case err := <-done:
				return LiveBenchResult{}, fmt.Errorf("learner stopped: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	var lat, inf, od []float64
	stepsBefore := 0
	var start time.Time
	stamp := frames[0].CaptureTime
	for i := range cfg.Pairs + warm {
		if i == warm {
			start = time.Now()
			if learner != nil {
				stepsBefore = learner.Status().Steps
			}
		}
		f := frames[i%len(frames)]
		// A pair every 0.1 s of capture time, for the odometry's gap test.
		f.CaptureTime = stamp.Add(time.Duration(i) * 100 * time.Millisecond)
		t0 := time.Now()
		r, err := e.Infer(f)
		if err != nil {
			return LiveBenchResult{}, err
		}
		t1 := time.Now()
		if _, err := tr.Track(r.TrackingInput(f, cfg.MinConfidence, cfg.TrackWidth)); err != nil {
			return LiveBenchResult{}, err
		}
		t2 := time.Now()
		if learner != nil {
			learner.Offer(f)
		}
		if i >= warm {
			lat = append(lat, ms(t2.Sub(t0)))
			inf = append(inf, ms(t1.Sub(t0)))
			od = append(od, ms(t2.Sub(t1)))
		}
		if ctx.Err() != nil {
			return LiveBenchResult{}, ctx.Err()
		}
	}
	elapsed := time.Since(start)
	res := LiveBenchResult{
		Pairs: cfg.Pairs, FPS: float64(cfg.Pairs) / elapsed.Seconds(),
		LatencyP50Ms: quantile(lat, 0.5), LatencyP95Ms: quantile(lat, 0.95),
		InferP50Ms: quantile(inf, 0.5), OdomP50Ms: quantile(od, 0.5),
	}
	if learner != nil {
		st := learner.Status()
		res.TrainingSteps = st.Steps - stepsBefore
		res.TrainingStepsPerS = float64(res.TrainingSteps) / elapsed.Seconds()
		res.TrainingMeasuredDutyPercent = 100 * st.MeasuredDuty
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
