package calib

import (
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // decoders for loadGray
	_ "image/png"
	"math"
	"os"

	"gocv.io/x/gocv"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/calib3d"
)

// MinChessboardPairs is the fewest usable pairs CalibrateChessboard calibrates from,
// as OpenCV's stereo_calib sample. It is a floor, not advice: a trustworthy calibration
// wants 10 to 20 pairs with the board tilted and placed all over both images.
const MinChessboardPairs = 2

// maxImagePixels bounds the images CalibrateChessboard decodes: larger than any camera
// a robot carries, small enough that a corrupt or hostile header cannot make it
// allocate gigabytes.
const maxImagePixels = 64 << 20

// ErrTooFewPairs is wrapped by the error CalibrateChessboard returns when fewer than
// MinChessboardPairs pairs show the board in both images.
var ErrTooFewPairs = errors.New("too few pairs show the whole chessboard in both images")

// Board is a chessboard calibration target.
type Board struct {
	// Cols and Rows count inner corners (where four squares meet) along a row and
	// along a column: 9x6 for OpenCV's sample board of 10x7 squares.
	Cols, Rows int
	// SquareM is the side of one square in metres, as measured on the printed board.
	// The calibrated translation, and so every depth, scales with it.
	SquareM float64
}

// Validate reports a board that cannot be calibrated with.
func (b Board) Validate() error {
	if b.Cols < 3 || b.Rows < 3 {
		return fmt.Errorf("calib: chessboard %dx%d: each side needs at least 3 inner corners", b.Cols, b.Rows)
	}
	if !(b.SquareM > 0) || math.IsInf(b.SquareM, 0) {
		return fmt.Errorf("calib: chessboard square size %g m must be positive", b.SquareM)
	}
	return nil
}

// Symmetric reports whether the board looks the same turned by 180°: both corner
// counts even or both odd. findChessboardCorners may then number the corners from
// opposite ends in the two images, which ruins a stereo calibration; boards with one
// even and one odd count (9x6) do not have the problem.
func (b Board) Symmetric() bool { return b.Cols%2 == b.Rows%2 }

// objectPoints are the board's inner corners in its own frame, in metres, z = 0, in the
// order findChessboardCorners reports them (row by row).
func (b Board) objectPoints() []gocv.Point3f {
	pts := make([]gocv.Point3f, 0, b.Cols*b.Rows)
	for r := range b.Rows {
		for c := range b.Cols {
			pts = append(pts, gocv.Point3f{X: float32(float64(c) * b.SquareM), Y: float32(float64(r) * b.SquareM)})
		}
	}
	return pts
}

// ImagePair names the left and right images of one view of the board.
type ImagePair struct {
	Left, Right string
}

// RejectedPair is a pair CalibrateChessboard left out, and why.
type RejectedPair struct {
	Pair   ImagePair
	Reason string
}

func (r RejectedPair) String() string {
	return fmt.Sprintf("%s + %s: %s", r.Pair.Left, r.Pair.Right, r.Reason)
}

// PairProgress reports one pair as CalibrateChessboard finishes looking at it.
type PairProgress struct {
	Index, Total int
	Pair         ImagePair
	// Used is true when the board was found in both images; Reason says why not.
	Used   bool
	Reason string
}

// ChessboardResult is a stereo calibration from chessboard pairs and its quality.
type ChessboardResult struct {
	// Stereo is the calibration, T in metres and Size the images' size.
	Stereo Stereo
	// RMS is stereoCalibrate's root-mean-square reprojection error over every corner of
	// both images, in pixels. Below about 0.5 is good for a VGA camera; above 1 usually
	// means blurred images, a board that is not flat, or a wrong square count.
	RMS float64
	// EpipolarError is the mean, over all corners, of the distance of a corner to the
	// epipolar line of its match in the other image, summed over both images, in pixels,
	// after undistortion: OpenCV's stereo_calib sample's "average epipolar err". It is
	// the row misalignment stereo matching would see after rectification.
	EpipolarError float64
	// PairsUsed are the pairs the calibration was made from, in input order.
	PairsUsed []ImagePair
	// PairsRejected are the pairs without the whole board in both images.
	PairsRejected []RejectedPair
}

