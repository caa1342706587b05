package depth

import (
	"errors"
	"math"
	"testing"
)

func TestDisparityToDepth(t *testing.T) {
	const fx, b = 500.0, 0.12 // fx·B = 60 px·m
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	tests := []struct {
		name string
		d, z float32
	}{
		{"near", 60, 1},
		{"far", 2, 30},
		{"subpixel", 0.5, 120},
		{"zero", 0, 0},
		{"matcher invalid marker", -1, 0},
		{"NaN", nan, 0},
		{"+Inf", inf, 0},
		{"-Inf", -inf, 0},
		{"denormal overflows to Inf", 1e-44, 0},
	}
	disp := make([]float32, len(tests))
	for i, tt := range tests {
		disp[i] = tt.d
	}
	out := NewMap(len(tests), 1)
	if err := DisparityToDepth(disp, fx, b, out); err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		if got := out.M[i]; math.Abs(float64(got-tt.z)) > 1e-6*float64(tt.z) {
			t.Errorf("%s: disparity %g -> %g m, want %g", tt.name, tt.d, got, tt.z)
		}
	}

	back := make([]float32, len(tests))
	if err := DepthToDisparity(out, fx, b, back); err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		want := tt.d
		if tt.z == 0 {
			want = 0
		}
		if math.Abs(float64(back[i]-want)) > 1e-5*float64(want) {
			t.Errorf("%s: round trip %g -> %g", tt.name, tt.d, back[i])
		}
	}
}

func TestDepthToDisparityInvalid(t *testing.T) {
	m := Map{Width: 4, Height: 1, M: []float32{0, -1, float32(math.NaN()), float32(math.Inf(1))}}
	out := []float32{9, 9, 9, 9}
	if err := DepthToDisparity(m, 500, 0.1, out); err != nil {
		t.Fatal(err)
	}
	for i, d := range out {
		if d != 0 {
			t.Errorf("depth %g -> disparity %g, want 0", m.M[i], d)
		}
	}
}

func TestDisparityConversionErrors(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		out     Map
		fx, b   float64
		sizeErr bool
	}{
		{"short disparity", 3, NewMap(2, 2), 500, 0.1, true},
		{"corrupt map", 4, Map{Width: 3, Height: 3, M: make([]float32, 4)}, 500, 0.1, true},
		{"zero fx", 4, NewMap(2, 2), 0, 0.1, false},
		{"NaN fx", 4, NewMap(2, 2), math.NaN(), 0.1, false},
		{"negative baseline", 4, NewMap(2, 2), 500, -0.1, false},
		{"infinite baseline", 4, NewMap(2, 2), 500, math.Inf(1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := DisparityToDepth(make([]float32, tt.n), tt.fx, tt.b, tt.out)
			if err == nil || errors.Is(err, ErrSizeMismatch) != tt.sizeErr {
				t.Errorf("DisparityToDepth: %v", err)
			}
			err = DepthToDisparity(tt.out, tt.fx, tt.b, make([]float32, tt.n))
			if err == nil || errors.Is(err, ErrSizeMismatch) != tt.sizeErr {
				t.Errorf("DepthToDisparity: %v", err)
			}
		})
	}
}
