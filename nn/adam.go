package nn

import (
	"fmt"

	"github.com/edgedepth/edgedepth/tensor"
)

// Adam is PyTorch's Adam optimiser (bias-corrected moments, L2 weight decay added to
// the gradient). Its moment tensors live on the backend beside the parameters.
type Adam struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32

	step int
	m, v map[*Param]*tensor.Tensor
}

// NewAdam returns Adam with PyTorch's defaults and learning rate lr.
func NewAdam(lr float32) *Adam {
	return &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// Steps is the number of steps taken.
func (a *Adam) Steps() int { return a.step }

// Step updates every trainable parameter that has a gradient.
func (a *Adam) Step(b tensor.Backend, params []*Param) error {
	if a.m == nil {
		a.m, a.v = map[*Param]*tensor.Tensor{}, map[*Param]*tensor.Tensor{}
	}
	a.step++
	p := tensor.AdamParams{LR: a.LR, Beta1: a.Beta1, Beta2: a.Beta2, Eps: a.Eps, WeightDecay: a.WeightDecay, Step: a.step}
	for _, par := range params {
		if !par.Trainable || par.Grad == nil {
			continue
		}
		m, ok := a.m[par]
		if !ok {
			var err error
			if m, err = b.Zeros(tensor.Float32, par.Value.Shape...); err != nil {
				return err
			}
			v, err := b.Zeros(tensor.Float32, par.Value.Shape...)
			if err != nil {
				return err
			}
			a.m[par], a.v[par] = m, v
		}
		if err := b.AdamStep(par.Value, par.Grad, m, a.v[par], p); err != nil {
			return fmt.Errorf("adam: %s: %w", par.Name, err)
		}
	}
	return nil
}

// Reset forgets the moments and the step count (freeing the moment tensors), so that
// the next Step starts as from a new optimiser: for weights that were replaced by
// others (a rollback), whose moments belong to another trajectory.
func (a *Adam) Reset(b tensor.Backend) {
	for _, m := range a.m {
		b.Free(m)
	}
	for _, v := range a.v {
		b.Free(v)
	}
	a.m, a.v, a.step = nil, nil, 0
}
