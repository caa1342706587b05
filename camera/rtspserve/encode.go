package rtspserve

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmjpeg"
	"github.com/pion/rtp"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/codec"
)

// eyeEncoder turns one eye's images into RTP packets. The packets' timestamps are left
// for the caller, which gives both eyes of a pair the same one.
type eyeEncoder interface {
	// format is the RTP format announced in the SDP.
	format() format.Format
	// encode encodes img captured ticks (90 kHz) after the first pair and returns its
	// packets and the ticks of the picture they carry (img's own with the low-latency
	// encoders used here); ok is false when nothing is ready yet.
	encode(img camera.Image, ticks int64) (pkts []*rtp.Packet, picTicks int64, ok bool, err error)
	// resize prepares for images of a new size.
	resize(width, height int) error
	// descChanged reports, once, that format() changed and the SDP must be reloaded.
	descChanged() bool
	close()
}

// RFC 2435 carries width and height in units of 8 pixels in one byte each.
const mjpegMaxSide = 255 * 8

// checkMJPEGSize reports a size RFC 2435 cannot carry, saying what to do about it.
func checkMJPEGSize(w, h int) error {
	if w <= 0 || h <= 0 || w%8 != 0 || h%8 != 0 || w > mjpegMaxSide || h > mjpegMaxSide {
		return fmt.Errorf("%w: the source gives %dx%d images but RTP/MJPEG (RFC 2435) carries only multiples of 8 up to %d px a side: use Codec %q or change the source's resolution",
			ErrImageSize, w, h, mjpegMaxSide, CodecH264)
	}
	return nil
}

type mjpegEncoder struct {
	quality int
	forma   *format.MJPEG
	rtpEnc  *rtpmjpeg.Encoder
	// rgba is reused. Go's JPEG encoder has a fast path for *image.RGBA; handing it an
	// *image.YCbCr converted here measured ~30% slower (it re-expands the chroma).
	rgba *image.RGBA
	buf  bytes.Buffer
}

func newMJPEGEncoder(quality int) (*mjpegEncoder, error) {
	f := &format.MJPEG{}
	enc, err := f.CreateEncoder()
	if err != nil {
		return nil, fmt.Errorf("rtp/mjpeg encoder: %w", err)
	}
	return &mjpegEncoder{quality: quality, forma: f, rtpEnc: enc}, nil
}

func (e *mjpegEncoder) format() format.Format { return e.forma }

func (e *mjpegEncoder) resize(w, h int) error {
	if err := checkMJPEGSize(w, h); err != nil {
		return err
	}
	e.rgba = image.NewRGBA(image.Rect(0, 0, w, h))
	return nil
}

func (e *mjpegEncoder) encode(img camera.Image, ticks int64) ([]*rtp.Packet, int64, bool, error) {
	if e.rgba == nil || e.rgba.Rect.Dx() != img.Width || e.rgba.Rect.Dy() != img.Height {
		if err := e.resize(img.Width, img.Height); err != nil {
			return nil, 0, false, err
		}
	}
	packRGBA(e.rgba.Pix, img.Pix)
	e.buf.Reset()
	if err := jpeg.Encode(&e.buf, e.rgba, &jpeg.Options{Quality: e.quality}); err != nil {
		return nil, 0, false, fmt.Errorf("jpeg: %w", err)
	}
	pkts, err := e.rtpEnc.Encode(e.buf.Bytes())
	if err != nil {
		return nil, 0, false, fmt.Errorf("rtp/mjpeg: %w", err)
	}
	return pkts, ticks, true, nil
}

func (e *mjpegEncoder) descChanged() bool { return false }

func (e *mjpegEncoder) close() {}

// packRGBA expands packed RGB into RGBA with opaque alpha.
func packRGBA(dst, src []byte) {
	for i, j := 0, 0; i+2 < len(src) && j+3 < len(dst); i, j = i+3, j+4 {
		dst[j], dst[j+1], dst[j+2], dst[j+3] = src[i], src[i+1], src[i+2], 0xff
	}
}

type h264Encoder struct {
	cfg    codec.EncoderConfig // Width and Height follow the images
	forma  *format.H264
	rtpEnc *rtph264.Encoder
	enc    *codec.H264Encoder
	// changed is set when forma's parameter sets changed since descChanged last said so.
	changed bool
}

func newH264Encoder(cfg Config) (*h264Encoder, error) {
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	rtpEnc, err := f.CreateEncoder()
	if err != nil {
		return nil, fmt.Errorf("rtp/h264 encoder: %w", err)
	}
	return &h264Encoder{
		cfg: codec.EncoderConfig{
			FPS:         cfg.FPS,
			BitrateKbps: cfg.BitrateKbps,
			GOP:         cfg.GOP,
			Encoder:     cfg.Encoder,
		},
		forma:  f,
		rtpEnc: rtpEnc,
	}, nil
}

func (e *h264Encoder) format() format.Format { return e.forma }

// resize opens an encoder for the new size and puts its parameter sets in the format,
// which the caller then reloads into the stream's SDP. It runs before the stream exists
// (first pair) and on a size change; the RTP encoder stays, so sequence numbers go on.
func (e *h264Encoder) resize(w, h int) error {
	cfg := e.cfg
	cfg.Width, cfg.Height = w, h
	enc, err := codec.NewH264Encoder(cfg)
	if err != nil {
		return fmt.Errorf("h264 encoder for %dx%d: %w", w, h, err)
	}
	if e.enc != nil {
		e.enc.Close()
	}
	e.enc = enc
	// Only this goroutine touches forma; the stream reads a copy made by ReloadDesc.
	e.forma.SPS, e.forma.PPS = enc.SPS(), enc.PPS()
	e.changed = true
	return nil
}

func (e *h264Encoder) descChanged() bool {
	c := e.changed
	e.changed = false
	return c
}

func (e *h264Encoder) encode(img camera.Image, ticks int64) ([]*rtp.Packet, int64, bool, error) {
	au, ok, err := e.enc.EncodeAU(img, codec.TicksToDuration(ticks))
	if err != nil || !ok {
		return nil, 0, false, err
	}
	// An encoder without a global header reveals its parameter sets with the first IDR.
	if au.IDR && (e.forma.SPS == nil || e.forma.PPS == nil) {
		e.forma.SPS, e.forma.PPS = e.enc.SPS(), e.enc.PPS()
		e.changed = true
	}
	pkts, err := e.rtpEnc.Encode(au.NALUs)
	if err != nil {
		return nil, 0, false, fmt.Errorf("rtp/h264: %w", err)
	}
	return pkts, codec.DurationToTicks(au.PTS), true, nil
}

func (e *h264Encoder) close() {
	if e.enc != nil {
		e.enc.Close()
		e.enc = nil
	}
}
