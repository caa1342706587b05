package sim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/edgedepth/edgedepth/camera"
)

// The on-disk sequence format, shared by the simulator, `edgedepth record` and the
// readers of `eval` and `train`:
//
//	DIR/calib.yaml          Calib: rectified intrinsics, baseline, frame rate (+ scene, seed)
//	DIR/left/NNNNNN.png     8-bit RGB, rectified left image of frame NNNNNN (from 000000)
//	DIR/right/NNNNNN.png    8-bit RGB, rectified right image
//	DIR/depth/NNNNNN.png    optional: 16-bit greyscale z-depth of the left image in
//	                        millimetres, 0 = no depth (sky), clamped to 65535
//	DIR/poses.txt           optional: TUM format "timestamp tx ty tz qx qy qz qw", one line
//	                        a frame, pose of the left camera (world_T_camera, OpenCV axes)
//	DIR/times.txt           optional: capture time of each frame, one a line
//
// Timestamps are Unix seconds with nine decimals ("1735689600.100000000"), written from
// integer nanoseconds so that they round-trip exactly. Every file is written to a
// temporary name and renamed into place, and calib.yaml is written last: a directory
// without calib.yaml is an unfinished sequence.

// Calib is the content of calib.yaml.
type Calib struct {
	Fx        float64 `yaml:"fx"`
	Fy        float64 `yaml:"fy"`
	Cx        float64 `yaml:"cx"`
	Cy        float64 `yaml:"cy"`
	Width     int     `yaml:"width"`
	Height    int     `yaml:"height"`
	BaselineM float64 `yaml:"baseline_m"`
	FPS       float64 `yaml:"fps"`
	// Scene and Seed identify a simulated sequence; empty and nil for real cameras.
	Scene string `yaml:"scene,omitempty"`
	Seed  *int64 `yaml:"seed,omitempty"`
}

// Intrinsics returns the calibration as camera intrinsics.
func (c Calib) Intrinsics() camera.Intrinsics {
	return camera.Intrinsics{Fx: c.Fx, Fy: c.Fy, Cx: c.Cx, Cy: c.Cy, Width: c.Width, Height: c.Height}
}

// validate names the first field that cannot describe a stereo rig.
func (c Calib) validate() error {
	pos := func(name string, v float64) error {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("%s = %g: must be positive", name, v)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"fx", c.Fx}, {"fy", c.Fy}, {"baseline_m", c.BaselineM}, {"fps", c.FPS}} {
		if err := pos(f.name, f.v); err != nil {
			return err
		}
	}
	if c.Width <= 0 || c.Height <= 0 {
		return fmt.Errorf("width x height = %dx%d: must be positive", c.Width, c.Height)
	}
	if math.IsNaN(c.Cx) || math.IsInf(c.Cx, 0) || math.IsNaN(c.Cy) || math.IsInf(c.Cy, 0) {
		return fmt.Errorf("cx, cy = %g, %g: must be finite", c.Cx, c.Cy)
	}
	return nil
}

// CalibOf returns the calibration of a simulated world.
func CalibOf(w *World) Calib {
	k, cfg := w.Intrinsics(), w.Config()
	seed := cfg.Seed
	return Calib{
		Fx: k.Fx, Fy: k.Fy, Cx: k.Cx, Cy: k.Cy, Width: k.Width, Height: k.Height,
		BaselineM: cfg.BaselineM, FPS: cfg.FPS, Scene: cfg.Scene, Seed: &seed,
	}
}

// Sentinel errors of sequences.
var (
	// ErrNotEmpty: CreateSequence refuses to mix a new sequence into old files.
	ErrNotEmpty = errors.New("sim: sequence directory is not empty")
	// ErrBadSequence is wrapped by every error about malformed sequence files.
	ErrBadSequence = errors.New("sim: bad sequence")
	// ErrEndOfSequence ends a Playback that does not loop.
	ErrEndOfSequence = errors.New("sim: end of sequence")
)

