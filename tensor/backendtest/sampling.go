package backendtest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
)

// Sampling and the fused photometric loss: GridSample (the warp) and PhotometricMin
// (SSIM + L1 + per-pixel minimum), checked against the plain float64 references below,
// written the way monodepth2_ref.py states them: clamp, floor and blend for the
// bilinear border sampling; pad, 3x3 means and the SSIM formula for the loss.

func (s *suite) testSampling(t *testing.T) {
	t.Run("gridsample", s.testGridSample)
	t.Run("gridsample-backward", s.testGridSampleBackward)
	t.Run("photometricmin", s.testPhotometricMin)
	t.Run("photometricmin-backward", s.testPhotometricMinBackward)
	t.Run("photometricmin-ties", s.testPhotometricMinTies)
	t.Run("shape-errors", s.testSamplingShapeErrors)
}

// refGridSample samples src (n, c, hs, ws) at coords (n, 2, h, w), in float64.
func refGridSample(src []float64, n, c, hs, ws int, coords []float64, h, w int) []float64 {
	out := make([]float64, n*c*h*w)
	clampTo := func(v float64, size int) float64 { return math.Min(math.Max(v, 0), float64(size-1)) }
	for b := 0; b < n; b++ {
		for i := 0; i < h*w; i++ {
			x := clampTo(coords[(2*b)*h*w+i], ws)
			y := clampTo(coords[(2*b+1)*h*w+i], hs)
			x0, y0 := math.Floor(x), math.Floor(y)
			fx, fy := x-x0, y-y0
			ix0, iy0 := int(x0), int(y0)
			ix1, iy1 := min(ix0+1, ws-1), min(iy0+1, hs-1)
			for ch := 0; ch < c; ch++ {
				p := src[(b*c+ch)*hs*ws:]
				out[(b*c+ch)*h*w+i] = (1-fx)*(1-fy)*p[iy0*ws+ix0] + fx*(1-fy)*p[iy0*ws+ix1] +
					(1-fx)*fy*p[iy1*ws+ix0] + fx*fy*p[iy1*ws+ix1]
			}
		}
	}
	return out
}

// sampleCoords returns n values on an axis of size pixels, a mix of the interesting
// places: inside, exactly on pixel centres and on the border, just inside and just
// outside the border, and far outside.
func sampleCoords(r *rand.Rand, n, size int) []float64 {
	v := make([]float64, n)
	hi := float64(size - 1)
	for i := range v {
		switch r.IntN(6) {
		case 0, 1:
			v[i] = hi * r.Float64()
		case 2:
			v[i] = float64(r.IntN(size))
		case 3:
			v[i] = []float64{0, hi}[r.IntN(2)]
		case 4:
			v[i] = []float64{0, hi}[r.IntN(2)] + 0.3*(2*r.Float64()-1)
		default:
			v[i] = []float64{-3 * r.Float64(), hi + 3*r.Float64()}[r.IntN(2)]
		}
	}
	return v
}

// smoothCoords returns n values on an axis of size pixels where the sampling is
// differentiable: inside and outside the image but at least 0.02 away from every
// integer (pixel centres, and the border where the clamp starts).
func smoothCoords(r *rand.Rand, n, size int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(r.IntN(size+4)-2) + 0.02 + 0.96*r.Float64()
	}
	return v
}

type gridCase struct{ n, c, hs, ws, h, w int }

var gridCases = []gridCase{
	{1, 1, 4, 4, 4, 4},
	{2, 3, 5, 7, 4, 6},
	{1, 2, 6, 3, 7, 9},
	{2, 3, 1, 6, 3, 3},
	{1, 2, 5, 1, 2, 5},
	{1, 1, 1, 1, 2, 2},
}

// coordsFor draws coords (n, 2, h, w) for src of hs x ws pixels with gen.
func coordsFor(r *rand.Rand, gc gridCase, gen func(*rand.Rand, int, int) []float64) []float64 {
	hw := gc.h * gc.w
	v := make([]float64, 0, gc.n*2*hw)
	for b := 0; b < gc.n; b++ {
		v = append(v, gen(r, hw, gc.ws)...)
		v = append(v, gen(r, hw, gc.hs)...)
	}
	return v
}

