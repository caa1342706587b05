package calib

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/calib3d"
)

// project maps a point in a camera's frame to raw pixel coordinates with OpenCV's
// pinhole + plumb-bob model (k1, k2, p1, p2, k3), written out here independently of
// OpenCV so that the test checks OpenCV's rectification against the model itself.
func project(k [9]float64, d []float64, p [3]float64) (u, v float64) {
	x, y := p[0]/p[2], p[1]/p[2]
	k1, k2, p1, p2, k3 := d[0], d[1], d[2], d[3], 0.0
	if len(d) > 4 {
		k3 = d[4]
	}
	r2 := x*x + y*y
	radial := 1 + k1*r2 + k2*r2*r2 + k3*r2*r2*r2
	xd := x*radial + 2*p1*x*y + p2*(r2+2*x*x)
	yd := y*radial + p1*(r2+2*y*y) + 2*p2*x*y
	return k[0]*xd + k[1]*yd + k[2], k[4]*yd + k[5]
}

// projectP applies a 3x4 projection matrix.
func projectP(p [12]float64, x [3]float64) (u, v float64) {
	w := p[8]*x[0] + p[9]*x[1] + p[10]*x[2] + p[11]
	return (p[0]*x[0] + p[1]*x[1] + p[2]*x[2] + p[3]) / w, (p[4]*x[0] + p[5]*x[1] + p[6]*x[2] + p[7]) / w
}

// syntheticRig is a 640x480 pair 12 cm apart with a relative rotation of about 1° and
// noticeable barrel distortion: what a cheap real rig looks like.
func syntheticRig() Stereo {
	return Stereo{
		Size: ImageSize{640, 480},
		K1:   [9]float64{500, 0, 322, 0, 502, 238, 0, 0, 1},
		D1:   []float64{-0.12, 0.06, 0.0008, -0.0006, 0},
		K2:   [9]float64{505, 0, 316, 0, 503, 244, 0, 0, 1},
		D2:   []float64{-0.10, 0.04, -0.0005, 0.0004, 0},
		R:    rodrigues([3]float64{0.006, -0.015, 0.004}),
		T:    [3]float64{-0.12, 0.002, -0.001},
	}
}

// renderDots draws a Gaussian dot (σ = 1.5 px) at each raw pixel position.
func renderDots(size ImageSize, pts [][2]float64) camera.Image {
	const sigma, amp = 1.5, 240.0
	acc := make([]float64, size.Width*size.Height)
	for _, p := range pts {
		for y := int(p[1]) - 8; y <= int(p[1])+8; y++ {
			for x := int(p[0]) - 8; x <= int(p[0])+8; x++ {
				if x < 0 || y < 0 || x >= size.Width || y >= size.Height {
					continue
				}
				dx, dy := float64(x)-p[0], float64(y)-p[1]
				acc[y*size.Width+x] += amp * math.Exp(-(dx*dx+dy*dy)/(2*sigma*sigma))
			}
		}
	}
	im := camera.NewImage(size.Width, size.Height)
	for i, v := range acc {
		b := byte(math.Min(255, math.Round(v)))
		im.Pix[3*i], im.Pix[3*i+1], im.Pix[3*i+2] = b, b, b
	}
	return im
}

// centroid finds the intensity-weighted centre of the dot nearest (x0, y0).
func centroid(t *testing.T, im camera.Image, x0, y0 float64) (float64, float64) {
	t.Helper()
	const r = 6
	var sw, sx, sy float64
	for y := int(math.Round(y0)) - r; y <= int(math.Round(y0))+r; y++ {
		for x := int(math.Round(x0)) - r; x <= int(math.Round(x0))+r; x++ {
			if x < 0 || y < 0 || x >= im.Width || y >= im.Height {
				t.Fatalf("dot near (%.1f, %.1f) is at the image border", x0, y0)
			}
			w := float64(im.Pix[3*(y*im.Width+x)])
			sw += w
			sx += w * float64(x)
			sy += w * float64(y)
		}
	}
	if sw == 0 {
		t.Fatalf("no dot near (%.1f, %.1f)", x0, y0)
	}
	return sx / sw, sy / sw
}

