// Package runtime wires edgedepth together: it builds every part from the
// configuration, runs each under supervision (restart with backoff, health warnings),
// moves stereo pairs from the source through the depth estimator to MQTT, and shuts
// everything down in reverse order within a bounded time. It is the only package that
// imports all the others; nothing but cmd imports it.
package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/calib"
	"github.com/edgedepth/edgedepth/camera/rtsp"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/camera/stereo"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/depth/sgbm"
	"github.com/edgedepth/edgedepth/health"
	"github.com/edgedepth/edgedepth/jetson/gpio"
	"github.com/edgedepth/edgedepth/odom"
	"github.com/edgedepth/edgedepth/runtime/config"
	"github.com/edgedepth/edgedepth/telemetry"
	"github.com/edgedepth/edgedepth/telemetry/command"
	"github.com/edgedepth/edgedepth/trainer"
)

// Daemon is one running edgedepth. Build it with New, start it with Run.
type Daemon struct {
	cfg     config.Config
	log     *slog.Logger
	version string
	started time.Time

	health  health.Tracker
	metrics *metrics
	stats   pipelineStats
	topics  telemetry.Topics
	robotID string // resolved: the configured id or the sanitised host name

	publisher *telemetry.Publisher // nil when MQTT is off
	ring      *camera.Ring         // pairs waiting for the depth estimator
	closers   []io.Closer          // closed after the pipeline has stopped
	pins      *gpio.Pins           // nil without GPIO
	// collectors are the parts' own Prometheus collectors, registered on /metrics.
	collectors []prometheus.Collector

	previewMu sync.Mutex
	preview   []byte // latest depth preview JPEG, for the HTTP viewer

	// recal is the RTSP source's calibration and rectifier, for the recalibrate
	// command; nil for a source without a calibration (sim).
	recal *recalibration
	// learner is the continual learner; nil when training is off (or could not
	// start: a health warning says why).
	learner *trainer.Continual
	// gov is the training budget governor (governor.go); nil without the learner or
	// with training.governor.enabled false.
	gov *trainingGovernor
	// store is the model store (see modelStore).
	storeMu sync.Mutex
	store   *trainer.Store
	// net runs the depth and pose networks; nil when depth comes from SGBM by
	// configuration.
	net *network
	// tracker is the visual odometry; nil when odom.enabled is false.
	tracker       *odom.Tracker
	odomStats     odomStats
	sgbmAgreement atomic.Pointer[telemetry.SGBMAgreement]
	modelVersion  atomic.Int64 // the version the networks run, 0 for SGBM
}

// New prepares a daemon; it opens nothing (Run does).
func New(cfg config.Config, log *slog.Logger, version string) *Daemon {
	return &Daemon{cfg: cfg, log: log, version: version, metrics: newMetrics()}
}

// Health is the daemon's list of degraded parts.
func (d *Daemon) Health() *health.Tracker { return &d.health }

