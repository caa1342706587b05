// Package config is edgedepth's configuration: defaults in code, then a strict YAML
// file (an unknown key is an error that names its path), then EDGEDEPTH_* environment
// overrides, then Validate, which names the field and the allowed range.
package config

import (
	"fmt"
	"os"
	"time"

	"github.com/edgedepth/edgedepth/camera/rtsp"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/camera/stereo"
	"github.com/edgedepth/edgedepth/depth/sgbm"
	"github.com/edgedepth/edgedepth/jetson/governor"
	"github.com/edgedepth/edgedepth/jetson/gpio"
	"github.com/edgedepth/edgedepth/odom"
	"github.com/edgedepth/edgedepth/telemetry"
)

// Config is the whole daemon configuration. Every field documents its unit and default;
// the YAML key is the field's yaml tag, and the environment variable is EDGEDEPTH_ plus
// the upper-cased path joined by underscores (mqtt.broker_url → EDGEDEPTH_MQTT_BROKER_URL).
type Config struct {
	// RobotID names this robot in MQTT topics (edgedepth/<robot_id>/...).
	// Default: "" = the host name, with characters MQTT forbids in a topic level replaced.
	RobotID string `yaml:"robot_id"`
	// DataDir holds models, keys and recordings. Default: "data" (relative to the
	// working directory).
	DataDir string `yaml:"data_dir"`
	// LogLevel is debug, info, warn or error. Default: info.
	LogLevel string `yaml:"log_level"`
	// ShutdownTimeout bounds a graceful stop after SIGINT/SIGTERM. Default: 5s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Backend runs the networks: "cuda" (an NVIDIA GPU through jetson/cuda), "cpu"
	// (tensor/cpu), or "auto": CUDA when it opens, else the CPU with a health warning.
	// Default: auto.
	Backend string `yaml:"backend"`
	// Inference runs the depth and pose networks: "native" (our own compute, on the
	// backend above), "onnxruntime-cpu", "onnxruntime-cuda" or "tensorrt" (ONNX
	// Runtime with that execution provider, on the networks exported to ONNX; needs
	// libonnxruntime, see depth.network.onnxruntime_lib; TensorRT is for a Jetson's
	// GPU build of ONNX Runtime). Training always runs native. Default: native.
	Inference string `yaml:"inference"`

	Source   Source   `yaml:"source"`
	Depth    Depth    `yaml:"depth"`
	MQTT     MQTT     `yaml:"mqtt"`
	HTTP     HTTP     `yaml:"http"`
	Commands Commands `yaml:"commands"`
	Training Training `yaml:"training"`
	Odom     Odom     `yaml:"odom"`
	// GPIO names the Jetson pins for the camera trigger, status LED and button
	// (jetson/gpio.Config documents every key). No pins by default; on a machine
	// without GPIO the pins are skipped with the reason, never an error.
	GPIO gpio.Config `yaml:"gpio"`
}

// Source selects where stereo pairs come from.
type Source struct {
	// Kind is "sim" (the built-in simulated stereo rig), "rtsp" (two cameras) or
	// "sequence" (a recorded sequence on disk, played back in real time). Default: sim.
	Kind string `yaml:"kind"`
	// RingSize is how many pairs may wait for the depth estimator before the oldest is
	// dropped (and counted). Default: 3, range 1–64.
	RingSize int `yaml:"ring_size"`
	// Sim configures the simulated stereo rig (camera/sim.Config documents every key,
	// its unit and default: scene, seed, width, height, fps, hfov_deg, baseline_m,
	// speed_mps, far_m, texture_scale).
	Sim      sim.Config `yaml:"sim"`
	RTSP     RTSP       `yaml:"rtsp"`
	Sequence Sequence   `yaml:"sequence"`
}

