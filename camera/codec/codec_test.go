package codec

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

// TestMain fails the run if any test left C memory behind.
func TestMain(m *testing.M) {
	SetLogger(quietLogger)
	code := m.Run()
	if n := Live(); code == 0 && n != 0 {
		fmt.Fprintf(os.Stderr, "codec: %d encoders/decoders not closed after the tests\n", n)
		code = 1
	}
	os.Exit(code)
}

// quietLogger shows libav's warnings and errors, not libx264's banners.
var quietLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestSetLoggerCapturesLibav(t *testing.T) {
	var buf syncBuffer
	SetLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer SetLogger(quietLogger)
	if e, err := NewH264Encoder(EncoderConfig{Width: 64, Height: 48, Options: map[string]string{"preset": "warp-speed"}}); err == nil {
		e.Close()
		t.Fatal("preset warp-speed accepted")
	}
	e := newEncoder(t, EncoderConfig{Width: 64, Height: 48})
	e.Close()
	out := buf.String()
	for _, want := range []string{"level=ERROR", "Error setting preset", "component=libav", "level=DEBUG", "libx264"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// texture renders a smooth, moving, coloured pattern with detail at several scales, the
// kind of content a camera sees (not noise, which no codec compresses).
func texture(w, h, frame int) camera.Image {
	img := camera.NewImage(w, h)
	shift := float64(2 * frame)
	for y := range h {
		for x := range w {
			fx, fy := float64(x)+shift, float64(y)
			v := 128 + 60*math.Sin(fx/9)*math.Cos(fy/13) + 40*math.Sin((fx+fy)/23)
			i := 3 * (y*w + x)
			img.Pix[i] = clamp(v)
			img.Pix[i+1] = clamp(255 - v + 30*math.Sin(fy/7))
			img.Pix[i+2] = clamp(float64((x+y+frame)%256)*0.5 + 60)
		}
	}
	return img
}

func clamp(v float64) byte { return byte(math.Max(0, math.Min(255, math.Round(v)))) }

// psnr of b against a in dB over all three channels.
func psnr(t *testing.T, a, b camera.Image) float64 {
	t.Helper()
	if a.Width != b.Width || a.Height != b.Height {
		t.Fatalf("psnr: sizes %dx%d and %dx%d differ", a.Width, a.Height, b.Width, b.Height)
	}
	var se float64
	for i := range a.Pix {
		d := float64(a.Pix[i]) - float64(b.Pix[i])
		se += d * d
	}
	mse := se / float64(len(a.Pix))
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

func newEncoder(t testing.TB, cfg EncoderConfig) *H264Encoder {
	t.Helper()
	e, err := NewH264Encoder(cfg)
	if err != nil {
		t.Fatalf("NewH264Encoder(%+v): %v", cfg, err)
	}
	t.Cleanup(e.Close)
	return e
}

func newDecoder(t testing.TB) *H264Decoder {
	t.Helper()
	d, err := NewH264Decoder("")
	if err != nil {
		t.Fatalf("NewH264Decoder: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	const w, h, gop = 320, 240, 5
	enc := newEncoder(t, EncoderConfig{Width: w, Height: h, BitrateKbps: 3000, GOP: gop})
	dec := newDecoder(t)

	for i := range 12 {
		src := texture(w, h, i)
		pts := time.Duration(i) * time.Second / 30
		au, ok, err := enc.EncodeAU(src, pts)
		if err != nil || !ok {
			t.Fatalf("frame %d: EncodeAU: ok=%v err=%v (zero-latency settings must give every frame back at once)", i, ok, err)
		}
		if got, want := au.PTS, TicksToDuration(DurationToTicks(pts)); got != want {
			t.Errorf("frame %d: PTS %v, want %v", i, got, want)
		}
		if want := i%gop == 0; au.IDR != want {
			t.Errorf("frame %d: IDR = %v, want %v (GOP %d)", i, au.IDR, want, gop)
		}
		if au.IDR {
			if len(au.NALUs) < 3 || naluType(au.NALUs[0]) != naluTypeSPS || naluType(au.NALUs[1]) != naluTypePPS {
				t.Errorf("frame %d: IDR access unit starts with NAL types %v, want SPS (7), PPS (8)", i, naluTypes(au.NALUs))
			}
		}
		for _, n := range au.NALUs {
			if len(n) >= 3 && n[0] == 0 && n[1] == 0 && (n[2] == 1 || n[2] == 0) {
				t.Fatalf("frame %d: NAL unit starts with a start code: % x", i, n[:4])
			}
		}
		got, ok, err := dec.Decode(au.NALUs)
		if err != nil || !ok {
			t.Fatalf("frame %d: Decode: ok=%v err=%v", i, ok, err)
		}
		if p := psnr(t, src, got); p < 30 {
			t.Errorf("frame %d: PSNR %.1f dB, want >= 30", i, p)
		} else if i == 11 {
			t.Logf("frame %d: PSNR %.1f dB", i, p)
		}
	}
}

func naluTypes(au [][]byte) []byte {
	var out []byte
	for _, n := range au {
		out = append(out, naluType(n))
	}
	return out
}

func TestParameterSets(t *testing.T) {
	enc := newEncoder(t, EncoderConfig{Width: 64, Height: 48})
	sps, pps := enc.SPS(), enc.PPS()
	if len(sps) < 4 || naluType(sps) != naluTypeSPS {
		t.Fatalf("SPS() = % x, want an SPS NAL unit", sps)
	}
	if len(pps) < 1 || naluType(pps) != naluTypePPS {
		t.Fatalf("PPS() = % x, want a PPS NAL unit", pps)
	}
	// A decoder fed only the SDP's parameter sets followed by the IDR's slices must
	// decode it: the ones in the SDP and in-band must agree.
	au, err := enc.Encode(texture(64, 48, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	var slices [][]byte
	for _, n := range au {
		if t := naluType(n); t != naluTypeSPS && t != naluTypePPS {
			slices = append(slices, n)
		}
	}
	dec := newDecoder(t)
	if _, ok, err := dec.Decode(append([][]byte{sps, pps}, slices...)); err != nil || !ok {
		t.Fatalf("decode with SDP parameter sets: ok=%v err=%v", ok, err)
	}
}

func TestPTSMustGrow(t *testing.T) {
	enc := newEncoder(t, EncoderConfig{Width: 64, Height: 48})
	img := texture(64, 48, 0)
	var last time.Duration = -1
	for i, pts := range []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond} {
		au, ok, err := enc.EncodeAU(img, pts)
		if err != nil || !ok {
			t.Fatalf("frame %d: ok=%v err=%v", i, ok, err)
		}
		if au.PTS <= last {
			t.Errorf("frame %d: PTS %v not after %v", i, au.PTS, last)
		}
		last = au.PTS
	}
	if last != 200*time.Millisecond {
		t.Errorf("last PTS %v, want 200ms (a growing PTS is kept)", last)
	}
}

func TestTicksRoundTrip(t *testing.T) {
	for _, ticks := range []int64{0, 1, 2, 3000, 3003, 89999, 90000, 1<<40 + 7, -1, -3000} {
		if got := DurationToTicks(TicksToDuration(ticks)); got != ticks {
			t.Errorf("ticks %d -> %v -> %d", ticks, TicksToDuration(ticks), got)
		}
	}
}

func TestEncoderConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  EncoderConfig
		want error
	}{
		{"odd width", EncoderConfig{Width: 63, Height: 48}, ErrConfig},
		{"zero size", EncoderConfig{}, ErrConfig},
		{"negative fps", EncoderConfig{Width: 64, Height: 48, FPS: -1}, ErrConfig},
		{"negative bitrate", EncoderConfig{Width: 64, Height: 48, BitrateKbps: -5}, ErrConfig},
		{"unknown encoder", EncoderConfig{Width: 64, Height: 48, Encoder: "h264_nonexistent"}, ErrNotFound},
		{"not h264", EncoderConfig{Width: 64, Height: 48, Encoder: "mjpeg"}, ErrConfig},
		{"hardware frames only", EncoderConfig{Width: 64, Height: 48, Encoder: "h264_vaapi"}, ErrConfig},
		{"unknown option", EncoderConfig{Width: 64, Height: 48, Options: map[string]string{"no-such-option": "1"}}, ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewH264Encoder(tt.cfg)
			if err == nil {
				e.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %q does not wrap %q", err, tt.want)
			}
			t.Log(err)
		})
	}
}

func TestEncoderOptionsApply(t *testing.T) {
	// A valid override must be accepted (and a bad value rejected by libx264 itself).
	newEncoder(t, EncoderConfig{Width: 64, Height: 48, Options: map[string]string{"preset": "veryfast"}})
	if e, err := NewH264Encoder(EncoderConfig{Width: 64, Height: 48, Options: map[string]string{"preset": "warp-speed"}}); err == nil {
		e.Close()
		t.Fatal("preset warp-speed accepted")
	} else {
		var averr *AVError
		if !errors.As(err, &averr) {
			t.Fatalf("error %q is not an *AVError", err)
		}
	}
}

func TestEncodeWrongSize(t *testing.T) {
	enc := newEncoder(t, EncoderConfig{Width: 64, Height: 48})
	if _, err := enc.Encode(texture(32, 48, 0), 0); !errors.Is(err, ErrConfig) {
		t.Fatalf("encode 32x48 into 64x48 encoder: %v, want ErrConfig", err)
	}
	if _, err := enc.Encode(camera.Image{Width: 64, Height: 48, Pix: make([]byte, 10)}, 0); !errors.Is(err, ErrConfig) {
		t.Fatalf("encode short Pix: %v, want ErrConfig", err)
	}
}

func TestDecoderErrors(t *testing.T) {
	if d, err := NewH264Decoder("h264_nonexistent"); !errors.Is(err, ErrNotFound) {
		if d != nil {
			d.Close()
		}
		t.Fatalf("unknown decoder: %v, want ErrNotFound", err)
	}
	if d, err := NewH264Decoder("mjpeg"); !errors.Is(err, ErrConfig) {
		if d != nil {
			d.Close()
		}
		t.Fatalf("mjpeg decoder: %v, want ErrConfig", err)
	}
	// Garbage before any parameter set: an error or no picture, never a crash.
	dec := newDecoder(t)
	if _, ok, _ := dec.Decode([][]byte{{0x65, 0xff, 0x00, 0x12, 0x34}}); ok {
		t.Fatal("garbage decoded into a picture")
	}
}

func TestCloseFreesAndIsIdempotent(t *testing.T) {
	before := Live()
	enc, err := NewH264Encoder(EncoderConfig{Width: 64, Height: 48})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewH264Decoder("")
	if err != nil {
		t.Fatal(err)
	}
	if got := Live(); got != before+2 {
		t.Fatalf("Live() = %d after opening two, want %d", got, before+2)
	}
	enc.Close()
	enc.Close()
	dec.Close()
	dec.Close()
	if got := Live(); got != before {
		t.Fatalf("Live() = %d after Close, want %d", got, before)
	}
	if _, err := enc.Encode(texture(64, 48, 0), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Encode after Close: %v, want ErrClosed", err)
	}
	if _, _, err := dec.Decode([][]byte{{0x65}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Decode after Close: %v, want ErrClosed", err)
	}
}

func TestFailedOpenLeavesNothing(t *testing.T) {
	before := Live()
	for _, cfg := range []EncoderConfig{
		{Width: 64, Height: 48, Options: map[string]string{"no-such-option": "1"}},
		{Width: 64, Height: 48, Options: map[string]string{"preset": "warp-speed"}},
		// Fails without an NVIDIA GPU (libcuda missing); opens and closes with one.
		{Width: 64, Height: 48, Encoder: "h264_nvenc"},
	} {
		if e, err := NewH264Encoder(cfg); err == nil {
			e.Close()
		}
	}
	if got := Live(); got != before {
		t.Fatalf("Live() = %d after failed opens, want %d", got, before)
	}
}

// TestSafetyNet checks that an encoder dropped without Close is freed by the GC cleanup.
func TestSafetyNet(t *testing.T) {
	before := Live()
	func() {
		if _, err := NewH264Encoder(EncoderConfig{Width: 64, Height: 48}); err != nil {
			t.Fatal(err)
		}
	}()
	// Cleanups run on a runtime goroutine after a GC finds the object unreachable.
	for i := 0; i < 100 && Live() != before; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if got := Live(); got != before {
		t.Fatalf("Live() = %d after GC, want %d: the cleanup did not free the encoder", got, before)
	}
}

func BenchmarkH264Encode640x480(b *testing.B) {
	enc := newEncoder(b, EncoderConfig{Width: 640, Height: 480})
	frames := []camera.Image{texture(640, 480, 0), texture(640, 480, 1), texture(640, 480, 2)}
	b.SetBytes(int64(len(frames[0].Pix)))
	b.ResetTimer()
	var bytes int
	for i := 0; b.Loop(); i++ {
		au, err := enc.Encode(frames[i%len(frames)], time.Duration(i)*time.Second/30)
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range au {
			bytes += len(n)
		}
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "B/frame")
}

func BenchmarkH264Decode640x480(b *testing.B) {
	enc := newEncoder(b, EncoderConfig{Width: 640, Height: 480, GOP: 30})
	var aus [][][]byte
	for i := range 30 {
		au, err := enc.Encode(texture(640, 480, i), time.Duration(i)*time.Second/30)
		if err != nil {
			b.Fatal(err)
		}
		aus = append(aus, au)
	}
	dec := newDecoder(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := dec.Decode(aus[i%len(aus)]); err != nil {
			b.Fatal(err)
		}
	}
}
