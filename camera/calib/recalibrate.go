package calib

// Targetless re-estimation of a stereo rig's extrinsic rotation: the work behind the
// `recalibrate` field command. A rig that took a knock keeps its lenses (K, D) and, to
// within millimetres, its baseline, but a camera turning in its mount by a fraction of
// a degree is enough to push matching points off the same rectified row; block matchers
// search one row only, so depth degrades long before anyone sees it in the images. Here
// the rotation is re-estimated from ordinary feature matches pooled over many frames,
// with no chessboard.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/calib3d"
	"github.com/edgedepth/edgedepth/internal/atomicfile"
)

// FramePair is one left/right pair of images taken at the same time: raw (as the
// cameras deliver them) for EstimateRotation, rectified for VerticalDisparity.
type FramePair struct {
	Left, Right camera.Image
}

// Stats summarise the vertical disparity |y_left − y_right| of feature matches between
// rectified images, in pixels: 0 for a perfectly rectified rig, whatever the scene.
type Stats struct {
	Median, P90 float64
	// Matches is how many matches the figures are over.
	Matches int
}

func (s Stats) String() string {
	return fmt.Sprintf("median %.3f px, p90 %.3f px over %d matches", s.Median, s.P90, s.Matches)
}

// ErrTooFewMatches is wrapped by the errors of VerticalDisparity and EstimateRotation
// when the images do not give enough reliable feature matches (blank walls, darkness,
// a covered lens) to say anything.
var ErrTooFewMatches = errors.New("too few feature matches")

// MinRecalibrationMatches is the fewest pooled matches EstimateRotation works with, and
// the fewest RANSAC inliers it accepts. Three parameters need three matches in theory;
// far more are needed before the weakly observed one (the yaw of one camera relative
// to the other, seen only through keystone distortion near the image corners) is
// pinned down.
const MinRecalibrationMatches = 50

// Feature matching parameters. ORB finds repeatable corners fast on a robot's CPU;
// its keypoints come at integer pixels of a pyramid level, far too coarse to measure
// a fraction of a pixel of vertical disparity, so every match is then refined by
// normalised cross-correlation of a patch (see refineMatch).
const (
	orbFeatures      = 3000
	orbFastThreshold = 10
	// ratioTest is Lowe's ratio: a match is kept when its descriptor distance is below
	// this fraction of the second-best one, i.e. when it is not ambiguous.
	ratioTest = 0.8
	// patchHalf is the half-size of the correlation patch (11x11 pixels).
	patchHalf = 5
	// searchRadius is how far, in pixels, refinement looks around the ORB position of
	// the right keypoint: ORB positions at coarse pyramid levels are off by a pixel or
	// two.
	searchRadius = 3
	// minNCC is the correlation a refined match must reach: below it the two patches
	// are not the same surface (a wrong match, or an occlusion boundary).
	minNCC = 0.85
	// minPatchStdDev (grey levels) rejects flat patches, whose correlation peak is
	// too broad to place to a fraction of a pixel.
	minPatchStdDev = 2.0
)

// match is one refined correspondence, in pixels: the left point is a pixel centre,
// the right one sub-pixel.
type match struct {
	xl, yl, xr, yr float64
}

// greyImage is an 8-bit RGB image converted to float luma for correlation.
type greyImage struct {
	w, h int
	pix  []float32
}

// matcher detects ORB features and matches them between two images. It owns OpenCV
// objects: close it.
type matcher struct {
	orb gocv.ORB
	bf  gocv.BFMatcher
}

func newMatcher() *matcher {
	return &matcher{
		orb: gocv.NewORBWithParams(orbFeatures, 1.2, 8, 31, 0, 2, gocv.ORBScoreTypeHarris, 31, orbFastThreshold),
		bf:  gocv.NewBFMatcherWithParams(gocv.NormHamming, false),
	}
}

func (m *matcher) close() {
	_ = m.orb.Close()
	_ = m.bf.Close()
}

