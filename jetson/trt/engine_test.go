package trt

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/nn/onnx"
	"github.com/edgedepth/edgedepth/tensor/cpu"
)

// TestExportMatchesForward exports random Monodepth2 models (a quarter-width one
// and the full-width one) and checks that ONNX Runtime's CPU provider on the files
// computes the disparity, depth, axis-angle and translation of our own forward pass
// (tensor/cpu, trainer.Predict) within a relative error of 1e-4 (max|a − b| /
// max|b| per output). The symbolic-size export also runs at a second size.
func TestExportMatchesForward(t *testing.T) {
	b := cpu.New(0)
	cases := []struct {
		name  string
		scale float64
		batch int
		sizes [][2]int // the first is exported when fixed
		fixed bool
	}{
		{"scale0.25-b2-any-size", 0.25, 2, [][2]int{{64, 192}, {96, 320}}, false},
		{"scale0.25-b1-96x128-fixed", 0.25, 1, [][2]int{{96, 128}}, true},
		{"scale1-b1-64x192-fixed", 1, 1, [][2]int{{64, 192}}, true},
	}
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			needLibrary(t)
			m := randomModel(t, b, c.scale, uint64(10+ci))
			o := onnx.Options{}
			if c.fixed {
				o = onnx.Options{Batch: c.batch, Height: c.sizes[0][0], Width: c.sizes[0][1]}
			}
			dir := t.TempDir()
			man, err := onnx.WriteDir(dir, b, m, o, "test")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("depth.onnx %.1f MB, pose.onnx %.1f MB", float64(man.Depth.Bytes)/1e6, float64(man.Pose.Bytes)/1e6)
			e := open(t, dir, 0)
			for si, hw := range c.sizes {
				n, h, w := c.batch, hw[0], hw[1]
				target, prev := randomImages(n, h, w, uint64(100+si)), randomImages(n, h, w, uint64(200+si))
				disp, depth, aa, tr := forward(t, b, m, target, prev, n, h, w)

				gotDisp, gotDepth := make([]float32, n*h*w), make([]float32, n*h*w)
				if err := e.Depth(target, n, h, w, gotDisp, gotDepth); err != nil {
					t.Fatal(err)
				}
				gotAA, gotTr := make([]float32, 3*n), make([]float32, 3*n)
				if err := e.Pose(stackPairs(prev, target, n, h, w), n, h, w, gotAA, gotTr); err != nil {
					t.Fatal(err)
				}
				for _, o := range []struct {
					name      string
					got, want []float32
				}{{"disparity", gotDisp, disp}, {"depth", gotDepth, depth}, {"axis_angle", gotAA, aa}, {"translation", gotTr, tr}} {
					err := relErr(o.got, o.want)
					t.Logf("%dx%d %-11s relative error %.2e (max |ours| %.3g)", h, w, o.name, err, maxAbs(o.want))
					if !(err <= tolerance) {
						t.Errorf("%dx%d %s: ONNX Runtime differs from our forward pass by %.3g (relative) > %g", h, w, o.name, err, tolerance)
					}
				}
			}
		})
	}
}

func maxAbs(v []float32) float64 {
	var m float64
	for _, x := range v {
		if a := float64(x); a > m {
			m = a
		} else if -a > m {
			m = -a
		}
	}
	return m
}

