package calib3d

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

func TestVersion(t *testing.T) {
	v := Version()
	if !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(v) {
		t.Fatalf("Version() = %q, want a dotted version", v)
	}
	t.Logf("OpenCV %s, %d threads", v, NumThreads())
}

func TestSetNumThreads(t *testing.T) {
	before := NumThreads()
	t.Cleanup(func() { _ = SetNumThreads(before) })
	if err := SetNumThreads(1); err != nil {
		t.Fatal(err)
	}
	if n := NumThreads(); n != 1 {
		t.Fatalf("NumThreads() = %d after SetNumThreads(1)", n)
	}
}

func defaultParams() SGBMParams {
	return SGBMParams{
		NumDisparities: 32, BlockSize: 5, P1: 200, P2: 800, Disp12MaxDiff: 1,
		PreFilterCap: 63, UniquenessRatio: 10, SpeckleWindowSize: 50, SpeckleRange: 2,
		Mode: Mode3Way,
	}
}

// shiftedPair returns a random-texture left image and the right image that a
// fronto-parallel surface at disparity d produces: right(x) = left(x+d).
func shiftedPair(t *testing.T, w, h, d int) (gocv.Mat, gocv.Mat) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	// Texture wider than the image so the right image has content everywhere.
	tex := make([]byte, (w+d)*h)
	for i := range tex {
		tex[i] = byte(rng.IntN(256))
	}
	l, r := make([]byte, w*h), make([]byte, w*h)
	for y := range h {
		for x := range w {
			l[y*w+x] = tex[y*(w+d)+x]
			if x+d < w+d {
				r[y*w+x] = tex[y*(w+d)+x+d]
			}
		}
	}
	lm, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC1, l)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC1, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lm.Close(); rm.Close() })
	return lm, rm
}

func newMatcher(t *testing.T, p SGBMParams) *StereoSGBM {
	t.Helper()
	s, err := NewStereoSGBM(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSGBMComputeShift(t *testing.T) {
	const w, h, d = 160, 120, 7
	base := LiveObjects()
	l, r := shiftedPair(t, w, h, d)
	s := newMatcher(t, defaultParams())
	disp := gocv.NewMat()
	defer disp.Close()
	for range 2 { // the second call reuses the output Mat
		if err := s.Compute(l, r, &disp); err != nil {
			t.Fatal(err)
		}
	}
	if disp.Rows() != h || disp.Cols() != w || disp.Type() != gocv.MatTypeCV32FC1 {
		t.Fatalf("disparity is %dx%d type %v", disp.Cols(), disp.Rows(), disp.Type())
	}
	v, err := disp.DataPtrFloat32()
	if err != nil {
		t.Fatal(err)
	}
	var good, invalid int
	for _, x := range v {
		switch {
		case x == s.InvalidDisparity():
			invalid++
		case x < 0:
			t.Fatalf("disparity %g is negative but not the invalid marker", x)
		case x > d-0.25 && x < d+0.25:
			good++
		}
	}
	// The left NumDisparities columns cannot be matched; nearly all the rest must be.
	if want := (w - 32) * h * 95 / 100; good < want {
		t.Fatalf("%d pixels within 0.25 px of %d, want >= %d (%d invalid)", good, d, want, invalid)
	}
	if invalid < 32*h/2 {
		t.Fatalf("only %d invalid pixels; the unmatched left border should be invalid", invalid)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := LiveObjects(); got != base {
		t.Fatalf("LiveObjects() = %d after Close, want %d", got, base)
	}
	if err := s.Compute(l, r, &disp); !errors.Is(err, ErrClosed) {
		t.Fatalf("Compute after Close: %v, want ErrClosed", err)
	}
}

func TestSGBMComputeErrors(t *testing.T) {
	l, r := shiftedPair(t, 64, 48, 3)
	small := gocv.NewMatWithSize(24, 32, gocv.MatTypeCV8UC1)
	defer small.Close()
	colour := gocv.NewMatWithSize(48, 64, gocv.MatTypeCV8UC3)
	defer colour.Close()
	float := gocv.NewMatWithSize(48, 64, gocv.MatTypeCV32FC1)
	defer float.Close()
	empty := gocv.NewMat()
	defer empty.Close()
	closed := gocv.NewMat()
	closed.Close()
	disp := gocv.NewMat()
	defer disp.Close()

	s := newMatcher(t, defaultParams())
	p := defaultParams()
	p.NumDisparities = 80
	narrow := newMatcher(t, p)
	p.NumDisparities = 64
	exact := newMatcher(t, p)
	p.MinDisparity = -32
	negative := newMatcher(t, p)

	tests := []struct {
		name        string
		s           *StereoSGBM
		left, right gocv.Mat
		disp        *gocv.Mat
		code        int
		msg         string
	}{
		{"size mismatch", s, l, small, &disp, CodeBadArgument, "differ"},
		{"type mismatch", s, l, colour, &disp, CodeBadArgument, "differ"},
		{"float images", s, float, float, &disp, CodeBadArgument, "want CV_8UC1"},
		{"empty", s, empty, empty, &disp, CodeBadArgument, "empty"},
		{"closed input", s, closed, r, &disp, CodeBadArgument, "closed"},
		{"closed output", s, l, r, &closed, CodeBadArgument, "closed"},
		// In 3-way mode OpenCV 4.6 aborts the process on this if it gets the chance.
		{"narrower than search range", narrow, l, r, &disp, CodeBadArgument, "image width 64 leaves no column for disparities 0..79"},
		{"as wide as search range", exact, l, r, &disp, CodeBadArgument, "image width 64 leaves no column for disparities 0..63"},
		{"negative min disparity", negative, l, r, &disp, CodeBadArgument, "image width 64 leaves no column for disparities -32..31"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Compute(tt.left, tt.right, tt.disp)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compute: %v, want *Error", err)
			}
			if e.Code != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Compute: %v (code %d), want code %d mentioning %q", err, e.Code, tt.code, tt.msg)
			}
			t.Log(err)
		})
	}
}

