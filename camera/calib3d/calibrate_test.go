package calib3d

import (
	"image"
	"math"
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

// renderBoard draws a chessboard of (cols+1)x(rows+1) squares of sq pixels with its
// top-left corner at off, on a white image: inner corner (c, r) is at
// off + sq·(c+1, r+1), exactly on a pixel boundary.
func renderBoard(w, h, cols, rows, sq int, off image.Point) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = 255
	}
	for r := 0; r <= rows; r++ {
		for c := 0; c <= cols; c++ {
			if (r+c)%2 != 0 {
				continue
			}
			for y := off.Y + r*sq; y < off.Y+(r+1)*sq; y++ {
				for x := off.X + c*sq; x < off.X+(c+1)*sq; x++ {
					g.Pix[y*g.Stride+x] = 0
				}
			}
		}
	}
	return g
}

// checkCorners compares found corners with the rendered board's. OpenCV may number a
// board from either end; a 9x6 board (one count odd, one even) from one end only.
func checkCorners(t *testing.T, got []gocv.Point2f, cols, rows, sq int, off image.Point) {
	t.Helper()
	if len(got) != cols*rows {
		t.Fatalf("%d corners, want %d", len(got), cols*rows)
	}
	// Pixel (x, y) covers [x, x+1): a boundary between pixels x-1 and x is at x-0.5 in
	// OpenCV's pixel-centre coordinates.
	fwd, rev := 0.0, 0.0
	for i, p := range got {
		c, r := i%cols, i/cols
		wx, wy := float64(off.X+(c+1)*sq)-0.5, float64(off.Y+(r+1)*sq)-0.5
		rx, ry := float64(off.X+(cols-c)*sq)-0.5, float64(off.Y+(rows-r)*sq)-0.5
		fwd = math.Max(fwd, math.Hypot(float64(p.X)-wx, float64(p.Y)-wy))
		rev = math.Max(rev, math.Hypot(float64(p.X)-rx, float64(p.Y)-ry))
	}
	if math.Min(fwd, rev) > 0.1 {
		t.Fatalf("corners are up to %.3f px (or %.3f px numbered backwards) from the board's", fwd, rev)
	}
}

func TestFindChessboardCorners(t *testing.T) {
	const cols, rows, sq = 9, 6, 30
	off := image.Pt(40, 50)
	g := renderBoard(400, 300, cols, rows, sq, off)
	pattern := image.Pt(cols, rows)

	got, found, err := FindChessboardCornersGray(g, pattern)
	if err != nil || !found {
		t.Fatalf("found %v, err %v", found, err)
	}
	checkCorners(t, got, cols, rows, sq, off)

	// The Mat form, on the same pixels.
	m, err := gocv.NewMatFromBytes(g.Rect.Dy(), g.Rect.Dx(), gocv.MatTypeCV8UC1, g.Pix)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, found, err = FindChessboardCorners(m, pattern)
	if err != nil || !found {
		t.Fatalf("Mat: found %v, err %v", found, err)
	}
	checkCorners(t, got, cols, rows, sq, off)

	// A sub-image: corners are relative to its top-left pixel.
	sub := g.SubImage(image.Rect(20, 30, 390, 290)).(*image.Gray)
	got, found, err = FindChessboardCornersGray(sub, pattern)
	if err != nil || !found {
		t.Fatalf("sub-image: found %v, err %v", found, err)
	}
	checkCorners(t, got, cols, rows, sq, off.Sub(image.Pt(20, 30)))

	// Not there: no error, not found.
	blank := image.NewGray(image.Rect(0, 0, 320, 240))
	if got, found, err := FindChessboardCornersGray(blank, pattern); err != nil || found || got != nil {
		t.Fatalf("blank image: %d corners, found %v, err %v", len(got), found, err)
	}
	// The wrong pattern is not found either.
	if _, found, err := FindChessboardCornersGray(g, image.Pt(8, 6)); err != nil || found {
		t.Fatalf("8x6 on a 9x6 board: found %v, err %v", found, err)
	}
	if n := LiveObjects(); n != 0 {
		t.Errorf("%d objects live", n)
	}
}

