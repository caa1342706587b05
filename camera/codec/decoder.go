package codec

// #include <stdlib.h>
// #include "codec.h"
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"unsafe"

	"github.com/edgedepth/edgedepth/camera"
)

// Codec names accepted by NewDecoder.
const (
	CodecH264 = "h264"
	CodecH265 = "h265"
)

// NoPTS marks a picture whose presentation time the decoder could not tell (libav's
// AV_NOPTS_VALUE).
const NoPTS int64 = math.MinInt64

// Decoder decodes H.264 or H.265 access units into packed RGB images. Create it with
// NewDecoder or NewH264Decoder; Close it.
type Decoder struct {
	codec   string // CodecH264 or CodecH265
	name    string // FFmpeg decoder name
	c       *C.ed_decoder
	cleanup runtime.Cleanup
	annexB  []byte // reused buffer for the access unit in Annex B form
}

// H264Decoder is the name the first version of this package gave Decoder; it decodes
// whatever codec its constructor opened.
type H264Decoder = Decoder

// Picture is one decoded image and the presentation time its access unit was given.
type Picture struct {
	Image camera.Image
	// PTS is the pts passed to DecodeTimed with the access unit that coded this picture
	// (pictures come out in display order, so not necessarily the last one), or NoPTS.
	PTS int64
}

// NewH264Decoder opens the FFmpeg H.264 decoder called name: "" or "h264" for FFmpeg's
// own software decoder, or a hardware one such as "h264_cuvid" (NVIDIA desktop GPU) or
// "h264_nvv4l2dec" / "h264_nvmpi" (Jetson, where FFmpeg was built with it). The decoder is
// set for low delay: each access unit gives its picture at once, in decoding order, which
// is display order for streams without B-frames (all that camera/codec's encoders make).
// For streams from elsewhere use NewDecoder, which honours reordering.
func NewH264Decoder(name string) (*H264Decoder, error) {
	return openDecoder(CodecH264, name, true)
}

// NewDecoder opens a decoder for codec ("h264", "h265" or its alias "hevc"; case does not
// matter) through the FFmpeg decoder called name: "" selects FFmpeg's software decoder
// ("h264" or "hevc"); hardware ones are chosen by name, such as "h264_nvv4l2dec" and
// "hevc_nvv4l2dec" on a Jetson or "h264_cuvid" / "hevc_cuvid" with an NVIDIA desktop GPU
// (list them with `ffmpeg -hide_banner -decoders`). Pictures come out in display order:
// for a stream with B-frames, after the reorder delay the stream declares. Errors wrap
// ErrNotFound when FFmpeg lacks the decoder and ErrConfig when it decodes another codec.
func NewDecoder(codec, name string) (*Decoder, error) {
	switch strings.ToLower(codec) {
	case CodecH264:
		return openDecoder(CodecH264, name, false)
	case CodecH265, "hevc":
		return openDecoder(CodecH265, name, false)
	}
	return nil, fmt.Errorf("%w: codec %q: want %q or %q", ErrConfig, codec, CodecH264, CodecH265)
}

func openDecoder(codec, name string, lowDelay bool) (*Decoder, error) {
	wantID, defaultName, label := C.enum_AVCodecID(C.AV_CODEC_ID_H264), "h264", "H.264"
	if codec == CodecH265 {
		wantID, defaultName, label = C.AV_CODEC_ID_HEVC, "hevc", "H.265"
	}
	if name == "" {
		name = defaultName
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	av := C.avcodec_find_decoder_by_name(cname)
	if av == nil {
		return nil, fmt.Errorf("codec: decoder %q: %w (list them with `ffmpeg -hide_banner -decoders`)", name, ErrNotFound)
	}
	if av.id != wantID {
		return nil, fmt.Errorf("%w: decoder %q reads %s, not %s", ErrConfig, name, C.GoString(C.avcodec_get_name(av.id)), label)
	}
	var low C.int
	if lowDelay {
		low = 1
	}
	var c *C.ed_decoder
	if err := avError("avcodec_open2 "+name, C.ed_decoder_open(&c, av, low)); err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	d := &Decoder{codec: codec, name: name, c: c}
	live.Add(1)
	d.cleanup = runtime.AddCleanup(d, freeDecoder, c)
	return d, nil
}

func freeDecoder(c *C.ed_decoder) {
	C.ed_decoder_free(c)
	live.Add(-1)
}

// Codec returns CodecH264 or CodecH265.
func (d *Decoder) Codec() string { return d.codec }

// Name returns the FFmpeg decoder's name.
func (d *Decoder) Name() string { return d.name }

// Decode decodes one access unit (NAL units without start codes) and returns the newest
// picture it completed, converted to RGB; ok is false when the access unit completed none
// (parameter sets only, or a decoder that buffers). Decoding can start only at an IDR
// with its SPS and PPS: prepend the SDP's parameter sets to the first IDR if the stream
// does not repeat them in-band. A corrupt access unit is an error; the decoder stays
// usable and conceals what it can until the next IDR.
func (d *Decoder) Decode(au [][]byte) (img camera.Image, ok bool, err error) {
	pics, err := d.DecodeTimed(au, NoPTS)
	if err != nil || len(pics) == 0 {
		return camera.Image{}, false, err
	}
	// A live consumer wants the newest picture; older ones completed by the same access
	// unit (only with a buffering decoder) are dropped.
	return pics[len(pics)-1].Image, true, nil
}

// DecodeTimed decodes one access unit presented at pts (in any unit, such as RTP clock
// ticks) and returns every picture it completed, oldest first, each with the pts of the
// access unit that coded it: with B-frames the decoder returns pictures in display
// order, and the pts tells which access unit each came from. Errors are as for Decode.
func (d *Decoder) DecodeTimed(au [][]byte, pts int64) ([]Picture, error) {
	if d.c == nil {
		return nil, fmt.Errorf("codec: decode: %w", ErrClosed)
	}
	d.annexB = appendAnnexB(d.annexB[:0], au)
	if len(d.annexB) == 0 {
		return nil, nil
	}
	ret := C.ed_decoder_send_annexb(d.c, goBytesPtr(d.annexB), C.int(len(d.annexB)), C.int64_t(pts))
	if err := avError("avcodec_send_packet "+d.name, ret); err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	var out []Picture
	for {
		ret := C.avcodec_receive_frame(d.c.ctx, d.c.frame)
		if ret == C.ED_EAGAIN || ret == C.ED_EOF {
			return out, nil
		}
		if err := avError("avcodec_receive_frame "+d.name, ret); err != nil {
			return out, fmt.Errorf("codec: %w", err)
		}
		w, h := int(d.c.frame.width), int(d.c.frame.height)
		if w <= 0 || h <= 0 {
			C.av_frame_unref(d.c.frame)
			continue // nothing to convert; a broken stream, not our business to report twice
		}
		img := camera.NewImage(w, h)
		pic := Picture{Image: img, PTS: int64(C.ed_frame_pts(d.c))}
		ret = C.ed_decoder_frame_to_rgb(d.c, goBytesPtr(img.Pix))
		C.av_frame_unref(d.c.frame)
		if err := avError("sws_scale "+d.name, ret); err != nil {
			return out, fmt.Errorf("codec: %w", err)
		}
		out = append(out, pic)
	}
}

// Close frees the decoder's C memory. It is idempotent; the decoder cannot be used after.
func (d *Decoder) Close() {
	if d.c == nil {
		return
	}
	d.cleanup.Stop()
	freeDecoder(d.c)
	d.c = nil
}
