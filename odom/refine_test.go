package odom

import (
	"math"
	"testing"

	"github.com/edgedepth/edgedepth/camera/sim"
)

// simWorld is a small simulated street for the alignment tests.
func simWorld(t testing.TB, scene string, seed int64) *sim.World {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.Scene, cfg.Seed, cfg.Width, cfg.Height = scene, seed, 320, 96
	w, err := sim.NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestRefineRecoversSimMotion aligns simulated frames a few steps apart with their
// true depth, from the identity (the motion is 0.15 m a frame), and checks the
// motion against the simulator's poses: within 2 cm and 0.2° (the street's far
// texture leaves the forward motion of a single 0.15 m step least certain).
func TestRefineRecoversSimMotion(t *testing.T) {
	for _, c := range []struct {
		scene string
		gap   int
	}{{sim.SceneStreet, 1}, {sim.SceneStreet, 3}, {sim.SceneRoom, 2}} {
		w := simWorld(t, c.scene, 3)
		for _, i := range []int{5, 40} {
			a, b := w.Render(i), w.Render(i+c.gap)
			ref, err := NewFrame(GrayImage(a.Left), a.Truth.DepthM, a.Intrinsics, RefineOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cur, err := NewFrame(GrayImage(b.Left), nil, b.Intrinsics, RefineOptions{})
			if err != nil {
				t.Fatal(err)
			}
			truth := FromCamera(b.Truth.Pose).Inverse().Mul(FromCamera(a.Truth.Pose)) // cur_T_ref
			res, err := Refine(ref, cur, Identity(), testRefineOptions)
			if err != nil {
				t.Fatalf("%s gap %d frame %d: %v", c.scene, c.gap, i, err)
			}
			errT := norm(sub(res.CurTRef.T, truth.T))
			errR := res.CurTRef.Mul(truth.Inverse()).Angle() * 180 / math.Pi
			t.Logf("%s gap %d frame %d: error vector %.4f", c.scene, c.gap, i, sub(res.CurTRef.T, truth.T))
			t.Logf("%s gap %d frame %d: motion %.3f m, error %.4f m, %.3f°, %d points, overlap %.2f, rms %.4f, %d iterations, σx %.4f m",
				c.scene, c.gap, i, truth.Distance(), errT, errR, res.Points, res.Overlap, res.RMS, res.Iterations, math.Sqrt(res.Covariance[0][0]))
			if errT > 0.02 || errR > 0.2 {
				t.Errorf("%s gap %d frame %d: error %.4f m, %.3f° (motion %.3f m)", c.scene, c.gap, i, errT, errR, truth.Distance())
			}
			for k := range 6 {
				if !(res.Covariance[k][k] > 0) {
					t.Errorf("covariance diagonal %d = %g, want > 0", k, res.Covariance[k][k])
				}
			}
		}
	}
}

// TestRefineRejectsBlankImage: a reference without texture has nothing to align.
func TestRefineRejectsBlankImage(t *testing.T) {
	w := simWorld(t, sim.SceneStreet, 1)
	f := w.Render(0)
	blank := Image{Width: 320, Height: 96, Gray: make([]float32, 320*96)}
	ref, err := NewFrame(blank, f.Truth.DepthM, f.Intrinsics, RefineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := NewFrame(GrayImage(f.Left), nil, f.Intrinsics, RefineOptions{})
	if _, err := Refine(ref, cur, Identity(), RefineOptions{}); err != ErrNoTexture {
		t.Fatalf("err = %v, want ErrNoTexture", err)
	}
}

var testRefineOptions = RefineOptions{Iterations: 10, MinGradient: 0.03}
