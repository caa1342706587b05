package codec

// #include <stdlib.h>
// #include "codec.h"
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/edgedepth/edgedepth/camera"
)

// H264Decoder decodes H.264 access units into packed RGB images. Create it with
// NewH264Decoder; Close it.
type H264Decoder struct {
	name    string
	c       *C.ed_decoder
	cleanup runtime.Cleanup
	annexB  []byte // reused buffer for the access unit in Annex B form
}

// NewH264Decoder opens the FFmpeg H.264 decoder called name: "" or "h264" for FFmpeg's
// own software decoder, or a hardware one such as "h264_cuvid" (NVIDIA desktop GPU) or
// "h264_nvv4l2dec" / "h264_nvmpi" (Jetson, where FFmpeg was built with it). The decoder is
// set for low delay: each access unit gives its picture at once.
func NewH264Decoder(name string) (*H264Decoder, error) {
	if name == "" {
		name = "h264"
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	codec := C.avcodec_find_decoder_by_name(cname)
	if codec == nil {
		return nil, fmt.Errorf("codec: decoder %q: %w (list them with `ffmpeg -hide_banner -decoders`)", name, ErrNotFound)
	}
	if codec.id != C.AV_CODEC_ID_H264 {
		return nil, fmt.Errorf("%w: decoder %q reads %s, not H.264", ErrConfig, name, C.GoString(C.avcodec_get_name(codec.id)))
	}
	var c *C.ed_decoder
	if err := avError("avcodec_open2 "+name, C.ed_decoder_open(&c, codec)); err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	d := &H264Decoder{name: name, c: c}
	live.Add(1)
	d.cleanup = runtime.AddCleanup(d, freeDecoder, c)
	return d, nil
}

func freeDecoder(c *C.ed_decoder) {
	C.ed_decoder_free(c)
	live.Add(-1)
}

// Decode decodes one access unit (NAL units without start codes) and returns the newest
// picture it completed, converted to RGB; ok is false when the access unit completed none
// (parameter sets only, or a decoder that buffers). Decoding can start only at an IDR
// with its SPS and PPS: prepend the SDP's parameter sets to the first IDR if the stream
// does not repeat them in-band. A corrupt access unit is an error; the decoder stays
// usable and conceals what it can until the next IDR.
func (d *H264Decoder) Decode(au [][]byte) (img camera.Image, ok bool, err error) {
	if d.c == nil {
		return camera.Image{}, false, fmt.Errorf("codec: decode: %w", ErrClosed)
	}
	d.annexB = appendAnnexB(d.annexB[:0], au)
	if len(d.annexB) == 0 {
		return camera.Image{}, false, nil
	}
	ret := C.ed_decoder_send_annexb(d.c, goBytesPtr(d.annexB), C.int(len(d.annexB)))
	if err := avError("avcodec_send_packet "+d.name, ret); err != nil {
		return camera.Image{}, false, fmt.Errorf("codec: %w", err)
	}
	for {
		ret := C.avcodec_receive_frame(d.c.ctx, d.c.frame)
		if ret == C.ED_EAGAIN || ret == C.ED_EOF {
			return img, ok, nil
		}
		if err := avError("avcodec_receive_frame "+d.name, ret); err != nil {
			return camera.Image{}, false, fmt.Errorf("codec: %w", err)
		}
		// A live consumer wants the newest picture; older ones completed by the same
		// access unit (only with a buffering decoder) are overwritten.
		img = camera.NewImage(int(d.c.frame.width), int(d.c.frame.height))
		ret = C.ed_decoder_frame_to_rgb(d.c, goBytesPtr(img.Pix))
		C.av_frame_unref(d.c.frame)
		if err := avError("sws_scale "+d.name, ret); err != nil {
			return camera.Image{}, false, fmt.Errorf("codec: %w", err)
		}
		ok = true
	}
}

// Close frees the decoder's C memory. It is idempotent; the decoder cannot be used after.
func (d *H264Decoder) Close() {
	if d.c == nil {
		return
	}
	d.cleanup.Stop()
	freeDecoder(d.c)
	d.c = nil
}