// Sequence plays back a recorded sequence (the format of `edgedepth record` and `sim
// write`) as the source: rectified pairs at the recorded rate, each pair's seq its frame
// number, so that `edgedepth capture` + `eval --live` can judge the daemon's own output
// on it.
type Sequence struct {
	// Dir is the sequence directory (with calib.yaml). Required with kind sequence.
	Dir string `yaml:"dir"`
	// FPS is the playback rate in pairs per second; 0 = the recorded rate. Default 0.
	FPS float64 `yaml:"fps"`
	// Loop starts again at frame 0 after the last frame (seq keeps counting); without
	// it the source stops after the last frame and the daemon idles. Default: false.
	Loop bool `yaml:"loop"`
}

// RTSP configures a pair of RTSP cameras, or one side-by-side stream.
type RTSP struct {
	// Left and Right are the cameras (camera/rtsp.Config documents every key: url,
	// transport, decoder, username, password_file, password_env, read_timeout, ...).
	// With side_by_side, Left is the one stream and Right stays empty.
	Left  rtsp.Config `yaml:"left"`
	Right rtsp.Config `yaml:"right"`
	// SideBySide: one stream carries both eyes, the left eye in the left half.
	// Default: false.
	SideBySide bool `yaml:"side_by_side"`
	// Calibration lists the stereo calibration file(s): one OpenCV cv::FileStorage
	// YAML/XML file (K1, D1, K2, D2, R, T, image size), OpenCV's stereo_calib pair
	// (intrinsics.yml, extrinsics.yml), or two ROS camera_info files (left, right).
	Calibration []string `yaml:"calibration"`
	// CalibrationUnitM is the length of the calibration's translation unit in metres:
	// 1 when T is in metres (default), 0.001 for millimetres, the square size in
	// metres when T counts chessboard squares.
	CalibrationUnitM float64 `yaml:"calibration_unit_m"`
	// Alpha picks the rectified field of view: 0 keeps only pixels seen by both raw
	// images (default), 1 keeps every raw pixel with black borders.
	Alpha float64 `yaml:"alpha"`
	// Pairing tunes how left and right frames are matched by capture time
	// (camera/stereo.Config: pair_tolerance, frame_period, buffer_frames, drift_window,
	// drift_warn_ms_per_min, stall_timeout).
	Pairing stereo.Config `yaml:"pairing"`
}

// Depth configures the depth estimator and what is published of it.
type Depth struct {
	// Estimator is "network" (the depth network of the model store's active version,
	// metric from the stereo baseline it was trained with), "sgbm" (classical
	// semi-global matching) or "auto": the network when the model store has a model,
	// else SGBM with a health warning saying how to get one. Default: auto.
	Estimator string `yaml:"estimator"`
	// CompareSGBMEvery runs SGBM beside the network on every n-th pair, publishes its
	// depth on depth/sgbm and reports how far the two agree (status, metrics). 0 turns
	// it off. Default: 0, range 0–10000.
	CompareSGBMEvery int `yaml:"compare_sgbm_every"`
	// Network configures the depth and pose networks' inference.
	Network Network `yaml:"network"`
	// MinDepthM and MaxDepthM bound published depth in metres; pixels outside are
	// published as 0 (invalid). Default: 0.3 and 60.
	MinDepthM float64 `yaml:"min_depth_m"`
	MaxDepthM float64 `yaml:"max_depth_m"`
	// PreviewRateHz is how often a colour-mapped JPEG goes to depth/preview; 0 turns it
	// off. Default: 2, range 0–30.
	PreviewRateHz float64 `yaml:"preview_rate_hz"`
	// PreviewQuality is the preview's JPEG quality, 1–100. Default: 75.
	PreviewQuality int `yaml:"preview_quality"`
	// SGBM tunes the semi-global matcher (depth/sgbm.Params: every key, its unit and
	// default is documented there; num_disparities 128, block_size 5, mode 3way).
	SGBM sgbm.Params `yaml:"sgbm"`
}

