package trainer

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	cam "github.com/edgedepth/edgedepth/camera"
)

// cloneSample deep-copies the images and truth of s, to check later that nothing
// wrote into them.
func cloneSample(s Sample) Sample {
	for _, m := range []*cam.Image{&s.Target, &s.Prev, &s.Next, &s.Other, &s.TargetAug, &s.PrevAug, &s.NextAug} {
		m.Pix = slices.Clone(m.Pix)
	}
	s.TruthDepth = slices.Clone(s.TruthDepth)
	return s
}

func sameImages(t *testing.T, what string, a, b Sample) {
	t.Helper()
	for _, p := range []struct {
		name string
		x, y cam.Image
	}{{"target", a.Target, b.Target}, {"prev", a.Prev, b.Prev}, {"next", a.Next, b.Next}, {"other", a.Other, b.Other}} {
		if !bytes.Equal(p.x.Pix, p.y.Pix) {
			t.Fatalf("%s: %s image changed", what, p.name)
		}
	}
	if !slices.Equal(a.TruthDepth, b.TruthDepth) {
		t.Fatalf("%s: truth depth changed", what)
	}
}

func mirrored(a, b cam.Image) bool {
	if a.Width != b.Width || a.Height != b.Height {
		return false
	}
	w := a.Width
	for y := range a.Height {
		for x := range w {
			if !bytes.Equal(a.Pix[3*(y*w+x):3*(y*w+x)+3], b.Pix[3*(y*w+w-1-x):3*(y*w+w-1-x)+3]) {
				return false
			}
		}
	}
	return true
}

func TestAugmentFlip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, tc := range []struct {
		name     string
		baseline float64
		jitter   bool
	}{
		{"left target", 0.2, false},
		{"right target", -0.2, false},
		{"left target, jittered too", 0.2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := randomSample(r, "x", 9, 5, tc.baseline)
			orig := cloneSample(s)
			a := Augment{FlipProb: 1}
			if tc.jitter {
				a = Augment{FlipProb: 1, JitterProb: 1, Brightness: 0.2, Contrast: 0.2, Saturation: 0.2, Hue: 0.1}
			}
			f := a.Apply(s, rand.New(rand.NewPCG(1, 2)))
			sameImages(t, "original after flip", s, orig)
			if !f.Flipped {
				t.Fatal("Flipped not set")
			}
			for _, p := range []struct {
				name string
				x, y cam.Image
			}{{"target", f.Target, s.Target}, {"prev", f.Prev, s.Prev}, {"next", f.Next, s.Next}, {"other eye", f.Other, s.Other}} {
				if !mirrored(p.x, p.y) {
					t.Errorf("%s not mirrored", p.name)
				}
			}
			w := s.Intrinsics.Width
			for y := range s.Intrinsics.Height {
				for x := range w {
					if f.TruthDepth[y*w+x] != s.TruthDepth[y*w+w-1-x] {
						t.Fatalf("truth depth not mirrored at (%d, %d)", x, y)
					}
				}
			}
			if want := float64(w-1) - s.Intrinsics.Cx; f.Intrinsics.Cx != want {
				t.Errorf("cx %v, want W−1−cx = %v", f.Intrinsics.Cx, want)
			}
			if f.Intrinsics.Fx != s.Intrinsics.Fx || f.Intrinsics.Fy != s.Intrinsics.Fy || f.Intrinsics.Cy != s.Intrinsics.Cy {
				t.Errorf("flip changed fx, fy or cy: %+v -> %+v", s.Intrinsics, f.Intrinsics)
			}
			if f.BaselineM != -tc.baseline {
				t.Errorf("baseline %v, want %v", f.BaselineM, -tc.baseline)
			}
			if tc.jitter {
				// The networks see the flipped images, jittered.
				if want := f.Jitter.Apply(f.Target); !bytes.Equal(f.TargetAug.Pix, want.Pix) {
					t.Error("jittered target is not the flipped target, jittered")
				}
				if want := f.Jitter.Apply(f.Prev); !bytes.Equal(f.PrevAug.Pix, want.Pix) {
					t.Error("jittered prev is not the flipped prev, jittered")
				}
			}
			back := FlipSample(f)
			sameImages(t, "double flip", back, orig)
			if back.Intrinsics != s.Intrinsics || back.BaselineM != s.BaselineM || back.Flipped {
				t.Errorf("double flip: %+v %v %v, want %+v %v false", back.Intrinsics, back.BaselineM, back.Flipped, s.Intrinsics, s.BaselineM)
			}
		})
	}
}

