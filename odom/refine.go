package odom

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/edgedepth/edgedepth/camera"
)

// Image is a grey image for direct alignment: intensities in [0, 1], row-major.
type Image struct {
	Width, Height int
	Gray          []float32
}

// GrayImage converts packed RGB to grey (Rec. 601 weights) in [0, 1].
func GrayImage(m camera.Image) Image {
	g := make([]float32, m.Width*m.Height)
	for i := range g {
		p := m.Pix[3*i : 3*i+3]
		g[i] = (0.299*float32(p[0]) + 0.587*float32(p[1]) + 0.114*float32(p[2])) / 255
	}
	return Image{Width: m.Width, Height: m.Height, Gray: g}
}

// RefineOptions tune the photometric refinement.
type RefineOptions struct {
	// Levels of the image pyramid (each half the size of the one below). Default 3.
	Levels int
	// Iterations of Gauss-Newton at each level at most. Default 10.
	Iterations int
	// HuberDelta is where the Huber weight of a residual starts to fall, in grey
	// levels of [0, 1]. Default 0.04 (about 10 of 255).
	HuberDelta float64
	// MinGradient is the least grey-level gradient (per pixel, [0, 1] units) of a
	// reference pixel used for alignment: flat pixels carry no information. Default 0.01.
	MinGradient float64
	// MaxPoints bounds the reference pixels used at each level (evenly thinned).
	// Default 8000.
	MaxPoints int
}

func (o RefineOptions) withDefaults() RefineOptions {
	if o.Levels <= 0 {
		o.Levels = 3
	}
	if o.Iterations <= 0 {
		o.Iterations = 10
	}
	if o.HuberDelta <= 0 {
		o.HuberDelta = 0.04
	}
	if o.MinGradient <= 0 {
		o.MinGradient = 0.01
	}
	if o.MaxPoints <= 0 {
		o.MaxPoints = 8000
	}
	return o
}

// pinhole are the intrinsics of one pyramid level.
type pinhole struct{ fx, fy, cx, cy float64 }

// level is one pyramid level of a frame: grey image, its gradients and, for a
// reference frame, the selected points in 3-D.
type level struct {
	w, h   int
	gray   []float32
	gx, gy []float32
	k      pinhole
	// pts are the reference points of this level: position in the reference camera
	// (metres) and grey level.
	pts []refPoint
}

type refPoint struct {
	p [3]float64
	i float32
}

// Frame is an image prepared for alignment (a pyramid with gradients); a frame made
// with a depth map can serve as the reference (keyframe).
type Frame struct {
	levels []level
}

// NewFrame builds the pyramid of img with intrinsics k (of img's size). depth, when
// not nil, is the z-depth of img in metres (0 = unknown), and makes the frame usable as
// a reference.
func NewFrame(img Image, depthM []float32, k camera.Intrinsics, o RefineOptions) (*Frame, error) {
	o = o.withDefaults()
	w, h := img.Width, img.Height
	if w < 8 || h < 8 || len(img.Gray) != w*h {
		return nil, fmt.Errorf("odom: frame of %dx%d with %d pixels: want at least 8x8 and width·height pixels", w, h, len(img.Gray))
	}
	if depthM != nil && len(depthM) != w*h {
		return nil, fmt.Errorf("odom: depth of %d values for a %dx%d image", len(depthM), w, h)
	}
	if !(k.Fx > 0 && k.Fy > 0) {
		return nil, errors.New("odom: intrinsics need positive fx and fy")
	}
	f := &Frame{}
	gray, dep := img.Gray, depthM
	kk := pinhole{k.Fx, k.Fy, k.Cx, k.Cy}
	for l := 0; l < o.Levels && w >= 8 && h >= 8; l++ {
		lv := level{w: w, h: h, gray: gray, k: kk}
		lv.gx, lv.gy = gradients(gray, w, h)
		if dep != nil {
			lv.pts = selectPoints(&lv, dep, o)
		}
		f.levels = append(f.levels, lv)
		if l+1 < o.Levels {
			gray, dep, w, h = halve(gray, dep, w, h)
			kk = pinhole{kk.fx / 2, kk.fy / 2, (kk.cx - 0.5) / 2, (kk.cy - 0.5) / 2}
		}
	}
	return f, nil
}