// features returns the keypoints and descriptors of an image (the caller closes the
// descriptors), and the image as float luma for refinement.
func (m *matcher) features(img camera.Image) ([]gocv.KeyPoint, gocv.Mat, greyImage, error) {
	w, h := img.Width, img.Height
	if w <= 0 || h <= 0 || len(img.Pix) != 3*w*h {
		return nil, gocv.Mat{}, greyImage{}, fmt.Errorf("image is %dx%d with %d bytes, want packed RGB", w, h, len(img.Pix))
	}
	// The grey image is made in OpenCV's memory and filled from Go: a Mat over a Go
	// buffer (gocv.NewMatFromBytes) would leave C++ holding a pointer into Go memory.
	mat := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC1)
	defer mat.Close()
	buf, err := mat.DataPtrUint8()
	if err != nil {
		return nil, gocv.Mat{}, greyImage{}, err
	}
	g := greyImage{w: w, h: h, pix: make([]float32, w*h)}
	for i := range g.pix {
		p := img.Pix[3*i : 3*i+3 : 3*i+3]
		// BT.601 luma, in 8.8 fixed point, as the depth pipeline computes it.
		v := byte((77*uint32(p[0]) + 150*uint32(p[1]) + 29*uint32(p[2]) + 128) >> 8)
		buf[i] = v
		g.pix[i] = float32(v)
	}
	noMask := gocv.NewMat()
	defer noMask.Close()
	kps, desc := m.orb.DetectAndCompute(mat, noMask)
	return kps, desc, g, nil
}

// match finds refined correspondences between left and right: mutual nearest
// neighbours in descriptor space that pass the ratio test, each refined by
// correlation. It works on raw and rectified pairs alike: nothing here assumes the
// matches lie on one row.
func (m *matcher) match(left, right camera.Image) ([]match, error) {
	kl, dl, gl, err := m.features(left)
	if err != nil {
		return nil, fmt.Errorf("left: %w", err)
	}
	defer dl.Close()
	kr, dr, gr, err := m.features(right)
	if err != nil {
		return nil, fmt.Errorf("right: %w", err)
	}
	defer dr.Close()
	if len(kl) < 2 || len(kr) < 2 || dl.Empty() || dr.Empty() {
		return nil, nil
	}
	fwd := m.bf.KnnMatch(dl, dr, 2)
	// Best right-to-left match of every right keypoint, for the mutual check: a
	// correspondence both sides agree on is far less often a repeated texture.
	bwd := m.bf.KnnMatch(dr, dl, 1)
	back := make([]int, len(kr))
	for i := range back {
		back[i] = -1
	}
	for _, ms := range bwd {
		if len(ms) > 0 && ms[0].QueryIdx >= 0 && ms[0].QueryIdx < len(back) {
			back[ms[0].QueryIdx] = ms[0].TrainIdx
		}
	}
	var out []match
	for _, ms := range fwd {
		if len(ms) < 2 || ms[0].Distance >= ratioTest*ms[1].Distance {
			continue
		}
		q, t := ms[0].QueryIdx, ms[0].TrainIdx
		if q < 0 || q >= len(kl) || t < 0 || t >= len(kr) || back[t] != q {
			continue
		}
		if mt, ok := refineMatch(gl, gr, kl[q].X, kl[q].Y, kr[t].X, kr[t].Y); ok {
			out = append(out, mt)
		}
	}
	return out, nil
}

