package rtsp

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/sdp"
	"github.com/pion/rtp"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/codec"
)

var (
	h264SPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9}
	h264PPS = []byte{0x68, 0xce, 0x3c, 0x80}
	h264IDR = []byte{0x65, 0x88, 0x84, 0x00}
	h264P   = []byte{0x41, 0x9a, 0x02}
	h264AUD = []byte{0x09, 0xf0}
	h265VPS = []byte{0x40, 0x01, 0x0c}
	h265SPS = []byte{0x42, 0x01, 0x01}
	h265PPS = []byte{0x44, 0x01, 0xc1}
	h265IDR = []byte{0x26, 0x01, 0xaf} // IDR_W_RADL (19)
	h265CRA = []byte{0x2a, 0x01, 0xaf} // CRA (21)
	h265P   = []byte{0x02, 0x01, 0xd0} // TRAIL_R (1)
	h265AUD = []byte{0x46, 0x01, 0x50}
)

var assembleTests = []struct {
	name   string
	codec  string
	sdp    parameterSets
	au     [][]byte
	want   [][]byte
	random bool
}{
	{"h264 idr gets sdp sets", CodecH264, parameterSets{sps: h264SPS, pps: h264PPS}, [][]byte{h264IDR}, [][]byte{h264SPS, h264PPS, h264IDR}, true},
	{"h264 sets stay after aud", CodecH264, parameterSets{sps: h264SPS, pps: h264PPS}, [][]byte{h264AUD, h264IDR}, [][]byte{h264AUD, h264SPS, h264PPS, h264IDR}, true},
	{"h264 in-band sets kept", CodecH264, parameterSets{}, [][]byte{h264SPS, h264PPS, h264IDR}, [][]byte{h264SPS, h264PPS, h264IDR}, true},
	{"h264 missing pps added", CodecH264, parameterSets{sps: h264SPS, pps: h264PPS}, [][]byte{h264SPS, h264IDR}, [][]byte{h264PPS, h264SPS, h264IDR}, true},
	{"h264 p frame untouched", CodecH264, parameterSets{sps: h264SPS, pps: h264PPS}, [][]byte{h264P}, [][]byte{h264P}, false},
	{"h264 empty nalus dropped", CodecH264, parameterSets{}, [][]byte{{}, h264P, nil}, [][]byte{h264P}, false},
	{"h265 idr gets vps sps pps", CodecH265, parameterSets{vps: h265VPS, sps: h265SPS, pps: h265PPS}, [][]byte{h265AUD, h265IDR}, [][]byte{h265AUD, h265VPS, h265SPS, h265PPS, h265IDR}, true},
	{"h265 cra is random access", CodecH265, parameterSets{vps: h265VPS, sps: h265SPS, pps: h265PPS}, [][]byte{h265CRA}, [][]byte{h265VPS, h265SPS, h265PPS, h265CRA}, true},
	{"h265 trail untouched", CodecH265, parameterSets{vps: h265VPS, sps: h265SPS, pps: h265PPS}, [][]byte{h265P}, [][]byte{h265P}, false},
	{"only delimiters", CodecH264, parameterSets{sps: h264SPS, pps: h264PPS}, [][]byte{h264AUD}, [][]byte{h264AUD}, false},
}

func TestAssembleAU(t *testing.T) {
	for _, tt := range assembleTests {
		t.Run(tt.name, func(t *testing.T) {
			ps := tt.sdp
			got, random := assembleAU(tt.codec, tt.au, &ps)
			if random != tt.random || !slices.EqualFunc(got, tt.want, bytes.Equal) {
				t.Fatalf("assembleAU = % x (random %v), want % x (random %v)", got, random, tt.want, tt.random)
			}
		})
	}
	// In-band sets replace the SDP's for later access units.
	ps := parameterSets{sps: []byte{0x67, 1}, pps: []byte{0x68, 1}}
	assembleAU(CodecH264, [][]byte{h264SPS, h264PPS, h264IDR}, &ps)
	if got, _ := assembleAU(CodecH264, [][]byte{h264IDR}, &ps); !bytes.Equal(got[0], h264SPS) {
		t.Fatalf("later IDR got SPS % x, want the in-band % x", got[0], h264SPS)
	}
}

