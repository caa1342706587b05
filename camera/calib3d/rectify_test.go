package calib3d

import (
	"errors"
	"image"
	"math"
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

// mat64 returns a rows x cols CV_64FC1 Mat holding v row-major, closed when the test ends.
func mat64(t testing.TB, rows, cols int, v ...float64) gocv.Mat {
	t.Helper()
	if len(v) != rows*cols {
		t.Fatalf("mat64: %d values for %dx%d", len(v), rows, cols)
	}
	m := gocv.NewMatWithSize(rows, cols, gocv.MatTypeCV64F)
	for i, x := range v {
		m.SetDoubleAt(i/cols, i%cols, x)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newMat(t testing.TB) gocv.Mat {
	m := gocv.NewMat()
	t.Cleanup(func() { m.Close() })
	return m
}

func at(m gocv.Mat, r, c int) float64 { return m.GetDoubleAt(r, c) }

// rig is a 640x480 stereo pair 12 cm apart with a slight relative rotation and
// distortion, the kind of numbers a real calibration gives.
type rig struct {
	k1, d1, k2, d2, r, t gocv.Mat
	size                 image.Point
}

func newRig(t *testing.T) rig {
	// R: about 1° around y and 0.5° around x, as a Rodrigues vector (which
	// stereoRectify accepts in place of a matrix).
	r := mat64(t, 3, 1, 0.009, 0.017, 0.002)
	return rig{
		k1:   mat64(t, 3, 3, 520, 0, 318, 0, 522, 242, 0, 0, 1),
		d1:   mat64(t, 1, 5, -0.08, 0.05, 0.001, -0.0005, 0),
		k2:   mat64(t, 3, 3, 515, 0, 325, 0, 516, 238, 0, 0, 1),
		d2:   mat64(t, 1, 5, -0.07, 0.04, -0.0008, 0.0003, 0),
		r:    r,
		t:    mat64(t, 3, 1, -0.12, 0.001, 0.002),
		size: image.Pt(640, 480),
	}
}

func TestStereoRectify(t *testing.T) {
	g := newRig(t)
	r1, r2, p1, p2, q := newMat(t), newMat(t), newMat(t), newMat(t), newMat(t)
	res, err := StereoRectify(g.k1, g.d1, g.k2, g.d2, g.size, g.r, g.t, ZeroDisparity, 0, image.Point{}, &r1, &r2, &p1, &p2, &q)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		name       string
		m          gocv.Mat
		rows, cols int
	}{{"R1", r1, 3, 3}, {"R2", r2, 3, 3}, {"P1", p1, 3, 4}, {"P2", p2, 3, 4}, {"Q", q, 4, 4}} {
		if m.m.Rows() != m.rows || m.m.Cols() != m.cols || m.m.Type() != gocv.MatTypeCV64F {
			t.Fatalf("%s is %dx%d type %v, want %dx%d CV_64F", m.name, m.m.Cols(), m.m.Rows(), m.m.Type(), m.cols, m.rows)
		}
	}
	// R1 and R2 are rotations: R·Rᵀ = I.
	for _, m := range []gocv.Mat{r1, r2} {
		for i := range 3 {
			for j := range 3 {
				var s float64
				for k := range 3 {
					s += at(m, i, k) * at(m, j, k)
				}
				want := 0.0
				if i == j {
					want = 1
				}
				if math.Abs(s-want) > 1e-9 {
					t.Fatalf("R·Rᵀ[%d][%d] = %g", i, j, s)
				}
			}
		}
	}
	// Zero disparity: the same principal point; the right camera sits at +x, so
	// P2[0,3] = −f·B with B the baseline.
	if at(p1, 0, 2) != at(p2, 0, 2) || at(p1, 1, 2) != at(p2, 1, 2) {
		t.Fatalf("principal points differ: P1 %v,%v P2 %v,%v", at(p1, 0, 2), at(p1, 1, 2), at(p2, 0, 2), at(p2, 1, 2))
	}
	b := -at(p2, 0, 3) / at(p2, 0, 0)
	if wantB := math.Sqrt(0.12*0.12 + 0.001*0.001 + 0.002*0.002); math.Abs(b-wantB) > 1e-9 {
		t.Fatalf("baseline from P2 = %g, want %g", b, wantB)
	}
	if at(p2, 1, 3) != 0 {
		t.Fatalf("P2[1,3] = %g, want 0 for a horizontal rig", at(p2, 1, 3))
	}
	full := image.Rect(0, 0, g.size.X, g.size.Y)
	for _, roi := range []image.Rectangle{res.ValidROI1, res.ValidROI2} {
		if roi.Empty() || !roi.In(full) {
			t.Fatalf("valid ROI %v is empty or outside %v", roi, full)
		}
	}
	t.Logf("f=%.2f cx=%.2f cy=%.2f baseline=%.4f ROIs %v %v", at(p1, 0, 0), at(p1, 0, 2), at(p1, 1, 2), b, res.ValidROI1, res.ValidROI2)
}

func TestStereoRectifyErrors(t *testing.T) {
	g := newRig(t)
	r1, r2, p1, p2, q := newMat(t), newMat(t), newMat(t), newMat(t), newMat(t)
	k2x3 := mat64(t, 2, 3, 1, 0, 0, 0, 1, 0)
	d3 := mat64(t, 1, 3, 0, 0, 0)
	t2 := mat64(t, 2, 1, 0, 0)
	empty := newMat(t)
	closed := gocv.NewMat()
	closed.Close()
	tests := []struct {
		name   string
		k1, d1 gocv.Mat
		t      gocv.Mat
		size   image.Point
		alpha  float64
		out    *gocv.Mat
		msg    string
	}{
		{"bad K shape", k2x3, g.d1, g.t, g.size, 0, &r1, "K1 is 3x2"},
		{"bad distortion count", g.k1, d3, g.t, g.size, 0, &r1, "D1 is 3x1"},
		{"bad T", g.k1, g.d1, t2, g.size, 0, &r1, "T is 1x2"},
		{"zero size", g.k1, g.d1, g.t, image.Point{}, 0, &r1, "image size 0x0 must be positive"},
		{"alpha out of range", g.k1, g.d1, g.t, g.size, 1.5, &r1, "alpha 1.5"},
		{"empty K", empty, g.d1, g.t, g.size, 0, &r1, "K1 is 0x0"},
		{"closed input", closed, g.d1, g.t, g.size, 0, &r1, "K1 Mat is closed"},
		{"closed output", g.k1, g.d1, g.t, g.size, 0, &closed, "R1 Mat is closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := StereoRectify(tt.k1, tt.d1, g.k2, g.d2, tt.size, g.r, tt.t, ZeroDisparity, tt.alpha, image.Point{}, tt.out, &r2, &p1, &p2, &q)
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadArgument || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("StereoRectify: %v, want a bad-argument error mentioning %q", err, tt.msg)
			}
		})
	}
}

