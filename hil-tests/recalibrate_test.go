package hiltests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/rtspserve"
	"github.com/edgedepth/edgedepth/camera/rtsptest"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/telemetry/mqtttest"
)

// knockedSource is the simulated rig with its right camera turned in its mount by a
// small rotation: every right image is re-rendered by the rotation's homography.
type knockedSource struct {
	camera.Source
	// src[i] is where output pixel i samples the rendered right image (x, y), or
	// NaN outside it.
	srcX, srcY []float64
}

// newKnockedSource turns the right camera of w by rot (row-major) about its optical
// centre: a ray r_new = rot·r_old, so the new pixel u shows the old image at
// K·rotᵀ·K⁻¹·u (the pure-rotation homography), sampled bilinearly; black where that
// falls outside the old image.
func newKnockedSource(w *sim.World, rot [9]float64) *knockedSource {
	k := w.Intrinsics()
	s := &knockedSource{Source: sim.NewSource(w), srcX: make([]float64, k.Width*k.Height), srcY: make([]float64, k.Width*k.Height)}
	for v := range k.Height {
		for u := range k.Width {
			rx, ry := (float64(u)-k.Cx)/k.Fx, (float64(v)-k.Cy)/k.Fy
			// rotᵀ·(rx, ry, 1)
			x := rot[0]*rx + rot[3]*ry + rot[6]
			y := rot[1]*rx + rot[4]*ry + rot[7]
			z := rot[2]*rx + rot[5]*ry + rot[8]
			s.srcX[v*k.Width+u], s.srcY[v*k.Width+u] = k.Fx*x/z+k.Cx, k.Fy*y/z+k.Cy
		}
	}
	return s
}

func (s *knockedSource) Run(ctx context.Context, emit func(camera.StereoFrame)) error {
	return s.Source.Run(ctx, func(f camera.StereoFrame) {
		f.Right = s.warp(f.Right)
		emit(f)
	})
}

func (s *knockedSource) warp(img camera.Image) camera.Image {
	out := camera.NewImage(img.Width, img.Height)
	stride := 3 * img.Width
	for i := range s.srcX {
		x, y := s.srcX[i], s.srcY[i]
		x0, y0 := math.Floor(x), math.Floor(y)
		if x0 < 0 || y0 < 0 || int(x0)+1 >= img.Width || int(y0)+1 >= img.Height {
			continue
		}
		fx, fy := x-x0, y-y0
		j := 3 * (int(y0)*img.Width + int(x0))
		for c := range 3 {
			p := (1-fx)*(1-fy)*float64(img.Pix[j+c]) + fx*(1-fy)*float64(img.Pix[j+3+c]) +
				(1-fx)*fy*float64(img.Pix[j+stride+c]) + fx*fy*float64(img.Pix[j+stride+3+c])
			out.Pix[3*i+c] = byte(math.Round(p))
		}
	}
	return out
}

// rotX is the rotation by a radians about the x axis (pitch), row-major.
func rotX(a float64) [9]float64 {
	c, s := math.Cos(a), math.Sin(a)
	return [9]float64{1, 0, 0, 0, c, -s, 0, s, c}
}

// recalReply is the part of the recalibrate reply the test reads.
type recalReply struct {
	OK     bool `json:"ok"`
	Result struct {
		Before struct {
			MedianPx float64 `json:"median_px"`
			P90Px    float64 `json:"p90_px"`
		} `json:"before"`
		After struct {
			MedianPx float64 `json:"median_px"`
			P90Px    float64 `json:"p90_px"`
		} `json:"after"`
		DeltaDeg   float64 `json:"delta_deg"`
		Matches    int     `json:"matches"`
		Inliers    int     `json:"inliers"`
		Better     bool    `json:"better"`
		Applied    bool    `json:"applied"`
		NotApplied string  `json:"not_applied"`
		Saved      bool    `json:"saved"`
		File       string  `json:"file"`
		Backup     string  `json:"backup"`
		NotSaved   string  `json:"not_saved"`
	} `json:"result"`
}