// FuzzAssembleAU: NAL units from the network, split at 0xff bytes.
func FuzzAssembleAU(f *testing.F) {
	for _, tt := range assembleTests {
		f.Add(tt.codec == CodecH265, bytes.Join(tt.au, []byte{0xff}))
	}
	f.Fuzz(func(t *testing.T, h265 bool, b []byte) {
		c := CodecH264
		ps := parameterSets{sps: h264SPS, pps: h264PPS}
		if h265 {
			c, ps = CodecH265, parameterSets{vps: h265VPS, sps: h265SPS, pps: h265PPS}
		}
		au := bytes.Split(b, []byte{0xff})
		out, random := assembleAU(c, au, &ps)
		nonEmpty := 0
		for _, n := range au {
			if len(n) > 0 {
				nonEmpty++
			}
		}
		if len(out) < nonEmpty || (!random && len(out) != nonEmpty) {
			t.Fatalf("%d NAL units in, %d out (random access %v)", nonEmpty, len(out), random)
		}
		for _, n := range out {
			if len(n) == 0 {
				t.Fatal("empty NAL unit out")
			}
		}
	})
}

func TestDecodeJPEG(t *testing.T) {
	src := renderScene(3, 0)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, src.RGBA(), &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	got, err := decodeJPEG(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if p := psnr(src, got); p < 30 {
		t.Errorf("PSNR %.1f dB, want >= 30", p)
	}
	gray := image.NewGray(image.Rect(0, 0, 16, 8))
	gray.SetGray(3, 2, color.Gray{Y: 200})
	buf.Reset()
	if err := jpeg.Encode(&buf, gray, nil); err != nil {
		t.Fatal(err)
	}
	if g, err := decodeJPEG(buf.Bytes()); err != nil || g.Width != 16 || g.Height != 8 {
		t.Fatalf("gray JPEG: %dx%d, %v", g.Width, g.Height, err)
	}
	for _, bad := range [][]byte{nil, {0xff, 0xd8}, buf.Bytes()[:len(buf.Bytes())/2]} {
		if _, err := decodeJPEG(bad); err == nil {
			t.Errorf("decodeJPEG(% x...) accepted", bad[:min(len(bad), 4)])
		}
	}
	// A header claiming a picture RTP cannot carry is refused before allocating it.
	huge := bytes.Clone(buf.Bytes())
	if i := bytes.Index(huge, []byte{0xff, 0xc0}); i > 0 {
		huge[i+5], huge[i+6], huge[i+7], huge[i+8] = 0xff, 0xff, 0xff, 0xff
		if _, err := decodeJPEG(huge); !errors.Is(err, errJPEGSize) {
			t.Errorf("65535x65535 header: %v, want errJPEGSize", err)
		}
	}
}

func FuzzDecodeJPEG(f *testing.F) {
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, renderScene(1, 0).RGBA(), &jpeg.Options{Quality: 50})
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xd8, 0xff, 0xd9})
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := decodeJPEG(b)
		if err == nil && len(img.Pix) != 3*img.Width*img.Height {
			t.Fatalf("%dx%d image with %d bytes", img.Width, img.Height, len(img.Pix))
		}
	})
}

// h264Packets encodes n pictures and packetizes them as a camera would (GOP gop).
func h264Packets(t testing.TB, n, gop int) (*format.H264, []*rtp.Packet) {
	t.Helper()
	enc, err := codec.NewH264Encoder(codec.EncoderConfig{Width: 64, Height: 48, GOP: gop})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: enc.SPS(), PPS: enc.PPS()}
	rtpEnc, err := f.CreateEncoder()
	if err != nil {
		t.Fatal(err)
	}
	var pkts []*rtp.Packet
	for i := range n {
		au, err := enc.Encode(camera.NewImage(64, 48), time.Duration(i)*scenePeriod)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := rtpEnc.Encode(au)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			p.Timestamp = uint32(i * 3000)
		}
		pkts = append(pkts, ps...)
	}
	return f, pkts
}

