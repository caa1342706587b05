package odom

import (
	"fmt"
	"math"
	"sort"
)

// DefaultSegmentLengthsM are the KITTI-style RPE segment lengths, in metres of
// ground-truth path, that EvaluateTrajectory uses when TrajectoryOptions leaves them
// out. KITTI's odometry benchmark uses 100..800 m for car-scale drives; a robot's
// sequences are tens of metres, so these are shorter.
var DefaultSegmentLengthsM = []float64{1, 2, 5, 10}

// TrajectoryOptions tune EvaluateTrajectory. The zero value selects the defaults.
type TrajectoryOptions struct {
	// SegmentLengthsM are the RPE segment lengths in metres of ground-truth path
	// (default DefaultSegmentLengthsM when nil; an empty, non-nil slice turns the
	// segment RPE off). Lengths longer than the trajectory are skipped.
	SegmentLengthsM []float64
	// SegmentStepFrames is the spacing in frames of the segments' first frames
	// (default 1: a segment starts at every frame; KITTI's devkit uses 10 at 10 Hz).
	SegmentStepFrames int
	// RPEDeltaFrames is the frame offset of the per-frame-pair RPE (default 1:
	// consecutive frames, as TUM's evaluate_rpe.py with --delta 1 --delta_unit f).
	RPEDeltaFrames int
}

func (o TrajectoryOptions) withDefaults() (TrajectoryOptions, error) {
	if o.SegmentLengthsM == nil {
		o.SegmentLengthsM = DefaultSegmentLengthsM
	}
	for _, l := range o.SegmentLengthsM {
		if !(l > 0) || math.IsInf(l, 0) {
			return o, fmt.Errorf("odom: trajectory options: segment length %g m must be positive and finite", l)
		}
	}
	if o.SegmentStepFrames < 0 || o.RPEDeltaFrames < 0 {
		return o, fmt.Errorf("odom: trajectory options: SegmentStepFrames %d and RPEDeltaFrames %d must not be negative",
			o.SegmentStepFrames, o.RPEDeltaFrames)
	}
	if o.SegmentStepFrames == 0 {
		o.SegmentStepFrames = 1
	}
	if o.RPEDeltaFrames == 0 {
		o.RPEDeltaFrames = 1
	}
	return o, nil
}

// TrajectoryMetrics summarise how well an estimated trajectory follows the ground truth,
// with the definitions of the TUM RGB-D tools (ATE, per-pair RPE) and the KITTI odometry
// devkit (segment RPE). Lower is better everywhere; Sim3Scale is best at 1.
type TrajectoryMetrics struct {
	// Frames is the number of poses compared.
	Frames int `json:"frames"`
	// LengthM is the ground truth's path length: the sum of the distances between
	// consecutive positions, metres.
	LengthM float64 `json:"length_m"`

	// ATESE3RMSEM is the absolute trajectory error: the RMSE of the position
	// differences after the rigid (SE(3)) least-squares alignment of the estimated
	// positions onto the true ones, metres. It judges metric scale.
	ATESE3RMSEM float64 `json:"ate_se3_rmse_m"`
	// ATESim3RMSEM is the same after a similarity (Sim(3)) alignment: it forgives a
	// global scale error (monocular estimators), metres.
	ATESim3RMSEM float64 `json:"ate_sim3_rmse_m"`
	// Sim3Scale is the scale of that alignment: ground-truth metres per estimated metre.
	Sim3Scale float64 `json:"sim3_scale"`

	// RPETransPct is the KITTI relative translation error: over every segment of every
	// length L in SegmentLengthsM the trajectory is long enough for (first frame i,
	// last frame j the first with path(j) > path(i) + L), the translation of the error
	// motion (gt_i⁻¹·gt_j)⁻¹·(est_i⁻¹·est_j) divided by L, averaged over all segments
	// of all lengths together, in percent. No alignment: scale errors count.
	RPETransPct float64 `json:"rpe_trans_pct"`
	// RPERotDegPerM is the rotation angle of the same error motions divided by L,
	// averaged likewise, degrees per metre.
	RPERotDegPerM float64 `json:"rpe_rot_deg_per_m"`
	// RPESegments is the number of segments averaged; 0 when the trajectory is
	// shorter than every segment length (the two RPE fields above are then 0).
	RPESegments int `json:"rpe_segments"`
	// RPEBySegment breaks the segment RPE down by length, for the lengths used.
	RPEBySegment []SegmentRPE `json:"rpe_by_segment"`

	// RPEFrameTransRMSEM is the RMSE of the translation of the error motions between
	// frames RPEDeltaFrames apart (TUM's RPE), metres.
	RPEFrameTransRMSEM float64 `json:"rpe_frame_trans_rmse_m"`
	// RPEFrameRotRMSEDeg is the RMSE of their rotation angles, degrees.
	RPEFrameRotRMSEDeg float64 `json:"rpe_frame_rot_rmse_deg"`

	// FinalErrorM is the end-point position error after aligning only the first pose:
	// the estimate is moved rigidly so that its first pose equals the true first pose
	// (est'_i = gt_0·est_0⁻¹·est_i), and FinalErrorM = |est'_last.T − gt_last.T|, metres.
	FinalErrorM float64 `json:"final_error_m"`
	// DriftPct is FinalErrorM divided by LengthM, in percent.
	DriftPct float64 `json:"drift_pct"`
}

