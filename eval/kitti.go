package eval

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/odom"
)

// KITTI layouts supported (the colour cameras 2 = left and 3 = right, rectified):
//
// Raw drive with the depth benchmark's ground truth (OpenKITTIRaw):
//
//	DRIVE/image_02/data/NNNNNNNNNN.png   left, 8-bit colour
//	DRIVE/image_03/data/NNNNNNNNNN.png   right, same names
//	DRIVE/image_02/timestamps.txt        optional: "2011-09-26 13:02:25.964389445" a line
//	calib_cam_to_cam.txt                 in DRIVE or its parent (the date folder, as the
//	                                     raw download unpacks): P_rect_02, P_rect_03
//	GT/NNNNNNNNNN.png                    optional ground truth, uint16, depth = value/256 m,
//	                                     0 = none; GT defaults to
//	                                     DRIVE/proj_depth/groundtruth/image_02 (the depth
//	                                     benchmark's folder of the same drive copied in)
//
// Frames are the left images in name order; a frame gets ground-truth depth when GT holds
// a file of the same name (the benchmark leaves out the first and last 5 frames of a
// drive). Raw drives have no pose truth here (their OXTS GPS/IMU is not read); give one
// with a TUM file (WithPoseTruth).
//
// Odometry sequence (OpenKITTIOdometry):
//
//	ROOT/sequences/NN/image_2/NNNNNN.png  left, 8-bit colour
//	ROOT/sequences/NN/image_3/NNNNNN.png  right
//	ROOT/sequences/NN/calib.txt           P0, P2, P3 (3x4, row-major)
//	ROOT/sequences/NN/times.txt           optional: seconds from the start, one a line
//	ROOT/poses/NN.txt                     optional: 12 numbers a line, the 3x4 pose of
//	                                      camera 0 in the first frame's camera 0
//
// The poses are of camera 0 (the left grey camera), which sits a few centimetres beside
// camera 2 with the same orientation (the rectified cameras differ by a translation
// only). They are carried over to camera 2: with C = cam0_T_cam2 (from P0 and P2),
// truth(k) = C⁻¹ · pose(k) · C, the pose of camera 2 in the first frame's camera 2.
// The odometry benchmark has no depth truth.

// kittiRawFPS is the frame rate of KITTI's cameras, used when timestamps.txt is absent.
const kittiRawFPS = 10

// kittiDepthScale: KITTI depth PNG levels per metre.
const kittiDepthScale = 256

// KITTIRawOptions locate what a raw drive keeps elsewhere; zero fields take the defaults
// described above.
type KITTIRawOptions struct {
	// CalibFile is calib_cam_to_cam.txt. Default: DRIVE/calib_cam_to_cam.txt, else
	// DRIVE/../calib_cam_to_cam.txt.
	CalibFile string
	// GroundTruthDir holds the depth benchmark's PNGs for image_02. Default
	// DRIVE/proj_depth/groundtruth/image_02; a missing default means no depth truth,
	// a missing explicit directory is an error.
	GroundTruthDir string
}

// KITTISource is a KITTI raw drive or odometry sequence.
type KITTISource struct {
	info        SourceInfo
	left, right []string // image paths
	truth       []string // depth truth paths, "" where none
	times       []time.Time
	poses       []odom.Pose // nil: no pose truth
	k           camera.Intrinsics
}

