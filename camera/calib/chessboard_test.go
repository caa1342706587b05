package calib

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/calib3d"
)

// opencvSampleData holds OpenCV's stereo chessboard pairs (Debian package opencv-doc).
const opencvSampleData = "/usr/share/doc/opencv-doc/examples/data"

// OpenCV's own figures for its sample pairs, printed by samples/cpp/stereo_calib.cpp of
// OpenCV 4.6.0 (Debian 12's libopencv-dev), built with
// g++ stereo_calib.cpp $(pkg-config --cflags --libs opencv4) and run as
// stereo_calib -w=9 -h=6 -s=0.025 -nr stereo_calib.xml in a copy of the data folder:
//
//	13 pairs have been successfully detected.
//	done with RMS error=0.634183
//	average epipolar err = 0.445411
//
// and T = (-0.0835677, 0.00117065, 9.13058e-05) m in its extrinsics.yml, fx = 533.988.
const (
	opencvPairs         = 13
	opencvRMS           = 0.634183
	opencvEpipolar      = 0.445411
	opencvBaselineM     = 0.0835760
	opencvFx            = 533.98794545
	sampleSquareM       = 0.025
	sampleBoardCols     = 9
	sampleBoardRows     = 6
	sampleFirstPairFile = "left01.jpg"
)

// Tolerances against OpenCV's figures. We decode the JPEGs with Go's image/jpeg, not
// libjpeg, so pixel values (and then corners) differ slightly; everything after
// decoding is the same OpenCV code with the same flags (measured: RMS 0.634221 and
// epipolar error 0.445406, within 0.01% of OpenCV's). 1% on RMS and epipolar error and
// 0.5% on the focal length and baseline leave room for decoder differences only, not
// for a change of procedure.
const (
	tolQuality  = 0.01
	tolGeometry = 0.005
)

// samplePairs lists OpenCV's sample pairs in the order of its stereo_calib.xml (there
// is no pair 10). A missing file fails the test: the calibration must be checked on
// real images, not skipped.
func samplePairs(t testing.TB) []ImagePair {
	t.Helper()
	var pairs []ImagePair
	for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14} {
		p := ImagePair{
			Left:  filepath.Join(opencvSampleData, fmt.Sprintf("left%02d.jpg", n)),
			Right: filepath.Join(opencvSampleData, fmt.Sprintf("right%02d.jpg", n)),
		}
		for _, f := range []string{p.Left, p.Right} {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("OpenCV's stereo sample images are missing (%v): install the Debian package opencv-doc", err)
			}
		}
		pairs = append(pairs, p)
	}
	return pairs
}

func within(got, want, rel float64) bool { return math.Abs(got-want) <= rel*math.Abs(want) }