// An OpenCV assertion inside a shim call must come back as an error, never abort the
// process. Remap leaves the map types to OpenCV to check.
func TestRemapOpenCVErrorIsReturned(t *testing.T) {
	src := gocv.NewMatWithSize(8, 8, gocv.MatTypeCV8UC1)
	defer src.Close()
	bogus := gocv.NewMatWithSize(8, 8, gocv.MatTypeCV8UC1)
	defer bogus.Close()
	dst := newMat(t)
	err := Remap(src, &dst, bogus, bogus, gocv.InterpolationLinear, gocv.BorderConstant, 0)
	var e *Error
	if !errors.As(err, &e) || e.Code >= 0 {
		t.Fatalf("Remap with CV_8U maps: %v, want an OpenCV error (negative code)", err)
	}
	t.Log(err)
}

func TestInitUndistortRectifyMapAndRemap(t *testing.T) {
	const w, h = 64, 48
	k := mat64(t, 3, 3, 50, 0, (w-1)/2.0, 0, 50, (h-1)/2.0, 0, 0, 1)
	noDist, noR, sameP := newMat(t), newMat(t), newMat(t)
	for _, mt := range []MapType{MapFixedPoint, MapFloat, MapFloatPacked} {
		map1, map2 := newMat(t), newMat(t)
		if err := InitUndistortRectifyMap(k, noDist, noR, sameP, image.Pt(w, h), mt, &map1, &map2); err != nil {
			t.Fatalf("map type %d: %v", mt, err)
		}
		if map1.Cols() != w || map1.Rows() != h || map1.Type() != gocv.MatType(mt) {
			t.Fatalf("map1 is %dx%d type %v, want %dx%d type %v", map1.Cols(), map1.Rows(), map1.Type(), w, h, mt)
		}
		// Without distortion or rotation the maps are the identity, so remap copies.
		src := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
		defer src.Close()
		for i := range w * h * 3 {
			src.SetUCharAt(i/(w*3), i%(w*3), uint8(i*7))
		}
		dst := newMat(t)
		if err := Remap(src, &dst, map1, map2, gocv.InterpolationLinear, gocv.BorderConstant, 0); err != nil {
			t.Fatal(err)
		}
		a, _ := src.DataPtrUint8()
		b, _ := dst.DataPtrUint8()
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("map type %d: identity remap changed byte %d: %d -> %d", mt, i, a[i], b[i])
			}
		}
	}

	map1, map2 := newMat(t), newMat(t)
	if err := InitUndistortRectifyMap(k, noDist, noR, sameP, image.Pt(w, h), MapType(gocv.MatTypeCV8UC1), &map1, &map2); err == nil || !strings.Contains(err.Error(), "map type") {
		t.Fatalf("bad map type: %v", err)
	}
	if err := InitUndistortRectifyMap(k, noDist, noR, sameP, image.Pt(0, h), MapFloat, &map1, &map2); err == nil || !strings.Contains(err.Error(), "map size 0x48") {
		t.Fatalf("zero map size: %v", err)
	}
	src := newMat(t)
	if err := Remap(src, &map1, map2, map2, gocv.InterpolationLinear, gocv.BorderConstant, 0); err == nil || !strings.Contains(err.Error(), "empty source") {
		t.Fatalf("remap of an empty image: %v", err)
	}
}

