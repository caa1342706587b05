package rtsptest

import (
	"context"
	_ "embed"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// gstScript is GStreamer's RTSP server, driven through python3-gi.
//
//go:embed gst_rtsp_server.py
var gstScript []byte

// debianPython is the interpreter with python3-gi: a python3 earlier on PATH (a
// virtualenv, a newer build) usually lacks gi.
const debianPython = "/usr/bin/python3"

// gstPackages are the Debian packages StartGStreamer needs.
const gstPackages = "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad"

// gstStartTimeout bounds how long a GStreamer server may take to listen (python and
// GStreamer's plugin registry load in about a second on an idle machine; CI is not idle).
const gstStartTimeout = 30 * time.Second

// Codec names for GstOptions.Codec and PublishFFmpeg.
const (
	CodecH264  = "h264"
	CodecH265  = "h265"
	CodecMJPEG = "mjpeg"
)

// GstOptions configures StartGStreamer. The zero value of a field selects its default.
type GstOptions struct {
	// Codec is "h264" (default; x264enc), "h265" (x265enc) or "mjpeg" (jpegenc). No
	// B-frames; an IDR every second with its parameter sets in front.
	Codec string
	// Width and Height of the pictures in pixels. Default 320x240. MJPEG wants
	// multiples of 8 up to 2040.
	Width, Height int
	// FPS is the frame rate in frames per second. Default 10.
	FPS int
	// Pattern is videotestsrc's pattern: "ball" (default; a moving ball), "smpte",
	// "snow", ... (gst-inspect-1.0 videotestsrc lists them).
	Pattern string
	// Paths are the URL paths served, without the leading slash, each a live pipeline
	// of its own. Default "left" and "right": two independent cameras.
	Paths []string
}

func (o GstOptions) withDefaults() GstOptions {
	if o.Codec == "" {
		o.Codec = CodecH264
	}
	if o.Width == 0 {
		o.Width = 320
	}
	if o.Height == 0 {
		o.Height = 240
	}
	if o.FPS == 0 {
		o.FPS = 10
	}
	if o.Pattern == "" {
		o.Pattern = "ball"
	}
	if len(o.Paths) == 0 {
		o.Paths = []string{"left", "right"}
	}
	return o
}

func (o GstOptions) validate() error {
	switch o.Codec {
	case CodecH264, CodecH265, CodecMJPEG:
	default:
		return fmt.Errorf("Codec %q: want %q, %q or %q", o.Codec, CodecH264, CodecH265, CodecMJPEG)
	}
	if o.Width <= 0 || o.Height <= 0 || o.FPS <= 0 {
		return fmt.Errorf("size %dx%d at %d fps: want positive numbers", o.Width, o.Height, o.FPS)
	}
	if o.Codec == CodecMJPEG && (o.Width%8 != 0 || o.Height%8 != 0 || o.Width > 2040 || o.Height > 2040) {
		return fmt.Errorf("MJPEG over RTP carries sizes in multiples of 8 up to 2040, not %dx%d", o.Width, o.Height)
	}
	for _, p := range o.Paths {
		if p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, " ?#") {
			return fmt.Errorf("path %q: want a URL path without the leading slash", p)
		}
	}
	return nil
}

// GstServer is a running GStreamer RTSP server (gst-rtsp-server), a server that is not
// ours. It sends RTCP sender reports (rtpbin's default, the first a few seconds after
// PLAY) with NTP times from the system clock.
type GstServer struct {
	t      testing.TB
	opts   GstOptions
	script string // path of the script written for this test

	mu   sync.Mutex
	port int      // fixed after the first start: Restart comes back on it
	proc *process // nil while stopped
}

