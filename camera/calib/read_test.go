package calib

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The rig of testdata/README.md.
var (
	wantK1 = [9]float64{5.3480326845051309e+02, 0, 3.3568643204394891e+02, 0, 5.3480326845051309e+02, 2.4066183054066337e+02, 0, 0, 1}
	wantK2 = [9]float64{5.3480326845051309e+02, 0, 3.3455744527912015e+02, 0, 5.3480326845051309e+02, 2.4205324573376600e+02, 0, 0, 1}
	wantD1 = []float64{2.9589439552724328e-01, -1.0354662043042675e+00, 0, 0, 0}
	wantD2 = []float64{-1.6916358306948096e-01, -1.1214173641213163e-01, 0, 0, 0}
	wantR  = rodrigues([3]float64{0.0050, -0.0120, 0.0020})
	wantTm = [3]float64{-0.08329, 0.00096, -0.0000525}
)

func checkRig(t *testing.T, s Stereo, tScale, tol float64) {
	t.Helper()
	if s.Size != (ImageSize{640, 480}) {
		t.Errorf("Size = %v, want 640x480", s.Size)
	}
	near := func(name string, got, want []float64, tol float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s has %d values, want %d", name, len(got), len(want))
			return
		}
		for i := range got {
			if math.Abs(got[i]-want[i]) > tol*math.Max(1, math.Abs(want[i])) {
				t.Errorf("%s[%d] = %.17g, want %.17g", name, i, got[i], want[i])
			}
		}
	}
	near("K1", s.K1[:], wantK1[:], tol)
	near("K2", s.K2[:], wantK2[:], tol)
	near("D1", s.D1, wantD1, tol)
	near("D2", s.D2, wantD2, tol)
	near("R", s.R[:], wantR[:], tol)
	want := [3]float64{wantTm[0] * tScale, wantTm[1] * tScale, wantTm[2] * tScale}
	near("T", s.T[:], want[:], tol)
}

func TestLoad(t *testing.T) {
	const exact = 1e-15
	tests := []struct {
		name   string
		paths  []string
		tScale float64 // T in the file = metres · tScale
		tol    float64
	}{
		{"one YAML file", []string{"stereo.yml"}, 1, exact},
		{"one XML file", []string{"stereo.xml"}, 1, exact},
		{"stereo_calib's two files plus the size", []string{"stereo_calib/intrinsics.yml", "stereo_calib/extrinsics.yml", "stereo_calib/size.yml"}, 40, exact},
		{"the size first", []string{"stereo_calib/size.yml", "stereo_calib/extrinsics.yml", "stereo_calib/intrinsics.yml"}, 40, exact},
		// ROS stores R1, R2 and P2: R and T come back through arithmetic.
		{"ROS camera_info pair", []string{"ros/left.yaml", "ros/right.yaml"}, 1, 1e-9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var paths []string
			for _, p := range tt.paths {
				paths = append(paths, filepath.Join("testdata", p))
			}
			s, err := Load(paths...)
			if err != nil {
				t.Fatal(err)
			}
			checkRig(t, s, tt.tScale, tt.tol)
		})
	}
}