// SequenceWriter writes a sequence frame by frame. WriteFrame may be called from several
// goroutines at once, in any order; Close checks that frames 0..n-1 were all written and
// writes the text files and calib.yaml.
type SequenceWriter struct {
	dir   string
	calib Calib
	enc   png.Encoder

	mu       sync.Mutex
	times    map[uint64]time.Time
	poses    map[uint64]camera.Pose
	depths   int // frames written with depth
	closed   bool
	closeErr error
}

// CreateSequence starts a sequence in dir, which must not exist or be empty.
func CreateSequence(dir string, calib Calib) (*SequenceWriter, error) {
	if err := calib.validate(); err != nil {
		return nil, fmt.Errorf("sim: create sequence %s: calib: %w", dir, err)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%w: %s holds %s", ErrNotEmpty, dir, entries[0].Name())
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sim: create sequence: %w", err)
	}
	for _, sub := range []string{"left", "right"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("sim: create sequence: %w", err)
		}
	}
	return &SequenceWriter{
		dir: dir, calib: calib,
		// Rendered noise barely compresses: spend the time on rendering instead.
		enc:   png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &pngBuffers{}},
		times: map[uint64]time.Time{},
		poses: map[uint64]camera.Pose{},
	}, nil
}

// pngBuffers lets concurrent encoders share their scratch buffers.
type pngBuffers struct{ p sync.Pool }

func (b *pngBuffers) Get() *png.EncoderBuffer {
	e, _ := b.p.Get().(*png.EncoderBuffer)
	return e
}
func (b *pngBuffers) Put(e *png.EncoderBuffer) { b.p.Put(e) }

