package codec

// #include <stdlib.h>
// #include "codec.h"
import "C"

import (
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"time"
	"unsafe"

	"github.com/edgedepth/edgedepth/camera"
)

// EncoderConfig configures an H.264 encoder. The zero value of every field but Width and
// Height selects a default.
type EncoderConfig struct {
	// Width and Height of the images in pixels. Required; both even (4:2:0 chroma
	// subsampling halves them).
	Width, Height int
	// FPS is the nominal frame rate in frames per second, which rate control spreads
	// BitrateKbps over. Frames may arrive at any rate; their PTS decides their timing.
	// Default 30.
	FPS float64
	// BitrateKbps is the target bitrate in kbit/s (1000 bit/s). Default 0.1 bit per pixel
	// per frame: about 920 kbit/s for 640x480 at 30 fps.
	BitrateKbps int
	// GOP is the distance between IDR pictures in frames: the longest a client that joins
	// late or lost a packet waits for a picture. Default one second of frames (FPS).
	GOP int
	// Encoder is the FFmpeg encoder name. Default "libx264". "h264_nvenc" uses an NVIDIA
	// desktop GPU; on a Jetson, "h264_nvmpi" or "h264_v4l2m2m" where FFmpeg was built with
	// them (see `ffmpeg -hide_banner -encoders`). Encoders that take only hardware frames
	// (h264_vaapi, h264_qsv) are not supported.
	Encoder string
	// Threads is the encoder's thread count. Default 0: FFmpeg chooses.
	Threads int
	// Options are encoder-private FFmpeg options, the ones ffmpeg's command line takes as
	// -preset, -tune, -profile and so on. They are applied over this package's low-latency
	// defaults for libx264 (preset ultrafast, tune zerolatency) and h264_nvenc (preset p1,
	// tune ull, zerolatency, delay 0). An option the encoder does not know is an error.
	Options map[string]string
}

// lowLatencyOptions are the per-encoder options that remove lookahead and reordering
// delay. Encoders missing here get only the generic settings (no B-frames, GOP, bitrate).
var lowLatencyOptions = map[string]map[string]string{
	// ultrafast because a robot's CPU has better things to do; zerolatency disables
	// lookahead, B-frames and frame threading, so every frame comes out of its own call.
	"libx264":    {"preset": "ultrafast", "tune": "zerolatency"},
	"h264_nvenc": {"preset": "p1", "tune": "ull", "zerolatency": "1", "delay": "0"},
}

func (c EncoderConfig) withDefaults() EncoderConfig {
	if c.FPS == 0 {
		c.FPS = 30
	}
	if c.Encoder == "" {
		c.Encoder = "libx264"
	}
	if c.BitrateKbps == 0 {
		c.BitrateKbps = max(100, int(float64(c.Width*c.Height)*c.FPS*0.1/1000))
	}
	if c.GOP == 0 {
		c.GOP = max(1, int(math.Round(c.FPS)))
	}
	return c
}

// Validate reports a configuration that cannot work, naming the field.
func (c EncoderConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Width <= 0 || c.Height <= 0 || c.Width%2 != 0 || c.Height%2 != 0:
		return fmt.Errorf("%w: Width x Height = %dx%d must be positive and even (4:2:0 chroma)", ErrConfig, c.Width, c.Height)
	case c.Width > 8192 || c.Height > 8192:
		return fmt.Errorf("%w: Width x Height = %dx%d is beyond H.264 level 6.2 (8192 px)", ErrConfig, c.Width, c.Height)
	case !(c.FPS > 0 && c.FPS <= 1000):
		return fmt.Errorf("%w: FPS = %g must be in (0, 1000]", ErrConfig, c.FPS)
	case c.BitrateKbps < 0:
		return fmt.Errorf("%w: BitrateKbps = %d must be positive (0 selects the default)", ErrConfig, c.BitrateKbps)
	case c.GOP < 0:
		return fmt.Errorf("%w: GOP = %d must be positive (0 selects the default)", ErrConfig, c.GOP)
	case c.Threads < 0:
		return fmt.Errorf("%w: Threads = %d must be >= 0", ErrConfig, c.Threads)
	}
	return nil
}

// AccessUnit is one encoded picture.
type AccessUnit struct {
	// NALUs are the NAL units without start codes; an IDR access unit starts with SPS
	// and PPS.
	NALUs [][]byte
	// PTS is the presentation time given to Encode, at the 90 kHz resolution of RTP.
	PTS time.Duration
	// IDR is true for a picture decoding can start at.
	IDR bool
}

