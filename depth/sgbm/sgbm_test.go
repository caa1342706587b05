package sgbm

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/calib3d"
	"github.com/edgedepth/edgedepth/depth"
)

func newEstimator(t testing.TB, p Params) *Estimator {
	t.Helper()
	e, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// TestSGBMPlanes matches synthetic pairs of planes at known depth and checks the depth
// against the truth the renderer used.
func TestSGBMPlanes(t *testing.T) {
	const w, h, fx, b = 320, 240, 250.0, 0.12 // fx·B = 30 px·m
	tests := []struct {
		name       string
		d0, ax, ay float64
	}{
		{"fronto-parallel 1.45 m", 20.7, 0, 0},
		{"slanted in x", 12, 0.04, 0},        // disparity 12..24.8 left to right
		{"slanted in y (floor)", 8, 0, 0.08}, // 8..27 top to bottom
		{"slanted both", 10, 0.02, 0.03},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			p.NumDisparities = 48
			e := newEstimator(t, p)
			f := planePair(w, h, fx, b, tt.d0, tt.ax, tt.ay, 5)
			got, err := e.Estimate(f)
			if err != nil {
				t.Fatal(err)
			}
			assertFinite(t, got)
			// The leftmost NumDisparities columns cannot be matched.
			mask := make([]bool, w*h)
			for i := range mask {
				mask[i] = i%w >= p.NumDisparities
			}
			m, err := depth.Compare(got, truthMap(f), mask, depth.DefaultCompareOptions())
			if err != nil {
				t.Fatal(err)
			}
			valid := float64(m.N) / float64((w-p.NumDisparities)*h)
			t.Logf("%v valid=%.3f", m, valid)
			if m.MedianAbsRel > 0.01 || m.AbsRel > 0.03 || m.Delta1 < 0.98 || valid < 0.9 {
				t.Errorf("depth off: %v, %.1f%% valid", m, 100*valid)
			}
		})
	}
}

func assertFinite(t *testing.T, m depth.Map) {
	t.Helper()
	for i, z := range m.M {
		if math.IsNaN(float64(z)) || math.IsInf(float64(z), 0) || z < 0 {
			t.Fatalf("pixel %d depth %g", i, z)
		}
	}
}

func TestSGBMClipping(t *testing.T) {
	// A plane at 1.45 m: with MaxDepthM below it, or MinDepthM above it, nothing survives.
	f := planePair(128, 64, 250, 0.12, 20.7, 0, 0, 6)
	for _, tt := range []struct {
		name     string
		min, max float64
		valid    bool
	}{
		{"inside", 1, 2, true},
		{"too far", 0.2, 1.4, false},
		{"too near", 1.5, 20, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			p.NumDisparities = 32
			p.MinDepthM, p.MaxDepthM = tt.min, tt.max
			got, err := newEstimator(t, p).Estimate(f)
			if err != nil {
				t.Fatal(err)
			}
			if v := depth.ValidFraction(got); (v > 0.5) != tt.valid {
				t.Errorf("valid fraction %.3f", v)
			}
		})
	}
}

func TestSGBMMinDisparity(t *testing.T) {
	// With MinDisparity 16 the matcher marks rejects as disparity 15; they must not
	// come out as depth fx·B/15.
	f := planePair(160, 64, 250, 0.12, 20.7, 0, 0, 7)
	p := DefaultParams()
	p.MinDisparity, p.NumDisparities = 16, 16
	got, err := newEstimator(t, p).Estimate(f)
	if err != nil {
		t.Fatal(err)
	}
	limit := float32(250 * 0.12 / 16)
	invalid := 0
	for _, z := range got.M {
		if z > limit {
			t.Fatalf("depth %g beyond the search range limit %g", z, limit)
		}
		if z == 0 {
			invalid++
		}
	}
	if invalid < 32*64 { // at least the unmatched left border
		t.Errorf("only %d invalid pixels", invalid)
	}
}

func TestEstimateErrors(t *testing.T) {
	good := planePair(64, 32, 250, 0.12, 10, 0, 0, 8)
	with := func(modify func(*camera.StereoFrame)) camera.StereoFrame {
		f := good
		modify(&f)
		return f
	}
	tests := []struct {
		name string
		f    camera.StereoFrame
		want string
	}{
		{"empty", camera.StereoFrame{Intrinsics: good.Intrinsics, BaselineM: 0.1}, "empty 0x0"},
		{"size mismatch", with(func(f *camera.StereoFrame) { f.Right = camera.NewImage(32, 32) }), "differ in size"},
		{"short pixels", with(func(f *camera.StereoFrame) { f.Left.Pix = f.Left.Pix[:10] }), "need 6144 bytes"},
		{"no focal length", with(func(f *camera.StereoFrame) { f.Intrinsics.Fx = 0 }), "fx=0"},
		{"NaN focal length", with(func(f *camera.StereoFrame) { f.Intrinsics.Fx = math.NaN() }), "fx=NaN"},
		{"no baseline", with(func(f *camera.StereoFrame) { f.BaselineM = 0 }), "baseline 0"},
	}
	p := DefaultParams()
	p.NumDisparities = 16
	e := newEstimator(t, p)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Estimate(tt.f)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Estimate: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	if err := e.EstimateInto(good, depth.NewMap(32, 32)); !errors.Is(err, depth.ErrSizeMismatch) {
		t.Errorf("EstimateInto with a wrong-size map: %v", err)
	}
	// The default 128-disparity search does not fit in 64 columns.
	if _, err := newEstimator(t, DefaultParams()).Estimate(good); err == nil ||
		!strings.Contains(err.Error(), "image width 64 leaves no column for disparities 0..127") {
		t.Errorf("Estimate of a frame narrower than the search range: %v", err)
	}
	// The estimator still works after rejecting bad frames.
	if _, err := e.Estimate(good); err != nil {
		t.Fatal(err)
	}
}

