package eval

import (
	"github.com/edgedepth/edgedepth/odom"
)

// trajectoryResult is one estimator's trajectory compared with the truth.
type trajectoryResult struct {
	predicted int   // frames with a predicted pose
	frames    []int // frame indices compared (predicted and true pose), increasing
	metrics   odom.TrajectoryMetrics
	per       odom.PerFrame
	err       error // why there are no metrics (too few frames, no motion, ...)
}

// evaluateTrajectory pairs predicted and true poses by frame index (both sorted) and
// runs odom.EvaluateTrajectory on the pairs. nil when nothing was predicted.
func evaluateTrajectory(pred, truth []framePose, o odom.TrajectoryOptions) *trajectoryResult {
	if len(pred) == 0 {
		return nil
	}
	r := &trajectoryResult{predicted: len(pred)}
	var est, gt []odom.Pose
	j := 0
	for _, p := range pred {
		for j < len(truth) && truth[j].index < p.index {
			j++
		}
		if j < len(truth) && truth[j].index == p.index {
			r.frames = append(r.frames, p.index)
			est = append(est, p.pose)
			gt = append(gt, truth[j].pose)
		}
	}
	r.metrics, r.per, r.err = odom.EvaluateTrajectory(est, gt, o)
	if r.err != nil {
		r.metrics, r.per = odom.TrajectoryMetrics{}, odom.PerFrame{}
	}
	return r
}