// uniformImage is one colour everywhere.
func uniformImage(w, h int, rgb [3]byte) cam.Image {
	m := cam.NewImage(w, h)
	for i := range w * h {
		copy(m.Pix[3*i:], rgb[:])
	}
	return m
}

func TestAugmentJitterOps(t *testing.T) {
	for _, tc := range []struct {
		name string
		j    ColorJitter
		in   [3]byte
		want [3]byte
	}{
		{"brightness up", ColorJitter{Brightness: 1.2, Contrast: 1, Saturation: 1}, [3]byte{100, 50, 200}, [3]byte{120, 60, 240}},
		{"brightness clamps", ColorJitter{Brightness: 1.2, Contrast: 1, Saturation: 1}, [3]byte{250, 0, 10}, [3]byte{255, 0, 12}},
		{"saturation 0 is grey", ColorJitter{Brightness: 1, Contrast: 1, Saturation: 0}, [3]byte{200, 100, 0}, [3]byte{119, 119, 119}},
		{"contrast of a uniform image", ColorJitter{Brightness: 1, Contrast: 0.8, Saturation: 1}, [3]byte{90, 90, 90}, [3]byte{90, 90, 90}},
		{"hue third turn: red to green", ColorJitter{Brightness: 1, Contrast: 1, Saturation: 1, Hue: 1.0 / 3}, [3]byte{255, 0, 0}, [3]byte{0, 255, 0}},
		{"hue minus third turn: red to blue", ColorJitter{Brightness: 1, Contrast: 1, Saturation: 1, Hue: -1.0 / 3}, [3]byte{255, 0, 0}, [3]byte{0, 0, 255}},
		{"hue leaves grey", ColorJitter{Brightness: 1, Contrast: 1, Saturation: 1, Hue: 0.1}, [3]byte{77, 77, 77}, [3]byte{77, 77, 77}},
		{"identity", ColorJitter{Brightness: 1, Contrast: 1, Saturation: 1}, [3]byte{1, 2, 3}, [3]byte{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.j.Order = [4]JitterOp{JitterBrightness, JitterContrast, JitterSaturation, JitterHue}
			out := tc.j.Apply(uniformImage(3, 2, tc.in))
			for i := 0; i < len(out.Pix); i += 3 {
				for c := range 3 {
					if d := int(out.Pix[i+c]) - int(tc.want[c]); d < -1 || d > 1 {
						t.Fatalf("%v -> %v, want %v", tc.in, out.Pix[i:i+3], tc.want)
					}
				}
			}
		})
	}
	// Contrast blends with the image's mean grey: black and white halves move towards it.
	m := cam.NewImage(2, 1)
	copy(m.Pix[3:], []byte{200, 200, 200})
	out := ColorJitter{Brightness: 1, Contrast: 0.5, Saturation: 1, Order: [4]JitterOp{1, 0, 2, 3}}.Apply(m)
	if out.Pix[0] != 50 || out.Pix[3] != 150 {
		t.Fatalf("contrast 0.5 of (0, 200) gave (%d, %d), want (50, 150)", out.Pix[0], out.Pix[3])
	}
}

