package eval

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/telemetry"
)

// poseMessage is the daemon's pose message for frame f of src, in a world of its own
// (the truth moved by 1 m along x).
func poseMessage(t *testing.T, f Frame, trajectory uint64) []byte {
	t.Helper()
	q := f.TruthPose.Quat()
	b, err := json.Marshal(telemetry.PoseMessage{
		Stamp: f.CaptureTime, Seq: f.Seq, FrameID: "odom", ChildFrameID: "camera_left",
		Position:     telemetry.Vector3{X: f.TruthPose.T[0] + 1, Y: f.TruthPose.T[1], Z: f.TruthPose.T[2]},
		Orientation:  telemetry.Quaternion{X: q[0], Y: q[1], Z: q[2], W: q[3]},
		Source:       "photometric",
		TrajectoryID: trajectory,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func depthMessage(t *testing.T, f Frame) []byte {
	t.Helper()
	b, err := depth.EncodePNG(f.TruthDepth, depth.Meta{Seq: f.Seq, Stamp: f.CaptureTime, FrameID: "camera_left", Estimator: "sgbm",
		Intrinsics: f.Intrinsics, BaselineM: f.BaselineM})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCaptureAndLive(t *testing.T) {
	src := writeSim(t)
	dir := filepath.Join(t.TempDir(), "capture")
	w, err := CreateCapture(dir, CaptureInfo{Broker: "tcp://127.0.0.1:1883", Robot: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	// Depth for frames 0, 1, 2, 4; poses for 0..4, frame 3's twice; frame 5 nothing; a
	// pose of another trajectory and two malformed messages.
	for i := range 5 {
		f, err := src.Frame(i)
		if err != nil {
			t.Fatal(err)
		}
		if i != 3 {
			if seq, err := w.AddDepth(depthMessage(t, f)); err != nil || seq != uint64(i) {
				t.Fatalf("AddDepth %d: %d, %v", i, seq, err)
			}
		}
		if _, err := w.AddPose(poseMessage(t, f, 7)); err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			if _, err := w.AddPose(poseMessage(t, f, 7)); err != nil {
				t.Fatal(err)
			}
		}
	}
	f5, _ := src.Frame(5)
	f5.Seq = 40
	if _, err := w.AddPose(poseMessage(t, f5, 8)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddDepth([]byte("not a png")); !errors.Is(err, ErrBadMessage) {
		t.Errorf("AddDepth(garbage): %v", err)
	}
	if _, err := w.AddPose([]byte(`{"seq":1}`)); !errors.Is(err, ErrBadMessage) {
		t.Errorf("AddPose(incomplete): %v", err)
	}
	if err := w.Close("frames", 3); err != nil {
		t.Fatal(err)
	}
	c := w.Info()
	if c.DepthMessages != 4 || c.PoseMessages != 6 || c.Duplicates != 1 || c.DepthRejected != 1 || c.PoseRejected != 1 ||
		c.FirstSeq != 0 || c.LastSeq != 4 || c.DroppedByClient != 3 || c.Ended.IsZero() {
		t.Errorf("capture info %+v", c)
	}
	for _, name := range []string{"depth/000000.png", "depth/000004.png", "poses.txt", "poses_seq.txt", "capture.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	if _, err := CreateCapture(dir, CaptureInfo{}); err == nil {
		t.Error("CreateCapture accepted a directory that is not empty")
	}

	live, err := OpenLive(dir)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Evaluate(context.Background(), src, []Predictor{live}, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	r := ev.Report.Estimators[0]
	if r.Name != "live" || r.FramesOutput != 5 || r.FramesMissing != 1 {
		t.Fatalf("live: %+v", r)
	}
	// Millimetre rounding only.
	if r.Depth == nil || r.Depth.Frames != 4 || !(r.Depth.Metric.AbsRel < 1e-3) || r.Depth.Metric.Delta1 != 1 {
		t.Errorf("live depth %+v", r.Depth)
	}
	if r.Trajectory == nil || r.Trajectory.FramesWithPose != 5 || r.Trajectory.Frames != 5 || !(r.Trajectory.ATESE3RMSEM < 1e-9) {
		t.Errorf("live trajectory %+v", r.Trajectory)
	}
	notes := strings.Join(r.Notes, "\n")
	for _, want := range []string{"2 trajectories", "6 frames, 1 without any output (missing), 1 with a pose but no depth, 0 with depth but no pose", "robot r1"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}
