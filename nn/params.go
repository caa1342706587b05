package nn

import (
	"fmt"
	"sort"
	"strings"

	"github.com/edgedepth/edgedepth/tensor"
)

// Param is a named tensor of a network: a trainable weight, or a buffer such as batch
// norm's running statistics (Trainable false) that is saved and loaded but never
// receives a gradient.
type Param struct {
	Name      string
	Value     *tensor.Tensor
	Grad      *tensor.Tensor // accumulated by Tape.Backward; nil until then
	Trainable bool
}

// Params is an ordered set of parameters, addressed by name. Names follow the
// PyTorch state-dict convention ("encoder.layer1.0.conv1.weight"), optionally behind a
// network prefix ("encoder/").
type Params struct {
	list   []*Param
	byName map[string]*Param
}

// Add creates a parameter of the given shape, zero-filled, on backend b. Adding a
// name twice is a programmer error.
func (ps *Params) Add(b tensor.Backend, name string, trainable bool, shape ...int) (*Param, error) {
	if ps.byName == nil {
		ps.byName = map[string]*Param{}
	}
	if _, dup := ps.byName[name]; dup {
		panic("nn: parameter " + name + " added twice")
	}
	v, err := b.Zeros(tensor.Float32, shape...)
	if err != nil {
		return nil, fmt.Errorf("parameter %s: %w", name, err)
	}
	p := &Param{Name: name, Value: v, Trainable: trainable}
	ps.list = append(ps.list, p)
	ps.byName[name] = p
	return p, nil
}

// All returns every parameter in the order they were added.
func (ps *Params) All() []*Param { return ps.list }

// Trainable returns the parameters that receive gradients.
func (ps *Params) Trainable() []*Param {
	var out []*Param
	for _, p := range ps.list {
		if p.Trainable {
			out = append(out, p)
		}
	}
	return out
}

// Get returns the parameter called name, or nil.
func (ps *Params) Get(name string) *Param { return ps.byName[name] }

// Shapes maps every parameter name to its shape (what a checkpoint must hold).
func (ps *Params) Shapes() map[string]tensor.Shape {
	m := make(map[string]tensor.Shape, len(ps.list))
	for _, p := range ps.list {
		m[p.Name] = p.Value.Shape.Clone()
	}
	return m
}

// ZeroGrad drops every gradient (the next Backward starts from zero).
func (ps *Params) ZeroGrad(b tensor.Backend) {
	for _, p := range ps.list {
		if p.Grad != nil {
			b.Free(p.Grad)
			p.Grad = nil
		}
	}
}

// Export copies every parameter to the host, in order.
func (ps *Params) Export(b tensor.Backend) ([]NamedTensor, error) {
	out := make([]NamedTensor, 0, len(ps.list))
	for _, p := range ps.list {
		d, err := b.ToHost(p.Value)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", p.Name, err)
		}
		out = append(out, NamedTensor{Name: p.Name, Shape: p.Value.Shape.Clone(), Data: d})
	}
	return out, nil
}

// Load copies named tensors into the parameters of the same name (prefix is put in
// front of every given name). Every parameter under prefix must be given, with its
// shape; names for which ignore returns true (nil: none) may be present without a
// parameter. The error lists what is missing, unexpected or mis-shaped, and nothing
// is changed then.
func (ps *Params) Load(b tensor.Backend, file, prefix string, ts []NamedTensor, ignore func(name string) bool) error {
	want := map[string]tensor.Shape{}
	for name, s := range ps.Shapes() {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			want[rest] = s
		}
	}
	var kept []NamedTensor
	for _, t := range ts {
		if ignore == nil || !ignore(t.Name) {
			kept = append(kept, t)
		}
	}
	if err := CheckParams(file, kept, want); err != nil {
		return err
	}
	for _, t := range kept {
		v, err := b.FromHost(t.Data, t.Shape...)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", file, t.Name, err)
		}
		p := ps.byName[prefix+t.Name]
		if err := b.Copy(p.Value, v); err != nil {
			return fmt.Errorf("%s: %s: %w", file, t.Name, err)
		}
		b.Free(v)
	}
	return nil
}

// Names lists the parameter names, sorted.
func (ps *Params) Names() []string {
	n := make([]string, 0, len(ps.list))
	for _, p := range ps.list {
		n = append(n, p.Name)
	}
	sort.Strings(n)
	return n
}
