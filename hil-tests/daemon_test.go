package hiltests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/telemetry/mqtttest"
)

// simConfig is a daemon configuration on the simulated rig publishing to brokerURL.
// fps is kept low so that rendering, SGBM and the test's own rendering of the ground
// truth share a 2-core CI machine without the pipeline falling far behind.
func simConfig(robotID, scene, brokerURL, httpAddr, dataDir string) string {
	return fmt.Sprintf(`
robot_id: %s
data_dir: %s
shutdown_timeout: 10s
source:
  kind: sim
  sim:
    scene: %s
    seed: 7
    width: 640
    height: 480
    fps: 4
depth:
  preview_rate_hz: 1
mqtt:
  broker_url: %s
  keep_alive: 5s
  status_interval: 250ms
  embedded_broker:
    enabled: false
http:
  addr: %s
`, robotID, dataDir, scene, brokerURL, httpAddr)
}

// TestDaemonPublishesAccurateDepth is the foundation's end-to-end test: the daemon on the
// simulated rig publishes to a real mosquitto; a subscriber receives status and depth;
// the depth is metric and accurate against the simulator's ground truth; after a clean
// stop the retained status says offline.
func TestDaemonPublishesAccurateDepth(t *testing.T) {
	for _, scene := range []string{"street", "room"} {
		t.Run(scene, func(t *testing.T) {
			mosq := mqtttest.StartMosquitto(t, mqtttest.Options{})
			robot := "hil-" + scene
			msgs := subscribe(t, mosq.URL(), "edgedepth/"+robot+"/#")
			d := startDaemon(t, simConfig(robot, scene, mosq.URL(), freeAddr(t), t.TempDir()))

			waitFor(t, msgs, 30*time.Second, "running status", func(m message) bool {
				if m.Topic != "edgedepth/"+robot+"/status" {
					return false
				}
				s := parseStatus(t, m.Payload)
				return s.State == "running" && s.RobotID == robot && s.Version != ""
			})

			// The world the daemon renders, rebuilt here to get the ground truth of
			// whichever frames it published.
			sc := sim.DefaultConfig()
			sc.Scene, sc.Seed, sc.Width, sc.Height, sc.FPS = scene, 7, 640, 480, 4
			world, err := sim.NewWorld(sc)
			if err != nil {
				t.Fatal(err)
			}
			k := world.Intrinsics()

			var medians []float64
			lastSeq := int64(-1)
			for len(medians) < 3 {
				m := waitFor(t, msgs, 30*time.Second, "depth message", func(m message) bool {
					return m.Topic == "edgedepth/"+robot+"/depth"
				})
				got, meta, err := depth.DecodePNG(m.Payload)
				if err != nil {
					t.Fatalf("depth payload: %v", err)
				}
				if int64(meta.Seq) <= lastSeq {
					t.Fatalf("depth seq %d after %d: not increasing", meta.Seq, lastSeq)
				}
				lastSeq = int64(meta.Seq)
				if got.Width != k.Width || got.Height != k.Height || meta.Intrinsics.Fx != k.Fx || meta.BaselineM != world.BaselineM() {
					t.Fatalf("depth %dx%d fx=%g baseline=%g; the rig is %dx%d fx=%g baseline=%g",
						got.Width, got.Height, meta.Intrinsics.Fx, meta.BaselineM, k.Width, k.Height, k.Fx, world.BaselineM())
				}
				f := world.Render(int(meta.Seq))
				truth := depth.Map{Width: k.Width, Height: k.Height, M: f.Truth.DepthM}
				nonOcc := depth.NonOccluded(truth, k.Fx, world.BaselineM())
				textured := depth.Textured(f.Left, 8)
				mask := make([]bool, len(nonOcc))
				evaluable := 0 // pixels a stereo matcher can be asked about
				for i := range mask {
					mask[i] = nonOcc[i] && textured[i]
					if z := truth.M[i]; mask[i] && z >= 0.3 && z <= 60 {
						evaluable++
					}
				}
				opt := depth.DefaultCompareOptions()
				opt.MinDepthM, opt.MaxDepthM = 0.3, 60
				res, err := depth.Compare(got, truth, mask, opt)
				if err != nil {
					t.Fatalf("seq %d: %v", meta.Seq, err)
				}
				coverage := float64(res.N) / float64(evaluable)
				if evaluable < k.Width*k.Height/20 || coverage < 0.5 {
					t.Fatalf("seq %d: depth on %d of %d textured, non-occluded pixels (%.0f%%): want at least half: %v",
						meta.Seq, res.N, evaluable, 100*coverage, res)
				}
				t.Logf("seq %d: coverage %.0f%% of %d evaluable pixels; %v", meta.Seq, 100*coverage, evaluable, res)
				medians = append(medians, res.MedianAbsRel)
			}
			sort.Float64s(medians)
			if med := medians[len(medians)/2]; med >= 0.10 {
				t.Fatalf("median abs rel error %.3f ≥ 0.10 (per frame: %v)", med, medians)
			}

			// The README's consumer example reads the same messages with only paho and
			// the standard library's PNG decoder.
			out, err := exec.Command(consumer, "--broker", mosq.URL(), "--robot", robot, "--count", "2").CombinedOutput()
			if err != nil || strings.Count(string(out), " m fx=") != 2 {
				t.Fatalf("depth-consumer: %v\n%s", err, out)
			}

			if err := d.stop(syscall.SIGTERM, 15*time.Second); err != nil {
				t.Fatalf("daemon exit after SIGTERM: %v", err)
			}
			after := subscribe(t, mosq.URL(), "edgedepth/"+robot+"/status")
			m := waitFor(t, after, 10*time.Second, "retained status", func(message) bool { return true })
			if s := parseStatus(t, m.Payload); !m.Retained || s.State != "offline" {
				t.Fatalf("after a clean stop the retained status is %q (retained=%v), want offline", s.State, m.Retained)
			}
		})
	}
}

