package calib

import (
	"os"
	"path/filepath"
	"testing"
)

// seed adds the test data files and a few edge cases to a fuzz corpus.
func seed(f *testing.F, globs ...string) {
	f.Helper()
	for _, g := range globs {
		paths, err := filepath.Glob(filepath.Join("testdata", g))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte(""))
	f.Add([]byte("%YAML:1.0\n"))
	f.Add([]byte("<opencv_storage></opencv_storage>"))
}

// A parser must return a calibration that validates, or an error; never panic.
func checkParsed(t *testing.T, s Stereo, err error) {
	if err != nil {
		return
	}
	if err := s.validateGeometry(); err != nil {
		t.Fatalf("parser accepted an invalid calibration: %v", err)
	}
}

func FuzzParseOpenCVYAML(f *testing.F) {
	seed(f, "*.yml", "stereo_calib/*.yml")
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseOpenCVYAML("fuzz.yml", data)
		checkParsed(t, s, err)
	})
}

func FuzzParseOpenCVXML(f *testing.F) {
	seed(f, "*.xml")
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseOpenCVXML("fuzz.xml", data)
		checkParsed(t, s, err)
	})
}

func FuzzParseCameraInfo(f *testing.F) {
	seed(f, "ros/*.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		ci, err := ParseCameraInfo("fuzz.yaml", data)
		if err != nil {
			return
		}
		if validateCameraMatrix(ci.K) != nil || validateRotation(ci.R) != nil || validateDistortion(ci.D) != nil && len(ci.D) != 0 {
			t.Fatalf("parser accepted an invalid camera_info: %+v", ci)
		}
		// Pairing a camera with itself has no baseline; it must say so, not panic.
		if _, err := StereoFromCameraInfo(ci, ci); err == nil {
			t.Fatal("a camera paired with itself gave a stereo calibration")
		}
	})
}
