package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/health"
	"github.com/edgedepth/edgedepth/jetson/gpio"
	"github.com/edgedepth/edgedepth/telemetry"
	"github.com/edgedepth/edgedepth/trainer"
)

// FrameID is the frame id of depth and pose messages: the rectified left camera.
const FrameID = "camera_left"

// pipelineStats are the live figures that go into every status message.
type pipelineStats struct {
	framesIn        atomic.Uint64
	framesDone      atomic.Uint64
	framesPublished atomic.Uint64
	estimateErrors  atomic.Uint64

	mu        sync.Mutex
	latencyMs float64 // exponentially weighted capture→published latency
	fps       float64 // processed pairs per second over the last status interval
}

func (s *pipelineStats) observeLatency(d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.latencyMs == 0 {
		s.latencyMs = ms
	} else {
		s.latencyMs += 0.2 * (ms - s.latencyMs)
	}
}

type metrics struct {
	framesIn, framesDone, estimateErrors prometheus.Counter
	latency, estimate                    prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		framesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgedepth_frames_in_total", Help: "Stereo pairs received from the source."}),
		framesDone: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgedepth_depth_frames_total", Help: "Stereo pairs turned into depth."}),
		estimateErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgedepth_depth_errors_total", Help: "Stereo pairs the estimator failed on (dropped)."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edgedepth_frame_latency_seconds",
			Help:    "From capture to the depth message handed to MQTT.",
			Buckets: prometheus.ExponentialBuckets(0.005, 1.6, 14)}),
		estimate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edgedepth_depth_estimate_seconds",
			Help:    "Time the depth estimator takes for one pair.",
			Buckets: prometheus.ExponentialBuckets(0.002, 1.6, 14)}),
	}
}

func (m *metrics) register(reg *prometheus.Registry, ring *camera.Ring) {
	reg.MustRegister(m.framesIn, m.framesDone, m.estimateErrors, m.latency, m.estimate,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "edgedepth_frames_dropped_total",
			Help: "Stereo pairs dropped because depth estimation was behind (oldest dropped first).",
		}, func() float64 { return float64(ring.Dropped()) }))
}

