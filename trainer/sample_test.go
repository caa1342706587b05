package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	cam "github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/tensor/cpu"
)

// blobImage draws Gaussian spots of standard deviation sigma pixels, centred at pts
// (pixel coordinates, centres on integers), on black.
func blobImage(w, h int, sigma float64, pts [][2]float64) cam.Image {
	m := cam.NewImage(w, h)
	for y := range h {
		for x := range w {
			var v float64
			for _, p := range pts {
				dx, dy := float64(x)-p[0], float64(y)-p[1]
				v += 250 * math.Exp(-(dx*dx+dy*dy)/(2*sigma*sigma))
			}
			b := byte(math.Min(255, math.Round(v)))
			i := 3 * (y*w + x)
			m.Pix[i], m.Pix[i+1], m.Pix[i+2] = b, b/2, 255-b
		}
	}
	return m
}

// blobCentroid is the brightness-weighted mean position of channel 0 within radius r of
// (cx, cy).
func blobCentroid(m cam.Image, cx, cy, r float64) (float64, float64) {
	var sx, sy, sw float64
	for y := range m.Height {
		for x := range m.Width {
			if math.Hypot(float64(x)-cx, float64(y)-cy) > r {
				continue
			}
			v := float64(m.Pix[3*(y*m.Width+x)])
			sx, sy, sw = sx+v*float64(x), sy+v*float64(y), sw+v
		}
	}
	return sx / sw, sy / sw
}

func projectPinhole(k cam.Intrinsics, p [3]float64) [2]float64 {
	return [2]float64{k.Fx*p[0]/p[2] + k.Cx, k.Fy*p[1]/p[2] + k.Cy}
}

func TestSampleResizeIntrinsics(t *testing.T) {
	points := [][3]float64{{0, 0, 5}, {-1.2, 0.5, 4}, {1.5, -0.8, 6}, {0.3, 0.9, 3}}
	for _, tc := range []struct {
		name       string
		sw, sh     int
		dw, dh     int
		sigmaSrcPx float64
	}{
		{"halve", 640, 480, 320, 240, 4},
		{"uneven shrink 4x5", 640, 480, 160, 96, 8},
		{"non-integer shrink", 400, 300, 250, 120, 6},
		{"enlarge", 80, 60, 200, 150, 2},
		{"same size", 64, 48, 64, 48, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := cam.Intrinsics{Fx: 0.6 * float64(tc.sw), Fy: 0.62 * float64(tc.sw), Cx: 0.47 * float64(tc.sw), Cy: 0.53 * float64(tc.sh), Width: tc.sw, Height: tc.sh}
			var src [][2]float64
			for _, p := range points {
				src = append(src, projectPinhole(k, p))
			}
			img := blobImage(tc.sw, tc.sh, tc.sigmaSrcPx, src)
			out := ResizeImage(img, tc.dw, tc.dh)
			if out.Width != tc.dw || out.Height != tc.dh || len(out.Pix) != 3*tc.dw*tc.dh {
				t.Fatalf("resized to %dx%d (%d bytes), want %dx%d", out.Width, out.Height, len(out.Pix), tc.dw, tc.dh)
			}
			k2 := ScaleIntrinsics(k, tc.dw, tc.dh)
			sx := float64(tc.dw) / float64(tc.sw)
			if k2.Width != tc.dw || k2.Height != tc.dh || math.Abs(k2.Fx-k.Fx*sx) > 1e-9 || math.Abs(k2.Cx-((k.Cx+0.5)*sx-0.5)) > 1e-9 {
				t.Fatalf("scaled intrinsics %+v from %+v", k2, k)
			}
			for i, p := range points {
				want := projectPinhole(k2, p)
				gx, gy := blobCentroid(out, want[0], want[1], 3*tc.sigmaSrcPx*math.Max(sx, float64(tc.dh)/float64(tc.sh)))
				// 0.1 px, well inside the brief's 0.5 px: scaling cx as cx·sx (the
				// corner convention) would be off by (1−sx)/2, 0.25 px when halving.
				if math.Abs(gx-want[0]) > 0.1 || math.Abs(gy-want[1]) > 0.1 {
					t.Errorf("point %d: blob at (%.3f, %.3f) in the resized image, scaled K projects it to (%.3f, %.3f)", i, gx, gy, want[0], want[1])
				}
			}
		})
	}
}

