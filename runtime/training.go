package runtime

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/telemetry"
	"github.com/edgedepth/edgedepth/trainer"
)

// healthModel is the health component that says which model the learner started from
// when it is not the store's active version (none yet, or a damaged file).
const healthModel = "model"

// newLearner opens the model store, loads the weights to learn from (the active
// version, a good fallback when its file is damaged, or random weights when the store
// has none, each with a health warning saying so) onto a CPU backend of its own with
// training.threads threads, and prepares the continual learner. It starts nothing.
func (d *Daemon) newLearner() (*trainer.Continual, error) {
	tc := d.cfg.Training
	store, err := d.modelStore()
	if err != nil {
		return nil, fmt.Errorf("training.store_dir: %w", err)
	}
	dir := store.Dir
	ts, from, failed, err := store.LoadActive()
	resumable := err == nil && len(failed) == 0
	switch {
	case err != nil && len(failed) == 0:
		d.health.Set(healthModel, fmt.Sprintf("no trained model: learning from scratch (the model store %s is empty; fill it with `edgedepth import` or `edgedepth train --store %s`)", dir, dir))
		from = trainer.Version{}
	case err != nil:
		d.health.Set(healthModel, fmt.Sprintf("no model in %s loads (%v): learning from scratch; restore the store from a backup", dir, err))
		from = trainer.Version{}
	case len(failed) > 0:
		d.health.Set(healthModel, fmt.Sprintf("the active model is damaged (%v): using version %d instead; activate a good version or retrain", failed[0], from.Version))
	}
	for _, f := range failed {
		d.log.Error("model store: a version does not load", "component", "training", "err", f)
	}

	b, err := d.openBackend(tc.Threads)
	if err != nil {
		return nil, err
	}
	opts := monodepth2.Options{ChannelScale: tc.ChannelScale}
	if from.Version != 0 {
		opts.ChannelScale = from.ChannelScale
	}
	m, err := monodepth2.NewWithOptions(b, opts)
	if err != nil {
		return nil, fmt.Errorf("training: %w", err)
	}
	if from.Version != 0 {
		if err := m.Params.Load(b, from.File, "", ts, nil); err != nil {
			return nil, fmt.Errorf("training: model store version %d does not fit the networks: %w", from.Version, err)
		}
	} else if err := m.Init(b, uint64(tc.Seed)); err != nil {
		return nil, fmt.Errorf("training: %w", err)
	}

	// Zero means "none" in the configuration and "default" in the sampler.
	minMotion, interval := tc.MinMotion, tc.SampleInterval
	if minMotion == 0 {
		minMotion = -1
	}
	if interval == 0 {
		interval = -1
	}
	cfg := trainer.ContinualConfig{
		Sampler: trainer.SamplerConfig{
			Width: tc.Width, Height: tc.Height, MinMotion: minMotion, Interval: interval,
			ValidationEvery: tc.ValidationEvery, Name: "live",
		},
		BatchSize:     tc.Batch,
		RecentSamples: tc.RecentSamples, ReservoirSamples: tc.ReservoirSamples,
		ValidationSamples: tc.ValidationSamples, MinValidation: min(8, tc.ValidationSamples),
		GuardEvery: tc.GuardEvery, GuardTolerance: tc.GuardTolerance,
		Duty:  tc.Duty,
		Optim: trainer.Optim{LR: tc.LR, L2SP: tc.L2SPWeight},
		// From scratch batch norm learns its statistics; a trained model keeps them
		// (small batches would make them noisy).
		BatchNormTraining: from.Version == 0,
		Seed:              uint64(tc.Seed),
		Note:              "continual learning on " + d.robotID,
	}
	// Zero means none in the configuration and the default in the trainer.
	if cfg.RecentSamples == 0 {
		cfg.RecentSamples = -1
	}
	if cfg.ReservoirSamples == 0 {
		cfg.ReservoirSamples = -1
	}
	learner, err := trainer.NewContinual(b, m, store, from, cfg)
	if err != nil {
		return nil, fmt.Errorf("training: %w", err)
	}
	if v, ok := trainer.LatestShutdownCheckpoint(store); ok && resumable {
		if rts, _, err := store.Load(v.Version); err != nil {
			d.log.Warn("the learner's last checkpoint does not load; starting from the active version", "component", "training", "version", v.Version, "err", err)
		} else if err := learner.ResumeFrom(rts, v); err != nil {
			d.log.Warn("the learner's last checkpoint does not fit; starting from the active version", "component", "training", "version", v.Version, "err", err)
		} else {
			d.log.Info("continual learning resumes from its last checkpoint", "component", "training", "version", v.Version, "steps", v.Steps)
		}
	}
	learner.Log = d.log.With("component", "training")
	learner.Health = &d.health
	learner.OnGuard = d.announceGuard
	d.log.Info("continual learning on", "component", "training", "store", dir, "from_version", from.Version,
		"channel_scale", m.Options.ChannelScale, "size", fmt.Sprintf("%dx%d", tc.Width, tc.Height), "batch", tc.Batch,
		"duty", tc.Duty, "threads", tc.Threads, "replay_mb_max",
		math.Round(float64((tc.RecentSamples+tc.ReservoirSamples+tc.ValidationSamples)*trainer.SampleBytes(tc.Width, tc.Height, true))/1e6))
	return learner, nil
}