func TestAugmentJitter(t *testing.T) {
	a := DefaultAugment()
	a.JitterProb, a.FlipProb = 1, 0
	r := rand.New(rand.NewPCG(5, 5))
	changed := 0
	for i := range 40 {
		s := randomSample(r, "j", 16, 8, 0.1)
		// Prev holds the target's pixels in its own buffer: its jittered copy must be
		// the target's, byte for byte (one draw per sample, applied identically).
		s.Prev = cam.Image{Width: s.Target.Width, Height: s.Target.Height, Pix: slices.Clone(s.Target.Pix)}
		orig := cloneSample(s)
		j := a.Apply(s, r)
		sameImages(t, "original after jitter", s, orig)
		sameImages(t, "loss images of the jittered sample", j, orig)
		if j.Jitter == nil || j.TargetAug.Pix == nil || j.PrevAug.Pix == nil || j.NextAug.Pix == nil {
			t.Fatalf("sample %d: jitter %v, aug copies %v %v %v", i, j.Jitter, j.TargetAug.Pix != nil, j.PrevAug.Pix != nil, j.NextAug.Pix != nil)
		}
		if j.Other.Pix == nil || &j.Other.Pix[0] != &s.Other.Pix[0] {
			t.Fatal("the other eye is a loss-only image: it must stay as it is")
		}
		p := j.Jitter
		for _, f := range []struct {
			name      string
			v, lo, hi float64
		}{{"brightness", p.Brightness, 0.8, 1.2}, {"contrast", p.Contrast, 0.8, 1.2}, {"saturation", p.Saturation, 0.8, 1.2}, {"hue", p.Hue, -0.1, 0.1}} {
			if f.v < f.lo || f.v > f.hi {
				t.Fatalf("sample %d: %s %v outside [%v, %v]", i, f.name, f.v, f.lo, f.hi)
			}
		}
		perm := slices.Clone(p.Order[:])
		slices.Sort(perm)
		if !slices.Equal(perm, []JitterOp{0, 1, 2, 3}) {
			t.Fatalf("order %v is not a permutation of the four operations", p.Order)
		}
		if !bytes.Equal(j.TargetAug.Pix, j.PrevAug.Pix) {
			t.Fatalf("sample %d: identical frames jittered differently", i)
		}
		if want := p.Apply(s.Next); !bytes.Equal(j.NextAug.Pix, want.Pix) {
			t.Fatalf("sample %d: next frame not jittered with the sample's draw", i)
		}
		if !bytes.Equal(j.TargetAug.Pix, s.Target.Pix) {
			changed++
		}
	}
	if changed < 39 {
		t.Errorf("only %d of 40 jittered samples changed", changed)
	}
}

func TestAugmentProbabilities(t *testing.T) {
	a := DefaultAugment()
	s := randomSample(rand.New(rand.NewPCG(1, 1)), "p", 4, 2, 0.1)
	run := func(seed uint64) (jit, flip int, ids []bool) {
		r := rand.New(rand.NewPCG(seed, 9))
		for range 400 {
			o := a.Apply(s, r)
			if o.Jitter != nil {
				jit++
			}
			if o.Flipped {
				flip++
			}
			ids = append(ids, o.Flipped, o.Jitter != nil)
		}
		return
	}
	jit, flip, first := run(42)
	if jit < 160 || jit > 240 || flip < 160 || flip > 240 {
		t.Errorf("of 400 samples %d jittered and %d flipped, want about 200 each", jit, flip)
	}
	if _, _, again := run(42); !slices.Equal(first, again) {
		t.Error("the same seed gave different augmentation")
	}
	if err := (Augment{Hue: 0.6}).Validate(); err == nil {
		t.Error("hue 0.6 accepted")
	}
	if err := DefaultAugment().Validate(); err != nil {
		t.Error(err)
	}
}

// hueRef rotates the hue the textbook way, in float64: RGB → HSV, shift, HSV → RGB.
func hueRef(r, g, b, dh float64) (float64, float64, float64) {
	v := math.Max(r, math.Max(g, b))
	c := v - math.Min(r, math.Min(g, b))
	if c == 0 {
		return r, g, b
	}
	var h float64
	switch v {
	case r:
		h = math.Mod((g-b)/c, 6)
	case g:
		h = (b-r)/c + 2
	default:
		h = (r-g)/c + 4
	}
	h = math.Mod(h/6+dh+2, 1) * 6
	x := c * (1 - math.Abs(math.Mod(h, 2)-1))
	m := v - c
	var rr, gg, bb float64
	switch int(h) {
	case 0:
		rr, gg, bb = c, x, 0
	case 1:
		rr, gg, bb = x, c, 0
	case 2:
		rr, gg, bb = 0, c, x
	case 3:
		rr, gg, bb = 0, x, c
	case 4:
		rr, gg, bb = x, 0, c
	default:
		rr, gg, bb = c, 0, x
	}
	return rr + m, gg + m, bb + m
}

func TestAugmentHueReference(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for i := range 20000 {
		c := [3]float64{r.Float64(), r.Float64(), r.Float64()}
		if i%7 == 0 {
			c[i%3] = c[(i+1)%3] // ties between channels
		}
		dh := 2*r.Float64() - 1
		wr, wg, wb := hueRef(c[0], c[1], c[2], dh)
		gr, gg, gb := shiftHue(float32(c[0]), float32(c[1]), float32(c[2]), float32(dh))
		if math.Abs(float64(gr)-wr) > 1e-5 || math.Abs(float64(gg)-wg) > 1e-5 || math.Abs(float64(gb)-wb) > 1e-5 {
			t.Fatalf("hue shift %.4f of %v: got (%v, %v, %v), want (%v, %v, %v)", dh, c, gr, gg, gb, wr, wg, wb)
		}
	}
}