// Network configures inference with the depth and pose networks.
type Network struct {
	// Width and Height are the networks' input size in pixels, multiples of 32, at
	// least 64: every pair is resized to it, and network depth is published at it
	// (with the intrinsics scaled to match). Default: 0 x 0 = training.width x
	// training.height, the size the networks learn at.
	Width  int `yaml:"width"`
	Height int `yaml:"height"`
	// Threads is how many CPU threads inference uses on the CPU backend.
	// Default: 0 = every CPU, range 0–256.
	Threads int `yaml:"threads"`
	// MinConfidence: depth pixels whose confidence (agreement of the other eye, 0–1)
	// is below it are published as 0 (invalid). Default: 0 (publish every pixel),
	// range 0–1.
	MinConfidence float64 `yaml:"min_confidence"`
	// ONNXRuntimeLib is the libonnxruntime.so.1 for the ONNX Runtime inference
	// engines; "" = $EDGEDEPTH_ONNXRUNTIME_LIB, then the system's loader.
	ONNXRuntimeLib string `yaml:"onnxruntime_lib"`
	// TensorRTFP16 lets TensorRT run layers in half precision (inference: tensorrt).
	// Default: true.
	TensorRTFP16 bool `yaml:"tensorrt_fp16"`
}

// Odom configures visual odometry: the camera's pose for every pair, published on
// pose.
type Odom struct {
	// Enabled tracks and publishes the pose. Default: true.
	Enabled bool `yaml:"enabled"`
	// Refine refines every motion by Gauss-Newton on the photometric error against
	// the keyframe's depth (without a pose network, it is the only estimate).
	// Default: true.
	Refine bool `yaml:"refine"`
	// Width is the largest image width in pixels the tracker works at: larger
	// images and depth maps (SGBM's at the camera's size, the networks' at theirs) are
	// scaled down to it. Default: 320, range 64–4096.
	Width int `yaml:"width"`
	// MinConfidence: the refinement aligns only on network depth pixels whose
	// confidence (agreement of the other eye, 0–1) reaches it. Default: 0.9.
	MinConfidence float64 `yaml:"min_confidence"`
	// PyramidLevels and Iterations tune the refinement: image pyramid levels (each
	// half the size) and Gauss-Newton steps per level at most. Defaults: 3 and 10.
	PyramidLevels int `yaml:"pyramid_levels"`
	Iterations    int `yaml:"iterations"`
	// KeyframeDistanceM and KeyframeAngleDeg: a pair further than this from the
	// keyframe becomes the next keyframe. Defaults: 0.5 m and 5°.
	KeyframeDistanceM float64 `yaml:"keyframe_distance_m"`
	KeyframeAngleDeg  float64 `yaml:"keyframe_angle_deg"`
	// MaxGap is the longest gap between two pairs the trajectory bridges; after a
	// longer one (a reconnect, a dropped stretch) a new trajectory starts at the
	// identity, with reset: true in its first pose message. Default: 1s.
	MaxGap time.Duration `yaml:"max_gap"`
	// MaxSpeedMPS and MaxTurnDegPerS bound a plausible motion between pairs; a faster
	// one is a jump that restarts the trajectory. Defaults: 10 m/s and 180°/s.
	MaxSpeedMPS    float64 `yaml:"max_speed_mps"`
	MaxTurnDegPerS float64 `yaml:"max_turn_deg_per_s"`
}

// MQTT configures publishing: the connection to the broker (telemetry.MQTTConfig's keys
// appear directly under mqtt:, e.g. mqtt.broker_url, mqtt.password_file, mqtt.ca_file;
// each documents its unit and default there), the status rate and the embedded broker.
type MQTT struct {
	// Enabled turns MQTT publishing on. Default: true.
	Enabled              bool `yaml:"enabled"`
	telemetry.MQTTConfig `yaml:",inline"`
	// StatusInterval is how often the retained status is refreshed. Default: 1s.
	StatusInterval time.Duration  `yaml:"status_interval"`
	Embedded       EmbeddedBroker `yaml:"embedded_broker"`
}

