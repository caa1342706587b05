package cuda

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/edgedepth/edgedepth/tensor"
)

// The host-side logic, tested without a GPU: library search, cache keys, error
// mapping, kernel source generation, parameter packing and index plans.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCheck(t *testing.T) {
	if err := check(libDriver, "cuInit", 0); err != nil {
		t.Errorf("status 0: %v, want nil", err)
	}
	for _, c := range []struct {
		lib      libKind
		call     string
		code     int
		want     string
		oom, una bool
	}{
		{libDriver, "cuMemAlloc", 2, "cuda: cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (driver 2)", true, false},
		{libDriver, "cuInit", 100, "cuda: cuInit: CUDA_ERROR_NO_DEVICE (driver 100)", false, true},
		{libDriver, "cuInit", 34, "CUDA_ERROR_STUB_LIBRARY", false, true},
		{libDriver, "cuLaunchKernel", 700, "CUDA_ERROR_ILLEGAL_ADDRESS", false, false},
		{libNVRTC, "nvrtcCompileProgram(x.cu)", 6, "cuda: nvrtcCompileProgram(x.cu): NVRTC_ERROR_COMPILATION (nvrtc 6)", false, false},
		{libCUBLAS, "cublasSgemmStridedBatched", 3, "CUBLAS_STATUS_ALLOC_FAILED (cublas 3)", true, false},
		{libCUBLAS, "cublasCreate", 1, "CUBLAS_STATUS_NOT_INITIALIZED", false, false},
		{libDriver, "cuFuture", 12345, "unknown driver status (driver 12345)", false, false},
		{libCUBLAS, "cublasSetMathMode", codeNotLoaded, "function not loaded", false, true},
	} {
		err := check(c.lib, c.call, c.code)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.call) {
			t.Errorf("check(%v, %s, %d) = %v, want it to name the call and contain %q", c.lib, c.call, c.code, err, c.want)
		}
		if errors.Is(err, ErrOutOfMemory) != c.oom {
			t.Errorf("check(%v, %s, %d): errors.Is(ErrOutOfMemory) = %v", c.lib, c.call, c.code, !c.oom)
		}
		if errors.Is(err, ErrUnavailable) != c.una {
			t.Errorf("check(%v, %s, %d): errors.Is(ErrUnavailable) = %v", c.lib, c.call, c.code, !c.una)
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != c.code {
			t.Errorf("check(%v, %s, %d): %#v is not an *Error with the code", c.lib, c.call, c.code, err)
		}
	}
}

