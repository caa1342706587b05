package nn

import (
	"errors"
	"fmt"

	"github.com/edgedepth/edgedepth/tensor"
)

// Var is a value computed on a Tape. After Tape.Backward, Grad holds d(loss)/d(value)
// for every Var that needs a gradient (parameters, and everything computed from them).
type Var struct {
	Value *tensor.Tensor
	Grad  *tensor.Tensor

	needGrad bool
	param    *Param // gradients of a parameter accumulate in param.Grad
}

// NeedsGrad reports whether a gradient flows back to v.
func (v *Var) NeedsGrad() bool { return v != nil && v.needGrad }

// Shape is the value's shape.
func (v *Var) Shape() tensor.Shape { return v.Value.Shape }

// Tape records the ops of one forward pass so that Backward can run their backward
// kernels in reverse order. A Tape is used by one goroutine and thrown away after one
// step (or reused after Reset).
//
// Errors are sticky: the first failing op records its error, every later op returns
// nil, and Err (or Backward) reports it. Forward code therefore reads like the
// maths and checks once at the end.
type Tape struct {
	B tensor.Backend
	// NoGrad records nothing: for inference, where no Backward follows.
	NoGrad bool
	// KeepIntermediates keeps every value and gradient until Release. Without it,
	// Backward frees each recorded op's output and gradient as soon as nothing
	// needs them any more, as PyTorch does: training then holds at most the forward
	// activations plus the gradients in flight. Read any output you need (the loss)
	// before Backward, or set this.
	KeepIntermediates bool

	steps []step
	made  []*tensor.Tensor // every tensor this tape allocated, for Release
	err   error
	// owned holds the buffers that are some live Var's gradient. A backward kernel
	// may hand dy straight through (a reshape, an addition); a buffer that already
	// belongs to another Var is copied before it is accumulated into.
	owned map[tensor.Buffer]bool
}

type step struct {
	out      *Var
	backward func(dy *tensor.Tensor) error
	view     bool // out shares its input's buffer (Reshape): never freed early
}

// NewTape returns a tape that records ops on backend b.
func NewTape(b tensor.Backend) *Tape { return &Tape{B: b} }

// Err is the first error of any op so far.
func (t *Tape) Err() error { return t.err }

// fail records err (the first one wins) and returns nil for the op's result.
func (t *Tape) fail(err error) *Var {
	if t.err == nil {
		t.err = err
	}
	return nil
}

// ok reports whether an op may run: no earlier error and every input present.
func (t *Tape) ok(op string, in ...*Var) bool {
	if t.err != nil {
		return false
	}
	for i, v := range in {
		if v == nil || v.Value == nil {
			t.fail(fmt.Errorf("%s: input %d is nil", op, i))
			return false
		}
	}
	return true
}

// keep remembers a tensor the tape allocated and returns it.
func (t *Tape) keep(x *tensor.Tensor) *tensor.Tensor {
	if x != nil {
		t.made = append(t.made, x)
	}
	return x
}

// Const wraps a tensor that needs no gradient (an input image, a constant).
func (t *Tape) Const(x *tensor.Tensor) *Var { return &Var{Value: x} }

// Leaf wraps a tensor whose gradient Backward should compute (an input under test).
func (t *Tape) Leaf(x *tensor.Tensor) *Var { return &Var{Value: x, needGrad: true} }

// Param wraps a parameter: gradients accumulate in p.Grad when p is trainable.
func (t *Tape) Param(p *Param) *Var {
	return &Var{Value: p.Value, needGrad: p.Trainable && !t.NoGrad, param: p}
}

// record creates the output Var of an op and, if any input needs a gradient,
// remembers how to send gradients back.
func (t *Tape) record(value *tensor.Tensor, backward func(dy *tensor.Tensor) error, in ...*Var) *Var {
	t.keep(value)
	out := &Var{Value: value}
	if t.NoGrad {
		return out
	}
	for _, v := range in {
		if v.NeedsGrad() {
			out.needGrad = true
			break
		}
	}
	if out.needGrad {
		t.steps = append(t.steps, step{out: out, backward: backward})
	}
	return out
}

