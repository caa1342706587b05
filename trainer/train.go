package trainer

import (
	"errors"
	"fmt"
	"math"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
)

// Optim configures the optimisation of a Trainer.
type Optim struct {
	// LR is Adam's learning rate. Default 1e-4 (Monodepth2's).
	LR float64
	// LRDecaySteps and LRDecay form a step schedule: the rate is multiplied by
	// LRDecay every LRDecaySteps steps (Monodepth2: ×0.1 after 15 of 20 epochs).
	// LRDecaySteps 0 keeps the rate constant.
	LRDecaySteps int
	LRDecay      float64
	// L2SP pulls the weights towards the ones the trainer started from (the base
	// model), adding L2SP·‖w − w₀‖² to the loss: the regulariser of continual
	// learning that keeps adaptation from forgetting. 0 turns it off.
	L2SP float64
}

// DefaultOptim is Monodepth2's rate with no decay and no regulariser.
func DefaultOptim() Optim { return Optim{LR: 1e-4, LRDecay: 0.1} }

// ErrNonFinite is returned (wrapped) by Step when the loss or a gradient is NaN or
// Inf: the step was skipped and the weights are untouched.
var ErrNonFinite = errors.New("loss or gradient is not finite")

// Trainer runs optimisation steps of a model on batches: Adam with a learning-rate
// schedule, the L2-SP regulariser, and a guard that skips (and counts) a step whose
// loss or gradients are not finite instead of writing NaN into the weights. Not safe
// for concurrent use.
type Trainer struct {
	B     tensor.Backend
	Model *monodepth2.Model
	Optim Optim

	adam    *nn.Adam
	steps   int // steps taken (skipped ones not counted)
	skipped int
	start   map[*nn.Param]*tensor.Tensor // w₀ of L2-SP
}

// NewTrainer prepares to train m on b. With o.L2SP set, the current weights become
// the anchor w₀.
func NewTrainer(b tensor.Backend, m *monodepth2.Model, o Optim) (*Trainer, error) {
	if o.LR <= 0 || math.IsNaN(o.LR) {
		return nil, fmt.Errorf("trainer: learning rate %g must be positive", o.LR)
	}
	if o.LRDecaySteps < 0 || (o.LRDecaySteps > 0 && !(o.LRDecay > 0 && o.LRDecay <= 1)) {
		return nil, fmt.Errorf("trainer: learning-rate decay %g every %d steps: the factor must be in (0, 1]", o.LRDecay, o.LRDecaySteps)
	}
	if o.L2SP < 0 {
		return nil, fmt.Errorf("trainer: L2-SP weight %g must not be negative", o.L2SP)
	}
	tr := &Trainer{B: b, Model: m, Optim: o, adam: nn.NewAdam(float32(o.LR))}
	if o.L2SP > 0 {
		if err := tr.Anchor(); err != nil {
			return nil, err
		}
	}
	return tr, nil
}

// Anchor makes the current weights the L2-SP anchor w₀.
func (tr *Trainer) Anchor() error {
	for _, w := range tr.start {
		tr.B.Free(w)
	}
	tr.start = map[*nn.Param]*tensor.Tensor{}
	for _, p := range tr.Model.Params.Trainable() {
		c, err := tr.B.Zeros(tensor.Float32, p.Value.Shape...)
		if err != nil {
			return err
		}
		if err := tr.B.Copy(c, p.Value); err != nil {
			return err
		}
		tr.start[p] = c
	}
	return nil
}

// ResetOptimizer forgets Adam's moments: call it when the model's weights were
// replaced by others (a rollback, another version made active), whose optimiser
// state the old moments are not. The step count and schedule go on.
func (tr *Trainer) ResetOptimizer() { tr.adam.Reset(tr.B) }

// Steps is the number of steps taken (skipped steps not counted); SetSteps
// continues a schedule after a resume.
func (tr *Trainer) Steps() int { return tr.steps }

