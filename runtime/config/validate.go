package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strings"

	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/camera/stereo"
)

// Validate checks every field and returns all problems at once, each naming the key
// and the allowed values.
func (c Config) Validate() error {
	var v validator
	if strings.ContainsAny(c.RobotID, "+#/ \t") {
		v.addf("robot_id: %q may not contain '+', '#', '/' or spaces (it is an MQTT topic level)", c.RobotID)
	}
	if c.DataDir == "" {
		v.addf("data_dir: empty: give a directory for models and keys")
	}
	v.oneOf("log_level", c.LogLevel, "debug", "info", "warn", "error")
	v.oneOf("backend", c.Backend, "auto", "cuda", "cpu")
	v.oneOf("inference", c.Inference, "native", "onnxruntime-cpu", "onnxruntime-cuda", "tensorrt")
	v.rangeF("shutdown_timeout (seconds)", c.ShutdownTimeout.Seconds(), 0.1, 300)

	v.oneOf("source.kind", c.Source.Kind, "sim", "rtsp", "sequence")
	if c.Source.Kind == "sequence" {
		if c.Source.Sequence.Dir == "" {
			v.addf("source.sequence.dir: empty: give the directory of a recorded sequence (edgedepth record or sim write)")
		}
		v.rangeF("source.sequence.fps", c.Source.Sequence.FPS, 0, 1000)
	}
	v.rangeI("source.ring_size", c.Source.RingSize, 1, 64)
	if c.Source.Kind == "sim" {
		var ce *sim.ConfigError
		if err := c.Source.Sim.Validate(); errors.As(err, &ce) {
			v.addf("source.sim.%s %s", ce.Key, ce.Problem)
		} else if err != nil {
			v.addf("source.sim: %v", err)
		}
	}
	if c.Source.Kind == "rtsp" {
		r := c.Source.RTSP
		if err := r.Left.Validate(); err != nil {
			v.addf("source.rtsp.left: %v", err)
		}
		if r.SideBySide {
			if r.Right.URL != "" {
				v.addf("source.rtsp.right.url: must be empty with side_by_side (left is the one stream)")
			}
		} else if err := r.Right.Validate(); err != nil {
			v.addf("source.rtsp.right: %v", err)
		}
		if len(r.Calibration) == 0 {
			v.addf("source.rtsp.calibration: empty: real cameras need a stereo calibration (OpenCV YAML/XML or two ROS camera_info files)")
		}
		v.rangeF("source.rtsp.calibration_unit_m", r.CalibrationUnitM, 1e-6, 1000)
		v.rangeF("source.rtsp.alpha", r.Alpha, 0, 1)
		var ce *stereo.ConfigError
		if err := r.Pairing.Validate(); errors.As(err, &ce) {
			v.addf("source.rtsp.pairing.%s %s", ce.Key, ce.Problem)
		} else if err != nil {
			v.addf("source.rtsp.pairing: %v", err)
		}
	}

	d := c.Depth
	v.oneOf("depth.estimator", d.Estimator, "auto", "network", "sgbm")
	v.rangeI("depth.compare_sgbm_every", d.CompareSGBMEvery, 0, 10000)
	if n := d.Network; n.Width != 0 || n.Height != 0 {
		for _, f := range []struct {
			key string
			v   int
		}{{"depth.network.width", n.Width}, {"depth.network.height", n.Height}} {
			if f.v < 64 || f.v > 4096 || f.v%32 != 0 {
				v.addf("%s: %d: want a multiple of 32 from 64 to 4096 (or 0 for width and height both: training's size)", f.key, f.v)
			}
		}
	}
	v.rangeI("depth.network.threads", d.Network.Threads, 0, 256)
	v.rangeF("depth.network.min_confidence", d.Network.MinConfidence, 0, 1)
	if o := c.Odom; o.Enabled {
		v.rangeI("odom.width", o.Width, 64, 4096)
		v.rangeF("odom.min_confidence", o.MinConfidence, 0, 1)
		v.rangeI("odom.pyramid_levels", o.PyramidLevels, 1, 6)
		v.rangeI("odom.iterations", o.Iterations, 1, 100)
		v.rangeF("odom.keyframe_distance_m", o.KeyframeDistanceM, 0.01, 100)
		v.rangeF("odom.keyframe_angle_deg", o.KeyframeAngleDeg, 0.1, 90)
		v.rangeF("odom.max_gap (seconds)", o.MaxGap.Seconds(), 0.01, 3600)
		v.rangeF("odom.max_speed_mps", o.MaxSpeedMPS, 0.01, 1000)
		v.rangeF("odom.max_turn_deg_per_s", o.MaxTurnDegPerS, 1, 100000)
	}
	v.rangeF("depth.min_depth_m", d.MinDepthM, 0, 1000)
	v.rangeF("depth.max_depth_m", d.MaxDepthM, 0.1, 1000)
	if d.MaxDepthM <= d.MinDepthM {
		v.addf("depth.max_depth_m: %g must be greater than depth.min_depth_m (%g)", d.MaxDepthM, d.MinDepthM)
	}
	if d.MaxDepthM > 65.535 {
		v.addf("depth.max_depth_m: %g exceeds 65.535, the largest depth a 16-bit millimetre PNG holds", d.MaxDepthM)
	}
	v.rangeF("depth.preview_rate_hz", d.PreviewRateHz, 0, 30)
	v.rangeI("depth.preview_quality", d.PreviewQuality, 1, 100)
	if err := d.SGBMParams().Validate(); err != nil {
		v.addf("depth.sgbm.%v", err)
	}

	m := c.MQTT
	if m.Enabled {
		if err := m.MQTTConfig.Validate(); err != nil {
			v.addf("%v", err)
		}
		v.rangeF("mqtt.status_interval (seconds)", m.StatusInterval.Seconds(), 0.1, 3600)
	}
	if m.Embedded.Enabled {
		if _, _, err := net.SplitHostPort(m.Embedded.Addr); err != nil {
			v.addf("mqtt.embedded_broker.addr: %q is not host:port", m.Embedded.Addr)
		}
	}
	if c.HTTP.Addr != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
			v.addf("http.addr: %q is not host:port (or empty to turn HTTP off)", c.HTTP.Addr)
		}
	}
	if c.Commands.Enabled {
		v.rangeF("commands.window (seconds)", c.Commands.Window.Seconds(), 1, 3600)
		v.rangeF("commands.timeout (seconds)", c.Commands.Timeout.Seconds(), 0.1, 3600)
		v.rangeI("commands.max_concurrent", c.Commands.MaxConcurrent, 1, 64)
	}
	if t := c.Training; t.Enabled {
		for _, d := range []struct {
			key string
			v   int
		}{{"training.width", t.Width}, {"training.height", t.Height}} {
			if d.v%32 != 0 || d.v < 64 || d.v > 2048 {
				v.addf("%s: %d must be a multiple of 32 in [64, 2048] (the networks halve it five times)", d.key, d.v)
			}
		}
		v.rangeI("training.keep", t.Keep, 0, 10000)
		v.rangeI("training.batch", t.Batch, 1, 64)
		if !(t.ChannelScale > 0 && t.ChannelScale <= 1) {
			v.addf("training.channel_scale: %g is out of range (0, 1]", t.ChannelScale)
		}
		if !(t.LR > 0 && t.LR <= 1) {
			v.addf("training.lr: %g is out of range (0, 1]", t.LR)
		}
		v.rangeF("training.l2sp_weight", t.L2SPWeight, 0, 1000)
		if !(t.Duty > 0 && t.Duty <= 1) {
			v.addf("training.duty: %g is out of range (0, 1]", t.Duty)
		}
		v.rangeI("training.threads", t.Threads, 1, 256)
		v.rangeI("training.nice", t.Nice, 0, 19)
		v.rangeI("training.recent_samples", t.RecentSamples, 0, 100000)
		v.rangeI("training.reservoir_samples", t.ReservoirSamples, 0, 100000)
		if t.RecentSamples+t.ReservoirSamples < t.Batch {
			v.addf("training.recent_samples + training.reservoir_samples: %d must hold at least a batch (training.batch %d)",
				t.RecentSamples+t.ReservoirSamples, t.Batch)
		}
		v.rangeI("training.validation_samples", t.ValidationSamples, 2, 10000)
		v.rangeI("training.validation_every", t.ValidationEvery, 2, 1000)
		v.rangeI("training.guard_every", t.GuardEvery, 1, 1000000)
		v.rangeF("training.guard_tolerance", t.GuardTolerance, 0, 1)
		v.rangeF("training.min_motion", t.MinMotion, 0, 255)
		v.rangeF("training.sample_interval (seconds)", t.SampleInterval.Seconds(), 0, 3600)
		// The governor's own Validate names its keys (governor.hard_limit_c, ...). With
		// max_duty_cycle 0 (training.duty) a bad training.duty is reported above only.
		dutyOK := t.Governor.MaxDutyCycle != 0 || (t.Duty > 0 && t.Duty <= 1)
		if err := t.GovernorConfig().Validate(); t.Governor.Enabled && dutyOK && err != nil {
			v.addf("training.%v", err)
		}
	}
	if !c.GPIO.Empty() {
		if err := c.GPIO.Validate(); err != nil {
			v.addf("%v", err)
		}
	}
	return v.err()
}

type validator struct{ problems []string }

func (v *validator) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) oneOf(key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.addf("%s: %q is not one of %s", key, val, strings.Join(allowed, ", "))
}

func (v *validator) rangeI(key string, val, lo, hi int) {
	if val < lo || val > hi {
		v.addf("%s: %d is out of range [%d, %d]", key, val, lo, hi)
	}
}

func (v *validator) rangeF(key string, val, lo, hi float64) {
	if math.IsNaN(val) || val < lo || val > hi {
		v.addf("%s: %g is out of range [%g, %g]", key, val, lo, hi)
	}
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(v.problems, "; "))
}