// accumulate adds g to v's gradient (a parameter's gradient lives in the Param).
func (t *Tape) accumulate(v *Var, g *tensor.Tensor) error {
	if g == nil || !v.NeedsGrad() {
		return nil
	}
	if !g.Shape.Equal(v.Value.Shape) {
		// Backward kernels return gradients in their operand's shape; a reshape
		// (free) may still be needed where the operand was a view.
		r, err := g.Reshape(v.Value.Shape...)
		if err != nil {
			return fmt.Errorf("gradient %v for a value %v: %w", g.Shape, v.Value.Shape, err)
		}
		g = r
	}
	dst := &v.Grad
	if v.param != nil {
		dst = &v.param.Grad
	}
	if *dst != nil {
		return t.B.AddTo(*dst, g)
	}
	if v.param != nil || t.owned[g.Buffer] {
		// A parameter's gradient outlives the tape, and a buffer that is already
		// another Var's gradient must not be shared: copy.
		c, err := t.B.Zeros(tensor.Float32, v.Value.Shape...)
		if err != nil {
			return err
		}
		if err := t.B.Copy(c, g); err != nil {
			return err
		}
		if v.param == nil {
			t.keep(c)
		}
		g = c
	}
	*dst = g
	if v.param == nil {
		t.owned[g.Buffer] = true
	}
	return nil
}

// Backward computes the gradient of loss (a one-element Var) with respect to every
// Var that needs one. Parameters' gradients are added to what their Grad held.
func (t *Tape) Backward(loss *Var) error {
	if t.err != nil {
		return t.err
	}
	if loss == nil || loss.Value.Len() != 1 {
		return errors.New("backward: the loss must be a single value")
	}
	if !loss.NeedsGrad() {
		return errors.New("backward: the loss does not depend on anything that needs a gradient")
	}
	one, err := t.B.Full(1, loss.Value.Shape...)
	if err != nil {
		return err
	}
	loss.Grad = t.keep(one)
	t.owned = map[tensor.Buffer]bool{one.Buffer: true}
	defer func() { t.owned = nil }()
	for i := len(t.steps) - 1; i >= 0; i-- {
		s := t.steps[i]
		if s.out.Grad == nil {
			continue // nothing downstream used this value
		}
		// Every consumer of s.out comes later on the tape and has run: its
		// gradient is complete and read for the last time now, so its buffer
		// may be handed on.
		delete(t.owned, s.out.Grad.Buffer)
		if err := s.backward(s.out.Grad); err != nil {
			return fmt.Errorf("backward: %w", err)
		}
		if !t.KeepIntermediates && !s.view {
			// Every op that read s.out (as input or, for its own backward, as
			// output) is later on the tape and has run.
			if !t.owned[s.out.Grad.Buffer] {
				t.B.Free(s.out.Grad)
			}
			t.B.Free(s.out.Value)
			s.out.Value, s.out.Grad = nil, nil
		}
	}
	return nil
}

// Release frees every tensor the tape allocated (values and gradients of
// intermediate Vars, not parameters) and forgets the recorded ops. Vars from this
// tape must not be used afterwards.
func (t *Tape) Release() {
	// Free is idempotent for a buffer already freed during Backward; a buffer
	// reached twice (a gradient handed through) is freed once.
	freed := map[tensor.Buffer]bool{}
	for _, x := range t.made {
		if !freed[x.Buffer] {
			freed[x.Buffer] = true
			t.B.Free(x)
		}
	}
	t.Reset()
}

// Reset forgets the recorded ops and the error without freeing anything.
func (t *Tape) Reset() {
	t.steps, t.made, t.err = nil, nil, nil
}
