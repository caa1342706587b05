package trainer

import (
	"fmt"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
)

// Predict runs the networks for inference: the scale-0 disparity (N, 1, H, W) of
// target and, when prev is not nil, the pose of target relative to prev (axis-angle
// and translation, (N, 3) each, as the pose network predicts for the pair
// [prev, target]). The caller frees the results with the tape (t.Release).
func Predict(t *nn.Tape, m *monodepth2.Model, target, prev *tensor.Tensor) (disp, axisAngle, translation *nn.Var, err error) {
	t.NoGrad = true
	tgt := t.Const(target)
	disp = m.Depth.Forward(t, m.Encoder.Forward(t, tgt))[0]
	if prev != nil {
		axisAngle, translation = m.Pose.Forward(t, m.PoseEncoder.Forward(t, t.Concat(1, t.Const(prev), tgt)))
	}
	if err := t.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("predict: %w", err)
	}
	return disp, axisAngle, translation, nil
}