// TestDaemonKilledLeavesOfflineWill: kill -9 gives the daemon no chance to say goodbye;
// the broker's Last Will must.
func TestDaemonKilledLeavesOfflineWill(t *testing.T) {
	mosq := mqtttest.StartMosquitto(t, mqtttest.Options{})
	msgs := subscribe(t, mosq.URL(), "edgedepth/hil-kill/status")
	d := startDaemon(t, simConfig("hil-kill", "room", mosq.URL(), "", t.TempDir()))
	waitFor(t, msgs, 30*time.Second, "status", func(m message) bool {
		s := parseStatus(t, m.Payload)
		return s.State == "running" || s.State == "degraded"
	})
	d.stop(syscall.SIGKILL, 5*time.Second)
	waitFor(t, msgs, 15*time.Second, "offline Last Will", func(m message) bool {
		return parseStatus(t, m.Payload).State == "offline"
	})
	after := subscribe(t, mosq.URL(), "edgedepth/hil-kill/status")
	m := waitFor(t, after, 10*time.Second, "retained status", func(message) bool { return true })
	if s := parseStatus(t, m.Payload); !m.Retained || s.State != "offline" {
		t.Fatalf("retained status after kill -9 is %q (retained=%v), want offline", s.State, m.Retained)
	}
}

// TestBadInputIsNamed: configuration mistakes stop the daemon with a message naming the
// problem; exit status 1.
func TestBadInputIsNamed(t *testing.T) {
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknownKey, []byte("mqtt:\n  brokr_url: tcp://x:1\n"), 0o644)
	outOfRange := filepath.Join(dir, "range.yaml")
	os.WriteFile(outOfRange, []byte("source:\n  sim:\n    fps: 5000\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing config", []string{"run", "--config", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml", "no such file"}},
		{"unknown key", []string{"run", "--config", unknownKey}, []string{"mqtt.brokr_url", "broker_url"}},
		{"out of range", []string{"run", "--config", outOfRange}, []string{"source.sim.fps", "5000"}},
		{"unknown command", []string{"fly"}, []string{"unknown command", "Usage"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runOnce(t, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0, want failure; output:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestDaemonDegradesInsteadOfDying: a broker that refuses the credentials and an
// unwritable data directory leave the daemon running, computing depth, and saying what is
// wrong on /healthz; it still stops cleanly.
func TestDaemonDegradesInsteadOfDying(t *testing.T) {
	mosq := mqtttest.StartMosquitto(t, mqtttest.Options{Users: map[string]string{"robot": "right"}})
	notADir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notADir, []byte("x"), 0o644)
	dataDir := filepath.Join(notADir, "data") // a directory under a regular file cannot exist
	httpAddr := freeAddr(t)
	cfg := simConfig("hil-degraded", "room", mosq.URL(), httpAddr, dataDir)
	cfg = strings.Replace(cfg, "  keep_alive: 5s\n", "  keep_alive: 5s\n  username: robot\n  password: wrong\n", 1)
	d := startDaemon(t, cfg)

	_, body := waitHealth(t, httpAddr, 30*time.Second, func(code int, body string) bool {
		return code == 503 && strings.Contains(body, "mqtt") && strings.Contains(body, "data_dir")
	})
	for _, want := range []string{dataDir, mosq.URL()} {
		if !strings.Contains(body, want) {
			t.Errorf("/healthz does not name %q: %s", want, body)
		}
	}
	if !strings.Contains(strings.ToLower(body), "not authori") && !strings.Contains(strings.ToLower(body), "credential") {
		t.Errorf("/healthz does not say the credentials were refused: %s", body)
	}
	// Still computing depth without MQTT.
	waitMetric(t, httpAddr, "edgedepth_depth_frames_total", 30*time.Second, func(v float64) bool { return v >= 2 })
	if err := d.stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
}

// TestCommandStatus: the daemon creates its command key on first run; `edgedepth cmd
// status` signed with it gets the status back over a real mosquitto; unsigned, it is
// refused without details.
func TestCommandStatus(t *testing.T) {
	mosq := mqtttest.StartMosquitto(t, mqtttest.Options{})
	dataDir := t.TempDir()
	msgs := subscribe(t, mosq.URL(), "edgedepth/hil-cmd/status")
	startDaemon(t, simConfig("hil-cmd", "room", mosq.URL(), "", dataDir))
	waitFor(t, msgs, 30*time.Second, "status", func(message) bool { return true })
	key := filepath.Join(dataDir, "cmd.key")
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("command key %s: %v (mode %v), want created with mode 0600", key, err, st)
	}
	code, out := runOnce(t, "cmd", "status", "--broker", mosq.URL(), "--robot", "hil-cmd", "--key", key, "--timeout", "10s")
	if code != 0 || !strings.Contains(out, `"ok": true`) || !strings.Contains(out, `"robot_id": "hil-cmd"`) {
		t.Fatalf("signed status: exit %d\n%s", code, out)
	}
	code, out = runOnce(t, "cmd", "status", "--broker", mosq.URL(), "--robot", "hil-cmd", "--timeout", "10s")
	if code == 0 || !strings.Contains(out, "unauthorized") {
		t.Fatalf("unsigned status: exit %d, want a refusal saying unauthorized\n%s", code, out)
	}
}
