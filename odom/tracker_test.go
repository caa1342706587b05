package odom

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera/sim"
)

// trackSim runs a tracker over frames [0, n) of w with the true depth and, when
// motionNoise >= 0, a "network" motion: the true motion with its translation scaled by
// 1+motionNoise. It returns the end-point error and the path length, in metres.
func trackSim(t *testing.T, w *sim.World, n int, cfg TrackerConfig, motionNoise float64) (endErr, length float64, ests []Estimate) {
	t.Helper()
	tr := NewTracker(cfg)
	var first, prev Pose
	for i := range n {
		f := w.Render(i)
		gt := FromCamera(f.Truth.Pose)
		in := Input{Seq: f.Seq, Stamp: f.CaptureTime, Image: GrayImage(f.Left), DepthM: f.Truth.DepthM, K: f.Intrinsics}
		if i > 0 && motionNoise >= 0 {
			m := prev.Inverse().Mul(gt)
			for k := range 3 {
				m.T[k] *= 1 + motionNoise
			}
			in.Motion = &m
		}
		est, err := tr.Track(in)
		if err != nil {
			t.Fatal(err)
		}
		ests = append(ests, est)
		if i == 0 {
			first = gt
		} else {
			length += prev.Inverse().Mul(gt).Distance()
		}
		prev = gt
		if i == n-1 {
			truth := first.Inverse().Mul(gt)
			endErr = norm(sub(est.Pose.T, truth.T))
		}
	}
	return endErr, length, ests
}

// TestTrackerPhotometricDrift: photometric tracking alone, with the true depth, over
// 8 s of the simulated street and room: the end point within 2 % of the distance.
func TestTrackerPhotometricDrift(t *testing.T) {
	for _, scene := range []string{sim.SceneStreet, sim.SceneRoom} {
		w := simWorld(t, scene, 4)
		endErr, length, ests := trackSim(t, w, 80, TrackerConfig{Refine: true}, -1)
		kf := 0
		for _, e := range ests[1:] {
			if e.Reset {
				t.Fatalf("%s: unexpected reset: %s", scene, e.ResetReason)
			}
			if e.Source != SourcePhotometric {
				t.Fatalf("%s: source %q, want %q", scene, e.Source, SourcePhotometric)
			}
			if e.Keyframe {
				kf++
			}
		}
		drift := 100 * endErr / length
		last := ests[len(ests)-1]
		t.Logf("%s: %.2f m, end-point error %.3f m (%.2f %%), %d keyframes, σ(x,y,z) = %.3f %.3f %.3f m",
			scene, length, endErr, drift, kf, math.Sqrt(last.Covariance[0][0]), math.Sqrt(last.Covariance[1][1]), math.Sqrt(last.Covariance[2][2]))
		if drift > 2 {
			t.Errorf("%s: drift %.2f %% of %.2f m, want at most 2 %%", scene, drift, length)
		}
		if math.Abs(last.DistanceM-length) > 0.05*length {
			t.Errorf("%s: distance %.3f m, want about %.3f m", scene, last.DistanceM, length)
		}
	}
}

// TestTrackerRefinesNetworkMotion: a pose network 20 % off in scale is corrected by
// the refinement; chained alone it drifts by about that much.
func TestTrackerRefinesNetworkMotion(t *testing.T) {
	w := simWorld(t, sim.SceneStreet, 5)
	refined, length, ests := trackSim(t, w, 40, TrackerConfig{Refine: true}, 0.2)
	for _, e := range ests[1:] {
		if e.Source != SourceNetworkPhotometric {
			t.Fatalf("source %q, want %q", e.Source, SourceNetworkPhotometric)
		}
	}
	raw, _, ests := trackSim(t, w, 40, TrackerConfig{}, 0.2)
	if ests[5].Source != SourceNetwork || !ests[5].Keyframe {
		t.Fatalf("unrefined: source %q keyframe %v, want network and every pair a keyframe", ests[5].Source, ests[5].Keyframe)
	}
	t.Logf("%.2f m: end-point error refined %.3f m, network alone %.3f m", length, refined, raw)
	if refined > 0.02*length || raw < 0.15*length {
		t.Errorf("end-point error refined %.3f m (want ≤ 2 %% of %.2f m), network alone %.3f m (want ≈ 20 %%)", refined, length, raw)
	}
	// The unrefined covariance grows along the chain.
	if !(ests[30].Covariance[2][2] > ests[10].Covariance[2][2]) {
		t.Errorf("covariance does not grow: z variance %g at 10, %g at 30", ests[10].Covariance[2][2], ests[30].Covariance[2][2])
	}
}

