package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/camera/calib"
	"github.com/edgedepth/edgedepth/camera/calib3d"
)

// OpenCV's stereo chessboard pairs (Debian package opencv-doc), 9x6 inner corners.
const calibSampleData = "/usr/share/doc/opencv-doc/examples/data"

// sampleImages returns the first n pairs of OpenCV's sample, left and right
// alternating. Missing images fail the test: install opencv-doc.
func sampleImages(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for i := 1; i <= n; i++ {
		for _, side := range []string{"left", "right"} {
			p := filepath.Join(calibSampleData, fmt.Sprintf("%s%02d.jpg", side, i))
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("OpenCV's stereo sample images are missing (%v): install the Debian package opencv-doc", err)
			}
			out = append(out, p)
		}
	}
	return out
}

func runCalib(args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	err = cmdCalib(args, &o, &e)
	return o.String(), e.String(), err
}

func TestCalibUsage(t *testing.T) {
	imgs := sampleImages(t, 2)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing", nil, "--board is required"},
		{"bad board", []string{"--board", "9by6", "--square", "0.025", imgs[0], imgs[1]}, `"9by6" is not COLSxROWS`},
		{"small board", []string{"--board", "2x6", "--square", "0.025", imgs[0], imgs[1]}, "at least 3"},
		{"no square", []string{"--board", "9x6", imgs[0], imgs[1]}, "--square is required"},
		{"negative square", []string{"--board", "9x6", "--square", "-1", imgs[0], imgs[1]}, "must be positive"},
		{"square in mm", []string{"--board", "9x6", "--square", "25", imgs[0], imgs[1]}, "in metres"},
		{"no images", []string{"--board", "9x6", "--square", "0.025"}, "no images"},
		{"odd images", []string{"--board", "9x6", "--square", "0.025", imgs[0], imgs[1], imgs[2]}, "odd number of images (3)"},
		{"unknown flag", []string{"--boards", "9x6"}, "flag provided but not defined"},
		{"empty out", []string{"--board", "9x6", "--square", "0.025", "--out", "", imgs[0], imgs[1]}, "--out must name a file"},
		{"folder among files", []string{"--board", "9x6", "--square", "0.025", dir, imgs[0]}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := runCalib(tc.args...)
			if tc.want == "" { // not a usage error, but an error
				if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "is a folder") {
					t.Fatalf("err = %v, want one saying a folder must be alone", err)
				}
				return
			}
			if !errors.Is(err, errUsage) || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "Usage: edgedepth calib") {
				t.Fatalf("err = %v, stderr lacks %q or the usage:\n%s", err, tc.want, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
	if _, stderr, err := runCalib("-h"); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr, "inner corners") {
		t.Fatalf("-h: err = %v, stderr:\n%s", err, stderr)
	}
}

// TestCalibWritesLoadableYAML calibrates from four of OpenCV's sample pairs, writes the
// YAML, reads it back with calib.Load, and checks --force and the refusal to overwrite.
func TestCalibWritesLoadableYAML(t *testing.T) {
	imgs := sampleImages(t, 4)
	out := filepath.Join(t.TempDir(), "rig.yaml")
	args := append([]string{"--board", "9x6", "--square", "0.025", "--out", out}, imgs...)
	stdout, stderr, err := runCalib(args...)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	for _, want := range []string{"pairs used: 4 of 4", "RMS reprojection error:", "average epipolar error:", "wrote " + out} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "[1/4] left01.jpg + right01.jpg: board found in both images") {
		t.Errorf("stderr lacks per-pair progress:\n%s", stderr)
	}
	s, err := calib.Load(out)
	if err != nil {
		t.Fatalf("calib.Load of what calib wrote: %v", err)
	}
	if s.Size != (calib.ImageSize{Width: 640, Height: 480}) || s.Baseline() < 0.07 || s.Baseline() > 0.1 || len(s.D1) != 8 {
		t.Errorf("read back size %v, baseline %g m, D1 %v; want 640x480, about 0.084 m, 8 coefficients", s.Size, s.Baseline(), s.D1)
	}
	before, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}

	// An existing file is refused before any calibration work, and left alone.
	if _, _, err := runCalib(args...); err == nil || !strings.Contains(err.Error(), "use --force") {
		t.Fatalf("second run without --force: err = %v", err)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(after, before) {
		t.Fatal("the refused run changed the file")
	}
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCalib(append([]string{"--force"}, args...)...); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(after, before) {
		t.Fatalf("--force wrote %q, want the same calibration as the first run", after)
	}
	// No temporary files left next to the output.
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*tmp*")); len(m) != 0 {
		t.Errorf("left behind %v", m)
	}
	if n := calib3d.LiveObjects(); n != 0 {
		t.Errorf("%d calib3d objects still live", n)
	}
}

// TestCalibFolder: a folder is read as left<ID>/right<ID> pairs; other files are
// ignored; a file without its partner is an error that names it.
func TestCalibFolder(t *testing.T) {
	imgs := sampleImages(t, 3)
	dir := t.TempDir()
	for _, p := range imgs {
		if err := os.Symlink(p, filepath.Join(dir, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	// Not images of a pair: ignored.
	for _, name := range []string{"notes.txt", "left_intrinsics.yml", "left.jpg"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "stereo.yaml")
	stdout, stderr, err := runCalib("--board", "9x6", "--square", "0.025", "--out", out, dir)
	if err != nil {
		t.Fatalf("%v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "pairs used: 3 of 3") || !strings.Contains(stderr, "[3/3] left03.jpg + right03.jpg") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}

	if err := os.Symlink(imgs[0], filepath.Join(dir, "right07.jpg")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCalib("--board", "9x6", "--square", "0.025", "--out", out+"2", dir); err == nil ||
		!strings.Contains(err.Error(), "no partner for right07.jpg") {
		t.Fatalf("orphan: err = %v", err)
	}
	empty := t.TempDir()
	if _, _, err := runCalib("--board", "9x6", "--square", "0.025", "--out", out+"3", empty); err == nil ||
		!strings.Contains(err.Error(), "has no left<ID>/right<ID>") {
		t.Fatalf("empty folder: err = %v", err)
	}
}

// TestCalibErrors: unreadable images, mixed sizes and images without the board are
// errors that name the problem, and write nothing.
func TestCalibErrors(t *testing.T) {
	imgs := sampleImages(t, 2)
	dir := t.TempDir()
	bogus := filepath.Join(dir, "left09.jpg")
	if err := os.WriteFile(bogus, []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	aloe := filepath.Join(calibSampleData, "left.jpg") // 612x459, no chessboard
	out := filepath.Join(dir, "stereo.yaml")
	for _, tc := range []struct {
		name   string
		images []string
		want   string
	}{
		{"missing", []string{filepath.Join(dir, "nope.jpg"), imgs[1]}, "nope.jpg"},
		{"not an image", []string{bogus, imgs[1]}, "not a PNG or JPEG"},
		{"mismatched sizes", []string{imgs[0], imgs[1], aloe, aloe}, "all images must have one size"},
		{"no pattern", []string{aloe, aloe}, "too few pairs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := runCalib(append([]string{"--board", "9x6", "--square", "0.025", "--out", out}, tc.images...)...)
			if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if tc.name == "no pattern" && !strings.Contains(stdout, "rejected") {
				t.Errorf("stdout does not list the rejected pair:\n%s", stdout)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a failed run left %s (%v)", out, err)
			}
		})
	}
}
