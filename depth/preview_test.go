package depth

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"strings"
	"testing"
)

func TestColourMap(t *testing.T) {
	// Near is warm (red dominates blue), far is cool, and no level is black.
	if c := colourLUT[255]; c.R <= c.B {
		t.Errorf("nearest colour %v is not warm", c)
	}
	if c := colourLUT[0]; c.B <= c.R {
		t.Errorf("farthest colour %v is not cool", c)
	}
	for i, c := range colourLUT {
		if int(c.R)+int(c.G)+int(c.B) < 60 {
			t.Errorf("level %d colour %v is too close to black (invalid)", i, c)
		}
		// Continuity: no jumps between neighbouring levels.
		if i > 0 {
			p := colourLUT[i-1]
			if d := absDiff(c.R, p.R) + absDiff(c.G, p.G) + absDiff(c.B, p.B); d > 24 {
				t.Errorf("levels %d and %d differ by %d", i-1, i, d)
			}
		}
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func TestColourizeDepth(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	m := Map{Width: 7, Height: 1, M: []float32{0, 0.5, 1, 10, 100, nan, inf}}
	img := image.NewRGBA(image.Rect(0, 0, 7, 1))
	if err := ColourizeDepth(m, 1, 10, img); err != nil {
		t.Fatal(err)
	}
	black := color.RGBA{0, 0, 0, 255}
	want := []color.RGBA{black, colourLUT[255], colourLUT[255], colourLUT[0], colourLUT[0], black, black}
	for x, w := range want {
		if got := img.RGBAAt(x, 0); got != w {
			t.Errorf("depth %g: colour %v, want %v", m.M[x], got, w)
		}
	}
	// Inverse-depth scale: 1/z halfway between 1/1 and 1/10 is z = 20/11 m.
	m = Map{Width: 1, Height: 1, M: []float32{20.0 / 11}}
	if err := ColourizeDepth(m, 1, 10, img.SubImage(image.Rect(0, 0, 1, 1)).(*image.RGBA)); err != nil {
		t.Fatal(err)
	}
	if got := img.RGBAAt(0, 0); got != colourLUT[128] && got != colourLUT[127] {
		t.Errorf("mid depth colour %v, want level 127/128 %v", got, colourLUT[128])
	}
}

func TestEncodePreviewJPEG(t *testing.T) {
	m := smoothMap(64, 48)
	data, err := EncodePreviewJPEG(m, 0.3, 10, 80)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, 64, 48) {
		t.Fatalf("bounds %v", img.Bounds())
	}
	// Pooled images of another size must not leak into the next call.
	if _, err := EncodePreviewJPEG(smoothMap(32, 16), 0.3, 10, 80); err != nil {
		t.Fatal(err)
	}
}

func TestEncodePreviewJPEGErrors(t *testing.T) {
	tests := []struct {
		name     string
		m        Map
		min, max float64
		quality  int
		want     string
	}{
		{"quality 0", NewMap(2, 2), 1, 10, 0, "quality"},
		{"quality 101", NewMap(2, 2), 1, 10, 101, "quality"},
		{"empty", NewMap(0, 0), 1, 10, 75, "empty"},
		{"corrupt", Map{Width: 2, Height: 2, M: make([]float32, 3)}, 1, 10, 75, "size mismatch"},
		{"zero min", NewMap(2, 2), 0, 10, 75, "range"},
		{"max below min", NewMap(2, 2), 5, 1, 75, "range"},
		{"NaN max", NewMap(2, 2), 1, math.NaN(), 75, "range"},
		{"infinite max", NewMap(2, 2), 1, math.Inf(1), 75, "range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := EncodePreviewJPEG(tt.m, tt.min, tt.max, tt.quality)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("EncodePreviewJPEG: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func BenchmarkPreviewJPEG(b *testing.B) {
	m := smoothMap(640, 480)
	var n int
	for b.Loop() {
		data, err := EncodePreviewJPEG(m, 0.3, 10, 75)
		if err != nil {
			b.Fatal(err)
		}
		n = len(data)
	}
	b.ReportMetric(float64(n), "bytes/preview")
}

func TestPreviewRange(t *testing.T) {
	m := NewMap(100, 10)
	for i := range m.M {
		m.M[i] = 1 + 9*float32(i)/float32(len(m.M)) // 1 m to 10 m
	}
	lo, hi, ok := PreviewRange(m)
	if !ok || lo < 1 || lo > 1.5 || hi < 9.5 || hi > 10 {
		t.Fatalf("PreviewRange = %g, %g, %v; want about the 2nd and 98th percentile of 1..10 m", lo, hi, ok)
	}
	if _, _, ok := PreviewRange(NewMap(100, 10)); ok {
		t.Fatal("PreviewRange of an all-invalid map reported a range")
	}
}