func TestCalibrateChessboardMatchesOpenCVSample(t *testing.T) {
	pairs := samplePairs(t)
	var progress []PairProgress
	res, err := CalibrateChessboard(pairs, Board{Cols: sampleBoardCols, Rows: sampleBoardRows, SquareM: sampleSquareM},
		func(p PairProgress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pairs %d, RMS %.6f (OpenCV %.6f), epipolar %.6f (OpenCV %.6f), baseline %.6f m, fx %.3f",
		len(res.PairsUsed), res.RMS, opencvRMS, res.EpipolarError, opencvEpipolar, res.Stereo.Baseline(), res.Stereo.K1[0])
	if len(res.PairsUsed) != opencvPairs || len(res.PairsRejected) != 0 {
		t.Errorf("used %d pairs, rejected %v; OpenCV's sample uses %d", len(res.PairsUsed), res.PairsRejected, opencvPairs)
	}
	if len(progress) != len(pairs) || progress[len(progress)-1].Index != len(pairs)-1 || !progress[0].Used {
		t.Errorf("progress reports %+v", progress)
	}
	if !within(res.RMS, opencvRMS, tolQuality) {
		t.Errorf("RMS %.6f px, OpenCV's sample %.6f ± %g%%", res.RMS, opencvRMS, tolQuality*100)
	}
	if !within(res.EpipolarError, opencvEpipolar, tolQuality) {
		t.Errorf("epipolar error %.6f px, OpenCV's sample %.6f ± %g%%", res.EpipolarError, opencvEpipolar, tolQuality*100)
	}
	if !within(res.Stereo.Baseline(), opencvBaselineM, tolGeometry) {
		t.Errorf("baseline %.6f m, OpenCV's sample %.6f ± %g%%", res.Stereo.Baseline(), opencvBaselineM, tolGeometry*100)
	}
	s := res.Stereo
	if !within(s.K1[0], opencvFx, tolGeometry) || s.K1[0] != s.K2[0] || s.K1[4] != s.K2[4] {
		t.Errorf("fx %g / %g, fy %g / %g: want one focal length near OpenCV's %g", s.K1[0], s.K2[0], s.K1[4], s.K2[4], opencvFx)
	}
	if s.Size != (ImageSize{640, 480}) || len(s.D1) != 8 || len(s.D2) != 8 {
		t.Errorf("size %v, %d and %d distortion coefficients; want 640x480 and the 8 of the rational model", s.Size, len(s.D1), len(s.D2))
	}
	// The right camera sits to the right of the left one: X2 = R·X1 + T with T ≈ (−b, 0, 0).
	if s.T[0] >= 0 || math.Abs(s.T[1]) > 0.1*s.Baseline() {
		t.Errorf("T %v: want a horizontal rig with the right camera on the right", s.T)
	}
	// No tangential distortion (CALIB_ZERO_TANGENT_DIST), k3..k5 fixed at zero.
	for _, d := range [][]float64{s.D1, s.D2} {
		if d[2] != 0 || d[3] != 0 || d[4] != 0 || d[5] != 0 || d[6] != 0 || d[7] == 0 {
			t.Errorf("distortion %v: want p1 = p2 = k3 = k4 = k5 = 0 and k6 free", d)
		}
	}
	if n := calib3d.LiveObjects(); n != 0 {
		t.Errorf("%d calib3d objects still live", n)
	}
}

// TestCalibrateChessboardScaleInvariant: the square size scales T and nothing else.
func TestCalibrateChessboardScaleInvariant(t *testing.T) {
	pairs := samplePairs(t)[:6]
	a, err := CalibrateChessboard(pairs, Board{Cols: 9, Rows: 6, SquareM: 0.025}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := CalibrateChessboard(pairs, Board{Cols: 9, Rows: 6, SquareM: 0.05}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !within(b.Stereo.Baseline(), 2*a.Stereo.Baseline(), 1e-3) || !within(b.RMS, a.RMS, 1e-3) {
		t.Errorf("square 0.025: baseline %g RMS %g; square 0.05: baseline %g RMS %g", a.Stereo.Baseline(), a.RMS, b.Stereo.Baseline(), b.RMS)
	}
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCalibrateChessboardErrors(t *testing.T) {
	pairs := samplePairs(t)
	dir := t.TempDir()
	blank := filepath.Join(dir, "blank.png")
	writePNG(t, blank, image.NewGray(image.Rect(0, 0, 640, 480)))
	small := filepath.Join(dir, "small.png")
	writePNG(t, small, image.NewGray(image.Rect(0, 0, 320, 240)))
	notImage := filepath.Join(dir, "notes.jpg")
	if err := os.WriteFile(notImage, []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	board := Board{Cols: 9, Rows: 6, SquareM: 0.025}
	for _, tc := range []struct {
		name  string
		pairs []ImagePair
		board Board
		want  string
	}{
		{"no pairs", nil, board, "no image pairs"},
		{"missing file", []ImagePair{{Left: filepath.Join(dir, "nope.png"), Right: blank}}, board, "nope.png"},
		{"not an image", []ImagePair{{Left: notImage, Right: blank}}, board, "not a PNG or JPEG"},
		{"mismatched size", []ImagePair{pairs[0], {Left: small, Right: small}}, board, "all images must have one size"},
		{"no pattern", []ImagePair{{Left: blank, Right: blank}, {Left: blank, Right: blank}}, board, "too few pairs"},
		{"wrong board", pairs[:2], Board{Cols: 8, Rows: 5, SquareM: 0.025}, "is the board 8x5"},
		{"bad square", pairs[:2], Board{Cols: 9, Rows: 6, SquareM: 0}, "square size"},
		{"tiny board", pairs[:2], Board{Cols: 2, Rows: 6, SquareM: 0.025}, "at least 3"},
		{"square in millimetres", pairs[:4], Board{Cols: 9, Rows: 6, SquareM: 25}, "is --square in metres?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CalibrateChessboard(tc.pairs, tc.board, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if n := calib3d.LiveObjects(); n != 0 {
		t.Errorf("%d calib3d objects still live", n)
	}
}

// TestCalibrateChessboardRejectsPairs: a pair without the board is reported with its
// reason and the calibration goes on with the others.
func TestCalibrateChessboardRejectsPairs(t *testing.T) {
	pairs := samplePairs(t)[:4]
	dir := t.TempDir()
	blank := filepath.Join(dir, "blank.png")
	img := image.NewGray(image.Rect(0, 0, 640, 480))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	writePNG(t, blank, img)
	// A colour copy of a real image takes the colour-to-grey path.
	colour := filepath.Join(dir, "left01.png")
	g, err := loadGray(pairs[0].Left)
	if err != nil {
		t.Fatal(err)
	}
	rgba := image.NewRGBA(g.Rect)
	for y := range g.Rect.Dy() {
		for x := range g.Rect.Dx() {
			v := g.GrayAt(x, y).Y
			rgba.Set(x, y, color.RGBA{v, v, v, 255})
		}
	}
	writePNG(t, colour, rgba)
	in := append([]ImagePair{{Left: colour, Right: pairs[0].Right}, {Left: pairs[1].Left, Right: blank}}, pairs[1:]...)
	res, err := CalibrateChessboard(in, Board{Cols: 9, Rows: 6, SquareM: 0.025}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.PairsUsed) != 4 || len(res.PairsRejected) != 1 ||
		res.PairsRejected[0].Pair.Right != blank || !strings.Contains(res.PairsRejected[0].Reason, "right image") {
		t.Fatalf("used %v, rejected %v", res.PairsUsed, res.PairsRejected)
	}
	if !errors.Is(fmt.Errorf("x: %w", ErrTooFewPairs), ErrTooFewPairs) {
		t.Fatal("ErrTooFewPairs does not wrap")
	}
}

// rgbOf carries a grey image in a packed RGB camera.Image, as the live cameras deliver.
func rgbOf(g *image.Gray) camera.Image {
	img := camera.NewImage(g.Rect.Dx(), g.Rect.Dy())
	for i, v := range g.Pix {
		img.Pix[3*i], img.Pix[3*i+1], img.Pix[3*i+2] = v, v, v
	}
	return img
}

// TestCalibrateChessboardFramesMatchesOpenCVSample: OpenCV's sample pairs in memory
// give OpenCV's figures, and exactly those of the same pairs read from files.
func TestCalibrateChessboardFramesMatchesOpenCVSample(t *testing.T) {
	files := samplePairs(t)
	frames := make([]FramePair, 0, len(files)+1)
	for _, p := range files {
		l, err := loadGray(p.Left)
		if err != nil {
			t.Fatal(err)
		}
		r, err := loadGray(p.Right)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, FramePair{Left: rgbOf(l), Right: rgbOf(r)})
	}
	// A pair without the board (a grey right image) is rejected, the rest used.
	blank := camera.NewImage(640, 480)
	for i := range blank.Pix {
		blank.Pix[i] = 128
	}
	frames = append(frames, FramePair{Left: frames[0].Left, Right: blank})
	board := Board{Cols: sampleBoardCols, Rows: sampleBoardRows, SquareM: sampleSquareM}
	var progress []PairProgress
	res, err := CalibrateChessboardFrames(frames, board, func(p PairProgress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pairs %d, RMS %.6f (OpenCV %.6f), epipolar %.6f (OpenCV %.6f), baseline %.6f m, fx %.3f",
		len(res.PairsUsed), res.RMS, opencvRMS, res.EpipolarError, opencvEpipolar, res.Stereo.Baseline(), res.Stereo.K1[0])
	if len(res.PairsUsed) != opencvPairs || len(res.PairsRejected) != 1 ||
		res.PairsRejected[0].Pair.Right != fmt.Sprintf("pair %d right", len(frames)) ||
		!strings.Contains(res.PairsRejected[0].Reason, "right image") {
		t.Errorf("used %v, rejected %v", res.PairsUsed, res.PairsRejected)
	}
	if len(progress) != len(frames) || progress[0].Pair.Left != "pair 1 left" || progress[len(progress)-1].Used {
		t.Errorf("progress reports %+v", progress)
	}
	if !within(res.RMS, opencvRMS, tolQuality) || !within(res.EpipolarError, opencvEpipolar, tolQuality) {
		t.Errorf("RMS %.6f, epipolar %.6f px; OpenCV's sample %.6f, %.6f ± %g%%",
			res.RMS, res.EpipolarError, opencvRMS, opencvEpipolar, tolQuality*100)
	}
	if !within(res.Stereo.Baseline(), opencvBaselineM, tolGeometry) || !within(res.Stereo.K1[0], opencvFx, tolGeometry) {
		t.Errorf("baseline %.6f m, fx %.3f; OpenCV's sample %.6f m, %.3f ± %g%%",
			res.Stereo.Baseline(), res.Stereo.K1[0], opencvBaselineM, opencvFx, tolGeometry*100)
	}
	// One code path: the same pixels from files give the same figures, bit for bit.
	fromFiles, err := CalibrateChessboard(files, board, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fromFiles.RMS != res.RMS || fromFiles.EpipolarError != res.EpipolarError || fromFiles.Stereo.T != res.Stereo.T {
		t.Errorf("files: RMS %v epipolar %v T %v; frames: RMS %v epipolar %v T %v",
			fromFiles.RMS, fromFiles.EpipolarError, fromFiles.Stereo.T, res.RMS, res.EpipolarError, res.Stereo.T)
	}

	for _, tc := range []struct {
		name   string
		frames []FramePair
		want   string
	}{
		{"no pairs", nil, "no image pairs"},
		{"empty image", []FramePair{{Left: camera.Image{}, Right: blank}}, "pair 1 left"},
		{"mismatched size", []FramePair{frames[0], {Left: camera.NewImage(320, 240), Right: camera.NewImage(320, 240)}}, "all images must have one size"},
		{"no pattern", []FramePair{{Left: blank, Right: blank}, {Left: blank, Right: blank}}, "too few pairs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CalibrateChessboardFrames(tc.frames, board, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if n := calib3d.LiveObjects(); n != 0 {
		t.Errorf("%d calib3d objects still live", n)
	}
}
