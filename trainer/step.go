package trainer

import (
	"fmt"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
)

// TrainStep runs one optimisation step of m on batch: the loss, its gradients and an
// Adam update of every trainable parameter. It returns the loss before the update.
// Every tensor the step allocated is freed before it returns.
func TrainStep(b tensor.Backend, m *monodepth2.Model, opt *nn.Adam, batch *Batch) (float32, error) {
	t := nn.NewTape(b)
	defer t.Release()
	m.Params.ZeroGrad(b)
	out, err := Loss(t, m, batch)
	if err != nil {
		return 0, err
	}
	loss, err := b.ToHost(out.Loss.Value) // before Backward frees it
	if err != nil {
		return 0, err
	}
	if err := t.Backward(out.Loss); err != nil {
		return 0, err
	}
	if err := opt.Step(b, m.Params.Trainable()); err != nil {
		return 0, err
	}
	return loss[0], nil
}

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