func (s *suite) testGridSample(t *testing.T) {
	r := s.rng(t)
	for _, gc := range gridCases {
		src := uniform(r, gc.n*gc.c*gc.hs*gc.ws, 0, 1)
		coords := coordsFor(r, gc, sampleCoords)
		y, err := s.b.GridSample(s.put(t, src, gc.n, gc.c, gc.hs, gc.ws), s.put(t, coords, gc.n, 2, gc.h, gc.w))
		if err != nil {
			t.Fatalf("GridSample %+v: %v", gc, err)
		}
		want := refGridSample(rounded(src), gc.n, gc.c, gc.hs, gc.ws, rounded(coords), gc.h, gc.w)
		close(t, "GridSample", s.get(t, "gridsample", y, gc.n, gc.c, gc.h, gc.w), want, s.tol.Forward)
	}
}

func (s *suite) testGridSampleBackward(t *testing.T) {
	r := s.rng(t)
	for _, gc := range gridCases {
		src := rounded(uniform(r, gc.n*gc.c*gc.hs*gc.ws, 0, 1))
		coords := rounded(coordsFor(r, gc, smoothCoords))
		dy := rounded(randn(r, gc.n*gc.c*gc.h*gc.w))
		st, ct := s.put(t, src, gc.n, gc.c, gc.hs, gc.ws), s.put(t, coords, gc.n, 2, gc.h, gc.w)
		dyt := s.put(t, dy, gc.n, gc.c, gc.h, gc.w)
		ds, dc, err := s.b.GridSampleBackward(st, ct, dyt, true, true)
		if err != nil {
			t.Fatalf("GridSampleBackward %+v: %v", gc, err)
		}
		s.checkGrad(t, "GridSample dsrc", s.get(t, "dsrc", ds, gc.n, gc.c, gc.hs, gc.ws),
			func(v []float64) []float64 { return refGridSample(v, gc.n, gc.c, gc.hs, gc.ws, coords, gc.h, gc.w) }, src, dy)
		s.checkGrad(t, "GridSample dcoords", s.get(t, "dcoords", dc, gc.n, 2, gc.h, gc.w),
			func(v []float64) []float64 { return refGridSample(src, gc.n, gc.c, gc.hs, gc.ws, v, gc.h, gc.w) }, coords, dy)
		// Each gradient alone, and none.
		if ds, dc, err := s.b.GridSampleBackward(st, ct, dyt, true, false); err != nil || ds == nil || dc != nil {
			t.Errorf("GridSampleBackward(needSrc only): dsrc %v, dcoords %v, err %v", ds, dc, err)
		}
		if ds, dc, err := s.b.GridSampleBackward(st, ct, dyt, false, true); err != nil || ds != nil || dc == nil {
			t.Errorf("GridSampleBackward(needCoords only): dsrc %v, dcoords %v, err %v", ds, dc, err)
		}
	}
}

// refPhotometric returns the photometric error (n, 1, h, w) of candidate x against
// target y, both (n, c, h, w), in float64, as monodepth2_ref.photometric computes it.
func refPhotometric(y, x []float64, n, c, h, w int) []float64 {
	const c1, c2 = 0.01 * 0.01, 0.03 * 0.03
	refl := func(i, size int) int {
		if i < 0 {
			return -i
		}
		if i >= size {
			return 2*(size-1) - i
		}
		return i
	}
	out := make([]float64, n*h*w)
	for b := 0; b < n; b++ {
		for ch := 0; ch < c; ch++ {
			xp, yp := x[(b*c+ch)*h*w:], y[(b*c+ch)*h*w:]
			for i := 0; i < h; i++ {
				for j := 0; j < w; j++ {
					var mx, my, mxx, myy, mxy float64
					for di := -1; di <= 1; di++ {
						for dj := -1; dj <= 1; dj++ {
							k := refl(i+di, h)*w + refl(j+dj, w)
							mx += xp[k] / 9
							my += yp[k] / 9
							mxx += xp[k] * xp[k] / 9
							myy += yp[k] * yp[k] / 9
							mxy += xp[k] * yp[k] / 9
						}
					}
					sxx, syy, sxy := mxx-mx*mx, myy-my*my, mxy-mx*my
					ssim := (2*mx*my + c1) * (2*sxy + c2) / ((mx*mx + my*my + c1) * (sxx + syy + c2))
					d := math.Min(math.Max((1-ssim)/2, 0), 1)
					k := i*w + j
					out[b*h*w+k] += (0.85*d + 0.15*math.Abs(yp[k]-xp[k])) / float64(c)
				}
			}
		}
	}
	return out
}