func TestParamsValidate(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		field  string
		modify func(*Params)
	}{
		{"min_disparity", func(p *Params) { p.MinDisparity = -1 }},
		{"num_disparities", func(p *Params) { p.NumDisparities = 100 }},
		{"num_disparities", func(p *Params) { p.NumDisparities = 0 }},
		{"num_disparities", func(p *Params) { p.NumDisparities = -16 }},
		{"block_size", func(p *Params) { p.BlockSize = 4 }},
		{"block_size", func(p *Params) { p.BlockSize = 33 }},
		{"p1", func(p *Params) { p.P1 = -1 }},
		{"p2", func(p *Params) { p.P2 = -1 }},
		{"p2 = 100 must exceed p1", func(p *Params) { p.P1, p.P2 = 200, 100 }},
		{"p2 = 150 must exceed p1", func(p *Params) { p.P1 = 150; p.P2 = 150 }},
		{"disp12_max_diff", func(p *Params) { p.Disp12MaxDiff = 5000 }},
		{"pre_filter_cap", func(p *Params) { p.PreFilterCap = 0 }},
		{"uniqueness_ratio", func(p *Params) { p.UniquenessRatio = 101 }},
		{"speckle_window_size", func(p *Params) { p.SpeckleWindowSize = -1 }},
		{"speckle_range", func(p *Params) { p.SpeckleRange = -1 }},
		{"mode", func(p *Params) { p.Mode = "fast" }},
		{"min_depth_m", func(p *Params) { p.MinDepthM = -1 }},
		{"min_depth_m", func(p *Params) { p.MinDepthM = math.NaN() }},
		{"max_depth_m", func(p *Params) { p.MaxDepthM = 0.1 }},
		{"max_depth_m", func(p *Params) { p.MaxDepthM = math.Inf(1) }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			p := DefaultParams()
			tt.modify(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate: %v, want an error naming %s", err, tt.field)
			}
			if _, err := New(p); err == nil {
				t.Fatal("New accepted invalid params")
			}
		})
	}
}

func TestPenalties(t *testing.T) {
	p := DefaultParams()
	if p1, p2 := p.Penalties(); p1 != 200 || p2 != 800 {
		t.Errorf("default penalties %d, %d, want 200, 800", p1, p2)
	}
	p.P1, p.P2 = 10, 20
	if p1, p2 := p.Penalties(); p1 != 10 || p2 != 20 {
		t.Errorf("explicit penalties %d, %d", p1, p2)
	}
}

func TestCloseFreesEverything(t *testing.T) {
	base := calib3d.LiveObjects()
	p := DefaultParams()
	p.NumDisparities = 16
	e, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	if calib3d.LiveObjects() != base+1 {
		t.Fatalf("LiveObjects %d, want %d", calib3d.LiveObjects(), base+1)
	}
	f := planePair(64, 32, 250, 0.12, 10, 0, 0, 9)
	if _, err := e.Estimate(f); err != nil {
		t.Fatal(err)
	}
	// A size change re-allocates the images.
	if _, err := e.Estimate(planePair(48, 24, 250, 0.12, 10, 0, 0, 9)); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := calib3d.LiveObjects(); got != base {
		t.Fatalf("LiveObjects %d after Close, want %d", got, base)
	}
	if _, err := e.Estimate(f); !errors.Is(err, ErrClosed) {
		t.Fatalf("Estimate after Close: %v", err)
	}
	if e.Name() != "sgbm" {
		t.Errorf("Name() = %q", e.Name())
	}
}

func TestToGrey(t *testing.T) {
	rgb := []byte{0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255}
	grey := make([]byte, 5)
	toGrey(rgb, grey)
	want := []byte{0, 255, 77, 149, 29} // BT.601: 0.299, 0.587, 0.114
	for i := range want {
		if d := int(grey[i]) - int(want[i]); d < -1 || d > 1 {
			t.Errorf("pixel %d: %d, want %d", i, grey[i], want[i])
		}
	}
}

func BenchmarkSGBM640x480(b *testing.B) {
	f := planePair(640, 480, 500, 0.12, 24, 0.02, 0.03, 10)
	for _, mode := range []Mode{Mode3Way, ModeSGBM, ModeHH4} {
		b.Run(string(mode), func(b *testing.B) {
			p := DefaultParams()
			p.Mode = mode
			e := newEstimator(b, p)
			out := depth.NewMap(640, 480)
			b.ReportAllocs()
			for b.Loop() {
				if err := e.EstimateInto(f, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