// WriteFrame writes f as frame number f.Seq (Seq must count from 0 without gaps by
// Close): both images, and the depth and pose when f has Truth.
func (sw *SequenceWriter) WriteFrame(f camera.StereoFrame) error {
	if f.Left.Width != sw.calib.Width || f.Left.Height != sw.calib.Height ||
		f.Right.Width != sw.calib.Width || f.Right.Height != sw.calib.Height {
		return fmt.Errorf("sim: write frame %d: images %dx%d and %dx%d, calib says %dx%d",
			f.Seq, f.Left.Width, f.Left.Height, f.Right.Width, f.Right.Height, sw.calib.Width, sw.calib.Height)
	}
	hasDepth := f.Truth != nil && f.Truth.DepthM != nil
	if hasDepth && len(f.Truth.DepthM) != sw.calib.Width*sw.calib.Height {
		return fmt.Errorf("sim: write frame %d: %d depth values for a %dx%d image",
			f.Seq, len(f.Truth.DepthM), sw.calib.Width, sw.calib.Height)
	}
	// Claim the frame number first, so that two writers never race on its files.
	sw.mu.Lock()
	if sw.closed {
		sw.mu.Unlock()
		return fmt.Errorf("sim: write frame %d: sequence %s is closed", f.Seq, sw.dir)
	}
	if _, dup := sw.times[f.Seq]; dup {
		sw.mu.Unlock()
		return fmt.Errorf("sim: write frame %d: written twice", f.Seq)
	}
	sw.times[f.Seq] = f.CaptureTime
	sw.mu.Unlock()

	if err := sw.writeFiles(f, hasDepth); err != nil {
		sw.mu.Lock()
		delete(sw.times, f.Seq) // Close will report the frame missing
		sw.mu.Unlock()
		return err
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if f.Truth != nil {
		sw.poses[f.Seq] = f.Truth.Pose
	}
	if hasDepth {
		sw.depths++
	}
	return nil
}

func (sw *SequenceWriter) writeFiles(f camera.StereoFrame, hasDepth bool) error {
	name := frameName(int(f.Seq))
	if err := sw.writePNG(filepath.Join(sw.dir, "left", name), f.Left.RGBA()); err != nil {
		return err
	}
	if err := sw.writePNG(filepath.Join(sw.dir, "right", name), f.Right.RGBA()); err != nil {
		return err
	}
	if !hasDepth {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(sw.dir, "depth"), 0o755); err != nil {
		return fmt.Errorf("sim: write frame %d: %w", f.Seq, err)
	}
	return sw.writePNG(filepath.Join(sw.dir, "depth", name), depthImage(f.Truth.DepthM, sw.calib.Width, sw.calib.Height))
}

// SetFPS replaces the frame rate that calib.yaml will state: for recordings of real
// cameras, whose rate is measured while recording. Call it before Close.
func (sw *SequenceWriter) SetFPS(fps float64) error {
	if !(fps > 0) || math.IsInf(fps, 0) {
		return fmt.Errorf("sim: sequence %s: fps = %g: must be positive", sw.dir, fps)
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.closed {
		return fmt.Errorf("sim: sequence %s: set fps: closed", sw.dir)
	}
	sw.calib.FPS = fps
	return nil
}

// Close finishes the sequence: times.txt, poses.txt (when every frame had a pose) and
// finally calib.yaml. Call it once every WriteFrame has returned; later calls return
// the first call's result.
func (sw *SequenceWriter) Close() error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if !sw.closed {
		sw.closed = true
		sw.closeErr = sw.finish()
	}
	return sw.closeErr
}

// finish writes the text files and calib.yaml; sw.mu is held.
func (sw *SequenceWriter) finish() error {
	n := len(sw.times)
	if n == 0 {
		return fmt.Errorf("sim: close sequence %s: no frames written", sw.dir)
	}
	for i := range n {
		if _, ok := sw.times[uint64(i)]; !ok {
			last := uint64(0)
			for k := range sw.times {
				last = max(last, k)
			}
			return fmt.Errorf("sim: close sequence %s: frame %d missing (frames up to %d written)", sw.dir, i, last)
		}
	}
	if sw.depths != 0 && sw.depths != n {
		return fmt.Errorf("sim: close sequence %s: %d of %d frames have depth", sw.dir, sw.depths, n)
	}
	var times bytes.Buffer
	for i := range n {
		fmt.Fprintln(&times, formatStamp(sw.times[uint64(i)]))
	}
	if err := writeAtomic(filepath.Join(sw.dir, "times.txt"), times.Bytes()); err != nil {
		return err
	}
	if len(sw.poses) == n {
		var b bytes.Buffer
		b.WriteString("# timestamp tx ty tz qx qy qz qw (left camera in world, OpenCV axes, metres)\n")
		for i := range n {
			p := sw.poses[uint64(i)]
			fmt.Fprintf(&b, "%s %.9f %.9f %.9f %.12f %.12f %.12f %.12f\n", formatStamp(sw.times[uint64(i)]),
				p.Position[0], p.Position[1], p.Position[2],
				p.Orientation[0], p.Orientation[1], p.Orientation[2], p.Orientation[3])
		}
		if err := writeAtomic(filepath.Join(sw.dir, "poses.txt"), b.Bytes()); err != nil {
			return err
		}
	}
	y, err := yaml.Marshal(sw.calib)
	if err != nil {
		return fmt.Errorf("sim: close sequence: calib.yaml: %w", err)
	}
	return writeAtomic(filepath.Join(sw.dir, "calib.yaml"), y)
}

func frameName(i int) string { return fmt.Sprintf("%06d.png", i) }

// depthImage converts metres to 16-bit millimetres: 0 stays "no depth", anything valid
// is at least 1 mm, and far values clamp to 65535.
func depthImage(d []float32, w, h int) *image.Gray16 {
	img := image.NewGray16(image.Rect(0, 0, w, h))
	for i, v := range d {
		var mm uint16
		if v > 0 {
			mm = uint16(math.Max(1, math.Min(65535, math.Round(float64(v)*1000))))
		}
		img.Pix[2*i], img.Pix[2*i+1] = byte(mm>>8), byte(mm)
	}
	return img
}

func (sw *SequenceWriter) writePNG(path string, img image.Image) error {
	var b bytes.Buffer
	if err := sw.enc.Encode(&b, img); err != nil {
		return fmt.Errorf("sim: encode %s: %w", path, err)
	}
	return writeAtomic(path, b.Bytes())
}

// writeAtomic writes data to a temporary file beside path and renames it into place, so
// a reader never sees a half-written file under the final name.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("sim: write %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("sim: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("sim: write %s: %w", path, err)
	}
	return nil
}

