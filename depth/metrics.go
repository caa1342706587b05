package depth

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrNoValidPixels is returned by Compare when no pixel is valid in both maps (and the
// mask) within the depth caps: the metrics would be undefined.
var ErrNoValidPixels = errors.New("depth: compare: no pixel is valid in both maps")

// CompareOptions select the pixels Compare uses and how it treats the prediction,
// following the KITTI evaluation as Monodepth2 runs it.
type CompareOptions struct {
	// MinDepthM and MaxDepthM (metres; defaults 1e-3 and 80, KITTI's caps): ground-truth
	// pixels outside [MinDepthM, MaxDepthM] are not used, and predictions are clamped to
	// the range after scaling. MaxDepthM 0 means no upper cap.
	MinDepthM, MaxDepthM float64
	// MedianScaling multiplies the prediction by median(truth)/median(pred) over the
	// pixels used, for estimators without metric scale (monocular networks). Default off:
	// stereo depth is metric and must be judged as it is.
	MedianScaling bool
}

// DefaultCompareOptions returns KITTI's depth caps without median scaling.
func DefaultCompareOptions() CompareOptions {
	return CompareOptions{MinDepthM: 1e-3, MaxDepthM: 80}
}

// Validate reports options Compare cannot use.
func (o CompareOptions) Validate() error {
	if !(o.MinDepthM >= 0) || math.IsInf(o.MinDepthM, 0) {
		return fmt.Errorf("depth: compare: MinDepthM %g must be finite and not negative", o.MinDepthM)
	}
	if o.MaxDepthM != 0 && !(o.MaxDepthM > o.MinDepthM) {
		return fmt.Errorf("depth: compare: MaxDepthM %g must be 0 (no cap) or above MinDepthM %g", o.MaxDepthM, o.MinDepthM)
	}
	return nil
}

// Metrics are the KITTI depth metrics of a prediction against ground truth, over the
// pixels Compare used. Lower is better except for the δ accuracies.
type Metrics struct {
	AbsRel  float64 // mean |p−t|/t
	SqRel   float64 // mean (p−t)²/t, metres
	RMSE    float64 // sqrt(mean (p−t)²), metres
	RMSELog float64 // sqrt(mean (ln p − ln t)²)
	Delta1  float64 // fraction with max(p/t, t/p) < 1.25
	Delta2  float64 // ... < 1.25²
	Delta3  float64 // ... < 1.25³
	// MedianAbsRel is the median of |p−t|/t: robust to the gross outliers of a matcher.
	MedianAbsRel float64
	// Scale is the factor applied to the prediction (1 without median scaling).
	Scale float64
	// N is the number of pixels used.
	N int
}

func (m Metrics) String() string {
	return fmt.Sprintf("abs_rel=%.4f sq_rel=%.4f rmse=%.3f rmse_log=%.4f d1=%.4f d2=%.4f d3=%.4f med_abs_rel=%.4f n=%d",
		m.AbsRel, m.SqRel, m.RMSE, m.RMSELog, m.Delta1, m.Delta2, m.Delta3, m.MedianAbsRel, m.N)
}

// Compare computes the KITTI depth metrics of pred against truth. A pixel is used when
// both maps hold a valid depth there (positive and finite), mask is nil or true there,
// and the truth lies within the options' caps. Metrics are accumulated in float64.
func Compare(pred, truth Map, mask []bool, opt CompareOptions) (Metrics, error) {
	if err := opt.Validate(); err != nil {
		return Metrics{}, err
	}
	if err := checkMap("predicted", pred); err != nil {
		return Metrics{}, err
	}
	if err := checkMap("truth", truth); err != nil {
		return Metrics{}, err
	}
	if pred.Width != truth.Width || pred.Height != truth.Height {
		return Metrics{}, fmt.Errorf("depth: compare: prediction %dx%d, truth %dx%d: %w",
			pred.Width, pred.Height, truth.Width, truth.Height, ErrSizeMismatch)
	}
	if mask != nil && len(mask) != len(truth.M) {
		return Metrics{}, fmt.Errorf("depth: compare: mask of %d for %dx%d maps: %w",
			len(mask), truth.Width, truth.Height, ErrSizeMismatch)
	}
	maxT := opt.MaxDepthM
	if maxT == 0 {
		maxT = math.MaxFloat64
	}
	var p, t []float64
	for i, tz := range truth.M {
		pz := pred.M[i]
		if mask != nil && !mask[i] {
			continue
		}
		tv, pv := float64(tz), float64(pz)
		if !(tv > 0) || tv < opt.MinDepthM || tv > maxT || !(pv > 0) || math.IsInf(pv, 0) {
			continue
		}
		p = append(p, pv)
		t = append(t, tv)
	}
	if len(p) == 0 {
		return Metrics{}, ErrNoValidPixels
	}

	scale := 1.0
	if opt.MedianScaling {
		scale = median(slices.Clone(t)) / median(slices.Clone(p))
	}
	var r Metrics
	r.Scale, r.N = scale, len(p)
	rel := make([]float64, len(p))
	var sumAbsRel, sumSqRel, sumSq, sumSqLog float64
	var d1, d2, d3 int
	for i := range p {
		pv := min(max(p[i]*scale, opt.MinDepthM), maxT)
		tv := t[i]
		diff := pv - tv
		rel[i] = math.Abs(diff) / tv
		sumAbsRel += rel[i]
		sumSqRel += diff * diff / tv
		sumSq += diff * diff
		l := math.Log(pv) - math.Log(tv)
		sumSqLog += l * l
		ratio := max(pv/tv, tv/pv)
		if ratio < 1.25 {
			d1++
		}
		if ratio < 1.25*1.25 {
			d2++
		}
		if ratio < 1.25*1.25*1.25 {
			d3++
		}
	}
	n := float64(len(p))
	r.AbsRel = sumAbsRel / n
	r.SqRel = sumSqRel / n
	r.RMSE = math.Sqrt(sumSq / n)
	r.RMSELog = math.Sqrt(sumSqLog / n)
	r.Delta1, r.Delta2, r.Delta3 = float64(d1)/n, float64(d2)/n, float64(d3)/n
	r.MedianAbsRel = median(rel)
	return r, nil
}

// median sorts v in place and returns its median (the mean of the middle two for an
// even length).
func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// ValidFraction is the fraction of pixels of m that hold a depth (positive and finite);
// 0 for an empty map.
func ValidFraction(m Map) float64 {
	if len(m.M) == 0 {
		return 0
	}
	n := 0
	for _, z := range m.M {
		if z > 0 && z <= math.MaxFloat32 {
			n++
		}
	}
	return float64(n) / float64(len(m.M))
}