// TestDepacketizerLoss: a lost packet drops its access unit and everything up to the
// next IDR, and is counted.
func TestDepacketizerLoss(t *testing.T) {
	f, pkts := h264Packets(t, 10, 5)
	d, err := newDepacketizer(f)
	if err != nil {
		t.Fatal(err)
	}
	var aus []accessUnit
	var total pushResult
	dropped := false
	for _, p := range pkts {
		if p.Timestamp == 2*3000 && !dropped { // the first packet of picture 2: lost
			dropped = true
			continue
		}
		au, ok, res := d.push(p, time.Now())
		total.lost += res.lost
		total.corrupt += res.corrupt
		total.skipped += res.skipped
		if ok {
			aus = append(aus, au)
		}
	}
	if total.lost != 1 {
		t.Errorf("lost %d, want 1", total.lost)
	}
	if !aus[0].randomAccess || aus[0].pts != 0 {
		t.Errorf("first access unit: random %v pts %d", aus[0].randomAccess, aus[0].pts)
	}
	// Everything after the loss up to the IDR at picture 5 is gone; from it on, all.
	var pts []int64
	for _, au := range aus {
		pts = append(pts, au.pts/3000)
	}
	t.Logf("pictures out: %v, %+v", pts, total)
	if want := []int64{0, 1, 5, 6, 7, 8, 9}; !slices.Equal(pts, want) || total.skipped != 2 {
		t.Errorf("pictures %v, counters %+v: want %v (3 and 4 skipped, recovery at the IDR 5)", pts, total, want)
	}
	// The decoder glue takes what comes out without error.
	dec, err := codec.NewDecoder(CodecH264, "")
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, au := range aus {
		if _, err := dec.DecodeTimed(au.nalus, au.pts); err != nil {
			t.Errorf("pts %d: %v", au.pts, err)
		}
	}
}

// TestCorruptAccessUnits: damaged access units into the decoder are errors, never crashes,
// and the decoder recovers at the next IDR.
func TestCorruptAccessUnits(t *testing.T) {
	f, pkts := h264Packets(t, 10, 5)
	d, _ := newDepacketizer(f)
	var aus []accessUnit
	for _, p := range pkts {
		if au, ok, _ := d.push(p, time.Now()); ok {
			aus = append(aus, au)
		}
	}
	dec, err := codec.NewDecoder(CodecH264, "")
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	errs, pics := 0, 0
	for i, au := range aus {
		nalus := au.nalus
		if i == 1 || i == 2 {
			// Flip bits in the slice data and cut it short.
			nalus = slices.Clone(nalus)
			n := bytes.Clone(nalus[len(nalus)-1])
			for j := 1; j < len(n); j += 3 {
				n[j] ^= 0x5a
			}
			nalus[len(nalus)-1] = n[:len(n)/2+1]
		}
		got, err := dec.DecodeTimed(nalus, au.pts)
		if err != nil {
			errs++
		}
		pics += len(got)
	}
	t.Logf("%d errors, %d pictures from %d access units", errs, pics, len(aus))
	if pics < 5 {
		t.Errorf("%d pictures: no recovery after corruption", pics)
	}
}

// FuzzDepacketize: RTP packets from the network into the depacketizer and access-unit
// glue, for each codec.
func FuzzDepacketize(f *testing.F) {
	_, pkts := h264Packets(f, 3, 2)
	var seed []byte
	for _, p := range pkts {
		b, _ := p.Marshal()
		seed = append(append(seed, byte(len(b)>>8), byte(len(b))), b...)
	}
	f.Add(uint8(0), seed)
	f.Add(uint8(1), seed)
	f.Add(uint8(2), seed)
	f.Fuzz(func(t *testing.T, which uint8, stream []byte) {
		var forma format.Format
		switch which % 3 {
		case 0:
			forma = &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: h264SPS, PPS: h264PPS}
		case 1:
			forma = &format.H265{PayloadTyp: 96, VPS: h265VPS, SPS: h265SPS, PPS: h265PPS}
		default:
			forma = &format.MJPEG{}
		}
		d, err := newDepacketizer(forma)
		if err != nil {
			t.Fatal(err)
		}
		for len(stream) >= 2 {
			n := int(stream[0])<<8 | int(stream[1])
			stream = stream[2:]
			if n > len(stream) {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(stream[:n]) == nil {
				d.push(&p, time.Now())
			}
			stream = stream[n:]
		}
	})
}

const sdpH264 = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n" +
	"m=audio 0 RTP/AVP 0\r\na=control:trackID=0\r\n" +
	"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z0LAHtk=,aM48gA==\r\na=control:trackID=1\r\n"

