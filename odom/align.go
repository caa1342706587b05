package odom

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Errors of Align and EvaluateTrajectory; match them with errors.Is.
var (
	// ErrTooFewPoints: Align needs at least 3 point pairs, EvaluateTrajectory 2 frames.
	ErrTooFewPoints = errors.New("odom: too few points")
	// ErrDegenerate: the points do not fix the transform (all points of one set coincide,
	// or the two sets are uncorrelated).
	ErrDegenerate = errors.New("odom: degenerate point set")
)

// Alignment is a similarity transform: a point p maps to Scale·R·p + T. With Scale 1 it
// is a rigid transform (SE(3)). T is in the target's units (metres of the ground truth).
type Alignment struct {
	R     [3][3]float64
	T     [3]float64
	Scale float64
}

// Apply maps the point p: Scale·R·p + T.
func (a Alignment) Apply(p [3]float64) [3]float64 {
	q := matVec(a.R, p)
	return [3]float64{a.Scale*q[0] + a.T[0], a.Scale*q[1] + a.T[1], a.Scale*q[2] + a.T[2]}
}

// ApplyPose maps the pose p (a world_T_camera in the source world) into the target
// world: the rotation becomes R·p.R and the position Apply(p.T). The camera's own frame
// is not rescaled, so the result is a rigid pose again.
func (a Alignment) ApplyPose(p Pose) Pose {
	return Pose{R: matMul(a.R, p.R), T: a.Apply(p.T)}
}

// Align returns the transform that best maps the points est onto gt in the least-squares
// sense, minimising Σ|gt[i] − (Scale·R·est[i] + T)|²: Umeyama's closed form (IEEE PAMI
// 13(4), 1991). Without withScale, Scale is 1 and the transform is rigid (SE(3));
// with it, the similarity (Sim(3)) is returned. R is always a proper rotation (det +1):
// where the unconstrained optimum would be a reflection, the sign correction of Umeyama
// picks the best proper rotation instead.
//
// Degenerate inputs, decided as follows:
//   - fewer than 3 pairs, or lengths that differ: an error (ErrTooFewPoints);
//   - all est points, or all gt points, at one place (spread below 1e-12 of their
//     magnitude): ErrDegenerate, since neither rotation nor scale is defined;
//   - collinear points (a straight-line trajectory): the rotation about the line is
//     not determined by the data. Align does not fail, since the residuals and the
//     aligned positions of collinear est points are the same for every choice; it
//     returns the smallest rotation that takes the est line's direction onto the gt
//     line's direction.
//   - non-finite coordinates: an error.
func Align(est, gt [][3]float64, withScale bool) (Alignment, error) {
	if len(est) != len(gt) {
		return Alignment{}, fmt.Errorf("odom: align: %d estimated points, %d ground-truth points", len(est), len(gt))
	}
	if len(est) < 3 {
		return Alignment{}, fmt.Errorf("odom: align: %d point pairs, need 3: %w", len(est), ErrTooFewPoints)
	}
	for i := range est {
		if !finite3(est[i]) || !finite3(gt[i]) {
			return Alignment{}, fmt.Errorf("odom: align: point %d is not finite (est %v, gt %v)", i, est[i], gt[i])
		}
	}
	a, err := umeyama(est, gt, withScale)
	if err != nil {
		return Alignment{}, fmt.Errorf("odom: align: %w", err)
	}
	return a, nil
}

