package sgbm

import (
	"testing"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/depth"
)

// simTextureThreshold is the RMS gradient, grey levels per pixel, below which a pixel
// is too flat to judge a block matcher on (see depth.Textured).
const simTextureThreshold = 2

// simFrames are the simulator frames the accuracy test evaluates, spread over the
// trajectory so one lucky view cannot pass for the scene.
var simFrames = []int{0, 17, 34}

type simResult struct {
	metrics  depth.Metrics
	coverage float64 // fraction of evaluated pixels with a depth
}

// evaluateOnSimulator runs p on frames of a simulated scene and scores it on textured,
// non-occluded pixels with ground truth.
func evaluateOnSimulator(t testing.TB, scene string, p Params, frames []int) []simResult {
	cfg := sim.DefaultConfig()
	cfg.Scene = scene
	w, err := sim.NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := newEstimator(t, p)
	var out []simResult
	for _, i := range frames {
		f := w.Render(i)
		got, err := e.Estimate(f)
		if err != nil {
			t.Fatal(err)
		}
		truth, mask := simTruthMask(f, p)
		m, err := depth.Compare(got, truth, mask, depth.DefaultCompareOptions())
		if err != nil {
			t.Fatalf("%s frame %d: %v", scene, i, err)
		}
		n := 0
		for _, ok := range mask {
			if ok {
				n++
			}
		}
		out = append(out, simResult{metrics: m, coverage: float64(m.N) / float64(n)})
	}
	return out
}

// simTruthMask is the ground truth and the pixels it is fair to judge SGBM on: visible
// to both eyes, textured, within the search range and the estimator's depth range.
func simTruthMask(f camera.StereoFrame, p Params) (depth.Map, []bool) {
	truth := depth.Map{Width: f.Left.Width, Height: f.Left.Height, M: f.Truth.DepthM}
	vis := depth.NonOccluded(truth, f.Intrinsics.Fx, f.BaselineM)
	tex := depth.Textured(f.Left, simTextureThreshold)
	fb := f.Intrinsics.Fx * f.BaselineM
	mask := make([]bool, len(vis))
	for i := range mask {
		z := float64(truth.M[i])
		d := fb / z
		mask[i] = vis[i] && tex[i] && i%truth.Width >= p.MinDisparity+p.NumDisparities &&
			z >= p.MinDepthM && z <= p.MaxDepthM &&
			d >= float64(p.MinDisparity) && d < float64(p.MinDisparity+p.NumDisparities)
	}
	return truth, mask
}

// TestSGBMOnSimulator checks SGBM with default parameters against the simulator's
// ground truth on both scenes.
func TestSGBMOnSimulator(t *testing.T) {
	for _, scene := range sim.Scenes() {
		t.Run(scene, func(t *testing.T) {
			for k, r := range evaluateOnSimulator(t, scene, DefaultParams(), simFrames) {
				t.Logf("frame %d: %v coverage=%.3f", simFrames[k], r.metrics, r.coverage)
				if r.metrics.MedianAbsRel >= 0.10 {
					t.Errorf("frame %d: median abs rel %.4f, want < 0.10", simFrames[k], r.metrics.MedianAbsRel)
				}
				if r.coverage < 0.5 {
					t.Errorf("frame %d: depth on %.1f%% of the evaluated pixels, want >= 50%%", simFrames[k], 100*r.coverage)
				}
			}
		})
	}
}

// BenchmarkSGBMSimulatorModes compares the aggregation modes on the simulator: time per
// frame, and accuracy as custom metrics. It is how the default Mode was chosen.
func BenchmarkSGBMSimulatorModes(b *testing.B) {
	for _, scene := range sim.Scenes() {
		cfg := sim.DefaultConfig()
		cfg.Scene = scene
		w, err := sim.NewWorld(cfg)
		if err != nil {
			b.Fatal(err)
		}
		f := w.Render(simFrames[1])
		for _, mode := range []Mode{Mode3Way, ModeSGBM, ModeHH4, ModeHH} {
			b.Run(scene+"/"+string(mode), func(b *testing.B) {
				p := DefaultParams()
				p.Mode = mode
				e := newEstimator(b, p)
				out := depth.NewMap(f.Left.Width, f.Left.Height)
				for b.Loop() {
					if err := e.EstimateInto(f, out); err != nil {
						b.Fatal(err)
					}
				}
				var med, abs, d1, cov float64
				rs := evaluateOnSimulator(b, scene, p, simFrames)
				for _, r := range rs {
					med += r.metrics.MedianAbsRel / float64(len(rs))
					abs += r.metrics.AbsRel / float64(len(rs))
					d1 += r.metrics.Delta1 / float64(len(rs))
					cov += r.coverage / float64(len(rs))
				}
				b.ReportMetric(med, "med_abs_rel")
				b.ReportMetric(abs, "abs_rel")
				b.ReportMetric(d1, "d1")
				b.ReportMetric(cov, "coverage")
			})
		}
	}
}
