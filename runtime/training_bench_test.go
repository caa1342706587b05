package runtime

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/depth/sgbm"
	"github.com/edgedepth/edgedepth/jetson/governor"
	"github.com/edgedepth/edgedepth/runtime/config"
)

// BenchmarkDepthBesideTraining measures what continual learning costs inference: the
// time SGBM takes to estimate depth of a 640x480 simulated pair, as the depth actor
// runs it (the pair offered to the learner first, as runDepth does), with the learner
// off, at its default duty cycle (0.3) and flat out (duty 1), with the default training
// section (128x96, channel scale 0.5, batch 4, one thread). Reported: p50, p90 and p99
// latency in milliseconds, and the learner's steps and measured duty over the run.
// The governor modes add the training budget governor (latency only, as off a Jetson;
// sampling every 100 ms so that it settles within the run) for a camera of the given
// frame period, fed with each pair's SGBM time as runDepth feeds it: they also report
// the governor's mean duty cycle over the measured pairs and its stops. Run it with a
// fixed count so that every mode sees the same frames:
//
//	go test ./runtime -run '^$' -bench DepthBesideTraining -benchtime 100x
func BenchmarkDepthBesideTraining(b *testing.B) {
	sc := sim.DefaultConfig()
	world, err := sim.NewWorld(sc)
	if err != nil {
		b.Fatal(err)
	}
	var frames []camera.StereoFrame
	for i := range 30 {
		frames = append(frames, world.Render(i))
	}
	for _, mode := range []struct {
		name        string
		duty        float64 // 0: learning off
		nice        int
		framePeriod time.Duration // the governor's camera; 0: governor off
	}{{"training-off", 0, 0, 0}, {"duty-0.3", 0.3, 10, 0}, {"duty-1", 1, 10, 0}, {"duty-0.3-nice-0", 0.3, 0, 0}, {"duty-1-nice-0", 1, 0, 0},
		{"duty-0.3-governor-100ms", 0.3, 10, 100 * time.Millisecond}, {"duty-1-governor-100ms", 1, 10, 100 * time.Millisecond},
		{"duty-1-nice-0-governor-100ms", 1, 0, 100 * time.Millisecond}} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := config.Default()
			est, err := sgbm.New(cfg.Depth.SGBMParams())
			if err != nil {
				b.Fatal(err)
			}
			defer est.Close()
			seq := 0
			next := func() camera.StereoFrame {
				f := frames[seq%len(frames)]
				f.Seq, f.CaptureTime = uint64(seq), time.Now()
				seq++
				return f
			}
			d := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "bench")
			if mode.duty > 0 {
				cfg.DataDir = b.TempDir()
				cfg.Training.Enabled, cfg.Training.Duty, cfg.Training.Nice = true, mode.duty, mode.nice
				d = New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "bench")
				d.robotID = "bench"
				if d.learner, err = d.newLearner(); err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				if mode.framePeriod > 0 {
					gc := cfg.Training.GovernorConfig()
					gc.Period = 100 * time.Millisecond
					fp := mode.framePeriod
					if d.gov, err = newTrainingGovernor(governorOptions{Config: gc, Root: "/", FramePeriod: func() time.Duration { return fp },
						Learner: d.learner, Log: slog.New(slog.DiscardHandler)}); err != nil {
						b.Fatal(err)
					}
					defer d.gov.Close()
					wg.Go(func() { d.gov.run(ctx) })
				}
				wg.Go(func() { d.runLearner(ctx) })
				defer func() { cancel(); wg.Wait() }()
				// Until the learner has a batch and has stepped: it then runs at its
				// duty cycle for the whole measurement.
				for d.learner.Status().Steps == 0 {
					f := next()
					d.learner.Offer(f)
					if _, err := est.Estimate(f); err != nil {
						b.Fatal(err)
					}
				}
			}
			var steps0 int
			if d.learner != nil {
				steps0 = d.learner.Status().Steps
			}
			lat := make([]time.Duration, 0, b.N)
			var govDuty float64
			b.ResetTimer()
			for range b.N {
				f := next()
				if d.learner != nil {
					d.learner.Offer(f)
				}
				t0 := time.Now()
				if _, err := est.Estimate(f); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				d.observeInference(lat[len(lat)-1])
				if d.gov != nil {
					govDuty += d.gov.g.Current().DutyCycle
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.9), "p90-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			if d.learner != nil {
				st := d.learner.Status()
				b.ReportMetric(float64(st.Steps-steps0), "train-steps")
				b.ReportMetric(st.MeasuredDuty, "duty")
			}
			if d.gov != nil {
				st := d.gov.g.Stats()
				b.ReportMetric(govDuty/float64(b.N), "gov-duty")
				b.ReportMetric(float64(st.Stops[governor.LimitLatency]), "gov-stops")
			}
		})
	}
}