// H264Encoder encodes packed RGB images into H.264 access units. Create it with
// NewH264Encoder; Close it.
type H264Encoder struct {
	cfg      EncoderConfig
	c        *C.ed_encoder
	cleanup  runtime.Cleanup
	sps, pps []byte
	lastPTS  int64 // 90 kHz ticks of the last frame sent
	sent     bool
	pending  []AccessUnit
}

// NewH264Encoder opens an H.264 encoder. Errors wrap ErrConfig for a bad configuration
// and ErrNotFound when the FFmpeg build lacks the encoder.
func NewH264Encoder(cfg EncoderConfig) (*H264Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()

	cname := C.CString(cfg.Encoder)
	defer C.free(unsafe.Pointer(cname))
	codec := C.avcodec_find_encoder_by_name(cname)
	if codec == nil {
		return nil, fmt.Errorf("codec: encoder %q: %w (list them with `ffmpeg -hide_banner -encoders`)", cfg.Encoder, ErrNotFound)
	}
	if codec.id != C.AV_CODEC_ID_H264 {
		return nil, fmt.Errorf("%w: encoder %q makes %s, not H.264", ErrConfig, cfg.Encoder, C.GoString(C.avcodec_get_name(codec.id)))
	}
	if C.ed_supports_yuv420p(codec) == 0 {
		return nil, fmt.Errorf("%w: encoder %q does not take yuv420p frames from memory (hardware-frame encoders are not supported)", ErrConfig, cfg.Encoder)
	}

	opts := maps.Clone(lowLatencyOptions[cfg.Encoder])
	if opts == nil {
		opts = map[string]string{}
	}
	maps.Copy(opts, cfg.Options)
	var dict *C.AVDictionary
	defer C.av_dict_free(&dict)
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		ck, cv := C.CString(k), C.CString(opts[k])
		ret := C.av_dict_set(&dict, ck, cv, 0)
		C.free(unsafe.Pointer(ck))
		C.free(unsafe.Pointer(cv))
		if err := avError("av_dict_set "+k, ret); err != nil {
			return nil, fmt.Errorf("codec: encoder %q: %w", cfg.Encoder, err)
		}
	}

	fps := C.av_d2q(C.double(cfg.FPS), 100000)
	params := C.ed_encoder_params{
		width:    C.int(cfg.Width),
		height:   C.int(cfg.Height),
		fps_num:  fps.num,
		fps_den:  fps.den,
		bit_rate: C.int64_t(cfg.BitrateKbps) * 1000,
		gop:      C.int(cfg.GOP),
		threads:  C.int(cfg.Threads),
	}
	var c *C.ed_encoder
	if err := avError("avcodec_open2 "+cfg.Encoder, C.ed_encoder_open(&c, codec, &params, &dict)); err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	e := &H264Encoder{cfg: cfg, c: c}
	live.Add(1)
	e.cleanup = runtime.AddCleanup(e, freeEncoder, c)

	// Options the user asked for but the encoder ignored would silently change nothing.
	if unknown := unusedOptions(dict, cfg.Options); len(unknown) > 0 {
		e.Close()
		return nil, fmt.Errorf("%w: encoder %q does not know option(s) %q (see `ffmpeg -hide_banner -h encoder=%s`)",
			ErrConfig, cfg.Encoder, unknown, cfg.Encoder)
	}

	extradata := C.GoBytes(unsafe.Pointer(c.ctx.extradata), c.ctx.extradata_size)
	sps, pps, err := parseExtradata(extradata)
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("codec: encoder %q: %w", cfg.Encoder, err)
	}
	e.sps, e.pps = sps, pps
	return e, nil
}

func freeEncoder(c *C.ed_encoder) {
	C.ed_encoder_free(c)
	live.Add(-1)
}