func TestSampleResizeAntiAliased(t *testing.T) {
	// A one-pixel checkerboard averages to grey when halved; point sampling would
	// keep black or white.
	m := cam.NewImage(64, 32)
	for y := range 32 {
		for x := range 64 {
			if (x+y)%2 == 0 {
				copy(m.Pix[3*(y*64+x):], []byte{255, 255, 255})
			}
		}
	}
	for _, sz := range [][2]int{{32, 16}, {16, 8}, {20, 10}} {
		out := ResizeImage(m, sz[0], sz[1])
		for i, v := range out.Pix {
			if v < 120 || v > 136 {
				t.Fatalf("%dx%d: byte %d = %d, want grey about 128", sz[0], sz[1], i, v)
			}
		}
	}
	if got := ResizeImage(m, 64, 32); &got.Pix[0] != &m.Pix[0] {
		t.Error("same-size resize copied the image")
	}
}

func TestSampleResizeDepth(t *testing.T) {
	d := []float32{
		1, 1, 2, 2,
		1, 1, 2, 2,
		0, 0, 5, 5,
		0, 0, 5, 5,
	}
	got := ResizeDepth(d, 4, 4, 2, 2)
	want := []float32{1, 2, 0, 5}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("nearest depth %v, want %v (no averaging across edges or into unknown)", got, want)
		}
	}
}

// randomRGB fills a w x h image with random bytes.
func randomRGB(r *rand.Rand, w, h int) cam.Image {
	m := cam.NewImage(w, h)
	for i := range m.Pix {
		m.Pix[i] = byte(r.IntN(256))
	}
	return m
}

// randomSample is a sample of random images with distinct intrinsics.
func randomSample(r *rand.Rand, id string, w, h int, baseline float64) Sample {
	s := Sample{
		ID:         id,
		Target:     randomRGB(r, w, h),
		Prev:       randomRGB(r, w, h),
		Next:       randomRGB(r, w, h),
		Other:      randomRGB(r, w, h),
		Intrinsics: cam.Intrinsics{Fx: 50 + 10*r.Float64(), Fy: 60 + 10*r.Float64(), Cx: float64(w)/2 + r.Float64(), Cy: float64(h)/2 - r.Float64(), Width: w, Height: h},
		BaselineM:  baseline,
		TruthDepth: make([]float32, w*h),
	}
	for i := range s.TruthDepth {
		s.TruthDepth[i] = 1 + 10*r.Float32()
	}
	return s
}

