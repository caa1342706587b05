package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"

	cam "github.com/edgedepth/edgedepth/camera"
)

// Augment is Monodepth2's training augmentation: each sample is, independently,
// colour-jittered with probability JitterProb and mirrored left-right with probability
// FlipProb. One jitter draw serves all frames of a sample (the photometric loss needs
// them to agree); jitter produces copies for the networks only (Sample.TargetAug, ...)
// while the loss keeps comparing the originals. A flip mirrors every image of the
// sample, the other eye included, so it must also mirror cx and negate the baseline
// (the mirrored left eye sees the world as a right eye would).
type Augment struct {
	// JitterProb is the probability in [0, 1] that a sample is colour-jittered.
	JitterProb float64
	// FlipProb is the probability in [0, 1] that a sample is mirrored.
	FlipProb float64
	// Brightness, Contrast and Saturation are the jitter strengths x ≥ 0: each factor
	// is drawn uniformly from [max(0, 1−x), 1+x]; 1 leaves the image as it is.
	Brightness, Contrast, Saturation float64
	// Hue is the largest hue shift in turns, in [0, 0.5]: the shift is drawn
	// uniformly from [−Hue, Hue].
	Hue float64
}

// DefaultAugment is Monodepth2's: jitter and flip each with probability 0.5,
// brightness, contrast and saturation ±0.2, hue ±0.1 turn.
func DefaultAugment() Augment {
	return Augment{JitterProb: 0.5, FlipProb: 0.5, Brightness: 0.2, Contrast: 0.2, Saturation: 0.2, Hue: 0.1}
}

// Validate names the first field out of range.
func (a Augment) Validate() error {
	for _, f := range []struct {
		name      string
		v, lo, hi float64
	}{
		{"JitterProb", a.JitterProb, 0, 1}, {"FlipProb", a.FlipProb, 0, 1},
		{"Brightness", a.Brightness, 0, math.MaxFloat64}, {"Contrast", a.Contrast, 0, math.MaxFloat64},
		{"Saturation", a.Saturation, 0, math.MaxFloat64}, {"Hue", a.Hue, 0, 0.5},
	} {
		if !(f.v >= f.lo && f.v <= f.hi) {
			return fmt.Errorf("trainer: augment %s = %g: must be in [%g, %g]", f.name, f.v, f.lo, f.hi)
		}
	}
	return nil
}

// JitterOp is one colour operation of a ColorJitter.
type JitterOp uint8

// The colour operations, applied in the order ColorJitter.Order gives.
const (
	JitterBrightness JitterOp = iota
	JitterContrast
	JitterSaturation
	JitterHue
)

// ColorJitter is one draw of colour-jitter parameters, as torchvision's ColorJitter
// applies them: each operation blends the image with a reference and clamps to
// [0, 1] — brightness with black (x·b), contrast with the mean grey level of the
// whole image (m + c·(x − m)), saturation with the pixel's own grey level (g + s·(x −
// g)), grey = 0.299 R + 0.587 G + 0.114 B — and hue rotates the HSV hue by Hue turns.
type ColorJitter struct {
	Brightness, Contrast, Saturation float64 // factors, 1 = unchanged
	Hue                              float64 // shift in turns, 0 = unchanged
	Order                            [4]JitterOp
}

// drawJitter draws one ColorJitter of a's strengths from r.
func (a Augment) drawJitter(r *rand.Rand) *ColorJitter {
	factor := func(x float64) float64 {
		lo := math.Max(0, 1-x)
		return lo + r.Float64()*(1+x-lo)
	}
	j := &ColorJitter{
		Brightness: factor(a.Brightness),
		Contrast:   factor(a.Contrast),
		Saturation: factor(a.Saturation),
		Hue:        (2*r.Float64() - 1) * a.Hue,
	}
	for i, p := range r.Perm(4) {
		j.Order[i] = JitterOp(p)
	}
	return j
}

// Apply returns a copy of m with the jitter applied (rounded to 8 bits at the end).
func (j ColorJitter) Apply(m cam.Image) cam.Image {
	n := m.Width * m.Height
	v := make([]float32, 3*n)
	for i, p := range m.Pix {
		v[i] = pix255[p]
	}
	// Plain comparisons: the built-in min and max also order NaNs and signed zeros,
	// which costs a third of the jitter's time.
	clamp01 := func(x float32) float32 {
		if x < 0 {
			return 0
		}
		if x > 1 {
			return 1
		}
		return x
	}
	grey := func(p []float32) float32 { return 0.299*p[0] + 0.587*p[1] + 0.114*p[2] }
	for _, op := range j.Order {
		switch op {
		case JitterBrightness:
			if j.Brightness == 1 {
				continue
			}
			f := float32(j.Brightness)
			for i := range v {
				v[i] = clamp01(f * v[i])
			}
		case JitterContrast:
			if j.Contrast == 1 {
				continue
			}
			var sum float64
			for p := 0; p < len(v); p += 3 {
				sum += float64(grey(v[p : p+3]))
			}
			mean := float32(sum / float64(max(n, 1)))
			f := float32(j.Contrast)
			for i := range v {
				v[i] = clamp01(mean + f*(v[i]-mean))
			}
		case JitterSaturation:
			if j.Saturation == 1 {
				continue
			}
			f := float32(j.Saturation)
			for p := 0; p < len(v); p += 3 {
				g := grey(v[p : p+3])
				for c := p; c < p+3; c++ {
					v[c] = clamp01(g + f*(v[c]-g))
				}
			}
		case JitterHue:
			if j.Hue == 0 {
				continue
			}
			h := float32(j.Hue)
			for p := 0; p < len(v); p += 3 {
				v[p], v[p+1], v[p+2] = shiftHue(v[p], v[p+1], v[p+2], h)
			}
		}
	}
	out := cam.NewImage(m.Width, m.Height)
	for i, x := range v {
		out.Pix[i] = byte(x*255 + 0.5)
	}
	return out
}