func TestNamesFor(t *testing.T) {
	for _, c := range []struct {
		major int
		want  []string
	}{
		{13, []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"}},
		// A 12.x driver: NVRTC 13 last, after the unversioned name.
		{12, []string{"libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so", "libnvrtc.so.13"}},
		{0, []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"}},
	} {
		if got := namesFor(nvrtcNames, c.major); !slices.Equal(got, c.want) {
			t.Errorf("namesFor(nvrtc, %d) = %v, want %v", c.major, got, c.want)
		}
	}
}

func TestDefaultLibraryDirs(t *testing.T) {
	arm := defaultLibraryDirs("arm64", []string{"/usr/local/cuda-12.6"})
	for _, want := range []string{
		"/usr/lib/aarch64-linux-gnu/tegra",               // L4T's libcuda
		"/usr/local/cuda/targets/aarch64-linux/lib",      // JetPack's toolkit
		"/usr/local/cuda-12.6/targets/aarch64-linux/lib", // a versioned install
		"/usr/local/cuda/lib64",
	} {
		if !slices.Contains(arm, want) {
			t.Errorf("arm64 search list lacks %s: %v", want, arm)
		}
	}
	x86 := defaultLibraryDirs("amd64", nil)
	for _, want := range []string{"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"} {
		if !slices.Contains(x86, want) {
			t.Errorf("amd64 search list lacks %s: %v", want, x86)
		}
	}
	for _, d := range x86 {
		if strings.Contains(d, "aarch64") {
			t.Errorf("amd64 search list has %s", d)
		}
	}
}

func TestCandidates(t *testing.T) {
	got := candidates([]string{"libnvrtc.so.13", "libnvrtc.so.12"}, []string{"/opt/cuda"}, []string{"/usr/local/cuda/lib64", "/opt/cuda"})
	want := []string{
		"/opt/cuda/libnvrtc.so.13", "/opt/cuda/libnvrtc.so.12", // configured directories first
		"libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.13", // then the loader, then defaults
		"libnvrtc.so.12", "/usr/local/cuda/lib64/libnvrtc.so.12",
	}
	if !slices.Equal(got, want) {
		t.Errorf("candidates:\n got %v\nwant %v", got, want)
	}
}

func TestCompareVersions(t *testing.T) {
	roots := []string{"/usr/local/cuda-12.6", "/usr/local/cuda-12.10", "/usr/local/cuda-13.0", "/usr/local/cuda-11.8"}
	slices.SortFunc(roots, func(a, b string) int { return compareVersions(b, a) })
	want := []string{"/usr/local/cuda-13.0", "/usr/local/cuda-12.10", "/usr/local/cuda-12.6", "/usr/local/cuda-11.8"}
	if !slices.Equal(roots, want) {
		t.Errorf("sorted %v, want %v", roots, want)
	}
}

func TestJetsonRelease(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nv_tegra_release")
	if err := os.WriteFile(p, []byte("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64\n# KERNEL_VARIANT: oot\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := jetsonRelease(p), "R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64"; got != want {
		t.Errorf("jetsonRelease = %q, want %q", got, want)
	}
	if got := jetsonRelease(filepath.Join(t.TempDir(), "none")); got != "" {
		t.Errorf("jetsonRelease of a missing file = %q", got)
	}
}

func TestChooseTarget(t *testing.T) {
	supported := []int{75, 80, 86, 87, 89, 90, 100, 120}
	for _, c := range []struct {
		sm        int
		supported []int
		cubin     bool
		want      compileTarget
		err       bool
	}{
		{90, supported, true, compileTarget{"sm_90", true}, false},
		{87, supported, true, compileTarget{"sm_87", true}, false}, // Orin
		{121, supported, true, compileTarget{"compute_120", false}, false},
		{90, supported, false, compileTarget{"compute_90", false}, false}, // NVRTC without CUBIN output
		{70, supported, true, compileTarget{}, true},                      // Volta under CUDA 13
		{86, nil, true, compileTarget{"sm_86", true}, false},              // NVRTC that cannot list archs
		{86, nil, false, compileTarget{"compute_86", false}, false},
	} {
		got, err := chooseTarget(c.sm, c.supported, c.cubin)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("chooseTarget(%d, %v, %v) = %+v, %v; want %+v, error %v", c.sm, c.supported, c.cubin, got, err, c.want, c.err)
		}
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Errorf("chooseTarget(%d): %v does not wrap ErrUnavailable", c.sm, err)
		}
	}
}

func TestCacheKey(t *testing.T) {
	tg := compileTarget{"sm_90", true}
	base := cacheKey("src", tg, 13000, "13.0", []string{"--gpu-architecture=sm_90"})
	if len(base) != 32 {
		t.Errorf("key %q is not 32 hex digits", base)
	}
	if again := cacheKey("src", tg, 13000, "13.0", []string{"--gpu-architecture=sm_90"}); again != base {
		t.Errorf("same inputs, keys %s and %s", base, again)
	}
	for name, k := range map[string]string{
		"source":  cacheKey("src2", tg, 13000, "13.0", []string{"--gpu-architecture=sm_90"}),
		"arch":    cacheKey("src", compileTarget{"sm_87", true}, 13000, "13.0", []string{"--gpu-architecture=sm_90"}),
		"ptx":     cacheKey("src", compileTarget{"sm_90", false}, 13000, "13.0", []string{"--gpu-architecture=sm_90"}),
		"driver":  cacheKey("src", tg, 12080, "13.0", []string{"--gpu-architecture=sm_90"}),
		"nvrtc":   cacheKey("src", tg, 13000, "12.6", []string{"--gpu-architecture=sm_90"}),
		"options": cacheKey("src", tg, 13000, "13.0", []string{"--gpu-architecture=sm_90", "-G"}),
	} {
		if k == base {
			t.Errorf("changing the %s leaves the cache key %s", name, k)
		}
	}
	if got, want := cacheFile("/c", "reduce", base, tg), "/c/reduce-sm_90-"+base+".cubin"; got != want {
		t.Errorf("cacheFile = %s, want %s", got, want)
	}
	if got := cacheFile("/c", "reduce", base, compileTarget{"compute_90", false}); !strings.HasSuffix(got, ".ptx") {
		t.Errorf("PTX cache file %s", got)
	}
}

func TestWriteCache(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "k.cubin")
	if err := writeCache(p, []byte("image")); err != nil {
		t.Fatal(err)
	}
	if err := writeCache(p, []byte("image2")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "image2" {
		t.Errorf("read back %q, %v", got, err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "*.tmp*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestDefaultOptions(t *testing.T) {
	t.Setenv("EDGEDEPTH_CUDA_LIBRARY_PATH", "/a:/b")
	t.Setenv("EDGEDEPTH_CUDA_CACHE_DIR", "off")
	t.Setenv("EDGEDEPTH_CUDA_SYNC", "1")
	o := DefaultOptions()
	if !slices.Equal(o.LibraryDirs, []string{"/a", "/b"}) || o.CacheDir != "" || !o.SyncEveryLaunch {
		t.Errorf("options from the environment: %+v", o)
	}
	t.Setenv("EDGEDEPTH_CUDA_CACHE_DIR", "/tmp/k")
	if o := DefaultOptions(); o.CacheDir != "/tmp/k" {
		t.Errorf("cache dir %q, want /tmp/k", o.CacheDir)
	}
}

func TestSizeClass(t *testing.T) {
	prev := int64(0)
	for n := int64(1); n < 1<<26; n = n*9/8 + 1 {
		c := sizeClass(n)
		if c < n || c < prev {
			t.Fatalf("sizeClass(%d) = %d (previous %d)", n, c, prev)
		}
		if n > minClass && float64(c-n) > 0.25*float64(n) {
			t.Fatalf("sizeClass(%d) = %d wastes more than a quarter", n, c)
		}
		if c%128 != 0 {
			t.Fatalf("sizeClass(%d) = %d is not a multiple of 128", n, c)
		}
		prev = c
	}
	if sizeClass(1) != minClass || sizeClass(minClass) != minClass {
		t.Errorf("small requests get %d, %d", sizeClass(1), sizeClass(minClass))
	}
}

func TestKargs(t *testing.T) {
	a := new(kargs).ptr(0x1000).i32(7).f32(1.5).i32(-2).i64(9).f64(0.25).dims([]int64{3, 4})
	b := a.buf
	le := binary.LittleEndian
	if le.Uint64(b[0:]) != 0x1000 || int32(le.Uint32(b[8:])) != 7 || math.Float32frombits(le.Uint32(b[12:])) != 1.5 ||
		int32(le.Uint32(b[16:])) != -2 {
		t.Fatalf("packed %x", b)
	}
	// The int at 16 is followed by padding to 24 for the long long.
	if le.Uint64(b[24:]) != 9 || math.Float64frombits(le.Uint64(b[32:])) != 0.25 {
		t.Fatalf("packed %x", b)
	}
	if le.Uint64(b[40:]) != 3 || le.Uint64(b[48:]) != 4 || le.Uint64(b[56:]) != 0 || len(b) != 40+8*maxDims {
		t.Fatalf("dims packed %x (%d bytes)", b[40:], len(b))
	}
}

func TestGridFor(t *testing.T) {
	for _, c := range []struct {
		n    int64
		sms  int
		want uint32
	}{{0, 132, 0}, {1, 132, 1}, {256, 132, 1}, {257, 132, 2}, {1 << 30, 132, 132 * 32}, {1 << 20, 0, 32}} {
		if got := gridFor(c.n, c.sms); got != c.want {
			t.Errorf("gridFor(%d, %d) = %d, want %d", c.n, c.sms, got, c.want)
		}
	}
}

func TestStridePlan(t *testing.T) {
	for _, c := range []struct {
		out, a, b tensor.Shape
		size      []int64
		sa, sb    []int64
	}{
		{tensor.Shape{2, 3, 4, 5}, tensor.Shape{2, 3, 4, 5}, tensor.Shape{2, 3, 4, 5}, []int64{120}, []int64{1}, []int64{1}},
		{tensor.Shape{2, 3, 4, 5}, tensor.Shape{2, 3, 4, 5}, tensor.Shape{1, 3, 1, 1}, []int64{2, 3, 20}, []int64{60, 20, 1}, []int64{0, 1, 0}},
		{tensor.Shape{2, 3, 4}, tensor.Shape{2, 3, 4}, tensor.Shape{}, []int64{24}, []int64{1}, []int64{0}},
		{tensor.Shape{}, tensor.Shape{}, tensor.Shape{}, []int64{1}, []int64{0}, []int64{0}},
		{tensor.Shape{4, 5}, tensor.Shape{4, 1}, tensor.Shape{1, 5}, []int64{4, 5}, []int64{1, 0}, []int64{0, 1}},
		{tensor.Shape{3000, 3}, tensor.Shape{3000, 3}, tensor.Shape{3}, []int64{3000, 3}, []int64{3, 1}, []int64{0, 1}},
	} {
		p := newStridePlan(c.out, broadcastStrides(c.a, c.out), broadcastStrides(c.b, c.out))
		if !slices.Equal(p.size, c.size) || !slices.Equal(p.st[0], c.sa) || !slices.Equal(p.st[1], c.sb) {
			t.Errorf("plan of %v, %v → %v: size %v strides %v %v; want %v %v %v", c.a, c.b, c.out, p.size, p.st[0], p.st[1], c.size, c.sa, c.sb)
		}
	}
}

func TestReducePlan(t *testing.T) {
	for _, c := range []struct {
		in, out     tensor.Shape
		nOut, count int64
		ks, kst     []int64
		rs, rst     []int64
	}{
		{tensor.Shape{2, 3, 4, 5}, tensor.Shape{1, 1, 1, 1}, 1, 120, nil, nil, []int64{120}, []int64{1}},
		{tensor.Shape{2, 3, 4, 5}, tensor.Shape{1, 3, 1, 1}, 3, 40, []int64{3}, []int64{20}, []int64{2, 20}, []int64{60, 1}},
		{tensor.Shape{2, 3, 4, 5}, tensor.Shape{2, 3, 1, 1}, 6, 20, []int64{6}, []int64{20}, []int64{20}, []int64{1}},
		{tensor.Shape{4096, 64}, tensor.Shape{1, 64}, 64, 4096, []int64{64}, []int64{1}, []int64{4096}, []int64{64}},
		{tensor.Shape{2, 1, 3}, tensor.Shape{2, 1, 1}, 2, 3, []int64{2}, []int64{3}, []int64{3}, []int64{1}},
	} {
		p, err := newReducePlan(c.in, c.out)
		if err != nil {
			t.Fatal(err)
		}
		if p.nOut != c.nOut || p.count != c.count || !slices.Equal(p.keptSize, c.ks) || !slices.Equal(p.keptStride, c.kst) ||
			!slices.Equal(p.reducedSize, c.rs) || !slices.Equal(p.redStride, c.rst) {
			t.Errorf("reduce %v → %v: %+v", c.in, c.out, p)
		}
	}
	if _, err := newReducePlan(tensor.Shape{2, 3}, tensor.Shape{2, 2}); err == nil {
		t.Error("reduce [2 3] → [2 2]: no error")
	}
}

func TestGemmRuns(t *testing.T) {
	// Batch (2, 3) from a of batch (2, 1) and b of batch (3): neither is one stride
	// over the six items, but each half is.
	out := tensor.Shape{2, 3}
	ia, ib := batchIndex(out, tensor.Shape{2, 1}), batchIndex(out, tensor.Shape{3})
	if !slices.Equal(ia, []int{0, 0, 0, 1, 1, 1}) || !slices.Equal(ib, []int{0, 1, 2, 0, 1, 2}) {
		t.Fatalf("batchIndex: %v %v", ia, ib)
	}
	ic := []int{0, 1, 2, 3, 4, 5}
	runs := gemmRuns([3][]int{ia, ib, ic})
	want := []gemmRun{{0, 3, [3]int{0, 1, 1}}, {3, 3, [3]int{0, 1, 1}}}
	if !slices.Equal(runs, want) {
		t.Errorf("runs %+v, want %+v", runs, want)
	}
	// Covering every item exactly once, whatever the maps.
	for _, maps := range [][3][]int{
		{{0}, {0}, {0}},
		{{0, 1, 2, 3}, {0, 0, 0, 0}, {0, 1, 2, 3}},
		{{0, 1, 0, 1, 0, 1}, {0, 0, 1, 1, 2, 2}, {0, 1, 2, 3, 4, 5}},
		{{}, {}, {}},
	} {
		n := 0
		for _, r := range gemmRuns(maps) {
			if r.start != n {
				t.Errorf("%v: run %+v starts at %d", maps, r, n)
			}
			for i := r.start; i < r.start+r.count; i++ {
				for k := range maps {
					if maps[k][i] != maps[k][r.start]+(i-r.start)*r.step[k] {
						t.Errorf("%v: run %+v misplaces item %d", maps, r, i)
					}
				}
			}
			n += r.count
		}
		if n != len(maps[0]) {
			t.Errorf("%v: runs cover %d items", maps, n)
		}
	}
}

func TestKernelSources(t *testing.T) {
	src := elementwiseFamily.src
	for _, op := range tensor.UnaryOps() {
		k, ok := unaryKernels[op]
		if !ok || k.fwd == "" || k.grad == "" {
			t.Errorf("unary op %v has no kernel", op)
			continue
		}
		for _, name := range []string{unaryName(op), unaryGradName(op)} {
			if !strings.Contains(src, " "+name+"(") {
				t.Errorf("generated source lacks %s", name)
			}
		}
		if strings.Contains(k.grad, "x") && !k.readX || strings.Contains(k.grad, "y") && !k.readY {
			t.Errorf("unary %v: gradient %q reads an operand it does not load", op, k.grad)
		}
	}
	for _, op := range tensor.BinaryOps() {
		if _, ok := binaryKernels[op]; !ok {
			t.Errorf("binary op %v has no kernel", op)
		}
		for _, name := range []string{binaryName(op), binaryGradName(op, 'a'), binaryGradName(op, 'b')} {
			if !strings.Contains(src, " "+name+"(") {
				t.Errorf("generated source lacks %s", name)
			}
		}
	}
	for _, f := range allFamilies {
		if strings.Count(f.src, "{") != strings.Count(f.src, "}") {
			t.Errorf("family %s: unbalanced braces", f.name)
		}
		if strings.Contains(f.src, "#include") {
			t.Errorf("family %s includes a header: NVRTC has none to offer here", f.name)
		}
	}
}