// refineMatch places the right point of a match to a fraction of a pixel: the
// (2·patchHalf+1)² patch around the left keypoint (rounded to a pixel) is correlated
// (zero-mean NCC) with the right image at every pixel within searchRadius of the right
// keypoint, and a parabola through the peak and its neighbours, in x and in y apart,
// gives the sub-pixel offset. A match whose patch is flat, whose peak is weak or lies
// on the edge of the search window is dropped.
func refineMatch(gl, gr greyImage, xl, yl, xr, yr float64) (match, bool) {
	cxl, cyl := int(math.Round(xl)), int(math.Round(yl))
	cxr, cyr := int(math.Round(xr)), int(math.Round(yr))
	const n = 2*patchHalf + 1
	if cxl < patchHalf || cyl < patchHalf || cxl+patchHalf >= gl.w || cyl+patchHalf >= gl.h {
		return match{}, false
	}
	r := patchHalf + searchRadius
	if cxr < r || cyr < r || cxr+r >= gr.w || cyr+r >= gr.h {
		return match{}, false
	}
	var tpl [n * n]float64
	var mean float64
	for j := range n {
		row := gl.pix[(cyl-patchHalf+j)*gl.w+cxl-patchHalf:]
		for i := range n {
			tpl[j*n+i] = float64(row[i])
			mean += float64(row[i])
		}
	}
	mean /= n * n
	var tss float64
	for i := range tpl {
		tpl[i] -= mean
		tss += tpl[i] * tpl[i]
	}
	if math.Sqrt(tss/(n*n)) < minPatchStdDev {
		return match{}, false
	}
	const s = 2*searchRadius + 1
	var score [s * s]float64
	best, bi, bj := math.Inf(-1), 0, 0
	for dj := range s {
		for di := range s {
			x0, y0 := cxr-searchRadius+di-patchHalf, cyr-searchRadius+dj-patchHalf
			var sum, sum2, cross float64
			for j := range n {
				row := gr.pix[(y0+j)*gr.w+x0:]
				for i := range n {
					v := float64(row[i])
					sum += v
					sum2 += v * v
					cross += v * tpl[j*n+i]
				}
			}
			// Σ(v−v̄)(t−t̄) = Σ v·(t−t̄), since Σ(t−t̄) = 0.
			vss := sum2 - sum*sum/(n*n)
			c := 0.0
			if vss > 0 {
				c = cross / math.Sqrt(vss*tss)
			}
			score[dj*s+di] = c
			if c > best {
				best, bi, bj = c, di, dj
			}
		}
	}
	if best < minNCC || bi == 0 || bj == 0 || bi == s-1 || bj == s-1 {
		return match{}, false
	}
	ox := parabolaPeak(score[bj*s+bi-1], best, score[bj*s+bi+1])
	oy := parabolaPeak(score[(bj-1)*s+bi], best, score[(bj+1)*s+bi])
	return match{
		xl: float64(cxl), yl: float64(cyl),
		xr: float64(cxr-searchRadius+bi) + ox, yr: float64(cyr-searchRadius+bj) + oy,
	}, true
}

// parabolaPeak is the offset, in (−0.5, 0.5) for a true peak b, of the vertex of the
// parabola through (−1, a), (0, b), (1, c).
func parabolaPeak(a, b, c float64) float64 {
	d := a - 2*b + c
	if d >= 0 {
		return 0
	}
	return math.Max(-0.5, math.Min(0.5, 0.5*(a-c)/d))
}

// VerticalDisparity measures how well pairs are rectified: the median and 90th
// percentile of |y_left − y_right| over the feature matches of all pairs, which must be
// rectified. A well calibrated rig gives a median of a tenth of a pixel or so; block
// matchers degrade from about half a pixel. Matches whose rectified disparity is
// negative (the point would lie behind the cameras) are wrong and not counted.
func VerticalDisparity(pairs []FramePair) (Stats, error) {
	m := newMatcher()
	defer m.close()
	var dys []float64
	for k, p := range pairs {
		ms, err := m.match(p.Left, p.Right)
		if err != nil {
			return Stats{}, fmt.Errorf("calib: vertical disparity: pair %d: %w", k, err)
		}
		for _, mt := range ms {
			if mt.xl-mt.xr < -1 {
				continue
			}
			dys = append(dys, math.Abs(mt.yl-mt.yr))
		}
	}
	if len(dys) == 0 {
		return Stats{}, fmt.Errorf("calib: vertical disparity: no feature matches in %d pairs: %w", len(pairs), ErrTooFewMatches)
	}
	return stats(dys), nil
}

func stats(v []float64) Stats {
	slices.Sort(v)
	return Stats{Median: quantile(v, 0.5), P90: quantile(v, 0.9), Matches: len(v)}
}

// quantile of sorted v, interpolating linearly between order statistics.
func quantile(v []float64, q float64) float64 {
	if len(v) == 1 {
		return v[0]
	}
	f := q * float64(len(v)-1)
	i := int(f)
	if i >= len(v)-1 {
		return v[len(v)-1]
	}
	return v[i] + (f-float64(i))*(v[i+1]-v[i])
}

