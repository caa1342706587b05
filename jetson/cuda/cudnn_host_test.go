package cuda

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
)

// Host-side logic of the cuDNN path, tested without a GPU: status names and the
// not-supported test, algorithm choice, plan keys and descriptor dimensions, options.

func TestCUDNNStatus(t *testing.T) {
	for _, c := range []struct {
		code     int
		want     string
		oom, uns bool
	}{
		{3000, "cuda: cudnnConvolutionForward: CUDNN_STATUS_NOT_SUPPORTED (cudnn 3000)", false, true},
		{3002, "CUDNN_STATUS_NOT_SUPPORTED_SHAPE", false, true},
		{3099, "CUDNN_STATUS_NOT_SUPPORTED (sub-code)", false, true}, // a newer cuDNN 9 sub-code
		{9, "CUDNN_STATUS_NOT_SUPPORTED (cudnn 9)", false, true},     // cuDNN 8
		{2, "CUDNN_STATUS_ALLOC_FAILED", true, false},
		{4004, "CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED", true, false},
		{2000, "CUDNN_STATUS_BAD_PARAM (cudnn 2000)", false, false},
		{2002, "CUDNN_STATUS_BAD_PARAM_NULL_POINTER", false, false},
		{1002, "CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH", false, false},
		{5000, "CUDNN_STATUS_EXECUTION_FAILED", false, false},
		{3, "CUDNN_STATUS_BAD_PARAM (cudnn 3)", false, false},
		{777, "unknown cudnn status (cudnn 777)", false, false},
	} {
		err := check(libCUDNN, "cudnnConvolutionForward", c.code)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "cudnnConvolutionForward") {
			t.Errorf("check(cudnn, %d) = %v, want it to name the call and contain %q", c.code, err, c.want)
		}
		if errors.Is(err, ErrOutOfMemory) != c.oom {
			t.Errorf("check(cudnn, %d): errors.Is(ErrOutOfMemory) = %v", c.code, !c.oom)
		}
		if notSupported(fmt.Errorf("conv2d: %w", err)) != c.uns {
			t.Errorf("check(cudnn, %d): notSupported = %v", c.code, !c.uns)
		}
	}
	// Other libraries' codes of the same values are not cuDNN's "not supported".
	if notSupported(check(libCUBLAS, "cublasSgemm", 9)) || notSupported(check(libDriver, "cuLaunchKernel", 3000)) || notSupported(nil) {
		t.Error("notSupported matched another library's status")
	}
	for _, c := range []struct {
		code int
		want bool
	}{{3, true}, {2000, true}, {2005, true}, {3000, true}, {9, true}, {4000, false}, {1001, false}, {2, false}} {
		if got := describeRefused(check(libCUDNN, "cudnnSetTensor4dDescriptor", c.code)); got != c.want {
			t.Errorf("describeRefused(%d) = %v, want %v", c.code, got, c.want)
		}
	}
}

func TestPickAlgo(t *testing.T) {
	const limit = 1 << 20
	ok := func(algo int, mem int64, math int) algoPerf {
		return algoPerf{Algo: algo, Memory: mem, Math: math, Time: -1}
	}
	failed := algoPerf{Algo: 4, Status: 3000}
	for _, c := range []struct {
		name   string
		perfs  []algoPerf
		tf32   bool
		want   algoChoice
		wantOK bool
	}{
		{"first usable", []algoPerf{ok(1, 100, dnnFMAMath), ok(0, 0, dnnFMAMath)}, false,
			algoChoice{state: choiceReady, algo: 1, math: dnnFMAMath, workspace: 100}, true},
		{"skips failures", []algoPerf{failed, ok(6, 10, dnnDefaultMath)}, false,
			algoChoice{state: choiceReady, algo: 6, math: dnnFMAMath, workspace: 10}, true},
		{"skips workspaces over the limit", []algoPerf{ok(5, limit+1, dnnFMAMath), ok(0, limit, dnnFMAMath)}, false,
			algoChoice{state: choiceReady, algo: 0, math: dnnFMAMath, workspace: limit}, true},
		{"no tensor cores without TF32", []algoPerf{ok(1, 0, dnnTensorOpMath), ok(7, 0, 2), ok(2, 0, dnnDefaultMath)}, false,
			algoChoice{state: choiceReady, algo: 2, math: dnnFMAMath}, true},
		{"TF32 keeps cuDNN's math", []algoPerf{ok(1, 64, dnnTensorOpMath)}, true,
			algoChoice{state: choiceReady, algo: 1, math: dnnTensorOpMath, workspace: 64}, true},
		{"TF32 default math", []algoPerf{failed, ok(0, 0, dnnDefaultMath)}, true,
			algoChoice{state: choiceReady, algo: 0, math: dnnDefaultMath}, true},
		{"none usable", []algoPerf{failed, ok(1, limit*2, dnnFMAMath), ok(1, 0, dnnTensorOpMath)}, false, algoChoice{}, false},
		{"empty", nil, true, algoChoice{}, false},
	} {
		got, gotOK := pickAlgo(c.perfs, c.tf32, limit)
		if got != c.want || gotOK != c.wantOK {
			t.Errorf("%s: pickAlgo = %+v, %v; want %+v, %v", c.name, got, gotOK, c.want, c.wantOK)
		}
	}
}