// stereo_calib writes T in chessboard squares; ScaleTranslation brings it to metres.
func TestScaleTranslation(t *testing.T) {
	s, err := Load("testdata/stereo_calib/intrinsics.yml", "testdata/stereo_calib/extrinsics.yml", "testdata/stereo_calib/size.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := s.ScaleTranslation(0.025)
	checkRig(t, m, 1, 1e-15)
	if s.T[0] != -3.3316 {
		t.Fatalf("ScaleTranslation changed its receiver: T = %v", s.T)
	}
	m.D1[0] = 42
	if s.D1[0] == 42 {
		t.Fatal("ScaleTranslation shares D1 with its receiver")
	}
	mm := s.ScaleTranslation(25) // millimetres
	if err := mm.Validate(); err == nil || !strings.Contains(err.Error(), "millimetres") {
		t.Fatalf("Validate of a calibration in millimetres: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	td := func(p string) string { return filepath.Join("testdata", p) }
	intr, extr := td("stereo_calib/intrinsics.yml"), td("stereo_calib/extrinsics.yml")
	tests := []struct {
		name  string
		paths []string
		msgs  []string
	}{
		{"no files", nil, []string{"no calibration file"}},
		{"missing file", []string{filepath.Join(dir, "nope.yml")}, []string{"nope.yml", "no such file"}},
		{"stereo_calib without size", []string{intr, extr}, []string{"no image size", "image_width"}},
		{"intrinsics only", []string{intr}, []string{"intrinsics.yml", "R: missing"}},
		{"extrinsics only", []string{extr}, []string{"K1: missing (or M1, cameraMatrix1)"}},
		{"a key in two files", []string{intr, extr, td("stereo.yml")}, []string{"stereo.yml", "K1", "also given as M1 in " + intr}},
		{"one ROS file", []string{td("ros/left.yaml")}, []string{"camera_info needs two files"}},
		{"ROS left twice", []string{td("ros/left.yaml"), td("ros/left.yaml")}, []string{"no baseline"}},
		{"sizes disagree", []string{td("stereo.yml"), write("size.yml", "image_width: 1280\nimage_height: 720\n")}, []string{"stereo.yml", "image_width", "says 640x480", "1280x720"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.paths...)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, m := range tt.msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

// malformed returns stereo.yml with one substitution made, checking that it applies.
func malformed(t *testing.T, base, old, new string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", base))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not contain %q", base, old)
	}
	return bytes.Replace(data, []byte(old), []byte(new), 1)
}

func TestParseOpenCVYAMLErrors(t *testing.T) {
	tests := []struct {
		name, old, new string
		key, msg       string
	}{
		{"rows not a number", "rows: 3", "rows: three", "K1.rows", `"three" is not an integer`},
		{"data too short", "0., 0., 1. ]", "0., 0. ]", "K1.data", "has 8 values, want rows·cols = 3·3 = 9"},
		{"data not a number", "0., 0., 1. ]", "0., zero, 1. ]", "K1.data", `"zero" is not a number`},
		{"infinite value", "0., 0., 1. ]", "0., .Inf, 1. ]", "K1.data", "not a number"},
		{"no dt", "   dt: d\n   data: [ 5.3480326845051309e+02, 0., 3.3568643204394891e+02", "   data: [ 5.3480326845051309e+02, 0., 3.3568643204394891e+02", "K1", "has no dt"},
		{"multi-channel dt", "dt: d", "dt: 3d", "K1.dt", `"3d" is not a single-channel`},
		{"not a matrix", "K1: !!opencv-matrix", "K1: 5\nK1x: !!opencv-matrix", "K1", "not a matrix"},
		{"other type", "K1: !!opencv-matrix", "K1: !!opencv-nd-matrix", "K1", `type "opencv-nd-matrix"`},
		{"K not 3x3", "rows: 3\n   cols: 3", "rows: 1\n   cols: 9", "K1", "is 1x9, want 3x3"},
		{"negative focal", "data: [ 5.3480326845051309e+02, 0., 3.3568643204394891e+02", "data: [ -5.3480326845051309e+02, 0., 3.3568643204394891e+02", "K1", "focal lengths"},
		{"3 distortion coefficients", "cols: 5\n   dt: d\n   data: [ 2.9589439552724328e-01, -1.0354662043042675e+00, 0., 0., 0. ]", "cols: 3\n   dt: d\n   data: [ 2.9589439552724328e-01, -1.0354662043042675e+00, 0. ]", "D1", "has 3 coefficients"},
		{"R not a rotation", "9.9992600106682716e-01, -2.0299419013346384e-03", "1.9992600106682716e-01, -2.0299419013346384e-03", "R", "not a rotation matrix"},
		{"duplicate key", "image_height: 480", "image_height: 480\nimage_height: 481", "image_height", "appears twice"},
		{"width without height", "image_height: 480\n", "", "image_width", "without image_height"},
		{"bad YAML", "K1: !!opencv-matrix", "K1: [ !!opencv-matrix", "", "not valid YAML"},
		{"YAML alias", "image_width: 640", "image_width: &w 640\nimage_width2: *w", "", "aliases are not supported"},
		{"bad directive", "%YAML:1.0", "%YAML:9.9", "", "unsupported YAML directive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseOpenCVYAML("stereo.yml", malformed(t, "stereo.yml", tt.old, tt.new))
			if err == nil {
				t.Fatal("ParseOpenCVYAML succeeded")
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%v is not a *ParseError", err)
			}
			if pe.File != "stereo.yml" || pe.Key != tt.key || !strings.Contains(pe.Msg, tt.msg) {
				t.Fatalf("error %q: file %q key %q, want stereo.yml, key %q, mentioning %q", err, pe.File, pe.Key, tt.key, tt.msg)
			}
			t.Log(err)
		})
	}
}

func TestParseOpenCVXMLErrors(t *testing.T) {
	tests := []struct {
		name, old, new string
		key, msg       string
	}{
		{"data too long", "0. 0. 1.</data></K1>", "0. 0. 1. 2.</data></K1>", "K1.data", "has 10 values"},
		{"cols missing", "<cols>3</cols>", "", "K1", "has no cols"},
		{"bad size", "640 480", "640", "imageSize", "two integers"},
		{"unclosed", "</opencv_storage>", "", "opencv_storage", "not valid XML"},
		{"wrong root", "<opencv_storage>", "<storage>", "", "want <opencv_storage>"},
		{"T missing", "<T type_id=\"opencv-matrix\">", "<Tx type_id=\"opencv-matrix\">", "T", "missing"},
		{"T wrong shape", "<rows>3</rows>\n  <cols>1</cols>\n  <dt>d</dt>\n  <data>\n    -8.3290000000000003e-02 9.5999999999999992e-04\n    -5.2500000000000002e-05", "<rows>2</rows>\n  <cols>2</cols>\n  <dt>d</dt>\n  <data>\n    -8.3e-02 9.6e-04 0 0", "T", "is 2x2, want 3 values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := malformed(t, "stereo.xml", tt.old, tt.new)
			if tt.name == "T missing" {
				data = bytes.Replace(data, []byte("</data></T>"), []byte("</data></Tx>"), 1)
			}
			_, err := ParseOpenCVXML("stereo.xml", data)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%v is not a *ParseError", err)
			}
			if !strings.Contains(pe.File, "stereo.xml") || pe.Key != tt.key || !strings.Contains(pe.Msg, tt.msg) {
				t.Fatalf("error %q: key %q, want key %q mentioning %q", err, pe.Key, tt.key, tt.msg)
			}
			t.Log(err)
		})
	}
}

func TestParseCameraInfo(t *testing.T) {
	data, err := os.ReadFile("testdata/ros/right.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := ParseCameraInfo("right.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Name != "narrow_stereo/right" || ci.Size != (ImageSize{640, 480}) || ci.DistortionModel != "plumb_bob" || ci.P[3] != -48.3669235778124 {
		t.Fatalf("ParseCameraInfo = %+v", ci)
	}

	tests := []struct {
		name, old, new string
		key, msg       string
	}{
		{"fisheye", "plumb_bob", "equidistant", "distortion_model", "fisheye"},
		{"unknown model", "plumb_bob", "kannala", "distortion_model", `"kannala" is not supported`},
		{"rational with 5", "plumb_bob", "rational_polynomial", "distortion_coefficients", "has 5 coefficients, rational_polynomial has 8"},
		{"P 3x3", "rows: 3\n  cols: 4", "rows: 4\n  cols: 3", "projection_matrix", "is 4x3, want 3x4"},
		{"no projection", "projection_matrix:", "projection_matrixx:", "projection_matrix", "missing"},
		{"bad rectification", "data: [0.99993338373735918", "data: [1.99993338373735918", "rectification_matrix", "not a rotation"},
		{"height zero", "image_height: 480", "image_height: 0", "image_height", "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCameraInfo("right.yaml", malformed(t, "ros/right.yaml", tt.old, tt.new))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%v is not a *ParseError", err)
			}
			if pe.File != "right.yaml" || pe.Key != tt.key || !strings.Contains(pe.Msg, tt.msg) {
				t.Fatalf("error %q: key %q, want key %q mentioning %q", err, pe.Key, tt.key, tt.msg)
			}
		})
	}

	// An uncalibrated-distortion camera: ROS writes no coefficients.
	empty := malformed(t, "ros/right.yaml", "cols: 5\n  data: [-0.16916358306948096, -0.11214173641213163, 0, 0, 0]", "cols: 0\n  data: []")
	ci, err = ParseCameraInfo("right.yaml", empty)
	if err != nil {
		t.Fatal(err)
	}
	if len(ci.D) != 5 || ci.D[0] != 0 {
		t.Fatalf("empty distortion read as %v, want 5 zeros", ci.D)
	}
}

