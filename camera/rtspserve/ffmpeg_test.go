package rtspserve

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

// These tests read the server with the real ffmpeg and ffprobe: the peers the RTSP
// ingest and the operators' tools are tested against.

func requireFFmpeg(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found (%v): install the Debian package ffmpeg (apt-get install ffmpeg)", bin, err)
		}
	}
}

func runTool(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s %q: %v\n%s", name, args, err, stderr)
	}
	return out
}

// probeMicros shortens ffmpeg's stream analysis (5 s by default) to 1 s: the SDP and the
// first pictures say all there is to know.
const probeMicros = "1000000"

type probedStream struct {
	CodecName string `json:"codec_name"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

func ffprobe(t *testing.T, transport, url string) probedStream {
	t.Helper()
	out := runTool(t, "ffprobe", "-v", "error", "-rtsp_transport", transport, "-analyzeduration", probeMicros,
		"-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height", "-of", "json", url)
	var res struct{ Streams []probedStream }
	if err := json.Unmarshal(out, &res); err != nil || len(res.Streams) != 1 {
		t.Fatalf("ffprobe %s: %v, output %s", url, err, out)
	}
	return res.Streams[0]
}

func TestFFprobeSeesBothEyes(t *testing.T) {
	requireFFmpeg(t)
	for _, tc := range []struct{ codec, transport, want string }{
		{CodecH264, "tcp", "h264"},
		{CodecH264, "udp", "h264"},
		{CodecMJPEG, "tcp", "mjpeg"},
		{CodecMJPEG, "udp", "mjpeg"},
	} {
		t.Run(tc.codec+"/"+tc.transport, func(t *testing.T) {
			checkLeaks(t)
			s := start(t, Config{Codec: tc.codec, GOP: 10}, newTestSource(320, 240, framePer))
			for _, eye := range []string{"left", "right"} {
				got := ffprobe(t, tc.transport, s.URL(eye))
				if want := (probedStream{tc.want, 320, 240}); got != want {
					t.Errorf("%s: ffprobe says %+v, want %+v", eye, got, want)
				}
			}
		})
	}
}

// TestFFmpegDecodesWhatWasRendered has ffmpeg decode frames of each eye to PNG and
// compares each with the pair it carries (read from its barcode), rendered again.
func TestFFmpegDecodesWhatWasRendered(t *testing.T) {
	requireFFmpeg(t)
	for _, cdc := range []string{CodecH264, CodecMJPEG} {
		t.Run(cdc, func(t *testing.T) {
			checkLeaks(t)
			src := newTestSource(320, 240, framePer)
			s := start(t, Config{Codec: cdc, GOP: 10, BitrateKbps: 3000}, src)
			dir := t.TempDir()
			for e, eye := range []string{"left", "right"} {
				pattern := filepath.Join(dir, eye+"%d.png")
				// passthrough: one PNG per picture received, none duplicated to a frame rate.
				runTool(t, "ffmpeg", "-v", "error", "-nostdin", "-rtsp_transport", "tcp", "-analyzeduration", probeMicros,
					"-i", s.URL(eye), "-frames:v", "5", "-fps_mode", "passthrough", "-f", "image2", pattern)
				for i := 1; i <= 5; i++ {
					img := readPNG(t, fmt.Sprintf(pattern, i))
					seq := readSeq(img)
					want := src.patternAt(seq).render(seq, e)
					other := src.patternAt(seq).render(seq, 1-e)
					p, q := psnr(want, img), psnr(other, img)
					// Loose: ffmpeg converts YUV to RGB its own way.
					if p < 25 || p < q+3 {
						t.Errorf("%s frame %d (seq %d): PSNR %.1f dB against its render, %.1f against the other eye's", eye, i, seq, p, q)
					} else {
						t.Logf("%s frame %d (seq %d): PSNR %.1f dB (other eye %.1f)", eye, i, seq, p, q)
					}
				}
			}
		})
	}
}

func readPNG(t *testing.T, path string) camera.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return camera.FromImage(im)
}
