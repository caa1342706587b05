package eval

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/odom"
)

// Projection matrices of KITTI's 2011_09_26 calibration (P_rect_00, _02, _03).
const (
	kittiP0 = "7.215377e+02 0.000000e+00 6.095593e+02 0.000000e+00 0.000000e+00 7.215377e+02 1.728540e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00"
	kittiP2 = "7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 1.728540e+02 2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03"
	kittiP3 = "7.215377e+02 0.000000e+00 6.095593e+02 -3.395242e+02 0.000000e+00 7.215377e+02 1.728540e+02 2.199936e+00 0.000000e+00 0.000000e+00 1.000000e+00 2.729905e-03"
)

const kittiW, kittiH = 24, 8

func writePNGFile(t *testing.T, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
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

func writeFileT(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// colourImage is a small RGB test picture whose pixels depend on the frame.
func colourImage(frame int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, kittiW, kittiH))
	for y := range kittiH {
		for x := range kittiW {
			img.SetRGBA(x, y, color.RGBA{uint8(10 * x), uint8(20 * y), uint8(frame), 255})
		}
	}
	return img
}

// kittiDepthPNG holds metres·256 where (x+y) is even, 0 (no LiDAR return) elsewhere.
func kittiDepthPNG(metres float64) *image.Gray16 {
	img := image.NewGray16(image.Rect(0, 0, kittiW, kittiH))
	for y := range kittiH {
		for x := range kittiW {
			if (x+y)%2 == 0 {
				img.SetGray16(x, y, color.Gray16{Y: uint16(math.Round(metres * 256))})
			}
		}
	}
	return img
}

