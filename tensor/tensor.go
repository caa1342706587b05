// Package tensor holds n-dimensional tensors and the Backend interface through which
// every computation of edgedepth's networks and losses runs.
//
// A Tensor is a shape, an element type and a Buffer owned by one Backend (host memory
// for tensor/cpu, device memory for jetson/cuda). Tensors are dense and row-major
// (images are NCHW); Reshape is free, every other change of layout is an op.
//
// The Backend interface lists explicit forward and backward kernels. Nothing in it
// records a graph: the autograd tape of package nn calls the backward kernels. A backend
// must pass the conformance suite in tensor/backendtest.
package tensor

import (
	"errors"
	"fmt"
	"strings"
)

// DType is the element type of a tensor.
type DType uint8

const (
	// Float32 is the element type of every value and gradient.
	Float32 DType = iota
	// Int32 holds indices (the argmax of max pooling, the argmin of the photometric
	// minimum). Backends need not move Int32 tensors to or from the host.
	Int32
)

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Int32:
		return "int32"
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Shape is the size of each dimension, outermost first.
type Shape []int

// Len is the number of elements: the product of the dimensions (1 for a scalar).
func (s Shape) Len() int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Equal reports whether two shapes are identical.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy that shares nothing with s.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Buffer is backend-owned storage for a tensor's elements. Only the backend that made
// it may look inside.
type Buffer interface {
	// Elems is the capacity in elements.
	Elems() int
}

// Tensor is a dense, row-major tensor. The zero value is not usable: backends make
// tensors. Several tensors may share one Buffer (Reshape); ops never write to their
// inputs unless their documentation says so (in-place updates such as AdamStep).
type Tensor struct {
	Shape  Shape
	DType  DType
	Buffer Buffer
}

// Len is the number of elements.
func (t *Tensor) Len() int { return t.Shape.Len() }

// Dim returns dimension i; negative i counts from the end (-1 is the last).
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

func (t *Tensor) String() string { return t.DType.String() + t.Shape.String() }

// Reshape returns a tensor with the same elements and buffer and a new shape. One
// dimension may be -1: it is inferred.
func (t *Tensor) Reshape(shape ...int) (*Tensor, error) {
	s := Shape(shape).Clone()
	infer, known := -1, 1
	for i, d := range s {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d < 0:
			return nil, fmt.Errorf("reshape %v to %v: bad dimension %d", t.Shape, Shape(shape), d)
		default:
			known *= d
		}
	}
	if infer >= 0 {
		if known == 0 || t.Len()%known != 0 {
			return nil, fmt.Errorf("reshape %v to %v: %w", t.Shape, Shape(shape), ErrShape)
		}
		s[infer] = t.Len() / known
	}
	if s.Len() != t.Len() {
		return nil, fmt.Errorf("reshape %v to %v: %d elements, not %d: %w", t.Shape, Shape(shape), s.Len(), t.Len(), ErrShape)
	}
	return &Tensor{Shape: s, DType: t.DType, Buffer: t.Buffer}, nil
}

// ErrShape is wrapped by every error about tensor shapes that do not fit an op.
var ErrShape = errors.New("shapes do not fit")

// ErrNotImplemented is returned by a backend that lacks an op. Callers may fall back to
// another backend on this error and only on this one.
var ErrNotImplemented = errors.New("not implemented by this backend")

// ShapeError builds the error for an op whose operand shapes do not fit: it names the
// op and every shape involved, and wraps ErrShape.
func ShapeError(op string, why string, ts ...*Tensor) error {
	parts := make([]string, 0, len(ts))
	for _, t := range ts {
		if t == nil {
			parts = append(parts, "nil")
			continue
		}
		parts = append(parts, t.Shape.String())
	}
	return fmt.Errorf("%s: %s (shapes %s): %w", op, why, strings.Join(parts, ", "), ErrShape)
}