// SegmentRPE is the KITTI relative error of the segments of one length.
type SegmentRPE struct {
	// LengthM is the segment length, metres of ground-truth path.
	LengthM float64 `json:"length_m"`
	// Segments is the number of segments of this length.
	Segments int `json:"segments"`
	// TransPct is their mean relative translation error, percent.
	TransPct float64 `json:"trans_pct"`
	// RotDegPerM is their mean rotation error per metre, degrees per metre.
	RotDegPerM float64 `json:"rot_deg_per_m"`
}

// PerFrame holds per-frame errors and aligned positions for plots. Index i is frame i,
// except for the RPEFrame slices, where index i is the pair (i, i+RPEDeltaFrames).
type PerFrame struct {
	// PathM is the ground truth's path length from frame 0 to frame i, metres.
	PathM []float64 `json:"path_m"`
	// ATESE3M and ATESim3M are the position errors after the SE(3) and Sim(3)
	// alignments, metres.
	ATESE3M  []float64 `json:"ate_se3_m"`
	ATESim3M []float64 `json:"ate_sim3_m"`
	// FirstPoseErrorM is the position error after aligning the first pose only (the
	// drift curve; its last value is FinalErrorM), metres.
	FirstPoseErrorM []float64 `json:"first_pose_error_m"`
	// AlignedSE3, AlignedSim3 and AlignedFirstPose are the estimated positions in the
	// ground truth's world after each alignment, metres.
	AlignedSE3       [][3]float64 `json:"aligned_se3"`
	AlignedSim3      [][3]float64 `json:"aligned_sim3"`
	AlignedFirstPose [][3]float64 `json:"aligned_first_pose"`
	// RPEFrameTransM and RPEFrameRotDeg are the per-pair relative errors, metres and
	// degrees.
	RPEFrameTransM []float64 `json:"rpe_frame_trans_m"`
	RPEFrameRotDeg []float64 `json:"rpe_frame_rot_deg"`
}