func TestKITTIRaw(t *testing.T) {
	date := filepath.Join(t.TempDir(), "2011_09_26")
	drive := filepath.Join(date, "2011_09_26_drive_0001_sync")
	writeFileT(t, filepath.Join(date, "calib_cam_to_cam.txt"), "calib_time: 09-Jan-2012 13:57:47\ncorner_dist: 9.950000e-02\n"+
		"S_rect_02: 1.242000e+03 3.750000e+02\nP_rect_00: "+kittiP0+"\nP_rect_02: "+kittiP2+"\nP_rect_03: "+kittiP3+"\n")
	var stamps strings.Builder
	for i := range 4 {
		name := fmt.Sprintf("%010d.png", i)
		writePNGFile(t, filepath.Join(drive, "image_02", "data", name), colourImage(i))
		writePNGFile(t, filepath.Join(drive, "image_03", "data", name), colourImage(i+100))
		fmt.Fprintf(&stamps, "2011-09-26 13:02:25.%09d\n", 100_000_000*i)
		if i == 1 || i == 2 { // the benchmark leaves out the ends of a drive
			writePNGFile(t, filepath.Join(drive, "proj_depth", "groundtruth", "image_02", name), kittiDepthPNG(10+float64(i)))
		}
	}
	writeFileT(t, filepath.Join(drive, "image_02", "timestamps.txt"), stamps.String())

	src, err := OpenKITTIRaw(drive, KITTIRawOptions{})
	if err != nil {
		t.Fatal(err)
	}
	info := src.Info()
	wantBaseline := (4.485728e+01 + 3.395242e+02) / 7.215377e+02
	if info.Kind != "kitti-raw" || info.Frames != 4 || info.Width != kittiW || info.Height != kittiH || !info.DepthTruth || info.PoseTruth ||
		!near(info.BaselineM, wantBaseline, 1e-12) || !near(info.FPS, 10, 1e-9) {
		t.Fatalf("info %+v (baseline want %g)", info, wantBaseline)
	}
	f0, err := src.Frame(0)
	if err != nil {
		t.Fatal(err)
	}
	if f0.TruthDepth.Width != 0 || f0.HasTruthPose || f0.Intrinsics.Fx != 7.215377e+02 || f0.Intrinsics.Cy != 1.728540e+02 ||
		f0.Left.Pix[3*(2*kittiW+3)] != 30 || f0.Left.Pix[3*(2*kittiW+3)+1] != 40 || f0.Right.Pix[2] != 100 {
		t.Errorf("frame 0: truth %dx%d, intrinsics %+v, left pixel %v", f0.TruthDepth.Width, f0.TruthDepth.Height, f0.Intrinsics, f0.Left.Pix[:6])
	}
	f2, err := src.Frame(2)
	if err != nil {
		t.Fatal(err)
	}
	if f2.TruthDepth.Width != kittiW || f2.TruthDepth.M[0] != 12 || f2.TruthDepth.M[1] != 0 || f2.Seq != 2 ||
		f2.CaptureTime.Sub(f0.CaptureTime).Milliseconds() != 200 {
		t.Errorf("frame 2: truth %v..., seq %d, time %v", f2.TruthDepth.M[:2], f2.Seq, f2.CaptureTime)
	}

	// A predictor 10 % too far on the frames with truth: abs rel 0.1 on 2 frames.
	p := &fakePredictor{t: t, name: "far", src: src, depthScale: 1.1, poseScale: 1}
	ev, err := Evaluate(context.Background(), src, []Predictor{p}, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	r := ev.Report
	if r.Frames.WithDepthTruth != 2 || r.Estimators[0].Depth.Frames != 2 || !near(r.Estimators[0].Depth.Metric.AbsRel, 0.1, 1e-5) ||
		r.Estimators[0].Trajectory != nil {
		t.Errorf("report: frames %+v, estimator %+v", r.Frames, r.Estimators[0])
	}

	if _, err := OpenKITTIRaw(drive, KITTIRawOptions{GroundTruthDir: filepath.Join(drive, "nothing")}); err == nil {
		t.Error("a missing explicit ground-truth directory was accepted")
	}
}

func TestKITTIOdometry(t *testing.T) {
	root := t.TempDir()
	seq := filepath.Join(root, "sequences", "03")
	odomP0 := "7.188560e+02 0 6.071928e+02 0 0 7.188560e+02 1.852157e+02 0 0 0 1 0"
	odomP2 := "7.188560e+02 0 6.071928e+02 4.538225e+01 0 7.188560e+02 1.852157e+02 -1.130887e-01 0 0 1 3.779761e-03"
	odomP3 := "7.188560e+02 0 6.071928e+02 -3.372877e+02 0 7.188560e+02 1.852157e+02 2.369057e+00 0 0 1 4.915215e-03"
	writeFileT(t, filepath.Join(seq, "calib.txt"), "P0: "+odomP0+"\nP1: "+odomP0+"\nP2: "+odomP2+"\nP3: "+odomP3+"\nTr: 0 0 0 0 0 0 0 0 0 0 0 0\n")
	// Camera 0 drives forward 1 m a frame and turns 0.1 rad about y from frame 2 on.
	var poses []odom.Pose
	var times strings.Builder
	for i := range 5 {
		writePNGFile(t, filepath.Join(seq, "image_2", fmt.Sprintf("%06d.png", i)), colourImage(i))
		writePNGFile(t, filepath.Join(seq, "image_3", fmt.Sprintf("%06d.png", i)), colourImage(i+1))
		fmt.Fprintf(&times, "%e\n", 0.1036*float64(i))
		angle := 0.0
		if i >= 2 {
			angle = 0.1 * float64(i-1)
		}
		poses = append(poses, odom.FromAxisAngle([3]float64{0, angle, 0}, [3]float64{0.2 * angle, 0, float64(i)}))
	}
	writeFileT(t, filepath.Join(seq, "times.txt"), times.String())
	var pb strings.Builder
	if err := odom.WriteKITTIPoses(&pb, poses); err != nil {
		t.Fatal(err)
	}
	writeFileT(t, filepath.Join(root, "poses", "03.txt"), pb.String())

	src, err := OpenKITTIOdometry(root, "03")
	if err != nil {
		t.Fatal(err)
	}
	info := src.Info()
	if info.Kind != "kitti-odometry" || info.Frames != 5 || !info.PoseTruth || info.DepthTruth ||
		!near(info.BaselineM, (4.538225e+01+3.372877e+02)/7.188560e+02, 1e-12) || !near(info.FPS, 1/0.1036, 1e-6) {
		t.Fatalf("info %+v", info)
	}
	// Camera 2 sits c = −K⁻¹·P2[:,3] from camera 0; its pose is C⁻¹·pose·C = [R | R·c + T − c].
	c := [3]float64{-4.538225e+01 / 7.188560e+02, 0.1130887 / 7.188560e+02, -3.779761e-03}
	c[0] -= -6.071928e+02 * 3.779761e-03 / 7.188560e+02 // cx·tz term of K⁻¹
	c[1] -= -1.852157e+02 * 3.779761e-03 / 7.188560e+02
	for i := range 5 {
		f, err := src.Frame(i)
		if err != nil {
			t.Fatal(err)
		}
		want := poses[i].Apply(c)
		for k := range 3 {
			want[k] -= c[k]
		}
		for k := range 3 {
			if !near(f.TruthPose.T[k], want[k], 1e-9) || !near(f.TruthPose.R[k][k], poses[i].R[k][k], 1e-12) {
				t.Fatalf("frame %d: truth %+v, want T %v and R of %+v", i, f.TruthPose, want, poses[i])
			}
		}
	}
	p := &fakePredictor{t: t, name: "perfect", src: src, depthScale: 1, poseScale: 1}
	ev, err := Evaluate(context.Background(), src, []Predictor{p}, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	tr := ev.Report.Estimators[0].Trajectory
	if tr == nil || tr.Error != "" || tr.Frames != 5 || !near(tr.ATESE3RMSEM, 0, 1e-9) || ev.Report.Estimators[0].Depth != nil {
		t.Errorf("trajectory %+v", tr)
	}
	if _, err := OpenKITTIOdometry(root, "04"); err == nil {
		t.Error("a missing sequence was accepted")
	}
}

func FuzzKITTICalib(f *testing.F) {
	f.Add([]byte("calib_time: 09-Jan-2012 13:57:47\nP_rect_02: " + kittiP2 + "\nP_rect_03: " + kittiP3 + "\n"))
	f.Add([]byte("P0: 1 2 3 4 5 6 7 8 9 10 11 NaN\nP1: 1 2 3\n: \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for k, p := range parseKITTICalib(b) {
			for _, v := range p {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("%s holds %v", k, p)
				}
			}
		}
	})
}