// TestTrackerResets: a gap in the stream, a jump in position and a requested reset
// each start a new trajectory at the identity; tracking continues after.
func TestTrackerResets(t *testing.T) {
	w := simWorld(t, sim.SceneStreet, 6)
	tr := NewTracker(TrackerConfig{Refine: true})
	frame := func(i int, stamp time.Time) Input {
		f := w.Render(i)
		return Input{Seq: f.Seq, Stamp: stamp, Image: GrayImage(f.Left), DepthM: f.Truth.DepthM, K: f.Intrinsics}
	}
	t0 := sim.SimEpoch
	step := 100 * time.Millisecond
	check := func(e Estimate, err error, reset bool, reason string, id uint64) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if e.Reset != reset || !strings.Contains(e.ResetReason, reason) || e.TrajectoryID != id {
			t.Fatalf("reset %v %q trajectory %d, want %v %q %d", e.Reset, e.ResetReason, e.TrajectoryID, reset, reason, id)
		}
		if reset && e.Pose != Identity() {
			t.Fatalf("a new trajectory starts at %v, want the identity", e.Pose)
		}
	}
	e, err := tr.Track(frame(0, t0))
	check(e, err, true, "start", 1)
	e, err = tr.Track(frame(1, t0.Add(step)))
	check(e, err, false, "", 1)
	// 3 s without pairs.
	e, err = tr.Track(frame(31, t0.Add(31*step)))
	check(e, err, true, "gap of 3.00 s", 2)
	e, err = tr.Track(frame(32, t0.Add(32*step)))
	check(e, err, false, "", 2)
	// A network motion of 5 m in 0.1 s, without refinement to correct it.
	noRefine := NewTracker(TrackerConfig{})
	noRefine.Track(frame(0, t0))
	in := frame(1, t0.Add(step))
	jump := FromAxisAngle([3]float64{}, [3]float64{0, 0, 5})
	in.Motion = &jump
	e, err = noRefine.Track(in)
	check(e, err, true, "jump of 5.00 m", 2)
	// A requested reset says which trajectory comes next.
	if id := tr.RequestReset("pose/reset command"); id != 3 {
		t.Fatalf("RequestReset = %d, want 3", id)
	}
	e, err = tr.Track(frame(33, t0.Add(33*step)))
	check(e, err, true, "pose/reset command", 3)
	// Time going backwards.
	e, err = tr.Track(frame(34, t0.Add(30*step)))
	check(e, err, true, "went back", 4)
}

// TestCovarianceTransport checks the adjoint against a direct computation: a
// translation-only uncertainty of a pose, seen after a 90° turn, swaps axes.
func TestCovarianceTransport(t *testing.T) {
	var c [6][6]float64
	c[0][0] = 1 // x of the body frame of b
	turn := FromAxisAngle([3]float64{0, math.Pi / 2, 0}, [3]float64{})
	got := transportCov(c, turn)
	// c's body frame is rotated by 90° about y: its x is c's z (or −z).
	if math.Abs(got[2][2]-1) > 1e-12 || math.Abs(got[0][0]) > 1e-12 {
		t.Fatalf("transported covariance diagonal %v %v %v, want 0 0 1", got[0][0], got[1][1], got[2][2])
	}
	// A rotation uncertainty about y at b, seen 1 m further along b's z, becomes an
	// uncertainty in x of 1 m per radian.
	c = [6][6]float64{}
	c[4][4] = 1
	got = transportCov(c, FromAxisAngle([3]float64{}, [3]float64{0, 0, 1}))
	if math.Abs(got[0][0]-1) > 1e-12 || math.Abs(got[4][4]-1) > 1e-12 {
		t.Fatalf("lever arm: x variance %v, ry variance %v, want 1 and 1", got[0][0], got[4][4])
	}
}