// announceGuard publishes every decision of the guard as an event ("model_promoted" or
// "model_rolled_back", with the versions and the held-out errors before and after).
// It runs on the learner's goroutine and never blocks (the publisher queues).
func (d *Daemon) announceGuard(g trainer.GuardDecision) {
	if g.Promoted && g.SaveErr == nil {
		d.health.Clear(healthModel) // a validated model is in force now
		d.queueVersion(g.Version)   // and inference takes it between two pairs
	}
	if d.publisher == nil {
		return
	}
	fields := map[string]any{
		"version":          g.Version,
		"previous_version": g.Previous,
		"error_before":     g.ActiveError,
		"error_after":      g.CandidateError,
		"samples":          g.Samples,
		"steps":            g.Steps,
		"saved":            g.SaveErr == nil,
	}
	if g.SaveErr != nil {
		fields["save_error"] = g.SaveErr.Error()
	}
	d.publisher.PublishJSON(d.topics.Events(), telemetry.Event{Time: g.Time.UTC(), Kind: g.Event(), Message: g.String(), Fields: fields}, 1, false)
}

// trainingStatus is the learner's part of the status message.
func (d *Daemon) trainingStatus() *telemetry.TrainingStatus {
	if d.learner == nil {
		return &telemetry.TrainingStatus{Enabled: d.cfg.Training.Enabled, State: "off"}
	}
	st := d.learner.Status()
	return &telemetry.TrainingStatus{
		Enabled: true, State: st.State, Steps: st.Steps, SkippedSteps: st.SkippedNonFinite,
		Loss:       round(st.Loss, 1e5),
		Promotions: st.Promotions, Rollbacks: st.Rollbacks, ActiveVersion: st.ActiveVersion,
		Duty: round(st.MeasuredDuty, 1e3), LR: st.LR,
		Samples: st.Recent + st.Reservoir, ValidationSamples: st.Validation,
		FramesDropped: st.FramesDropped,
		Budget:        d.budgetStatus(),
	}
}

func round(v, per float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*per) / per
}

// trainingCollectors are the learner's Prometheus metrics, read from its status at
// scrape time.
func trainingCollectors(l *trainer.Continual) []prometheus.Collector {
	counter := func(name, help string, v func(trainer.ContinualStatus) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return v(l.Status()) })
	}
	gauge := func(name, help string, v func(trainer.ContinualStatus) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return v(l.Status()) })
	}
	return []prometheus.Collector{
		counter("edgedepth_training_steps_total", "Optimisation steps of the continual learner.",
			func(s trainer.ContinualStatus) float64 { return float64(s.Steps) }),
		counter("edgedepth_training_steps_skipped_total", "Steps skipped for a NaN or Inf loss or gradient (weights untouched).",
			func(s trainer.ContinualStatus) float64 { return float64(s.SkippedNonFinite) }),
		counter("edgedepth_training_promotions_total", "Weights the guard promoted to the active model.",
			func(s trainer.ContinualStatus) float64 { return float64(s.Promotions) }),
		counter("edgedepth_training_rollbacks_total", "Weights the guard rejected (the learner rolled back to the active model).",
			func(s trainer.ContinualStatus) float64 { return float64(s.Rollbacks) }),
		counter("edgedepth_training_frames_dropped_total", "Stereo pairs dropped because the learner's sampler was busy (inference never waits).",
			func(s trainer.ContinualStatus) float64 { return float64(s.FramesDropped) }),
		counter("edgedepth_training_frames_static_total", "Stereo pairs skipped because the rig barely moved.",
			func(s trainer.ContinualStatus) float64 { return float64(s.Sampler.Static) }),
		counter("edgedepth_training_samples_total", "Training and held-out samples taken from the stream (two per triplet of frames).",
			func(s trainer.ContinualStatus) float64 { return float64(2 * s.Sampler.Triplets) }),
		gauge("edgedepth_training_duty_ratio", "Measured fraction of time the learner computes while learning.",
			func(s trainer.ContinualStatus) float64 { return s.MeasuredDuty }),
		gauge("edgedepth_training_duty_target_ratio", "Configured duty cycle of the learner.",
			func(s trainer.ContinualStatus) float64 { return s.Duty }),
		gauge("edgedepth_training_loss", "Self-supervised loss of the last step.",
			func(s trainer.ContinualStatus) float64 { return s.Loss }),
		gauge("edgedepth_training_replay_bytes", "Host memory of the replay buffer and the held-out set.",
			func(s trainer.ContinualStatus) float64 { return float64(s.ReplayBytes) }),
	}
}

// runLearner runs the learner on a goroutine of its own, locked to an OS thread of
// lowered priority (training.nice), and waits for it. The goroutine ends locked, so
// the thread ends with it instead of returning to Go's pool with its low priority.
func (d *Daemon) runLearner(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		if err := lowerThreadPriority(d.cfg.Training.Nice); err != nil {
			d.log.Warn("cannot lower the learner's thread priority: it competes with inference as an equal", "component", "training", "err", err)
		}
		errc <- d.learner.Run(ctx)
	}()
	return <-errc
}

// startLearner builds the learner when training is enabled. Learning is optional: a
// learner that cannot be built leaves a health warning and the daemon runs on.
func (d *Daemon) startLearner() {
	if !d.cfg.Training.Enabled {
		return
	}
	t0 := time.Now()
	l, err := d.newLearner()
	if err != nil {
		d.health.Set("training", err.Error()+": continual learning is off")
		d.log.Error("continual learning off", "component", "training", "err", err)
		return
	}
	d.learner = l
	d.collectors = append(d.collectors, trainingCollectors(l)...)
	d.log.Debug("learner ready", "component", "training", "took", time.Since(t0))
}