// runDepth is the inference actor: it takes the oldest waiting pair, estimates depth
// (the networks, or SGBM) and the pose, and hands the depth, confidence and pose
// messages (and, at its own lower rate, the preview) to the publisher, which never
// blocks. A pair the estimator fails on is dropped and counted. New weights swap in
// between two pairs.
func (d *Daemon) runDepth(ctx context.Context, ring *camera.Ring, sgbm depth.Estimator) error {
	var lastPreview time.Time
	var previewEvery time.Duration
	if r := d.cfg.Depth.PreviewRateHz; r > 0 {
		previewEvery = time.Duration(float64(time.Second) / r)
	}
	compareEvery := uint64(d.cfg.Depth.CompareSGBMEvery)
	for {
		f, err := ring.Pop(ctx)
		if err != nil {
			return nil // cancelled
		}
		if d.learner != nil {
			// Never blocks: a busy learner drops the pair and counts it.
			d.learner.Offer(f)
		}
		if n := d.net; n != nil {
			if v, ok, err := n.swapIn(); err != nil {
				d.health.Set(healthInference, err.Error())
			} else if ok {
				d.health.Clear(healthInference)
				d.log.Info("model version swapped in", "component", "inference", "version", v, "seq", f.Seq)
			}
		}
		t0 := time.Now()
		var r depthResult
		name := sgbm.Name()
		if d.net != nil && d.net.engine != nil {
			name = NetworkEstimatorName
			r, err = d.infer(d.net, f)
		} else {
			var m depth.Map
			m, err = sgbm.Estimate(f)
			r = depthResult{estimator: name, depth: m, k: f.Intrinsics}
		}
		if err != nil {
			d.stats.estimateErrors.Add(1)
			d.metrics.estimateErrors.Inc()
			d.health.Set("depth", fmt.Sprintf("%s failed on pair %d: %v (pair dropped)", name, f.Seq, err))
			continue
		}
		d.metrics.estimate.Observe(time.Since(t0).Seconds())
		d.health.Clear("depth")
		d.stats.framesDone.Add(1)
		d.metrics.framesDone.Inc()
		d.modelVersion.Store(int64(r.version))

		meta := depth.Meta{
			Seq:        f.Seq,
			Stamp:      f.CaptureTime,
			FrameID:    FrameID,
			Intrinsics: r.k,
			BaselineM:  f.BaselineM,
			Estimator:  r.estimator,
		}
		payload, err := depth.EncodePNG(r.depth, meta)
		if err != nil {
			d.health.Set("depth", fmt.Sprintf("encoding depth of pair %d: %v", f.Seq, err))
			continue
		}
		if d.publisher != nil {
			d.publisher.Publish(d.topics.Depth(), payload, 0, false)
			d.stats.framesPublished.Add(1)
			if r.confidence != nil {
				if c, err := depth.EncodeConfidencePNG(r.confidence, r.depth.Width, r.depth.Height, meta); err == nil {
					d.publisher.Publish(d.topics.DepthConfidence(), c, 0, false)
				}
			}
		}
		if d.tracker != nil {
			d.track(f, r)
		}
		if compareEvery > 0 && r.estimator == NetworkEstimatorName && f.Seq%compareEvery == 0 {
			d.compareSGBM(sgbm, f, r, meta)
		}
		if previewEvery > 0 && t0.Sub(lastPreview) >= previewEvery {
			lastPreview = t0
			lo, hi, ok := depth.PreviewRange(r.depth)
			if !ok {
				lo, hi = d.cfg.Depth.MinDepthM, d.cfg.Depth.MaxDepthM
			}
			jpg, err := depth.EncodePreviewJPEG(r.depth, lo, hi, d.cfg.Depth.PreviewQuality)
			if err == nil {
				d.previewMu.Lock()
				d.preview = jpg
				d.previewMu.Unlock()
				if d.publisher != nil {
					d.publisher.Publish(d.topics.DepthPreview(), jpg, 0, false)
				}
			}
		}
		lat := time.Since(f.CaptureTime)
		d.stats.observeLatency(lat)
		d.metrics.latency.Observe(lat.Seconds())
		d.observeInference(time.Since(t0)) // the training governor's latency input
	}
}

// compareSGBM runs SGBM on the pair, publishes its depth on depth/sgbm and records how
// far the network's depth (resized to SGBM's size) is from it.
func (d *Daemon) compareSGBM(sgbm depth.Estimator, f camera.StereoFrame, r depthResult, meta depth.Meta) {
	m, err := sgbm.Estimate(f)
	if err != nil {
		d.log.Warn("SGBM comparison failed", "component", "depth", "seq", f.Seq, "err", err)
		return
	}
	net := trainer.ResizeDepth(r.depth.M, r.depth.Width, r.depth.Height, m.Width, m.Height)
	met, err := depth.Compare(depth.Map{Width: m.Width, Height: m.Height, M: net}, m, nil,
		depth.CompareOptions{MinDepthM: d.cfg.Depth.MinDepthM, MaxDepthM: d.cfg.Depth.MaxDepthM})
	if err == nil {
		d.sgbmAgreement.Store(&telemetry.SGBMAgreement{Seq: f.Seq, AbsRel: round(met.AbsRel, 1e4), Delta1: round(met.Delta1, 1e4), Pixels: met.N})
	}
	if d.publisher != nil {
		meta.Estimator, meta.Intrinsics = sgbm.Name(), f.Intrinsics
		if b, err := depth.EncodePNG(m, meta); err == nil {
			d.publisher.Publish(d.topics.DepthSGBM(), b, 0, false)
		}
	}
}