// EvaluateTrajectory compares an estimated trajectory with the ground truth. est[i] and
// gt[i] are world_T_camera of the same frame; the two worlds may differ (the estimate
// usually starts at the identity), which the alignments and the relative errors remove.
//
// It fails when the lengths differ, with fewer than 2 frames (ErrTooFewPoints), for a
// non-finite pose, when the ground truth does not move or the estimate stands still
// (ErrDegenerate: scale and drift are undefined), and for invalid options.
func EvaluateTrajectory(est, gt []Pose, o TrajectoryOptions) (TrajectoryMetrics, PerFrame, error) {
	o, err := o.withDefaults()
	if err != nil {
		return TrajectoryMetrics{}, PerFrame{}, err
	}
	if len(est) != len(gt) {
		return TrajectoryMetrics{}, PerFrame{}, fmt.Errorf("odom: evaluate trajectory: %d estimated poses, %d ground-truth poses", len(est), len(gt))
	}
	n := len(est)
	if n < 2 {
		return TrajectoryMetrics{}, PerFrame{}, fmt.Errorf("odom: evaluate trajectory: %d frames, need 2: %w", n, ErrTooFewPoints)
	}
	for i := range n {
		if !est[i].IsFinite() {
			return TrajectoryMetrics{}, PerFrame{}, fmt.Errorf("odom: evaluate trajectory: estimated pose %d is not finite", i)
		}
		if !gt[i].IsFinite() {
			return TrajectoryMetrics{}, PerFrame{}, fmt.Errorf("odom: evaluate trajectory: ground-truth pose %d is not finite", i)
		}
	}

	m := TrajectoryMetrics{Frames: n}
	var pf PerFrame
	pf.PathM = make([]float64, n)
	for i := 1; i < n; i++ {
		pf.PathM[i] = pf.PathM[i-1] + norm(sub(gt[i].T, gt[i-1].T))
	}
	m.LengthM = pf.PathM[n-1]
	if !(m.LengthM > 0) {
		return TrajectoryMetrics{}, PerFrame{}, fmt.Errorf("odom: evaluate trajectory: the ground truth does not move: %w", ErrDegenerate)
	}

	// ATE after SE(3) and Sim(3) alignment.
	ep, gp := make([][3]float64, n), make([][3]float64, n)
	for i := range n {
		ep[i], gp[i] = est[i].T, gt[i].T
	}
	for _, withScale := range []bool{false, true} {
		a, err := umeyama(ep, gp, withScale)
		if err != nil {
			return TrajectoryMetrics{}, PerFrame{}, fmt.Errorf("odom: evaluate trajectory: align: %w", err)
		}
		aligned, errs := make([][3]float64, n), make([]float64, n)
		var sum2 float64
		for i := range n {
			aligned[i] = a.Apply(ep[i])
			errs[i] = norm(sub(aligned[i], gp[i]))
			sum2 += errs[i] * errs[i]
		}
		rmse := math.Sqrt(sum2 / float64(n))
		if withScale {
			m.ATESim3RMSEM, m.Sim3Scale = rmse, a.Scale
			pf.AlignedSim3, pf.ATESim3M = aligned, errs
		} else {
			m.ATESE3RMSEM = rmse
			pf.AlignedSE3, pf.ATESE3M = aligned, errs
		}
	}

	// Drift: align the first pose only.
	first := gt[0].Mul(est[0].Inverse())
	pf.AlignedFirstPose, pf.FirstPoseErrorM = make([][3]float64, n), make([]float64, n)
	for i := range n {
		pf.AlignedFirstPose[i] = first.Mul(est[i]).T
		pf.FirstPoseErrorM[i] = norm(sub(pf.AlignedFirstPose[i], gp[i]))
	}
	m.FinalErrorM = pf.FirstPoseErrorM[n-1]
	m.DriftPct = 100 * m.FinalErrorM / m.LengthM

	// Per-frame-pair RPE.
	d := o.RPEDeltaFrames
	if d < n {
		var st, sr float64
		for i := 0; i+d < n; i++ {
			e := relativeError(est[i], est[i+d], gt[i], gt[i+d])
			te, re := e.Distance(), e.Angle()*180/math.Pi
			pf.RPEFrameTransM = append(pf.RPEFrameTransM, te)
			pf.RPEFrameRotDeg = append(pf.RPEFrameRotDeg, re)
			st += te * te
			sr += re * re
		}
		k := float64(len(pf.RPEFrameTransM))
		m.RPEFrameTransRMSEM, m.RPEFrameRotRMSEDeg = math.Sqrt(st/k), math.Sqrt(sr/k)
	}

	// KITTI segment RPE.
	var sumT, sumR float64
	for _, l := range o.SegmentLengthsM {
		s := SegmentRPE{LengthM: l}
		var lt, lr float64
		for i := 0; i < n; i += o.SegmentStepFrames {
			j := lastFrameOfSegment(pf.PathM, i, l)
			if j < 0 {
				continue
			}
			e := relativeError(est[i], est[j], gt[i], gt[j])
			lt += e.Distance() / l
			lr += e.Angle() / l
			s.Segments++
		}
		if s.Segments == 0 {
			continue
		}
		sumT += lt
		sumR += lr
		m.RPESegments += s.Segments
		s.TransPct = 100 * lt / float64(s.Segments)
		s.RotDegPerM = lr / float64(s.Segments) * 180 / math.Pi
		m.RPEBySegment = append(m.RPEBySegment, s)
	}
	if m.RPESegments > 0 {
		m.RPETransPct = 100 * sumT / float64(m.RPESegments)
		m.RPERotDegPerM = sumR / float64(m.RPESegments) * 180 / math.Pi
	}
	return m, pf, nil
}

// relativeError is the error motion between frames i and j: the true motion's inverse
// composed with the estimated motion, (gt_i⁻¹·gt_j)⁻¹·(est_i⁻¹·est_j).
func relativeError(estI, estJ, gtI, gtJ Pose) Pose {
	return gtI.Inverse().Mul(gtJ).Inverse().Mul(estI.Inverse().Mul(estJ))
}

// lastFrameOfSegment returns the first frame j after i whose path length exceeds
// path[i] + length (KITTI's rule, strictly greater), or -1.
func lastFrameOfSegment(path []float64, i int, length float64) int {
	// path never decreases: binary search.
	limit := path[i] + length
	j := i + 1 + sort.Search(len(path)-i-1, func(k int) bool { return path[i+1+k] > limit })
	if j == len(path) {
		return -1
	}
	return j
}