// SetSteps sets the step counter (resuming from a checkpoint).
func (tr *Trainer) SetSteps(n int) { tr.steps = n }

// Skipped is the number of steps skipped for a non-finite loss or gradient.
func (tr *Trainer) Skipped() int { return tr.skipped }

// LR is the learning rate of the next step.
func (tr *Trainer) LR() float64 {
	lr := tr.Optim.LR
	if tr.Optim.LRDecaySteps > 0 {
		lr *= math.Pow(tr.Optim.LRDecay, float64(tr.steps/tr.Optim.LRDecaySteps))
	}
	return lr
}

// StepResult reports one step.
type StepResult struct {
	Loss     float64 // the self-supervised loss before the update
	GradNorm float64 // ‖∇‖ over all trainable parameters, before L2-SP
	LR       float64
}

// Step runs one optimisation step on batch. A non-finite loss or gradient skips the
// update (weights untouched) and returns an error wrapping ErrNonFinite.
func (tr *Trainer) Step(batch *Batch) (StepResult, error) {
	b, m := tr.B, tr.Model
	t := nn.NewTape(b)
	defer t.Release()
	m.Params.ZeroGrad(b)
	out, err := Loss(t, m, batch)
	if err != nil {
		return StepResult{}, err
	}
	lv, err := b.ToHost(out.Loss.Value) // before Backward frees it
	if err != nil {
		return StepResult{}, err
	}
	res := StepResult{Loss: float64(lv[0]), LR: tr.LR()}
	if !finite(res.Loss) {
		tr.skipped++
		return res, fmt.Errorf("trainer: step %d skipped: loss %v: %w", tr.steps+1, res.Loss, ErrNonFinite)
	}
	if err := t.Backward(out.Loss); err != nil {
		return res, err
	}
	params := m.Params.Trainable()
	var sq float64
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		s, err := sumSquares(b, p.Grad)
		if err != nil {
			return res, err
		}
		sq += s
	}
	res.GradNorm = math.Sqrt(sq)
	if !finite(res.GradNorm) {
		tr.skipped++
		m.Params.ZeroGrad(b)
		return res, fmt.Errorf("trainer: step %d skipped: gradient norm %v: %w", tr.steps+1, res.GradNorm, ErrNonFinite)
	}
	if tr.Optim.L2SP > 0 {
		if err := tr.addL2SP(params); err != nil {
			return res, err
		}
	}
	tr.adam.LR = float32(res.LR)
	if err := tr.adam.Step(b, params); err != nil {
		return res, err
	}
	m.Params.ZeroGrad(b)
	tr.steps++
	return res, nil
}

// addL2SP adds the gradient of L2SP·‖w − w₀‖², 2·L2SP·(w − w₀), to every gradient.
func (tr *Trainer) addL2SP(params []*nn.Param) error {
	b := tr.B
	for _, p := range params {
		w0, ok := tr.start[p]
		if !ok || p.Grad == nil {
			continue
		}
		d, err := b.Binary(tensor.Sub, p.Value, w0)
		if err != nil {
			return err
		}
		g, err := b.Affine(d, float32(2*tr.Optim.L2SP), 0)
		b.Free(d)
		if err != nil {
			return err
		}
		err = b.AddTo(p.Grad, g)
		b.Free(g)
		if err != nil {
			return err
		}
	}
	return nil
}

// sumSquares is Σx² of a tensor, computed on the backend.
func sumSquares(b tensor.Backend, x *tensor.Tensor) (float64, error) {
	sq, err := b.Unary(tensor.Square, x)
	if err != nil {
		return 0, err
	}
	defer b.Free(sq)
	s, err := b.Reduce(tensor.Sum, sq)
	if err != nil {
		return 0, err
	}
	defer b.Free(s)
	v, err := b.ToHost(s)
	if err != nil {
		return 0, err
	}
	return float64(v[0]), nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
