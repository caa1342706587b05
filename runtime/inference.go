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
	"github.com/edgedepth/edgedepth/odom"
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

// network is the daemon's depth and pose networks: an engine, how to build networks
// from a model store version (native or on ONNX Runtime), and networks waiting to be
// swapped in.
type network struct {
	kind   string // "cpu" or "cuda" (native), or the ONNX Runtime engine's name
	build  func(ts []nn.NamedTensor, v trainer.Version) (inference.Networks, error)
	engine *inference.Engine // nil until a model is loaded
	w, h   int

	buildMu sync.Mutex // serialises builds of new versions

	mu      sync.Mutex
	pending *builtNetworks
}

// builtNetworks are a model store version's networks, ready to swap in.
type builtNetworks struct {
	nets inference.Networks
	v    trainer.Version
}

// openNetwork decides where depth comes from (depth.estimator: auto | network |
// sgbm) and, for the network, prepares the inference engine (inference: native on
// the backend, or ONNX Runtime) with the store's active model.
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
	if err != nil && !d.cfg.Training.Enabled {
		msg := fmt.Sprintf("no model loads from the model store %s (%v): depth comes from SGBM; fill the store with `edgedepth import` or `edgedepth train --store %s`, or turn training on", s.Dir, err, s.Dir)
		if mode == "network" {
			return nil, errors.New("depth.estimator network: " + msg)
		}
		// auto: SGBM is a sound estimator of its own, not a fault.
		d.log.Info(msg, "component", "inference")
		return nil, nil
	}
	n := &network{}
	n.w, n.h = d.cfg.NetworkSize()
	if err := d.networkBuilder(n); err != nil {
		return nil, err
	}
	if err != nil {
		d.log.Info("no model in the model store yet: depth comes from SGBM until the learner promotes one", "component", "inference", "store", s.Dir)
		return n, nil
	}
	nets, err := n.build(ts, v)
	if err != nil {
		return nil, err
	}
	if n.engine, err = inference.New(nets, v.Version, inference.Options{Width: n.w, Height: n.h}); err != nil {
		nets.Close()
		return nil, err
	}
	d.closers = append(d.closers, n)
	d.modelVersion.Store(int64(v.Version))
	d.log.Info("depth and pose from the networks", "component", "inference", "version", v.Version,
		"channel_scale", v.ChannelScale, "size", fmt.Sprintf("%dx%d", n.w, n.h), "engine", n.kind)
	return n, nil
}

// networkBuilder sets how n builds networks from weights: on the configured backend
// (inference: native), or exported to ONNX and run by ONNX Runtime.
func (d *Daemon) networkBuilder(n *network) error {
	if d.cfg.Inference != "native" {
		return d.onnxBuilder(n)
	}
	threads := d.cfg.Depth.Network.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	b, err := d.openBackend(threads)
	if err != nil {
		return err
	}
	n.kind = b.Name()
	n.build = func(ts []nn.NamedTensor, v trainer.Version) (inference.Networks, error) {
		nets, err := inference.NewNative(b, v.ChannelScale, ts, fmt.Sprintf("model version %d", v.Version), n.w, n.h)
		if err != nil {
			return nil, fmt.Errorf("model store version %d: %w", v.Version, err)
		}
		return nets, nil
	}
	return nil
}

// offer queues networks to swap in before the next pair (the newest offer wins; one
// superseded before use is closed).
func (n *network) offer(b *builtNetworks) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pending != nil {
		n.pending.nets.Close()
	}
	n.pending = b
}

// swapIn hands offered networks to the engine on the inference goroutine, between two
// pairs (or makes the engine, for the first model).
func (n *network) swapIn() (version int, swapped bool, err error) {
	n.mu.Lock()
	b := n.pending
	n.pending = nil
	n.mu.Unlock()
	if b == nil {
		return 0, false, nil
	}
	if n.engine == nil {
		e, err := inference.New(b.nets, b.v.Version, inference.Options{Width: n.w, Height: n.h})
		if err != nil {
			b.nets.Close()
			return 0, false, err
		}
		n.engine = e
		return b.v.Version, true, nil
	}
	n.engine.Swap(b.nets, b.v.Version)
	return b.v.Version, true, nil
}

// Close closes the engine and anything still queued (after the pipeline stopped).
func (n *network) Close() error {
	n.mu.Lock()
	if n.pending != nil {
		n.pending.nets.Close()
		n.pending = nil
	}
	n.mu.Unlock()
	if n.engine != nil {
		return n.engine.Close()
	}
	return nil
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

// queueVersion loads a model store version and builds its networks in the
// background (an ONNX export and an engine build can take a while), then offers them
// to the inference engine (after a promotion, a rollback or a reset). Without a
// network (SGBM by configuration) it does nothing.
func (d *Daemon) queueVersion(version int) {
	n := d.net
	if n == nil {
		return
	}
	go func() {
		fail := func(err error) {
			d.health.Set(healthInference, fmt.Sprintf("cannot swap in model version %d: %v (the previous weights stay)", version, err))
		}
		s, err := d.modelStore()
		if err != nil {
			fail(err)
			return
		}
		ts, v, err := s.Load(version)
		if err != nil {
			fail(err)
			return
		}
		n.buildMu.Lock() // one build at a time: an export replaces the older ones
		nets, err := n.build(ts, v)
		n.buildMu.Unlock()
		if err != nil {
			fail(err)
			return
		}
		n.offer(&builtNetworks{nets: nets, v: v})
	}()
}
