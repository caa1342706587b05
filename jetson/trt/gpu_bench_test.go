package trt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgedepth/edgedepth/jetson/cuda"
	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/nn/onnx"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

// gpuORTEnv gates TestGPUORTvsCUDA: it needs an NVIDIA GPU, an ONNX Runtime GPU
// build in $EDGEDEPTH_ONNXRUNTIME_LIB and our CUDA backend's libraries.
const gpuORTEnv = "EDGEDEPTH_GPU_ORT"

// TestGPUORTvsCUDA times batch-1 depth+pose inference of the full-width Monodepth2
// networks (random weights) at 192x640 on ONNX Runtime's CUDA provider (through
// this package's Engine: host buffers in, host buffers out) and on our own CUDA
// backend (jetson/cuda: upload of the image, trainer.Predict, DispToDepth and
// download of depth and pose, as inference/engine.go runs it), in one process on
// one card (ours first), and checks that they agree (relative error ≤ 1e-3 per
// output, against ours with TF32 off). It also tries the TensorRT provider and
// logs why it does not open. The test fails when the CUDA provider does not open.
// Run on the GPU machine only (.device/run_ortgpu.sh does it all there):
//
//	go test -c -o .device/trt.test ./jetson/trt
//	EDGEDEPTH_GPU_ORT=1 EDGEDEPTH_ONNXRUNTIME_LIB=/path/to/libonnxruntime.so.1.x \
//	    .device/trt.test -test.run TestGPUORTvsCUDA -test.v
//
// ONNX Runtime's CUDA provider runs with its defaults (use_tf32=1: cuDNN and
// cuBLAS may use TF32) and once more with use_tf32=0; ours runs with TF32 off
// (the default) and on.
func TestGPUORTvsCUDA(t *testing.T) {
	if os.Getenv(gpuORTEnv) != "1" {
		t.Skipf("set %s=1 (and %s) on a machine with an NVIDIA GPU and an ONNX Runtime GPU build", gpuORTEnv, LibraryEnv)
	}
	const (
		h, w   = 192, 640
		seed   = 1
		warmup = 10
		runs   = 50
		tol    = 1e-3
	)
	o := needLibrary(t)

	// The weights: built on the CPU backend for the export; the same seed gives
	// the same weights on the CUDA backend (randomModel is deterministic).
	cb := cpu.New(0)
	dir := t.TempDir()
	start := time.Now()
	man, err := onnx.WriteDir(dir, cb, randomModel(t, cb, 1, seed), onnx.Options{Batch: 1, Height: h, Width: w}, "gpu-bench")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exported depth.onnx %.1f MB, pose.onnx %.1f MB in %v", float64(man.Depth.Bytes)/1e6, float64(man.Pose.Bytes)/1e6, time.Since(start).Round(time.Millisecond))

	target, prev := randomImages(1, h, w, 101), randomImages(1, h, w, 202)
	pair := stackPairs(prev, target, 1, h, w)

	type outputs struct{ disp, depth, aa, tr []float32 }
	type result struct {
		name    string
		medians []time.Duration // one per timing round
		min     time.Duration
		out     outputs
	}
	var results []result
	timeIt := func(name string, infer func() error) *result {
		for range warmup {
			if err := infer(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		r := result{name: name, min: 1 << 62}
		for range 2 {
			ds := make([]time.Duration, runs)
			for i := range ds {
				s := time.Now()
				if err := infer(); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				ds[i] = time.Since(s)
				r.min = min(r.min, ds[i])
			}
			slices.Sort(ds)
			r.medians = append(r.medians, ds[runs/2])
		}
		t.Logf("%-40s median %.3f ms, %.3f ms (two rounds of %d), min %.3f ms", name, ms(r.medians[0]), ms(r.medians[1]), runs, ms(r.min))
		results = append(results, r)
		return &results[len(results)-1]
	}

	// Our CUDA backend.
	for _, tf32 := range []bool{false, true} {
		co := cuda.DefaultOptions()
		co.CacheDir = t.TempDir()
		co.TF32 = tf32
		be, err := cuda.Open(co)
		if err != nil {
			t.Fatalf("jetson/cuda: %v", err)
		}
		dev := be.Device()
		t.Logf("jetson/cuda on %s (sm_%d, %d SMs, %.0f GiB), TF32 %v", dev.Name, dev.SM, dev.Multiprocessors, float64(dev.MemoryBytes)/(1<<30), tf32)
		m := randomModel(t, be, 1, seed)
		pv, err := be.FromHost(prev, 1, 3, h, w) // kept on the device, as inference.Engine does
		if err != nil {
			t.Fatal(err)
		}
		var out outputs
		r := timeIt(fmt.Sprintf("jetson/cuda (TF32 %v)", tf32), func() error {
			cur, err := be.FromHost(target, 1, 3, h, w)
			if err != nil {
				return err
			}
			defer be.Free(cur)
			tape := nn.NewTape(be)
			defer tape.Release()
			disp, aa, tr, err := trainer.Predict(tape, m, cur, pv)
			if err != nil {
				return err
			}
			dep := monodepth2.DispToDepth(tape, disp)
			if err := tape.Err(); err != nil {
				return err
			}
			var errs [3]error
			out.depth, errs[0] = be.ToHost(dep.Value)
			out.aa, errs[1] = be.ToHost(aa.Value)
			out.tr, errs[2] = be.ToHost(tr.Value)
			return errors.Join(errs[:]...)
		})
		// One more run for the disparity (not timed: the daemon downloads depth only).
		cur, err := be.FromHost(target, 1, 3, h, w)
		if err != nil {
			t.Fatal(err)
		}
		tape := nn.NewTape(be)
		disp, _, _, err := trainer.Predict(tape, m, cur, pv)
		if err != nil {
			t.Fatal(err)
		}
		if out.disp, err = be.ToHost(disp.Value); err != nil {
			t.Fatal(err)
		}
		tape.Release()
		be.Free(cur)
		r.out = out
		be.Free(pv)
		if err := be.Close(); err != nil {
			t.Error(err)
		}
	}

	// ONNX Runtime.
	runORT := func(name string, e *Engine) {
		out := outputs{make([]float32, h*w), make([]float32, h*w), make([]float32, 3), make([]float32, 3)}
		r := timeIt(name, func() error {
			if err := e.Depth(target, 1, h, w, out.disp, out.depth); err != nil {
				return err
			}
			return e.Pose(pair, 1, h, w, out.aa, out.tr)
		})
		r.out = out
	}
	oc := o
	oc.Provider = CUDA
	start = time.Now()
	if e, err := Open(dir, oc); err != nil {
		t.Errorf("ONNX Runtime CUDA provider: %v", err)
	} else {
		t.Logf("ONNX Runtime %s from %s, CUDA provider sessions in %v", e.Info().Version, e.Info().Library, time.Since(start).Round(time.Millisecond))
		runORT("onnxruntime-cuda (use_tf32 default=1)", e)
		if err := e.Close(); err != nil {
			t.Error(err)
		}
		if e, err := openCUDAWith(dir, map[string]string{"device_id": "0", "use_tf32": "0"}); err != nil {
			t.Logf("onnxruntime-cuda use_tf32=0: %v", err)
		} else {
			runORT("onnxruntime-cuda (use_tf32=0)", e)
			if err := e.Close(); err != nil {
				t.Error(err)
			}
		}
	}

	// TensorRT: expected to be missing on the GPU machine.
	ot := o
	ot.Provider = TensorRT
	ot.TensorRT = TensorRTOptions{EngineCacheDir: t.TempDir()}
	if e, err := Open(dir, ot); err != nil {
		t.Logf("TensorRT provider: %v", err)
	} else {
		t.Logf("TensorRT provider opened")
		runORT("onnxruntime-tensorrt (fp32)", e)
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	}

	// Agreement: every result against ours with TF32 off.
	var ref *result
	for i := range results {
		if strings.HasPrefix(results[i].name, "jetson/cuda (TF32 false)") {
			ref = &results[i]
		}
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\nbatch-1 depth+pose inference, %dx%d, full-width Monodepth2, median of %d runs (two rounds) after %d warm-up runs\n", h, w, runs, warmup)
	fmt.Fprintf(&table, "%-40s %10s %10s %10s   rel.err vs jetson/cuda TF32 off: disp / depth / axis-angle / translation\n", "", "median1 ms", "median2 ms", "min ms")
	for _, r := range results {
		fmt.Fprintf(&table, "%-40s %10.3f %10.3f %10.3f", r.name, ms(r.medians[0]), ms(r.medians[1]), ms(r.min))
		if ref != nil && r.name != ref.name {
			errs := [4]float64{relErr(r.out.disp, ref.out.disp), relErr(r.out.depth, ref.out.depth), relErr(r.out.aa, ref.out.aa), relErr(r.out.tr, ref.out.tr)}
			fmt.Fprintf(&table, "   %.2e / %.2e / %.2e / %.2e", errs[0], errs[1], errs[2], errs[3])
			for i, e := range errs {
				if !(e <= tol) {
					t.Errorf("%s: %s differs from jetson/cuda (TF32 off) by %.3g (relative) > %g", r.name, []string{"disparity", "depth", "axis-angle", "translation"}[i], e, tol)
				}
			}
		}
		table.WriteString("\n")
	}
	t.Log(table.String())
	if p := os.Getenv("EDGEDEPTH_GPU_ORT_TABLE"); p != "" {
		if err := os.WriteFile(filepath.Clean(p), []byte(table.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// openCUDAWith opens the export in dir on the CUDA provider with the given CUDA
// provider options (the Engine's Open passes only device_id).
func openCUDAWith(dir string, cudaOpts map[string]string) (*Engine, error) {
	if _, err := loadLibrary(""); err != nil {
		return nil, err
	}
	man, err := onnx.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	s := &sessions{}
	for _, n := range []struct {
		file, in string
		out      []string
		session  **ort.DynamicAdvancedSession
	}{
		{onnx.DepthFile, onnx.DepthInput, []string{onnx.DepthDisparity, onnx.DepthDepth}, &s.depth},
		{onnx.PoseFile, onnx.PoseInput, []string{onnx.PoseAxisAngle, onnx.PoseTranslation}, &s.pose},
	} {
		so, err := ort.NewSessionOptions()
		if err != nil {
			s.destroy()
			return nil, err
		}
		co, err := ort.NewCUDAProviderOptions()
		if err != nil {
			so.Destroy()
			s.destroy()
			return nil, err
		}
		err = co.Update(cudaOpts)
		if err == nil {
			err = so.AppendExecutionProviderCUDA(co)
		}
		co.Destroy()
		if err != nil {
			so.Destroy()
			s.destroy()
			return nil, err
		}
		sess, err := ort.NewDynamicAdvancedSession(filepath.Join(dir, n.file), []string{n.in}, n.out, so)
		so.Destroy()
		if err != nil {
			s.destroy()
			return nil, err
		}
		liveSessions.Add(1)
		*n.session = sess
	}
	return &Engine{info: Info{Provider: CUDA, Dir: dir, Depth: fixedDims(man.Depth), Pose: fixedDims(man.Pose), Manifest: man}, s: s}, nil
}
