package calib

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The spellings each field goes by. OpenCV's stereo_calib sample writes M1/M2 for the
// camera matrices; most other code (and OpenCV's documentation) says K1/K2; the
// arguments of cv::stereoCalibrate are cameraMatrix1 and distCoeffs1.
var (
	keysK1 = []string{"K1", "M1", "cameraMatrix1"}
	keysD1 = []string{"D1", "distCoeffs1"}
	keysK2 = []string{"K2", "M2", "cameraMatrix2"}
	keysD2 = []string{"D2", "distCoeffs2"}
	keysR  = []string{"R"}
	keysT  = []string{"T"}
)

// ParseOpenCVYAML reads a complete stereo calibration from one cv::FileStorage YAML
// file (see the package documentation for the keys). file names it in errors. The image
// size is zero if the file does not record it.
func ParseOpenCVYAML(file string, data []byte) (Stereo, error) {
	d, err := parseYAMLDoc(file, data)
	if err != nil {
		return Stereo{}, err
	}
	return stereoFromDocs([]*doc{d})
}

// ParseOpenCVXML reads a complete stereo calibration from one cv::FileStorage XML file.
func ParseOpenCVXML(file string, data []byte) (Stereo, error) {
	d, err := parseXMLDoc(file, data)
	if err != nil {
		return Stereo{}, err
	}
	return stereoFromDocs([]*doc{d})
}

// found is where a field was found: which file, under which spelling.
type found struct {
	d   *doc
	key string
	n   *node
}

// lookup finds a field in any of docs under any of its spellings. Finding it twice is
// an error, even with equal values: two sources for one number is a mistake waiting.
func lookup(docs []*doc, keys []string) (found, error) {
	var f found
	for _, d := range docs {
		for _, k := range keys {
			n := d.root.get(k)
			if n == nil {
				continue
			}
			if f.n != nil {
				return found{}, &ParseError{File: d.file, Key: k, Line: n.line,
					Msg: fmt.Sprintf("also given as %s in %s: keep one", f.key, f.d.file)}
			}
			f = found{d: d, key: k, n: n}
		}
	}
	return f, nil
}

func missing(docs []*doc, keys []string) error {
	names := make([]string, len(docs))
	for i, d := range docs {
		names[i] = d.file
	}
	alt := ""
	if len(keys) > 1 {
		alt = " (or " + strings.Join(keys[1:], ", ") + ")"
	}
	return &ParseError{File: strings.Join(names, ", "), Key: keys[0], Msg: "missing" + alt}
}

// stereoFromDocs assembles a Stereo from the fields spread over one or more files.
func stereoFromDocs(docs []*doc) (Stereo, error) {
	var s Stereo
	var err error
	for _, c := range []struct {
		keys []string
		k    *[9]float64
	}{{keysK1, &s.K1}, {keysK2, &s.K2}} {
		f, err := lookup(docs, c.keys)
		if err != nil {
			return Stereo{}, err
		}
		if f.n == nil {
			return Stereo{}, missing(docs, c.keys)
		}
		m, err := f.d.asMatrix(f.key, f.n, true)
		if err != nil {
			return Stereo{}, err
		}
		if m.rows != 3 || m.cols != 3 {
			return Stereo{}, f.d.errorf(f.key, f.n, "is %dx%d, want 3x3", m.rows, m.cols)
		}
		copy(c.k[:], m.data)
		if err := validateCameraMatrix(*c.k); err != nil {
			return Stereo{}, f.d.errorf(f.key, f.n, "%v", err)
		}
	}
	for _, c := range []struct {
		keys []string
		d    *[]float64
	}{{keysD1, &s.D1}, {keysD2, &s.D2}} {
		f, err := lookup(docs, c.keys)
		if err != nil {
			return Stereo{}, err
		}
		if f.n == nil {
			return Stereo{}, missing(docs, c.keys)
		}
		m, err := f.d.asMatrix(f.key, f.n, true)
		if err != nil {
			return Stereo{}, err
		}
		if m.rows != 1 && m.cols != 1 {
			return Stereo{}, f.d.errorf(f.key, f.n, "is %dx%d, want one row or one column", m.rows, m.cols)
		}
		if err := validateDistortion(m.data); err != nil {
			return Stereo{}, f.d.errorf(f.key, f.n, "%v", err)
		}
		*c.d = m.data
	}

	f, err := lookup(docs, keysR)
	if err != nil {
		return Stereo{}, err
	}
	if f.n == nil {
		return Stereo{}, missing(docs, keysR)
	}
	m, err := f.d.asMatrix(f.key, f.n, true)
	if err != nil {
		return Stereo{}, err
	}
	switch {
	case m.rows == 3 && m.cols == 3:
		copy(s.R[:], m.data)
	case m.rows*m.cols == 3 && (m.rows == 1 || m.cols == 1):
		// A rotation vector, as cv::Rodrigues and solvePnP produce.
		s.R = rodrigues([3]float64{m.data[0], m.data[1], m.data[2]})
	default:
		return Stereo{}, f.d.errorf(f.key, f.n, "is %dx%d, want a 3x3 rotation matrix or a 3-element rotation vector", m.rows, m.cols)
	}
	if err := validateRotation(s.R); err != nil {
		return Stereo{}, f.d.errorf(f.key, f.n, "%v", err)
	}

	if f, err = lookup(docs, keysT); err != nil {
		return Stereo{}, err
	}
	if f.n == nil {
		return Stereo{}, missing(docs, keysT)
	}
	if m, err = f.d.asMatrix(f.key, f.n, true); err != nil {
		return Stereo{}, err
	}
	if m.rows*m.cols != 3 || (m.rows != 1 && m.cols != 1) {
		return Stereo{}, f.d.errorf(f.key, f.n, "is %dx%d, want 3 values", m.rows, m.cols)
	}
	copy(s.T[:], m.data)

	if s.Size, err = sizeFromDocs(docs); err != nil {
		return Stereo{}, err
	}
	if err := s.validateGeometry(); err != nil {
		// The per-field checks above name the key; what is left here (T) is a
		// property of the whole rig.
		names := make([]string, len(docs))
		for i, d := range docs {
			names[i] = d.file
		}
		return Stereo{}, fmt.Errorf("%s: %w", strings.Join(names, ", "), err)
	}
	return s, nil
}