func TestWriteOpenCVYAMLRoundTrip(t *testing.T) {
	s, err := Load("testdata/stereo.xml")
	if err != nil {
		t.Fatal(err)
	}
	// Awkward values: 14 coefficients, tiny and negative numbers.
	s.D2 = []float64{-1e-300, 2.5, 0, 1.0 / 3, -7, 1e17, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}
	var buf bytes.Buffer
	if err := WriteOpenCVYAML(&buf, s); err != nil {
		t.Fatal(err)
	}
	got, err := ParseOpenCVYAML("written.yml", buf.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if got.Size != s.Size || got.K1 != s.K1 || got.K2 != s.K2 || got.R != s.R || got.T != s.T ||
		!equal(got.D1, s.D1) || !equal(got.D2, s.D2) {
		t.Fatalf("round trip changed the calibration:\n got %+v\nwant %+v", got, s)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("%YAML:1.0\n---\n")) {
		t.Fatalf("no FileStorage header:\n%s", buf.String())
	}
	if err := WriteOpenCVYAML(&buf, Stereo{}); err == nil {
		t.Fatal("WriteOpenCVYAML wrote an invalid calibration")
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The stereo_calib output that Debian's opencv-doc ships: real OpenCV output that we
// did not write.
func TestReadOpenCVDocIntrinsics(t *testing.T) {
	const path = "/usr/share/doc/opencv-doc/examples/data/intrinsics.yml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("opencv-doc not installed: %v", err)
	}
	d, err := parseYAMLDoc(path, data)
	if err != nil {
		t.Fatal(err)
	}
	// It has no extrinsics: merged with ours it is a complete calibration.
	ext, err := parseYAMLDoc("extrinsics.yml", mustRead(t, "testdata/stereo_calib/extrinsics.yml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := stereoFromDocs([]*doc{d, ext})
	if err != nil {
		t.Fatal(err)
	}
	if s.K1 != wantK1 || s.K2 != wantK2 || !equal(s.D1, wantD1) || !equal(s.D2, wantD2) {
		t.Fatalf("opencv-doc intrinsics read as %+v", s)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidate(t *testing.T) {
	good, err := Load("testdata/stereo.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		modify func(*Stereo)
		msg    string
	}{
		{"no size", func(s *Stereo) { s.Size = ImageSize{} }, "image size 0x0"},
		{"skewed K2 bottom row", func(s *Stereo) { s.K2[7] = 1 }, "K2"},
		{"NaN distortion", func(s *Stereo) { s.D1[0] = math.NaN() }, "D1"},
		{"6 coefficients", func(s *Stereo) { s.D2 = make([]float64, 6) }, "D2: has 6 coefficients"},
		{"reflection", func(s *Stereo) { s.R = [9]float64{1, 0, 0, 0, 1, 0, 0, 0, -1} }, "reflection"},
		{"zero T", func(s *Stereo) { s.T = [3]float64{} }, "T is zero"},
		{"T in millimetres", func(s *Stereo) { s.T = [3]float64{-83.29, 0, 0} }, "millimetres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good.ScaleTranslation(1)
			tt.modify(&s)
			if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Validate: %v, want an error mentioning %q", err, tt.msg)
			}
		})
	}
}