// RotationEstimate is what EstimateRotation found.
type RotationEstimate struct {
	// Corrected is the calibration with the re-estimated rotation; K, D and the
	// position of the right camera are those of the input.
	Corrected Stereo
	// Before and After are the vertical disparity of the pairs rectified with the
	// input calibration and with Corrected, measured on the rectified images.
	Before, After Stats
	// Better is After.Median < Before.Median: the rule for applying Corrected. A
	// correction that does not lower the median vertical disparity measured on real
	// rectified images is not worth replacing a calibration for, whatever the fit
	// says.
	Better bool
	// Delta is the correction as a rotation vector (axis times angle, radians) in the
	// right camera's frame; DeltaDeg its angle in degrees.
	Delta    [3]float64
	DeltaDeg float64
	// Matches is how many raw matches were pooled, Inliers how many fit the corrected
	// rotation within RecalibrationInlierPx.
	Matches, Inliers int
}

// RecalibrationInlierPx is the RANSAC inlier threshold: the rectified vertical
// residual, in pixels, up to which a match counts as consistent with a rotation.
const RecalibrationInlierPx = 1.0

// Limits on the work EstimateRotation does; both are far above what the problem
// needs and only bound the time a pathological input can take.
const (
	maxPooledMatches = 6000
	maxRANSACIters   = 500
	ransacSample     = 5
)

// EstimateRotation re-estimates the relative rotation of a stereo rig from raw
// (unrectified) pairs of size images, without a calibration target.
//
// Model: the right camera has turned in its mount about its optical centre by a small
// rotation δR, so the calibration becomes R' = δR·R, T' = δR·T (the right camera's
// centre, −Rᵀ·T in the left frame, and the baseline do not move; K and D are kept).
// Only the three parameters of δR are estimated: the translation direction is not
// observable better than the mechanics keep it, and the scale never is without a
// target.
//
// Method: features are matched in every raw pair and refined to sub-pixel; the
// matches are undistorted and normalised with each camera's K and D, and pooled over
// all pairs (many frames see many depths and image regions, which is what separates
// the three rotation axes). For a candidate δR, the rectifying rotations of (R', T')
// are computed as cv::stereoRectify does, and the residual of a match is the
// difference of its rectified rows in pixels. RANSAC draws minimal sets of matches,
// fits δR to each by Levenberg–Marquardt with a numerical Jacobian and scores it by the
// truncated squared residual (MSAC, threshold RecalibrationInlierPx); the best
// hypothesis is refined on its inliers with a Huber-weighted Levenberg–Marquardt.
//
// Before and After are then measured on the pairs rectified with the input and the
// corrected calibration. The caller applies Corrected only when Better (After.Median
// < Before.Median). An error wrapping ErrTooFewMatches means the pairs do not show
// enough texture; nothing was estimated.
func EstimateRotation(s Stereo, size ImageSize, pairs []FramePair) (RotationEstimate, error) {
	if err := s.Validate(); err != nil {
		return RotationEstimate{}, err
	}
	if size != s.Size {
		return RotationEstimate{}, fmt.Errorf("calib: recalibrate: images are %v but the calibration was made at %v: %w",
			size, s.Size, ErrSizeMismatch)
	}
	for k, p := range pairs {
		for _, im := range []camera.Image{p.Left, p.Right} {
			if im.Width != size.Width || im.Height != size.Height {
				return RotationEstimate{}, fmt.Errorf("calib: recalibrate: pair %d has a %dx%d image, want %v: %w",
					k, im.Width, im.Height, size, ErrSizeMismatch)
			}
		}
	}

	m := newMatcher()
	defer m.close()
	var raw []match
	for k, p := range pairs {
		ms, err := m.match(p.Left, p.Right)
		if err != nil {
			return RotationEstimate{}, fmt.Errorf("calib: recalibrate: pair %d: %w", k, err)
		}
		raw = append(raw, ms...)
	}
	if len(raw) < MinRecalibrationMatches {
		return RotationEstimate{}, fmt.Errorf("calib: recalibrate: %d feature matches in %d pairs, need at least %d: %w",
			len(raw), len(pairs), MinRecalibrationMatches, ErrTooFewMatches)
	}
	// A fixed seed: the same frames give the same calibration, which a field
	// command's report should.
	rng := rand.New(rand.NewPCG(0x5eed, uint64(len(raw))))
	if len(raw) > maxPooledMatches {
		rng.Shuffle(len(raw), func(i, j int) { raw[i], raw[j] = raw[j], raw[i] })
		raw = raw[:maxPooledMatches]
	}

	prob, err := newRotationProblem(s, raw)
	if err != nil {
		return RotationEstimate{}, fmt.Errorf("calib: recalibrate: %w", err)
	}
	delta, inliers := prob.ransac(rng)
	if len(inliers) < MinRecalibrationMatches {
		return RotationEstimate{}, fmt.Errorf("calib: recalibrate: only %d of %d matches agree on a rotation, need %d: %w",
			len(inliers), len(raw), MinRecalibrationMatches, ErrTooFewMatches)
	}

	res := RotationEstimate{
		Corrected: s.rotateRight(delta),
		Delta:     delta,
		DeltaDeg:  norm3(delta) * 180 / math.Pi,
		Matches:   len(raw),
		Inliers:   len(inliers),
	}
	if res.Before, err = rectifiedDisparity(s, pairs); err != nil {
		return RotationEstimate{}, fmt.Errorf("calib: recalibrate: before: %w", err)
	}
	if res.After, err = rectifiedDisparity(res.Corrected, pairs); err != nil {
		return RotationEstimate{}, fmt.Errorf("calib: recalibrate: after: %w", err)
	}
	res.Better = res.After.Median < res.Before.Median
	return res, nil
}