func TestPickTrack(t *testing.T) {
	tests := []struct {
		name, sdp string
		want      string // codec, or "" for ErrNoVideo
	}{
		{"h264 after audio", sdpH264, "H264"},
		{"h265 preferred", sdpH264 + "m=video 0 RTP/AVP 97\r\na=rtpmap:97 H265/90000\r\na=control:trackID=2\r\n", "H265"},
		{"mjpeg", "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\nm=video 0 RTP/AVP 26\r\na=control:trackID=0\r\n", "M-JPEG"},
		{"audio only", "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desc := parseSDP(t, tt.sdp)
			_, forma, err := pickTrack(desc)
			if tt.want == "" {
				if !errors.Is(err, ErrNoVideo) {
					t.Fatalf("pickTrack: %v, want ErrNoVideo", err)
				}
				t.Log(err)
				return
			}
			if err != nil || forma.Codec() != tt.want {
				t.Fatalf("pickTrack: %v %v, want %s", forma, err, tt.want)
			}
			if _, err := newDepacketizer(forma); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func parseSDP(t testing.TB, s string) *description.Session {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal([]byte(s)); err != nil {
		t.Fatal(err)
	}
	var desc description.Session
	if err := desc.Unmarshal(&sd); err != nil {
		t.Fatal(err)
	}
	return &desc
}

// FuzzSDP: a camera's SDP into the track choice and the parameter sets we take from it.
func FuzzSDP(f *testing.F) {
	f.Add(sdpH264)
	f.Add(strings.Replace(sdpH264, "H264", "H265", 1))
	f.Fuzz(func(t *testing.T, s string) {
		var sd sdp.SessionDescription
		if sd.Unmarshal([]byte(s)) != nil {
			return
		}
		var desc description.Session
		if desc.Unmarshal(&sd) != nil {
			return
		}
		_, forma, err := pickTrack(&desc)
		if err != nil {
			return
		}
		d, err := newDepacketizer(forma)
		if err != nil {
			return
		}
		// The SDP's parameter sets go in front of a random-access picture unharmed.
		assembleAU(d.codec, [][]byte{h264IDR}, &d.ps)
	})
}

func TestCaptureClock(t *testing.T) {
	t0 := time.Unix(1000, 0)
	k := captureClock{rate: 90000}
	step := func(pts int64, recv, ntp time.Time, hasNTP bool) (time.Time, camera.Clock, clockEvent, bool) {
		return k.capture(pts, recv, ntp, hasNTP)
	}
	// Receive time anchored at the first picture, whatever later receive times say.
	if tm, c, _, ok := step(0, t0, time.Time{}, false); !ok || !tm.Equal(t0) || c != camera.ClockReceive {
		t.Fatalf("first: %v %v %v", tm, c, ok)
	}
	if tm, _, _, ok := step(3000, t0.Add(90*time.Millisecond), time.Time{}, false); !ok || !tm.Equal(t0.Add(time.Second/30)) {
		t.Fatalf("second: %v %v", tm, ok)
	}
	// NTP a little earlier than the estimate: switch, drop the picture that would go back.
	ntp0 := t0.Add(time.Second/30 - 10*time.Millisecond)
	if _, _, ev, ok := step(3000+1, t0, ntp0, true); ev != clockSwitchedToNTP || ok {
		t.Fatalf("switch: event %v ok %v, want a switch and a drop", ev, ok)
	}
	if tm, c, _, ok := step(6000, t0, t0.Add(2*time.Second/30), true); !ok || c != camera.ClockNTP || !tm.Equal(t0.Add(2*time.Second/30)) {
		t.Fatalf("after switch: %v %v %v", tm, c, ok)
	}
	// An unsynchronised camera clock is refused.
	k2 := captureClock{rate: 90000}
	k2.capture(0, t0, time.Time{}, false)
	if _, c, ev, ok := k2.capture(3000, t0, t0.Add(-time.Hour), true); ev != clockNTPRefused || c != camera.ClockReceive || !ok {
		t.Fatalf("far behind: clock %v event %v ok %v", c, ev, ok)
	}
	// Even at the very first picture, before any receive time was emitted.
	k3 := captureClock{rate: 90000}
	if _, c, ev, ok := k3.capture(0, t0, t0.Add(time.Hour), true); ev != clockNTPRefused || c != camera.ClockReceive || !ok {
		t.Fatalf("far ahead at first: clock %v event %v ok %v", c, ev, ok)
	}
}

func TestJitter(t *testing.T) {
	e := jitterEstimator{rate: 90000}
	t0 := time.Unix(0, 0)
	for i := range 100 {
		e.update(int64(i*3000), t0.Add(time.Duration(i)*time.Second/30))
	}
	if e.ms() > 0.01 {
		t.Errorf("steady stream: jitter %.3f ms, want 0", e.ms())
	}
	for i := 100; i < 400; i++ {
		delay := time.Duration(i%2) * 10 * time.Millisecond // every other picture 10 ms late
		e.update(int64(i*3000), t0.Add(time.Duration(i)*time.Second/30+delay))
	}
	if e.ms() < 8 || e.ms() > 12 {
		t.Errorf("alternating 10 ms delay: jitter %.2f ms, want about 10", e.ms())
	}
}
