package inference_test

import (
	"math"
	"testing"

	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/inference"
)

// BenchmarkStereoConfidence640x192 times the confidence of a 640x192 depth map from
// the right image, on the simulated street with its true depth.
func BenchmarkStereoConfidence640x192(b *testing.B) {
	w := street(&testing.T{}, 3)
	f := w.Render(10)
	d := depth.Map{Width: 640, Height: 192, M: f.Truth.DepthM}
	for i, z := range d.M {
		if z == 0 {
			d.M[i] = 100
		}
	}
	fB := f.Intrinsics.Fx * f.BaselineM
	b.ResetTimer()
	for range b.N {
		inference.StereoConfidence(f.Left, f.Right, d, fB, 0.1)
	}
}

// TestStereoConfidenceFormula checks the table against exp(−e/scale) computed
// directly, on a right image that is the left one shifted by a known disparity.
func TestStereoConfidenceFormula(t *testing.T) {
	w := street(t, 3)
	f := w.Render(10)
	const disp = 6.25 // pixels
	d := depth.Map{Width: 640, Height: 192, M: make([]float32, 640*192)}
	fB := 100.0
	for i := range d.M {
		d.M[i] = float32(fB / disp)
	}
	conf := inference.StereoConfidence(f.Left, f.Right, d, fB, 0.1)
	for _, p := range []struct{ x, y int }{{3, 5}, {6, 5}, {100, 50}, {639, 191}, {320, 96}} {
		i := p.y*640 + p.x
		xr := float64(p.x) - disp
		want := 0.0
		if xr >= 0 {
			x0 := int(xr)
			fr := xr - float64(x0)
			var e float64
			for c := range 3 {
				r := (1-fr)*float64(f.Right.Pix[3*(p.y*640+x0)+c]) + fr*float64(f.Right.Pix[3*(p.y*640+x0+1)+c])
				e += math.Abs(float64(f.Left.Pix[3*i+c]) - r)
			}
			want = math.Exp(-e / (255 * 3 * 0.1))
		}
		if math.Abs(float64(conf[i])-want) > 2e-3 {
			t.Errorf("pixel (%d, %d): confidence %g, want %g", p.x, p.y, conf[i], want)
		}
	}
}