// geom is the convGeom of x and w under p, as Conv2D makes it.
func geom(t *testing.T, xs, ws tensor.Shape, p tensor.Conv2DParams) convGeom {
	t.Helper()
	x, w := &tensor.Tensor{Shape: xs, DType: tensor.Float32}, &tensor.Tensor{Shape: ws, DType: tensor.Float32}
	out, err := tensor.Conv2DCheck(x, w, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	return newConvGeom(x, w, out, p.Norm())
}

func TestConvPlanKeyAndDims(t *testing.T) {
	p := tensor.Conv2DParams{Stride: [2]int{2, 2}, Padding: [2]int{3, 3}}
	g := geom(t, tensor.Shape{12, 3, 192, 640}, tensor.Shape{64, 3, 7, 7}, p) // ResNet conv1
	x, w, y, bias := g.dnnDims()
	if x != [4]int{12, 3, 192, 640} || w != [4]int{64, 3, 7, 7} || y != [4]int{12, 64, 96, 320} || bias != [4]int{1, 64, 1, 1} {
		t.Errorf("dims x %v w %v y %v bias %v", x, w, y, bias)
	}
	if why := g.dnnFits(); why != "" {
		t.Errorf("conv1 does not fit: %s", why)
	}
	if k := g.key(); k.String() != "x(12,3,192,640) w(64,3,7,7) s2x2 p3x3 g1" {
		t.Errorf("key %v", k)
	}

	// Groups: the filter's second dimension is C/groups.
	gg := geom(t, tensor.Shape{3, 4, 6, 5}, tensor.Shape{6, 2, 3, 3}, tensor.Conv2DParams{Padding: [2]int{1, 1}, Groups: 2})
	if _, w, y, _ := gg.dnnDims(); w != [4]int{6, 2, 3, 3} || y != [4]int{3, 6, 6, 5} {
		t.Errorf("grouped dims w %v y %v", w, y)
	}

	// The same shape gives the same key; any difference another.
	same := geom(t, tensor.Shape{12, 3, 192, 640}, tensor.Shape{64, 3, 7, 7}, p)
	if g.key() != same.key() {
		t.Error("equal shapes, different keys")
	}
	for _, other := range []convGeom{
		geom(t, tensor.Shape{1, 3, 192, 640}, tensor.Shape{64, 3, 7, 7}, p),
		geom(t, tensor.Shape{12, 3, 192, 640}, tensor.Shape{64, 3, 7, 7}, tensor.Conv2DParams{Stride: [2]int{2, 2}, Padding: [2]int{2, 3}}),
		geom(t, tensor.Shape{12, 3, 192, 640}, tensor.Shape{64, 3, 7, 7}, tensor.Conv2DParams{Stride: [2]int{2, 1}, Padding: [2]int{3, 3}}),
		geom(t, tensor.Shape{12, 3, 192, 640}, tensor.Shape{32, 3, 7, 7}, p),
		geom(t, tensor.Shape{12, 4, 192, 640}, tensor.Shape{64, 2, 7, 7}, tensor.Conv2DParams{Stride: [2]int{2, 2}, Padding: [2]int{3, 3}, Groups: 2}),
	} {
		if other.key() == g.key() {
			t.Errorf("%v and %v share a key", other.key(), g.key())
		}
	}

	// Operands cuDNN's int descriptors cannot hold, and empty ones, stay on im2col.
	big := geom(t, tensor.Shape{64, 64, 1024, 1024}, tensor.Shape{8, 64, 1, 1}, tensor.Conv2DParams{})
	if why := big.dnnFits(); !strings.Contains(why, "4294967296 elements") {
		t.Errorf("an operand of 2³² elements: dnnFits = %q", why)
	}
	empty := geom(t, tensor.Shape{0, 3, 5, 5}, tensor.Shape{2, 3, 3, 3}, tensor.Conv2DParams{Padding: [2]int{1, 1}})
	if why := empty.dnnFits(); why == "" {
		t.Error("an empty batch fits cuDNN's descriptors")
	}
}

func TestConvDirNames(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range []convDir{dirForward, dirBackwardData, dirBackwardFilter} {
		for _, name := range []string{d.algosCall(), d.findCall(), d.workspaceCall(), d.runCall()} {
			if !strings.HasPrefix(name, "cudnn") || seen[name] {
				t.Errorf("%v: call name %q", d, name)
			}
			seen[name] = true
		}
	}
	if algoName(dirForward, 1) != "IMPLICIT_PRECOMP_GEMM" || algoName(dirBackwardData, 5) != "WINOGRAD_NONFUSED" ||
		algoName(dirBackwardFilter, 6) != "FFT_TILING" || algoName(dirForward, 9) != "algo 9" {
		t.Error("algorithm names do not follow cuDNN's enums")
	}
}

func TestConvOptions(t *testing.T) {
	t.Setenv("EDGEDEPTH_CUDA_CONV", "im2col")
	t.Setenv("EDGEDEPTH_CUDA_CONV_SEARCH", "find")
	t.Setenv("EDGEDEPTH_CUDA_TF32", "1")
	o := DefaultOptions()
	if o.Conv != ConvIm2col || o.ConvSearch != SearchFind || !o.TF32 {
		t.Errorf("options from the environment: %+v", o)
	}
	if err := o.validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
	t.Setenv("EDGEDEPTH_CUDA_CONV", "")
	t.Setenv("EDGEDEPTH_CUDA_CONV_SEARCH", "")
	t.Setenv("EDGEDEPTH_CUDA_TF32", "")
	if o := DefaultOptions(); o.Conv != "" || o.ConvSearch != "" || o.TF32 || o.validate() != nil {
		t.Errorf("default options: %+v", o)
	}
	for _, o := range []Options{{Conv: "cudnn8"}, {ConvSearch: "exhaustive"}} {
		err := o.validate()
		if err == nil || !strings.Contains(err.Error(), "EDGEDEPTH_CUDA_CONV") {
			t.Errorf("validate(%+v) = %v, want an error naming the variable", o, err)
		}
		if _, oerr := Open(o); oerr == nil || errors.Is(oerr, ErrUnavailable) {
			t.Errorf("Open(%+v) = %v, want the validation error", o, oerr)
		}
	}
	if got := defaultConvWorkspace(80 << 30); got != 1<<30 {
		t.Errorf("workspace on 80 GiB: %d", got)
	}
	if got := defaultConvWorkspace(8 << 30); got != 512<<20 {
		t.Errorf("workspace on 8 GiB: %d", got)
	}
}

func TestCUDNNUsable(t *testing.T) {
	if why := cudnnUsable(LibraryInfo{Err: errors.New("libcudnn.so.9 not found")}); !strings.Contains(why, "not found") {
		t.Errorf("missing cuDNN: %q", why)
	}
	info := loadLibraries(nil)
	t.Logf("cudnn: %v, convolution API: %v", info.CUDNN, info.CUDNNConv)
	if info.CUDNN.Err == nil && info.CUDNNConv != (cudnnUsable(info.CUDNN) == "") {
		t.Errorf("Info.CUDNNConv %v but cudnnUsable says %q", info.CUDNNConv, cudnnUsable(info.CUDNN))
	}
}