// rotateRight returns s with its right camera turned by the rotation vector delta
// about its optical centre (see EstimateRotation).
func (s Stereo) rotateRight(delta [3]float64) Stereo {
	d := rodrigues(delta)
	out := s
	out.D1 = slices.Clone(s.D1)
	out.D2 = slices.Clone(s.D2)
	out.R = mul3(d, s.R)
	out.T = mulVec3(d, s.T)
	return out
}

// rectifiedDisparity rectifies pairs with s and measures their vertical disparity.
func rectifiedDisparity(s Stereo, pairs []FramePair) (Stats, error) {
	r, err := NewRectifier(s, s.Size, Options{})
	if err != nil {
		return Stats{}, err
	}
	defer r.Close()
	rect := make([]FramePair, len(pairs))
	for i, p := range pairs {
		l, rt, err := r.Rectify(p.Left, p.Right)
		if err != nil {
			return Stats{}, err
		}
		rect[i] = FramePair{l, rt}
	}
	return VerticalDisparity(rect)
}

// rotationProblem holds the normalised matches and evaluates the rectified vertical
// residuals of a candidate correction.
type rotationProblem struct {
	s Stereo
	// x1, x2 are the undistorted rays (x, y, 1) of each match in the left and right
	// camera frames.
	x1, x2 [][3]float64
	// f converts normalised rectified rows to pixels: the residual threshold is
	// in pixels.
	f float64
}

func newRotationProblem(s Stereo, ms []match) (*rotationProblem, error) {
	p1 := make([]gocv.Point2f, len(ms))
	p2 := make([]gocv.Point2f, len(ms))
	for i, m := range ms {
		p1[i] = gocv.Point2f{X: float32(m.xl), Y: float32(m.yl)}
		p2[i] = gocv.Point2f{X: float32(m.xr), Y: float32(m.yr)}
	}
	n1, err := calib3d.UndistortPoints(p1, s.K1, s.D1, nil)
	if err != nil {
		return nil, err
	}
	n2, err := calib3d.UndistortPoints(p2, s.K2, s.D2, nil)
	if err != nil {
		return nil, err
	}
	p := &rotationProblem{s: s, f: (s.K1[4] + s.K2[4]) / 2,
		x1: make([][3]float64, len(ms)), x2: make([][3]float64, len(ms))}
	for i := range ms {
		p.x1[i] = [3]float64{float64(n1[i].X), float64(n1[i].Y), 1}
		p.x2[i] = [3]float64{float64(n2[i].X), float64(n2[i].Y), 1}
	}
	return p, nil
}