// CalibrateChessboard calibrates a stereo pair from images of a chessboard, with the
// procedure of OpenCV's stereo_calib sample so that its figures can be compared with
// OpenCV's own: corners found and refined as calib3d.FindChessboardCorners does, camera
// matrices initialised with initCameraMatrix2D, then stereoCalibrate with
// calib3d.SampleStereoCalibFlags and calib3d.SampleTermCriteria (same focal length for
// both cameras, no tangential distortion, rational model with k1, k2, k6 free).
//
// Images are PNG or JPEG files, converted to grey; every image must have the size of
// the first. A pair where either image does not show the whole board is left out and
// reported in PairsRejected (and to progress, when not nil, as each pair is done); an
// image that cannot be read or has another size is an error, because it means the list
// of files is wrong rather than that one view was bad.
//
// The images are read one pair at a time, as the calibration goes, and handed to the
// code CalibrateChessboardFrames runs on images in memory.
func CalibrateChessboard(pairs []ImagePair, board Board, progress func(PairProgress)) (ChessboardResult, error) {
	if len(pairs) == 0 {
		return ChessboardResult{}, errors.New("calib: no image pairs")
	}
	return calibrateChessboard(len(pairs), func(i int) (ImagePair, [2]*image.Gray, error) {
		var g [2]*image.Gray
		for k, path := range []string{pairs[i].Left, pairs[i].Right} {
			var err error
			if g[k], err = loadGray(path); err != nil {
				return pairs[i], g, err
			}
		}
		return pairs[i], g, nil
	}, board, progress)
}

// CalibrateChessboardFrames is CalibrateChessboard on images in memory, such as raw
// pairs captured from the live cameras (stereo.Source.CaptureRaw): the same procedure,
// figures and rejection of pairs without the whole board in both images. The pairs are
// named "pair N left" and "pair N right" (N from 1) in PairsUsed, PairsRejected and
// progress. Every image must have the size of the first one.
func CalibrateChessboardFrames(pairs []FramePair, board Board, progress func(PairProgress)) (ChessboardResult, error) {
	if len(pairs) == 0 {
		return ChessboardResult{}, errors.New("calib: no image pairs")
	}
	return calibrateChessboard(len(pairs), func(i int) (ImagePair, [2]*image.Gray, error) {
		return frameGray(i, pairs[i])
	}, board, progress)
}

// ChessboardInFrames reports whether both images of p show the whole board, with the
// detection CalibrateChessboardFrames uses: a capture can keep only the pairs the
// calibration will use. reason says which image lacks the board when found is false.
func ChessboardInFrames(p FramePair, board Board) (found bool, reason string, err error) {
	if err := board.Validate(); err != nil {
		return false, "", err
	}
	name, g, err := frameGray(0, p)
	if err != nil {
		return false, "", err
	}
	_, reason, err = pairCorners(name, g, board)
	return err == nil && reason == "", reason, err
}

// frameGray names the i-th in-memory pair and converts it to grey.
func frameGray(i int, p FramePair) (ImagePair, [2]*image.Gray, error) {
	name := ImagePair{Left: fmt.Sprintf("pair %d left", i+1), Right: fmt.Sprintf("pair %d right", i+1)}
	var g [2]*image.Gray
	for k, img := range []camera.Image{p.Left, p.Right} {
		if img.Width <= 0 || img.Height <= 0 || len(img.Pix) != 3*img.Width*img.Height {
			return name, g, fmt.Errorf("calib: %s: %dx%d image with %d bytes: not a packed RGB image",
				[2]string{name.Left, name.Right}[k], img.Width, img.Height, len(img.Pix))
		}
		g[k] = grayOf(img)
	}
	return name, g, nil
}

