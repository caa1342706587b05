package cpu

import (
	"math"
	"testing"
)

func TestExpfMatchesMath(t *testing.T) {
	worst := func(f func(float32) float32, ref func(float64) float64, lo, hi float64) (float64, float64) {
		var w, at float64
		for i := 0; i <= 200000; i++ {
			x := float32(lo + (hi-lo)*float64(i)/200000)
			want := ref(float64(x))
			got := float64(f(x))
			if want == 0 {
				continue
			}
			if e := math.Abs(got-want) / math.Abs(want); e > w {
				w, at = e, float64(x)
			}
		}
		return w, at
	}
	for _, c := range []struct {
		name   string
		f      func(float32) float32
		ref    func(float64) float64
		lo, hi float64
	}{
		{"expf", expf, math.Exp, -87, 88},
		{"expf near 0", expf, math.Exp, -1, 1},
		{"expm1f", expm1f, math.Expm1, -30, 0},
		{"expm1f near 0", expm1f, math.Expm1, -0.6, 0.6},
	} {
		if w, at := worst(c.f, c.ref, c.lo, c.hi); w > 3e-7 {
			t.Errorf("%s: relative error %.2g at %g", c.name, w, at)
		}
	}
	for _, c := range []struct{ x, want float32 }{
		{float32(math.Inf(1)), float32(math.Inf(1))}, {89, float32(math.Inf(1))}, {float32(math.Inf(-1)), 0}, {-200, 0}, {0, 1},
	} {
		if got := expf(c.x); got != c.want {
			t.Errorf("expf(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	if v := expf(float32(math.NaN())); v == v {
		t.Error("expf(NaN) is not NaN")
	}
	// Denormal results keep few bits: within two of their spacing (1.4e-45).
	if v, want := expf(-100), float32(math.Exp(-100)); math.Abs(float64(v-want)) > 3e-45 {
		t.Errorf("expf(-100) = %g, want the denormal %g", v, want)
	}
}
