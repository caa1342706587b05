package rtsp

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"

	"github.com/edgedepth/edgedepth/camera"
)

// Codec names in Stats.Codec.
const (
	CodecH264  = "h264"
	CodecH265  = "h265"
	CodecMJPEG = "mjpeg"
)

// nalKind is what the access-unit glue needs to know about a NAL unit.
type nalKind uint8

const (
	nalOther nalKind = iota
	nalAUD
	nalVPS
	nalSPS
	nalPPS
	nalRandomAccess // a slice of a picture decoding can start at
)

// classify returns the kind of an H.264 (ITU-T H.264 table 7-1) or H.265 (ITU-T H.265
// table 7-1) NAL unit.
func classify(codec string, nalu []byte) nalKind {
	if len(nalu) == 0 {
		return nalOther
	}
	if codec == CodecH265 {
		switch t := (nalu[0] >> 1) & 0x3f; {
		case t >= 16 && t <= 21: // BLA, IDR and CRA pictures (IRAP)
			return nalRandomAccess
		case t == 32:
			return nalVPS
		case t == 33:
			return nalSPS
		case t == 34:
			return nalPPS
		case t == 35:
			return nalAUD
		}
		return nalOther
	}
	switch nalu[0] & 0x1f {
	case 5:
		return nalRandomAccess
	case 7:
		return nalSPS
	case 8:
		return nalPPS
	case 9:
		return nalAUD
	}
	return nalOther
}

// parameterSets are the newest parameter sets of a stream: from the SDP first, replaced
// by those the stream carries in-band.
type parameterSets struct {
	vps, sps, pps []byte
}

// complete reports whether decoding can start with these sets.
func (p *parameterSets) complete(codec string) bool {
	return len(p.sps) > 0 && len(p.pps) > 0 && (codec != CodecH265 || len(p.vps) > 0)
}

// assembleAU prepares an H.264 or H.265 access unit from the network for the decoder.
// It learns the parameter sets the access unit carries and, when it holds a
// random-access picture, puts in front of its slices whichever of VPS/SPS/PPS it lacks
// (publishers such as ffmpeg send them only in the SDP, and a decoder that joins at such
// a picture cannot decode it without them). Access unit delimiters stay first (H.264
// 7.4.1.2.3, H.265 7.4.2.4.4). Empty NAL units are dropped. The result is a fresh copy in
// one buffer: the input may alias packet buffers that the RTSP client reuses.
func assembleAU(codec string, au [][]byte, ps *parameterSets) (out [][]byte, randomAccess bool) {
	var has [nalRandomAccess + 1]bool
	size := 0
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		k := classify(codec, n)
		has[k] = true
		size += len(n)
		switch k {
		case nalVPS:
			ps.vps = bytes.Clone(n)
		case nalSPS:
			ps.sps = bytes.Clone(n)
		case nalPPS:
			ps.pps = bytes.Clone(n)
		}
	}
	randomAccess = has[nalRandomAccess]
	var prepend [][]byte
	if randomAccess {
		if codec == CodecH265 && !has[nalVPS] && len(ps.vps) > 0 {
			prepend = append(prepend, ps.vps)
		}
		if !has[nalSPS] && len(ps.sps) > 0 {
			prepend = append(prepend, ps.sps)
		}
		if !has[nalPPS] && len(ps.pps) > 0 {
			prepend = append(prepend, ps.pps)
		}
	}
	for _, n := range prepend {
		size += len(n)
	}
	buf := make([]byte, 0, size)
	out = make([][]byte, 0, len(au)+len(prepend))
	add := func(n []byte) {
		start := len(buf)
		buf = append(buf, n...)
		out = append(out, buf[start:len(buf):len(buf)])
	}
	inserted := len(prepend) == 0
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if !inserted && classify(codec, n) != nalAUD {
			for _, p := range prepend {
				add(p)
			}
			inserted = true
		}
		add(n)
	}
	if !inserted { // only delimiters: nothing to decode, but keep the sets with them
		for _, p := range prepend {
			add(p)
		}
	}
	return out, randomAccess
}

// maxJPEGSide bounds the pictures decodeJPEG accepts: RTP/MJPEG (RFC 2435) carries at
// most 2040 pixels a side; a bigger header is corrupt and must not make us allocate.
const maxJPEGSide = 2040

// errJPEGSize is returned for JPEG headers beyond maxJPEGSide.
var errJPEGSize = errors.New("jpeg: picture larger than RTP/MJPEG can carry")

// decodeJPEG decodes one JPEG picture from an MJPEG stream into packed RGB.
func decodeJPEG(b []byte) (camera.Image, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return camera.Image{}, fmt.Errorf("jpeg header: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxJPEGSide || cfg.Height > maxJPEGSide {
		return camera.Image{}, fmt.Errorf("%w: %dx%d", errJPEGSize, cfg.Width, cfg.Height)
	}
	im, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return camera.Image{}, fmt.Errorf("jpeg: %w", err)
	}
	return toRGB(im), nil
}

// toRGB converts a decoded JPEG to packed RGB. The YCbCr and Gray paths avoid
// image.Image.At, which allocates a color.Color per pixel (several times slower).
func toRGB(im image.Image) camera.Image {
	b := im.Bounds()
	switch m := im.(type) {
	case *image.YCbCr:
		out := camera.NewImage(b.Dx(), b.Dy())
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				i += 3
			}
		}
		return out
	case *image.Gray:
		out := camera.NewImage(b.Dx(), b.Dy())
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for _, v := range m.Pix[m.PixOffset(b.Min.X, y):m.PixOffset(b.Max.X, y)] {
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = v, v, v
				i += 3
			}
		}
		return out
	}
	return camera.FromImage(im)
}
