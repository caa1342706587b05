package cpu

import (
	"fmt"
	"math"

	"github.com/edgedepth/edgedepth/tensor"
)

// The fused photometric minimum of Monodepth2's loss. Per pixel and candidate k:
//
//	e_k = 0.85 * mean_c clamp((1 - SSIM_c)/2, 0, 1) + 0.15 * mean_c |target_c - x_k,c| + offset_k
//
// with SSIM over the 3x3 window of the reflection-padded images, and the minimum over
// k. Unfused, this is the bulk of a training step (padding, five pooled statistics and a
// dozen element-wise temporaries per candidate and scale). Here the forward pass streams
// over output rows: for each row it forms the 3x3 box sums it needs from the three
// image rows the windows cover, vertically then horizontally in row-sized buffers, and
// keeps only one error row per candidate. Nothing image-sized is allocated besides the
// outputs.
//
// The windows are box sums of the reflection-padded image: padded row -1 is row 1 and
// padded row H is row H-2 (likewise for columns), so images need at least 2 rows and
// columns, as PyTorch's reflection padding does.
//
// The dissimilarity is not computed as (1 - SSIM)/2 but without that subtraction.
// With SSIM = AB/(DE),
//
//	A = 2μxμy + C1   B = 2σxy + C2   D = μx² + μy² + C1   E = σx² + σy² + C2,
//
// D - A = (μx - μy)² = P and E - B = var(x - y) = Q, so
//
//	(1 - SSIM)/2 = (A·Q + P·E) / (2·D·E)
//
// with P and Q taken from box sums of d = x - y. For a candidate close to the target
// (the case that matters: a good warp) SSIM is close to 1 and 1 - SSIM loses most of its
// digits; this form keeps them, as every term is a non-negative product.
//
// The window statistics are summed in float64: the variances are differences of
// nearly equal moments (σx² = E[x²] - μx², about 1e-3 against 0.5 for a flat patch of a
// bright image), and in float32 that cancellation left errors of 1e-5 relative in such
// windows. Go does not vectorise, so float64 arithmetic costs no more than float32 here.

const (
	ssimC1     = 0.01 * 0.01
	ssimC2     = 0.03 * 0.03
	ssimWeight = 0.85
	l1Weight   = 0.15
)

// reflect1 maps index i in [-1, n] of a 1-pixel reflection-padded axis to [0, n).
func reflect1(i, n int) int {
	switch {
	case i < 0:
		return 1
	case i >= n:
		return n - 2
	}
	return i
}

