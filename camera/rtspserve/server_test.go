package rtspserve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmjpeg"
	"github.com/pion/rtp"
	"go.uber.org/goleak"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/codec"
)

func TestMain(m *testing.M) {
	// libav's warnings and errors to stderr, not libx264's banner at every encoder open.
	codec.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "rtspserve: goroutines leaked: %v\n", err)
			code = 1
		}
		if n := codec.Live(); n != 0 {
			fmt.Fprintf(os.Stderr, "rtspserve: %d H.264 encoders not closed\n", n)
			code = 1
		}
	}
	os.Exit(code)
}

// checkLeaks registers, first, a cleanup that runs after every other cleanup of the test
// (the server's shutdown included) and fails the test if goroutines are left.
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// runningServer is a Server whose Run goroutine the test owns.
type runningServer struct {
	*Server
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's result, valid once done is closed
}

// start runs a server for src and waits until it is Ready. The test's cleanup stops it
// and fails the test if Run returned an error.
func start(t *testing.T, cfg Config, src camera.Source) *runningServer {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := New(cfg, src, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningServer{Server: s, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rs.done)
		rs.err = s.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-rs.done
		if rs.err != nil {
			t.Errorf("Run: %v", rs.err)
		}
	})
	select {
	case <-s.Ready():
	case <-rs.done:
		t.Fatalf("Run ended before the streams were ready: %v", rs.err)
	case <-time.After(30 * time.Second):
		t.Fatal("streams not ready after 30 s")
	}
	return rs
}

// received is one picture a client decoded.
type received struct {
	ts     uint32 // RTP timestamp
	seq    uint64 // from the barcode
	img    camera.Image
	ntp    time.Time // from RTCP sender reports, when hasNTP
	hasNTP bool
}

