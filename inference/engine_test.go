package inference_test

import (
	"math"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/inference"
	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/odom"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

// testStore is the small model the end-to-end tests use: channel scale 0.25, trained
// on the simulated street (seed 1) at 320x96 (see its manifest note).
var testStore = filepath.Join("..", "hil-tests", "testdata", "models")

func openEngine(t *testing.T) (*inference.Engine, []nn.NamedTensor, func(ts []nn.NamedTensor) inference.Networks) {
	t.Helper()
	s, err := trainer.OpenStore(testStore, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts, v, _, err := s.LoadActive()
	if err != nil {
		t.Fatal(err)
	}
	b := cpu.New(runtime.NumCPU())
	native := func(ts []nn.NamedTensor) inference.Networks {
		n, err := inference.NewNative(b, v.ChannelScale, ts, v.File, 320, 96)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	e, err := inference.New(native(ts), v.Version, inference.Options{Width: 320, Height: 96})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, ts, native
}

func street(t *testing.T, seed int64) *sim.World {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.Seed, cfg.Width, cfg.Height = seed, 640, 192
	w, err := sim.NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestNetworkDepthPoseAndOdometry runs the trained model on an unseen street (seed 3)
// at 640x192 resized to 320x96: metric depth against the truth, confidence that
// separates good from bad pixels, and the network's motions chained and refined into
// a trajectory against the truth: measured 1.8 % of the distance at the end (the
// network's motions alone: 14 %); the bound is 4 %.
func TestNetworkDepthPoseAndOdometry(t *testing.T) {
	e, _, _ := openEngine(t)
	w := street(t, 3)
	tr := odom.NewTracker(odom.TrackerConfig{Refine: true})
	raw := odom.Identity()
	var first, prev odom.Pose
	var length float64
	var absRel []float64
	var confGood, confBad float64
	var nGood, nBad int
	const frames = 60
	for i := range frames {
		f := w.Render(i)
		r, err := e.Infer(f)
		if err != nil {
			t.Fatal(err)
		}
		if r.Version != 1 || r.Depth.Width != 320 || r.Depth.Height != 96 || len(r.Confidence) != 320*96 {
			t.Fatalf("result version %d, depth %dx%d, %d confidences", r.Version, r.Depth.Width, r.Depth.Height, len(r.Confidence))
		}
		if (i == 0) != (r.Motion == nil) {
			t.Fatalf("pair %d: motion %v", i, r.Motion)
		}
		truth := trainer.ResizeDepth(f.Truth.DepthM, 640, 192, 320, 96)
		m, err := depth.Compare(r.Depth, depth.Map{Width: 320, Height: 96, M: truth}, nil, depth.CompareOptions{MinDepthM: 0.5, MaxDepthM: 60})
		if err != nil {
			t.Fatal(err)
		}
		absRel = append(absRel, m.AbsRel)
		for p, z := range r.Depth.M {
			if truth[p] <= 0 {
				continue
			}
			if math.Abs(float64(z)-float64(truth[p])) < 0.1*float64(truth[p]) {
				confGood += float64(r.Confidence[p])
				nGood++
			} else if math.Abs(float64(z)-float64(truth[p])) > 0.3*float64(truth[p]) {
				confBad += float64(r.Confidence[p])
				nBad++
			}
		}
		// Odometry aligns on the pixels the other eye confirms (the daemon's
		// odom.min_confidence default).
		est, err := tr.Track(r.TrackingInput(f, 0.9, 320))
		if err != nil {
			t.Fatal(err)
		}
		gt := odom.FromCamera(f.Truth.Pose)
		if i == 0 {
			first = gt
		} else {
			length += prev.Inverse().Mul(gt).Distance()
			raw = raw.Mul(*r.Motion)
			if est.Reset {
				t.Fatalf("pair %d: reset: %s", i, est.ResetReason)
			}
		}
		prev = gt
		if i == frames-1 {
			truthEnd := first.Inverse().Mul(gt)
			refined := math.Hypot(math.Hypot(est.Pose.T[0]-truthEnd.T[0], est.Pose.T[1]-truthEnd.T[1]), est.Pose.T[2]-truthEnd.T[2])
			network := math.Hypot(math.Hypot(raw.T[0]-truthEnd.T[0], raw.T[1]-truthEnd.T[1]), raw.T[2]-truthEnd.T[2])
			t.Logf("%.2f m: end-point error network alone %.3f m (%.1f %%), refined %.3f m (%.1f %%), source %s",
				length, network, 100*network/length, refined, 100*refined/length, est.Source)
			if refined > 0.04*length {
				t.Errorf("refined trajectory drifts %.1f %% of %.2f m, want at most 4 %%", 100*refined/length, length)
			}
		}
	}
	var mean float64
	for _, a := range absRel {
		mean += a / float64(len(absRel))
	}
	confGood /= float64(max(nGood, 1))
	confBad /= float64(max(nBad, 1))
	t.Logf("depth abs rel %.3f over %d frames; mean confidence %.2f where within 10 %%, %.2f where off by over 30 %%", mean, frames, confGood, confBad)
	if mean > 0.2 {
		t.Errorf("depth abs rel %.3f, want at most 0.2", mean)
	}
	if !(confGood > confBad) {
		t.Errorf("confidence %.2f on good pixels is not above %.2f on bad ones", confGood, confBad)
	}
}

// TestSwapBetweenPairs: networks queued with Swap take effect on the next pair, whole:
// the result after swapping back is bit-identical to the first.
func TestSwapBetweenPairs(t *testing.T) {
	e, ts, native := openEngine(t)
	w := street(t, 3)
	f := w.Render(10)
	a, err := e.Infer(f)
	if err != nil {
		t.Fatal(err)
	}
	other := make([]nn.NamedTensor, len(ts))
	for i, x := range ts {
		d := append([]float32(nil), x.Data...)
		for j := range d {
			d[j] *= 0.9
		}
		other[i] = nn.NamedTensor{Name: x.Name, Shape: x.Shape, Data: d}
	}
	e.Swap(native(other), 7)
	if e.Version() != 1 {
		t.Fatalf("version %d before the next pair, want 1", e.Version())
	}
	b, err := e.Infer(f)
	if err != nil {
		t.Fatal(err)
	}
	if b.Version != 7 || e.Version() != 7 {
		t.Fatalf("after the swap: result version %d, engine %d, want 7", b.Version, e.Version())
	}
	same := true
	for i := range a.Depth.M {
		same = same && a.Depth.M[i] == b.Depth.M[i]
	}
	if same {
		t.Fatal("the swapped weights changed nothing")
	}
	e.Swap(native(ts), 1)
	c, err := e.Infer(f)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Depth.M {
		if a.Depth.M[i] != c.Depth.M[i] {
			t.Fatalf("pixel %d: %g after swapping back, %g before", i, c.Depth.M[i], a.Depth.M[i])
		}
	}
	// Weights that do not fit never become networks.
	if _, err := inference.NewNative(cpu.New(1), 0.25, ts[:3], "partial", 320, 96); err == nil {
		t.Fatal("a partial set of weights was accepted")
	}
}