// Commands configures the field command channel (edgedepth/<robot_id>/cmd/<name>).
type Commands struct {
	// Enabled listens for commands (needs MQTT). Default: true.
	Enabled bool `yaml:"enabled"`
	// KeyFile holds the HMAC-SHA256 key commands must be signed with (64 hex
	// characters). Created with mode 0600 on first run if missing. Default: "" =
	// <data_dir>/cmd.key.
	KeyFile string `yaml:"key_file"`
	// Unsigned accepts commands without a signature: only for a broker nobody else
	// can reach. Default: false.
	Unsigned bool `yaml:"unsigned"`
	// Window is how far a signed command's time may be from this robot's clock.
	// Default: 30s.
	Window time.Duration `yaml:"window"`
	// Timeout is how long a command may run before its reply says "timeout".
	// Default: 10s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxConcurrent commands run at once; more are answered "busy". Default: 4.
	MaxConcurrent int `yaml:"max_concurrent"`
}

// Training configures continual learning: the networks keep training on the robot
// from the live stream (self-supervised), duty-cycled beside inference, and a guard
// promotes new weights into the model store only when their held-out photometric error
// is not worse (trainer.Continual documents the whole loop).
type Training struct {
	// Enabled runs the learner. Default: false — learning takes about duty × threads
	// CPU cores and writes model versions to disk, so the zero-setup default stays
	// light and starts at once; turn it on on a robot (configs/jetson-orin.yaml does).
	// A stop waits for the learner's current step and its checkpoint: keep
	// shutdown_timeout above the time of a step.
	Enabled bool `yaml:"enabled"`
	// StoreDir is the model store: versioned safetensors files and manifest.json.
	// Default: "" = <data_dir>/models. An empty store means learning from scratch
	// (a health warning says so); `edgedepth import` or `edgedepth train` fill it.
	StoreDir string `yaml:"store_dir"`
	// Keep is how many versions besides the base and the active one the store keeps
	// (the oldest go first); 0 keeps all. Default: 10, range 0–10000.
	Keep int `yaml:"keep"`
	// Width and Height are the training resolution in pixels, multiples of 32, at
	// least 64. Default: 128 x 96 (the 4:3 of the simulated rig). Frames are resized
	// to it, intrinsics scaled with them.
	Width  int `yaml:"width"`
	Height int `yaml:"height"`
	// Batch is the number of samples a step. Default: 4, range 1–64.
	Batch int `yaml:"batch"`
	// ChannelScale is the network width of a model learned from scratch: 1 is
	// Monodepth2's, 0.5 a quarter of the work for CPUs and small Jetsons. A model
	// from the store keeps its own. Default: 0.5, range (0, 1].
	ChannelScale float64 `yaml:"channel_scale"`
	// LR is Adam's learning rate. Default: 1e-4, range (0, 1].
	LR float64 `yaml:"lr"`
	// L2SPWeight pulls the weights towards those the learner started from (the
	// active version), adding weight·‖w − w₀‖² to the loss: the regulariser against
	// forgetting. 0 turns it off. Default: 0.01, range 0–1000.
	L2SPWeight float64 `yaml:"l2sp_weight"`
	// Duty is the fraction of time the learner computes: after a step that took d it
	// rests d·(1−duty)/duty. Default: 0.3, range (0, 1].
	Duty float64 `yaml:"duty"`
	// Threads is how many CPU threads the learner's own compute backend uses, apart
	// from inference's. Default: 1, range 1–256.
	Threads int `yaml:"threads"`
	// Nice is the Linux scheduling niceness of the learner's thread (0–19; higher
	// yields more): when inference and learning both want a core, the kernel runs
	// inference first. It covers the learner's compute with threads: 1 (more threads
	// run at normal priority). Default: 10.
	Nice int `yaml:"nice"`
	// RecentSamples and ReservoirSamples size the replay buffer: the newest samples
	// and a uniform reservoir of older ones. Each sample takes at most
	// 16·width·height bytes (four RGB images and a depth map), 196 KB at 128x96, so
	// the defaults hold at most 63 MB with the validation set. Default: 32 and 256,
	// range 0–100000 each, together at least batch.
	RecentSamples    int `yaml:"recent_samples"`
	ReservoirSamples int `yaml:"reservoir_samples"`
	// ValidationSamples bounds the held-out set the guard judges on (half the newest
	// held-out samples, half a reservoir of older ones). Default: 32, range 2–10000.
	ValidationSamples int `yaml:"validation_samples"`
	// ValidationEvery holds out every n-th triplet of frames for validation (never
	// trained on). Default: 10, range 2–1000.
	ValidationEvery int `yaml:"validation_every"`
	// GuardEvery is the number of steps between two judgements of the guard.
	// Default: 50, range 1–1000000.
	GuardEvery int `yaml:"guard_every"`
	// GuardTolerance lets the guard promote weights whose held-out photometric error
	// exceeds the active version's by at most this much. Default: 0 (never worse),
	// range 0–1.
	GuardTolerance float64 `yaml:"guard_tolerance"`
	// MinMotion is the least mean absolute difference in grey levels (0–255) between
	// consecutive kept frames, on a 64-pixel-wide thumbnail: a rig that moves less is
	// resting and its frames are skipped. Default: 1, range 0–255.
	MinMotion float64 `yaml:"min_motion"`
	// SampleInterval is the least time between two triplets of frames taken for
	// training. Default: 1s, range 0–1h.
	SampleInterval time.Duration `yaml:"sample_interval"`
	// Seed drives batch draws, augmentation and the reservoirs. Default: 1.
	Seed int64 `yaml:"seed"`
	// Governor makes the duty cycle follow the SoC's temperature and power and the
	// inference latency (the training budget governor).
	Governor Governor `yaml:"governor"`
}