// unusedOptions lists the keys of asked that are still in dict after avcodec_open2, which
// leaves there the options it did not consume.
func unusedOptions(dict *C.AVDictionary, asked map[string]string) []string {
	var out []string
	empty := C.CString("")
	defer C.free(unsafe.Pointer(empty))
	var e *C.AVDictionaryEntry
	for {
		e = C.av_dict_get(dict, empty, e, C.AV_DICT_IGNORE_SUFFIX)
		if e == nil {
			break
		}
		if k := C.GoString(e.key); hasKey(asked, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// Config returns the configuration in use, defaults filled in.
func (e *H264Encoder) Config() EncoderConfig { return e.cfg }

// SPS returns the sequence parameter set (without start code) for an SDP's
// sprop-parameter-sets. It is nil for an encoder that gives no global header until its
// first IDR has been encoded.
func (e *H264Encoder) SPS() []byte { return e.sps }

// PPS returns the picture parameter set (without start code); see SPS.
func (e *H264Encoder) PPS() []byte { return e.pps }

// Encode encodes img, presented at pts, and returns its access unit: NAL units without
// start codes. See EncodeAU.
func (e *H264Encoder) Encode(img camera.Image, pts time.Duration) ([][]byte, error) {
	au, _, err := e.EncodeAU(img, pts)
	return au.NALUs, err
}

// EncodeAU encodes img, presented at pts, and returns the oldest access unit the encoder
// has finished. With the low-latency settings this package uses that is img's own; an
// encoder with delay returns ok == false until its pipeline fills. PTS must grow: a pts
// not after the previous one is moved one 90 kHz tick after it (the encoder would reject
// it). img must have the configured size; it is only read during the call.
func (e *H264Encoder) EncodeAU(img camera.Image, pts time.Duration) (au AccessUnit, ok bool, err error) {
	if e.c == nil {
		return AccessUnit{}, false, fmt.Errorf("codec: encode: %w", ErrClosed)
	}
	if img.Width != e.cfg.Width || img.Height != e.cfg.Height || len(img.Pix) != 3*img.Width*img.Height {
		return AccessUnit{}, false, fmt.Errorf("%w: image is %dx%d with %d bytes, encoder takes %dx%d RGB (%d bytes): open a new encoder for another size",
			ErrConfig, img.Width, img.Height, len(img.Pix), e.cfg.Width, e.cfg.Height, 3*e.cfg.Width*e.cfg.Height)
	}
	ticks := DurationToTicks(pts)
	if e.sent && ticks <= e.lastPTS {
		ticks = e.lastPTS + 1
	}
	ret := C.ed_encoder_send(e.c, goBytesPtr(img.Pix), C.int64_t(ticks))
	if ret == C.ED_EAGAIN {
		// The encoder's output is full: drain it, then the frame fits.
		if err := e.receive(); err != nil {
			return AccessUnit{}, false, err
		}
		ret = C.ed_encoder_send(e.c, goBytesPtr(img.Pix), C.int64_t(ticks))
	}
	runtime.KeepAlive(img.Pix)
	if err := avError("avcodec_send_frame "+e.cfg.Encoder, ret); err != nil {
		return AccessUnit{}, false, fmt.Errorf("codec: %w", err)
	}
	e.lastPTS, e.sent = ticks, true
	if err := e.receive(); err != nil {
		return AccessUnit{}, false, err
	}
	if len(e.pending) == 0 {
		return AccessUnit{}, false, nil
	}
	au = e.pending[0]
	e.pending[0] = AccessUnit{}
	e.pending = e.pending[1:]
	return au, true, nil
}

// receive moves every finished packet out of the encoder into e.pending, copied to Go
// memory.
func (e *H264Encoder) receive() error {
	for {
		ret := C.avcodec_receive_packet(e.c.ctx, e.c.pkt)
		if ret == C.ED_EAGAIN || ret == C.ED_EOF {
			return nil
		}
		if err := avError("avcodec_receive_packet "+e.cfg.Encoder, ret); err != nil {
			return fmt.Errorf("codec: %w", err)
		}
		data := C.GoBytes(unsafe.Pointer(e.c.pkt.data), e.c.pkt.size)
		pts := int64(e.c.pkt.pts)
		C.av_packet_unref(e.c.pkt)

		nalus, err := splitAnnexB(data)
		if err != nil {
			return fmt.Errorf("codec: encoder %q output: %w", e.cfg.Encoder, err)
		}
		for _, n := range nalus {
			switch naluType(n) {
			case naluTypeSPS:
				e.sps = n
			case naluTypePPS:
				e.pps = n
			}
		}
		au := AccessUnit{NALUs: nalus, PTS: TicksToDuration(pts), IDR: IsIDR(nalus)}
		if au.IDR {
			au.NALUs = withParameterSets(nalus, e.sps, e.pps)
		}
		e.pending = append(e.pending, au)
	}
}

// Close frees the encoder's C memory. It is idempotent; the encoder cannot be used after.
func (e *H264Encoder) Close() {
	if e.c == nil {
		return
	}
	e.cleanup.Stop()
	freeEncoder(e.c)
	e.c = nil
	e.pending = nil
}

// DurationToTicks and TicksToDuration convert between time and the 90 kHz RTP clock,
// rounding both ways so that a tick count survives the round trip exactly.
func DurationToTicks(d time.Duration) int64 {
	n := int64(d) * 9 // 90000 ticks / 1e9 ns = 9 / 100000
	if n < 0 {
		return (n - 50000) / 100000
	}
	return (n + 50000) / 100000
}

// TicksToDuration is the inverse of DurationToTicks.
func TicksToDuration(t int64) time.Duration {
	n := t * 100000
	if n < 0 {
		return time.Duration((n - 4) / 9)
	}
	return time.Duration((n + 4) / 9)
}