func newRectifier(t testing.TB, s Stereo, opts Options) *Rectifier {
	t.Helper()
	r, err := NewRectifier(s, s.Size, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// TestRectifyGeometry renders dots at known 3-D points into both raw (distorted,
// rotated) images, rectifies the images, and checks what rectification promises:
// each dot on the same row in both eyes, and depth from horizontal disparity with the
// rectified focal length and baseline equal to the true depth.
func TestRectifyGeometry(t *testing.T) {
	for _, opts := range []Options{{}, {FloatMaps: true}, {Alpha: 0.5}} {
		base := calib3d.LiveObjects()
		s := syntheticRig()
		r := newRectifier(t, s, opts)
		rect := r.Rectification()
		in := r.Intrinsics()
		if in.Width != 640 || in.Height != 480 || in.Fx != rect.P1[0] || in.Cy != rect.P1[6] {
			t.Fatalf("Intrinsics() = %+v, P1 = %v", in, rect.P1)
		}
		if b := r.BaselineM(); math.Abs(b-s.Baseline()) > 1e-9 {
			t.Fatalf("BaselineM() = %g, want |T| = %g", b, s.Baseline())
		}

		// A grid of points in the left camera's frame, 1 to 3.5 m away.
		depths := []float64{1.0, 1.4, 2.0, 2.8, 3.5}
		var pts [][3]float64
		var rawL, rawR [][2]float64
		i := 0
		for v := 110.0; v <= 370; v += 65 {
			for u := 150.0; u <= 520; u += 60 {
				z := depths[i%len(depths)]
				i++
				p := [3]float64{(u - s.K1[2]) / s.K1[0] * z, (v - s.K1[5]) / s.K1[4] * z, z}
				pts = append(pts, p)
				ul, vl := project(s.K1, s.D1, p)
				p2 := mulVec3(s.R, p)
				p2 = [3]float64{p2[0] + s.T[0], p2[1] + s.T[1], p2[2] + s.T[2]}
				ur, vr := project(s.K2, s.D2, p2)
				rawL = append(rawL, [2]float64{ul, vl})
				rawR = append(rawR, [2]float64{ur, vr})
			}
		}
		left, right := renderDots(s.Size, rawL), renderDots(s.Size, rawR)
		rl, rr, err := r.Rectify(left, right)
		if err != nil {
			t.Fatal(err)
		}

		var maxDy, maxDepthErr, maxModelErr float64
		for _, p := range pts {
			// Where the rectified cameras should see the point: in the common
			// rectified frame it is at R1·p.
			pr := mulVec3(rect.R1, p)
			xeL, yeL := projectP(rect.P1, pr)
			xeR, yeR := projectP(rect.P2, pr)
			xl, yl := centroid(t, rl, xeL, yeL)
			xr, yr := centroid(t, rr, xeR, yeR)
			maxModelErr = math.Max(maxModelErr, math.Max(math.Hypot(xl-xeL, yl-yeL), math.Hypot(xr-xeR, yr-yeR)))
			maxDy = math.Max(maxDy, math.Abs(yl-yr))
			z := in.Fx * r.BaselineM() / (xl - xr)
			maxDepthErr = math.Max(maxDepthErr, math.Abs(z-pr[2])/pr[2])
		}
		t.Logf("%+v: %d points; vertical disparity max %.3f px; depth error max %.3f%%; "+
			"dot vs. model max %.3f px; f=%.1f B=%.4f", opts, len(pts), maxDy, 100*maxDepthErr, maxModelErr, in.Fx, r.BaselineM())
		if maxDy >= 0.5 {
			t.Errorf("%+v: vertical disparity up to %.3f px, want < 0.5", opts, maxDy)
		}
		if maxDepthErr >= 0.01 {
			t.Errorf("%+v: depth error up to %.2f%%, want < 1%%", opts, 100*maxDepthErr)
		}
		if maxModelErr >= 0.5 {
			t.Errorf("%+v: dots up to %.3f px from where the pinhole model puts them", opts, maxModelErr)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if got := calib3d.LiveObjects(); got != base {
			t.Fatalf("LiveObjects() = %d after Close, want %d", got, base)
		}
		if _, _, err := r.Rectify(left, right); !errors.Is(err, calib3d.ErrClosed) {
			t.Fatalf("Rectify after Close: %v, want ErrClosed", err)
		}
	}
}

// smoothTexture is a sum of slow sinusoids, so that interpolation is nearly exact.
func smoothTexture(w, h int, seed uint64) camera.Image {
	rng := rand.New(rand.NewPCG(seed, 7))
	type wave struct{ fx, fy, ph, a float64 }
	var waves [6]wave
	for i := range waves {
		waves[i] = wave{rng.Float64() * 0.15, rng.Float64() * 0.15, rng.Float64() * 6.28, 15 + rng.Float64()*15}
	}
	im := camera.NewImage(w, h)
	for y := range h {
		for x := range w {
			v := 128.0
			for _, wv := range waves {
				v += wv.a * math.Sin(wv.fx*float64(x)+wv.fy*float64(y)+wv.ph)
			}
			i := 3 * (y*w + x)
			im.Pix[i], im.Pix[i+1], im.Pix[i+2] = byte(v), byte(255-v), byte(v/2)
		}
	}
	return im
}

// With no distortion and parallel cameras, rectification is the identity.
func TestRectifyIdentity(t *testing.T) {
	const w, h = 320, 240
	s := Stereo{
		Size: ImageSize{w, h},
		K1:   [9]float64{300, 0, (w - 1) / 2.0, 0, 300, (h - 1) / 2.0, 0, 0, 1},
		D1:   make([]float64, 5),
		K2:   [9]float64{300, 0, (w - 1) / 2.0, 0, 300, (h - 1) / 2.0, 0, 0, 1},
		D2:   make([]float64, 5),
		R:    [9]float64{1, 0, 0, 0, 1, 0, 0, 0, 1},
		T:    [3]float64{-0.1, 0, 0},
	}
	r := newRectifier(t, s, Options{})
	in := r.Intrinsics()
	if math.Abs(in.Fx-300) > 1e-9 || math.Abs(in.Cx-(w-1)/2.0) > 1e-9 || math.Abs(in.Cy-(h-1)/2.0) > 1e-9 || math.Abs(r.BaselineM()-0.1) > 1e-12 {
		t.Fatalf("identity rig: intrinsics %+v, baseline %g", in, r.BaselineM())
	}
	left, right := smoothTexture(w, h, 1), smoothTexture(w, h, 2)
	rl, rr, err := r.Rectify(left, right)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		raw, out camera.Image
	}{{"left", left, rl}, {"right", right, rr}} {
		var maxDiff int
		for i := range c.raw.Pix {
			d := int(c.raw.Pix[i]) - int(c.out.Pix[i])
			maxDiff = max(maxDiff, d, -d)
		}
		if maxDiff > 1 {
			t.Errorf("%s: identity rectification changed a pixel by %d", c.name, maxDiff)
		}
	}
	// Rectify returns fresh images; the input is untouched.
	if &rl.Pix[0] == &left.Pix[0] {
		t.Fatal("Rectify returned its input buffer")
	}
}

func TestRectifierErrors(t *testing.T) {
	base := calib3d.LiveObjects()
	s := syntheticRig()
	_, err := NewRectifier(s, ImageSize{1280, 720}, Options{})
	if !errors.Is(err, ErrSizeMismatch) || !strings.Contains(err.Error(), "1280x720") || !strings.Contains(err.Error(), "640x480") {
		t.Fatalf("stream larger than calibration: %v", err)
	}
	t.Log(err)

	swapped := s
	swapped.T = [3]float64{0.12, 0, 0}
	if _, err := NewRectifier(swapped, s.Size, Options{}); err == nil || !strings.Contains(err.Error(), "swap the left and right") {
		t.Fatalf("swapped cameras: %v", err)
	}
	vertical := s
	vertical.T = [3]float64{0.001, -0.12, 0}
	if _, err := NewRectifier(vertical, s.Size, Options{}); err == nil || !strings.Contains(err.Error(), "vertical") {
		t.Fatalf("vertical rig: %v", err)
	}
	if _, err := NewRectifier(s, s.Size, Options{Alpha: 2}); err == nil || !strings.Contains(err.Error(), "alpha 2") {
		t.Fatalf("alpha 2: %v", err)
	}
	bad := s
	bad.D1 = nil
	if _, err := NewRectifier(bad, s.Size, Options{}); err == nil || !strings.Contains(err.Error(), "D1") {
		t.Fatalf("no distortion coefficients: %v", err)
	}

	r := newRectifier(t, s, Options{})
	ok := camera.NewImage(640, 480)
	small := camera.NewImage(320, 240)
	short := camera.Image{Width: 640, Height: 480, Pix: make([]byte, 10)}
	for _, c := range []struct {
		name        string
		left, right camera.Image
		msg         string
	}{
		{"small left", small, ok, "left image is 320x240"},
		{"small right", ok, small, "right image is 320x240"},
		{"short buffer", ok, short, "right image has 10 bytes"},
	} {
		if _, _, err := r.Rectify(c.left, c.right); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want an error mentioning %q", c.name, err, c.msg)
		}
	}
	if _, _, err := r.Rectify(small, ok); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("small left: %v is not ErrSizeMismatch", err)
	}
	_ = r.Close()
	_ = r.Close()
	if got := calib3d.LiveObjects(); got != base {
		t.Fatalf("LiveObjects() = %d, want %d", got, base)
	}
}

