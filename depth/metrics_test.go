package depth

import (
	"errors"
	"math"
	"testing"
)

func approx(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestCompare(t *testing.T) {
	ln2 := math.Ln2
	tests := []struct {
		name        string
		pred, truth []float32
		mask        []bool
		opt         CompareOptions
		want        Metrics
	}{
		{
			name: "perfect", pred: []float32{1, 2, 3}, truth: []float32{1, 2, 3},
			opt:  DefaultCompareOptions(),
			want: Metrics{Delta1: 1, Delta2: 1, Delta3: 1, Scale: 1, N: 3},
		},
		{
			// Worked by hand: errors 1, 0, −2 on truths 1, 2, 4; ratios 2, 1, 2.
			name: "hand", pred: []float32{2, 2, 2}, truth: []float32{1, 2, 4},
			opt: DefaultCompareOptions(),
			want: Metrics{
				AbsRel: 0.5, SqRel: 2.0 / 3, RMSE: math.Sqrt(5.0 / 3), RMSELog: ln2 * math.Sqrt(2.0/3),
				Delta1: 1.0 / 3, Delta2: 1.0 / 3, Delta3: 1.0 / 3, MedianAbsRel: 0.5, Scale: 1, N: 3,
			},
		},
		{
			// Only the middle pixel survives: invalid prediction, invalid truth, masked
			// out, truth beyond the cap, NaN prediction.
			name: "selection", pred: []float32{0, 2, 3, 4, 5, float32(math.NaN())},
			truth: []float32{1, 2.5, 0, 4, 90, 6},
			mask:  []bool{true, true, true, false, true, true},
			opt:   DefaultCompareOptions(),
			want: Metrics{
				AbsRel: 0.2, SqRel: 0.1, RMSE: 0.5, RMSELog: math.Abs(math.Log(0.8)),
				// The ratio is exactly 1.25: δ<1.25 is strict.
				Delta1: 0, Delta2: 1, Delta3: 1, MedianAbsRel: 0.2, Scale: 1, N: 1,
			},
		},
		{
			name: "median scaling", pred: []float32{2, 4, 6}, truth: []float32{1, 2, 3},
			opt:  CompareOptions{MinDepthM: 1e-3, MaxDepthM: 80, MedianScaling: true},
			want: Metrics{Delta1: 1, Delta2: 1, Delta3: 1, Scale: 0.5, N: 3},
		},
		{
			// Predictions are clamped to the caps after scaling (Monodepth2 does too).
			name: "clamp", pred: []float32{200}, truth: []float32{40},
			opt: CompareOptions{MinDepthM: 1, MaxDepthM: 80},
			want: Metrics{
				AbsRel: 1, SqRel: 40, RMSE: 40, RMSELog: ln2, Delta1: 0, Delta2: 0, Delta3: 0,
				MedianAbsRel: 1, Scale: 1, N: 1,
			},
		},
		{
			name: "no upper cap", pred: []float32{200}, truth: []float32{200},
			opt:  CompareOptions{},
			want: Metrics{Delta1: 1, Delta2: 1, Delta3: 1, Scale: 1, N: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pred := Map{Width: len(tt.pred), Height: 1, M: tt.pred}
			truth := Map{Width: len(tt.truth), Height: 1, M: tt.truth}
			got, err := Compare(pred, truth, tt.mask, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			w := tt.want
			if got.N != w.N || !approx(got.AbsRel, w.AbsRel) || !approx(got.SqRel, w.SqRel) ||
				!approx(got.RMSE, w.RMSE) || !approx(got.RMSELog, w.RMSELog) ||
				!approx(got.Delta1, w.Delta1) || !approx(got.Delta2, w.Delta2) ||
				!approx(got.Delta3, w.Delta3) || !approx(got.MedianAbsRel, w.MedianAbsRel) ||
				!approx(got.Scale, w.Scale) {
				t.Errorf("got  %v scale=%g\nwant %v scale=%g", got, got.Scale, w, w.Scale)
			}
		})
	}
}

func TestCompareErrors(t *testing.T) {
	m := NewMap(2, 2)
	m.M[0] = 1
	tests := []struct {
		name        string
		pred, truth Map
		mask        []bool
		opt         CompareOptions
		is          error
	}{
		{"size", m, NewMap(4, 1), nil, DefaultCompareOptions(), ErrSizeMismatch},
		{"corrupt", Map{Width: 2, Height: 2}, m, nil, DefaultCompareOptions(), ErrSizeMismatch},
		{"mask", m, m, make([]bool, 3), DefaultCompareOptions(), ErrSizeMismatch},
		{"nothing valid", m, NewMap(2, 2), nil, DefaultCompareOptions(), ErrNoValidPixels},
		{"all masked", m, m, make([]bool, 4), DefaultCompareOptions(), ErrNoValidPixels},
		{"negative min", m, m, nil, CompareOptions{MinDepthM: -1}, nil},
		{"max under min", m, m, nil, CompareOptions{MinDepthM: 2, MaxDepthM: 1}, nil},
		{"NaN min", m, m, nil, CompareOptions{MinDepthM: math.NaN()}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compare(tt.pred, tt.truth, tt.mask, tt.opt)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("Compare: %v, want %v", err, tt.is)
			}
		})
	}
}

func TestValidFraction(t *testing.T) {
	tests := []struct {
		m    Map
		want float64
	}{
		{NewMap(0, 0), 0},
		{NewMap(2, 2), 0},
		{Map{Width: 4, Height: 1, M: []float32{1, 0, -1, 2}}, 0.5},
		{Map{Width: 2, Height: 1, M: []float32{float32(math.Inf(1)), float32(math.NaN())}}, 0},
	}
	for _, tt := range tests {
		if got := ValidFraction(tt.m); got != tt.want {
			t.Errorf("ValidFraction(%v) = %g, want %g", tt.m.M, got, tt.want)
		}
	}
}
