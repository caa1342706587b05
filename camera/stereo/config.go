package stereo

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes pairing and camera supervision. The zero value of every field means its
// default (see DefaultConfig), so a config file only names what it changes.
type Config struct {
	// PairTolerance is the largest capture-time difference between the two eyes of a
	// pair. No pair is ever emitted whose times differ by more. 0 means half the frame
	// period (FramePeriod, or measured from the streams): the widest tolerance under
	// which a frame can still have only one candidate partner. Range 0–10s, default 0.
	PairTolerance time.Duration `yaml:"pair_tolerance"`
	// FramePeriod is the cameras' nominal frame period (33.3ms at 30 fps). 0 means
	// measured from the streams (the median gap of recent frames). Range 0–10s, default 0.
	FramePeriod time.Duration `yaml:"frame_period"`
	// BufferFrames is how many frames each side may hold while waiting for its partner.
	// It bounds memory when one camera stalls (frames hold decoded images: 2.7 MB each
	// at 1280x720) and must cover the arrival delay of the later camera: 8 frames wait
	// 266 ms at 30 fps. Range 2–1024, default 8.
	BufferFrames int `yaml:"buffer_frames"`
	// DriftWindow is how much recent pairing history the drift (the trend of
	// left − right capture time) is fitted over. Range 1s–1h, default 1m.
	DriftWindow time.Duration `yaml:"drift_window"`
	// DriftWarnMsPerMin is the drift, in milliseconds per minute, above which the
	// cameras' clocks are reported as drifting apart (health component "camera
	// pairing"). Free-running cameras with NTP-disciplined clocks stay well under 1;
	// 2 ms/min moves a 30 fps pair to the next partner within 10 minutes.
	// Range 0.01–10000, default 2.
	DriftWarnMsPerMin float64 `yaml:"drift_warn_ms_per_min"`
	// StallTimeout is how long a running camera may deliver no frame before it is
	// treated as failed and restarted: a stream that stays connected but sends nothing
	// must not pause the pipeline forever. Range 100ms–5m, default 5s.
	StallTimeout time.Duration `yaml:"stall_timeout"`
}

// Defaults of Config, in one place so that docs, DefaultConfig and Resolved agree.
const (
	DefaultBufferFrames      = 8
	DefaultDriftWindow       = time.Minute
	DefaultDriftWarnMsPerMin = 2.0
	DefaultStallTimeout      = 5 * time.Second
)

// DefaultConfig returns the defaults with every field spelled out, except the tolerance
// and frame period, which stay 0 (derived from the measured streams).
func DefaultConfig() Config {
	return Config{
		BufferFrames:      DefaultBufferFrames,
		DriftWindow:       DefaultDriftWindow,
		DriftWarnMsPerMin: DefaultDriftWarnMsPerMin,
		StallTimeout:      DefaultStallTimeout,
	}
}

// Resolved returns c with zero fields replaced by their defaults.
func (c Config) Resolved() Config {
	d := DefaultConfig()
	if c.BufferFrames == 0 {
		c.BufferFrames = d.BufferFrames
	}
	if c.DriftWindow == 0 {
		c.DriftWindow = d.DriftWindow
	}
	if c.DriftWarnMsPerMin == 0 {
		c.DriftWarnMsPerMin = d.DriftWarnMsPerMin
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = d.StallTimeout
	}
	return c
}

// ErrConfig is wrapped by every error of Validate.
var ErrConfig = errors.New("stereo: invalid config")

// ConfigError is the error of Validate: the yaml key at fault and what is wrong with
// its value, so that a caller embedding Config can name the key by its full path.
type ConfigError struct {
	Key     string // yaml key, e.g. "pair_tolerance"
	Problem string // e.g. "= -1s: must be in [0, 10s]"
}

func (e *ConfigError) Error() string { return fmt.Sprintf("%v: %s %s", ErrConfig, e.Key, e.Problem) }

// Unwrap makes errors.Is(err, ErrConfig) hold.
func (e *ConfigError) Unwrap() error { return ErrConfig }

// Validate checks c after defaults are applied (zero fields are valid: they mean the
// default) and names the first yaml key at fault.
func (c Config) Validate() error {
	r := c.Resolved()
	durIn := func(key string, v, lo, hi time.Duration) error {
		if v < lo || v > hi {
			return &ConfigError{Key: key, Problem: fmt.Sprintf("= %v: must be in [%v, %v]", v, lo, hi)}
		}
		return nil
	}
	if err := durIn("pair_tolerance", r.PairTolerance, 0, 10*time.Second); err != nil {
		return err
	}
	if err := durIn("frame_period", r.FramePeriod, 0, 10*time.Second); err != nil {
		return err
	}
	if r.BufferFrames < 2 || r.BufferFrames > 1024 {
		return &ConfigError{Key: "buffer_frames", Problem: fmt.Sprintf("= %d: must be in [2, 1024] frames", r.BufferFrames)}
	}
	if err := durIn("drift_window", r.DriftWindow, time.Second, time.Hour); err != nil {
		return err
	}
	if !(r.DriftWarnMsPerMin >= 0.01 && r.DriftWarnMsPerMin <= 10000) { // also rejects NaN
		return &ConfigError{Key: "drift_warn_ms_per_min", Problem: fmt.Sprintf("= %g: must be in [0.01, 10000] ms per minute", r.DriftWarnMsPerMin)}
	}
	if err := durIn("stall_timeout", r.StallTimeout, 100*time.Millisecond, 5*time.Minute); err != nil {
		return err
	}
	return nil
}