// StartGStreamer starts GStreamer's RTSP server on a free loopback port serving
// opts.Paths, and returns once it listens. The test's cleanup stops it.
func StartGStreamer(t testing.TB, opts GstOptions) *GstServer {
	t.Helper()
	requireProgram(t, debianPython, "python3 (with "+gstPackages+")")
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		t.Fatalf("rtsptest: StartGStreamer: %v", err)
	}
	script := filepath.Join(t.TempDir(), "gst_rtsp_server.py")
	if err := os.WriteFile(script, gstScript, 0o644); err != nil {
		t.Fatalf("rtsptest: %v", err)
	}
	g := &GstServer{t: t, opts: opts, script: script}
	t.Cleanup(g.Stop)
	if err := g.start(); err != nil {
		t.Fatalf("rtsptest: StartGStreamer: %v", err)
	}
	return g
}

// start runs the server on g.port (0 the first time) and waits for its "PORT n" line.
func (g *GstServer) start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proc != nil {
		return nil
	}
	deadline := time.Now().Add(gstStartTimeout)
	for {
		var bound atomic.Int64
		args := append([]string{g.script, strconv.Itoa(g.port), g.opts.Codec, strconv.Itoa(g.opts.Width),
			strconv.Itoa(g.opts.Height), strconv.Itoa(g.opts.FPS), g.opts.Pattern}, g.opts.Paths...)
		cmd := exec.Command(debianPython, args...)
		// GStreamer's warnings only; no colours in the captured stderr.
		cmd.Env = append(os.Environ(), "GST_DEBUG=*:2", "GST_DEBUG_NO_COLOR=1")
		p, err := startProcess("gst-rtsp-server", cmd, func(line string) {
			if n, ok := strings.CutPrefix(line, "PORT "); ok {
				if port, err := strconv.Atoi(n); err == nil {
					bound.Store(int64(port))
				}
			}
		})
		if err != nil {
			return err
		}
		err = waitFor(context.Background(), p, time.Until(deadline), 20*time.Millisecond,
			func() bool { return bound.Load() != 0 })
		if err == nil {
			g.port, g.proc = int(bound.Load()), p
			return nil
		}
		p.kill()
		// On Restart the old server's port may linger for a moment (its sockets are
		// closed by the kernel after the kill): try again until the deadline.
		if g.port == 0 || time.Now().After(deadline) || !strings.Contains(p.stderr.String(), "cannot listen") {
			return fmt.Errorf("%s on port %d: %v; %s%s", g.opts.Codec, g.port, err, p.describe(), gstHint(p))
		}
	}
}

// gstHint names the Debian packages when the script failed to import GStreamer.
func gstHint(p *process) string {
	s := p.stderr.String()
	if strings.Contains(s, "No module named 'gi'") || strings.Contains(s, "Namespace GstRtspServer not available") ||
		strings.Contains(s, "no element") {
		return "\ninstall the Debian packages " + gstPackages
	}
	return ""
}

// URL returns rtsp://127.0.0.1:PORT/path (path without the leading slash).
func (g *GstServer) URL(path string) string {
	return "rtsp://" + g.Addr() + "/" + strings.TrimPrefix(path, "/")
}

// Addr is the server's host:port; it stays the same across Restart.
func (g *GstServer) Addr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(g.port))
}

// Stop ends the server gracefully (SIGTERM: its clients get their TCP connections
// closed) and waits for it. Stopping a stopped server does nothing.
func (g *GstServer) Stop() { g.end((*process).stop) }

// Kill ends the server with SIGKILL, like a crash or a power cut of the camera, and
// waits for it.
func (g *GstServer) Kill() { g.end(func(p *process, _ syscall.Signal) { p.kill() }) }

func (g *GstServer) end(how func(*process, syscall.Signal)) {
	g.mu.Lock()
	p := g.proc
	g.proc = nil
	g.mu.Unlock()
	if p != nil {
		how(p, syscall.SIGTERM)
	}
}

// Restart stops the server if it runs, and starts it again on the same port; it
// returns once it listens. The test fails if it cannot, so call it from the test's
// goroutine.
func (g *GstServer) Restart() {
	g.t.Helper()
	g.Stop()
	if err := g.start(); err != nil {
		g.t.Fatalf("rtsptest: GStreamer restart: %v", err)
	}
}

// Running reports whether the server process is alive (it has not been stopped or
// killed, and has not died).
func (g *GstServer) Running() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.proc != nil && !g.proc.exited()
}