// Run starts every part and blocks until ctx is cancelled, then stops them in reverse
// order of start-up: the pipeline first (so nothing new is published), then the MQTT
// client (which publishes the retained "offline" status), then the embedded broker and
// the HTTP server. It returns an error when the pipeline cannot be built at all, or when
// the shutdown outlasts cfg.ShutdownTimeout.
func (d *Daemon) Run(ctx context.Context) error {
	d.started = time.Now()
	d.ring = camera.NewRing(d.cfg.Source.RingSize)
	topics, err := telemetry.NewTopics(d.cfg.RobotID)
	if err != nil {
		return fmt.Errorf("robot_id: %w", err)
	}
	d.topics = topics
	d.robotID = topics.RobotID()

	src, err := d.newSource()
	if err != nil {
		return err
	}
	est, err := d.newEstimator()
	if err != nil {
		return err
	}
	d.closers = append(d.closers, est)
	if d.net, err = d.openNetwork(); err != nil {
		return err
	}
	d.tracker = d.newTracker()
	// The estimator and the rectifier hold C memory: close them once the pipeline has
	// stopped, but never while a pipeline goroutine that outlived the shutdown timeout
	// may still use them.
	pipelineStopped := true
	defer func() {
		if pipelineStopped {
			for _, c := range d.closers {
				c.Close()
			}
		}
	}()

	if d.cfg.MQTT.Enabled {
		if d.publisher, err = d.newPublisher(); err != nil {
			return err
		}
	} else {
		d.log.Info("MQTT is off (mqtt.enabled: false): depth is computed but not published")
	}
	d.checkDataDir()
	d.startLearner()
	d.startGovernor(src)
	var commands *command.Dispatcher
	if d.publisher != nil && d.cfg.Commands.Enabled {
		if commands, err = d.newDispatcher(); err != nil {
			// Commands are optional: degrade with a warning that says why.
			d.health.Set("commands", err.Error()+": commands are off")
			d.log.Error("commands off", "err", err)
			commands = nil
		}
	}

	// Three layers, each with its own context and wait group, so that shutdown can
	// proceed layer by layer: infrastructure (broker, HTTP), then the MQTT client, then
	// the pipeline.
	infraCtx, stopInfra := context.WithCancel(context.WithoutCancel(ctx))
	clientCtx, stopClient := context.WithCancel(context.WithoutCancel(ctx))
	pipeCtx, stopPipe := context.WithCancel(ctx)
	defer stopInfra()
	defer stopClient()
	defer stopPipe()
	var infra, client, pipe sync.WaitGroup
	goSupervised := func(wg *sync.WaitGroup, ctx context.Context, name string, part func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			supervise(ctx, d.log, &d.health, name, part)
		}()
	}

	if d.cfg.MQTT.Enabled && d.cfg.MQTT.Embedded.Enabled {
		b := &telemetry.Broker{Addr: d.cfg.MQTT.Embedded.Addr, Log: d.log}
		goSupervised(&infra, infraCtx, "embedded broker", b.Run)
	}
	if d.cfg.HTTP.Addr != "" {
		reg := prometheus.NewRegistry()
		d.metrics.register(reg, d.ring)
		if d.publisher != nil {
			reg.MustRegister(d.publisher)
		}
		reg.MustRegister(d.collectors...)
		srv := &telemetry.HTTPServer{
			Addr:     d.cfg.HTTP.Addr,
			Health:   &d.health,
			Registry: reg,
			Preview:  d.latestPreview,
			Status:   func() any { return d.status("") },
			Log:      d.log,
		}
		goSupervised(&infra, infraCtx, "http", srv.Run)
	}
	if d.publisher != nil {
		goSupervised(&client, clientCtx, "mqtt client", d.publisher.Run)
	}
	d.openPins(&infra, infraCtx)

	ring := d.ring
	goSupervised(&pipe, pipeCtx, "camera "+src.Name(), func(ctx context.Context) error {
		return src.Run(ctx, func(f camera.StereoFrame) {
			d.stats.framesIn.Add(1)
			d.metrics.framesIn.Inc()
			ring.Push(f)
		})
	})
	goSupervised(&pipe, pipeCtx, "depth", func(ctx context.Context) error {
		return d.runDepth(ctx, ring, est)
	})
	if d.gov != nil {
		// The training budget governor: started before the learner, stopped with it.
		goSupervised(&pipe, pipeCtx, "training governor", d.runGovernor)
	}
	if d.learner != nil {
		// The learner stops with the pipeline: after its current step it writes its
		// weights to the model store, within the shutdown timeout. It computes on a
		// thread of lowered priority: inference first.
		goSupervised(&pipe, pipeCtx, "training", d.runLearner)
	}
	pipe.Add(1)
	go func() {
		defer pipe.Done()
		d.runStatus(pipeCtx)
	}()
	// Commands stop with the pipeline, before the MQTT client, so that their last
	// replies still go out.
	if commands != nil {
		goSupervised(&pipe, pipeCtx, "commands", commands.Run)
	}
	d.log.Info("edgedepth running", "robot_id", d.robotID, "source", src.Name(), "estimator", d.estimatorName(),
		"mqtt", mqttSummary(d.cfg), "http", d.cfg.HTTP.Addr, "topics", topics.Prefix)

	<-ctx.Done()
	d.log.Info("shutting down", "timeout", d.cfg.ShutdownTimeout)
	deadline := time.NewTimer(d.cfg.ShutdownTimeout)
	defer deadline.Stop()
	for _, layer := range []struct {
		name string
		stop context.CancelFunc
		wg   *sync.WaitGroup
	}{
		{"pipeline", stopPipe, &pipe},
		{"mqtt client", stopClient, &client},
		{"broker and http", stopInfra, &infra},
	} {
		layer.stop()
		if err := waitUntil(layer.wg, deadline.C); err != nil {
			pipelineStopped = layer.wg != &pipe
			return fmt.Errorf("shutdown: %s still running after %s: %w", layer.name, d.cfg.ShutdownTimeout, err)
		}
	}
	d.log.Info("stopped")
	return nil
}