// TestEngineErrors: wrong buffer sizes, a size the export does not take, a run
// after Close, and a modified file are errors that say what is wrong; the session
// counter returns to zero.
func TestEngineErrors(t *testing.T) {
	o := needLibrary(t)
	b := cpu.New(0)
	m := randomModel(t, b, 0.25, 3)
	dir := t.TempDir()
	if _, err := onnx.WriteDir(dir, b, m, onnx.Options{Height: 64, Width: 128}, ""); err != nil {
		t.Fatal(err)
	}
	before := LiveSessions()
	e, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if got := LiveSessions() - before; got != 2 {
		t.Errorf("%d sessions open after Open, want 2", got)
	}
	if info := e.Info(); info.Version == "" || info.Provider != CPU || info.Depth != [4]int{0, 3, 64, 128} {
		t.Errorf("info %+v", info)
	}
	img := make([]float32, 3*64*128)
	px := make([]float32, 64*128)
	if err := e.Depth(img, 1, 64, 128, px, make([]float32, 64*128)); err != nil {
		t.Fatal(err)
	}
	if err := e.Depth(img[:10], 1, 64, 128, px, px); !errors.Is(err, ErrShape) {
		t.Errorf("short input: %v", err)
	}
	if err := e.Depth(make([]float32, 3*96*128), 1, 96, 128, make([]float32, 96*128), make([]float32, 96*128)); !errors.Is(err, ErrShape) || !strings.Contains(err.Error(), "exported for") {
		t.Errorf("other size: %v", err)
	}
	if err := e.Pose(make([]float32, 6*64*128), 1, 64, 128, make([]float32, 2), make([]float32, 3)); !errors.Is(err, ErrShape) {
		t.Errorf("short pose output: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := LiveSessions(); got != before {
		t.Errorf("%d sessions open after Close, want %d", got, before)
	}
	if err := e.Depth(img, 1, 64, 128, px, make([]float32, 64*128)); !errors.Is(err, ErrClosed) {
		t.Errorf("Depth after Close: %v", err)
	}

	// A depth.onnx that is not the one the manifest describes is refused.
	raw, err := os.ReadFile(filepath.Join(dir, onnx.DepthFile))
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	if err := os.WriteFile(filepath.Join(dir, onnx.DepthFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, o); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("modified depth.onnx: %v", err)
	}
	if _, err := Open(t.TempDir(), o); err == nil || !strings.Contains(err.Error(), onnx.DepthFile) {
		t.Errorf("empty folder: %v", err)
	}
	if got := LiveSessions(); got != before {
		t.Errorf("%d sessions open after failed Opens, want %d", got, before)
	}
}

// TestGPUProvidersUnavailable: the CPU-only library has neither GPU provider; asking
// for one is ErrProviderUnavailable with what it needs. (This runs the error path
// only: the CUDA and TensorRT providers themselves have not run here.)
func TestGPUProvidersUnavailable(t *testing.T) {
	o := needLibrary(t)
	b := cpu.New(0)
	dir := t.TempDir()
	if _, err := onnx.WriteDir(dir, b, randomModel(t, b, 0.25, 4), onnx.Options{Height: 64, Width: 64}, ""); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Provider{CUDA, TensorRT} {
		o.Provider = p
		o.TensorRT = TensorRTOptions{FP16: true, EngineCacheDir: t.TempDir(), Refit: true}
		e, err := Open(dir, o)
		if err == nil {
			e.Close()
			t.Skipf("the loaded ONNX Runtime has the %s provider: this test is for a CPU-only build", p)
		}
		if !errors.Is(err, ErrProviderUnavailable) || !strings.Contains(err.Error(), "GPU build") {
			t.Errorf("%s: %v", p, err)
		}
		t.Logf("%s: %v", p, err)
	}
}

// TestTensorRTOptions checks the provider options the TensorRT path would pass (the
// provider itself cannot run here).
func TestTensorRTOptions(t *testing.T) {
	cache := t.TempDir()
	o := Options{DeviceID: 1, TensorRT: TensorRTOptions{FP16: true, EngineCacheDir: cache, Refit: true, MaxBatch: 4, WorkspaceBytes: 1 << 30}}
	m := tensorRTOptions(o, "depth", onnx.DepthInput, "0123456789abcdef0123", [4]int{0, 3, 192, 640})
	want := map[string]string{
		"device_id": "1", "trt_fp16_enable": "1", "trt_weight_stripped_engine_enable": "1",
		"trt_max_workspace_size":  "1073741824",
		"trt_engine_cache_enable": "1", "trt_engine_cache_path": filepath.Join(cache, "depth-0123456789abcdef-fp16-refit"),
		"trt_timing_cache_enable": "1", "trt_timing_cache_path": cache,
		"trt_profile_min_shapes": "image:1x3x192x640", "trt_profile_opt_shapes": "image:1x3x192x640", "trt_profile_max_shapes": "image:4x3x192x640",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("options %v, want %v", m, want)
	}
	// No cache, fixed batch: no cache or profile keys.
	m = tensorRTOptions(Options{}, "pose", onnx.PoseInput, "ab", [4]int{1, 6, 192, 640})
	for _, k := range []string{"trt_engine_cache_enable", "trt_profile_max_shapes"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s set without a cache or a symbolic batch: %v", k, m)
		}
	}
}

