package cuda

import (
	"errors"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/tensor/backendtest"
)

// The tests that need a GPU. Without one (CI) they skip, saying why.

// openOrSkip opens a backend on GPU 0 with a private kernel cache, or skips the test
// when this machine has no usable CUDA.
func openOrSkip(t *testing.T, mod func(*Options)) *Backend {
	t.Helper()
	o := DefaultOptions()
	o.CacheDir = t.TempDir()
	if mod != nil {
		mod(&o)
	}
	b, err := Open(o)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("%v", err)
	}
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Logf("GPU %d: %s, sm_%d, kernels for %s, convolutions: %s", b.dev.Index, b.dev.Name, b.dev.SM, b.Target(), b.ConvImpl())
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

func TestConformance(t *testing.T) {
	b := openOrSkip(t, nil)
	start := b.Live()
	backendtest.Run(t, b, backendtest.Float32)
	// The suite frees nothing explicitly: its tensors go when they are garbage, through
	// the safety net. Every one must have come back.
	if live := waitLive(b, start); live != start {
		t.Errorf("%d device buffers still live after the suite (started with %d)", live, start)
	}
	t.Logf("%s", b.convSummary())
}

// waitLive collects garbage until the backend's live count reaches want or stops
// falling, and returns it. Cleanups run on their own goroutine after a collection, so
// the count is polled, for at most a few seconds.
func waitLive(b *Backend, want int64) int64 {
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		live := b.Live()
		if live == want || time.Now().After(deadline) {
			return live
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOpenWithoutCUDA(t *testing.T) {
	info := Probe()
	t.Logf("probe:\n%v", info)
	if info.Err == nil {
		t.Skip("CUDA is available here")
	}
	if !errors.Is(info.Err, ErrUnavailable) {
		t.Errorf("probe error %v does not wrap ErrUnavailable", info.Err)
	}
	_, err := tensor.Open("cuda")
	if err == nil {
		t.Fatal(`tensor.Open("cuda") succeeded without CUDA`)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf(`tensor.Open("cuda"): %v, want an error wrapping ErrUnavailable`, err)
	}
	if info.Driver.Err != nil && !errors.Is(err, ErrNoDriver) {
		t.Errorf(`tensor.Open("cuda") without libcuda: %v, want ErrNoDriver`, err)
	}
}

// TestMemoryLifecycle checks the live counter through explicit frees, double frees,
// frees of tensors sharing a buffer, and the garbage collector's safety net.
func TestMemoryLifecycle(t *testing.T) {
	b := openOrSkip(t, nil)
	start := b.Live()
	x, err := b.FromHost([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	y, err := b.Unary(tensor.Exp, x)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := b.Zeros(tensor.Float32, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Live(); got != start+2 {
		t.Errorf("live %d after two tensors and an empty one, want %d", got, start+2)
	}
	view, err := y.Reshape(6)
	if err != nil {
		t.Fatal(err)
	}
	b.Free(view)
	b.Free(y) // the same buffer: nothing more
	b.Free(x)
	b.Free(x)
	b.Free(empty)
	if got := b.Live(); got != start {
		t.Errorf("live %d after freeing everything, want %d", got, start)
	}

	// Reuse: a block freed above serves the next tensor of its size.
	before := b.DeviceBytes()
	z, err := b.Full(7, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if b.DeviceBytes() != before {
		t.Errorf("device bytes %d → %d: a pooled block should have been reused", before, b.DeviceBytes())
	}
	got, err := b.ToHost(z)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range got {
		if v != 7 {
			t.Fatalf("Full(7) after reuse: %v", got)
		}
	}

	// The safety net: a tensor dropped without Free comes back after a collection.
	func() {
		if _, err := b.Zeros(tensor.Float32, 1000); err != nil {
			t.Fatal(err)
		}
	}()
	b.Free(z)
	if live := waitLive(b, start); live != start {
		t.Errorf("live %d after dropping a tensor and collecting, want %d", live, start)
	}
}

// TestCompileCache checks that a second backend loads the kernels the first compiled.
func TestCompileCache(t *testing.T) {
	dir := t.TempDir()
	run := func() (compiled, cached int) {
		b := openOrSkip(t, func(o *Options) { o.CacheDir = dir })
		x, err := b.Full(2, 3)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Unary(tensor.Sqrt, x); err != nil {
			t.Fatal(err)
		}
		compiled, cached, cacheErr := b.CompileStats()
		if cacheErr != nil {
			t.Errorf("cache: %v", cacheErr)
		}
		return compiled, cached
	}
	if c, h := run(); c != 1 || h != 0 {
		t.Errorf("first backend: %d compiled, %d from the cache; want 1 and 0", c, h)
	}
	if c, h := run(); c != 0 || h != 1 {
		t.Errorf("second backend: %d compiled, %d from the cache; want 0 and 1", c, h)
	}
}

// TestConcurrentCallers checks that ops from many goroutines at once, all funnelled
// through the owner goroutine, compute what they compute alone.
func TestConcurrentCallers(t *testing.T) {
	b := openOrSkip(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := float32(g + 1)
			for i := 0; i < 50; i++ {
				x, err := b.Full(v, 64, 33)
				if err == nil {
					var y *tensor.Tensor
					if y, err = b.Affine(x, 2, 1); err == nil {
						var s *tensor.Tensor
						if s, err = b.Reduce(tensor.Sum, y); err == nil {
							var h []float32
							if h, err = b.ToHost(s); err == nil && math.Abs(float64(h[0])-float64(64*33*(2*v+1))) > 1e-3 {
								err = errors.New("wrong sum")
							}
							b.Free(s)
						}
						b.Free(y)
					}
					b.Free(x)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestClosed checks that a closed backend answers with ErrClosed, not a crash.
func TestClosed(t *testing.T) {
	b := openOrSkip(t, nil)
	x, err := b.Full(1, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Full(1, 4); !errors.Is(err, ErrClosed) {
		t.Errorf("Full after Close: %v, want ErrClosed", err)
	}
	b.Free(x) // nothing to do, no crash
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCompileAll compiles every kernel family, so that a kernel that does not compile
// fails here with NVRTC's log rather than in the first test that uses it.
func TestCompileAll(t *testing.T) {
	b := openOrSkip(t, nil)
	for _, f := range allFamilies {
		err := b.run(func() error {
			_, err := b.module(f)
			return err
		})
		if err != nil {
			t.Errorf("%s: %v", f.name, err)
		}
	}
}

// TestNVRTCCompiles compiles every kernel family for the Jetson Orin (sm_87) and the
// H100 (sm_90) wherever NVRTC loads: it needs no GPU, only the library.
func TestNVRTCCompiles(t *testing.T) {
	info := loadLibraries(DefaultOptions().LibraryDirs)
	if info.NVRTC.Err != nil {
		t.Skipf("no NVRTC: %v", info.NVRTC.Err)
	}
	supported, err := nvrtcSupportedArchs()
	if err != nil {
		t.Fatal(err)
	}
	for _, sm := range []int{87, 90} {
		target, err := chooseTarget(sm, supported, nvrtcCanCUBIN())
		if err != nil {
			t.Errorf("sm_%d: %v", sm, err)
			continue
		}
		for _, f := range allFamilies {
			image, err := nvrtcCompile(kernelPrelude+f.src, f.name+".cu", compileOptions(target), target.cubin)
			if err != nil {
				t.Errorf("%s for %s: %v", f.name, target.arch, err)
			} else if len(image) == 0 {
				t.Errorf("%s for %s: empty image", f.name, target.arch)
			}
		}
	}
}