// refPhotometricMin returns every candidate's error plus its offset (nil: none), the
// per-pixel minimum and the first candidate reaching it.
func refPhotometricMin(y []float64, xs [][]float64, offset []float64, n, c, h, w int) (errs [][]float64, minErr []float64, argmin []int) {
	hw := h * w
	k := len(xs)
	errs = make([][]float64, k)
	for i, x := range xs {
		errs[i] = refPhotometric(y, x, n, c, h, w)
		if offset != nil {
			for b := 0; b < n; b++ {
				for p := 0; p < hw; p++ {
					errs[i][b*hw+p] += offset[(b*k+i)*hw+p]
				}
			}
		}
	}
	minErr = append([]float64(nil), errs[0]...)
	argmin = make([]int, n*hw)
	for i := 1; i < k; i++ {
		for p, v := range errs[i] {
			if v < minErr[p] {
				minErr[p], argmin[p] = v, i
			}
		}
	}
	return errs, minErr, argmin
}

type photoCase struct {
	n, c, h, w, k int
	offset        bool
}

// photoImages draws a target in [0.05, 0.95] and k candidates: odd ones independent,
// even ones the target plus noise that keeps at least 0.002 away from it (so the L1
// term never sits on its kink), as warped frames near the target look.
func photoImages(r *rand.Rand, pc photoCase) (y []float64, xs [][]float64) {
	size := pc.n * pc.c * pc.h * pc.w
	y = rounded(uniform(r, size, 0.05, 0.95))
	xs = make([][]float64, pc.k)
	for i := range xs {
		if i%2 == 1 {
			xs[i] = rounded(uniform(r, size, 0, 1))
			continue
		}
		x := make([]float64, size)
		for j := range x {
			d := 0.002 + 0.05*math.Abs(r.NormFloat64())
			if r.IntN(2) == 0 {
				d = -d
			}
			x[j] = math.Min(math.Max(y[j]+d, 0), 1)
		}
		xs[i] = rounded(x)
	}
	return y, xs
}

func (s *suite) putAll(t *testing.T, xs [][]float64, shape ...int) []*tensor.Tensor {
	t.Helper()
	ts := make([]*tensor.Tensor, len(xs))
	for i, x := range xs {
		ts[i] = s.put(t, x, shape...)
	}
	return ts
}

func (s *suite) testPhotometricMin(t *testing.T) {
	r := s.rng(t)
	cases := []photoCase{
		{1, 1, 2, 2, 1, false},
		{2, 3, 5, 7, 3, true},
		{1, 3, 4, 3, 6, true},
		{2, 2, 3, 8, 2, false},
		{1, 3, 9, 11, 4, true},
		{1, 3, 2, 5, 5, false},
		{2, 3, 12, 16, 6, true},
	}
	for _, pc := range cases {
		y, xs := photoImages(r, pc)
		var off []float64
		var offT *tensor.Tensor
		if pc.offset {
			// Offsets of the size of the errors, so that they change the winners.
			off = rounded(uniform(r, pc.n*pc.k*pc.h*pc.w, -0.1, 0.1))
			offT = s.put(t, off, pc.n, pc.k, pc.h, pc.w)
		}
		minE, argmin, err := s.b.PhotometricMin(s.put(t, y, pc.n, pc.c, pc.h, pc.w), s.putAll(t, xs, pc.n, pc.c, pc.h, pc.w), offT)
		if err != nil {
			t.Fatalf("PhotometricMin %+v: %v", pc, err)
		}
		_, want, _ := refPhotometricMin(y, xs, off, pc.n, pc.c, pc.h, pc.w)
		close(t, "PhotometricMin", s.get(t, "minErr", minE, pc.n, 1, pc.h, pc.w), want, s.tol.Forward)
		// Int32 tensors need not come back to the host: the backward tests check
		// argmin through the gradients it routes.
		if argmin == nil || argmin.DType != tensor.Int32 || !argmin.Shape.Equal(tensor.Shape{pc.n, 1, pc.h, pc.w}) {
			t.Errorf("PhotometricMin %+v: argmin %v, want int32[%d 1 %d %d]", pc, argmin, pc.n, pc.h, pc.w)
		}
	}
}