func TestParseProviderAndValidate(t *testing.T) {
	for in, want := range map[string]Provider{"cpu": CPU, "onnxruntime-cpu": CPU, "cuda": CUDA, "onnxruntime-cuda": CUDA, "TensorRT": TensorRT} {
		if got, err := ParseProvider(in); err != nil || got != want {
			t.Errorf("ParseProvider(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseProvider("tpu"); err == nil {
		t.Error("ParseProvider(tpu): no error")
	}
	for _, o := range []Options{{Provider: "tpu"}, {Threads: -1}, {DeviceID: -1}, {TensorRT: TensorRTOptions{MaxBatch: -1}}} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestLibraryCandidates(t *testing.T) {
	dir := t.TempDir()
	got := candidates("", "/x/libonnxruntime.so.1: "+dir+" ::")
	want := []string{"/x/libonnxruntime.so.1", filepath.Join(dir, "libonnxruntime.so.1"), "libonnxruntime.so.1", "libonnxruntime.so"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("candidates = %v, want %v", got, want)
	}
	if got := candidates("/y.so", "/x"); len(got) != 1 || got[0] != "/y.so" {
		t.Errorf("explicit path: %v", got)
	}
}

// TestLibraryMissing runs this test binary again with no ONNX Runtime to be found:
// Open must fail with ErrLibrary and say how to get the library.
func TestLibraryMissing(t *testing.T) {
	if os.Getenv("EDGEDEPTH_TRT_CHILD") == "1" {
		_, err := Open(t.TempDir(), Options{})
		if err == nil || !errors.Is(err, ErrLibrary) && strings.Contains(err.Error(), onnx.DepthFile) {
			os.Stderr.WriteString("LIBRARY FOUND BY THE LOADER\n")
			return
		}
		if !errors.Is(err, ErrLibrary) {
			t.Fatalf("Open without a library: %v", err)
		}
		os.Stderr.WriteString("OPEN ERROR: " + err.Error() + "\n")
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestLibraryMissing$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EDGEDEPTH_TRT_CHILD=1", LibraryEnv+"="+filepath.Join(t.TempDir(), "nothing.so"), "LD_LIBRARY_PATH="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "LIBRARY FOUND BY THE LOADER") {
		t.Skip("the dynamic loader finds an ONNX Runtime on this machine: the missing-library path cannot be shown here")
	}
	for _, want := range []string{"nothing.so", "make onnxruntime", "npm pack onnxruntime-node@1.24.1", LibraryEnv} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the error does not say %q:\n%s", want, out)
		}
	}
}

// TestConcurrentRuns: Depth and Pose from several goroutines at once give what one
// goroutine alone gets.
func TestConcurrentRuns(t *testing.T) {
	needLibrary(t)
	b := cpu.New(0)
	dir := t.TempDir()
	if _, err := onnx.WriteDir(dir, b, randomModel(t, b, 0.25, 5), onnx.Options{Batch: 1, Height: 64, Width: 96}, ""); err != nil {
		t.Fatal(err)
	}
	e := open(t, dir, 1)
	const h, w = 64, 96
	img := randomImages(1, h, w, 9)
	pair := stackPairs(img, img, 1, h, w)
	wantDisp, wantDepth, wantAA, wantTr := make([]float32, h*w), make([]float32, h*w), make([]float32, 3), make([]float32, 3)
	if err := e.Depth(img, 1, h, w, wantDisp, wantDepth); err != nil {
		t.Fatal(err)
	}
	if err := e.Pose(pair, 1, h, w, wantAA, wantTr); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for g := 0; g < cap(errs); g++ {
		go func() {
			disp, depth, aa, tr := make([]float32, h*w), make([]float32, h*w), make([]float32, 3), make([]float32, 3)
			for i := 0; i < 5; i++ {
				if err := e.Depth(img, 1, h, w, disp, depth); err != nil {
					errs <- err
					return
				}
				if err := e.Pose(pair, 1, h, w, aa, tr); err != nil {
					errs <- err
					return
				}
				if relErr(disp, wantDisp) != 0 || relErr(depth, wantDepth) != 0 || relErr(aa, wantAA) != 0 || relErr(tr, wantTr) != 0 {
					errs <- errors.New("a concurrent run differs from the serial one")
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < cap(errs); g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