// umeyama solves the alignment for n >= 1 finite pairs of equal count.
func umeyama(est, gt [][3]float64, withScale bool) (Alignment, error) {
	n := float64(len(est))
	var mx, my [3]float64
	for i := range est {
		mx = add(mx, est[i])
		my = add(my, gt[i])
	}
	for k := range 3 {
		mx[k] /= n
		my[k] /= n
	}
	// Variances and the cross-covariance Σ = 1/n Σ (gt−μy)(est−μx)ᵀ.
	var vx, vy, mag2x, mag2y float64
	var cov [3][3]float64
	for i := range est {
		dx, dy := sub(est[i], mx), sub(gt[i], my)
		vx += dot(dx, dx)
		vy += dot(dy, dy)
		mag2x = max(mag2x, dot(est[i], est[i]))
		mag2y = max(mag2y, dot(gt[i], gt[i]))
		for r := range 3 {
			for c := range 3 {
				cov[r][c] += dy[r] * dx[c]
			}
		}
	}
	vx /= n
	vy /= n
	for r := range 3 {
		for c := range 3 {
			cov[r][c] /= n
		}
	}
	if !(vx > 1e-24*mag2x) {
		return Alignment{}, fmt.Errorf("estimated points all coincide: %w", ErrDegenerate)
	}
	if !(vy > 1e-24*mag2y) {
		return Alignment{}, fmt.Errorf("ground-truth points all coincide: %w", ErrDegenerate)
	}

	var svd mat.SVD
	if !svd.Factorize(mat.NewDense(3, 3, []float64{
		cov[0][0], cov[0][1], cov[0][2],
		cov[1][0], cov[1][1], cov[1][2],
		cov[2][0], cov[2][1], cov[2][2],
	}), mat.SVDFull) {
		return Alignment{}, fmt.Errorf("SVD of the cross-covariance did not converge: %w", ErrDegenerate)
	}
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	d := svd.Values(nil)
	if !(d[0] > 1e-15*math.Sqrt(vx*vy)) {
		return Alignment{}, fmt.Errorf("the point sets are uncorrelated: %w", ErrDegenerate)
	}

	var rot [3][3]float64
	if d[1] <= 1e-12*d[0] {
		// Rank 1: collinear. Any R with R·v1 = u1 is optimal; take the smallest.
		rot = minimalRotation([3]float64{v.At(0, 0), v.At(1, 0), v.At(2, 0)},
			[3]float64{u.At(0, 0), u.At(1, 0), u.At(2, 0)})
	} else {
		// R = U·S·Vᵀ with S = diag(1, 1, sign(det U · det V)).
		s := 1.0
		if mat.Det(&u)*mat.Det(&v) < 0 {
			s = -1
		}
		for r := range 3 {
			for c := range 3 {
				rot[r][c] = u.At(r, 0)*v.At(c, 0) + u.At(r, 1)*v.At(c, 1) + s*u.At(r, 2)*v.At(c, 2)
			}
		}
	}

	scale := 1.0
	if withScale {
		// c = tr(Rᵀ·Σ)/σx², which equals Umeyama's tr(D·S)/σx² at the optimum.
		var tr float64
		for r := range 3 {
			for c := range 3 {
				tr += rot[r][c] * cov[r][c]
			}
		}
		scale = tr / vx
	}
	rm := matVec(rot, mx)
	t := [3]float64{my[0] - scale*rm[0], my[1] - scale*rm[1], my[2] - scale*rm[2]}
	return Alignment{R: rot, T: t, Scale: scale}, nil
}

// minimalRotation returns the rotation of least angle that takes the unit vector a onto
// the unit vector b; for opposite vectors, a half turn about an axis perpendicular to a.
func minimalRotation(a, b [3]float64) [3][3]float64 {
	c := dot(a, b)
	if c < -1+1e-12 {
		// Half turn about the axis perpendicular to a, built from the coordinate axis
		// least aligned with a: R = 2·k·kᵀ − I.
		e := [3]float64{1, 0, 0}
		if math.Abs(a[1]) < math.Abs(a[0]) && math.Abs(a[1]) <= math.Abs(a[2]) {
			e = [3]float64{0, 1, 0}
		} else if math.Abs(a[2]) < math.Abs(a[0]) {
			e = [3]float64{0, 0, 1}
		}
		k := cross(a, e)
		kn := norm(k)
		for i := range 3 {
			k[i] /= kn
		}
		var r [3][3]float64
		for i := range 3 {
			for j := range 3 {
				r[i][j] = 2 * k[i] * k[j]
			}
			r[i][i]--
		}
		return r
	}
	// R = I + [k]× + [k]×²/(1+c) with k = a×b (|k| = sin θ).
	k := cross(a, b)
	kx := [3][3]float64{{0, -k[2], k[1]}, {k[2], 0, -k[0]}, {-k[1], k[0], 0}}
	kx2 := matMul(kx, kx)
	var r [3][3]float64
	for i := range 3 {
		for j := range 3 {
			r[i][j] = kx[i][j] + kx2[i][j]/(1+c)
		}
		r[i][i]++
	}
	return r
}

func finite3(p [3]float64) bool { return finite(p[0]) && finite(p[1]) && finite(p[2]) }
