package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/runtime/config"
	"github.com/edgedepth/edgedepth/trainer"
)

// networkDaemon is a daemon (not running) whose model store is a copy of the
// end-to-end tests' model, set up for network depth at 320x96 on the CPU.
func networkDaemon(t *testing.T) *Daemon {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Backend = "cpu"
	cfg.Depth.Estimator = "network"
	cfg.Depth.Network.Width, cfg.Depth.Network.Height = 320, 96
	dir := filepath.Join(cfg.DataDir, "models")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"manifest.json", "v000001.safetensors"} {
		b, err := os.ReadFile(filepath.Join("..", "hil-tests", "testdata", "models", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	n, err := d.openNetwork()
	if err != nil {
		t.Fatal(err)
	}
	d.net, d.tracker = n, d.newTracker()
	return d
}

// unseenStreet is the simulated street the test model did not train on, at its size.
func unseenStreet(t *testing.T) *sim.World {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.Width, cfg.Height, cfg.Seed = 320, 96, 3
	w, err := sim.NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestRollbackSwapsInferenceWeights: a version made active by model/rollback reaches
// inference between two pairs, and the pair after it is computed with it alone.
func TestRollbackSwapsInferenceWeights(t *testing.T) {
	d := networkDaemon(t)
	w := unseenStreet(t)
	f := w.Render(5)
	a, err := d.infer(d.net, f)
	if err != nil {
		t.Fatal(err)
	}
	if a.version != 1 || a.estimator != NetworkEstimatorName || a.depth.Width != 320 || a.track == nil {
		t.Fatalf("first result: version %d, estimator %q, width %d", a.version, a.estimator, a.depth.Width)
	}
	// A second version: the same weights, scaled.
	s, err := d.modelStore()
	if err != nil {
		t.Fatal(err)
	}
	ts, v1, err := s.Load(1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ts {
		d := append([]float32(nil), ts[i].Data...)
		for j := range d {
			d[j] *= 0.9
		}
		ts[i] = nn.NamedTensor{Name: ts[i].Name, Shape: ts[i].Shape, Data: d}
	}
	v2, err := s.Add(ts, trainer.Version{Parent: 1, ChannelScale: v1.ChannelScale, Note: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.modelRollback(context.Background(), json.RawMessage(`{"version":`+itoa(v2.Version)+`}`)); err != nil {
		t.Fatal(err)
	}
	// The store loads in the background; the swap happens on the depth actor's side.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ver, ok, err := d.net.swapIn()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if ver != v2.Version {
				t.Fatalf("swapped in version %d, want %d", ver, v2.Version)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rolled-back version never reached inference")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, err := d.infer(d.net, f)
	if err != nil {
		t.Fatal(err)
	}
	if b.version != v2.Version {
		t.Fatalf("result after the swap from version %d, want %d", b.version, v2.Version)
	}
	d.modelVersion.Store(int64(b.version)) // as the depth actor does
	if got := d.estimatorName(); got != "monodepth2 v2" {
		t.Fatalf("estimator name %q, want monodepth2 v2", got)
	}
}

// TestPoseReset: the command names the next trajectory, and says when odometry is off.
func TestPoseReset(t *testing.T) {
	d := networkDaemon(t)
	r, err := d.poseReset(context.Background(), json.RawMessage(`{"reason":"moved by hand"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.(PoseReset).TrajectoryID != 1 {
		t.Fatalf("reply %+v, want trajectory 1 (none has started)", r)
	}
	if _, err := d.poseReset(context.Background(), json.RawMessage(`{"resaon":"x"}`)); err == nil || !strings.Contains(err.Error(), "resaon") {
		t.Fatalf("a misspelt argument: %v", err)
	}
	d.tracker = nil
	if _, err := d.poseReset(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "odom.enabled") {
		t.Fatalf("pose/reset with odometry off: %v", err)
	}
}

// TestNetworkEstimatorNeedsAModel: depth.estimator network with an empty store is an
// error that says how to get a model; auto falls back to SGBM.
func TestNetworkEstimatorNeedsAModel(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Backend = "cpu"
	cfg.Depth.Estimator = "network"
	d := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	if _, err := d.openNetwork(); err == nil || !strings.Contains(err.Error(), "edgedepth import") {
		t.Fatalf("network without a model: %v", err)
	}
	cfg.Depth.Estimator = "auto"
	d = New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	if n, err := d.openNetwork(); err != nil || n != nil {
		t.Fatalf("auto without a model: %v %v, want SGBM", n, err)
	}
	if d.estimatorName() != "sgbm" {
		t.Fatalf("estimator %q", d.estimatorName())
	}
}

// TestCompareSGBM: the comparison runs SGBM on the pair and records how far the
// network's depth is from it.
func TestCompareSGBM(t *testing.T) {
	d := networkDaemon(t)
	w := unseenStreet(t)
	f := w.Render(7)
	r, err := d.infer(d.net, f)
	if err != nil {
		t.Fatal(err)
	}
	est, err := d.newEstimator()
	if err != nil {
		t.Fatal(err)
	}
	defer est.Close()
	d.compareSGBM(est, f, r, depth.Meta{Seq: f.Seq, Stamp: f.CaptureTime, FrameID: FrameID})
	a := d.sgbmAgreement.Load()
	if a == nil || a.Seq != 7 || a.Pixels < 1000 || !(a.AbsRel > 0 && a.AbsRel < 0.3) || !(a.Delta1 > 0.6) {
		t.Fatalf("agreement %+v", a)
	}
	t.Logf("network against SGBM on pair 7: %+v", *a)
}

// TestInferenceOnONNXRuntime: with inference: onnxruntime-cpu the daemon exports the
// store's model to ONNX and runs it on ONNX Runtime: the same depth and motion as the
// native networks, and a rolled-back version is exported and swapped in the same way.
// The provider is the only difference to TensorRT on a Jetson (not run here).
func TestInferenceOnONNXRuntime(t *testing.T) {
	lib := os.Getenv("EDGEDEPTH_ONNXRUNTIME_LIB")
	if lib == "" {
		p, _ := filepath.Abs(filepath.Join("..", "third_party", "onnxruntime", "x64", "libonnxruntime.so.1"))
		if _, err := os.Stat(p); err != nil {
			t.Skip("no ONNX Runtime library: run `make onnxruntime` (make test does), or set EDGEDEPTH_ONNXRUNTIME_LIB")
		}
		lib = p
	}
	native := networkDaemon(t)
	d := New(native.cfg, native.log, "test")
	d.cfg.Inference = "onnxruntime-cpu"
	d.cfg.Depth.Network.ONNXRuntimeLib = lib
	n, err := d.openNetwork()
	if err != nil {
		t.Fatal(err)
	}
	d.net = n
	defer n.Close()
	if d.backendName() != "onnxruntime-cpu" {
		t.Fatalf("backend %q", d.backendName())
	}
	w := unseenStreet(t)
	for i := range 2 {
		f := w.Render(10 + i)
		want, err := native.infer(native.net, f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.infer(d.net, f)
		if err != nil {
			t.Fatal(err)
		}
		var maxDiff, maxVal float64
		for p := range want.depth.M {
			maxDiff = max(maxDiff, math.Abs(float64(got.depth.M[p]-want.depth.M[p])))
			maxVal = max(maxVal, math.Abs(float64(want.depth.M[p])))
		}
		if maxDiff > 1e-4*maxVal {
			t.Fatalf("pair %d: ONNX Runtime depth differs by %g (max %g)", i, maxDiff, maxVal)
		}
		if i == 1 {
			a, b := got.track.Motion, want.track.Motion
			if a == nil || b == nil || math.Abs(a.T[2]-b.T[2]) > 1e-4*math.Abs(b.T[2])+1e-6 {
				t.Fatalf("motion %v on ONNX Runtime, %v native", a, b)
			}
		}
	}
	// A second version goes through the export too.
	s, _ := d.modelStore()
	ts, v1, err := s.Load(1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.Add(ts, trainer.Version{Parent: 1, ChannelScale: v1.ChannelScale, Note: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	d.queueVersion(v2.Version)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ver, ok, err := d.net.swapIn(); err != nil {
			t.Fatal(err)
		} else if ok {
			if ver != v2.Version {
				t.Fatalf("swapped in %d, want %d", ver, v2.Version)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("version %d never reached ONNX Runtime: %v", v2.Version, d.health.Warnings())
		}
		time.Sleep(20 * time.Millisecond)
	}
	r, err := d.infer(d.net, w.Render(12))
	if err != nil || r.version != v2.Version {
		t.Fatalf("after the swap: version %d, %v", r.version, err)
	}
	exports, _ := os.ReadDir(filepath.Join(d.cfg.DataDir, "onnx"))
	if len(exports) != 1 || exports[0].Name() != fmt.Sprintf("v%06d-320x96", v2.Version) {
		t.Fatalf("exports left: %v", exports)
	}
}
