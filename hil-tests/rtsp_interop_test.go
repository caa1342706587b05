package hiltests

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/rtsp"
	"github.com/edgedepth/edgedepth/camera/rtspserve"
	"github.com/edgedepth/edgedepth/camera/rtsptest"
)

// readFrames runs one RTSP camera until n frames arrived or timeout, and returns them.
func readFrames(t *testing.T, cfg rtsp.Config, n int, timeout time.Duration) ([]camera.Frame, *rtsp.Camera) {
	t.Helper()
	cam, err := rtsp.New("test", cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var frames []camera.Frame
	err = cam.Run(ctx, func(f camera.Frame) {
		frames = append(frames, f)
		if len(frames) == n {
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("camera: %v (after %d frames)", err, len(frames))
	}
	if len(frames) < n {
		t.Fatalf("%d frames within %s, want %d; stats %+v", len(frames), timeout, n, cam.Stats())
	}
	return frames, cam
}

// checkStream asserts the frames' size, monotonic capture times and rate.
func checkStream(t *testing.T, frames []camera.Frame, w, h int, fps float64) {
	t.Helper()
	for i, f := range frames {
		if f.Image.Width != w || f.Image.Height != h {
			t.Fatalf("frame %d is %dx%d, want %dx%d", i, f.Image.Width, f.Image.Height, w, h)
		}
		if i > 0 && !f.CaptureTime.After(frames[i-1].CaptureTime) {
			t.Fatalf("capture time of frame %d (%v) not after frame %d's (%v)", i, f.CaptureTime, i-1, frames[i-1].CaptureTime)
		}
	}
	// Capture times span the stream's rate: (n-1) periods, give or take a period of
	// jitter and a dropped frame at the switch to NTP time.
	n := len(frames)
	span := frames[n-1].CaptureTime.Sub(frames[0].CaptureTime).Seconds()
	want := float64(n-1) / fps
	if span < want*0.8 || span > want*1.5+0.2 {
		t.Fatalf("%d frames span %.2f s of capture time, want about %.2f s at %g fps", n, span, want, fps)
	}
}

// TestIngestFromGStreamer: our RTSP camera against GStreamer's RTSP server, a server
// that is not ours, for each codec the issue names.
func TestIngestFromGStreamer(t *testing.T) {
	for _, codec := range []string{"h264", "h265", "mjpeg"} {
		t.Run(codec, func(t *testing.T) {
			gst := rtsptest.StartGStreamer(t, rtsptest.GstOptions{Codec: codec, Width: 320, Height: 240, FPS: 10})
			frames, cam := readFrames(t, rtsp.Config{URL: gst.URL("left"), Transport: "auto"}, 25, 30*time.Second)
			checkStream(t, frames, 320, 240, 10)
			if st := cam.Stats(); st.Corrupt != 0 {
				t.Errorf("corrupt frames on a clean loopback stream: %+v", st)
			}
		})
	}
}

// TestIngestFromFFmpegPublisher: the ffmpeg command-line tool publishes into the sim's
// RTSP server (RECORD); our camera reads the relayed stream.
func TestIngestFromFFmpegPublisher(t *testing.T) {
	for _, codec := range []string{"h264", "h265", "mjpeg"} {
		t.Run(codec, func(t *testing.T) {
			srv := rtsptest.StartServer(t, rtspserve.Config{AllowPublish: true}, nil)
			rtsptest.PublishFFmpeg(t, srv.PathURL("cam1"), codec, rtsptest.FFmpegOptions{Width: 320, Height: 240, FPS: 10})
			frames, _ := readFrames(t, rtsp.Config{URL: srv.PathURL("cam1"), Transport: "tcp"}, 20, 30*time.Second)
			checkStream(t, frames, 320, 240, 10)
		})
	}
}

// TestIngestSurvivesUDPLoss: 5 % of RTP datagrams lost on a real UDP socket: frames keep
// arriving, damaged ones are counted, nothing crashes, capture times stay monotonic.
func TestIngestSurvivesUDPLoss(t *testing.T) {
	srv := rtsptest.StartServer(t, rtspserve.Config{AllowPublish: true, UDPLoss: rtspserve.UDPLoss{Fraction: 0.05, Seed: 1}}, nil)
	rtsptest.PublishFFmpeg(t, srv.PathURL("cam1"), "h264", rtsptest.FFmpegOptions{Width: 320, Height: 240, FPS: 10})
	frames, cam := readFrames(t, rtsp.Config{URL: srv.PathURL("cam1"), Transport: "udp"}, 30, 45*time.Second)
	for i := 1; i < len(frames); i++ {
		if !frames[i].CaptureTime.After(frames[i-1].CaptureTime) {
			t.Fatalf("capture times not monotonic at frame %d", i)
		}
	}
	st := cam.Stats()
	if st.LostPackets == 0 {
		t.Fatalf("no lost packets counted under 5%% UDP loss: %+v", st)
	}
	t.Logf("under 5%% loss: %+v", st)
}

// TestProbeCommand: `edgedepth probe --json` against GStreamer's RTSP server reports both
// cameras' codec and size and the pairs it made.
func TestProbeCommand(t *testing.T) {
	gst := rtsptest.StartGStreamer(t, rtsptest.GstOptions{Codec: "h264", Width: 320, Height: 240, FPS: 10})
	code, out := runOnce(t, "probe", "--seconds", "4", "--json", "--transport", "tcp", gst.URL("left"), gst.URL("right"))
	if code != 0 {
		t.Fatalf("probe: exit %d\n%s", code, out)
	}
	var rep struct {
		Cameras []struct {
			Width, Height int
			FPS           float64
			Details       map[string]any
		}
		Pairs uint64
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep); err != nil {
		t.Fatalf("probe --json output: %v\n%s", err, out)
	}
	if len(rep.Cameras) != 2 || rep.Pairs < 10 {
		t.Fatalf("probe saw %d cameras and %d pairs in 4 s at 10 fps:\n%s", len(rep.Cameras), rep.Pairs, out)
	}
	for _, c := range rep.Cameras {
		if c.Width != 320 || c.Height != 240 || c.Details["codec"] != "h264" || c.FPS < 5 {
			t.Fatalf("camera report %+v, want 320x240 h264 at about 10 fps", c)
		}
	}
}
