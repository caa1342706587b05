package trt

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/trainer"
)

// The tests need libonnxruntime.so.1. `make test` fetches it (make onnxruntime) and
// names it in $EDGEDEPTH_ONNXRUNTIME_LIB: there a library that does not load fails
// the tests. A plain `go test` uses the copy `make onnxruntime` left in
// third_party/onnxruntime/<arch>/, and skips, saying how to get one, when there is
// none.
func needLibrary(t testing.TB) Options {
	t.Helper()
	if os.Getenv(LibraryEnv) != "" {
		return Options{}
	}
	arch := map[string]string{"amd64": "x64", "arm64": "arm64"}[runtime.GOARCH]
	p, err := filepath.Abs(filepath.Join("..", "..", "third_party", "onnxruntime", arch, "libonnxruntime.so.1"))
	if err == nil {
		if _, err = os.Stat(p); err == nil {
			return Options{LibraryPath: p}
		}
	}
	t.Skipf("no ONNX Runtime library: run `make onnxruntime` (make test does), or set %s to a libonnxruntime.so.1", LibraryEnv)
	return Options{}
}

// open opens dir on the CPU provider with threads threads, failing the test on error.
func open(t testing.TB, dir string, threads int) *Engine {
	t.Helper()
	o := needLibrary(t)
	o.Threads = threads
	e, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// relErr is the relative error this package's tests use: max|got − want| / max|want|
// over one output (both in float64).
func relErr(got, want []float32) float64 {
	var d, m float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
		m = math.Max(m, math.Abs(float64(want[i])))
	}
	if m == 0 {
		return d
	}
	return d / m
}

// tolerance is the largest relative error allowed between two implementations of
// the same network in float32.
const tolerance = 1e-4

// randomModel is a Monodepth2 model of the given channel scale with random
// weights and random batch-norm statistics (Init leaves batch norm at identity,
// which would not test it).
func randomModel(t testing.TB, b tensor.Backend, scale float64, seed uint64) *monodepth2.Model {
	t.Helper()
	m, err := monodepth2.NewWithOptions(b, monodepth2.Options{ChannelScale: scale})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(b, seed); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	for _, p := range m.Params.All() {
		var f func() float64
		switch ext := filepath.Ext(p.Name); ext {
		case ".running_mean", ".bias":
			if !isBatchNorm(m, p.Name) {
				continue
			}
			f = func() float64 { return 0.1 * r.NormFloat64() }
		case ".running_var", ".weight":
			if !isBatchNorm(m, p.Name) {
				continue
			}
			f = func() float64 { return 0.5 + r.Float64() }
		default:
			continue
		}
		v := make([]float32, p.Value.Len())
		for i := range v {
			v[i] = float32(f())
		}
		x, err := b.FromHost(v, p.Value.Shape...)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Copy(p.Value, x); err != nil {
			t.Fatal(err)
		}
		b.Free(x)
	}
	return m
}

// isBatchNorm reports whether parameter name belongs to a batch norm (a layer that
// has running statistics).
func isBatchNorm(m *monodepth2.Model, name string) bool {
	layer := name[:len(name)-len(filepath.Ext(name))]
	return m.Params.Get(layer+".running_var") != nil
}

// randomImages are n smooth random RGB images in [0, 1] (random values on a coarse
// grid, bilinearly upsampled: structure for the convolutions to see).
func randomImages(n, h, w int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 11))
	const cell = 8
	gh, gw := h/cell+2, w/cell+2
	out := make([]float32, n*3*h*w)
	for p := 0; p < n*3; p++ {
		g := make([]float64, gh*gw)
		for i := range g {
			g[i] = r.Float64()
		}
		for y := 0; y < h; y++ {
			fy := float64(y) / cell
			y0 := int(fy)
			ty := fy - float64(y0)
			for x := 0; x < w; x++ {
				fx := float64(x) / cell
				x0 := int(fx)
				tx := fx - float64(x0)
				v := (1-ty)*((1-tx)*g[y0*gw+x0]+tx*g[y0*gw+x0+1]) + ty*((1-tx)*g[(y0+1)*gw+x0]+tx*g[(y0+1)*gw+x0+1])
				out[(p*h+y)*w+x] = float32(v)
			}
		}
	}
	return out
}

// stackPairs stacks a and b (each n×3×h×w) along channels: n×6×h×w.
func stackPairs(a, b []float32, n, h, w int) []float32 {
	plane := 3 * h * w
	out := make([]float32, 0, 2*len(a))
	for i := 0; i < n; i++ {
		out = append(out, a[i*plane:(i+1)*plane]...)
		out = append(out, b[i*plane:(i+1)*plane]...)
	}
	return out
}

// forward is our own inference (trainer.Predict, as the daemon runs it) of target
// and, for pose, the pair [prev, target]: disparity, depth, axis-angle, translation.
func forward(t testing.TB, b tensor.Backend, m *monodepth2.Model, target, prev []float32, n, h, w int) (disp, depth, aa, tr []float32) {
	t.Helper()
	tgt, err := b.FromHost(target, n, 3, h, w)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free(tgt)
	pv, err := b.FromHost(prev, n, 3, h, w)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free(pv)
	tape := nn.NewTape(b)
	defer tape.Release()
	d, a, tl, err := trainer.Predict(tape, m, tgt, pv)
	if err != nil {
		t.Fatal(err)
	}
	z := monodepth2.DispToDepth(tape, d)
	if err := tape.Err(); err != nil {
		t.Fatal(err)
	}
	host := func(v *nn.Var) []float32 {
		x, err := b.ToHost(v.Value)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	return host(d), host(z), host(a), host(tl)
}
