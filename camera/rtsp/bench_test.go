package rtsp

import (
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/codec"
)

// BenchmarkDecodeH264_1280x720 measures the receive path per picture after the network:
// depacketizing, access-unit assembly, libavcodec decoding and the conversion to packed
// RGB, for a 1280x720 stream at 30 fps with one IDR a second.
func BenchmarkDecodeH264_1280x720(b *testing.B) {
	const w, h, n = 1280, 720, 30
	enc, err := codec.NewH264Encoder(codec.EncoderConfig{Width: w, Height: h, GOP: n, BitrateKbps: 4000})
	if err != nil {
		b.Fatal(err)
	}
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: enc.SPS(), PPS: enc.PPS()}
	rtpEnc, err := f.CreateEncoder()
	if err != nil {
		b.Fatal(err)
	}
	pictures := make([][]*rtp.Packet, n)
	for i := range n {
		img := camera.NewImage(w, h)
		for p := range img.Pix {
			img.Pix[p] = byte((p/3%w + p/(3*w) + 4*i) % 251)
		}
		au, err := enc.Encode(img, time.Duration(i)*scenePeriod)
		if err != nil {
			b.Fatal(err)
		}
		if pictures[i], err = rtpEnc.Encode(au); err != nil {
			b.Fatal(err)
		}
	}
	enc.Close()
	dp, err := newDepacketizer(f)
	if err != nil {
		b.Fatal(err)
	}
	dec, err := codec.NewDecoder(CodecH264, "")
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	var seq uint16
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for _, p := range pictures[i%n] {
			p.SequenceNumber, p.Timestamp = seq, uint32(i*3000)
			seq++
			au, ok, _ := dp.push(p, now)
			if !ok {
				continue
			}
			if _, err := dec.DecodeTimed(au.nalus, au.pts); err != nil {
				b.Fatal(err)
			}
		}
	}
}