var errTimeout = errors.New("timed out")

func waitUntil(wg *sync.WaitGroup, deadline <-chan time.Time) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-deadline:
		return errTimeout
	}
}

func (d *Daemon) newSource() (camera.Source, error) {
	switch d.cfg.Source.Kind {
	case "sim":
		w, err := sim.NewWorld(d.cfg.Source.Sim)
		if err != nil {
			return nil, fmt.Errorf("source.sim: %w", err)
		}
		return sim.NewSource(w), nil
	case "rtsp":
		return d.newRTSPSource()
	case "sequence":
		sc := d.cfg.Source.Sequence
		seq, err := sim.OpenSequence(sc.Dir)
		if err != nil {
			return nil, fmt.Errorf("source.sequence.dir: %w", err)
		}
		return &playbackSource{Playback: seq.Source(sc.Loop, sc.FPS), frames: seq.Len(), log: d.log}, nil
	}
	return nil, fmt.Errorf("source.kind: %q unknown", d.cfg.Source.Kind)
}

func (d *Daemon) newEstimator() (depth.Estimator, error) {
	est, err := sgbm.New(d.cfg.Depth.SGBMParams())
	if err != nil {
		return nil, fmt.Errorf("depth.sgbm: %w", err)
	}
	return est, nil
}

// estimatorName is what produces depth now: "monodepth2 vN" (model store versions
// start at 1) or "sgbm". Safe from any goroutine.
func (d *Daemon) estimatorName() string {
	if v := d.modelVersion.Load(); v > 0 {
		return fmt.Sprintf("%s v%d", NetworkEstimatorName, v)
	}
	return "sgbm"
}

// backendName is where the networks compute: "cuda" or "cpu" (native), or the ONNX
// Runtime engine ("onnxruntime-cpu", "tensorrt", ...); "cpu" for SGBM.
func (d *Daemon) backendName() string {
	if d.net != nil {
		return d.net.kind
	}
	return "cpu"
}

func (d *Daemon) newPublisher() (*telemetry.Publisher, error) {
	mc := d.cfg.MQTT.MQTTConfig
	if mc.ClientID == "" {
		mc.ClientID = "edgedepth-" + d.robotID
	}
	pub, err := telemetry.NewPublisher(mc, d.topics, d.log, &d.health)
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	offline, _ := json.Marshal(d.status("offline"))
	pub.SetOfflinePayload(offline)
	return pub, nil
}

// checkDataDir makes sure the data directory exists and is writable; when it is not,
// the daemon keeps running (nothing in the live path needs it yet) with a warning that
// names the directory.
func (d *Daemon) checkDataDir() {
	dir := d.cfg.DataDir
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		var f *os.File
		f, err = os.CreateTemp(dir, ".write-test-*")
		if err == nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
	if err != nil {
		abs, _ := filepath.Abs(dir)
		d.health.Set("data_dir", fmt.Sprintf("data directory %s is not writable (%v): set data_dir to a writable directory", abs, err))
		d.log.Warn("data directory not writable", "dir", abs, "err", err)
	}
}