// formatStamp writes t as decimal Unix seconds with nine decimals.
func formatStamp(t time.Time) string {
	ns := t.UnixNano()
	sign := ""
	if ns < 0 {
		sign, ns = "-", -ns
	}
	return fmt.Sprintf("%s%d.%09d", sign, ns/1e9, ns%1e9)
}

// maxStampSec keeps timestamps within what UnixNano represents (years 1685–2255).
const maxStampSec = 9_000_000_000

// parseStamp reads Unix seconds with up to nine decimals exactly.
func parseStamp(s string) (time.Time, error) {
	whole, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || sec > maxStampSec || sec < -maxStampSec || len(frac) > 9 ||
		strings.TrimLeft(frac, "0123456789") != "" {
		return time.Time{}, fmt.Errorf("timestamp %q: want Unix seconds like 1735689600.100000000", s)
	}
	var ns int64
	if frac != "" {
		ns, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	if strings.HasPrefix(whole, "-") {
		ns = -ns
	}
	return time.Unix(sec, ns).UTC(), nil
}

// WriteSequence renders frames 0..frames-1 of w into dir (which must not exist or be
// empty) in the sequence format, on GOMAXPROCS goroutines, each rendering and encoding
// whole frames. progress, if not nil, is called after each frame with the number done,
// from one goroutine at a time. On error or cancellation the frames written so far stay
// on disk, without calib.yaml.
func WriteSequence(ctx context.Context, dir string, w *World, frames int, progress func(done, total int)) error {
	if frames <= 0 {
		return fmt.Errorf("sim: write sequence %s: frames = %d: must be positive", dir, frames)
	}
	sw, err := CreateSequence(dir, CalibOf(w))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var mu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), frames) {
		wg.Go(func() {
			var f camera.StereoFrame
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= frames {
					return
				}
				// One goroutine a frame: no row-level parallelism to coordinate.
				w.renderInto(i, &f, 1)
				if err := sw.WriteFrame(f); err != nil {
					cancel(err)
					return
				}
				mu.Lock()
				done++
				if progress != nil {
					progress(done, frames)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("sim: write sequence %s: %w", dir, err)
	}
	return sw.Close()
}

// Sequence is a sequence on disk, opened for reading. Its methods are safe for
// concurrent use.
type Sequence struct {
	dir      string
	calib    Calib
	n        int
	hasDepth bool
	times    []time.Time   // nil: i/fps from the Unix epoch
	poses    []camera.Pose // nil: no poses.txt
}

var frameFile = regexp.MustCompile(`^([0-9]{6,})\.png$`)

// OpenSequence reads calib.yaml and the text files of the sequence in dir and checks that
// every frame has its files; images are read by Frame.
func OpenSequence(dir string) (*Sequence, error) {
	s := &Sequence{dir: dir}
	if err := s.readCalib(); err != nil {
		return nil, err
	}
	left, err := s.listFrames("left", true)
	if err != nil {
		return nil, err
	}
	s.n = left
	if _, err := s.listFrames("right", true); err != nil {
		return nil, err
	}
	depth, err := s.listFrames("depth", false)
	if err != nil {
		return nil, err
	}
	s.hasDepth = depth > 0
	if s.times, err = s.readTimes(); err != nil {
		return nil, err
	}
	if err := s.readPoses(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Sequence) badf(file, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadSequence, filepath.Join(s.dir, file), fmt.Sprintf(format, args...))
}

func (s *Sequence) readCalib() error {
	b, err := os.ReadFile(filepath.Join(s.dir, "calib.yaml"))
	if err != nil {
		return fmt.Errorf("sim: open sequence: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	// A misspelt key would otherwise read as zero: refuse keys we do not know.
	dec.KnownFields(true)
	if err := dec.Decode(&s.calib); err != nil {
		return s.badf("calib.yaml", "%v", err)
	}
	if err := s.calib.validate(); err != nil {
		return s.badf("calib.yaml", "%v", err)
	}
	return nil
}

// listFrames checks that sub/ holds exactly the frames 0..n-1 (n of left/ once known)
// and returns n. An absent optional directory has 0 frames.
func (s *Sequence) listFrames(sub string, required bool) (int, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, sub))
	if errors.Is(err, fs.ErrNotExist) && !required {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sim: open sequence: %w", err)
	}
	have := map[int]bool{}
	for _, e := range entries {
		m := frameFile.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			continue // temporary files, notes: not frames
		}
		i, err := strconv.Atoi(m[1])
		if err != nil {
			return 0, s.badf(filepath.Join(sub, e.Name()), "frame number out of range")
		}
		have[i] = true
	}
	n := len(have)
	if s.n > 0 {
		n = s.n
	}
	if n == 0 {
		return 0, s.badf(sub, "no frames (want %s)", frameName(0))
	}
	for i := range n {
		if !have[i] {
			return 0, s.badf(filepath.Join(sub, frameName(i)), "missing (frames must be numbered from 0 without gaps)")
		}
	}
	if len(have) != n {
		return 0, s.badf(sub, "%d frames, left/ has %d", len(have), n)
	}
	return n, nil
}

// readTimes reads times.txt; nil without error when there is none.
func (s *Sequence) readTimes() ([]time.Time, error) {
	lines, err := s.readLines("times.txt")
	if lines == nil || err != nil {
		return nil, err
	}
	times := make([]time.Time, len(lines))
	for k, l := range lines {
		t, err := parseStamp(strings.TrimSpace(l.text))
		if err != nil {
			return nil, s.badf("times.txt", "line %d: %v", l.no, err)
		}
		times[k] = t
	}
	return times, nil
}

func (s *Sequence) readPoses() error {
	lines, err := s.readLines("poses.txt")
	if lines == nil || err != nil {
		return err
	}
	s.poses = make([]camera.Pose, len(lines))
	var stamps []time.Time
	for k, l := range lines {
		f := strings.Fields(l.text)
		if len(f) != 8 {
			return s.badf("poses.txt", "line %d: %d fields, want 8 (timestamp tx ty tz qx qy qz qw)", l.no, len(f))
		}
		t, err := parseStamp(f[0])
		if err != nil {
			return s.badf("poses.txt", "line %d: %v", l.no, err)
		}
		stamps = append(stamps, t)
		var v [7]float64
		for c := range v {
			if v[c], err = strconv.ParseFloat(f[c+1], 64); err != nil || math.IsNaN(v[c]) || math.IsInf(v[c], 0) {
				return s.badf("poses.txt", "line %d: field %d %q is not a finite number", l.no, c+2, f[c+1])
			}
		}
		if qn := math.Sqrt(v[3]*v[3] + v[4]*v[4] + v[5]*v[5] + v[6]*v[6]); math.Abs(qn-1) > 1e-3 {
			return s.badf("poses.txt", "line %d: quaternion norm %.6f, want 1", l.no, qn)
		}
		s.poses[k] = camera.Pose{Position: [3]float64{v[0], v[1], v[2]}, Orientation: [4]float64{v[3], v[4], v[5], v[6]}}
	}
	if s.times == nil {
		s.times = stamps
	}
	return nil
}

type line struct {
	no   int
	text string
}

// readLines returns the non-blank, non-comment lines of an optional text file; there
// must be one per frame. nil, nil when the file does not exist.
func (s *Sequence) readLines(name string) ([]line, error) {
	f, err := os.Open(filepath.Join(s.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sim: open sequence: %w", err)
	}
	defer f.Close()
	var lines []line
	sc := bufio.NewScanner(f)
	for no := 1; sc.Scan(); no++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		lines = append(lines, line{no, t})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sim: open sequence: %s: %w", name, err)
	}
	if len(lines) != s.n {
		return nil, s.badf(name, "%d entries for %d frames", len(lines), s.n)
	}
	return lines, nil
}

// Len is the number of frames.
func (s *Sequence) Len() int { return s.n }

// Dir is the sequence's directory.
func (s *Sequence) Dir() string { return s.dir }

// Calib is the content of calib.yaml.
func (s *Sequence) Calib() Calib { return s.calib }

// Intrinsics of both rectified eyes.
func (s *Sequence) Intrinsics() camera.Intrinsics { return s.calib.Intrinsics() }

// BaselineM is the distance between the eyes in metres.
func (s *Sequence) BaselineM() float64 { return s.calib.BaselineM }

// FPS is the recorded frame rate.
func (s *Sequence) FPS() float64 { return s.calib.FPS }

// HasTruth reports whether frames carry ground truth (depth and poses).
func (s *Sequence) HasTruth() bool { return s.hasDepth && s.poses != nil }

// Frame reads frame i. CaptureTime comes from times.txt (or poses.txt), else it is
// i/fps after the Unix epoch. Truth is set when the sequence has depth or poses:
// DepthM is nil without depth/, Pose is the zero value (not a rotation) without
// poses.txt.
func (s *Sequence) Frame(i int) (camera.StereoFrame, error) {
	if i < 0 || i >= s.n {
		return camera.StereoFrame{}, fmt.Errorf("sim: sequence %s: frame %d out of range [0, %d)", s.dir, i, s.n)
	}
	f := camera.StereoFrame{
		Seq:        uint64(i),
		Intrinsics: s.calib.Intrinsics(),
		BaselineM:  s.calib.BaselineM,
	}
	if s.times != nil {
		f.CaptureTime = s.times[i]
	} else {
		f.CaptureTime = time.Unix(0, 0).UTC().Add(time.Duration(math.Round(float64(i) * 1e9 / s.calib.FPS)))
	}
	var err error
	name := frameName(i)
	if f.Left, err = s.readImage(filepath.Join("left", name)); err != nil {
		return camera.StereoFrame{}, err
	}
	if f.Right, err = s.readImage(filepath.Join("right", name)); err != nil {
		return camera.StereoFrame{}, err
	}
	if s.hasDepth || s.poses != nil {
		f.Truth = &camera.GroundTruth{}
	}
	if s.hasDepth {
		if f.Truth.DepthM, err = s.readDepth(filepath.Join("depth", name)); err != nil {
			return camera.StereoFrame{}, err
		}
	}
	if s.poses != nil {
		f.Truth.Pose = s.poses[i]
	}
	return f, nil
}

func (s *Sequence) decode(rel string) (image.Image, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, rel))
	if err != nil {
		return nil, fmt.Errorf("sim: sequence: %w", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, s.badf(rel, "%v", err)
	}
	if r := img.Bounds(); r.Dx() != s.calib.Width || r.Dy() != s.calib.Height {
		return nil, s.badf(rel, "%dx%d pixels, calib.yaml says %dx%d", r.Dx(), r.Dy(), s.calib.Width, s.calib.Height)
	}
	return img, nil
}