func TestMakeBatch(t *testing.T) {
	const w, h = 12, 8
	b := cpu.New(1)
	jitterAll := Augment{JitterProb: 1, Brightness: 0.2, Contrast: 0.2, Saturation: 0.2, Hue: 0.1}
	for _, tc := range []struct {
		name    string
		o       BatchOptions
		seeded  bool
		sources int
	}{
		{"both, validation (no noise)", BatchOptions{}, false, 3},
		{"both, noise", BatchOptions{Signals: SignalsBoth}, true, 3},
		{"temporal only", BatchOptions{Signals: SignalsTemporal}, true, 2},
		{"stereo only", BatchOptions{Signals: SignalsStereo}, true, 1},
		{"jittered", BatchOptions{Augment: &jitterAll}, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 1))
			samples := []Sample{randomSample(r, "a", w, h, 0.2), randomSample(r, "b", w, h, -0.2), randomSample(r, "c", w, h, 0.2)}
			var br *rand.Rand
			if tc.seeded {
				br = rand.New(rand.NewPCG(11, 2))
			}
			batch, err := MakeBatch(b, samples, tc.o, br)
			if err != nil {
				t.Fatal(err)
			}
			if (batch.Prev != nil) != tc.o.Signals.UseTemporal() || (batch.Next != nil) != tc.o.Signals.UseTemporal() || (batch.Stereo != nil) != tc.o.Signals.UseStereo() {
				t.Fatalf("signals %v: prev %v next %v stereo %v", tc.o.Signals, batch.Prev, batch.Next, batch.Stereo)
			}
			if got := len(batch.Sources()); got != tc.sources {
				t.Fatalf("%d sources, want %d", got, tc.sources)
			}
			// Re-apply the augmentation with the same draws to know what the network inputs hold.
			aug := samples
			if tc.o.Augment != nil {
				ar := rand.New(rand.NewPCG(11, 2))
				aug = nil
				for _, s := range samples {
					aug = append(aug, tc.o.Augment.Apply(s, ar))
				}
			}
			check := func(name string, v []float32, img func(s Sample) cam.Image) {
				t.Helper()
				for n := range samples {
					m := img(aug[n])
					for _, p := range [][3]int{{0, 0, 0}, {1, 3, 5}, {2, h - 1, w - 1}, {0, h / 2, 1}} {
						c, y, x := p[0], p[1], p[2]
						got := v[((n*3+c)*h+y)*w+x]
						want := float32(m.Pix[3*(y*w+x)+c]) / 255
						if got != want {
							t.Fatalf("%s[%d, %d, %d, %d] = %v, want %v", name, n, c, y, x, got, want)
						}
					}
				}
			}
			get := func(name string, x *tensor.Tensor) []float32 {
				t.Helper()
				if x == nil {
					t.Fatalf("%s missing", name)
				}
				v, err := b.ToHost(x)
				if err != nil {
					t.Fatal(err)
				}
				if s := x.Shape; len(s) != 4 || s[0] != len(samples) || s[1] != 3 || s[2] != h || s[3] != w {
					t.Fatalf("%s shape %v", name, s)
				}
				return v
			}
			check("Target", get("Target", batch.Target), func(s Sample) cam.Image { return s.Target })
			if tc.o.Signals.UseTemporal() {
				check("Prev", get("Prev", batch.Prev), func(s Sample) cam.Image { return s.Prev })
				check("Next", get("Next", batch.Next), func(s Sample) cam.Image { return s.Next })
			}
			if tc.o.Signals.UseStereo() {
				check("Stereo", get("Stereo", batch.Stereo), func(s Sample) cam.Image { return s.Other })
			}
			if tc.o.Augment != nil {
				check("TargetAug", get("TargetAug", batch.TargetAug), func(s Sample) cam.Image { return s.TargetAug })
				check("PrevAug", get("PrevAug", batch.PrevAug), func(s Sample) cam.Image { return s.PrevAug })
				check("NextAug", get("NextAug", batch.NextAug), func(s Sample) cam.Image { return s.NextAug })
			} else if batch.TargetAug != nil || batch.PrevAug != nil {
				t.Fatal("aug tensors without augmentation")
			}
			if len(batch.K) != 16*len(samples) || len(batch.Baseline) != len(samples) {
				t.Fatalf("%d K values and %d baselines for %d items", len(batch.K), len(batch.Baseline), len(samples))
			}
			for n, s := range aug {
				k := batch.K[16*n : 16*n+16]
				want := []float32{float32(s.Intrinsics.Fx), 0, float32(s.Intrinsics.Cx), 0, 0, float32(s.Intrinsics.Fy), float32(s.Intrinsics.Cy), 0, 0, 0, 1, 0, 0, 0, 0, 1}
				for i := range want {
					if k[i] != want[i] {
						t.Fatalf("item %d: K %v, want %v", n, k, want)
					}
				}
				if batch.Baseline[n] != float32(s.BaselineM) {
					t.Fatalf("item %d: baseline %v, want %v", n, batch.Baseline[n], s.BaselineM)
				}
			}
			if !tc.seeded {
				if batch.IdentityNoise != nil {
					t.Fatal("identity noise without a random source")
				}
				return
			}
			if s := batch.IdentityNoise.Shape; len(s) != 4 || s[0] != 3 || s[1] != tc.sources || s[2] != h || s[3] != w {
				t.Fatalf("identity noise shape %v, want (3, %d, %d, %d)", s, tc.sources, h, w)
			}
			noise, _ := b.ToHost(batch.IdentityNoise)
			var sq float64
			for _, v := range noise {
				sq += float64(v) * float64(v)
			}
			if std := math.Sqrt(sq / float64(len(noise))); std < 0.7e-5 || std > 1.3e-5 {
				t.Fatalf("identity noise std %g, want about 1e-5", std)
			}
		})
	}
}