// readStream plays rawURL with a gortsplib client over proto and returns the first n
// pictures it decodes.
func readStream(ctx context.Context, rawURL string, proto gortsplib.Protocol, n int) ([]received, error) {
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto}
	if err := c.Start(); err != nil {
		return nil, err
	}
	var closeDecoder func()
	defer func() {
		c.Close() // first: no callback runs after this
		if closeDecoder != nil {
			closeDecoder()
		}
	}()
	desc, _, err := c.Describe(u)
	if err != nil {
		return nil, fmt.Errorf("describe: %w", err)
	}
	if len(desc.Medias) != 1 || len(desc.Medias[0].Formats) != 1 {
		return nil, fmt.Errorf("describe: want one media with one format, got %d medias", len(desc.Medias))
	}
	medi, forma := desc.Medias[0], desc.Medias[0].Formats[0]

	var decode func(*rtp.Packet) (camera.Image, bool, error)
	switch f := forma.(type) {
	case *format.MJPEG:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		decode = func(pkt *rtp.Packet) (camera.Image, bool, error) {
			jpg, err := dec.Decode(pkt)
			if errors.Is(err, rtpmjpeg.ErrMorePacketsNeeded) || errors.Is(err, rtpmjpeg.ErrNonStartingPacketAndNoPrevious) {
				return camera.Image{}, false, nil
			}
			if err != nil {
				return camera.Image{}, false, err
			}
			im, err := jpeg.Decode(bytes.NewReader(jpg))
			if err != nil {
				return camera.Image{}, false, err
			}
			return camera.FromImage(im), true, nil
		}
	case *format.H264:
		if len(f.SPS) == 0 || len(f.PPS) == 0 {
			return nil, errors.New("describe: H.264 SDP without sprop-parameter-sets")
		}
		rtpDec, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		dec, err := codec.NewH264Decoder("")
		if err != nil {
			return nil, err
		}
		closeDecoder = dec.Close
		started := false
		decode = func(pkt *rtp.Packet) (camera.Image, bool, error) {
			au, err := rtpDec.Decode(pkt)
			if errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
				return camera.Image{}, false, nil
			}
			if err != nil {
				return camera.Image{}, false, err
			}
			if !started {
				if !codec.IsIDR(au) {
					return camera.Image{}, false, nil // joined mid-GOP: wait for an IDR
				}
				started = true
			}
			return dec.Decode(au)
		}
	default:
		return nil, fmt.Errorf("unexpected format %T", forma)
	}

	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	out := make(chan received, n)
	failed := make(chan error, 1)
	count := 0 // callbacks of one media run on one goroutine
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		if count >= n {
			return
		}
		ntp, hasNTP := c.PacketNTP(medi, pkt) // on every packet, or it may never be available
		img, ok, err := decode(pkt)
		if err != nil {
			select {
			case failed <- err:
			default:
			}
			return
		}
		if !ok {
			return
		}
		count++
		out <- received{ts: pkt.Timestamp, seq: readSeq(img), img: img, ntp: ntp, hasNTP: hasNTP}
	})
	if _, err := c.Play(nil); err != nil {
		return nil, fmt.Errorf("play: %w", err)
	}
	var got []received
	for len(got) < n {
		select {
		case r := <-out:
			got = append(got, r)
		case err := <-failed:
			return got, fmt.Errorf("decode: %w", err)
		case <-ctx.Done():
			return got, fmt.Errorf("%d of %d pictures before %w", len(got), n, ctx.Err())
		}
	}
	return got, nil
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		key  string // the field the error must name; "" for a valid config
	}{
		{"defaults", Config{}, ""},
		{"everything set", Config{Addr: ":0", Codec: CodecMJPEG, JPEGQuality: 90, LeftPath: "cam/l", RightPath: "cam/r", Transports: []string{"udp"}, UDPRTPPort: 8000}, ""},
		{"bad addr", Config{Addr: "localhost"}, "Addr"},
		{"bad port", Config{Addr: "127.0.0.1:99999"}, "Addr"},
		{"unknown codec", Config{Codec: "vp8"}, "Codec"},
		{"quality", Config{JPEGQuality: 101}, "JPEGQuality"},
		{"bitrate", Config{BitrateKbps: -1}, "BitrateKbps"},
		{"fps", Config{FPS: -30}, "FPS"},
		{"gop", Config{GOP: -1}, "GOP"},
		{"leading slash", Config{LeftPath: "/left"}, "LeftPath"},
		{"query in path", Config{RightPath: "right?x=1"}, "RightPath"},
		{"same paths", Config{LeftPath: "cam", RightPath: "cam"}, "LeftPath and RightPath"},
		{"transport", Config{Transports: []string{"tcp", "sctp"}}, "Transports"},
		{"odd rtp port", Config{UDPRTPPort: 8001}, "UDPRTPPort"},
		{"late eye", Config{Late: LateEye{Eye: "right", Delay: 100 * time.Millisecond}}, ""},
		{"late: no eye", Config{Late: LateEye{Delay: 100 * time.Millisecond}}, "Late.Eye"},
		{"late: unknown eye", Config{Late: LateEye{Eye: "centre", Delay: time.Millisecond}}, "Late.Eye"},
		{"late: no delay", Config{Late: LateEye{Eye: "left"}}, "Late.Delay"},
		{"late: too late", Config{Late: LateEye{Eye: "left", Delay: time.Minute}}, "Late.Delay"},
		{"udp loss", Config{UDPLoss: UDPLoss{Fraction: 0.1, Seed: 7}}, ""},
		{"udp loss above 1", Config{UDPLoss: UDPLoss{Fraction: 1.5}}, "UDPLoss.Fraction"},
		{"udp loss without udp", Config{Transports: []string{"tcp"}, UDPLoss: UDPLoss{Fraction: 0.1}}, "UDPLoss.Fraction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.key == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("Validate = %v, want an ErrConfig naming %s", err, tt.key)
			}
			if _, err := New(tt.cfg, newTestSource(64, 48, 0), nil); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
}