// OpenKITTIRaw opens the raw drive in dir (the *_sync folder).
func OpenKITTIRaw(dir string, opt KITTIRawOptions) (*KITTISource, error) {
	left, err := listPNG(filepath.Join(dir, "image_02", "data"))
	if err != nil {
		return nil, err
	}
	right, err := pairedFiles(left, filepath.Join(dir, "image_03", "data"))
	if err != nil {
		return nil, err
	}
	calibFile := opt.CalibFile
	if calibFile == "" {
		calibFile = filepath.Join(dir, "calib_cam_to_cam.txt")
		if _, err := os.Stat(calibFile); err != nil {
			calibFile = filepath.Join(dir, "..", "calib_cam_to_cam.txt")
		}
	}
	calib, err := readKITTICalib(calibFile)
	if err != nil {
		return nil, err
	}
	s := &KITTISource{left: left, right: right}
	if err := s.setCalib(calibFile, calib, "P_rect_02", "P_rect_03", left[0]); err != nil {
		return nil, err
	}
	s.info.Kind, s.info.Path = "kitti-raw", dir

	gt := opt.GroundTruthDir
	if gt == "" {
		gt = filepath.Join(dir, "proj_depth", "groundtruth", "image_02")
		if _, err := os.Stat(gt); errors.Is(err, fs.ErrNotExist) {
			gt = ""
		}
	}
	if gt != "" {
		have, err := os.ReadDir(gt)
		if err != nil {
			return nil, fmt.Errorf("eval: kitti depth ground truth: %w", err)
		}
		names := map[string]bool{}
		for _, e := range have {
			names[e.Name()] = true
		}
		s.truth = make([]string, len(left))
		n := 0
		for i, l := range left {
			if names[filepath.Base(l)] {
				s.truth[i] = filepath.Join(gt, filepath.Base(l))
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("eval: kitti depth ground truth %s: no file named like the images of %s", gt, filepath.Dir(left[0]))
		}
		s.info.DepthTruth = true
		s.info.Notes = append(s.info.Notes, fmt.Sprintf("depth truth: %s (value/256 m), %d of %d frames", gt, n, len(left)))
	}
	s.info.Notes = append(s.info.Notes, "no pose truth from a raw drive (OXTS is not read); --gt-poses adds one")

	s.times, err = readRawTimestamps(filepath.Join(dir, "image_02", "timestamps.txt"), len(left))
	if err != nil {
		return nil, err
	}
	if s.times != nil {
		s.info.FPS = fpsOf(s.times)
	} else {
		s.info.FPS = kittiRawFPS
	}
	return s, nil
}

// OpenKITTIOdometry opens sequence seq ("00".."21") under root, the folder holding
// sequences/ and poses/.
func OpenKITTIOdometry(root, seq string) (*KITTISource, error) {
	if seq == "" {
		return nil, errors.New("eval: kitti odometry: no sequence number (want 00, 01, ...)")
	}
	dir := filepath.Join(root, "sequences", seq)
	left, err := listPNG(filepath.Join(dir, "image_2"))
	if err != nil {
		return nil, err
	}
	right, err := pairedFiles(left, filepath.Join(dir, "image_3"))
	if err != nil {
		return nil, err
	}
	calibFile := filepath.Join(dir, "calib.txt")
	calib, err := readKITTICalib(calibFile)
	if err != nil {
		return nil, err
	}
	s := &KITTISource{left: left, right: right}
	if err := s.setCalib(calibFile, calib, "P2", "P3", left[0]); err != nil {
		return nil, err
	}
	s.info.Kind, s.info.Path = "kitti-odometry", dir

	if s.times, err = readSecondsFile(filepath.Join(dir, "times.txt"), len(left)); err != nil {
		return nil, err
	}
	if s.times != nil {
		s.info.FPS = fpsOf(s.times)
	} else {
		s.info.FPS = kittiRawFPS
	}

	posesFile := filepath.Join(root, "poses", seq+".txt")
	raw, err := readKITTIPoseFile(posesFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.info.Notes = append(s.info.Notes, "no pose truth: "+posesFile+" does not exist (the benchmark publishes 00-10)")
	case err != nil:
		return nil, err
	case len(raw) != len(left):
		return nil, fmt.Errorf("eval: kitti odometry: %s has %d poses for %d images", posesFile, len(raw), len(left))
	default:
		p0, ok := calib["P0"]
		if !ok {
			return nil, fmt.Errorf("eval: kitti odometry: %s: no P0 (needed to carry camera 0's poses to camera 2)", calibFile)
		}
		c := camOffset(p0, calib["P2"]) // cam0_T_cam2
		ci := c.Inverse()
		s.poses = make([]odom.Pose, len(raw))
		for i, p := range raw {
			s.poses[i] = ci.Mul(p).Mul(c)
		}
		s.info.PoseTruth = true
		s.info.Notes = append(s.info.Notes, fmt.Sprintf(
			"pose truth: %s, camera 0 carried to camera 2 (offset %.3f m along x)", posesFile, c.T[0]))
	}
	return s, nil
}

// camOffset returns cam0_T_camX for the rectified projection matrices P0 and
// PX = K·[I | t]: a point p of camera 0 is at p + t in camera X, so cam0_T_camX is the
// translation −t, with t = K⁻¹·PX[:,3] − K⁻¹·P0[:,3].
func camOffset(p0, px [12]float64) odom.Pose {
	t0, tx := projTranslation(p0), projTranslation(px)
	c := odom.Identity()
	for i := range 3 {
		c.T[i] = -(tx[i] - t0[i])
	}
	return c
}

// projTranslation returns K⁻¹·P[:,3] for P = K·[I | t] with K upper triangular.
func projTranslation(p [12]float64) [3]float64 {
	fx, s, cx := p[0], p[1], p[2]
	fy, cy := p[5], p[6]
	tz := p[11] / p[10]
	ty := (p[7] - cy*tz) / fy
	tx := (p[3] - s*ty - cx*tz) / fx
	return [3]float64{tx, ty, tz}
}

// setCalib fills the intrinsics and baseline from the left and right projection
// matrices and the image size from the first left image.
func (s *KITTISource) setCalib(file string, calib map[string][12]float64, leftKey, rightKey, firstImage string) error {
	pl, ok := calib[leftKey]
	if !ok {
		return fmt.Errorf("eval: kitti calibration %s: no %s", file, leftKey)
	}
	pr, ok := calib[rightKey]
	if !ok {
		return fmt.Errorf("eval: kitti calibration %s: no %s", file, rightKey)
	}
	fx := pl[0]
	if !(fx > 0) || !(pl[5] > 0) {
		return fmt.Errorf("eval: kitti calibration %s: %s has focal lengths %g, %g", file, leftKey, pl[0], pl[5])
	}
	// P = K·[I | t]: P[0][3] = fx·tx. The right camera sits at +baseline along x, so
	// its tx is the left one's minus the baseline.
	baseline := (pl[3] - pr[3]) / fx
	if !(baseline > 0) {
		return fmt.Errorf("eval: kitti calibration %s: baseline (%s[0][3] - %s[0][3])/fx = %g m, want positive", file, leftKey, rightKey, baseline)
	}
	w, h, err := pngSize(firstImage)
	if err != nil {
		return err
	}
	s.k = camera.Intrinsics{Fx: fx, Fy: pl[5], Cx: pl[2], Cy: pl[6], Width: w, Height: h}
	s.info.Frames, s.info.Width, s.info.Height, s.info.BaselineM = len(s.left), w, h, baseline
	return nil
}

// Info implements Source.
func (s *KITTISource) Info() SourceInfo { return s.info }

// Frame implements Source.
func (s *KITTISource) Frame(i int) (Frame, error) {
	if i < 0 || i >= len(s.left) {
		return Frame{}, fmt.Errorf("eval: %s: frame %d out of range [0, %d)", s.info.Path, i, len(s.left))
	}
	var f Frame
	f.Seq, f.Intrinsics, f.BaselineM = uint64(i), s.k, s.info.BaselineM
	if s.times != nil {
		f.CaptureTime = s.times[i]
	} else {
		f.CaptureTime = time.Unix(0, 0).UTC().Add(time.Duration(i) * time.Second / kittiRawFPS)
	}
	var err error
	if f.Left, err = readRGB(s.left[i], s.k); err != nil {
		return Frame{}, err
	}
	if f.Right, err = readRGB(s.right[i], s.k); err != nil {
		return Frame{}, err
	}
	if s.truth != nil && s.truth[i] != "" {
		if f.TruthDepth, err = readKITTIDepth(s.truth[i], s.k); err != nil {
			return Frame{}, err
		}
	}
	if s.poses != nil {
		f.TruthPose, f.HasTruthPose = s.poses[i], true
	}
	return f, nil
}

// listPNG returns the PNG files of dir in name order.
func listPNG(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("eval: kitti: %w", err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".png") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("eval: kitti: %s: no PNG images", dir)
	}
	slices.Sort(out)
	return out, nil
}