// residuals writes, for the matches idx (all when nil), the difference in pixels of
// their rows after rectifying with the calibration corrected by delta.
func (p *rotationProblem) residuals(delta [3]float64, idx []int, out []float64) []float64 {
	c := p.s.rotateRight(delta)
	r1, r2 := rectifyingRotations(c.R, c.T)
	out = out[:0]
	one := func(i int) {
		a, b := mulVec3(r1, p.x1[i]), mulVec3(r2, p.x2[i])
		out = append(out, p.f*(a[1]/a[2]-b[1]/b[2]))
	}
	if idx == nil {
		for i := range p.x1 {
			one(i)
		}
	} else {
		for _, i := range idx {
			one(i)
		}
	}
	return out
}

// ransac returns the best correction and the indices of its inliers.
func (p *rotationProblem) ransac(rng *rand.Rand) ([3]float64, []int) {
	n := len(p.x1)
	const th2 = RecalibrationInlierPx * RecalibrationInlierPx
	var best [3]float64
	bestCost := math.Inf(1)
	var res []float64
	sample := make([]int, ransacSample)
	need := maxRANSACIters
	for it := 0; it < need && it < maxRANSACIters; it++ {
		for k := 0; k < len(sample); { // ransacSample distinct matches
			if c := rng.IntN(n); !slices.Contains(sample[:k], c) {
				sample[k] = c
				k++
			}
		}
		// Start from no correction: the knocks this is for are a degree or less,
		// well inside the basin of Levenberg–Marquardt.
		d := p.levenbergMarquardt([3]float64{}, sample, 10, math.Inf(1))
		res = p.residuals(d, nil, res)
		cost, inl := 0.0, 0
		for _, r := range res {
			if r*r < th2 {
				cost += r * r
				inl++
			} else {
				cost += th2
			}
		}
		if cost < bestCost {
			bestCost, best = cost, d
			// Adaptive stop: enough draws that one all-inlier sample had a 99.9 %
			// chance, with a floor so an early lucky guess is not the last word.
			w := math.Pow(float64(inl)/float64(n), ransacSample)
			if w > 0 && w < 1 {
				need = max(50, int(math.Ceil(math.Log(1-0.999)/math.Log(1-w))))
			} else if w >= 1 {
				need = 50
			}
		}
	}
	// Refine on the inliers, twice: the refined rotation may admit matches the
	// hypothesis from five matches rejected, and drop a few it accepted.
	var inliers []int
	for range 3 {
		res = p.residuals(best, nil, res)
		inliers = inliers[:0]
		for i, r := range res {
			if r*r < th2 {
				inliers = append(inliers, i)
			}
		}
		if len(inliers) < ransacSample {
			break
		}
		best = p.levenbergMarquardt(best, inliers, 50, 0.5)
	}
	return best, inliers
}