// runStatus refreshes the retained status message every mqtt.status_interval.
func (d *Daemon) runStatus(ctx context.Context) {
	every := d.cfg.MQTT.StatusInterval
	t := time.NewTicker(every)
	defer t.Stop()
	lastDone, lastAt := d.stats.framesDone.Load(), time.Now()
	known := map[string]string{} // component → message of the warnings already announced
	for {
		st := d.status("")
		if d.pins != nil && d.pins.LED != nil {
			d.pins.LED.Set(ledState(st.State))
		}
		if d.publisher != nil {
			b, _ := json.Marshal(st)
			d.publisher.Publish(d.topics.Status(), b, 1, true)
			d.announceHealthChanges(st.Warnings, known)
		}
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			done := d.stats.framesDone.Load()
			d.stats.mu.Lock()
			d.stats.fps = float64(done-lastDone) / now.Sub(lastAt).Seconds()
			d.stats.mu.Unlock()
			lastDone, lastAt = done, now
		}
	}
}

// announceHealthChanges publishes an event for every warning that appeared or changed
// ("degraded") and every one that cleared ("recovered") since the last call, so that a
// consumer learns of a lost camera or broker without diffing status messages.
func (d *Daemon) announceHealthChanges(warnings []health.Warning, known map[string]string) {
	now := time.Now().UTC()
	seen := make(map[string]bool, len(warnings))
	for _, w := range warnings {
		seen[w.Component] = true
		if known[w.Component] == w.Message {
			continue
		}
		known[w.Component] = w.Message
		d.publisher.PublishJSON(d.topics.Events(), telemetry.Event{Time: now, Kind: "degraded",
			Message: w.Component + ": " + w.Message, Fields: map[string]any{"component": w.Component}}, 1, false)
	}
	for c := range known {
		if !seen[c] {
			delete(known, c)
			d.publisher.PublishJSON(d.topics.Events(), telemetry.Event{Time: now, Kind: "recovered",
				Message: c + " is healthy again", Fields: map[string]any{"component": c}}, 1, false)
		}
	}
}

// status builds the status message; state "" means starting (no depth yet), running
// or degraded, whichever the pipeline and the health list say.
func (d *Daemon) status(state telemetry.State) telemetry.Status {
	warnings := d.health.Warnings()
	if state == "" {
		switch {
		case len(warnings) > 0:
			state = telemetry.StateDegraded
		case d.stats.framesDone.Load() == 0:
			state = telemetry.StateStarting
		default:
			state = telemetry.StateRunning
		}
	}
	d.stats.mu.Lock()
	fps, lat := d.stats.fps, d.stats.latencyMs
	d.stats.mu.Unlock()
	if math.IsNaN(fps) || math.IsInf(fps, 0) {
		fps = 0
	}
	return telemetry.Status{
		State:           state,
		Version:         d.version,
		RobotID:         d.robotID,
		Backend:         d.backendName(),
		Estimator:       d.estimatorName(),
		FPS:             math.Round(fps*100) / 100,
		LatencyMs:       math.Round(lat*10) / 10,
		FramesIn:        d.stats.framesIn.Load(),
		FramesDropped:   d.ring.Dropped() + d.stats.estimateErrors.Load(),
		FramesPublished: d.stats.framesPublished.Load(),
		Warnings:        warnings,
		Time:            time.Now().UTC(),
		UptimeS:         math.Round(time.Since(d.started).Seconds()*10) / 10,
		Training:        d.trainingStatus(),
		ModelVersion:    int(d.modelVersion.Load()),
		Odom:            d.odomStatus(),
		SGBMAgreement:   d.sgbmAgreement.Load(),
	}
}

// ledState shows the daemon's state on the status LED.
func ledState(s telemetry.State) gpio.LEDState {
	switch s {
	case telemetry.StateRunning:
		return gpio.Running
	case telemetry.StateDegraded:
		return gpio.Degraded
	case telemetry.StateOffline:
		return gpio.Off
	}
	return gpio.Starting
}
