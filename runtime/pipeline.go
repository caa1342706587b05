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

// runDepth is the inference actor: it takes the oldest waiting pair, estimates depth,
// and hands the depth message (and, at its own lower rate, the preview) to the
// publisher, which never blocks. A pair the estimator fails on is dropped and counted.
func (d *Daemon) runDepth(ctx context.Context, ring *camera.Ring, est depth.Estimator) error {
	var lastPreview time.Time
	var previewEvery time.Duration
	if r := d.cfg.Depth.PreviewRateHz; r > 0 {
		previewEvery = time.Duration(float64(time.Second) / r)
	}
	for {
		f, err := ring.Pop(ctx)
		if err != nil {
			return nil // cancelled
		}
		if d.learner != nil {
			// Never blocks: a busy learner drops the pair and counts it.
			d.learner.Offer(f)
		}
		t0 := time.Now()
		m, err := est.Estimate(f)
		if err != nil {
			d.stats.estimateErrors.Add(1)
			d.metrics.estimateErrors.Inc()
			d.health.Set("depth", fmt.Sprintf("%s failed on pair %d: %v (pair dropped)", est.Name(), f.Seq, err))
			continue
		}
		d.metrics.estimate.Observe(time.Since(t0).Seconds())
		d.health.Clear("depth")
		d.stats.framesDone.Add(1)
		d.metrics.framesDone.Inc()

		payload, err := depth.EncodePNG(m, depth.Meta{
			Seq:        f.Seq,
			Stamp:      f.CaptureTime,
			FrameID:    FrameID,
			Intrinsics: f.Intrinsics,
			BaselineM:  f.BaselineM,
			Estimator:  est.Name(),
		})
		if err != nil {
			d.health.Set("depth", fmt.Sprintf("encoding depth of pair %d: %v", f.Seq, err))
			continue
		}
		if d.publisher != nil {
			d.publisher.Publish(d.topics.Depth(), payload, 0, false)
			d.stats.framesPublished.Add(1)
		}
		if previewEvery > 0 && t0.Sub(lastPreview) >= previewEvery {
			lastPreview = t0
			lo, hi, ok := depth.PreviewRange(m)
			if !ok {
				lo, hi = d.cfg.Depth.MinDepthM, d.cfg.Depth.MaxDepthM
			}
			jpg, err := depth.EncodePreviewJPEG(m, lo, hi, d.cfg.Depth.PreviewQuality)
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
		Backend:         "cpu",
		Estimator:       d.cfg.Depth.Estimator,
		FPS:             math.Round(fps*100) / 100,
		LatencyMs:       math.Round(lat*10) / 10,
		FramesIn:        d.stats.framesIn.Load(),
		FramesDropped:   d.ring.Dropped() + d.stats.estimateErrors.Load(),
		FramesPublished: d.stats.framesPublished.Load(),
		Warnings:        warnings,
		Time:            time.Now().UTC(),
		UptimeS:         math.Round(time.Since(d.started).Seconds()*10) / 10,
		Training:        d.trainingStatus(),
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
