package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Scene kinds.
const (
	SceneStreet = "street" // an endless street: depths about 2–60 m
	SceneRoom   = "room"   // a furnished room: depths about 0.5–9 m
)

// Scenes lists the scene kinds NewWorld accepts.
func Scenes() []string { return []string{SceneStreet, SceneRoom} }

// Config describes a simulated world and the stereo rig moving through it. Fields whose
// default depends on the scene take 0 to mean "the scene's default" (see Resolved), so
// that a config that only changes Scene gets a rig suited to it.
type Config struct {
	// Scene is the kind of world: "street" or "room". Default "street".
	Scene string `yaml:"scene"`
	// Seed picks the layout, textures, colours, lighting and trajectory. Different seeds
	// give different (held-out) scenes of the same kind. Default 1.
	Seed int64 `yaml:"seed"`
	// Width and Height are the image size in pixels, 16–8192 each. Default 640x480.
	Width  int `yaml:"width"`
	Height int `yaml:"height"`
	// FPS is the frame rate in frames per second: frame i is at sim time i/FPS.
	// 0.1–1000, default 10.
	FPS float64 `yaml:"fps"`
	// HFOVDeg is the horizontal field of view in degrees, 10–160. Default 80 (about
	// KITTI's 81°, which Monodepth2-style networks are built around). Pixels are square.
	HFOVDeg float64 `yaml:"hfov_deg"`
	// BaselineM is the distance between the optical centres in metres, 0.01–2; 0 means
	// the scene's default: 0.20 for street, 0.12 for room. Default 0.
	BaselineM float64 `yaml:"baseline_m"`
	// SpeedMPS is the rig's speed along its path in metres per second, 0.01–30; 0 means
	// the scene's default: 1.5 for street, 0.5 for room. Default 0.
	SpeedMPS float64 `yaml:"speed_mps"`
	// FarM is the far clip in metres, 1–65: surfaces beyond it render as sky with depth
	// 0 (the street fades them into the horizon haze over the last quarter). 65 keeps
	// depth within a 16-bit millimetre PNG. 0 means the scene's default: 60 for street,
	// 20 for room. Default 0.
	FarM float64 `yaml:"far_m"`
	// TextureScale multiplies the wavelengths of every texture's noise, 0.25–4: above 1
	// coarser, below 1 finer. 0 means 1. Default 0.
	TextureScale float64 `yaml:"texture_scale"`
}

// DefaultConfig is a 640x480 street at 10 fps with an 80° field of view; scene-dependent
// fields are left at 0 (the scene's default).
func DefaultConfig() Config {
	return Config{Scene: SceneStreet, Seed: 1, Width: 640, Height: 480, FPS: 10, HFOVDeg: 80}
}

// sceneDefaults are the values that 0 stands for, by scene. The baselines give a
// disparity of at least ~2 px at the far end of each scene at the default 640 px width
// and 80° (fx ≈ 381 px): street 381·0.20/40 m ≈ 1.9 px, room 381·0.12/8 m ≈ 5.7 px, while
// the nearest surfaces stay within a 128-disparity search (street 2 m: 38 px; room
// 0.5 m: 91 px).
var sceneDefaults = map[string]struct{ baseline, speed, far float64 }{
	SceneStreet: {baseline: 0.20, speed: 1.5, far: 60},
	SceneRoom:   {baseline: 0.12, speed: 0.5, far: 20},
}

// ErrConfig is wrapped by every error of Validate.
var ErrConfig = errors.New("sim: invalid config")

// ConfigError is the error of Validate: the configuration key at fault and what is wrong
// with its value, so that a caller embedding Config can name the key by its full path.
type ConfigError struct {
	Key     string // yaml key, e.g. "fps"
	Problem string // e.g. "= 0: must be in [0.1, 1000] frames per second"
}

func (e *ConfigError) Error() string { return fmt.Sprintf("%v: %s %s", ErrConfig, e.Key, e.Problem) }

// Unwrap makes errors.Is(err, ErrConfig) hold.
func (e *ConfigError) Unwrap() error { return ErrConfig }

// Validate reports the first field outside its allowed range, by its configuration key.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Key: field, Problem: fmt.Sprintf(format, args...)}
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	// zeroOr checks a field that accepts 0 (scene default) or a value in [lo, hi].
	zeroOr := func(field string, v, lo, hi float64) error {
		if v == 0 || (finite(v) && v >= lo && v <= hi) {
			return nil
		}
		return bad(field, "= %g: must be 0 (default) or in [%g, %g]", v, lo, hi)
	}
	switch {
	case !slices.Contains(Scenes(), c.Scene):
		return bad("scene", "= %q: must be one of %q", c.Scene, Scenes())
	case c.Width < 16 || c.Width > 8192:
		return bad("width", "= %d: must be in [16, 8192] pixels", c.Width)
	case c.Height < 16 || c.Height > 8192:
		return bad("height", "= %d: must be in [16, 8192] pixels", c.Height)
	case !finite(c.FPS) || c.FPS < 0.1 || c.FPS > 1000:
		return bad("fps", "= %g: must be in [0.1, 1000] frames per second", c.FPS)
	case !finite(c.HFOVDeg) || c.HFOVDeg < 10 || c.HFOVDeg > 160:
		return bad("hfov_deg", "= %g: must be in [10, 160] degrees", c.HFOVDeg)
	}
	for _, f := range []struct {
		name      string
		v, lo, hi float64
	}{
		{"baseline_m", c.BaselineM, 0.01, 2},
		{"speed_mps", c.SpeedMPS, 0.01, 30},
		{"far_m", c.FarM, 1, 65},
		{"texture_scale", c.TextureScale, 0.25, 4},
	} {
		if err := zeroOr(f.name, f.v, f.lo, f.hi); err != nil {
			return err
		}
	}
	return nil
}

// Resolved returns c with every 0 that means "default" replaced by the value it stands
// for. c must be valid.
func (c Config) Resolved() Config {
	d := sceneDefaults[c.Scene]
	if c.BaselineM == 0 {
		c.BaselineM = d.baseline
	}
	if c.SpeedMPS == 0 {
		c.SpeedMPS = d.speed
	}
	if c.FarM == 0 {
		c.FarM = d.far
	}
	if c.TextureScale == 0 {
		c.TextureScale = 1
	}
	return c
}

// Intrinsics returns the pinhole intrinsics of the configured rig: square pixels,
// fx = (Width/2)/tan(HFOV/2), and the principal point at the image centre in OpenCV's
// convention, where pixel (x, y) is centred on integer coordinates: cx = (Width-1)/2.
func (c Config) Intrinsics() (fx, fy, cx, cy float64) {
	fx = float64(c.Width) / 2 / math.Tan(c.HFOVDeg*math.Pi/360)
	return fx, fx, float64(c.Width-1) / 2, float64(c.Height-1) / 2
}
