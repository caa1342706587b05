package hiltests

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera/calib"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/telemetry/mqtttest"
)

// writeSimCalibration writes, in OpenCV's YAML, the calibration of the simulated rig:
// its intrinsics, no distortion, parallel cameras, the right one BaselineM to the right
// (OpenCV's T maps left-camera points into the right camera: T = (−B, 0, 0)).
func writeSimCalibration(t *testing.T, w *sim.World) string {
	t.Helper()
	k := w.Intrinsics()
	K := [9]float64{k.Fx, 0, k.Cx, 0, k.Fy, k.Cy, 0, 0, 1}
	s := calib.Stereo{
		Size: calib.ImageSize{Width: k.Width, Height: k.Height},
		K1:   K, K2: K,
		D1: make([]float64, 5), D2: make([]float64, 5),
		R: [9]float64{1, 0, 0, 0, 1, 0, 0, 0, 1},
		T: [3]float64{-w.BaselineM(), 0, 0},
	}
	path := filepath.Join(t.TempDir(), "stereo.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := calib.WriteOpenCVYAML(f, s); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDaemonOverRTSP: the simulated rig served over RTSP by `edgedepth sim serve` (a real
// process), ingested by the daemon as two RTSP cameras with a calibration file, paired,
// rectified, turned into depth and published to a real mosquitto. Then the camera server
// is killed mid-stream: the daemon says which camera is down, and ingest resumes by itself
// within 5 s of the server coming back.
func TestDaemonOverRTSP(t *testing.T) {
	sc := sim.DefaultConfig()
	sc.Scene, sc.FPS = "room", 5
	world, err := sim.NewWorld(sc)
	if err != nil {
		t.Fatal(err)
	}
	rtspAddr := freeAddr(t)
	serveArgs := []string{"sim", "serve", "--addr", rtspAddr, "--codec", "mjpeg", "--scene", "room", "--fps", "5"}
	server := startDaemonArgs(t, nil, serveArgs...)
	waitOutput(t, server, "right: rtsp://", 20*time.Second)

	mosq := mqtttest.StartMosquitto(t, mqtttest.Options{})
	robot := "hil-rtsp"
	httpAddr := freeAddr(t)
	msgs := subscribe(t, mosq.URL(), "edgedepth/"+robot+"/#")
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
  max_depth_m: 20
mqtt:
  broker_url: %s
  status_interval: 250ms
  embedded_broker:
    enabled: false
http:
  addr: %s
`, robot, t.TempDir(), rtspAddr, rtspAddr, writeSimCalibration(t, world), mosq.URL(), httpAddr)
	d := startDaemon(t, cfg)

	k := world.Intrinsics()
	var valid []float64
	for len(valid) < 5 {
		m := waitFor(t, msgs, 40*time.Second, "depth over RTSP", func(m message) bool {
			return m.Topic == "edgedepth/"+robot+"/depth"
		})
		got, meta, err := depth.DecodePNG(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		// Identity rectification keeps the rig's geometry (alpha 0 may zoom slightly).
		if got.Width != k.Width || got.Height != k.Height || meta.Intrinsics.Fx < 0.95*k.Fx || meta.Intrinsics.Fx > 1.05*k.Fx ||
			meta.BaselineM < 0.99*world.BaselineM() || meta.BaselineM > 1.01*world.BaselineM() {
			t.Fatalf("depth %dx%d fx=%g baseline=%g; rig %dx%d fx=%g baseline=%g",
				got.Width, got.Height, meta.Intrinsics.Fx, meta.BaselineM, k.Width, k.Height, k.Fx, world.BaselineM())
		}
		valid = append(valid, depth.ValidFraction(got))
		var zs []float64
		for _, z := range got.M {
			if z > 0 {
				zs = append(zs, float64(z))
			}
		}
		sort.Float64s(zs)
		if med := zs[len(zs)/2]; med < 0.5 || med > 9 {
			t.Fatalf("median depth %.2f m outside the room's 0.5–9 m", med)
		}
	}
	// The ingest is on /metrics: pairs, and per camera frames, losses and jitter.
	waitMetric(t, httpAddr, "edgedepth_pairing_pairs_total", 10*time.Second, func(v float64) bool { return v >= 5 })
	sort.Float64s(valid)
	if valid[len(valid)/2] < 0.5 {
		t.Fatalf("depth on only %.0f%% of pixels (median over frames): %v", 100*valid[len(valid)/2], valid)
	}

	// Kill the camera server mid-stream: health names the camera.
	server.stop(syscall.SIGKILL, 5*time.Second)
	waitFor(t, msgs, 20*time.Second, "degraded status naming a camera", func(m message) bool {
		if m.Topic != "edgedepth/"+robot+"/status" {
			return false
		}
		s := parseStatus(t, m.Payload)
		for _, w := range s.Warnings {
			if w.Component == "camera left" || w.Component == "camera right" {
				return s.State == "degraded"
			}
		}
		return false
	})
	// ... and an event announces it.
	waitFor(t, msgs, 10*time.Second, "degraded event naming a camera", func(m message) bool {
		return m.Topic == "edgedepth/"+robot+"/events" && strings.Contains(string(m.Payload), `"kind":"degraded"`) &&
			strings.Contains(string(m.Payload), `"component":"camera `)
	})
	// Bring it back on the same address: ingest resumes by itself.
	restarted := time.Now()
	server = startDaemonArgs(t, nil, serveArgs...)
	waitOutput(t, server, "right: rtsp://", 20*time.Second)
	// Depth flows again, and an event says the cameras recovered (either may come first).
	var resumed time.Duration
	recovered := false
	waitFor(t, msgs, 30*time.Second, "depth and a recovered event after the camera server restarted", func(m message) bool {
		switch {
		case m.Topic == "edgedepth/"+robot+"/depth" && m.At.After(restarted) && resumed == 0:
			resumed = m.At.Sub(restarted)
		case m.Topic == "edgedepth/"+robot+"/events" && strings.Contains(string(m.Payload), `"kind":"recovered"`) &&
			strings.Contains(string(m.Payload), `"component":"camera `):
			recovered = true
		}
		return resumed > 0 && recovered
	})
	t.Logf("ingest resumed %.1f s after the camera server restarted", resumed.Seconds())
	if resumed > 5*time.Second {
		t.Fatalf("ingest resumed %.1f s after the camera server came back, want within 5 s", resumed.Seconds())
	}
	if err := d.stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
}