// separateWinners sets offsets so that a random candidate wins every pixel by at
// least 0.02: then no finite-difference step can change the winner.
func separateWinners(r *rand.Rand, errs [][]float64, n, k, hw int) []float64 {
	off := make([]float64, n*k*hw)
	for b := 0; b < n; b++ {
		for p := 0; p < hw; p++ {
			win := r.IntN(k)
			base := r.Float64()
			for i := 0; i < k; i++ {
				o := base - errs[i][b*hw+p]
				if i != win {
					o += 0.02 + 0.1*r.Float64()
				}
				off[(b*k+i)*hw+p] = o
			}
		}
	}
	return rounded(off)
}

// minMargin is the smallest gap, over pixels, between the best and the second best
// candidate.
func minMargin(errs [][]float64, minErr []float64, argmin []int) float64 {
	m := math.Inf(1)
	for i, e := range errs {
		for p, v := range e {
			if i != argmin[p] {
				m = math.Min(m, v-minErr[p])
			}
		}
	}
	return m
}

func (s *suite) testPhotometricMinBackward(t *testing.T) {
	r := s.rng(t)
	cases := []photoCase{
		{1, 1, 2, 2, 1, false},
		{1, 3, 4, 5, 3, true},
		{2, 1, 2, 3, 2, false},
		{1, 2, 3, 3, 2, false},
		{1, 3, 5, 4, 6, true},
		{2, 2, 3, 6, 4, true},
	}
	for _, pc := range cases {
		hw := pc.h * pc.w
		var y []float64
		var xs [][]float64
		var off []float64
		if pc.offset {
			y, xs = photoImages(r, pc)
			errs, _, _ := refPhotometricMin(y, xs, nil, pc.n, pc.c, pc.h, pc.w)
			off = separateWinners(r, errs, pc.n, pc.k, hw)
		} else {
			// Without offsets the winners are whatever the images make them: draw
			// until every pixel's winner leads by more than a step can change.
			for try := 0; ; try++ {
				y, xs = photoImages(r, pc)
				errs, minE, am := refPhotometricMin(y, xs, nil, pc.n, pc.c, pc.h, pc.w)
				if pc.k == 1 || minMargin(errs, minE, am) > 1e-3 {
					break
				}
				if try == 100 {
					t.Fatalf("%+v: no images with distinct winners in 100 draws", pc)
				}
			}
		}
		var offT *tensor.Tensor
		if off != nil {
			offT = s.put(t, off, pc.n, pc.k, pc.h, pc.w)
		}
		shape := []int{pc.n, pc.c, pc.h, pc.w}
		yt, xts := s.put(t, y, shape...), s.putAll(t, xs, shape...)
		_, argmin, err := s.b.PhotometricMin(yt, xts, offT)
		if err != nil {
			t.Fatalf("PhotometricMin %+v: %v", pc, err)
		}
		dMin := rounded(randn(r, pc.n*hw))
		need := make([]bool, pc.k)
		for i := range need {
			need[i] = i == 0 || r.IntN(4) != 0
		}
		grads, err := s.b.PhotometricMinBackward(yt, xts, argmin, s.put(t, dMin, pc.n, 1, pc.h, pc.w), need)
		if err != nil {
			t.Fatalf("PhotometricMinBackward %+v: %v", pc, err)
		}
		if len(grads) != pc.k {
			t.Fatalf("PhotometricMinBackward %+v: %d gradients, want %d", pc, len(grads), pc.k)
		}
		for i := range xs {
			if !need[i] {
				if grads[i] != nil {
					t.Errorf("PhotometricMinBackward %+v: candidate %d not needed but got a gradient", pc, i)
				}
				continue
			}
			ref := func(v []float64) []float64 {
				vs := append([][]float64(nil), xs...)
				vs[i] = v
				_, m, _ := refPhotometricMin(y, vs, off, pc.n, pc.c, pc.h, pc.w)
				return m
			}
			s.checkGrad(t, "PhotometricMin dcandidate", s.get(t, "dcandidate", grads[i], shape...), ref, xs[i], dMin)
		}
	}
}