// A calibration read from a file rectifies: the testdata rig, end to end.
func TestRectifyLoadedCalibration(t *testing.T) {
	s, err := Load("testdata/ros/left.yaml", "testdata/ros/right.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := newRectifier(t, s, Options{})
	rect := r.Rectification()
	// The ROS files hold OpenCV's own stereoRectify output for this rig (alpha 0):
	// recomputing it from the recovered R and T must give it back.
	want := [12]float64{580.6663651594215, 0, 370.51308441162109, -48.3669235778124, 0, 580.6663651594215, 246.06135368347168, 0, 0, 0, 1, 0}
	for i := range want {
		if math.Abs(rect.P2[i]-want[i]) > 1e-6*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("P2 = %v, want %v", rect.P2, want)
		}
	}
	if b := r.BaselineM(); math.Abs(b-0.08329) > 1e-4 {
		t.Fatalf("baseline %g, want about 0.0833", b)
	}
}

func BenchmarkRectify1280x720(b *testing.B) {
	s := Stereo{
		Size: ImageSize{1280, 720},
		K1:   [9]float64{900, 0, 645, 0, 902, 355, 0, 0, 1},
		D1:   []float64{-0.12, 0.06, 0.0008, -0.0006, 0},
		K2:   [9]float64{905, 0, 632, 0, 903, 366, 0, 0, 1},
		D2:   []float64{-0.10, 0.04, -0.0005, 0.0004, 0},
		R:    rodrigues([3]float64{0.006, -0.015, 0.004}),
		T:    [3]float64{-0.12, 0.002, -0.001},
	}
	left, right := smoothTexture(1280, 720, 1), smoothTexture(1280, 720, 2)
	for _, c := range []struct {
		name string
		opts Options
	}{{"fixed", Options{}}, {"float", Options{FloatMaps: true}}} {
		r := newRectifier(b, s, c.opts)
		b.Run(c.name+"/alloc", func(b *testing.B) {
			b.SetBytes(int64(len(left.Pix) + len(right.Pix)))
			for b.Loop() {
				if _, _, err := r.Rectify(left, right); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/reuse", func(b *testing.B) {
			rl, rr := camera.NewImage(1280, 720), camera.NewImage(1280, 720)
			b.SetBytes(int64(len(left.Pix) + len(right.Pix)))
			b.ReportAllocs()
			for b.Loop() {
				if err := r.RectifyInto(left, right, rl, rr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
