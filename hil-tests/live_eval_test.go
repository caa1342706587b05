package hiltests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/eval"
	"github.com/edgedepth/edgedepth/telemetry/mqtttest"
)

// TestLiveEvalOfRecordedSequence is the whole evaluation loop on the daemon's own
// output: a recorded sequence (an unseen simulated street with ground truth, written by
// `edgedepth sim write`) played back by the daemon (source.kind: sequence) with the
// networks and odometry, its depth and pose messages recorded from a real mosquitto by
// `edgedepth capture`, and judged by `edgedepth eval --live` against the sequence's
// ground truth: every frame has output, depth is metric and the trajectory holds.
func TestLiveEvalOfRecordedSequence(t *testing.T) {
	const frames = 60
	seq := filepath.Join(t.TempDir(), "seq")
	if code, out := runOnce(t, "sim", "write", "--out", seq, "--frames", fmt.Sprint(frames),
		"--scene", "street", "--seed", "5", "--width", "320", "--height", "96"); code != 0 {
		t.Fatalf("sim write: exit %d\n%s", code, out)
	}
	mosq := mqtttest.StartMosquitto(t, mqtttest.Options{})
	robot := "hil-live-eval"
	capDir := filepath.Join(t.TempDir(), "capture")
	capture := startDaemonArgs(t, nil, "capture", "--broker", mosq.URL(), "--robot", robot, "--out", capDir,
		"--frames", fmt.Sprint(frames), "--seconds", "90")
	waitOutput(t, capture, "capture: subscribed", 20*time.Second)

	dataDir := t.TempDir()
	copyModels(t, filepath.Join(dataDir, "models"))
	d := startDaemon(t, fmt.Sprintf(`
robot_id: %s
data_dir: %s
source:
  kind: sequence
  sequence:
    dir: %s
depth:
  estimator: network
  max_depth_m: 60
  network:
    width: 320
    height: 96
mqtt:
  broker_url: %s
  embedded_broker:
    enabled: false
http:
  addr: ""
`, robot, dataDir, seq, mosq.URL()))
	select {
	case <-capture.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("capture did not end:\n%s\ndaemon:\n%s", capture.out.String(), d.out.String())
	}
	if capture.err != nil {
		t.Fatalf("capture: %v\n%s", capture.err, capture.out.String())
	}
	waitOutput(t, d, "the sequence has ended", 20*time.Second)

	out := filepath.Join(t.TempDir(), "eval")
	code, stdout := runOnce(t, "eval", "--data", seq, "--live", capDir, "--out", out, "--max-depth", "60", "--depth-maps", "1")
	if code != 0 {
		t.Fatalf("eval --live: exit %d\n%s", code, stdout)
	}
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r eval.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Estimators) != 1 {
		t.Fatalf("%d estimators in the report, want the live one", len(r.Estimators))
	}
	e := r.Estimators[0]
	if e.FramesOutput+e.FramesMissing != frames || e.FramesMissing > 0 {
		t.Errorf("live output for %d frames, %d missing; want all %d", e.FramesOutput, e.FramesMissing, frames)
	}
	if e.Depth == nil || !(e.Depth.Metric.AbsRel < 0.25) {
		t.Errorf("live depth: %+v", e.Depth)
	}
	if e.Trajectory == nil || e.Trajectory.Error != "" || !(e.Trajectory.DriftPct < 5) {
		t.Errorf("live trajectory: %+v", e.Trajectory)
	}
	if e.Depth != nil && e.Trajectory != nil {
		t.Logf("the daemon's live output on %d frames (%.1f m): abs rel %.3f, drift %.2f %%, ATE SE(3) %.3f m",
			e.FramesOutput, e.Trajectory.LengthM, e.Depth.Metric.AbsRel, e.Trajectory.DriftPct, e.Trajectory.ATESE3RMSEM)
	}
}
