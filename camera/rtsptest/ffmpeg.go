package rtsptest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
)

// publishTimeout bounds how long ffmpeg may take to start publishing.
const publishTimeout = 30 * time.Second

// FFmpegOptions configures PublishFFmpeg. The zero value of a field selects its default.
type FFmpegOptions struct {
	// Width and Height of the pictures in pixels. Default 320x240.
	Width, Height int
	// FPS is the frame rate in frames per second. Default 10.
	FPS int
	// Transport is how ffmpeg sends RTP: "tcp" (default; interleaved in the RTSP
	// connection) or "udp".
	Transport string
}

func (o FFmpegOptions) withDefaults() FFmpegOptions {
	if o.Width == 0 {
		o.Width = 320
	}
	if o.Height == 0 {
		o.Height = 240
	}
	if o.FPS == 0 {
		o.FPS = 10
	}
	if o.Transport == "" {
		o.Transport = "tcp"
	}
	return o
}

// FFmpegPublisher is an ffmpeg process publishing a test pattern (lavfi testsrc2: a
// moving pattern with a frame counter) to an RTSP server with ANNOUNCE and RECORD.
type FFmpegPublisher struct {
	url string

	mu   sync.Mutex
	proc *process // nil once stopped
}

// ffmpegCodecArgs are the encoder arguments of each codec: real-time presets and no
// B-frames (ffmpeg's x264/x265 defaults use them; the PTS of a stream with B-frames is
// not monotonic), an IDR every second. ffmpeg's MJPEG encoder needs the standard
// Huffman tables for RTP (RFC 2435 has no way to send others) and full-range YUV.
func ffmpegCodecArgs(codec string, fps int) ([]string, error) {
	gop := strconv.Itoa(fps)
	switch codec {
	case CodecH264:
		return []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0",
			"-g", gop, "-pix_fmt", "yuv420p"}, nil
	case CodecH265:
		return []string{"-c:v", "libx265", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0",
			"-g", gop, "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"}, nil
	case CodecMJPEG:
		return []string{"-c:v", "mjpeg", "-huffman", "default", "-pix_fmt", "yuvj420p", "-q:v", "5"}, nil
	}
	return nil, fmt.Errorf("codec %q: want %q, %q or %q", codec, CodecH264, CodecH265, CodecMJPEG)
}

// PublishFFmpeg starts ffmpeg publishing a live test pattern in codec ("h264", "h265",
// "mjpeg") to url, such as an rtspserve.Server with AllowPublish, and returns once the
// server describes the stream (DESCRIBE answers 200). The test's cleanup stops it.
func PublishFFmpeg(t testing.TB, url, codec string, opts FFmpegOptions) *FFmpegPublisher {
	t.Helper()
	bin := requireProgram(t, "ffmpeg", "ffmpeg")
	opts = opts.withDefaults()
	codecArgs, err := ffmpegCodecArgs(codec, opts.FPS)
	if err != nil {
		t.Fatalf("rtsptest: PublishFFmpeg: %v", err)
	}
	if opts.Transport != "tcp" && opts.Transport != "udp" {
		t.Fatalf("rtsptest: PublishFFmpeg: Transport %q: want tcp or udp", opts.Transport)
	}
	u, err := base.ParseURL(url)
	if err != nil {
		t.Fatalf("rtsptest: PublishFFmpeg: %v", err)
	}
	// -re: read the generated input at its frame rate, as a camera produces it.
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "warning", "-re", "-f", "lavfi",
		"-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", opts.Width, opts.Height, opts.FPS)}
	args = append(args, codecArgs...)
	args = append(args, "-f", "rtsp", "-rtsp_transport", opts.Transport, url)
	p, err := startProcess("ffmpeg", exec.Command(bin, args...), nil)
	if err != nil {
		t.Fatalf("rtsptest: PublishFFmpeg: %v", err)
	}
	pub := &FFmpegPublisher{url: url, proc: p}
	t.Cleanup(pub.Stop)

	ctx := context.Background()
	if err := waitFor(ctx, p, publishTimeout, 50*time.Millisecond, func() bool {
		_, err := Describe(ctx, u.String())
		return err == nil
	}); err != nil {
		t.Fatalf("rtsptest: ffmpeg publishing %s to %s: %v; %s", codec, url, err, p.describe())
	}
	return pub
}

// URL is where the publisher publishes.
func (p *FFmpegPublisher) URL() string { return p.url }

// Stop ends ffmpeg gracefully (SIGINT: it sends TEARDOWN) and waits for it.
func (p *FFmpegPublisher) Stop() { p.end((*process).stop) }

// Kill ends ffmpeg with SIGKILL (no TEARDOWN; over TCP the server sees the connection
// close) and waits for it.
func (p *FFmpegPublisher) Kill() { p.end(func(pr *process, _ syscall.Signal) { pr.kill() }) }

func (p *FFmpegPublisher) end(how func(*process, syscall.Signal)) {
	p.mu.Lock()
	pr := p.proc
	p.proc = nil
	p.mu.Unlock()
	if pr != nil {
		how(pr, syscall.SIGINT)
	}
}

// Describe sends one DESCRIBE to rawURL and returns the session description, or an
// error (a *base.Response status other than 200 comes back as an error naming it).
func Describe(ctx context.Context, rawURL string) (*description.Session, error) {
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < c.ReadTimeout {
		c.ReadTimeout, c.WriteTimeout = max(time.Until(dl), time.Millisecond), max(time.Until(dl), time.Millisecond)
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		return nil, err
	}
	if desc == nil {
		return nil, errors.New("describe: no session description")
	}
	return desc, nil
}