func TestFindChessboardCornersArguments(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 64, 48))
	for _, tc := range []struct {
		name    string
		img     *image.Gray
		pattern image.Point
		want    string
	}{
		{"small pattern", g, image.Pt(2, 6), "at least 3"},
		{"nil image", nil, image.Pt(9, 6), "nil image"},
		{"short buffer", &image.Gray{Pix: make([]byte, 10), Stride: 64, Rect: g.Rect}, image.Pt(9, 6), "not a valid grey image"},
		{"empty image", &image.Gray{}, image.Pt(9, 6), "not a valid grey image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := FindChessboardCornersGray(tc.img, tc.pattern)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	var closed gocv.Mat
	if _, _, err := FindChessboardCorners(closed, image.Pt(9, 6)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("closed Mat: err = %v", err)
	}
	f := gocv.NewMatWithSize(48, 64, gocv.MatTypeCV32FC1)
	defer f.Close()
	if _, _, err := FindChessboardCorners(f, image.Pt(9, 6)); err == nil || !strings.Contains(err.Error(), "want CV_8UC1") {
		t.Fatalf("float Mat: err = %v", err)
	}
}

// syntheticRig projects a 9x6 board of 25 mm squares, seen in several poses, into two
// ideal cameras 10 cm apart.
type syntheticRig struct {
	k    [9]float64
	r    [9]float64
	t    [3]float64
	obj  [][]gocv.Point3f
	img1 [][]gocv.Point2f
	img2 [][]gocv.Point2f
}

func rotXYZ(ax, ay, az float64) [9]float64 {
	cx, sx, cy, sy, cz, sz := math.Cos(ax), math.Sin(ax), math.Cos(ay), math.Sin(ay), math.Cos(az), math.Sin(az)
	rx := [9]float64{1, 0, 0, 0, cx, -sx, 0, sx, cx}
	ry := [9]float64{cy, 0, sy, 0, 1, 0, -sy, 0, cy}
	rz := [9]float64{cz, -sz, 0, sz, cz, 0, 0, 0, 1}
	return mul(rz, mul(ry, rx))
}

func mul(a, b [9]float64) [9]float64 {
	var c [9]float64
	for i := range 3 {
		for j := range 3 {
			for k := range 3 {
				c[3*i+j] += a[3*i+k] * b[3*k+j]
			}
		}
	}
	return c
}

func apply(r [9]float64, t, x [3]float64) [3]float64 {
	return [3]float64{
		r[0]*x[0] + r[1]*x[1] + r[2]*x[2] + t[0],
		r[3]*x[0] + r[4]*x[1] + r[5]*x[2] + t[1],
		r[6]*x[0] + r[7]*x[1] + r[8]*x[2] + t[2],
	}
}

func newSyntheticRig() syntheticRig {
	s := syntheticRig{
		k: [9]float64{500, 0, 320, 0, 500, 240, 0, 0, 1},
		r: rotXYZ(0.01, -0.02, 0.005),
		t: [3]float64{-0.1, 0.002, 0.001},
	}
	project := func(x [3]float64) gocv.Point2f {
		return gocv.Point2f{X: float32(s.k[0]*x[0]/x[2] + s.k[2]), Y: float32(s.k[4]*x[1]/x[2] + s.k[5])}
	}
	poses := [][6]float64{
		{0.3, 0.2, 0, -0.1, -0.06, 0.6}, {-0.3, 0.1, 0.1, -0.05, -0.08, 0.7}, {0.1, -0.35, -0.1, -0.12, -0.05, 0.65},
		{-0.2, -0.3, 0.2, -0.08, -0.04, 0.8}, {0.4, 0, -0.2, -0.1, -0.07, 0.75}, {0, 0.4, 0.15, -0.06, -0.06, 0.55},
	}
	for _, p := range poses {
		rb, tb := rotXYZ(p[0], p[1], p[2]), [3]float64{p[3], p[4], p[5]}
		var o []gocv.Point3f
		var i1, i2 []gocv.Point2f
		for r := range 6 {
			for c := range 9 {
				x := [3]float64{float64(c) * 0.025, float64(r) * 0.025, 0}
				o = append(o, gocv.Point3f{X: float32(x[0]), Y: float32(x[1])})
				x1 := apply(rb, tb, x)
				i1 = append(i1, project(x1))
				i2 = append(i2, project(apply(s.r, s.t, x1)))
			}
		}
		s.obj, s.img1, s.img2 = append(s.obj, o), append(s.img1, i1), append(s.img2, i2)
	}
	return s
}

func TestStereoCalibrateSynthetic(t *testing.T) {
	s := newSyntheticRig()
	size := image.Pt(640, 480)
	k1, err := InitCameraMatrix2D(s.obj, s.img1, size, 0)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := InitCameraMatrix2D(s.obj, s.img2, size, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := StereoCalibrate(s.obj, s.img1, s.img2, size, StereoCalibrateOptions{
		Flags: SampleStereoCalibFlags, K1: k1, K2: k2, Criteria: SampleTermCriteria,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Exact projections, rounded to float32: the fit must be near perfect.
	if c.RMS > 1e-3 {
		t.Errorf("RMS %g px on exact projections", c.RMS)
	}
	for i := range 3 {
		if math.Abs(c.T[i]-s.t[i]) > 1e-4 {
			t.Errorf("T %v, want %v", c.T, s.t)
			break
		}
	}
	for i := range 9 {
		if math.Abs(c.R[i]-s.r[i]) > 1e-4 || math.Abs(c.K1[i]-s.k[i]) > 0.1 || math.Abs(c.K2[i]-s.k[i]) > 0.1 {
			t.Errorf("R %v K1 %v K2 %v, want %v and %v", c.R, c.K1, c.K2, s.r, s.k)
			break
		}
	}
	if len(c.D1) != 8 || len(c.D2) != 8 {
		t.Errorf("D1 %v D2 %v: want the rational model's 8 coefficients", c.D1, c.D2)
	}
	// F relates the two images: x2ᵀ·F·x1 ≈ 0 (relative to the scale of F·x1).
	for j, p1 := range s.img1[0] {
		p2 := s.img2[0][j]
		x1 := [3]float64{float64(p1.X), float64(p1.Y), 1}
		l := [3]float64{}
		for r := range 3 {
			l[r] = c.F[3*r]*x1[0] + c.F[3*r+1]*x1[1] + c.F[3*r+2]
		}
		if d := math.Abs(l[0]*float64(p2.X)+l[1]*float64(p2.Y)+l[2]) / math.Hypot(l[0], l[1]); d > 0.01 {
			t.Fatalf("point %d is %g px from its epipolar line", j, d)
		}
	}

	// Undistortion with the fitted (near-zero) distortion and P = K returns the points.
	u, err := UndistortPoints(s.img1[0], c.K1, c.D1, &c.K1)
	if err != nil {
		t.Fatal(err)
	}
	for j := range u {
		if math.Hypot(float64(u[j].X-s.img1[0][j].X), float64(u[j].Y-s.img1[0][j].Y)) > 0.01 {
			t.Fatalf("undistorted point %d moved: %v → %v", j, s.img1[0][j], u[j])
		}
	}
	// Without P: normalised coordinates.
	n, err := UndistortPoints(s.img1[0][:1], s.k, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if wx := (float64(s.img1[0][0].X) - 320) / 500; math.Abs(float64(n[0].X)-wx) > 1e-5 {
		t.Fatalf("normalised x %g, want %g", n[0].X, wx)
	}
	if n := LiveObjects(); n != 0 {
		t.Errorf("%d objects live", n)
	}
}

func TestStereoCalibrateArguments(t *testing.T) {
	s := newSyntheticRig()
	size := image.Pt(640, 480)
	guess := StereoCalibrateOptions{Flags: SampleStereoCalibFlags, K1: s.k, K2: s.k}
	for _, tc := range []struct {
		name       string
		obj        [][]gocv.Point3f
		img1, img2 [][]gocv.Point2f
		size       image.Point
		opts       StereoCalibrateOptions
		want       string
	}{
		{"no views", nil, nil, nil, size, guess, "no views"},
		{"view counts", s.obj, s.img1[:2], s.img2, size, guess, "6 views of object points but 2 of image points (camera 1)"},
		{"point counts", s.obj, s.img1, append([][]gocv.Point2f{s.img2[0][:10]}, s.img2[1:]...), size, guess,
			"view 0 has 54 object points but 10 image points (camera 2)"},
		{"too few points", [][]gocv.Point3f{s.obj[0][:3]}, [][]gocv.Point2f{s.img1[0][:3]}, [][]gocv.Point2f{s.img2[0][:3]}, size, guess,
			"want at least 4"},
		{"missing guess", s.obj, s.img1, s.img2, size, StereoCalibrateOptions{Flags: SampleStereoCalibFlags}, "K1"},
		{"distortion lengths", s.obj, s.img1, s.img2, size,
			StereoCalibrateOptions{Flags: SampleStereoCalibFlags, K1: s.k, K2: s.k, D1: make([]float64, 5)}, "give both or neither"},
		{"bad size", s.obj, s.img1, s.img2, image.Pt(0, 480), guess, "must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := StereoCalibrate(tc.obj, tc.img1, tc.img2, tc.size, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := InitCameraMatrix2D(s.obj, s.img1[:1], size, 0); err == nil {
		t.Fatal("InitCameraMatrix2D accepted mismatched views")
	}
	if _, err := UndistortPoints(s.img1[0], s.k, make([]float64, 3), nil); err == nil || !strings.Contains(err.Error(), "3 distortion") {
		t.Fatalf("UndistortPoints with 3 coefficients: err = %v", err)
	}
}