// gradients are central differences (one-sided at the border).
func gradients(g []float32, w, h int) (gx, gy []float32) {
	gx, gy = make([]float32, w*h), make([]float32, w*h)
	for y := range h {
		for x := range w {
			i := y*w + x
			x0, x1 := max(x-1, 0), min(x+1, w-1)
			y0, y1 := max(y-1, 0), min(y+1, h-1)
			gx[i] = (g[y*w+x1] - g[y*w+x0]) / float32(x1-x0)
			gy[i] = (g[y1*w+x] - g[y0*w+x]) / float32(y1-y0)
		}
	}
	return gx, gy
}

// halve averages 2x2 blocks; depth is averaged in inverse depth over the known pixels
// of a block (unknown when none is known).
func halve(g, d []float32, w, h int) ([]float32, []float32, int, int) {
	nw, nh := w/2, h/2
	ng := make([]float32, nw*nh)
	var nd []float32
	if d != nil {
		nd = make([]float32, nw*nh)
	}
	for y := range nh {
		for x := range nw {
			a, b := (2*y)*w+2*x, (2*y+1)*w+2*x
			ng[y*nw+x] = (g[a] + g[a+1] + g[b] + g[b+1]) / 4
			if d != nil {
				var s float32
				n := 0
				for _, v := range [4]float32{d[a], d[a+1], d[b], d[b+1]} {
					if v > 0 {
						s += 1 / v
						n++
					}
				}
				if n > 0 {
					nd[y*nw+x] = float32(n) / s
				}
			}
		}
	}
	return ng, nd, nw, nh
}

// selectPoints picks the reference pixels of a level: known depth without an edge in
// it, a grey-level gradient of at least MinGradient, two pixels from the border,
// thinned evenly to MaxPoints.
func selectPoints(lv *level, d []float32, o RefineOptions) []refPoint {
	var idx []int
	g2 := float32(o.MinGradient * o.MinGradient)
	for y := 2; y < lv.h-2; y++ {
		for x := 2; x < lv.w-2; x++ {
			i := y*lv.w + x
			if d[i] > 0 && lv.gx[i]*lv.gx[i]+lv.gy[i]*lv.gy[i] >= g2 && smoothDepth(d, i, lv.w) {
				idx = append(idx, i)
			}
		}
	}
	step := 1.0
	if len(idx) > o.MaxPoints {
		step = float64(len(idx)) / float64(o.MaxPoints)
	}
	pts := make([]refPoint, 0, min(len(idx), o.MaxPoints))
	for f := 0.0; int(f) < len(idx); f += step {
		i := idx[int(f)]
		x, y := float64(i%lv.w), float64(i/lv.w)
		z := float64(d[i])
		pts = append(pts, refPoint{
			p: [3]float64{(x - lv.k.cx) / lv.k.fx * z, (y - lv.k.cy) / lv.k.fy * z, z},
			i: lv.gray[i],
		})
	}
	return pts
}

// smoothDepth reports whether the depth around pixel i is continuous: a pixel on an
// object's edge mixes two surfaces in its colour and is the first to be occluded when
// the camera moves, so it would pull the alignment away from the truth.
func smoothDepth(d []float32, i, w int) bool {
	z := d[i]
	for _, j := range [4]int{i - 1, i + 1, i - w, i + w} {
		if v := d[j]; v <= 0 || v > 1.05*z || v < z/1.05 {
			return false
		}
	}
	return true
}

// bilinear samples img, gx and gy at (u, v), which must lie in [0, w−1) x [0, h−1).
func (lv *level) bilinear(u, v float64) (i, gx, gy float32) {
	x0, y0 := int(u), int(v)
	fx, fy := float32(u-float64(x0)), float32(v-float64(y0))
	a := y0*lv.w + x0
	b := a + lv.w
	w00, w01, w10, w11 := (1-fx)*(1-fy), fx*(1-fy), (1-fx)*fy, fx*fy
	s := func(m []float32) float32 { return w00*m[a] + w01*m[a+1] + w10*m[b] + w11*m[b+1] }
	return s(lv.gray), s(lv.gx), s(lv.gy)
}