// pairedFiles returns, for every left image, the file of the same name in dir.
func pairedFiles(left []string, dir string) ([]string, error) {
	out := make([]string, len(left))
	for i, l := range left {
		out[i] = filepath.Join(dir, filepath.Base(l))
		if _, err := os.Stat(out[i]); err != nil {
			return nil, fmt.Errorf("eval: kitti: right image for %s: %w", l, err)
		}
	}
	return out, nil
}

// readKITTICalib reads "KEY: v1 v2 ..." lines, keeping the keys with 12 numbers (the
// 3x4 projection matrices); other lines (calib_time, S_, K_, D_, ...) are skipped.
func readKITTICalib(path string) (map[string][12]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eval: kitti calibration: %w", err)
	}
	return parseKITTICalib(b), nil
}

// parseKITTICalib is readKITTICalib's parser: lines that are not "KEY: 12 finite
// numbers" are skipped.
func parseKITTICalib(b []byte) map[string][12]float64 {
	out := map[string][12]float64{}
	for line := range strings.Lines(string(b)) {
		key, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 12 {
			continue
		}
		var p [12]float64
		good := true
		for i, v := range f {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				good = false
				break
			}
			p[i] = x
		}
		if good {
			out[strings.TrimSpace(key)] = p
		}
	}
	return out
}

// readKITTIPoseFile reads the odometry benchmark's pose file (odom.ReadKITTIPoses).
func readKITTIPoseFile(path string) ([]odom.Pose, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	poses, err := odom.ReadKITTIPoses(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("eval: kitti poses %s: %w", path, err)
	}
	return poses, nil
}