// pairCorners finds the board's corners in both images of a pair; reason says why the
// pair is not usable (the board is missing from one image or both), "" when it is.
func pairCorners(p ImagePair, imgs [2]*image.Gray, board Board) (corners [2][]gocv.Point2f, reason string, err error) {
	pattern := image.Point{X: board.Cols, Y: board.Rows}
	for k, path := range []string{p.Left, p.Right} {
		// Looking in the right image even after the left failed costs a little
		// time and tells the operator about both.
		c, found, err := calib3d.FindChessboardCornersGray(imgs[k], pattern)
		if err != nil {
			return corners, "", fmt.Errorf("calib: %s: %w", path, err)
		}
		if !found {
			side := [2]string{"left", "right"}[k]
			if reason != "" {
				reason = "no complete board in either image"
			} else {
				reason = fmt.Sprintf("no complete %dx%d board in the %s image", board.Cols, board.Rows, side)
			}
			continue
		}
		corners[k] = c
	}
	return corners, reason, nil
}

// calibrateChessboard is the one calibration path of CalibrateChessboard and
// CalibrateChessboardFrames: pair(i) names the i-th of n pairs and gives its left and
// right images in grey, or an error that stops the calibration.
func calibrateChessboard(n int, pair func(i int) (ImagePair, [2]*image.Gray, error), board Board, progress func(PairProgress)) (ChessboardResult, error) {
	if err := board.Validate(); err != nil {
		return ChessboardResult{}, err
	}
	var (
		res        ChessboardResult
		size       image.Point
		sizeFrom   string
		img1, img2 [][]gocv.Point2f
	)
	for i := range n {
		p, imgs, err := pair(i)
		if err != nil {
			return ChessboardResult{}, err
		}
		for k, path := range []string{p.Left, p.Right} {
			if s := imgs[k].Rect.Size(); sizeFrom == "" {
				size, sizeFrom = s, path
			} else if s != size {
				return ChessboardResult{}, fmt.Errorf("calib: %s is %dx%d but %s is %dx%d: all images must have one size",
					path, s.X, s.Y, sizeFrom, size.X, size.Y)
			}
		}
		corners, reason, err := pairCorners(p, imgs, board)
		if err != nil {
			return ChessboardResult{}, err
		}
		if reason == "" {
			res.PairsUsed = append(res.PairsUsed, p)
			img1 = append(img1, corners[0])
			img2 = append(img2, corners[1])
		} else {
			res.PairsRejected = append(res.PairsRejected, RejectedPair{Pair: p, Reason: reason})
		}
		if progress != nil {
			progress(PairProgress{Index: i, Total: n, Pair: p, Used: reason == "", Reason: reason})
		}
	}
	if len(res.PairsUsed) < MinChessboardPairs {
		return res, fmt.Errorf("calib: %w: %d of %d, want at least %d (is the board %dx%d inner corners?)",
			ErrTooFewPairs, len(res.PairsUsed), n, MinChessboardPairs, board.Cols, board.Rows)
	}

	obj := make([][]gocv.Point3f, len(img1))
	for i := range obj {
		obj[i] = board.objectPoints()
	}
	// The sample's initial guess: each camera's matrix from its own views, fx and fy
	// apart; CalibFixAspectRatio then keeps the ratio of that guess.
	k1, err := calib3d.InitCameraMatrix2D(obj, img1, size, 0)
	if err != nil {
		return res, fmt.Errorf("calib: left camera: %w", err)
	}
	k2, err := calib3d.InitCameraMatrix2D(obj, img2, size, 0)
	if err != nil {
		return res, fmt.Errorf("calib: right camera: %w", err)
	}
	c, err := calib3d.StereoCalibrate(obj, img1, img2, size, calib3d.StereoCalibrateOptions{
		Flags: calib3d.SampleStereoCalibFlags, K1: k1, K2: k2, Criteria: calib3d.SampleTermCriteria,
	})
	if err != nil {
		return res, fmt.Errorf("calib: %w", err)
	}
	res.RMS = c.RMS
	res.Stereo = Stereo{
		Size: ImageSize{Width: size.X, Height: size.Y},
		K1:   c.K1, K2: c.K2, D1: c.D1, D2: c.D2, R: c.R, T: c.T,
	}
	if res.EpipolarError, err = epipolarError(c, img1, img2); err != nil {
		return res, fmt.Errorf("calib: %w", err)
	}
	if err := res.Stereo.Validate(); err != nil {
		// Normally a baseline beyond MaxBaselineM: the square size is not in metres.
		return res, fmt.Errorf("calib: the calibration is not usable (is --square in metres?): %w", err)
	}
	return res, nil
}