// RefineResult is the outcome of Refine.
type RefineResult struct {
	// CurTRef is the refined transform from reference to current camera coordinates.
	CurTRef Pose
	// Covariance of the motion in the current camera frame, over (x, y, z, rx, ry, rz)
	// in m² and rad²: σ²·(JᵀWJ)⁻¹ at the finest level, σ² the weighted residual
	// variance. Pixel errors are correlated, so it is optimistic.
	Covariance [6][6]float64
	// Points is the number of reference points used at the finest level, Overlap the
	// fraction of them that project inside the current image.
	Points  int
	Overlap float64
	// RMS is the root mean square photometric residual at the end, in grey levels of
	// [0, 1].
	RMS float64
	// Iterations is the total number of Gauss-Newton steps taken.
	Iterations int
}

// ErrNoTexture is returned by Refine when the reference has too few usable points
// (a blank wall, no depth) or too few of them stay in view.
var ErrNoTexture = errors.New("odom: too few points to align")

// Refine minimises the photometric error between the reference frame's points and the
// current frame over the motion cur_T_ref, starting at init: Gauss-Newton with Huber
// weights from the coarsest pyramid level to the finest, with Levenberg-Marquardt
// damping when a step makes the error worse.
func Refine(ref, cur *Frame, init Pose, o RefineOptions) (RefineResult, error) {
	o = o.withDefaults()
	if len(ref.levels) != len(cur.levels) || len(ref.levels) == 0 {
		return RefineResult{}, fmt.Errorf("odom: reference and current frames have %d and %d pyramid levels", len(ref.levels), len(cur.levels))
	}
	if ref.levels[0].w != cur.levels[0].w || ref.levels[0].h != cur.levels[0].h {
		return RefineResult{}, fmt.Errorf("odom: reference %dx%d and current %dx%d differ in size", ref.levels[0].w, ref.levels[0].h, cur.levels[0].w, cur.levels[0].h)
	}
	T := init
	var res RefineResult
	for l := len(ref.levels) - 1; l >= 0; l-- {
		rl, cl := &ref.levels[l], &cur.levels[l]
		if len(rl.pts) < 20 {
			if l == 0 {
				return res, ErrNoTexture
			}
			continue
		}
		lambda := 0.0
		last := linearize(rl, cl, T, o.HuberDelta)
		for it := 0; it < o.Iterations; it++ {
			if last.n < 12 {
				return res, ErrNoTexture
			}
			h := last.h
			for i := range 6 {
				h[i][i] *= 1 + lambda
				h[i][i] += 1e-9
			}
			var neg [6]float64
			for i := range 6 {
				neg[i] = -last.g[i]
			}
			step, ok := solve6(h, neg)
			if !ok {
				break
			}
			next := Exp(step).Mul(T)
			cand := linearize(rl, cl, next, o.HuberDelta)
			res.Iterations++
			// Compare mean costs: points that leave the image must not look like
			// progress.
			if was, now := last.cost/float64(last.n), cand.cost/float64(cand.n); cand.n >= 12 && now <= was {
				T, last = next, cand
				lambda /= 4
				if lambda < 1e-6 {
					lambda = 0
				}
				if was-now < 1e-3*was {
					break // converged: less than 0.1 % better
				}
			} else {
				if lambda == 0 {
					lambda = 1e-3
				} else {
					lambda *= 8
				}
				if lambda > 1e4 {
					break
				}
				continue
			}
			if norm([3]float64{step[0], step[1], step[2]}) < 1e-4 && norm([3]float64{step[3], step[4], step[5]}) < 1e-5 {
				break
			}
		}
		if l == 0 {
			res.CurTRef = T
			res.Points = len(rl.pts)
			res.Overlap = float64(last.n) / float64(len(rl.pts))
			res.RMS = math.Sqrt(last.sq / float64(max(last.n, 1)))
			dof := float64(max(last.n-6, 1))
			sigma2 := last.wsq / dof
			inv, ok := invert6(last.h)
			if !ok {
				return res, fmt.Errorf("odom: the alignment is degenerate (no texture in some direction)")
			}
			for i := range 6 {
				for j := range 6 {
					res.Covariance[i][j] = sigma2 * inv[i][j]
				}
			}
		}
	}
	if !T.IsFinite() {
		return res, errors.New("odom: the alignment diverged")
	}
	return res, nil
}

// system is the Gauss-Newton normal equations of one linearisation.
type system struct {
	h    [6][6]float64
	g    [6]float64
	cost float64 // Σ Huber cost
	wsq  float64 // Σ w·r²
	sq   float64 // Σ r²
	n    int     // points inside the image
}