// readRawTimestamps reads a raw drive's timestamps.txt; nil without error when absent.
func readRawTimestamps(path string, n int) ([]time.Time, error) {
	return readTimes(path, n, func(line string) (time.Time, error) {
		t, err := time.Parse("2006-01-02 15:04:05.999999999", line)
		return t.UTC(), err
	})
}

// readSecondsFile reads an odometry times.txt (seconds from the start, one a line) as
// times after the Unix epoch; nil without error when absent.
func readSecondsFile(path string, n int) ([]time.Time, error) {
	return readTimes(path, n, func(line string) (time.Time, error) {
		sec, err := strconv.ParseFloat(line, 64)
		if err != nil || math.IsNaN(sec) || math.IsInf(sec, 0) {
			return time.Time{}, fmt.Errorf("%q is not a number of seconds", line)
		}
		return time.Unix(0, 0).UTC().Add(time.Duration(math.Round(sec * 1e9))), nil
	})
}

// readTimes reads one time a non-blank line with parse, and wants n of them; nil
// without error when the file is absent.
func readTimes(path string, n int, parse func(line string) (time.Time, error)) ([]time.Time, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("eval: kitti: %w", err)
	}
	var out []time.Time
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		t, err := parse(line)
		if err != nil {
			return nil, fmt.Errorf("eval: kitti: %s: %w", path, err)
		}
		out = append(out, t)
	}
	if len(out) != n {
		return nil, fmt.Errorf("eval: kitti: %s: %d times for %d images", path, len(out), n)
	}
	return out, nil
}

// fpsOf is the mean frame rate of increasing times (0 when it cannot tell).
func fpsOf(t []time.Time) float64 {
	if len(t) < 2 {
		return 0
	}
	d := t[len(t)-1].Sub(t[0]).Seconds()
	if !(d > 0) {
		return 0
	}
	return float64(len(t)-1) / d
}

func pngSize(path string) (int, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("eval: kitti: %w", err)
	}
	defer f.Close()
	c, err := png.DecodeConfig(bufio.NewReader(f))
	if err != nil {
		return 0, 0, fmt.Errorf("eval: kitti: %s: %w", path, err)
	}
	return c.Width, c.Height, nil
}

func decodePNG(path string, k camera.Intrinsics) (image.Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eval: kitti: %w", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("eval: kitti: %s: %w", path, err)
	}
	if r := img.Bounds(); r.Dx() != k.Width || r.Dy() != k.Height {
		return nil, fmt.Errorf("eval: kitti: %s: %dx%d pixels, the sequence's first image is %dx%d", path, r.Dx(), r.Dy(), k.Width, k.Height)
	}
	return img, nil
}

// readRGB reads an 8-bit colour (or grey) PNG into a packed RGB image.
func readRGB(path string, k camera.Intrinsics) (camera.Image, error) {
	img, err := decodePNG(path, k)
	if err != nil {
		return camera.Image{}, err
	}
	return toRGB(img), nil
}

// toRGB converts img to a packed RGB image, without a per-pixel interface call for the
// formats PNG decoding gives.
func toRGB(img image.Image) camera.Image {
	b := img.Bounds()
	out := camera.NewImage(b.Dx(), b.Dy())
	switch m := img.(type) {
	case *image.RGBA:
		for y := range out.Height {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[3*y*out.Width:]
			for x := range out.Width {
				dst[3*x], dst[3*x+1], dst[3*x+2] = src[4*x], src[4*x+1], src[4*x+2]
			}
		}
	case *image.NRGBA:
		for y := range out.Height {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[3*y*out.Width:]
			for x := range out.Width {
				dst[3*x], dst[3*x+1], dst[3*x+2] = src[4*x], src[4*x+1], src[4*x+2]
			}
		}
	case *image.Gray:
		for y := range out.Height {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[3*y*out.Width:]
			for x := range out.Width {
				dst[3*x], dst[3*x+1], dst[3*x+2] = src[x], src[x], src[x]
			}
		}
	default:
		return camera.FromImage(img)
	}
	return out
}

// readKITTIDepth reads a depth benchmark PNG: uint16, metres = value/256, 0 = none.
func readKITTIDepth(path string, k camera.Intrinsics) (depth.Map, error) {
	img, err := decodePNG(path, k)
	if err != nil {
		return depth.Map{}, err
	}
	m, ok := img.(*image.Gray16)
	if !ok {
		return depth.Map{}, fmt.Errorf("eval: kitti: %s: %T, want 16-bit grey (depth×256)", path, img)
	}
	out := depth.NewMap(k.Width, k.Height)
	for y := range k.Height {
		row := m.Pix[m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y+y):]
		for x := range k.Width {
			out.M[y*k.Width+x] = float32(uint16(row[2*x])<<8|uint16(row[2*x+1])) / kittiDepthScale
		}
	}
	return out, nil
}