func TestNewStereoSGBMInvalidParams(t *testing.T) {
	base := LiveObjects()
	tests := []struct {
		name   string
		modify func(*SGBMParams)
		msg    string
	}{
		{"disparities not multiple of 16", func(p *SGBMParams) { p.NumDisparities = 15 }, "numDisparities 15"},
		{"zero disparities", func(p *SGBMParams) { p.NumDisparities = 0 }, "numDisparities 0"},
		// OpenCV 4.6 aborts the process on this one if it reaches the matcher.
		{"negative disparities", func(p *SGBMParams) { p.NumDisparities = -16 }, "numDisparities -16"},
		{"even block", func(p *SGBMParams) { p.BlockSize = 4 }, "blockSize 4"},
		{"zero block", func(p *SGBMParams) { p.BlockSize = 0 }, "blockSize 0"},
		{"negative P1", func(p *SGBMParams) { p.P1 = -1 }, "P1 -1"},
		{"negative speckle", func(p *SGBMParams) { p.SpeckleRange = -1 }, "speckleRange"},
		{"mode", func(p *SGBMParams) { p.Mode = 9 }, "mode 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := defaultParams()
			tt.modify(&p)
			s, err := NewStereoSGBM(p)
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadArgument || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("NewStereoSGBM: %v, %v; want a bad-argument error mentioning %q", s, err, tt.msg)
			}
		})
	}
	if got := LiveObjects(); got != base {
		t.Fatalf("LiveObjects() = %d after failed creations, want %d", got, base)
	}
}

// TestGuard checks that every kind of C++ exception becomes a Go error instead of
// aborting the process.
func TestGuard(t *testing.T) {
	tests := []struct {
		kind int
		code int
		want string
	}{
		{0, -5, "OpenCV error -5: test error (in "}, // cv::Error::StsBadArg
		{1, CodeStdException, "C++ exception: test error"},
		{2, CodeUnknown, "C++ exception: unknown C++ exception"},
		{3, CodeBadArgument, "calib3d: test: test error"},
	}
	for _, tt := range tests {
		err := throwForTest(tt.kind)
		var e *Error
		if !errors.As(err, &e) || e.Code != tt.code || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("kind %d: %v, want code %d and %q", tt.kind, err, tt.code, tt.want)
		}
	}
}

func TestStatusErrorOK(t *testing.T) {
	if err := SetNumThreads(NumThreads()); err != nil {
		t.Fatalf("a successful call returned %v", err)
	}
}

func BenchmarkSGBMCompute(b *testing.B) {
	// The matcher alone; depth/sgbm benchmarks the whole estimator.
	l, r := benchPair(b, 640, 480, 20)
	defer l.Close()
	defer r.Close()
	for _, mode := range []SGBMMode{ModeSGBM, Mode3Way, ModeHH4} {
		b.Run(mode.String(), func(b *testing.B) {
			p := defaultParams()
			p.NumDisparities = 128
			p.Mode = mode
			s, err := NewStereoSGBM(p)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			disp := gocv.NewMat()
			defer disp.Close()
			for b.Loop() {
				if err := s.Compute(l, r, &disp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchPair(b *testing.B, w, h, d int) (gocv.Mat, gocv.Mat) {
	rng := rand.New(rand.NewPCG(3, 4))
	l, r := make([]byte, w*h), make([]byte, w*h)
	for i := range l {
		l[i] = byte(rng.IntN(256))
	}
	for y := range h {
		copy(r[y*w:y*w+w-d], l[y*w+d:y*w+w])
	}
	lm, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC1, l)
	if err != nil {
		b.Fatal(err)
	}
	rm, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC1, r)
	if err != nil {
		b.Fatal(err)
	}
	return lm, rm
}

// TestCleanupSafetyNet checks that a matcher dropped without Close is still freed.
func TestCleanupSafetyNet(t *testing.T) {
	base := LiveObjects()
	func() {
		if _, err := NewStereoSGBM(defaultParams()); err != nil {
			t.Fatal(err)
		}
	}()
	if LiveObjects() != base+1 {
		t.Fatalf("LiveObjects() = %d, want %d", LiveObjects(), base+1)
	}
	// Cleanups run on their own goroutine after a GC cycle finds the object
	// unreachable; give it a bounded number of cycles.
	for i := 0; i < 1000 && LiveObjects() != base; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if got := LiveObjects(); got != base {
		t.Fatalf("LiveObjects() = %d after GC, want %d: the safety net did not free the matcher", got, base)
	}
}