// testPhotometricMinTies checks that the first of equal candidates wins: of two
// copies of one image only the first receives a gradient.
func (s *suite) testPhotometricMinTies(t *testing.T) {
	r := s.rng(t)
	pc := photoCase{2, 3, 4, 6, 3, false}
	var y []float64
	var xs [][]float64
	for try := 0; ; try++ {
		y, xs = photoImages(r, pc)
		xs[2] = xs[0]
		errs, minE, am := refPhotometricMin(y, xs[:2], nil, pc.n, pc.c, pc.h, pc.w)
		if minMargin(errs, minE, am) > 1e-3 {
			break
		}
		if try == 100 {
			t.Fatalf("%+v: no images with distinct winners in 100 draws", pc)
		}
	}
	shape := []int{pc.n, pc.c, pc.h, pc.w}
	yt, xts := s.put(t, y, shape...), s.putAll(t, xs, shape...)
	_, argmin, err := s.b.PhotometricMin(yt, xts, nil)
	if err != nil {
		t.Fatal(err)
	}
	dMin := rounded(randn(r, pc.n*pc.h*pc.w))
	grads, err := s.b.PhotometricMinBackward(yt, xts, argmin, s.put(t, dMin, pc.n, 1, pc.h, pc.w), []bool{true, true, true})
	if err != nil {
		t.Fatal(err)
	}
	close(t, "PhotometricMin tie: gradient of the second copy", s.get(t, "dcandidate2", grads[2], shape...), make([]float64, len(y)), 0)
	// The first copy gets the gradient of the minimum with the duplicate removed.
	ref := func(v []float64) []float64 {
		_, m, _ := refPhotometricMin(y, [][]float64{v, xs[1]}, nil, pc.n, pc.c, pc.h, pc.w)
		return m
	}
	s.checkGrad(t, "PhotometricMin tie: gradient of the first copy", s.get(t, "dcandidate0", grads[0], shape...), ref, xs[0], dMin)
}

func (s *suite) testSamplingShapeErrors(t *testing.T) {
	f := func(shape ...int) *tensor.Tensor {
		x, err := s.b.Zeros(tensor.Float32, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	i32 := func(shape ...int) *tensor.Tensor {
		x, err := s.b.Zeros(tensor.Int32, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	_, err := s.b.GridSample(f(2, 3, 4, 4), f(2, 3, 4, 4))
	wantShapeError(t, "gridsample", err)
	_, err = s.b.GridSample(f(2, 3, 4, 4), f(1, 2, 4, 4))
	wantShapeError(t, "gridsample", err)
	_, err = s.b.GridSample(f(3, 4, 4), f(1, 2, 4, 4))
	wantShapeError(t, "gridsample", err)
	_, _, err = s.b.GridSampleBackward(f(2, 3, 4, 4), f(2, 2, 5, 5), f(2, 3, 4, 4), true, true)
	wantShapeError(t, "gridsample", err)

	img := func() *tensor.Tensor { return f(2, 3, 4, 5) }
	_, _, err = s.b.PhotometricMin(img(), []*tensor.Tensor{img(), f(2, 3, 5, 4)}, nil)
	wantShapeError(t, "photometricmin", err)
	_, _, err = s.b.PhotometricMin(img(), []*tensor.Tensor{img(), img()}, f(2, 3, 4, 5))
	wantShapeError(t, "photometricmin", err)
	_, _, err = s.b.PhotometricMin(img(), nil, nil)
	wantShapeError(t, "photometricmin", err)
	_, _, err = s.b.PhotometricMin(f(2, 3, 1, 5), []*tensor.Tensor{f(2, 3, 1, 5)}, nil)
	wantShapeError(t, "photometricmin", err)
	_, _, err = s.b.PhotometricMin(f(3, 4, 5), []*tensor.Tensor{f(3, 4, 5)}, nil)
	wantShapeError(t, "photometricmin", err)
	_, err = s.b.PhotometricMinBackward(img(), []*tensor.Tensor{img()}, i32(2, 1, 4, 5), f(2, 1, 5, 4), []bool{true})
	wantShapeError(t, "photometricmin", err)
	_, err = s.b.PhotometricMinBackward(img(), []*tensor.Tensor{img()}, i32(2, 3, 4, 5), f(2, 1, 4, 5), []bool{true})
	wantShapeError(t, "photometricmin", err)
	_, err = s.b.PhotometricMinBackward(img(), []*tensor.Tensor{img(), f(2, 3, 4, 4)}, i32(2, 1, 4, 5), f(2, 1, 4, 5), []bool{true, true})
	wantShapeError(t, "photometricmin", err)
}