func (d *Daemon) latestPreview() []byte {
	d.previewMu.Lock()
	defer d.previewMu.Unlock()
	return d.preview
}

func mqttSummary(c config.Config) string {
	if !c.MQTT.Enabled {
		return "off"
	}
	if c.MQTT.Embedded.Enabled {
		return c.MQTT.BrokerURL + " (embedded broker on " + c.MQTT.Embedded.Addr + ")"
	}
	return c.MQTT.BrokerURL
}

// newRTSPSource builds the stereo source of two RTSP cameras (or one side-by-side
// stream) with the rectifier of the configured calibration. The rectifier holds C
// memory; it is closed with the estimator, after the pipeline has stopped.
func (d *Daemon) newRTSPSource() (camera.Source, error) {
	r := d.cfg.Source.RTSP
	rs, err := buildRTSPSource(r, &d.health, d.log)
	if err != nil {
		return nil, err
	}
	// recal closes whichever rectifier is current when the pipeline has stopped.
	d.recal = &recalibration{src: rs.src, cal: rs.cal, unitM: r.CalibrationUnitM, files: r.Calibration, alpha: r.Alpha, rect: rs.rect}
	d.closers = append(d.closers, d.recal)
	d.collectors = append(d.collectors, newCameraCollector(rs.src, rs.cams))
	return rs.src, nil
}

// rtspSource is the stereo source of the configured RTSP cameras, not yet running.
type rtspSource struct {
	src  *stereo.Source
	cal  calib.Stereo     // the loaded calibration, translation in metres
	rect *calib.Rectifier // src's rectifier: C memory, closed by the owner after src has stopped
	cams map[string]*rtsp.Camera
}

// buildRTSPSource builds the stereo source of two RTSP cameras (or one side-by-side
// stream) with the rectifier of the configured calibration; it connects to nothing.
// On success the caller owns rs.rect.
func buildRTSPSource(r config.RTSP, h *health.Tracker, log *slog.Logger) (rs *rtspSource, err error) {
	cal, err := calib.Load(r.Calibration...)
	if err != nil {
		return nil, fmt.Errorf("source.rtsp.calibration: %w", err)
	}
	if r.CalibrationUnitM != 1 {
		cal = cal.ScaleTranslation(r.CalibrationUnitM)
	}
	// The calibration's image size is the size the cameras must stream; a stream of
	// another size fails to rectify with an error naming both sizes.
	rect, err := calib.NewRectifier(cal, cal.Size, calib.Options{Alpha: r.Alpha})
	if err != nil {
		return nil, fmt.Errorf("source.rtsp.calibration: %w", err)
	}
	defer func() {
		if err != nil {
			rect.Close()
		}
	}()
	src := &stereo.Source{
		Label:     "rtsp",
		Rectifier: rect,
		Config:    r.Pairing,
		Health:    h,
		Log:       log.With("component", "camera"),
	}
	newCam := func(name string, c rtsp.Config) (*rtsp.Camera, error) {
		cam, err := rtsp.New(name, c, log.With("component", "camera "+name))
		if err != nil {
			return nil, fmt.Errorf("source.rtsp.%s: %w", name, err)
		}
		return cam, nil
	}
	rs = &rtspSource{src: src, cal: cal, rect: rect}
	if r.SideBySide {
		cam, err := newCam("left", r.Left)
		if err != nil {
			return nil, err
		}
		src.SideBySide = cam
		rs.cams = map[string]*rtsp.Camera{"side-by-side": cam}
		return rs, nil
	}
	left, err := newCam("left", r.Left)
	if err != nil {
		return nil, err
	}
	right, err := newCam("right", r.Right)
	if err != nil {
		return nil, err
	}
	src.Left, src.Right = left, right
	rs.cams = map[string]*rtsp.Camera{"left": left, "right": right}
	return rs, nil
}

