package hiltests

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/odom"
	"github.com/edgedepth/edgedepth/telemetry"
	"github.com/edgedepth/edgedepth/telemetry/mqtttest"
)

// copyModels copies the test model store (testdata/models: a small network trained on
// the simulated street, seed 1) into dir.
func copyModels(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"manifest.json", "v000001.safetensors"} {
		b, err := os.ReadFile(filepath.Join("testdata", "models", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// odomDriftBound is the largest end-point error the end-to-end test accepts, as a
// fraction of the distance travelled (see TestNetworkOdometryOverRTSP).
const odomDriftBound = 0.05

// TestNetworkOdometryOverRTSP is the end-to-end test of network depth and odometry:
// an unseen simulated street (seed 3; the model was trained on seed 1) served over
// RTSP as H.264 by `edgedepth sim serve`, ingested by the daemon on the CPU, depth and
// pose from the networks, published to a real mosquitto. Every pair that gets depth
// gets a pose (QoS 1), with the same seq; the depth is metric; and after about 12 s
// (about 18 m) the trajectory's end point is within odomDriftBound of the distance
// from the truth.
func TestNetworkOdometryOverRTSP(t *testing.T) {
	sc := sim.DefaultConfig()
	sc.Scene, sc.Seed, sc.Width, sc.Height, sc.FPS = "street", 3, 320, 96, 10
	world, err := sim.NewWorld(sc)
	if err != nil {
		t.Fatal(err)
	}
	rtspAddr := freeAddr(t)
	server := startDaemonArgs(t, nil, "sim", "serve", "--addr", rtspAddr, "--codec", "h264",
		"--scene", "street", "--seed", "3", "--width", "320", "--height", "96", "--fps", "10")
	waitOutput(t, server, "first pair: frame 0 captured at ", 20*time.Second)
	match := regexp.MustCompile(`first pair: frame 0 captured at (\S+)`).FindStringSubmatch(server.out.String())
	frame0, err := time.Parse(time.RFC3339Nano, match[1])
	if err != nil {
		t.Fatal(err)
	}
	period := time.Second / 10
	frameOf := func(stamp time.Time) int { return int(math.Round(float64(stamp.Sub(frame0)) / float64(period))) }

	mosq := mqtttest.StartMosquitto(t, mqtttest.Options{})
	robot := "hil-odom"
	msgs := subscribeQoS(t, mosq.URL(), "edgedepth/"+robot+"/#", 1)
	dataDir := t.TempDir()
	copyModels(t, filepath.Join(dataDir, "models"))
	cfg := fmt.Sprintf(`
robot_id: %s
data_dir: %s
source:
  kind: rtsp
  rtsp:
    left:
      url: rtsp://%s/left
      transport: tcp
    right:
      url: rtsp://%s/right
      transport: tcp
    calibration: [%s]
depth:
  estimator: network
  max_depth_m: 60
  network:
    width: 320
    height: 96
mqtt:
  broker_url: %s
  status_interval: 500ms
  embedded_broker:
    enabled: false
http:
  addr: ""
`, robot, dataDir, rtspAddr, rtspAddr, writeSimCalibration(t, world), mosq.URL())
	d := startDaemon(t, cfg)
	defer func() {
		if t.Failed() {
			t.Logf("daemon output:\n%s", d.out.String())
		}
	}()

	poses := map[uint64]telemetry.PoseMessage{}
	depths := map[uint64]depth.Meta{}
	var absRel []float64
	deadline := time.After(90 * time.Second)
	for len(poses) < 120 {
		var m message
		select {
		case m = <-msgs:
		case <-deadline:
			t.Fatalf("%d poses and %d depth images within 90 s, want 120", len(poses), len(depths))
		}
		switch m.Topic {
		case "edgedepth/" + robot + "/pose":
			p, err := telemetry.ParsePoseMessage(m.Payload)
			if err != nil {
				t.Fatalf("pose message: %v: %s", err, m.Payload)
			}
			if m.QoS != 1 {
				t.Fatalf("pose delivered with QoS %d, want 1", m.QoS)
			}
			poses[p.Seq] = p
		case "edgedepth/" + robot + "/depth":
			got, meta, err := depth.DecodePNG(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if meta.Estimator != "monodepth2" || got.Width != 320 || got.Height != 96 {
				t.Fatalf("depth from %q at %dx%d, want the network's at 320x96", meta.Estimator, got.Width, got.Height)
			}
			depths[meta.Seq] = meta
			if len(depths)%10 == 0 {
				// Metric depth against the truth of the world frame it shows.
				k := frameOf(meta.Stamp)
				truth := world.Render(k).Truth.DepthM
				c, err := depth.Compare(got, depth.Map{Width: 320, Height: 96, M: truth}, nil, depth.CompareOptions{MinDepthM: 0.5, MaxDepthM: 60})
				if err != nil {
					t.Fatal(err)
				}
				absRel = append(absRel, c.AbsRel)
			}
		}
	}
	// Every pair with depth has its pose, and the other way round (the newest may be
	// in flight).
	var seqs []uint64
	for s := range poses {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for _, s := range seqs[:len(seqs)-3] {
		if _, ok := depths[s]; !ok {
			t.Errorf("pose for pair %d without its depth", s)
		}
	}
	missing := 0
	for s := range depths {
		if _, ok := poses[s]; !ok && s < seqs[len(seqs)-3] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d pairs with depth have no pose", missing)
	}
	sort.Float64s(absRel)
	t.Logf("network depth abs rel over %d sampled pairs: median %.3f, worst %.3f", len(absRel), absRel[len(absRel)/2], absRel[len(absRel)-1])
	if absRel[len(absRel)/2] > 0.25 {
		t.Errorf("median depth abs rel %.3f, want at most 0.25", absRel[len(absRel)/2])
	}

	// The trajectory: one reset (the start), then continuous.
	var est, gt []odom.Pose
	var traj uint64
	resets := 0
	for _, s := range seqs {
		p := poses[s]
		if p.Reset {
			resets++
			traj = p.TrajectoryID
			est, gt = est[:0], gt[:0]
			t.Logf("pair %d: new trajectory %d: %s", s, p.TrajectoryID, p.ResetReason)
		}
		if p.TrajectoryID != traj {
			t.Fatalf("pair %d: trajectory %d without a reset (current %d)", s, p.TrajectoryID, traj)
		}
		est = append(est, odom.FromQuat([3]float64{p.Position.X, p.Position.Y, p.Position.Z},
			[4]float64{p.Orientation.X, p.Orientation.Y, p.Orientation.Z, p.Orientation.W}))
		gt = append(gt, odom.FromCamera(world.PoseAt(frameOf(p.Stamp))))
	}
	if resets != 1 {
		t.Errorf("%d trajectory resets, want 1 (the start)", resets)
	}
	met, _, err := odom.EvaluateTrajectory(est, gt, odom.TrajectoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	last := poses[seqs[len(seqs)-1]]
	t.Logf("%d poses over %.1f m: end-point drift %.2f %% (%.3f m), ATE SE(3) %.3f m, Sim(3) %.3f m (scale %.3f), RPE %.2f %%; source %s; distance_m %.2f",
		len(est), met.LengthM, met.DriftPct, met.FinalErrorM, met.ATESE3RMSEM, met.ATESim3RMSEM, met.Sim3Scale, met.RPETransPct, last.Source, last.DistanceM)
	if met.DriftPct > 100*odomDriftBound {
		t.Errorf("drift %.2f %% of %.1f m, want at most %.0f %%", met.DriftPct, met.LengthM, 100*odomDriftBound)
	}
	if last.Source != odom.SourceNetworkPhotometric {
		t.Errorf("last pose from %q, want %q", last.Source, odom.SourceNetworkPhotometric)
	}

	// pose/reset, signed with the key the daemon created: the reply names the next
	// trajectory, and its first pose is at the origin with reset and the reason.
	key := filepath.Join(dataDir, "cmd.key")
	code, out := runOnce(t, "cmd", "pose/reset", "reason=operator test", "--broker", mosq.URL(), "--robot", robot, "--key", key, "--timeout", "10s")
	want := fmt.Sprintf(`"trajectory_id": %d`, traj+1)
	if code != 0 || !strings.Contains(out, `"ok": true`) || !strings.Contains(out, want) {
		t.Fatalf("pose/reset: exit %d, want ok and %s\n%s", code, want, out)
	}
	m := waitFor(t, msgs, 10*time.Second, "a pose starting the new trajectory", func(m message) bool {
		if m.Topic != "edgedepth/"+robot+"/pose" {
			return false
		}
		p, err := telemetry.ParsePoseMessage(m.Payload)
		return err == nil && p.TrajectoryID == traj+1
	})
	p, _ := telemetry.ParsePoseMessage(m.Payload)
	if !p.Reset || p.ResetReason != "pose/reset command: operator test" || p.Position != (telemetry.Vector3{}) || p.DistanceM != 0 {
		t.Fatalf("first pose after pose/reset: %+v", p)
	}
}
