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
	"github.com/edgedepth/edgedepth/jetson/gpio"
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

	Source   Source   `yaml:"source"`
	Depth    Depth    `yaml:"depth"`
	MQTT     MQTT     `yaml:"mqtt"`
	HTTP     HTTP     `yaml:"http"`
	Commands Commands `yaml:"commands"`
	// GPIO names the Jetson pins for the camera trigger, status LED and button
	// (jetson/gpio.Config documents every key). No pins by default; on a machine
	// without GPIO the pins are skipped with the reason, never an error.
	GPIO gpio.Config `yaml:"gpio"`
}

// Source selects where stereo pairs come from.
type Source struct {
	// Kind is "sim" (the built-in simulated stereo rig) or "rtsp" (two cameras).
	// Default: sim.
	Kind string `yaml:"kind"`
	// RingSize is how many pairs may wait for the depth estimator before the oldest is
	// dropped (and counted). Default: 3, range 1–64.
	RingSize int `yaml:"ring_size"`
	// Sim configures the simulated stereo rig (camera/sim.Config documents every key,
	// its unit and default: scene, seed, width, height, fps, hfov_deg, baseline_m,
	// speed_mps, far_m, texture_scale).
	Sim  sim.Config `yaml:"sim"`
	RTSP RTSP       `yaml:"rtsp"`
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
	// Estimator is "sgbm" (classical semi-global matching). Default: sgbm.
	Estimator string `yaml:"estimator"`
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
			Estimator:      "sgbm",
			MinDepthM:      0.3,
			MaxDepthM:      60,
			PreviewRateHz:  2,
			PreviewQuality: 75,
			SGBM:           sgbm.DefaultParams(),
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
		GPIO:     gpio.DefaultConfig(),
	}
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
