package odom

import (
	"errors"
	"math"
	"testing"
)

// worldA is an exact rotation (x → x, y → z, z → −y) and offset: poses moved by it
// keep exactly representable coordinates.
var worldA = Pose{R: [3][3]float64{{1, 0, 0}, {0, 0, -1}, {0, 1, 0}}, T: [3]float64{1, -2, 3}}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

func TestEvaluateOffsetTrajectory(t *testing.T) {
	// The estimate is the ground truth seen from another world (starting at the
	// identity): every error is 0 and the scale 1.
	var gt, est []Pose
	for i := range 30 {
		gt = append(gt, worldA.Mul(FromAxisAngle([3]float64{0, 0.1 * float64(i), 0.01 * float64(i)},
			[3]float64{math.Sin(0.2 * float64(i)), 0.05 * float64(i), 0.3 * float64(i)})))
	}
	for _, g := range gt {
		est = append(est, gt[0].Inverse().Mul(g))
	}
	m, pf, err := EvaluateTrajectory(est, gt, TrajectoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{
		"ATESE3RMSEM": m.ATESE3RMSEM, "ATESim3RMSEM": m.ATESim3RMSEM, "RPETransPct": m.RPETransPct,
		"RPERotDegPerM": m.RPERotDegPerM, "RPEFrameTransRMSEM": m.RPEFrameTransRMSEM,
		"RPEFrameRotRMSEDeg": m.RPEFrameRotRMSEDeg, "DriftPct": m.DriftPct, "FinalErrorM": m.FinalErrorM,
	} {
		if math.Abs(v) > 1e-6 {
			t.Errorf("%s = %g, want 0", name, v)
		}
	}
	if !near(m.Sim3Scale, 1, 1e-12) {
		t.Errorf("Sim3Scale = %g, want 1", m.Sim3Scale)
	}
	if m.Frames != 30 || len(pf.ATESE3M) != 30 || len(pf.RPEFrameTransM) != 29 {
		t.Errorf("Frames %d, per-frame %d, per-pair %d", m.Frames, len(pf.ATESE3M), len(pf.RPEFrameTransM))
	}
	for i := range gt {
		if d := vecDiff(pf.AlignedSE3[i], gt[i].T); d > 1e-12 {
			t.Fatalf("aligned position %d off by %g", i, d)
		}
	}
}

func TestEvaluateSquareDrift(t *testing.T) {
	// A closed square of 2 m sides, a frame every 0.5 m: 17 frames, 8 m of path. The
	// estimate is exact but for the last position, 0.3 m and 0.4 m off: the end-point
	// error after aligning the first pose is 0.5 m, the drift 0.5/8 = 6.25 %.
	corners := [][3]float64{{0, 0, 0}, {2, 0, 0}, {2, 0, 2}, {0, 0, 2}, {0, 0, 0}}
	var gt []Pose
	for c := range 4 {
		for k := range 4 {
			f := float64(k) / 4
			p := add(corners[c], [3]float64{f * (corners[c+1][0] - corners[c][0]), 0, f * (corners[c+1][2] - corners[c][2])})
			gt = append(gt, worldA.Mul(Pose{R: Identity().R, T: p}))
		}
	}
	gt = append(gt, worldA)
	est := make([]Pose, len(gt))
	for i := range gt {
		est[i] = gt[0].Inverse().Mul(gt[i])
	}
	// In the estimate's world (the first camera's), the offset (0.3, 0, 0.4).
	est[16].T = add(est[16].T, [3]float64{0.3, 0, 0.4})
	m, pf, err := EvaluateTrajectory(est, gt, TrajectoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.LengthM != 8 {
		t.Errorf("LengthM = %g, want 8", m.LengthM)
	}
	if !near(m.FinalErrorM, 0.5, 1e-14) || !near(m.DriftPct, 6.25, 1e-14) {
		t.Errorf("FinalErrorM %g DriftPct %g, want 0.5 and 6.25", m.FinalErrorM, m.DriftPct)
	}
	if pf.FirstPoseErrorM[15] > 1e-15 || pf.PathM[16] != 8 {
		t.Errorf("first-pose error before the end %g, path %g", pf.FirstPoseErrorM[15], pf.PathM[16])
	}
	// Per frame pair, only the last pair errs: by 0.5 m, so the RMSE is 0.5/sqrt(16).
	if !near(m.RPEFrameTransRMSEM, 0.5/4, 1e-14) {
		t.Errorf("RPEFrameTransRMSEM = %g, want 0.125", m.RPEFrameTransRMSEM)
	}
}

func TestEvaluateStraightLineScale(t *testing.T) {
	// The ground truth runs 10 m along z in 0.125 m steps (81 frames, exact in binary);
	// the estimate runs 5 % too far each step and yaws 0.01 rad a frame.
	const n = 81
	var gt, est []Pose
	for i := range n {
		z := 0.125 * float64(i)
		gt = append(gt, worldA.Mul(Pose{R: Identity().R, T: [3]float64{0, 0, z}}))
		est = append(est, Pose{R: Identity().R, T: [3]float64{0, 0, 1.05 * z}})
	}
	m, _, err := EvaluateTrajectory(est, gt, TrajectoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A segment of length L ends at the first frame strictly beyond L: 9, 17 and 41
	// steps for 1, 2 and 5 m (1.125, 2.125, 5.125 m); none of 10 m fits. Its error is
	// 5 % of the distance travelled, over L.
	want := []SegmentRPE{
		{LengthM: 1, Segments: 72, TransPct: 5 * 1.125},
		{LengthM: 2, Segments: 64, TransPct: 5 * 2.125 / 2},
		{LengthM: 5, Segments: 40, TransPct: 5 * 5.125 / 5},
	}
	if len(m.RPEBySegment) != len(want) {
		t.Fatalf("RPEBySegment = %+v, want %+v", m.RPEBySegment, want)
	}
	for k, w := range want {
		g := m.RPEBySegment[k]
		if g.LengthM != w.LengthM || g.Segments != w.Segments || !near(g.TransPct, w.TransPct, 1e-12) || g.RotDegPerM != 0 {
			t.Errorf("segment %d: %+v, want %+v", k, g, w)
		}
	}
	if m.RPESegments != 176 || !near(m.RPETransPct, 950.0/176, 1e-12) {
		t.Errorf("RPE %d segments %g %%, want 176 and 950/176", m.RPESegments, m.RPETransPct)
	}
	if !near(m.RPEFrameTransRMSEM, 0.05*0.125, 1e-12) {
		t.Errorf("RPEFrameTransRMSEM = %g, want %g", m.RPEFrameTransRMSEM, 0.05*0.125)
	}
	if !near(m.Sim3Scale, 1/1.05, 1e-14) || m.ATESim3RMSEM > 1e-12 {
		t.Errorf("Sim3 scale %g ATE %g, want 1/1.05 and 0", m.Sim3Scale, m.ATESim3RMSEM)
	}
	// Rigid alignment centres the stretched line on the true one: the errors are 5 %
	// of the distances from the centre, RMSE = 0.05·0.125·sqrt((81²−1)/12).
	if w := 0.05 * 0.125 * math.Sqrt((n*n-1)/12.0); !near(m.ATESE3RMSEM, w, 1e-12) {
		t.Errorf("ATESE3RMSEM = %g, want %g", m.ATESE3RMSEM, w)
	}
	if !near(m.FinalErrorM, 0.5, 1e-14) || !near(m.DriftPct, 5, 1e-14) {
		t.Errorf("FinalErrorM %g DriftPct %g, want 0.5 and 5", m.FinalErrorM, m.DriftPct)
	}

	// Yaw 0.01 rad a frame: the rotation error of a segment of k steps is 0.01·k rad.
	for i := range est {
		est[i].R = FromAxisAngle([3]float64{0, 0.01 * float64(i), 0}, [3]float64{}).R
	}
	m, _, err = EvaluateTrajectory(est, gt, TrajectoryOptions{SegmentLengthsM: []float64{1, 2, 5}})
	if err != nil {
		t.Fatal(err)
	}
	deg := 180 / math.Pi
	for k, w := range []float64{0.09 * deg, 0.17 / 2 * deg, 0.41 / 5 * deg} {
		if g := m.RPEBySegment[k].RotDegPerM; !near(g, w, 1e-12) {
			t.Errorf("segment %d: RotDegPerM %g, want %g", k, g, w)
		}
	}
	if w := (72*0.09 + 64*0.17/2 + 40*0.41/5) / 176 * deg; !near(m.RPERotDegPerM, w, 1e-12) {
		t.Errorf("RPERotDegPerM %g, want %g", m.RPERotDegPerM, w)
	}
	if !near(m.RPEFrameRotRMSEDeg, 0.01*deg, 1e-12) {
		t.Errorf("RPEFrameRotRMSEDeg %g, want %g", m.RPEFrameRotRMSEDeg, 0.01*deg)
	}
}

func TestEvaluateShortAndOptions(t *testing.T) {
	gt := []Pose{Identity(), {R: Identity().R, T: [3]float64{0.3, 0, 0}}}
	est := []Pose{Identity(), {R: Identity().R, T: [3]float64{0.4, 0, 0}}}
	m, _, err := EvaluateTrajectory(est, gt, TrajectoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Two frames: shorter than every segment; ATE of a 0.1 m stretch split evenly.
	if m.RPESegments != 0 || m.RPETransPct != 0 || m.RPEBySegment != nil {
		t.Errorf("segments on a 0.3 m trajectory: %+v", m)
	}
	if !near(m.ATESE3RMSEM, 0.05, 1e-14) || !near(m.FinalErrorM, 0.1, 1e-14) || !near(m.Sim3Scale, 0.75, 1e-14) {
		t.Errorf("two frames: %+v", m)
	}
	// Segment step and delta.
	m, pf, err := EvaluateTrajectory(est, gt, TrajectoryOptions{SegmentLengthsM: []float64{0.1}, SegmentStepFrames: 5, RPEDeltaFrames: 3})
	if err != nil {
		t.Fatal(err)
	}
	if m.RPESegments != 1 || pf.RPEFrameTransM != nil || m.RPEFrameTransRMSEM != 0 {
		t.Errorf("step 5, delta 3: %+v", m)
	}
}

func TestEvaluateErrors(t *testing.T) {
	line := []Pose{Identity(), {R: Identity().R, T: [3]float64{1, 0, 0}}, {R: Identity().R, T: [3]float64{2, 0, 0}}}
	still := []Pose{Identity(), Identity(), Identity()}
	nan := []Pose{Identity(), {R: Identity().R, T: [3]float64{math.NaN(), 0, 0}}, Identity()}
	tests := []struct {
		name    string
		est, gt []Pose
		opt     TrajectoryOptions
		is      error
	}{
		{"lengths differ", line[:2], line, TrajectoryOptions{}, nil},
		{"one frame", line[:1], line[:1], TrajectoryOptions{}, ErrTooFewPoints},
		{"gt stands still", line, still, TrajectoryOptions{}, ErrDegenerate},
		{"est stands still", still, line, TrajectoryOptions{}, ErrDegenerate},
		{"nan est", nan, line, TrajectoryOptions{}, nil},
		{"nan gt", line, nan, TrajectoryOptions{}, nil},
		{"negative length", line, line, TrajectoryOptions{SegmentLengthsM: []float64{-1}}, nil},
		{"negative step", line, line, TrajectoryOptions{SegmentStepFrames: -1}, nil},
	}
	for _, tc := range tests {
		_, _, err := EvaluateTrajectory(tc.est, tc.gt, tc.opt)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.is)
		}
	}
}
