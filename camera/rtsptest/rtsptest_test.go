package rtsptest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/rtspserve"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "rtsptest: goroutines leaked: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkLeaks registers, first, a cleanup that runs after every other cleanup of the
// test (peers stopped, servers shut down) and fails the test if goroutines are left.
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

type probed struct {
	CodecName string `json:"codec_name"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

// ffprobe reads url's first video stream with the real ffprobe.
func ffprobe(t *testing.T, url, transport string) probed {
	t.Helper()
	bin := requireProgram(t, "ffprobe", "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-v", "error", "-rtsp_transport", transport,
		"-analyzeduration", "1000000", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height", "-of", "json", url).Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v\n%s", url, err, stderr)
	}
	var res struct{ Streams []probed }
	if err := json.Unmarshal(out, &res); err != nil || len(res.Streams) != 1 {
		t.Fatalf("ffprobe %s: %v, output %s", url, err, out)
	}
	return res.Streams[0]
}

func readCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ffprobeName is ffprobe's name of each codec.
var ffprobeName = map[string]string{CodecH264: "h264", CodecH265: "hevc", CodecMJPEG: "mjpeg"}

// gortsplibName is gortsplib's.
var gortsplibName = map[string]string{CodecH264: "H264", CodecH265: "H265", CodecMJPEG: "M-JPEG"}

func TestGStreamerServesEachCodec(t *testing.T) {
	for _, codec := range []string{CodecH264, CodecH265, CodecMJPEG} {
		t.Run(codec, func(t *testing.T) {
			checkLeaks(t)
			g := StartGStreamer(t, GstOptions{Codec: codec, Width: 320, Height: 240, FPS: 10})
			for _, path := range []string{"left", "right"} {
				want := probed{ffprobeName[codec], 320, 240}
				if got := ffprobe(t, g.URL(path), "tcp"); got != want {
					t.Errorf("%s: ffprobe says %+v, want %+v", path, got, want)
				}
			}
			r, err := Read(readCtx(t), g.URL("left"), "udp", Count(20))
			if err != nil {
				t.Fatalf("read over UDP: %v", err)
			}
			if r.Codec != gortsplibName[codec] {
				t.Errorf("gortsplib sees %q, want %q", r.Codec, gortsplibName[codec])
			}
		})
	}
}

// TestGStreamerTimestampsAndRestart checks what the capture-time code relies on:
// GStreamer's server sends RTCP sender reports whose NTP times are the wall clock, and
// RTP timestamps that grow at 90 kHz; then that a killed server comes back on its port.
func TestGStreamerTimestampsAndRestart(t *testing.T) {
	checkLeaks(t)
	g := StartGStreamer(t, GstOptions{Codec: CodecMJPEG, FPS: 10})
	url := g.URL("right")
	r, err := Read(readCtx(t), url, "tcp", func(p []Packet) bool { return len(p) > 0 && p[len(p)-1].HasNTP })
	if err != nil {
		t.Fatalf("no sender report: %v", err)
	}
	first, last := r.Packets[0], r.Packets[len(r.Packets)-1]
	if d := last.Received.Sub(last.NTP); d < -100*time.Millisecond || d > time.Second {
		t.Errorf("NTP time %v, received at %v: %v apart, want the wall clock", last.NTP, last.Received, d)
	}
	elapsed := last.Received.Sub(first.Received).Seconds()
	ticks := float64(last.Timestamp - first.Timestamp)
	if rate := ticks / elapsed; elapsed > 1 && (rate < 80e3 || rate > 100e3) {
		t.Errorf("RTP clock runs at %.0f Hz over %.1f s, want 90 kHz", rate, elapsed)
	}
	t.Logf("first sender report %.1f s after the first packet", elapsed)

	addr := g.Addr()
	g.Kill()
	if g.Running() {
		t.Fatal("Running after Kill")
	}
	if _, err := Describe(readCtx(t), url); err == nil {
		t.Fatal("DESCRIBE answered after Kill")
	}
	g.Restart()
	if g.Addr() != addr {
		t.Errorf("restarted on %s, was %s", g.Addr(), addr)
	}
	if _, err := Read(readCtx(t), url, "tcp", Count(10)); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// TestFFmpegPublishes publishes each codec with the real ffmpeg into our server (no
// stereo source: publish paths only) and reads it back with ffprobe and gortsplib,
// over TCP and UDP; then the publisher leaves and the path is gone.
func TestFFmpegPublishes(t *testing.T) {
	for _, codec := range []string{CodecH264, CodecH265, CodecMJPEG} {
		t.Run(codec, func(t *testing.T) {
			checkLeaks(t)
			s := StartServer(t, rtspserve.Config{AllowPublish: true}, nil)
			pub := PublishFFmpeg(t, s.PathURL("cam1"), codec, FFmpegOptions{})
			if got, want := ffprobe(t, pub.URL(), "tcp"), (probed{ffprobeName[codec], 320, 240}); got != want {
				t.Errorf("ffprobe says %+v, want %+v", got, want)
			}
			for _, transport := range []string{"tcp", "udp"} {
				r, err := Read(readCtx(t), pub.URL(), transport, Count(20))
				if err != nil {
					t.Fatalf("read over %s: %v", transport, err)
				}
				if r.Codec != gortsplibName[codec] {
					t.Errorf("%s: gortsplib sees %q, want %q", transport, r.Codec, gortsplibName[codec])
				}
			}

			// A reader playing when the publisher leaves sees its stream end.
			ctx := readCtx(t)
			ended := make(chan error, 1)
			reading := make(chan struct{})
			var once sync.Once
			go func() {
				_, err := Read(ctx, pub.URL(), "tcp", func(p []Packet) bool {
					if len(p) > 0 {
						once.Do(func() { close(reading) })
					}
					return false
				})
				ended <- err
			}()
			<-reading
			pub.Stop()
			if err := <-ended; err == nil || ctx.Err() != nil {
				t.Errorf("reader after the publisher left: %v (context: %v), want the stream ended by the server", err, ctx.Err())
			}
			if _, err := Describe(ctx, pub.URL()); err == nil || !strings.Contains(err.Error(), "404") {
				t.Errorf("DESCRIBE after the publisher left: %v, want 404", err)
			}
		})
	}
}

// TestFFmpegPublishesOverUDPBesideEyes publishes next to a stereo source, over UDP.
func TestFFmpegPublishesOverUDPBesideEyes(t *testing.T) {
	checkLeaks(t)
	s := StartServer(t, rtspserve.Config{AllowPublish: true, Codec: rtspserve.CodecMJPEG}, newFlatSource(64, 48))
	pub := PublishFFmpeg(t, s.PathURL("cam2"), CodecH264, FFmpegOptions{Transport: "udp"})
	if _, err := Read(readCtx(t), pub.URL(), "tcp", Count(20)); err != nil {
		t.Fatalf("published stream: %v", err)
	}
	if _, err := Read(readCtx(t), s.URL("left"), "tcp", Count(5)); err != nil {
		t.Fatalf("left eye beside a published stream: %v", err)
	}
}

func TestPublishRefused(t *testing.T) {
	checkLeaks(t)
	requireProgram(t, "ffmpeg", "ffmpeg")
	for _, tc := range []struct {
		name  string
		allow bool
		path  string
	}{
		{"publishing off", false, "cam1"},
		{"an eye's path", true, "left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := StartServer(t, rtspserve.Config{AllowPublish: tc.allow, Codec: rtspserve.CodecMJPEG}, newFlatSource(64, 48))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
				"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-frames:v", "5", "-c:v", "mjpeg",
				"-huffman", "default", "-pix_fmt", "yuvj420p", "-f", "rtsp", "-rtsp_transport", "tcp",
				s.PathURL(tc.path)).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "403") {
				t.Errorf("ffmpeg publishing to /%s: %v, %s; want 403 Forbidden", tc.path, err, out)
			}
		})
	}
}

// TestLateEye checks Config.Late as a client sees it: the late eye's frames arrive
// Delay after the other eye's frames of the same source pair and, unless TransportOnly,
// carry capture times (RTP and NTP alike) Delay later.
func TestLateEye(t *testing.T) {
	const delay = 100 * time.Millisecond
	for _, transportOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("TransportOnly=%v", transportOnly), func(t *testing.T) {
			checkLeaks(t)
			s := StartServer(t, rtspserve.Config{Codec: rtspserve.CodecMJPEG,
				Late: rtspserve.LateEye{Eye: "right", Delay: delay, TransportOnly: transportOnly}}, newFlatSource(64, 48))
			// Frames (marker packets) with NTP times, 2 s of them on both eyes.
			until := func(p []Packet) bool {
				n := 0
				for _, q := range p {
					if q.Marker && q.HasNTP {
						n++
					}
				}
				return n >= 60
			}
			var left, right Reading
			var lerr, rerr error
			var wg sync.WaitGroup
			ctx := readCtx(t)
			wg.Go(func() { right, rerr = Read(ctx, s.URL("right"), "tcp", until) })
			left, lerr = Read(ctx, s.URL("left"), "tcp", until)
			wg.Wait()
			if lerr != nil || rerr != nil {
				t.Fatalf("left: %v; right: %v", lerr, rerr)
			}
			type frame struct {
				ntp      time.Time
				received time.Time
			}
			frames := func(r Reading) map[uint32]frame {
				m := map[uint32]frame{}
				for _, p := range r.Packets {
					if p.Marker && p.HasNTP {
						m[p.Timestamp] = frame{p.NTP, p.Received}
					}
				}
				return m
			}
			lf, rf := frames(left), frames(right)
			shift := uint32(0) // RTP ticks the late eye's capture times move by
			wantNTP := time.Duration(0)
			if !transportOnly {
				shift, wantNTP = uint32(delay.Seconds()*90000), delay
			}
			matched := 0
			for ts, l := range lf {
				r, ok := rf[ts+shift]
				if !ok {
					continue
				}
				matched++
				// Each eye's NTP time comes from its own sender reports, whose 32-bit
				// fraction of a second rounds: equal within microseconds.
				if d := r.ntp.Sub(l.ntp) - wantNTP; d < -time.Millisecond || d > time.Millisecond {
					t.Errorf("pair at RTP %d: right NTP %v after left, want %v", ts, d+wantNTP, wantNTP)
				}
				// Arrival: the late eye's copy of a pair comes Delay after the other's
				// (loose: both readers share two busy cores).
				if d := r.received.Sub(l.received); d < delay-40*time.Millisecond || d > delay+80*time.Millisecond {
					t.Errorf("pair at RTP %d: right arrived %v after left, want about %v", ts, d, delay)
				}
			}
			if matched < 20 {
				t.Errorf("only %d frames matched across the eyes", matched)
			}
		})
	}
}

// TestUDPLoss checks that Config.UDPLoss makes real gaps in the RTP sequence numbers a
// UDP client receives, and leaves TCP whole.
func TestUDPLoss(t *testing.T) {
	checkLeaks(t)
	s := StartServer(t, rtspserve.Config{Codec: rtspserve.CodecMJPEG,
		UDPLoss: rtspserve.UDPLoss{Fraction: 0.2, Seed: 1}}, newFlatSource(320, 240))
	gaps := func(r Reading) (lost int) {
		for i := 1; i < len(r.Packets); i++ {
			lost += int(r.Packets[i].SequenceNumber-r.Packets[i-1].SequenceNumber) - 1
		}
		return lost
	}
	r, err := Read(readCtx(t), s.URL("left"), "udp", Count(300))
	if err != nil {
		t.Fatalf("udp: %v", err)
	}
	lost := gaps(r)
	if r.Lost < uint64(lost) { // gortsplib goes on counting until the client closes
		t.Errorf("UDP: gaps of %d packets, gortsplib counted only %d", lost, r.Lost)
	}
	if frac := float64(lost) / float64(lost+len(r.Packets)); frac < 0.1 || frac > 0.3 {
		t.Errorf("UDP: %d of %d packets lost (%.2f), want about 0.2", lost, lost+len(r.Packets), frac)
	}
	if d := s.Stats().UDPDropped; d < uint64(lost) {
		t.Errorf("Stats.UDPDropped %d, fewer than the %d packets the reader lost", d, lost)
	}
	r, err = Read(readCtx(t), s.URL("left"), "tcp", Count(100))
	if err != nil {
		t.Fatalf("tcp: %v", err)
	}
	if lost := gaps(r); lost != 0 {
		t.Errorf("TCP: %d packets lost, want none", lost)
	}
}

// flatSource is a stereo source of noisy grey pictures at 30 pairs a second: what the
// fault tests need is a stream, not a scene. The noise makes MJPEG frames several
// packets long.
type flatSource struct{ w, h int }

func newFlatSource(w, h int) *flatSource { return &flatSource{w, h} }

func (s *flatSource) Name() string { return "flat test source" }

func (s *flatSource) Run(ctx context.Context, emit func(camera.StereoFrame)) error {
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	var x uint32 = 1
	for seq := uint64(0); ; seq++ {
		left, right := camera.NewImage(s.w, s.h), camera.NewImage(s.w, s.h)
		for i := range left.Pix {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			left.Pix[i], right.Pix[i] = byte(x), byte(x>>8)
		}
		emit(camera.StereoFrame{Seq: seq, CaptureTime: time.Now(), Left: left, Right: right})
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
