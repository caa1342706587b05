package sim

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		field  string // "" = valid
	}{
		{"default", func(*Config) {}, ""},
		{"room", func(c *Config) { c.Scene = SceneRoom }, ""},
		{"explicit everything", func(c *Config) {
			c.BaselineM, c.SpeedMPS, c.FarM, c.TextureScale = 0.3, 2, 65, 2
		}, ""},
		{"unknown scene", func(c *Config) { c.Scene = "forest" }, "scene"},
		{"empty scene", func(c *Config) { c.Scene = "" }, "scene"},
		{"tiny width", func(c *Config) { c.Width = 8 }, "width"},
		{"huge height", func(c *Config) { c.Height = 10000 }, "height"},
		{"zero fps", func(c *Config) { c.FPS = 0 }, "fps"},
		{"NaN fps", func(c *Config) { c.FPS = math.NaN() }, "fps"},
		{"narrow fov", func(c *Config) { c.HFOVDeg = 5 }, "hfov_deg"},
		{"fisheye fov", func(c *Config) { c.HFOVDeg = 180 }, "hfov_deg"},
		{"negative baseline", func(c *Config) { c.BaselineM = -0.1 }, "baseline_m"},
		{"huge baseline", func(c *Config) { c.BaselineM = 5 }, "baseline_m"},
		{"infinite speed", func(c *Config) { c.SpeedMPS = math.Inf(1) }, "speed_mps"},
		{"far beyond 16-bit mm", func(c *Config) { c.FarM = 100 }, "far_m"},
		{"texture scale", func(c *Config) { c.TextureScale = 0.1 }, "texture_scale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := NewWorld(c); err != nil {
					t.Fatalf("NewWorld() = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %s", tt.field)
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.field+" ") {
				t.Fatalf("Validate() = %q, want ErrConfig naming %s", err, tt.field)
			}
			if _, err := NewWorld(c); err == nil {
				t.Fatal("NewWorld accepted an invalid config")
			}
		})
	}
}

func TestResolvedDefaults(t *testing.T) {
	for _, scene := range Scenes() {
		c := DefaultConfig()
		c.Scene = scene
		r := c.Resolved()
		if r.BaselineM <= 0 || r.SpeedMPS <= 0 || r.FarM <= 0 || r.TextureScale != 1 {
			t.Errorf("%s: Resolved() left a default unresolved: %+v", scene, r)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("%s: resolved config invalid: %v", scene, err)
		}
		// Explicit values survive.
		c.BaselineM = 0.5
		if got := c.Resolved().BaselineM; got != 0.5 {
			t.Errorf("%s: Resolved() changed BaselineM 0.5 to %g", scene, got)
		}
	}
}

func TestIntrinsics(t *testing.T) {
	w, err := NewWorld(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	k := w.Intrinsics()
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	// 80° over 640 px: the image edge (half a pixel beyond the last centre) is at 40°.
	edge := math.Atan((float64(k.Width-1)-k.Cx+0.5)/k.Fx) * 180 / math.Pi
	if math.Abs(edge-40) > 1e-9 || k.Fx != k.Fy || k.Cx != 319.5 || k.Cy != 239.5 {
		t.Fatalf("intrinsics %+v: half-FOV %g°, want 40° with square pixels and a centred principal point", k, edge)
	}
}
