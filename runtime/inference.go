package runtime

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/inference"
	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/odom"
	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/trainer"
)

// healthInference is the health component for the depth network.
const healthInference = "inference"

// NetworkEstimatorName is the estimator name of network depth in depth messages and
// the status.
const NetworkEstimatorName = "monodepth2"

// depthResult is one pair's depth from whichever estimator ran, with what odometry
// needs.
type depthResult struct {
	estimator string
	depth     depth.Map         // metric, 0 = no estimate: what is published
	k         camera.Intrinsics // of depth's size
	// confidence per depth pixel (network only; nil for SGBM).
	confidence []float32
	// track is the odometry's input (network only; SGBM's is made from the frame).
	track   *odom.Input
	version int
}

// network is the daemon's depth and pose networks: an engine on a backend of its own,
// and weights waiting to be swapped in.
type network struct {
	b      tensor.Backend
	engine *inference.Engine // nil until a model is loaded
	scale  float64           // the model's channel scale

	mu      sync.Mutex
	pending *modelWeights
}

// modelWeights are a model store version's tensors, ready to swap in.
type modelWeights struct {
	ts []nn.NamedTensor
	v  trainer.Version
}

// openNetwork decides where depth comes from (depth.estimator: auto | network |
// sgbm) and, for the network, opens the backend and loads the store's active model.
// With auto and no model in the store, depth comes from SGBM (the log says how to
// get a model); with training on, the network takes over when the learner promotes
// its first version.
// It returns nil when depth comes from SGBM.
func (d *Daemon) openNetwork() (*network, error) {
	mode := d.cfg.Depth.Estimator
	if mode == "sgbm" {
		return nil, nil
	}
	s, err := d.modelStore()
	if err != nil {
		if mode == "network" {
			return nil, fmt.Errorf("depth.estimator network: %w", err)
		}
		d.log.Warn("depth comes from SGBM: the model store does not open", "component", "inference", "err", err)
		return nil, nil
	}
	ts, v, failed, err := s.LoadActive()
	for _, f := range failed {
		d.log.Error("model store: a version does not load", "component", "inference", "err", f)
	}
	threads := d.cfg.Depth.Network.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	if err != nil && !d.cfg.Training.Enabled {
		msg := fmt.Sprintf("no model loads from the model store %s (%v): depth comes from SGBM; fill the store with `edgedepth import` or `edgedepth train --store %s`, or turn training on", s.Dir, err, s.Dir)
		if mode == "network" {
			return nil, errors.New("depth.estimator network: " + msg)
		}
		// auto: SGBM is a sound estimator of its own, not a fault.
		d.log.Info(msg, "component", "inference")
		return nil, nil
	}
	b, err2 := d.openBackend(threads)
	if err2 != nil {
		return nil, err2
	}
	n := &network{b: b}
	if err != nil {
		d.log.Info("no model in the model store yet: depth comes from SGBM until the learner promotes one", "component", "inference", "store", s.Dir)
		return n, nil
	}
	if err := n.load(d.cfg, ts, v); err != nil {
		return nil, err
	}
	d.log.Info("depth and pose from the networks", "component", "inference", "version", v.Version,
		"channel_scale", v.ChannelScale, "size", fmt.Sprintf("%dx%d", n.engine.Options().Width, n.engine.Options().Height), "threads", threads)
	return n, nil
}

// load builds the model and engine for weights ts of store version v.
func (n *network) load(cfg interface{ NetworkSize() (int, int) }, ts []nn.NamedTensor, v trainer.Version) error {
	m, err := monodepth2.NewWithOptions(n.b, monodepth2.Options{ChannelScale: v.ChannelScale})
	if err != nil {
		return fmt.Errorf("inference: %w", err)
	}
	if err := m.Params.Load(n.b, fmt.Sprintf("model version %d", v.Version), "", ts, nil); err != nil {
		return fmt.Errorf("inference: model store version %d does not fit the networks: %w", v.Version, err)
	}
	w, h := cfg.NetworkSize()
	e, err := inference.New(n.b, m, v.Version, inference.Options{Width: w, Height: h})
	if err != nil {
		return err
	}
	if n.engine != nil {
		n.engine.Close()
	}
	n.engine, n.scale = e, v.ChannelScale
	return nil
}

// offer queues weights to swap in before the next pair (the newest offer wins).
func (n *network) offer(w *modelWeights) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pending = w
}

// swapIn applies offered weights on the inference goroutine, between two pairs: into
// the running engine when the architecture is the same, else by building a new model.
func (n *network) swapIn(cfg interface{ NetworkSize() (int, int) }) (version int, swapped bool, err error) {
	n.mu.Lock()
	w := n.pending
	n.pending = nil
	n.mu.Unlock()
	if w == nil {
		return 0, false, nil
	}
	if n.engine != nil && n.scale == w.v.ChannelScale {
		n.engine.Swap(w.ts, w.v.Version)
		return w.v.Version, true, nil
	}
	return w.v.Version, true, n.load(cfg, w.ts, w.v)
}

// infer runs the networks on one pair, and masks the published depth: pixels outside
// depth.min_depth_m–max_depth_m or below depth.network.min_confidence become 0.
func (d *Daemon) infer(n *network, f camera.StereoFrame) (depthResult, error) {
	r, err := n.engine.Infer(f)
	if err != nil {
		return depthResult{}, err
	}
	out := depthResult{estimator: NetworkEstimatorName, k: r.K, confidence: r.Confidence, version: r.Version}
	out.depth = depth.Map{Width: r.Depth.Width, Height: r.Depth.Height, M: make([]float32, len(r.Depth.M))}
	lo, hi := float32(d.cfg.Depth.MinDepthM), float32(d.cfg.Depth.MaxDepthM)
	minConf := float32(d.cfg.Depth.Network.MinConfidence)
	for i, z := range r.Depth.M {
		if z < lo || z > hi || (r.Confidence != nil && r.Confidence[i] < minConf) {
			continue
		}
		out.depth.M[i] = z
	}
	// Odometry aligns on the network's depth where the other eye confirms it,
	// whatever the published range.
	in := r.TrackingInput(f, float32(d.cfg.Odom.MinConfidence), d.cfg.Odom.Width)
	out.track = &in
	return out, nil
}

// queueVersion loads a model store version in the background and offers it to the
// network (after a promotion, a rollback or a reset). Without a network (SGBM by
// configuration) it does nothing.
func (d *Daemon) queueVersion(version int) {
	n := d.net
	if n == nil {
		return
	}
	go func() {
		s, err := d.modelStore()
		if err != nil {
			d.health.Set(healthInference, fmt.Sprintf("cannot swap in model version %d: %v", version, err))
			return
		}
		ts, v, err := s.Load(version)
		if err != nil {
			d.health.Set(healthInference, fmt.Sprintf("cannot swap in model version %d: %v (the previous weights stay)", version, err))
			return
		}
		n.offer(&modelWeights{ts: ts, v: v})
	}()
}