// shiftHue rotates the HSV hue of (r, g, b) ∈ [0, 1]³ by dh turns, keeping saturation
// and value. A rotation keeps the largest and smallest channel values, so each output
// channel is hi − c·ramp(hue at that channel's offset), with the usual trapezoid ramp
// of the HSV hexcone.
func shiftHue(r, g, b, dh float32) (float32, float32, float32) {
	hi, lo := r, r
	if g > hi {
		hi = g
	} else if g < lo {
		lo = g
	}
	if b > hi {
		hi = b
	} else if b < lo {
		lo = b
	}
	c := hi - lo
	if c == 0 {
		return r, g, b // grey: no hue
	}
	var h6 float32 // hue in sixths of a turn
	switch hi {
	case r:
		h6 = (g - b) / c
	case g:
		h6 = (b-r)/c + 2
	default:
		h6 = (r-g)/c + 4
	}
	h6 += 6 * dh
	if h6 < 0 || h6 >= 6 {
		h6 -= 6 * float32(math.Floor(float64(h6/6)))
	}
	ch := func(n float32) float32 {
		k := n + h6
		if k >= 6 {
			k -= 6
		}
		// ramp = clamp(min(k, 4−k), 0, 1)
		ramp := k
		if 4-k < ramp {
			ramp = 4 - k
		}
		if ramp < 0 {
			ramp = 0
		} else if ramp > 1 {
			ramp = 1
		}
		return hi - c*ramp
	}
	return ch(5), ch(3), ch(1)
}

// FlipImage returns m mirrored left-right, as a new image.
func FlipImage(m cam.Image) cam.Image {
	if m.Pix == nil {
		return m
	}
	out := cam.NewImage(m.Width, m.Height)
	w := m.Width
	for y := range m.Height {
		src, dst := m.Pix[3*y*w:3*(y+1)*w], out.Pix[3*y*w:3*(y+1)*w]
		for x := range w {
			copy(dst[3*(w-1-x):3*(w-x)], src[3*x:3*x+3])
		}
	}
	return out
}

// flipDepth mirrors a row-major w-wide depth map, as a new slice.
func flipDepth(d []float32, w int) []float32 {
	if d == nil {
		return nil
	}
	out := make([]float32, len(d))
	for y := 0; y+w <= len(d); y += w {
		for x := range w {
			out[y+w-1-x] = d[y+x]
		}
	}
	return out
}

// FlipSample mirrors every image of s (targets, neighbours, other eye, jittered copies)
// and its truth depth left-right, mirrors the principal point (cx' = W−1−cx) and
// negates the baseline. s itself is left untouched.
func FlipSample(s Sample) Sample {
	for _, m := range []*cam.Image{&s.Target, &s.Prev, &s.Next, &s.Other, &s.TargetAug, &s.PrevAug, &s.NextAug} {
		*m = FlipImage(*m)
	}
	s.TruthDepth = flipDepth(s.TruthDepth, s.Intrinsics.Width)
	s.Intrinsics.Cx = float64(s.Intrinsics.Width-1) - s.Intrinsics.Cx
	s.BaselineM = -s.BaselineM
	s.Flipped = !s.Flipped
	return s
}

// augDraw is what augmentation drew for one sample.
type augDraw struct {
	flip   bool
	jitter *ColorJitter // nil: none
}

// draw makes the random choices of one sample: whether to jitter, whether to flip
// (two draws always), then the jitter parameters when jittering.
func (a Augment) draw(r *rand.Rand) augDraw {
	jitter := r.Float64() < a.JitterProb
	d := augDraw{flip: r.Float64() < a.FlipProb}
	if jitter {
		d.jitter = a.drawJitter(r)
	}
	return d
}

// apply does the pixel work of a draw: flip first, then jittered copies of the
// (possibly flipped) Target, Prev and Next.
func (d augDraw) apply(s Sample) Sample {
	if d.flip {
		s = FlipSample(s)
	}
	if d.jitter != nil {
		s.Jitter = d.jitter
		s.TargetAug = d.jitter.Apply(s.Target)
		if s.Prev.Pix != nil {
			s.PrevAug = d.jitter.Apply(s.Prev)
		}
		if s.Next.Pix != nil {
			s.NextAug = d.jitter.Apply(s.Next)
		}
	}
	return s
}

// Apply augments s with draws from r: first whether to jitter, then whether to flip
// (two draws always), then the jitter parameters when jittering. The jittered copies
// are made from the (possibly flipped) originals of Target, Prev and Next; s's images
// are never modified.
func (a Augment) Apply(s Sample, r *rand.Rand) Sample { return a.draw(r).apply(s) }