// dissim is clamp((1 - SSIM)/2, 0, 1) of one window from the box sums of x, x²,
// d = x - y and d², and the target's μy, μy² + C1 and σy² + C2 (targetRow).
func dissim(sx, sxx, sd, sdd, my, d0, e0 float64) float64 {
	mx, md := sx*(1.0/9), sd*(1.0/9)
	p := md * md
	a := 2*mx*my + ssimC1
	e := sxx*(1.0/9) - mx*mx + e0
	v := (a*(sdd*(1.0/9)-p) + p*e) / (2 * (mx*mx + d0) * e)
	// Plain comparisons: the min and max builtins also order NaNs and signed zeros,
	// which made the whole kernel measurably slower.
	if v < 0 {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// targetRow converts the target's image rows ya, yb, yc (above, at and below one
// output row, reflected) to float64 into ya64, yb64, yc64, and fills the window
// statistics that every candidate shares: μy, μy² + C1 and σy² + C2. vy and vyy are
// scratch.
func targetRow(my, d0, e0, ya64, yb64, yc64, vy, vyy []float64, ya, yb, yc []float32) {
	w := len(my)
	d0, e0, ya64, yb64, yc64, vy, vyy = d0[:w], e0[:w], ya64[:w], yb64[:w], yc64[:w], vy[:w], vyy[:w]
	ya, yb, yc = ya[:w], yb[:w], yc[:w]
	for j := range vy {
		a, b, c := float64(ya[j]), float64(yb[j]), float64(yc[j])
		ya64[j], yb64[j], yc64[j] = a, b, c
		vy[j] = a + b + c
		vyy[j] = a*a + b*b + c*c
	}
	for j := range my {
		// Column -1 reflects to 1 and column w to w-2.
		l, r := j-1, j+1
		if j == 0 {
			l = 1
		}
		if j == w-1 {
			r = w - 2
		}
		m := (vy[l] + vy[j] + vy[r]) * (1.0 / 9)
		my[j] = m
		d0[j] = m*m + ssimC1
		e0[j] = (vyy[l]+vyy[j]+vyy[r])*(1.0/9) - m*m + ssimC2
	}
}

// photoRow adds one channel's weighted photometric error of one candidate row to e.
// xa, xb, xc and ya, yb, yc are the candidate's and the target's image rows above, at
// and below the output row (reflected); my, d0, e0 come from targetRow; the v slices
// are scratch.
func photoRow(e []float64, xa, xb, xc []float32, ya, yb, yc, my, d0, e0, vx, vxx, vd, vdd []float64, ws, wl float64) {
	w := len(e)
	xa, xb, xc, ya, yb, yc = xa[:w], xb[:w], xc[:w], ya[:w], yb[:w], yc[:w]
	vx, vxx, vd, vdd, my, d0, e0 = vx[:w], vxx[:w], vd[:w], vdd[:w], my[:w], d0[:w], e0[:w]
	// Vertical sums. The products of float32 values are exact in float64, and the
	// sums nearly so, which the variances (differences of nearly equal moments)
	// need.
	for j := range vx {
		a, b, c := float64(xa[j]), float64(xb[j]), float64(xc[j])
		da, db, dc := a-ya[j], b-yb[j], c-yc[j]
		vx[j] = a + b + c
		vxx[j] = a*a + b*b + c*c
		vd[j] = da + db + dc
		vdd[j] = da*da + db*db + dc*dc
	}
	// Horizontal sums and the error; column -1 reflects to 1 and column w to w-2.
	e[0] += ws*dissim(vx[0]+2*vx[1], vxx[0]+2*vxx[1], vd[0]+2*vd[1], vdd[0]+2*vdd[1], my[0], d0[0], e0[0]) + wl*math.Abs(float64(xb[0])-yb[0])
	for j := 1; j < w-1; j++ {
		sx := vx[j-1] + vx[j] + vx[j+1]
		sxx := vxx[j-1] + vxx[j] + vxx[j+1]
		sd := vd[j-1] + vd[j] + vd[j+1]
		sdd := vdd[j-1] + vdd[j] + vdd[j+1]
		e[j] += ws*dissim(sx, sxx, sd, sdd, my[j], d0[j], e0[j]) + wl*math.Abs(float64(xb[j])-yb[j])
	}
	k := w - 1
	e[k] += ws*dissim(vx[k]+2*vx[k-1], vxx[k]+2*vxx[k-1], vd[k]+2*vd[k-1], vdd[k]+2*vdd[k-1], my[k], d0[k], e0[k]) + wl*math.Abs(float64(xb[k])-yb[k])
}

// rowWorkers is how many goroutines a row-streaming loss kernel uses for work units
// of the given size (about one flop each): small inputs run inline.
func (b *Backend) rowWorkers(work int) int {
	const perWorker = 1 << 16
	return max(1, min(b.threads, work/perWorker))
}

// PhotometricMin implements tensor.Backend.
func (b *Backend) PhotometricMin(target *tensor.Tensor, candidates []*tensor.Tensor, offset *tensor.Tensor) (minErr, argmin *tensor.Tensor, err error) {
	const op = "photometricmin"
	if err := tensor.PhotometricMinCheck(target, candidates, offset); err != nil {
		return nil, nil, err
	}
	n, c, h, w := target.Shape[0], target.Shape[1], target.Shape[2], target.Shape[3]
	nk := len(candidates)
	var off []float32
	if offset != nil {
		off = f32(offset)
	}
	minErr, argmin = newF(tensor.Shape{n, 1, h, w}), newI(tensor.Shape{n, 1, h, w})
	y, me, am := f32(target), f32(minErr), i32(argmin)
	xs := make([][]float32, nk)
	for k, x := range candidates {
		xs[k] = f32(x)
	}
	hw := h * w
	ws, wl := ssimWeight/float64(c), l1Weight/float64(c)
	b.parallelN(n*h, b.rowWorkers(n*h*w*c*nk*40), func(lo, hi int) {
		// Row buffers: the target's rows and window statistics (shared by every
		// candidate), scratch for the vertical sums, and one error row per
		// candidate.
		buf := make([]float64, (10+nk)*w)
		row := func(i int) []float64 { return buf[i*w : (i+1)*w] }
		my, d0, e0, ya, yb, yc := row(0), row(1), row(2), row(3), row(4), row(5)
		vx, vxx, vd, vdd := row(6), row(7), row(8), row(9)
		errs := buf[10*w:]
		for r := lo; r < hi; r++ {
			bi, i := r/h, r%h
			ia, ic := reflect1(i-1, h)*w, reflect1(i+1, h)*w
			ib := i * w
			clear(errs)
			for ch := 0; ch < c; ch++ {
				pl := (bi*c + ch) * hw
				yp := y[pl : pl+hw]
				targetRow(my, d0, e0, ya, yb, yc, vx, vxx, yp[ia:ia+w], yp[ib:ib+w], yp[ic:ic+w])
				for k, x := range xs {
					xp := x[pl : pl+hw]
					photoRow(errs[k*w:(k+1)*w], xp[ia:ia+w], xp[ib:ib+w], xp[ic:ic+w], ya, yb, yc, my, d0, e0, vx, vxx, vd, vdd, ws, wl)
				}
			}
			if off != nil {
				for k := 0; k < nk; k++ {
					o := off[(bi*nk+k)*hw+ib : (bi*nk+k)*hw+ib+w]
					e := errs[k*w : (k+1)*w]
					for j := range e {
						e[j] += float64(o[j])
					}
				}
			}
			// The first minimum wins ties: later candidates must be strictly smaller.
			mrow, arow := me[bi*hw+ib:bi*hw+ib+w], am[bi*hw+ib:bi*hw+ib+w]
			best := errs[:w]
			clear(arow)
			for k := 1; k < nk; k++ {
				e := errs[k*w : (k+1)*w]
				for j, v := range e {
					if v < best[j] {
						best[j], arow[j] = v, int32(k)
					}
				}
			}
			for j, v := range best {
				mrow[j] = float32(v)
			}
		}
	})
	return minErr, argmin, nil
}

// PhotometricMinBackward implements tensor.Backend. It returns no gradient for the
// target: in Monodepth2's loss the target is an input frame, never a parameter's
// function. Offsets are constants too (auto-masking noise), so they get none either.
//
// The gradient of a pixel's error with respect to the candidate pixels of its window
// is, per channel, linear in the candidate value and the difference d = x - y there:
//
//	d e(q) / d x(p) = a(q) + b(q)·d(p) + c(q)·x(p)   for each window position of q that is p
//
// plus the L1 term at q = p. With v = (A·Q + P·E)/(2·D·E) (see the top of this file),
// μd = μx - μy, u = 1/(2·D·E), and up to the factor dMin(q)·0.85/C·2/9 (the 2/9 is
// shared by the derivatives of all box statistics):
//
//	a = u·(μy·Q - A·μd + μd·E - P·μx) + v·μx·(1/E - 1/D)   b = u·A   c = u·P - v/E
//
// The kernel streams over gradient rows p: it computes a, b, c for the winning
// candidate of each pixel of rows p-1, p, p+1 (a ring of three coefficient rows), and
// scatters each pixel's coefficients into the gradient of its winner along row p.
// Reflection makes some pixels appear twice in a window (row 1 in the window of row 0,
// for example); the row multiplicity and the scatter to reflected columns count those
// twice, as the padded forward does.
func (b *Backend) PhotometricMinBackward(target *tensor.Tensor, candidates []*tensor.Tensor, argmin, dMin *tensor.Tensor, need []bool) ([]*tensor.Tensor, error) {
	const op = "photometricmin backward"
	if err := tensor.PhotometricMinBackwardCheck(target, candidates, argmin, dMin, need); err != nil {
		return nil, err
	}
	n, c, h, w := target.Shape[0], target.Shape[1], target.Shape[2], target.Shape[3]
	nk := len(candidates)
	am, dm, y := i32(argmin), f32(dMin), f32(target)
	for i, k := range am {
		if k < 0 || int(k) >= nk {
			return nil, fmt.Errorf("%s: argmin[%d] = %d is not a candidate index in [0, %d)", op, i, k, nk)
		}
	}
	grads := make([]*tensor.Tensor, nk)
	gs := make([][]float32, nk)
	xs := make([][]float32, nk)
	anyNeed := false
	for k, x := range candidates {
		xs[k] = f32(x)
		if need[k] {
			grads[k] = newF(target.Shape)
			gs[k] = f32(grads[k])
			anyNeed = true
		}
	}
	if !anyNeed || n == 0 {
		return grads, nil
	}
	hw := h * w
	wl := float32(l1Weight) / float32(c)
	// The channel weight and the 2/9 common to every coefficient fold into one scale.
	gScale := ssimWeight / float64(c) * 2 / 9
	b.parallelN(n*h, b.rowWorkers(n*h*w*c*120), func(lo, hi int) {
		// Ring of coefficient rows: the row at flat row index r (= image*h + row)
		// sits in slot r%3, laid out [channel][a|b|c][column].
		ring := make([]float32, 3*c*3*w)
		tags := [3]int{-1, -1, -1}
		coefRow := func(r int) []float32 {
			s := r % 3
			row := ring[s*3*c*w : (s+1)*3*c*w]
			if tags[s] == r {
				return row
			}
			tags[s] = r
			bi, q := r/h, r%h
			qa, qb, qc := reflect1(q-1, h)*w, q*w, reflect1(q+1, h)*w
			amr, dmr := am[bi*hw+qb:bi*hw+qb+w], dm[bi*hw+qb:bi*hw+qb+w]
			for ch := 0; ch < c; ch++ {
				pl := (bi*c + ch) * hw
				yp := y[pl : pl+hw]
				ca, cb, cc := row[3*ch*w:(3*ch+1)*w], row[(3*ch+1)*w:(3*ch+2)*w], row[(3*ch+2)*w:(3*ch+3)*w]
				for j := 0; j < w; j++ {
					k, g := amr[j], dmr[j]
					if !need[k] || g == 0 {
						ca[j], cb[j], cc[j] = 0, 0, 0
						continue
					}
					xp := xs[k][pl : pl+hw]
					jl, jr := reflect1(j-1, w), reflect1(j+1, w)
					// The window statistics in float64, as in the forward pass.
					var sx, sy, sxx, syy, sd, sdd float64
					for _, rr := range [3]int{qa, qb, qc} {
						for _, jj := range [3]int{jl, j, jr} {
							xv, yv := float64(xp[rr+jj]), float64(yp[rr+jj])
							dv := xv - yv
							sx += xv
							sy += yv
							sxx += xv * xv
							syy += yv * yv
							sd += dv
							sdd += dv * dv
						}
					}
					mx, my, md := sx/9, sy/9, sd/9
					A := 2*mx*my + ssimC1
					D := mx*mx + my*my + ssimC1
					P := md * md
					Q := sdd/9 - P
					E := sxx/9 - mx*mx + syy/9 - my*my + ssimC2
					u := 1 / (2 * D * E)
					v := (A*Q + P*E) * u
					// PyTorch's clamp passes the gradient where min <= v <= max.
					if !(v >= 0 && v <= 1) {
						ca[j], cb[j], cc[j] = 0, 0, 0
						continue
					}
					// One division: 1/E = 2D·u and 1/D = 2E·u.
					G := float64(g) * gScale
					invE, invD := 2*D*u, 2*E*u
					ca[j] = float32(G * (u*(my*Q-A*md+md*E-P*mx) + v*mx*(invE-invD)))
					cb[j] = float32(G * u * A)
					cc[j] = float32(G * (u*P - v*invE))
				}
			}
			return row
		}
		for r := lo; r < hi; r++ {
			bi, p := r/h, r%h
			pw := p * w
			for dq := -1; dq <= 1; dq++ {
				q := p + dq
				if q < 0 || q >= h {
					continue
				}
				// How often row p appears in the (reflected) window of row q.
				m := float32(1)
				if (p == 1 && q == 0) || (p == h-2 && q == h-1) {
					m = 2
				}
				coef := coefRow(bi*h + q)
				amr := am[bi*hw+q*w : bi*hw+q*w+w]
				for ch := 0; ch < c; ch++ {
					pl := (bi*c + ch) * hw
					yr := y[pl+pw : pl+pw+w]
					ca, cb, cc := coef[3*ch*w:(3*ch+1)*w], coef[(3*ch+1)*w:(3*ch+2)*w], coef[(3*ch+2)*w:(3*ch+3)*w]
					for j := 0; j < w; j++ {
						k := amr[j]
						if gs[k] == nil {
							continue
						}
						a, bb, cv := m*ca[j], m*cb[j], m*cc[j]
						if a == 0 && bb == 0 && cv == 0 {
							continue
						}
						dst := gs[k][pl+pw : pl+pw+w]
						xr := xs[k][pl+pw : pl+pw+w]
						jl, jr := reflect1(j-1, w), reflect1(j+1, w)
						dst[jl] += a + (xr[jl]-yr[jl])*bb + xr[jl]*cv
						dst[j] += a + (xr[j]-yr[j])*bb + xr[j]*cv
						dst[jr] += a + (xr[jr]-yr[jr])*bb + xr[jr]*cv
					}
				}
			}
			// The L1 term: only the pixel itself, d|y - x|/dx = sign(x - y) (0 at 0).
			amr, dmr := am[bi*hw+pw:bi*hw+pw+w], dm[bi*hw+pw:bi*hw+pw+w]
			for ch := 0; ch < c; ch++ {
				pl := (bi*c + ch) * hw
				yr := y[pl+pw : pl+pw+w]
				for j := 0; j < w; j++ {
					k := amr[j]
					if gs[k] == nil {
						continue
					}
					g := dmr[j] * wl
					switch d := xs[k][pl+pw+j] - yr[j]; {
					case d > 0:
						gs[k][pl+pw+j] += g
					case d < 0:
						gs[k][pl+pw+j] -= g
					}
				}
			}
		}
	})
	return grads, nil
}
