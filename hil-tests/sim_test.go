package hiltests

import (
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera/sim"
)

// TestSimServeOverRTSP: `edgedepth sim serve` as a process, read by real ffmpeg over TCP
// and UDP, for both codecs; every eye decodes to frames of the configured size.
func TestSimServeOverRTSP(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal("ffmpeg not found: install the Debian package ffmpeg (make test-deps does)")
	}
	for _, tc := range []struct{ codec, transport string }{{"h264", "tcp"}, {"mjpeg", "udp"}} {
		t.Run(tc.codec+"-"+tc.transport, func(t *testing.T) {
			addr := freeAddr(t)
			d := startDaemonArgs(t, nil, "sim", "serve", "--addr", addr, "--codec", tc.codec,
				"--scene", "room", "--width", "320", "--height", "240", "--fps", "10")
			waitOutput(t, d, "right: rtsp://", 20*time.Second)
			for _, eye := range []string{"left", "right"} {
				out := t.TempDir()
				cmd := exec.Command(ffmpeg, "-v", "error", "-rtsp_transport", tc.transport, "-analyzeduration", "1000000",
					"-i", fmt.Sprintf("rtsp://%s/%s", addr, eye), "-frames:v", "3", "-fps_mode", "passthrough",
					filepath.Join(out, "f%d.png"))
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("ffmpeg reading %s: %v\n%s", eye, err, b)
				}
				for i := 1; i <= 3; i++ {
					f, err := os.Open(filepath.Join(out, fmt.Sprintf("f%d.png", i)))
					if err != nil {
						t.Fatalf("%s frame %d: %v", eye, i, err)
					}
					cfg, err := png.DecodeConfig(f)
					f.Close()
					if err != nil || cfg.Width != 320 || cfg.Height != 240 {
						t.Fatalf("%s frame %d: %dx%d (%v), want 320x240", eye, i, cfg.Width, cfg.Height, err)
					}
				}
			}
			if err := d.stop(syscall.SIGTERM, 10*time.Second); err != nil {
				t.Fatalf("sim serve exit after SIGTERM: %v", err)
			}
		})
	}
}

// TestSimWriteSequence: `edgedepth sim write` lays out the documented format and the
// simulator's reader reads it back.
func TestSimWriteSequence(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "seq")
	code, out := runOnce(t, "sim", "write", "--out", dir, "--frames", "3", "--scene", "street", "--width", "160", "--height", "96")
	if code != 0 {
		t.Fatalf("sim write: exit %d\n%s", code, out)
	}
	for _, f := range []string{"calib.yaml", "poses.txt", "left/000000.png", "right/000002.png", "depth/000001.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	seq, err := sim.OpenSequence(dir)
	if err != nil {
		t.Fatal(err)
	}
	if seq.Len() != 3 {
		t.Fatalf("sequence has %d frames, want 3", seq.Len())
	}
	f, err := seq.Frame(2)
	if err != nil || f.Truth == nil || f.Left.Width != 160 {
		t.Fatalf("frame 2: %v (truth %v)", err, f.Truth != nil)
	}
	poses, _ := os.ReadFile(filepath.Join(dir, "poses.txt"))
	lines := 0
	for _, l := range strings.Split(strings.TrimSpace(string(poses)), "\n") {
		if !strings.HasPrefix(l, "#") {
			if n := len(strings.Fields(l)); n != 8 {
				t.Fatalf("TUM pose line %q has %d fields, want 8", l, n)
			}
			lines++
		}
	}
	if lines != 3 {
		t.Fatalf("poses.txt has %d poses, want 3", lines)
	}
}

// waitOutput waits until the process has printed want (stdout or stderr).
func waitOutput(t testing.TB, d *daemon, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(d.out.String(), want) {
			return
		}
		select {
		case <-d.done:
			t.Fatalf("process exited (%v) before printing %q", d.err, want)
		case <-time.After(50 * time.Millisecond): // polling another process's output
		}
	}
	t.Fatalf("process did not print %q within %s", want, timeout)
}
