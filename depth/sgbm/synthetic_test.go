package sgbm

import (
	"math"
	"math/rand/v2"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/depth"
)

// texture is band-limited value noise: random values on square lattices of a few
// spacings, bilinearly interpolated and summed. It is defined at every real point, so
// the right image of a pair can be sampled where geometry says, not at shifted pixels.
type texture struct {
	octaves []lattice
}

type lattice struct {
	spacing, weight float64
	n               int
	v               []float64
}

func newTexture(seed uint64) texture {
	rng := rand.New(rand.NewPCG(seed, 11))
	var t texture
	for _, o := range []struct{ spacing, weight float64 }{{1.7, 0.45}, {4.3, 0.35}, {11, 0.2}} {
		n := 1024
		l := lattice{spacing: o.spacing, weight: o.weight, n: n, v: make([]float64, n*n)}
		for i := range l.v {
			l.v[i] = rng.Float64()
		}
		t.octaves = append(t.octaves, l)
	}
	return t
}

func (t texture) at(u, v float64) float64 {
	s := 0.0
	for _, l := range t.octaves {
		x, y := u/l.spacing+64, v/l.spacing+64 // keep the lattice index positive
		x0, y0 := math.Floor(x), math.Floor(y)
		fx, fy := x-x0, y-y0
		i, j := int(x0)%(l.n-1), int(y0)%(l.n-1)
		a := l.v[j*l.n+i]*(1-fx) + l.v[j*l.n+i+1]*fx
		b := l.v[(j+1)*l.n+i]*(1-fx) + l.v[(j+1)*l.n+i+1]*fx
		s += l.weight * (a*(1-fy) + b*fy)
	}
	return 255 * s
}

// pixel averages the texture over a 3x3 grid inside a pixel footprint starting at u
// and 1/scale wide (the camera integrates light over the pixel).
func (t texture) pixel(u, v, width float64) byte {
	s := 0.0
	for _, dy := range []float64{-1.0 / 3, 0, 1.0 / 3} {
		for _, dx := range []float64{-1.0 / 3, 0, 1.0 / 3} {
			s += t.at(u+dx*width, v+dy)
		}
	}
	return byte(math.Round(s / 9))
}

// planePair renders a rectified pair of a textured plane whose disparity is
// d(x, y) = d0 + ax·x + ay·y (any plane has affine disparity), with its true depth.
// The texture is painted on the plane as the left camera sees it: left(x, y) = T(x, y).
// A right pixel xr sees the plane point with x − d(x, y) = xr, that is
// x = (xr + d0 + ay·y) / (1 − ax); a pixel there spans 1/(1−ax) left pixels.
func planePair(w, h int, fx, baseline, d0, ax, ay float64, seed uint64) camera.StereoFrame {
	tex := newTexture(seed)
	f := camera.StereoFrame{
		Seq:        1,
		Left:       camera.NewImage(w, h),
		Right:      camera.NewImage(w, h),
		Intrinsics: camera.Intrinsics{Fx: fx, Fy: fx, Cx: float64(w-1) / 2, Cy: float64(h-1) / 2, Width: w, Height: h},
		BaselineM:  baseline,
		Truth:      &camera.GroundTruth{DepthM: make([]float32, w*h)},
	}
	for y := range h {
		for x := range w {
			i := y*w + x
			l := tex.pixel(float64(x), float64(y), 1)
			xs := (float64(x) + d0 + ay*float64(y)) / (1 - ax)
			r := tex.pixel(xs, float64(y), 1/(1-ax))
			f.Left.Pix[3*i], f.Left.Pix[3*i+1], f.Left.Pix[3*i+2] = l, l, l
			// A little colour in the right image too, with the same luma.
			f.Right.Pix[3*i], f.Right.Pix[3*i+1], f.Right.Pix[3*i+2] = r, r, r
			d := d0 + ax*float64(x) + ay*float64(y)
			f.Truth.DepthM[i] = float32(fx * baseline / d)
		}
	}
	return f
}

func truthMap(f camera.StereoFrame) depth.Map {
	return depth.Map{Width: f.Left.Width, Height: f.Left.Height, M: f.Truth.DepthM}
}