func TestMakeBatchWorkers(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	var samples []Sample
	for i := range 7 {
		samples = append(samples, randomSample(r, string(rune('a'+i)), 10, 6, 0.1))
	}
	a := DefaultAugment()
	var first *HostBatch
	for _, workers := range []int{1, 2, 5, 16} {
		hb, err := NewHostBatch(samples, BatchOptions{Augment: &a, Workers: workers}, rand.New(rand.NewPCG(5, 5)))
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = hb
			continue
		}
		for _, p := range [][2][]float32{{hb.Target, first.Target}, {hb.Stereo, first.Stereo}, {hb.TargetAug, first.TargetAug},
			{hb.NextAug, first.NextAug}, {hb.IdentityNoise, first.IdentityNoise}, {hb.K, first.K}, {hb.Baseline, first.Baseline}, {hb.Truth, first.Truth}} {
			if !slices.Equal(p[0], p[1]) {
				t.Fatalf("%d workers built a different batch than 1", workers)
			}
		}
	}
}

func TestMakeBatchErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	good := randomSample(r, "good", 8, 6, 0.1)
	small := randomSample(r, "small", 4, 6, 0.1)
	noOther := good
	noOther.Other = cam.Image{}
	for _, tc := range []struct {
		name    string
		samples []Sample
		o       BatchOptions
		r       *rand.Rand
		want    string
	}{
		{"empty", nil, BatchOptions{}, nil, "no samples"},
		{"sizes differ", []Sample{good, small}, BatchOptions{}, nil, "one training resolution"},
		{"no other eye", []Sample{noOther}, BatchOptions{}, nil, "no other eye"},
		{"augment without rand", []Sample{good}, BatchOptions{Augment: &Augment{FlipProb: 0.5}}, nil, "random source"},
		{"bad augment", []Sample{good}, BatchOptions{Augment: &Augment{FlipProb: 2}}, r, "FlipProb"},
		{"bad signals", []Sample{good}, BatchOptions{Signals: 7}, nil, "signals"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewHostBatch(tc.samples, tc.o, tc.r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one about %q", err, tc.want)
			}
		})
	}
	// Stereo-only needs no neighbours.
	if _, err := NewHostBatch([]Sample{{ID: "s", Target: good.Target, Other: good.Other, Intrinsics: good.Intrinsics, BaselineM: 0.1}}, BatchOptions{Signals: SignalsStereo}, nil); err != nil {
		t.Fatalf("stereo-only sample without neighbours: %v", err)
	}
}

// BenchmarkNewHostBatch is the background work of one Monodepth2-sized batch (12 items
// of 640x192, both signals, default augmentation).
func BenchmarkNewHostBatch(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	var samples []Sample
	for i := range 12 {
		samples = append(samples, randomSample(r, string(rune('a'+i)), 640, 192, 0.1))
	}
	a := DefaultAugment()
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			for b.Loop() {
				if _, err := NewHostBatch(samples, BatchOptions{Augment: &a, Workers: workers}, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkResizeImage shrinks a 640x480 frame to 640x192.
func BenchmarkResizeImage(b *testing.B) {
	m := randomRGB(rand.New(rand.NewPCG(1, 1)), 640, 480)
	for b.Loop() {
		ResizeImage(m, 640, 192)
	}
}