// sizeFromDocs reads the calibration image size: image_width and image_height (as
// OpenCV's calibration sample and ROS write them), or imageSize / image_size, a
// [width, height] pair (as FileStorage writes a cv::Size). Zero when none is present.
func sizeFromDocs(docs []*doc) (ImageSize, error) {
	var size ImageSize
	var from string
	set := func(d *doc, key string, n *node, s ImageSize) error {
		if s.Width <= 0 || s.Height <= 0 {
			return d.errorf(key, n, "image size %v must be positive", s)
		}
		if from != "" && s != size {
			return d.errorf(key, n, "says %v but %s says %v", s, from, size)
		}
		size, from = s, d.file+": "+key
		return nil
	}
	for _, d := range docs {
		w, h := d.root.get("image_width"), d.root.get("image_height")
		switch {
		case w != nil && h != nil:
			wv, err := d.intValue("image_width", w)
			if err != nil {
				return ImageSize{}, err
			}
			hv, err := d.intValue("image_height", h)
			if err != nil {
				return ImageSize{}, err
			}
			if err := set(d, "image_width", w, ImageSize{wv, hv}); err != nil {
				return ImageSize{}, err
			}
		case w != nil:
			return ImageSize{}, d.errorf("image_width", w, "given without image_height")
		case h != nil:
			return ImageSize{}, d.errorf("image_height", h, "given without image_width")
		}
		for _, key := range []string{"imageSize", "image_size"} {
			n := d.root.get(key)
			if n == nil {
				continue
			}
			v, err := d.numbers(key, n)
			if err != nil {
				return ImageSize{}, err
			}
			if len(v) != 2 || v[0] != float64(int(v[0])) || v[1] != float64(int(v[1])) {
				return ImageSize{}, d.errorf(key, n, "want two integers [width, height]")
			}
			if err := set(d, key, n, ImageSize{int(v[0]), int(v[1])}); err != nil {
				return ImageSize{}, err
			}
		}
	}
	return size, nil
}

// WriteOpenCVYAML writes s as a cv::FileStorage YAML file, in the layout of OpenCV's own
// writer, which cv::FileStorage (and this package) read back: image_width, image_height,
// K1, D1, K2, D2, R, T. Numbers are written in the shortest form that reads back to the
// same float64.
func WriteOpenCVYAML(w io.Writer, s Stereo) error {
	if err := s.Validate(); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%%YAML:1.0\n---\n")
	fmt.Fprintf(bw, "image_width: %d\nimage_height: %d\n", s.Size.Width, s.Size.Height)
	writeMatrix(bw, "K1", 3, 3, s.K1[:])
	writeMatrix(bw, "D1", 1, len(s.D1), s.D1)
	writeMatrix(bw, "K2", 3, 3, s.K2[:])
	writeMatrix(bw, "D2", 1, len(s.D2), s.D2)
	writeMatrix(bw, "R", 3, 3, s.R[:])
	writeMatrix(bw, "T", 3, 1, s.T[:])
	return bw.Flush()
}

func writeMatrix(w *bufio.Writer, key string, rows, cols int, data []float64) {
	fmt.Fprintf(w, "%s: !!opencv-matrix\n   rows: %d\n   cols: %d\n   dt: d\n   data: [ ", key, rows, cols)
	for i, v := range data {
		switch {
		case i == 0:
		case i%4 == 0: // OpenCV wraps its lines too; keeps files diffable
			w.WriteString(",\n       ")
		default:
			w.WriteString(", ")
		}
		// 'e' keeps a decimal exponent on every number, so OpenCV's parser reads
		// each one as a real, never as an int.
		w.WriteString(strconv.FormatFloat(v, 'e', -1, 64))
	}
	w.WriteString(" ]\n")
}