func (s *Sequence) readImage(rel string) (camera.Image, error) {
	img, err := s.decode(rel)
	if err != nil {
		return camera.Image{}, err
	}
	// 8-bit RGB PNGs decode to *image.RGBA: copy the bytes rather than call At per pixel.
	if m, ok := img.(*image.RGBA); ok && m.Rect.Min == (image.Point{}) {
		out := camera.NewImage(m.Rect.Dx(), m.Rect.Dy())
		for y := range out.Height {
			src := m.Pix[y*m.Stride : y*m.Stride+4*out.Width]
			dst := out.Pix[3*y*out.Width : 3*(y+1)*out.Width]
			for x := range out.Width {
				dst[3*x], dst[3*x+1], dst[3*x+2] = src[4*x], src[4*x+1], src[4*x+2]
			}
		}
		return out, nil
	}
	return camera.FromImage(img), nil
}

func (s *Sequence) readDepth(rel string) ([]float32, error) {
	img, err := s.decode(rel)
	if err != nil {
		return nil, err
	}
	m, ok := img.(*image.Gray16)
	if !ok {
		return nil, s.badf(rel, "%T, want 16-bit greyscale (millimetres)", img)
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	d := make([]float32, w*h)
	for y := range h {
		row := m.Pix[y*m.Stride:]
		for x := range w {
			d[y*w+x] = float32(uint16(row[2*x])<<8|uint16(row[2*x+1])) / 1000
		}
	}
	return d, nil
}
