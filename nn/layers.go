package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/edgedepth/edgedepth/tensor"
)

// Builder creates the parameters of a network on one backend. Its errors are sticky
// like a Tape's, so a network's constructor reads as a list of layers.
type Builder struct {
	B      tensor.Backend
	Params *Params
	err    error
}

// Err is the first error of any Add so far.
func (bd *Builder) Err() error { return bd.err }

// Add creates a zero-filled parameter (nil after an earlier error).
func (bd *Builder) Add(name string, trainable bool, shape ...int) *Param {
	if bd.err != nil {
		return nil
	}
	p, err := bd.Params.Add(bd.B, name, trainable, shape...)
	if err != nil {
		bd.err = err
	}
	return p
}

// Conv2D is a 2-D convolution layer; B is nil without a bias.
type Conv2D struct {
	W, B *Param
	P    tensor.Conv2DParams
}

// NewConv2D adds name.weight (cout, cin/groups, k, k) and, with bias, name.bias.
func (bd *Builder) NewConv2D(name string, cin, cout, k int, p tensor.Conv2DParams, bias bool) *Conv2D {
	p = p.Norm()
	c := &Conv2D{W: bd.Add(name+".weight", true, cout, cin/p.Groups, k, k), P: p}
	if bias {
		c.B = bd.Add(name+".bias", true, cout)
	}
	return c
}

// Forward applies the convolution.
func (c *Conv2D) Forward(t *Tape, x *Var) *Var {
	var b *Var
	if c.B != nil {
		b = t.Param(c.B)
	}
	return t.Conv2D(x, t.Param(c.W), b, c.P)
}

// BatchNorm2D is batch normalisation over channels, with PyTorch's parameter names
// (weight, bias, running_mean, running_var).
type BatchNorm2D struct {
	Gamma, Beta, Mean, Var *Param
	Eps, Momentum          float32
	// Training normalises with the batch's statistics and updates the running ones;
	// otherwise the running statistics are used (frozen).
	Training bool
}

// NewBatchNorm2D adds the four tensors of a batch norm over c channels, initialised
// as PyTorch does (gamma 1, beta 0, mean 0, variance 1).
func (bd *Builder) NewBatchNorm2D(name string, c int) *BatchNorm2D {
	bn := &BatchNorm2D{
		Gamma: bd.Add(name+".weight", true, c),
		Beta:  bd.Add(name+".bias", true, c),
		Mean:  bd.Add(name+".running_mean", false, c),
		Var:   bd.Add(name+".running_var", false, c),
		Eps:   1e-5, Momentum: 0.1,
	}
	bd.fill(bn.Gamma, 1)
	bd.fill(bn.Var, 1)
	return bn
}

// Forward normalises x.
func (bn *BatchNorm2D) Forward(t *Tape, x *Var) *Var {
	return t.BatchNorm(x, t.Param(bn.Gamma), t.Param(bn.Beta), bn.Mean.Value, bn.Var.Value,
		tensor.BatchNormParams{Eps: bn.Eps, Momentum: bn.Momentum, Training: bn.Training})
}

func (bd *Builder) fill(p *Param, v float32) {
	if bd.err != nil {
		return
	}
	f, err := bd.B.Full(v, p.Value.Shape...)
	if err == nil {
		err = bd.B.Copy(p.Value, f)
		bd.B.Free(f)
	}
	if err != nil {
		bd.err = fmt.Errorf("init %s: %w", p.Name, err)
	}
}

// InitUniform fills p with values uniform in [-bound, bound).
func InitUniform(b tensor.Backend, p *Param, r *rand.Rand, bound float64) error {
	d := make([]float32, p.Value.Len())
	for i := range d {
		d[i] = float32((2*r.Float64() - 1) * bound)
	}
	return upload(b, p, d)
}

// InitNormal fills p with normal values of the given standard deviation.
func InitNormal(b tensor.Backend, p *Param, r *rand.Rand, std float64) error {
	d := make([]float32, p.Value.Len())
	for i := range d {
		d[i] = float32(r.NormFloat64() * std)
	}
	return upload(b, p, d)
}

// FanIn is the number of inputs of each output of a convolution weight.
func FanIn(w *Param) int {
	s := w.Value.Shape
	return s.Len() / s[0]
}

// FanOut is the number of outputs each input of a convolution weight feeds.
func FanOut(w *Param) int {
	s := w.Value.Shape
	return s.Len() / s[1]
}

// InitConvDefault is PyTorch's default for a convolution: weight and bias uniform in
// ±1/√fan_in (kaiming_uniform with a = √5).
func InitConvDefault(b tensor.Backend, c *Conv2D, r *rand.Rand) error {
	bound := 1 / math.Sqrt(float64(FanIn(c.W)))
	if err := InitUniform(b, c.W, r, bound); err != nil {
		return err
	}
	if c.B != nil {
		return InitUniform(b, c.B, r, bound)
	}
	return nil
}

func upload(b tensor.Backend, p *Param, d []float32) error {
	v, err := b.FromHost(d, p.Value.Shape...)
	if err != nil {
		return fmt.Errorf("init %s: %w", p.Name, err)
	}
	defer b.Free(v)
	return b.Copy(p.Value, v)
}
