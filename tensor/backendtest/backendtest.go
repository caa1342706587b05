// Package backendtest is the conformance suite of tensor.Backend. Every backend's tests
// call Run; it checks every op against a float64 reference written here, on fresh
// random inputs, and every backward kernel against central finite differences of that
// float64 reference.
//
// Inputs are random on every run; the seed is logged, and EDGEDEPTH_BACKENDTEST_SEED
// repeats a run. Float32 backends are held to Tolerances: relative error of the whole
// output, ‖got − want‖ / ‖want‖.
package backendtest

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/tensor"
)

// Tolerances of a backend against the float64 reference (relative norm errors).
type Tolerances struct {
	Forward  float64 // outputs
	Backward float64 // gradients against finite differences
}

// Float32 is what a float32 backend with float32 accumulation must meet.
var Float32 = Tolerances{Forward: 1e-5, Backward: 1e-4}

// Run runs the whole suite against b.
func Run(t *testing.T, b tensor.Backend, tol Tolerances) {
	s := &suite{b: b, tol: tol}
	t.Run("memory", s.testMemory)
	t.Run("linalg", s.testLinalg)
	t.Run("elementwise", s.testElementwise)
	t.Run("image", s.testImage)
	t.Run("sampling", s.testSampling)
}

type suite struct {
	b   tensor.Backend
	tol Tolerances
}

// rng returns a random source for one test, seeded freshly and logged.
func (s *suite) rng(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("EDGEDEPTH_BACKENDTEST_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("EDGEDEPTH_BACKENDTEST_SEED=%q is not an unsigned integer", v)
		}
		seed = n
	}
	t.Logf("seed %d (EDGEDEPTH_BACKENDTEST_SEED=%d repeats this run)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0x5eed))
}

// randn returns n standard-normal values.
func randn(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return v
}

// uniform returns n values uniform in [lo, hi).
func uniform(r *rand.Rand, n int, lo, hi float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float64()
	}
	return v
}

// put uploads float64 values (rounded to float32) as a tensor; the float64 reference
// must then use rounded(v) so both sides see the same numbers.
func (s *suite) put(t *testing.T, v []float64, shape ...int) *tensor.Tensor {
	t.Helper()
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	x, err := s.b.FromHost(f, shape...)
	if err != nil {
		t.Fatalf("FromHost %v: %v", tensor.Shape(shape), err)
	}
	return x
}

// rounded returns v rounded to float32 precision, as the backend sees it.
func rounded(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(float32(x))
	}
	return out
}

// get downloads a tensor and checks its shape.
func (s *suite) get(t *testing.T, what string, x *tensor.Tensor, shape ...int) []float64 {
	t.Helper()
	if x == nil {
		t.Fatalf("%s: nil tensor", what)
	}
	if !x.Shape.Equal(shape) {
		t.Fatalf("%s: shape %v, want %v", what, x.Shape, tensor.Shape(shape))
	}
	f, err := s.b.ToHost(x)
	if err != nil {
		t.Fatalf("%s: ToHost: %v", what, err)
	}
	out := make([]float64, len(f))
	for i, v := range f {
		out[i] = float64(v)
	}
	return out
}

// relErr is ‖got − want‖ / max(‖want‖, tiny).
func relErr(got, want []float64) float64 {
	var num, den float64
	for i := range want {
		d := got[i] - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	return math.Sqrt(num) / math.Max(math.Sqrt(den), 1e-30)
}

// close fails the test unless got is within tol of want (relative norm error), and
// names the worst element.
func close(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i, v := range got {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("%s: element %d is %v", what, i, v)
		}
	}
	e := relErr(got, want)
	if e <= tol && !math.IsNaN(e) {
		return
	}
	worst, wi := -1.0, 0
	for i := range want {
		if d := math.Abs(got[i] - want[i]); d > worst {
			worst, wi = d, i
		}
	}
	t.Errorf("%s: relative error %.3g > %.3g; worst element %d: got %.8g, want %.8g", what, e, tol, wi, got[wi], want[wi])
}

// numGrad returns the gradient of f at x by central differences with step h, in
// float64. f must not keep x.
func numGrad(f func(x []float64) float64, x []float64, h float64) []float64 {
	g := make([]float64, len(x))
	xx := append([]float64(nil), x...)
	for i := range xx {
		orig := xx[i]
		xx[i] = orig + h
		fp := f(xx)
		xx[i] = orig - h
		fm := f(xx)
		xx[i] = orig
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

// dot is Σ a·b: a random projection of an output turns a vector function into the
// scalar whose gradient the backward kernels compute when fed dy = b.
func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// checkGrad compares a backend gradient with finite differences of the float64
// reference: ref maps the input being differentiated to the output, and dy is the
// output gradient fed to the backward kernel.
func (s *suite) checkGrad(t *testing.T, what string, got []float64, ref func(x []float64) []float64, x, dy []float64) {
	t.Helper()
	want := numGrad(func(v []float64) float64 { return dot(ref(v), dy) }, x, 1e-6)
	close(t, what, got, want, s.tol.Backward)
}

// wantShapeError fails unless err wraps tensor.ErrShape and names op.
func wantShapeError(t *testing.T, op string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s with mismatched shapes: no error", op)
		return
	}
	if !errors.Is(err, tensor.ErrShape) {
		t.Errorf("%s with mismatched shapes: error %q does not wrap tensor.ErrShape", op, err)
	}
	if !strings.Contains(err.Error(), op) {
		t.Errorf("%s with mismatched shapes: error %q does not name the op", op, err)
	}
}

func (s *suite) testMemory(t *testing.T) {
	r := s.rng(t)
	v := randn(r, 24)
	x := s.put(t, v, 2, 3, 4)
	close(t, "FromHost/ToHost", s.get(t, "x", x, 2, 3, 4), rounded(v), 0)
	z, err := s.b.Zeros(tensor.Float32, 3, 5)
	if err != nil {
		t.Fatal(err)
	}
	close(t, "Zeros", s.get(t, "zeros", z, 3, 5), make([]float64, 15), 0)
	f, err := s.b.Full(2.5, 4)
	if err != nil {
		t.Fatal(err)
	}
	close(t, "Full", s.get(t, "full", f, 4), []float64{2.5, 2.5, 2.5, 2.5}, 0)
	y := s.put(t, v, 24)
	if err := s.b.AddTo(y, x); err != nil {
		t.Fatal(err)
	}
	want := make([]float64, 24)
	for i, a := range rounded(v) {
		want[i] = 2 * a
	}
	close(t, "AddTo", s.get(t, "addto", y, 24), want, 0)
	if err := s.b.Copy(y, x); err != nil {
		t.Fatal(err)
	}
	close(t, "Copy", s.get(t, "copy", y, 24), rounded(v), 0)
	if _, err := s.b.FromHost(make([]float32, 5), 2, 3); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("FromHost with 5 values for [2 3]: %v, want a shape error", err)
	}
	if err := s.b.AddTo(y, z); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("AddTo [24] += [3 5]: %v, want a shape error", err)
	}
}