func TestNewStartsNothing(t *testing.T) {
	checkLeaks(t)
	s, err := New(Config{Addr: "127.0.0.1:0"}, newTestSource(64, 48, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != nil {
		t.Errorf("Addr() = %v before Run, want nil", s.Addr())
	}
	select {
	case <-s.Ready():
		t.Error("Ready before Run")
	default:
	}
	if got, want := s.URL("left"), "rtsp://127.0.0.1:0/left"; got != want {
		t.Errorf("URL(left) = %q, want %q", got, want)
	}
	if _, err := New(Config{}, nil, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("New without a source: %v, want ErrConfig", err)
	}
}

// TestClientPairsEyesByTimestamp reads both eyes with gortsplib clients, over TCP and
// UDP, and checks that the two pictures of a pair carry the same RTP timestamp, that
// timestamps follow capture time on the 90 kHz clock, that RTCP sender reports give the
// capture time back, and that the pictures are the ones rendered.
func TestClientPairsEyesByTimestamp(t *testing.T) {
	for _, cdc := range []string{CodecMJPEG, CodecH264} {
		for _, proto := range []gortsplib.Protocol{gortsplib.ProtocolTCP, gortsplib.ProtocolUDP} {
			t.Run(cdc+"/"+proto.String(), func(t *testing.T) {
				checkLeaks(t)
				src := newTestSource(320, 240, framePer)
				s := start(t, Config{Codec: cdc, GOP: 10, BitrateKbps: 3000}, src)

				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				const n = 45 // 1.5 s: at least one sender report after each client's first packet
				type result struct {
					recs []received
					err  error
				}
				var left, right result
				done := make(chan struct{})
				go func() {
					defer close(done)
					right.recs, right.err = readStream(ctx, s.URL("right"), proto, n)
				}()
				left.recs, left.err = readStream(ctx, s.URL("left"), proto, n)
				<-done
				if left.err != nil || right.err != nil {
					t.Fatalf("left: %v; right: %v", left.err, right.err)
				}
				checkPairs(t, src, left.recs, right.recs)
			})
		}
	}
}

func checkPairs(t *testing.T, src *testSource, left, right []received) {
	t.Helper()
	leftTS := map[uint64]uint32{}
	for eye, recs := range [][]received{left, right} {
		ntps := 0
		for i, r := range recs {
			// Pictures are the ones rendered for their Seq, for their eye.
			want := src.patternAt(r.seq).render(r.seq, eye)
			other := src.patternAt(r.seq).render(r.seq, 1-eye)
			if p, q := psnr(want, r.img), psnr(other, r.img); p < 28 || p < q+3 {
				t.Errorf("eye %d picture %d (seq %d): PSNR %.1f dB against its render, %.1f against the other eye's", eye, i, r.seq, p, q)
			}
			// RTP time is capture time: 3000 ticks (1/30 s at 90 kHz) a pair.
			if i > 0 {
				d := r.seq - recs[0].seq
				if got, want := r.ts-recs[0].ts, uint32(d*3000); got != want {
					t.Errorf("eye %d: seq %d is %d ticks after seq %d, want %d", eye, r.seq, got, recs[0].seq, want)
				}
			}
			if r.hasNTP {
				ntps++
				want := src.t0.Add(time.Duration(r.seq) * framePer)
				if d := r.ntp.Sub(want); d < -time.Millisecond || d > time.Millisecond {
					t.Errorf("eye %d seq %d: NTP %v, capture time %v (off by %v)", eye, r.seq, r.ntp, want, d)
				}
			}
			if eye == 0 {
				leftTS[r.seq] = r.ts
			}
		}
		if ntps == 0 {
			t.Errorf("eye %d: no picture had an NTP time: no RTCP sender report arrived", eye)
		}
	}
	common := 0
	for _, r := range right {
		if ts, ok := leftTS[r.seq]; ok {
			common++
			if ts != r.ts {
				t.Errorf("pair %d: left RTP timestamp %d, right %d", r.seq, ts, r.ts)
			}
		}
	}
	if common < 5 {
		t.Errorf("only %d pairs seen by both clients (left seqs %d.., right %d..)", common, left[0].seq, right[0].seq)
	}
	t.Logf("%d pairs seen on both eyes, timestamps equal", common)
}

func TestTransportsRestrictSetup(t *testing.T) {
	checkLeaks(t)
	s := start(t, Config{Codec: CodecMJPEG, Transports: []string{TransportTCP}}, newTestSource(64, 48, framePer))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := readStream(ctx, s.URL("left"), gortsplib.ProtocolUDP, 1); err == nil || !strings.Contains(err.Error(), "461") {
		t.Errorf("UDP setup with TCP only: %v, want 461 Unsupported Transport", err)
	}
	if _, err := readStream(ctx, s.URL("left"), gortsplib.ProtocolTCP, 2); err != nil {
		t.Errorf("TCP: %v", err)
	}
}

func TestUnknownPathAndNotReady(t *testing.T) {
	checkLeaks(t)
	src := newTestSource(64, 48, framePer)
	src.hold = make(chan struct{})
	s, err := New(Config{Addr: "127.0.0.1:0", Codec: CodecMJPEG}, src, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	select {
	case <-s.listening:
	case <-time.After(20 * time.Second):
		t.Fatal("server not listening after 20 s")
	}
	addr := s.Addr().String()
	describe := func(path string) error {
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer rcancel()
		_, err := readStream(rctx, "rtsp://"+addr+path, gortsplib.ProtocolTCP, 1)
		return err
	}
	if err := describe("/left"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("DESCRIBE before the first pair: %v, want 503", err)
	}
	if err := describe("/nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("DESCRIBE /nope: %v, want 404", err)
	}
	close(src.hold)
	<-s.Ready()
	if err := describe("/right"); err != nil {
		t.Errorf("DESCRIBE /right when ready: %v", err)
	}
}

func TestDropsWhenEncodingFallsBehind(t *testing.T) {
	checkLeaks(t)
	// An unpaced source of 640x480 pairs is far faster than JPEG encoding.
	src := newTestSource(640, 480, 0)
	src.stopAfter = 300
	s := start(t, Config{Codec: CodecMJPEG}, src)
	select {
	case <-src.finished:
	case <-time.After(30 * time.Second):
		t.Fatal("source did not finish emitting: emit must never wait for the encoder")
	}
	st := s.Stats()
	if st.Dropped == 0 || st.Dropped >= 300 {
		t.Errorf("Stats = %+v after 300 unpaced pairs, want some but not all dropped", st)
	}
	t.Logf("after 300 pairs: %+v", st)
}

func TestRunErrors(t *testing.T) {
	boom := errors.New("camera unplugged")
	tests := []struct {
		name  string
		cfg   Config
		src   func() *testSource
		check func(error) bool
	}{
		{
			"source fails", Config{Codec: CodecMJPEG},
			func() *testSource { s := newTestSource(64, 48, framePer); s.stopAfter, s.stopErr = 3, boom; return s },
			func(err error) bool { return errors.Is(err, boom) && strings.Contains(err.Error(), "test pattern") },
		},
		{
			"source ends", Config{Codec: CodecMJPEG},
			func() *testSource { s := newTestSource(64, 48, framePer); s.stopAfter, s.endEarly = 3, true; return s },
			func(err error) bool { return errors.Is(err, ErrSourceEnded) },
		},
		{
			"size not for MJPEG", Config{Codec: CodecMJPEG},
			func() *testSource { return newTestSource(1000, 750, framePer) },
			func(err error) bool {
				return errors.Is(err, ErrImageSize) && strings.Contains(err.Error(), "multiples of 8")
			},
		},
		{
			"too wide for MJPEG", Config{Codec: CodecMJPEG},
			func() *testSource { return newTestSource(2048, 16, framePer) },
			func(err error) bool { return errors.Is(err, ErrImageSize) && strings.Contains(err.Error(), "2040") },
		},
		{
			"odd size for H.264", Config{Codec: CodecH264},
			func() *testSource { return newTestSource(63, 48, framePer) },
			func(err error) bool { return errors.Is(err, codec.ErrConfig) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			if tt.cfg.Addr == "" {
				tt.cfg.Addr = "127.0.0.1:0"
			}
			s, err := New(tt.cfg, tt.src(), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = s.Run(ctx)
			if ctx.Err() != nil {
				t.Fatal("Run did not return on its own")
			}
			if !tt.check(err) {
				t.Fatalf("Run = %v", err)
			}
			t.Logf("Run = %v", err)
		})
	}
}

func TestListenError(t *testing.T) {
	checkLeaks(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, transports := range [][]string{{TransportTCP}, {TransportTCP, TransportUDP}} {
		s, err := New(Config{Addr: taken.Addr().String(), Transports: transports}, newTestSource(64, 48, framePer), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "listen on "+taken.Addr().String()) {
			t.Fatalf("Run on a taken address with %v: %v, want a listen error naming it", transports, err)
		}
	}
}

func TestRunTwice(t *testing.T) {
	checkLeaks(t)
	s := start(t, Config{Codec: CodecMJPEG}, newTestSource(64, 48, framePer))
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

// TestResolutionChange switches the source's size mid-stream: an H.264 client keeps
// decoding, at the new size, from the next IDR with the new parameter sets.
func TestResolutionChange(t *testing.T) {
	checkLeaks(t)
	small, large := newPattern(320, 240), newPattern(384, 288)
	src := newTestSource(320, 240, framePer)
	src.patternAt = func(seq uint64) *pattern {
		if seq < 20 {
			return small
		}
		return large
	}
	s := start(t, Config{Codec: CodecH264, GOP: 10, BitrateKbps: 3000}, src)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := readStream(ctx, s.URL("left"), gortsplib.ProtocolTCP, 40)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{}
	for _, r := range recs {
		sizes[fmt.Sprintf("%dx%d", r.img.Width, r.img.Height)]++
		want := src.patternAt(r.seq).render(r.seq, 0)
		if p := psnr(want, r.img); p < 28 {
			t.Errorf("seq %d (%dx%d): PSNR %.1f dB", r.seq, r.img.Width, r.img.Height, p)
		}
	}
	if sizes["384x288"] == 0 {
		t.Errorf("sizes decoded: %v, want 384x288 after the change", sizes)
	}
	t.Logf("sizes decoded: %v", sizes)
}

func BenchmarkMJPEGEncode640x480(b *testing.B) {
	benchmarkEncoder(b, Config{Codec: CodecMJPEG}.WithDefaults())
}

// BenchmarkH264EyeEncode640x480 is the H.264 path of one eye: RGB -> YUV -> libx264 ->
// RTP packets.
func BenchmarkH264EyeEncode640x480(b *testing.B) {
	benchmarkEncoder(b, Config{Codec: CodecH264}.WithDefaults())
}

func benchmarkEncoder(b *testing.B, cfg Config) {
	p := newPattern(640, 480)
	frames := []camera.Image{p.render(0, 0), p.render(1, 0), p.render(2, 0)}
	s := &Server{cfg: cfg}
	enc, err := s.newEncoder()
	if err != nil {
		b.Fatal(err)
	}
	defer enc.close()
	if err := enc.resize(640, 480); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frames[0].Pix)))
	var bytes, packets int
	for i := 0; b.Loop(); i++ {
		pkts, _, _, err := enc.encode(frames[i%len(frames)], int64(i)*3000)
		if err != nil {
			b.Fatal(err)
		}
		for _, pkt := range pkts {
			bytes += len(pkt.Payload)
		}
		packets += len(pkts)
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "B/frame")
	b.ReportMetric(float64(packets)/float64(b.N), "pkts/frame")
}
