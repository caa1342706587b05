package hiltests

import (
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/calib"
	"github.com/edgedepth/edgedepth/camera/rtspserve"
	"github.com/edgedepth/edgedepth/camera/rtsptest"
	"github.com/edgedepth/edgedepth/telemetry/mqtttest"
)

// opencvStereoData holds OpenCV's stereo chessboard pairs (Debian package opencv-doc).
const opencvStereoData = "/usr/share/doc/opencv-doc/examples/data"

// chessboardSource plays OpenCV's sample pairs as a live stereo camera: one pair after
// the other, round and round, fps pairs a second with increasing capture times.
type chessboardSource struct {
	pairs [][2]camera.Image
	fps   float64
}

func newChessboardSource(t *testing.T, fps float64) *chessboardSource {
	t.Helper()
	s := &chessboardSource{fps: fps}
	for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14} {
		var p [2]camera.Image
		for k, side := range []string{"left", "right"} {
			path := filepath.Join(opencvStereoData, fmt.Sprintf("%s%02d.jpg", side, n))
			f, err := os.Open(path)
			if err != nil {
				t.Fatalf("OpenCV's stereo sample images are missing (%v): install the Debian package opencv-doc", err)
			}
			img, err := jpeg.Decode(f)
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			p[k] = camera.FromImage(img)
		}
		s.pairs = append(s.pairs, p)
	}
	return s
}

func (s *chessboardSource) Name() string { return "opencv-chessboard-pairs" }

func (s *chessboardSource) Run(ctx context.Context, emit func(camera.StereoFrame)) error {
	period := time.Duration(float64(time.Second) / s.fps)
	tick := time.NewTicker(period)
	defer tick.Stop()
	for seq := uint64(0); ; seq++ {
		p := s.pairs[seq%uint64(len(s.pairs))]
		emit(camera.StereoFrame{Seq: seq, CaptureTime: time.Now(), Left: p[0], Right: p[1]})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// chessReply is the part of the calibrate/chessboard reply the test reads.
type chessReply struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Result struct {
		PairsUsed     int     `json:"pairs_used"`
		PairsRejected int     `json:"pairs_rejected"`
		PairsSeen     int     `json:"pairs_seen"`
		RMSPx         float64 `json:"rms_px"`
		EpipolarPx    float64 `json:"epipolar_px"`
		BaselineM     float64 `json:"baseline_m"`
		Fx            float64 `json:"fx"`
		Applied       bool    `json:"applied"`
		NotApplied    string  `json:"not_applied"`
		Saved         bool    `json:"saved"`
		File          string  `json:"file"`
		Backup        string  `json:"backup"`
		NotSaved      string  `json:"not_saved"`
	} `json:"result"`
}

// TestChessboardCommandOverRTSP: OpenCV's stereo chessboard pairs served over RTSP
// (MJPEG) as a live rig, ingested by the daemon with a rough initial calibration, and
// `edgedepth cmd calibrate/chessboard` over a real mosquitto captures pairs from the
// live streams, calibrates, applies and saves with a backup. OpenCV's own figures for
// the 13 pairs from files: RMS 0.634 px, baseline 0.0836 m; MJPEG recompression and a
// subset of 8 pairs may cost a little, hence RMS < 1 px and the baseline within 10 %.
func TestChessboardCommandOverRTSP(t *testing.T) {
	const (
		wantBaselineM = 0.0836
		pairs         = 8
	)
	src := newChessboardSource(t, 5)
	srv := rtsptest.StartServer(t, rtspserve.Config{Codec: rtspserve.CodecMJPEG, JPEGQuality: 95, FPS: 5}, src)

	// The initial calibration: an ideal rig near the truth, K with fx 530.
	K := [9]float64{530, 0, 320, 0, 530, 240, 0, 0, 1}
	initial := calib.Stereo{
		Size: calib.ImageSize{Width: 640, Height: 480},
		K1:   K, K2: K, D1: make([]float64, 5), D2: make([]float64, 5),
		R: [9]float64{1, 0, 0, 0, 1, 0, 0, 0, 1},
		T: [3]float64{-0.08, 0, 0},
	}
	calPath := filepath.Join(t.TempDir(), "stereo.yaml")
	f, err := os.Create(calPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := calib.WriteOpenCVYAML(f, initial); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	initialBytes, err := os.ReadFile(calPath)
	if err != nil {
		t.Fatal(err)
	}

	mosq := mqtttest.StartMosquitto(t, mqtttest.Options{})
	robot := "hil-chessboard"
	dataDir := t.TempDir()
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
	msgs := subscribe(t, mosq.URL(), "edgedepth/"+robot+"/#")
	d := startDaemon(t, cfg)
	// Wait until the pipeline makes depth from the streams.
	waitFor(t, msgs, 60*time.Second, "depth", func(m message) bool { return m.Topic == "edgedepth/"+robot+"/depth" })

	key := filepath.Join(dataDir, "cmd.key")
	start := time.Now()
	code, out := runOnce(t, "cmd", "calibrate/chessboard", "board=9x6", "square_m=0.025", fmt.Sprintf("pairs=%d", pairs),
		"every_ms=150", "apply=true", "save=true", "--broker", mosq.URL(), "--robot", robot, "--key", key, "--timeout", "170s")
	took := time.Since(start)
	var reply chessReply
	if i := strings.Index(out, "{"); i < 0 || json.NewDecoder(strings.NewReader(out[i:])).Decode(&reply) != nil {
		t.Fatalf("calibrate/chessboard: exit %d, no JSON reply:\n%s", code, out)
	}
	r := reply.Result
	t.Logf("calibrate/chessboard took %.1f s: %d pairs used, %d rejected of %d seen; RMS %.4f px, epipolar %.4f px, "+
		"baseline %.5f m, fx %.2f; applied %v, saved %v, backup %s",
		took.Seconds(), r.PairsUsed, r.PairsRejected, r.PairsSeen, r.RMSPx, r.EpipolarPx, r.BaselineM, r.Fx, r.Applied, r.Saved, r.Backup)
	if code != 0 || !reply.OK {
		t.Fatalf("calibrate/chessboard: exit %d\n%s", code, out)
	}
	if r.PairsUsed < pairs {
		t.Errorf("%d pairs used, want at least %d", r.PairsUsed, pairs)
	}
	if r.RMSPx >= 1 {
		t.Errorf("RMS %.4f px, want < 1", r.RMSPx)
	}
	if math.Abs(r.BaselineM-wantBaselineM) > 0.1*wantBaselineM {
		t.Errorf("baseline %.5f m, want %.4f ± 10%%", r.BaselineM, wantBaselineM)
	}
	if !r.Applied || !r.Saved {
		t.Fatalf("applied %v (%s), saved %v (%s); want both", r.Applied, r.NotApplied, r.Saved, r.NotSaved)
	}
	if r.File != calPath {
		t.Errorf("saved to %q, want the configured %q", r.File, calPath)
	}
	if old, err := os.ReadFile(r.Backup); err != nil || string(old) != string(initialBytes) {
		t.Errorf("backup %q: %v; want the initial calibration file as it was", r.Backup, err)
	}
	saved, err := calib.Load(calPath)
	if err != nil {
		t.Fatalf("saved calibration: %v", err)
	}
	if math.Abs(saved.Baseline()-r.BaselineM) > 1e-6 || math.Abs(saved.K1[0]-r.Fx) > 1e-3 {
		t.Errorf("saved calibration: baseline %g fx %g; reply %g, %g", saved.Baseline(), saved.K1[0], r.BaselineM, r.Fx)
	}

	if err := d.stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
}