// levenbergMarquardt minimises Σ ρ(residual) over idx from start, with ρ quadratic
// (huber = +Inf) or Huber's with that threshold in pixels, by iteratively reweighted
// damped Gauss–Newton steps on a central-difference Jacobian (3 parameters: six
// residual evaluations a step).
func (p *rotationProblem) levenbergMarquardt(start [3]float64, idx []int, iters int, huber float64) [3]float64 {
	const h = 1e-6 // radians: well above rounding, far below any curvature
	cost := func(d [3]float64, buf []float64) float64 {
		var c float64
		for _, r := range p.residuals(d, idx, buf) {
			a := math.Abs(r)
			if a <= huber {
				c += 0.5 * r * r
			} else {
				c += huber * (a - 0.5*huber)
			}
		}
		return c
	}
	m := len(idx)
	r := make([]float64, 0, m)
	rp := make([]float64, 0, m)
	rm := make([]float64, 0, m)
	var jac [3][]float64
	for k := range jac {
		jac[k] = make([]float64, m)
	}
	d := start
	cur := cost(d, r)
	lambda := 1e-3
	for range iters {
		r = p.residuals(d, idx, r)
		for k := range 3 {
			dp, dm := d, d
			dp[k] += h
			dm[k] -= h
			rp = p.residuals(dp, idx, rp)
			rm = p.residuals(dm, idx, rm)
			for i := range m {
				jac[k][i] = (rp[i] - rm[i]) / (2 * h)
			}
		}
		// Normal equations with IRLS weights: Huber's weight is min(1, k/|r|).
		var a [9]float64
		var g [3]float64
		for i := range m {
			w := 1.0
			if ar := math.Abs(r[i]); ar > huber {
				w = huber / ar
			}
			for k := range 3 {
				g[k] += w * jac[k][i] * r[i]
				for l := range 3 {
					a[3*k+l] += w * jac[k][i] * jac[l][i]
				}
			}
		}
		improved := false
		for range 10 {
			damped := a
			for k := range 3 {
				damped[4*k] += lambda*a[4*k] + 1e-12
			}
			step, ok := solve3(damped, [3]float64{-g[0], -g[1], -g[2]})
			if !ok {
				lambda *= 10
				continue
			}
			cand := [3]float64{d[0] + step[0], d[1] + step[1], d[2] + step[2]}
			if c := cost(cand, rp); c < cur {
				d, cur = cand, c
				lambda = math.Max(lambda/10, 1e-9)
				improved = true
				if norm3(step) < 1e-10 {
					return d
				}
				break
			}
			lambda *= 10
		}
		if !improved {
			break
		}
	}
	return d
}

// solve3 solves a·x = b for a 3x3 row-major a by Cramer's rule; ok is false when a is
// singular.
func solve3(a [9]float64, b [3]float64) ([3]float64, bool) {
	det := det3(a)
	if det == 0 || math.IsNaN(det) {
		return [3]float64{}, false
	}
	var x [3]float64
	for k := range 3 {
		m := a
		for i := range 3 {
			m[3*i+k] = b[i]
		}
		x[k] = det3(m) / det
	}
	return x, true
}

func norm3(v [3]float64) float64 { return math.Sqrt(v[0]*v[0] + v[1]*v[1] + v[2]*v[2]) }

// rectifyingRotations are the R1, R2 of cv::stereoRectify (Bouguet's method) for a rig
// with X2 = r·X1 + t: each camera turns by half the relative rotation, so that both
// look the same way, then both turn together so that the baseline becomes their x
// axis. Only the rotations matter for the vertical residual; the rectified camera
// matrices add the same focal length and principal point to both rows.
func rectifyingRotations(r [9]float64, t [3]float64) (r1, r2 [9]float64) {
	om := rotationVector(r)
	half := rodrigues([3]float64{-om[0] / 2, -om[1] / 2, -om[2] / 2})
	tt := mulVec3(half, t)
	// The axis the baseline is turned onto: x for a horizontal rig (the only kind
	// NewRectifier accepts), with the sign of the baseline's own x.
	idx := 0
	if math.Abs(tt[0]) <= math.Abs(tt[1]) {
		idx = 1
	}
	var uu [3]float64
	c := tt[idx]
	if c > 0 {
		uu[idx] = 1
	} else {
		uu[idx] = -1
	}
	ww := [3]float64{tt[1]*uu[2] - tt[2]*uu[1], tt[2]*uu[0] - tt[0]*uu[2], tt[0]*uu[1] - tt[1]*uu[0]}
	if nw := norm3(ww); nw > 0 {
		a := math.Acos(math.Min(1, math.Abs(c)/norm3(tt))) / nw
		ww = [3]float64{ww[0] * a, ww[1] * a, ww[2] * a}
	}
	wr := rodrigues(ww)
	return mul3(wr, transpose3(half)), mul3(wr, half)
}