// Governor configures the training budget governor (jetson/governor): while the learner
// runs, it lowers the duty cycle before the SoC throttles or inference slows, stops
// training above hard_limit_c (or when inference stays too slow, or the power budget is
// exceeded at the minimum duty cycle) and resumes when the cause has cleared. Off a
// Jetson it runs on the inference latency alone.
type Governor struct {
	// Enabled runs the governor whenever training runs. Default: true.
	Enabled bool `yaml:"enabled"`
	// The governor's keys: max_duty_cycle, min_duty_cycle, soft_limit_c,
	// hard_limit_c, resume_c, soft_hysteresis_c, power_budget_w, latency_fraction,
	// period, window, increase_step, decrease_factor, min_stopped, zones
	// (jetson/governor.Config documents each, its unit and default). Here
	// max_duty_cycle defaults to 0, which means training.duty: the duty cycle the
	// learner runs at while every limit is clear.
	governor.Config `yaml:",inline"`
}

// GovernorConfig is the governor's configuration with max_duty_cycle resolved: 0 means
// training.duty, and then min_duty_cycle and increase_step are capped at it (a duty as
// low as 0.02 must not fail for defaults the operator never set).
func (t Training) GovernorConfig() governor.Config {
	g := t.Governor.Config
	if g.MaxDutyCycle == 0 {
		g.MaxDutyCycle = t.Duty
		g.MinDutyCycle = min(g.MinDutyCycle, t.Duty)
		g.IncreaseStep = min(g.IncreaseStep, t.Duty)
	}
	return g
}

// EmbeddedBroker is the in-process MQTT broker of the zero-setup default.
type EmbeddedBroker struct {
	// Enabled starts the embedded broker. Default: true (the simulated default needs no
	// other software); false on a robot with a real broker.
	Enabled bool `yaml:"enabled"`
	// Addr is where it listens. Default: 127.0.0.1:1883 (this host only).
	Addr string `yaml:"addr"`
}

// HTTP configures the local web server (/metrics, /healthz, the live viewer).
type HTTP struct {
	// Addr is where it listens; "" turns it off. Default: 127.0.0.1:8080 (this host only).
	Addr string `yaml:"addr"`
}

