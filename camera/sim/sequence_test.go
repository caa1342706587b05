package sim

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTestSequence renders a short sequence into a fresh directory.
func writeTestSequence(t *testing.T, scene string, frames int) (string, *World) {
	t.Helper()
	w := newTestWorld(t, scene, 3, 96, 64)
	dir := filepath.Join(t.TempDir(), "seq")
	if err := WriteSequence(context.Background(), dir, w, frames, nil); err != nil {
		t.Fatal(err)
	}
	return dir, w
}

func TestSequenceRoundTrip(t *testing.T) {
	for _, scene := range Scenes() {
		t.Run(scene, func(t *testing.T) {
			w := newTestWorld(t, scene, 3, 96, 64)
			dir := filepath.Join(t.TempDir(), "seq")
			const frames = 7
			var calls, last int
			err := WriteSequence(context.Background(), dir, w, frames, func(done, total int) {
				calls++
				if done != last+1 || total != frames {
					t.Errorf("progress(%d, %d) after %d", done, total, last)
				}
				last = done
			})
			if err != nil {
				t.Fatal(err)
			}
			if calls != frames {
				t.Errorf("progress called %d times, want %d", calls, frames)
			}

			s, err := OpenSequence(dir)
			if err != nil {
				t.Fatal(err)
			}
			if s.Len() != frames || s.Intrinsics() != w.Intrinsics() || s.BaselineM() != w.BaselineM() ||
				s.FPS() != w.Config().FPS || !s.HasTruth() {
				t.Fatalf("sequence: len %d intrinsics %+v baseline %g fps %g truth %v",
					s.Len(), s.Intrinsics(), s.BaselineM(), s.FPS(), s.HasTruth())
			}
			if c := s.Calib(); c.Scene != scene || c.Seed == nil || *c.Seed != 3 {
				t.Errorf("calib scene %q seed %v, want %q 3", c.Scene, c.Seed, scene)
			}
			for i := range frames {
				want := w.Render(i)
				got, err := s.Frame(i)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Left.Pix, want.Left.Pix) || !bytes.Equal(got.Right.Pix, want.Right.Pix) {
					t.Errorf("frame %d: images changed in the round trip", i)
				}
				if got.Seq != want.Seq || !got.CaptureTime.Equal(want.CaptureTime) {
					t.Errorf("frame %d: seq %d time %v, want %d %v", i, got.Seq, got.CaptureTime, want.Seq, want.CaptureTime)
				}
				if got.Intrinsics != want.Intrinsics || got.BaselineM != want.BaselineM {
					t.Errorf("frame %d: calibration changed", i)
				}
				for p, d := range want.Truth.DepthM {
					if g := got.Truth.DepthM[p]; (d == 0) != (g == 0) || math.Abs(float64(g-d)) > 0.001 {
						t.Fatalf("frame %d pixel %d: depth %g m read back as %g m", i, p, d, g)
					}
				}
				for c := range 3 {
					if math.Abs(got.Truth.Pose.Position[c]-want.Truth.Pose.Position[c]) > 1e-6 {
						t.Errorf("frame %d: position %v read back as %v", i, want.Truth.Pose.Position, got.Truth.Pose.Position)
					}
				}
				for c := range 4 {
					if math.Abs(got.Truth.Pose.Orientation[c]-want.Truth.Pose.Orientation[c]) > 1e-6 {
						t.Errorf("frame %d: orientation %v read back as %v", i, want.Truth.Pose.Orientation, got.Truth.Pose.Orientation)
					}
				}
			}
			if _, err := s.Frame(frames); err == nil {
				t.Error("Frame(Len()) succeeded")
			}
			// No temporary files left behind.
			for _, sub := range []string{".", "left", "right", "depth"} {
				entries, _ := os.ReadDir(filepath.Join(dir, sub))
				for _, e := range entries {
					if strings.HasSuffix(e.Name(), ".tmp") {
						t.Errorf("temporary file %s left in %s", e.Name(), sub)
					}
				}
			}
		})
	}
}

func TestWriteSequenceRefusesOldFiles(t *testing.T) {
	dir, w := writeTestSequence(t, SceneRoom, 2)
	err := WriteSequence(context.Background(), dir, w, 2, nil)
	if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("writing over a sequence: %v, want ErrNotEmpty naming %s", err, dir)
	}
}

func TestWriteSequenceCancel(t *testing.T) {
	w := newTestWorld(t, SceneRoom, 3, 64, 48)
	ctx, cancel := context.WithCancel(context.Background())
	dir := filepath.Join(t.TempDir(), "seq")
	err := WriteSequence(ctx, dir, w, 1000, func(done, total int) {
		if done == 2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteSequence after cancel = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "calib.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an unfinished sequence has calib.yaml (stat: %v)", err)
	}
}