// epipolarError is OpenCV's stereo_calib quality check: F relates undistorted pixel
// coordinates, x2ᵀ·F·x1 = 0, so after undistortion every corner should lie on the
// epipolar line of its match. The mean over all corners of the two point-to-line
// distances (left and right image, summed) is returned, in pixels.
func epipolarError(c calib3d.StereoCalibration, img1, img2 [][]gocv.Point2f) (float64, error) {
	var sum float64
	n := 0
	ft := transpose3(c.F)
	for i := range img1 {
		u1, err := calib3d.UndistortPoints(img1[i], c.K1, c.D1, &c.K1)
		if err != nil {
			return 0, err
		}
		u2, err := calib3d.UndistortPoints(img2[i], c.K2, c.D2, &c.K2)
		if err != nil {
			return 0, err
		}
		for j := range u1 {
			p1 := [3]float64{float64(u1[j].X), float64(u1[j].Y), 1}
			p2 := [3]float64{float64(u2[j].X), float64(u2[j].Y), 1}
			sum += lineDistance(mulVec3(c.F, p1), p2) + lineDistance(mulVec3(ft, p2), p1)
			n++
		}
	}
	if n == 0 {
		return 0, errors.New("no points for the epipolar error")
	}
	return sum / float64(n), nil
}

// lineDistance is the distance from point p (homogeneous, w = 1) to the line
// l·(x, y, 1) = 0.
func lineDistance(l, p [3]float64) float64 {
	return math.Abs(l[0]*p[0]+l[1]*p[1]+l[2]) / math.Hypot(l[0], l[1])
}

// loadGray decodes a PNG or JPEG file into an 8-bit grey image.
func loadGray(path string) (*image.Gray, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("calib: %w", err)
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("calib: %s: not a PNG or JPEG image: %w", path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return nil, fmt.Errorf("calib: %s: %s image of %dx%d pixels: not a camera image", path, format, cfg.Width, cfg.Height)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, fmt.Errorf("calib: %s: %w", path, err)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("calib: %s: %w", path, err)
	}
	if g, ok := img.(*image.Gray); ok {
		return g, nil
	}
	// Colour images: Go's luma weights (ITU-R 601, as OpenCV's BGR2GRAY) within a
	// rounding step of OpenCV's imread(..., IMREAD_GRAYSCALE).
	g := image.NewGray(img.Bounds())
	draw.Draw(g, g.Rect, img, img.Bounds().Min, draw.Src)
	return g, nil
}

// grayOf converts a packed RGB image to grey with the luma weights of Go's
// color.GrayModel (what loadGray's conversion of colour files uses), so that a grey
// image carried in RGB (v, v, v) comes back exactly.
func grayOf(img camera.Image) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, img.Width, img.Height))
	for i, j := 0, 0; j < len(g.Pix); i, j = i+3, j+1 {
		r, gr, b := uint32(img.Pix[i])*0x101, uint32(img.Pix[i+1])*0x101, uint32(img.Pix[i+2])*0x101
		g.Pix[j] = uint8((19595*r + 38470*gr + 7471*b + 1<<15) >> 24)
	}
	return g
}