// linearize evaluates the residuals of the reference points under T and the normal
// equations for a left perturbation T ← Exp(ξ)·T, ξ = (v, ω), spreading the points
// over up to GOMAXPROCS goroutines (at least 1,000 points each).
func linearize(rl, cl *level, T Pose, delta float64) system {
	workers := min(runtime.GOMAXPROCS(0), len(rl.pts)/1000)
	if workers <= 1 {
		return linearizePoints(rl.pts, cl, T, delta)
	}
	parts := make([]system, workers)
	var wg sync.WaitGroup
	for i := range workers {
		pts := rl.pts[i*len(rl.pts)/workers : (i+1)*len(rl.pts)/workers]
		wg.Go(func() { parts[i] = linearizePoints(pts, cl, T, delta) })
	}
	wg.Wait()
	s := parts[0]
	for _, p := range parts[1:] {
		for a := range 6 {
			s.g[a] += p.g[a]
			for b := range 6 {
				s.h[a][b] += p.h[a][b]
			}
		}
		s.cost += p.cost
		s.wsq += p.wsq
		s.sq += p.sq
		s.n += p.n
	}
	return s
}

// linearizePoints is linearize over some of the reference points.
func linearizePoints(pts []refPoint, cl *level, T Pose, delta float64) system {
	var s system
	k := cl.k
	maxU, maxV := float64(cl.w-1)-1e-6, float64(cl.h-1)-1e-6
	for _, p := range pts {
		q := T.Apply(p.p)
		if q[2] < 1e-3 {
			continue
		}
		iz := 1 / q[2]
		u := k.fx*q[0]*iz + k.cx
		v := k.fy*q[1]*iz + k.cy
		if !(u >= 0 && u < maxU && v >= 0 && v < maxV) {
			continue
		}
		i, gx, gy := cl.bilinear(u, v)
		r := float64(i - p.i)
		w, c := 1.0, 0.5*r*r
		if a := math.Abs(r); a > delta {
			w = delta / a
			c = delta * (a - 0.5*delta)
		}
		// d(u, v)/dq, then dq/dξ = [I | −[q]×].
		du := [3]float64{k.fx * iz, 0, -k.fx * q[0] * iz * iz}
		dv := [3]float64{0, k.fy * iz, -k.fy * q[1] * iz * iz}
		var jq [3]float64
		for a := range 3 {
			jq[a] = float64(gx)*du[a] + float64(gy)*dv[a]
		}
		// jq·(−[q]× ω) = (q × jq)·ω
		jw := cross(q, jq)
		j := [6]float64{jq[0], jq[1], jq[2], jw[0], jw[1], jw[2]}
		for a := range 6 {
			wa := w * j[a]
			s.g[a] += wa * r
			for b := a; b < 6; b++ {
				s.h[a][b] += wa * j[b]
			}
		}
		s.cost += c
		s.wsq += w * r * r
		s.sq += r * r
		s.n++
	}
	for a := range 6 {
		for b := 0; b < a; b++ {
			s.h[a][b] = s.h[b][a]
		}
	}
	return s
}

// solve6 solves a·x = b by Gaussian elimination with partial pivoting.
func solve6(a [6][6]float64, b [6]float64) ([6]float64, bool) {
	for c := range 6 {
		p := c
		for r := c + 1; r < 6; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		if math.Abs(a[p][c]) < 1e-300 {
			return b, false
		}
		a[c], a[p] = a[p], a[c]
		b[c], b[p] = b[p], b[c]
		for r := c + 1; r < 6; r++ {
			f := a[r][c] / a[c][c]
			for k := c; k < 6; k++ {
				a[r][k] -= f * a[c][k]
			}
			b[r] -= f * b[c]
		}
	}
	var x [6]float64
	for r := 5; r >= 0; r-- {
		s := b[r]
		for k := r + 1; k < 6; k++ {
			s -= a[r][k] * x[k]
		}
		x[r] = s / a[r][r]
	}
	for _, v := range x {
		if !finite(v) {
			return x, false
		}
	}
	return x, true
}

// invert6 inverts a by solving for each column of the identity.
func invert6(a [6][6]float64) ([6][6]float64, bool) {
	var inv [6][6]float64
	for c := range 6 {
		var e [6]float64
		e[c] = 1
		x, ok := solve6(a, e)
		if !ok {
			return inv, false
		}
		for r := range 6 {
			inv[r][c] = x[r]
		}
	}
	return inv, true
}