// rotationVector is the inverse of rodrigues: the axis times the angle of rotation r.
func rotationVector(r [9]float64) [3]float64 {
	c := (r[0] + r[4] + r[8] - 1) / 2
	c = math.Max(-1, math.Min(1, c))
	theta := math.Acos(c)
	v := [3]float64{r[7] - r[5], r[2] - r[6], r[3] - r[1]} // 2·sinθ·axis
	s := math.Sin(theta)
	switch {
	case theta < 1e-8:
		// θ ≈ sinθ: half the antisymmetric part is the vector itself.
		return [3]float64{v[0] / 2, v[1] / 2, v[2] / 2}
	case math.Pi-theta < 1e-4:
		// Near a half turn the antisymmetric part vanishes: the axis comes from the
		// symmetric part, r = 2·a·aᵀ − I (plus terms in π − θ), its sign from v.
		a := [3]float64{
			math.Sqrt(math.Max(0, (r[0]+1)/2)),
			math.Sqrt(math.Max(0, (r[4]+1)/2)),
			math.Sqrt(math.Max(0, (r[8]+1)/2)),
		}
		// Signs relative to the largest component, from the off-diagonal terms.
		switch k := maxIndex(a); k {
		case 0:
			a[1], a[2] = math.Copysign(a[1], r[1]), math.Copysign(a[2], r[2])
		case 1:
			a[0], a[2] = math.Copysign(a[0], r[1]), math.Copysign(a[2], r[5])
		default:
			a[0], a[1] = math.Copysign(a[0], r[2]), math.Copysign(a[1], r[5])
		}
		if a[0]*v[0]+a[1]*v[1]+a[2]*v[2] < 0 {
			a = [3]float64{-a[0], -a[1], -a[2]}
		}
		n := norm3(a)
		return [3]float64{a[0] / n * theta, a[1] / n * theta, a[2] / n * theta}
	default:
		k := theta / (2 * s)
		return [3]float64{v[0] * k, v[1] * k, v[2] * k}
	}
}

func maxIndex(a [3]float64) int {
	k := 0
	for i := 1; i < 3; i++ {
		if a[i] > a[k] {
			k = i
		}
	}
	return k
}

// SaveWithBackup replaces the calibration file at path with s, keeping the old file as
// path.YYYYMMDD-HHMMSS.bak (local time; -2, -3... appended when that name is taken) and
// returning that name, or "" when there was no old file. The new file is written to a
// temporary file in the same directory, synced, renamed over path and the directory
// synced: a crash or power cut leaves either the old calibration or the new one, never
// a torn file a robot would fail to start with. The backup is complete and synced
// before the old file is replaced.
func SaveWithBackup(path string, s Stereo) (backupPath string, err error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	mode := os.FileMode(0o644)
	old, err := os.Open(path)
	switch {
	case err == nil:
		defer old.Close()
		st, err := old.Stat()
		if err != nil {
			return "", fmt.Errorf("calib: save: %w", err)
		}
		if !st.Mode().IsRegular() {
			return "", fmt.Errorf("calib: save: %s is not a regular file", path)
		}
		mode = st.Mode().Perm()
		if backupPath, err = backup(old, path, mode); err != nil {
			return "", fmt.Errorf("calib: save: backup of %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return "", fmt.Errorf("calib: save: %w", err)
	}

	if err := atomicfile.Write(path, mode, func(w io.Writer) error { return WriteOpenCVYAML(w, s) }); err != nil {
		return backupPath, fmt.Errorf("calib: save: %w", err)
	}
	return backupPath, nil
}

// backup copies old to a new, never existing, timestamped file next to path and syncs
// it (and the directory, so the backup's name survives a crash too).
func backup(old *os.File, path string, mode os.FileMode) (string, error) {
	base := path + "." + time.Now().Format("20060102-150405")
	for k := 1; ; k++ {
		name := base + ".bak"
		if k > 1 {
			name = fmt.Sprintf("%s-%d.bak", base, k)
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, os.ErrExist) && k < 100 {
			continue
		}
		if err != nil {
			return "", err
		}
		_, err = io.Copy(f, old)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = syncDir(filepath.Dir(path))
		}
		if err != nil {
			_ = os.Remove(name)
			return "", err
		}
		return name, nil
	}
}

// syncDir makes a directory's entries (a new file's name) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