// openPins opens the configured GPIO pins (trigger, status LED, button) and runs them
// with the infrastructure. No GPIO on this machine is "skipped": logged with the reason,
// not a health problem; pins that exist but cannot be used are a health warning.
func (d *Daemon) openPins(wg *sync.WaitGroup, ctx context.Context) {
	if d.cfg.GPIO.Empty() {
		return
	}
	pins, st := gpio.Open(d.cfg.GPIO)
	switch st.Outcome {
	case gpio.Skipped:
		d.log.Warn("GPIO skipped", "component", "gpio", "reason", st.Reason)
		return
	case gpio.Failed:
		d.health.Set("gpio", st.Reason)
		return
	}
	d.pins = pins
	wg.Add(1)
	go func() {
		defer wg.Done()
		supervise(ctx, d.log, &d.health, "gpio", pins.Run)
	}()
	if pins.Button != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-pins.Button.Events():
					d.log.Info("button", "component", "gpio", "event", ev)
					if ev.Pressed {
						d.buttonSnapshot()
					}
				}
			}
		}()
	}
}

// newDispatcher builds the command channel: the signing key (created on first run under
// the data directory), and the commands this version offers.
func (d *Daemon) newDispatcher() (*command.Dispatcher, error) {
	c := d.cfg.Commands
	cfg := command.Config{Window: c.Window, Timeout: c.Timeout, MaxConcurrent: c.MaxConcurrent, Log: d.log, AllowUnsigned: c.Unsigned}
	if !c.Unsigned {
		path := c.KeyFile
		if path == "" {
			path = filepath.Join(d.cfg.DataDir, "cmd.key")
		}
		key, created, err := command.LoadOrCreateKey(path)
		if err != nil {
			return nil, fmt.Errorf("commands.key_file: %w", err)
		}
		abs, _ := filepath.Abs(path)
		if created {
			d.log.Warn("created the command signing key; give it to operators (edgedepth cmd --key FILE)", "path", abs)
		} else {
			d.log.Info("command signing key loaded", "path", abs)
		}
		cfg.Key = key
	}
	disp, err := command.NewDispatcher(cfg, d.publisher, d.topics)
	if err != nil {
		return nil, fmt.Errorf("commands: %w", err)
	}
	disp.Register("status", func(context.Context, json.RawMessage) (any, error) {
		return d.status(""), nil
	}, command.WithTimeout(2*time.Second))
	d.registerRecalibrate(disp)
	d.registerChessboard(disp)
	d.registerModelCommands(disp)
	disp.Register("pose/reset", d.poseReset, command.WithTimeout(2*time.Second))
	return disp, nil
}

// buttonSnapshot saves the learner's weights as a model version when the button is
// pressed (model/snapshot without MQTT); with learning off it says so in the log.
func (d *Daemon) buttonSnapshot() {
	if d.learner == nil {
		d.log.Info("button: no model snapshot, continual learning is off", "component", "gpio")
		return
	}
	v, err := d.learner.Snapshot("snapshot by the button")
	if err != nil {
		d.log.Error("button: model snapshot failed", "component", "gpio", "err", err)
		return
	}
	d.log.Info("button: model snapshot", "component", "gpio", "version", v.Version)
}

// playbackSource is a recorded sequence as the daemon's source: at its end (without
// loop) it says so and waits for the stop instead of ending, which the supervisor
// would take for a failure and restart from frame 0.
type playbackSource struct {
	*sim.Playback
	frames int
	log    *slog.Logger
}

func (p *playbackSource) Run(ctx context.Context, emit func(camera.StereoFrame)) error {
	err := p.Playback.Run(ctx, emit)
	if !errors.Is(err, sim.ErrEndOfSequence) {
		return err
	}
	p.log.Info("the sequence has ended: no more pairs", "component", "camera", "source", p.Name(), "frames", p.frames, "skipped", p.Skipped())
	<-ctx.Done()
	return nil
}