func TestRectifyMapPacked(t *testing.T) {
	base := LiveObjects()
	const w, h = 64, 48
	k := mat64(t, 3, 3, 50, 0, (w-1)/2.0, 0, 50, (h-1)/2.0, 0, 0, 1)
	// Shift the new principal point by +5 px in x: rectified pixel (x, y) samples raw
	// (x-5, y), so the image moves 5 px to the right with a black band on the left.
	p := mat64(t, 3, 3, 50, 0, (w-1)/2.0+5, 0, 50, (h-1)/2.0, 0, 0, 1)
	noDist, noR := newMat(t), newMat(t)
	m, err := NewRectifyMap(k, noDist, noR, p, image.Pt(w, h), image.Pt(w, h), MapFixedPoint)
	if err != nil {
		t.Fatal(err)
	}
	if got := LiveObjects(); got != base+1 {
		t.Fatalf("LiveObjects() = %d with one map, want %d", got, base+1)
	}
	src := make([]byte, w*h*3)
	for i := range src {
		src[i] = byte(i%251) + 1
	}
	dst := make([]byte, w*h*3)
	if err := m.RemapPacked(src, 3, dst); err != nil {
		t.Fatal(err)
	}
	for y := range h {
		for x := range w {
			for c := range 3 {
				want := byte(0)
				if x >= 5 {
					want = src[3*(y*w+x-5)+c]
				}
				if got := dst[3*(y*w+x)+c]; got != want {
					t.Fatalf("dst(%d,%d)[%d] = %d, want %d", x, y, c, got, want)
				}
			}
		}
	}

	tests := []struct {
		name     string
		src, dst []byte
		channels int
		msg      string
	}{
		{"short source", src[:10], dst, 3, "source buffer has 10 bytes"},
		{"short destination", src, dst[:len(dst)-1], 3, "destination buffer has"},
		{"channels", src, dst, 5, "5 channels"},
		{"grey with colour-sized buffers", src, dst, 1, "source buffer has"},
	}
	for _, tt := range tests {
		if err := m.RemapPacked(tt.src, tt.channels, tt.dst); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want an error mentioning %q", tt.name, err, tt.msg)
		}
	}

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := LiveObjects(); got != base {
		t.Fatalf("LiveObjects() = %d after Close, want %d", got, base)
	}
	if err := m.RemapPacked(src, 3, dst); !errors.Is(err, ErrClosed) {
		t.Fatalf("RemapPacked after Close: %v, want ErrClosed", err)
	}

	bad := mat64(t, 2, 2, 1, 0, 0, 1)
	if _, err := NewRectifyMap(bad, noDist, noR, p, image.Pt(w, h), image.Pt(w, h), MapFixedPoint); err == nil || !strings.Contains(err.Error(), "K is 2x2") {
		t.Fatalf("NewRectifyMap with a 2x2 K: %v", err)
	}
	if _, err := NewRectifyMap(k, noDist, noR, p, image.Pt(-1, h), image.Pt(w, h), MapFixedPoint); err == nil || !strings.Contains(err.Error(), "source size -1x48") {
		t.Fatalf("NewRectifyMap with a negative size: %v", err)
	}
	if got := LiveObjects(); got != base {
		t.Fatalf("LiveObjects() = %d after failed creations, want %d", got, base)
	}
}