// Default returns the built-in configuration: the simulated rig, SGBM depth, the
// embedded broker and HTTP on localhost.
func Default() Config {
	return Config{
		RobotID:         "",
		DataDir:         "data",
		Backend:         "auto",
		Inference:       "native",
		LogLevel:        "info",
		ShutdownTimeout: 5 * time.Second,
		Source: Source{
			Kind:     "sim",
			RingSize: 3,
			Sim:      sim.DefaultConfig(),
			RTSP: RTSP{
				Left:             rtsp.Config{}.WithDefaults(),
				Right:            rtsp.Config{}.WithDefaults(),
				CalibrationUnitM: 1,
				Pairing:          stereo.DefaultConfig(),
			},
		},
		Depth: Depth{
			Estimator:      "auto",
			MinDepthM:      0.3,
			MaxDepthM:      60,
			PreviewRateHz:  2,
			PreviewQuality: 75,
			SGBM:           sgbm.DefaultParams(),
			Network:        Network{TensorRTFP16: true},
		},
		MQTT: MQTT{
			Enabled: true,
			MQTTConfig: telemetry.MQTTConfig{
				BrokerURL:      telemetry.DefaultBrokerURL,
				KeepAlive:      telemetry.DefaultKeepAlive,
				ConnectTimeout: telemetry.DefaultConnectTimeout,
			},
			StatusInterval: time.Second,
			Embedded:       EmbeddedBroker{Enabled: true, Addr: "127.0.0.1:1883"},
		},
		HTTP:     HTTP{Addr: "127.0.0.1:8080"},
		Commands: Commands{Enabled: true, Window: 30 * time.Second, Timeout: 10 * time.Second, MaxConcurrent: 4},
		Training: Training{
			Keep: 10, Width: 128, Height: 96, Batch: 4, ChannelScale: 0.5, LR: 1e-4, L2SPWeight: 0.01,
			Duty: 0.3, Threads: 1, Nice: 10, RecentSamples: 32, ReservoirSamples: 256, ValidationSamples: 32,
			ValidationEvery: 10, GuardEvery: 50, MinMotion: 1, SampleInterval: time.Second, Seed: 1,
			Governor: defaultGovernor(),
		},
		Odom: Odom{
			Enabled: true, Refine: true, Width: 320, MinConfidence: 0.9, PyramidLevels: 3, Iterations: 10,
			KeyframeDistanceM: 0.5, KeyframeAngleDeg: 5, MaxGap: time.Second, MaxSpeedMPS: 10, MaxTurnDegPerS: 180,
		},
		GPIO: gpio.DefaultConfig(),
	}
}

// defaultGovernor is jetson/governor's defaults, on, with max_duty_cycle following
// training.duty.
func defaultGovernor() Governor {
	g := Governor{Enabled: true, Config: governor.DefaultConfig()}
	g.MaxDutyCycle = 0
	return g
}

// NetworkSize is the networks' input size: depth.network's, or training's when 0.
func (c Config) NetworkSize() (width, height int) {
	w, h := c.Depth.Network.Width, c.Depth.Network.Height
	if w == 0 || h == 0 {
		return c.Training.Width, c.Training.Height
	}
	return w, h
}

// Load reads the YAML file at path over the defaults, applies EDGEDEPTH_* overrides
// from environ (os.Environ() form) and validates the result.
func Load(path string, environ []string) (Config, error) {
	c := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if err := decodeStrict(data, &c); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if err := applyEnv(&c, environ); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// FromEnv is the built-in defaults with EDGEDEPTH_* overrides, validated: the
// configuration when no file is given.
func FromEnv(environ []string) (Config, error) {
	c := Default()
	if err := applyEnv(&c, environ); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// SGBMParams are the matcher's parameters with the depth range every estimator shares.
func (d Depth) SGBMParams() sgbm.Params {
	p := d.SGBM
	p.MinDepthM, p.MaxDepthM = d.MinDepthM, d.MaxDepthM
	return p
}

// TrackerConfig is the odometry's configuration (odom.Tracker) of these keys.
func (o Odom) TrackerConfig() odom.TrackerConfig {
	return odom.TrackerConfig{
		Refine:            o.Refine,
		Refinement:        odom.RefineOptions{Levels: o.PyramidLevels, Iterations: o.Iterations},
		KeyframeDistanceM: o.KeyframeDistanceM, KeyframeAngleDeg: o.KeyframeAngleDeg,
		MaxGap: o.MaxGap, MaxSpeedMPS: o.MaxSpeedMPS, MaxTurnDegPerS: o.MaxTurnDegPerS,
	}
}
