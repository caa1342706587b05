package depth

import (
	"math/rand/v2"
	"testing"

	"github.com/edgedepth/edgedepth/camera"
)

func TestNonOccluded(t *testing.T) {
	// fx·B = 10 px·m. Background at 10 m (disparity 1), a box at 2 m (disparity 5) over
	// columns 8..11. In the right image the box covers x_r 3..6, hiding the background
	// that lands there: columns 4..7 (x_r 3..6), as many as the disparity difference.
	// Column 0 lands at x_r = −1, outside the right image.
	const w = 20
	row := make([]float32, w)
	for x := range row {
		row[x] = 10
		if x >= 8 && x < 12 {
			row[x] = 2
		}
	}
	row[15] = 0 // a pixel without truth
	wantRow := "-+++----+++++++-++++"
	truth := Map{Width: w, Height: 2, M: append(append([]float32{}, row...), row...)}
	vis := NonOccluded(truth, 100, 0.1)
	for y := range 2 {
		got := make([]byte, w)
		for x := range w {
			got[x] = '-'
			if vis[y*w+x] {
				got[x] = '+'
			}
		}
		if string(got) != wantRow {
			t.Errorf("row %d: %s, want %s", y, got, wantRow)
		}
	}
}

func TestNonOccludedSlanted(t *testing.T) {
	// A plane receding to the right (no occlusion anywhere, though disparity changes):
	// everything but the pixels that leave the right image is visible.
	const w = 64
	m := NewMap(w, 1)
	for x := range w {
		m.M[x] = 1 + 0.05*float32(x)
	}
	vis := NonOccluded(m, 100, 0.1)
	for x, v := range vis {
		xr := float64(x) - 10/float64(m.M[x])
		if v != (xr > -0.5) {
			t.Errorf("x=%d (x_r=%.2f): visible=%v", x, xr, v)
		}
	}
}

func TestNonOccludedCorrupt(t *testing.T) {
	vis := NonOccluded(Map{Width: 3, Height: 3, M: make([]float32, 4)}, 100, 0.1)
	if len(vis) != 4 {
		t.Fatalf("len %d", len(vis))
	}
}

func TestTextured(t *testing.T) {
	// Left half flat grey, right half random noise.
	const w, h = 40, 20
	img := camera.NewImage(w, h)
	rng := rand.New(rand.NewPCG(1, 1))
	for y := range h {
		for x := range w {
			v := byte(128)
			if x >= w/2 {
				v = byte(rng.IntN(256))
			}
			i := 3 * (y*w + x)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2] = v, v, v
		}
	}
	tex := Textured(img, 8)
	for y := range h {
		for x := range w {
			switch got := tex[y*w+x]; {
			case x < w/2-1-TexturedRadius && got:
				t.Errorf("flat pixel (%d,%d) textured", x, y)
			case x >= w/2 && !got:
				t.Errorf("noise pixel (%d,%d) not textured", x, y)
			}
		}
	}
	if got := Textured(camera.Image{Width: 2, Height: 2, Pix: make([]byte, 3)}, 1); len(got) != 4 {
		t.Errorf("corrupt image: len %d", len(got))
	}
}