// TestOpenSequenceErrors damages a good sequence one way at a time; each error must name
// the file at fault and say what is wrong.
func TestOpenSequenceErrors(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		file    string // named in the error
		problem string // also in the error
	}{
		{"no calib", func(t *testing.T, dir string) { remove(t, dir, "calib.yaml") }, "calib.yaml", "no such file"},
		{"unknown calib key", func(t *testing.T, dir string) { appendTo(t, dir, "calib.yaml", "baseline: 0.3\n") }, "calib.yaml", "baseline"},
		{"zero baseline", func(t *testing.T, dir string) { replaceIn(t, dir, "calib.yaml", "baseline_m: 0.12", "baseline_m: 0") }, "calib.yaml", "baseline_m"},
		{"missing right frame", func(t *testing.T, dir string) { remove(t, dir, "right/000001.png") }, "right/000001.png", "missing"},
		{"gap in left frames", func(t *testing.T, dir string) { remove(t, dir, "left/000001.png") }, "left/000001.png", "missing"},
		{"extra depth frame", func(t *testing.T, dir string) { copyFile(t, dir, "depth/000000.png", "depth/000003.png") }, "depth", "4 frames"},
		{"short poses", func(t *testing.T, dir string) { truncateLines(t, dir, "poses.txt", 3) }, "poses.txt", "2 entries for 3 frames"},
		{"bad pose number", func(t *testing.T, dir string) { replaceIn(t, dir, "poses.txt", ".100000000 ", ".100000000 x") }, "poses.txt", "line 3"},
		{"bad quaternion", func(t *testing.T, dir string) { appendFieldsBad(t, dir) }, "poses.txt", "quaternion norm"},
		{"bad timestamp", func(t *testing.T, dir string) { replaceIn(t, dir, "times.txt", "1735689600.000000000", "yesterday") }, "times.txt", "line 1"},
		{"8-bit depth", func(t *testing.T, dir string) { writeGrey8(t, dir, "depth/000002.png", 96, 64) }, "depth/000002.png", "16-bit"},
		{"wrong image size", func(t *testing.T, dir string) { writeGrey8(t, dir, "left/000002.png", 32, 32) }, "left/000002.png", "32x32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := writeTestSequence(t, SceneRoom, 3)
			tt.damage(t, dir)
			s, err := OpenSequence(dir)
			if err == nil {
				// Image problems show when the frame is read.
				for i := 0; i < s.Len() && err == nil; i++ {
					_, err = s.Frame(i)
				}
			}
			if err == nil {
				t.Fatal("damaged sequence read without error")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, tt.file)) || !strings.Contains(err.Error(), tt.problem) {
				t.Fatalf("error %q, want it to name %s and say %q", err, tt.file, tt.problem)
			}
		})
	}
}

func remove(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func readText(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeText(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendTo(t *testing.T, dir, name, text string) {
	writeText(t, dir, name, readText(t, dir, name)+text)
}

func replaceIn(t *testing.T, dir, name, old, new string) {
	t.Helper()
	s := readText(t, dir, name)
	if !strings.Contains(s, old) {
		t.Fatalf("%s does not contain %q:\n%s", name, old, s)
	}
	writeText(t, dir, name, strings.Replace(s, old, new, 1))
}

func truncateLines(t *testing.T, dir, name string, keep int) {
	lines := strings.SplitAfter(readText(t, dir, name), "\n")
	writeText(t, dir, name, strings.Join(lines[:keep], ""))
}

func copyFile(t *testing.T, dir, from, to string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, from))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, to), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// appendFieldsBad replaces the last pose's quaternion with a non-unit one.
func appendFieldsBad(t *testing.T, dir string) {
	lines := strings.Split(strings.TrimSpace(readText(t, dir, "poses.txt")), "\n")
	f := strings.Fields(lines[len(lines)-1])
	f[4], f[5], f[6], f[7] = "0", "0", "0", "2"
	lines[len(lines)-1] = strings.Join(f, " ")
	writeText(t, dir, "poses.txt", strings.Join(lines, "\n")+"\n")
}

func writeGrey8(t *testing.T, dir, name string, w, h int) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	writeText(t, dir, name, b.String())
}

func TestStamps(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1735689600.100000000", time.Unix(1735689600, 100000000), true},
		{"1735689600.1", time.Unix(1735689600, 100000000), true},
		{"1735689600", time.Unix(1735689600, 0), true},
		{"0.000000001", time.Unix(0, 1), true},
		{"-1.5", time.Unix(-2, 500000000), true},
		{"1.0000000001", time.Time{}, false},
		{"1.5e3", time.Time{}, false},
		{"", time.Time{}, false},
		{"abc", time.Time{}, false},
	} {
		got, err := parseStamp(tt.in)
		if (err == nil) != tt.ok || (tt.ok && !got.Equal(tt.want)) {
			t.Errorf("parseStamp(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok {
			if back, err := parseStamp(formatStamp(got)); err != nil || !back.Equal(got) {
				t.Errorf("formatStamp(%v) = %q does not read back (%v, %v)", got, formatStamp(got), back, err)
			}
		}
	}
}