// depthValid returns the median valid fraction of the next n depth messages published
// after since.
func depthValid(t *testing.T, msgs <-chan message, robot string, since time.Time, n int) float64 {
	t.Helper()
	var valid []float64
	for len(valid) < n {
		m := waitFor(t, msgs, 30*time.Second, "depth", func(m message) bool {
			return m.Topic == "edgedepth/"+robot+"/depth" && m.At.After(since)
		})
		got, _, err := depth.DecodePNG(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		valid = append(valid, depth.ValidFraction(got))
	}
	sort.Float64s(valid)
	return valid[len(valid)/2]
}

// TestRecalibrateOverRTSP is the recalibration test end to end: the simulated room is
// served over RTSP (MJPEG) with its right camera turned by 0.5° in pitch, the daemon
// ingests it with the nominal calibration (identity rotation), and `edgedepth cmd
// recalibrate` over a real mosquitto re-estimates the rotation from the live streams,
// applies it to the running pipeline and saves it with a backup. Bounds: the knock
// shows as a median vertical disparity above 1 px, the recalibrated one below 0.3 px;
// depth afterwards is at least as complete as before.
func TestRecalibrateOverRTSP(t *testing.T) {
	const knockDeg = 0.5
	sc := sim.DefaultConfig()
	sc.Scene, sc.FPS = "room", 8
	world, err := sim.NewWorld(sc)
	if err != nil {
		t.Fatal(err)
	}
	srv := rtsptest.StartServer(t, rtspserve.Config{Codec: rtspserve.CodecMJPEG, JPEGQuality: 90, FPS: sc.FPS},
		newKnockedSource(world, rotX(knockDeg*math.Pi/180)))
	calPath := writeSimCalibration(t, world) // nominal: knows nothing of the knock
	nominal, err := os.ReadFile(calPath)
	if err != nil {
		t.Fatal(err)
	}

	mosq := mqtttest.StartMosquitto(t, mqtttest.Options{})
	robot := "hil-recal"
	dataDir := t.TempDir()
	msgs := subscribe(t, mosq.URL(), "edgedepth/"+robot+"/#")
	cfg := fmt.Sprintf(`
robot_id: %s
data_dir: %s
shutdown_timeout: 10s
source:
  kind: rtsp
  rtsp:
    left:
      url: %s
      transport: tcp
    right:
      url: %s
      transport: tcp
    calibration: [%s]
depth:
  max_depth_m: 20
mqtt:
  broker_url: %s
  status_interval: 250ms
  embedded_broker:
    enabled: false
`, robot, dataDir, srv.URL("left"), srv.URL("right"), calPath, mosq.URL())
	d := startDaemon(t, cfg)

	validBefore := depthValid(t, msgs, robot, time.Time{}, 5)
	key := filepath.Join(dataDir, "cmd.key")
	start := time.Now()
	code, out := runOnce(t, "cmd", "recalibrate", "frames=10", "--broker", mosq.URL(), "--robot", robot,
		"--key", key, "--timeout", "120s")
	took := time.Since(start)
	var reply recalReply
	if i := strings.Index(out, "{"); i < 0 || json.NewDecoder(strings.NewReader(out[i:])).Decode(&reply) != nil {
		t.Fatalf("recalibrate: exit %d, no JSON reply:\n%s", code, out)
	}
	r := reply.Result
	t.Logf("recalibrate took %.1f s: vertical disparity median %.3f px (p90 %.3f) before, %.3f px (p90 %.3f) after; "+
		"correction %.3f° (knock %.1f°), %d inliers of %d matches; applied %v, saved %v, backup %s",
		took.Seconds(), r.Before.MedianPx, r.Before.P90Px, r.After.MedianPx, r.After.P90Px, r.DeltaDeg, knockDeg,
		r.Inliers, r.Matches, r.Applied, r.Saved, r.Backup)
	if code != 0 || !reply.OK {
		t.Fatalf("recalibrate: exit %d\n%s", code, out)
	}
	if r.Before.MedianPx <= 1 {
		t.Errorf("knocked rig: median vertical disparity %.3f px before, want > 1", r.Before.MedianPx)
	}
	if r.After.MedianPx >= 0.3 {
		t.Errorf("recalibrated: median vertical disparity %.3f px, want < 0.3", r.After.MedianPx)
	}
	if math.Abs(r.DeltaDeg-knockDeg) > 0.1 {
		t.Errorf("correction %.3f°, want about the %.1f° knock", r.DeltaDeg, knockDeg)
	}
	if !r.Better || !r.Applied || !r.Saved {
		t.Fatalf("better %v, applied %v (%s), saved %v (%s); want all true", r.Better, r.Applied, r.NotApplied, r.Saved, r.NotSaved)
	}
	if r.File != calPath {
		t.Errorf("saved to %q, want the configured %q", r.File, calPath)
	}
	if old, err := os.ReadFile(r.Backup); err != nil || !bytes.Equal(old, nominal) {
		t.Errorf("backup %q: %v; want the nominal calibration file as it was", r.Backup, err)
	}
	if now, err := os.ReadFile(calPath); err != nil || bytes.Equal(now, nominal) {
		t.Errorf("calibration file %s unchanged (%v)", calPath, err)
	}

	// For the record only: the valid fraction also moves with the scene as the rig
	// drives, so it is too noisy to assert on (0.46 → 0.50 and 0.46 → 0.80 seen). That
	// the live pipeline swaps in the new rectifier is asserted by runtime's and
	// camera/stereo's unit tests.
	validAfter := depthValid(t, msgs, robot, time.Now(), 5)
	t.Logf("depth valid fraction (median of 5 frames): %.3f before, %.3f after", validBefore, validAfter)

	if err := d.stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
}