// FuzzParseStamp: any accepted timestamp prints in the canonical form and reads back
// to the same instant.
func FuzzParseStamp(f *testing.F) {
	for _, s := range []string{"1735689600.100000000", "1.5", "-1.5", "0", "9223372036.854775807", "1.", ".5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := parseStamp(s)
		if err != nil {
			return
		}
		back, err := parseStamp(formatStamp(ts))
		if err != nil || !back.Equal(ts) {
			t.Fatalf("%q → %v → %q → %v, %v", s, ts, formatStamp(ts), back, err)
		}
	})
}

// FuzzPoses feeds arbitrary poses.txt content to OpenSequence: it must fail cleanly or
// return finite poses, one per frame.
func FuzzPoses(f *testing.F) {
	f.Add("1.0 0 0 0 0 0 0 1\n2.0 0 0 1 0 0 0 1\n")
	f.Add("# header\n1.0 0 0 0 0 0 0 1\n\n2.0 1e308 0 1 0 0 0 1\n")
	f.Add("1.0 NaN 0 0 0 0 0 1\n2.0 0 0 0 0 0 0 1\n")
	f.Add("1 2 3\n")
	w := newTestWorld(f, SceneRoom, 1, 16, 16)
	dir := filepath.Join(f.TempDir(), "seq")
	if err := WriteSequence(context.Background(), dir, w, 2, nil); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, poses string) {
		if err := os.WriteFile(filepath.Join(dir, "poses.txt"), []byte(poses), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := OpenSequence(dir)
		if err != nil {
			if !errors.Is(err, ErrBadSequence) {
				t.Fatalf("error %v is not ErrBadSequence", err)
			}
			return
		}
		for i := range s.Len() {
			fr, err := s.Frame(i)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range append(fr.Truth.Pose.Position[:], fr.Truth.Pose.Orientation[:]...) {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("frame %d: pose %v", i, fr.Truth.Pose)
				}
			}
		}
	})
}

// TestSequenceWithoutTruth writes frames as `edgedepth record` does from real cameras:
// images and capture times only.
func TestSequenceWithoutTruth(t *testing.T) {
	w := newTestWorld(t, SceneStreet, 1, 48, 32)
	dir := filepath.Join(t.TempDir(), "rec")
	calib := CalibOf(w)
	calib.Scene, calib.Seed = "", nil
	sw, err := CreateSequence(dir, calib)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	for i := 2; i >= 0; i-- { // any order
		f := w.Render(i)
		f.Truth = nil
		f.CaptureTime = t0.Add(time.Duration(i) * 33 * time.Millisecond)
		if err := sw.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.WriteFrame(w.Render(1)); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("writing frame 1 again: %v", err)
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"depth", "poses.txt"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s written without truth (stat: %v)", name, err)
		}
	}
	if y := readText(t, dir, "calib.yaml"); strings.Contains(y, "scene") || strings.Contains(y, "seed") {
		t.Errorf("calib.yaml of a real camera mentions the simulator:\n%s", y)
	}
	s, err := OpenSequence(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.HasTruth() || s.Len() != 3 {
		t.Fatalf("HasTruth %v Len %d", s.HasTruth(), s.Len())
	}
	f, err := s.Frame(2)
	if err != nil {
		t.Fatal(err)
	}
	if f.Truth != nil || !f.CaptureTime.Equal(t0.Add(66*time.Millisecond)) {
		t.Fatalf("frame 2: truth %v, time %v", f.Truth, f.CaptureTime)
	}
}

func TestSequenceWriterGap(t *testing.T) {
	w := newTestWorld(t, SceneRoom, 1, 48, 32)
	sw, err := CreateSequence(filepath.Join(t.TempDir(), "seq"), CalibOf(w))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		if err := sw.WriteFrame(w.Render(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Close(); err == nil || !strings.Contains(err.Error(), "frame 1 missing (frames up to 2 written)") {
		t.Fatalf("Close with frame 1 missing: %v", err)
	}
}

// TestSequenceWriterSetFPS: a recording of cameras states the rate it measured.
func TestSequenceWriterSetFPS(t *testing.T) {
	w := newTestWorld(t, SceneRoom, 1, 48, 32)
	dir := filepath.Join(t.TempDir(), "seq")
	sw, err := CreateSequence(dir, CalibOf(w))
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.WriteFrame(w.Render(0)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if err := sw.SetFPS(bad); err == nil {
			t.Errorf("SetFPS(%g): no error", bad)
		}
	}
	if err := sw.SetFPS(29.97); err != nil {
		t.Fatal(err)
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sw.SetFPS(25); err == nil {
		t.Error("SetFPS after Close: no error")
	}
	s, err := OpenSequence(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.FPS() != 29.97 {
		t.Fatalf("fps %g, want 29.97", s.FPS())
	}
}
