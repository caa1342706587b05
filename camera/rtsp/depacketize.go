package rtsp

import (
	"bytes"
	"errors"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmjpeg"
	"github.com/pion/rtp"
)

// accessUnit is one coded picture, handed from the RTSP client's goroutine to Run's.
type accessUnit struct {
	nalus        [][]byte // H.264, H.265: NAL units without start codes
	jpeg         []byte   // MJPEG: one JPEG picture
	randomAccess bool     // decoding can start here (always true for MJPEG)
	pts          int64    // RTP timestamp in clock-rate ticks since the stream's first packet
	recv         time.Time
	ntp          time.Time // from RTCP sender reports, when hasNTP
	hasNTP       bool
}

// pushResult counts what one packet revealed.
type pushResult struct {
	lost    uint64 // packets missing before this one (RTP sequence gap)
	corrupt uint64 // access units that could not be assembled
	skipped uint64 // complete access units dropped while waiting for a random-access point
}

// depacketizer turns the RTP packets of one video track into access units: it detects
// lost packets by sequence gaps, drops the access unit they belong to, and for H.264 and
// H.265 then skips to the next random-access picture (a decoder fed pictures whose
// references are missing shows smeared garbage until then). It unwraps the 32-bit RTP
// timestamp into a 64-bit PTS itself, so PTS does not depend on the RTSP client's time
// decoder (which waits for a packet whose PTS equals its DTS). One goroutine at a time.
type depacketizer struct {
	codec string
	forma format.Format
	ps    parameterSets

	h264  *rtph264.Decoder
	h265  *rtph265.Decoder
	mjpeg *rtpmjpeg.Decoder

	haveSeq    bool
	lastSeq    uint16
	haveTS     bool
	lastTS     uint32
	pts        int64
	inProgress bool // packets of an unfinished access unit are held by the RTP decoder
	needKey    bool
}

// newDepacketizer returns a depacketizer for an H.264, H.265 or MJPEG format.
func newDepacketizer(forma format.Format) (*depacketizer, error) {
	d := &depacketizer{forma: forma, needKey: true}
	switch f := forma.(type) {
	case *format.H264:
		d.codec = CodecH264
		d.ps.sps, d.ps.pps = f.SafeParams()
	case *format.H265:
		d.codec = CodecH265
		d.ps.vps, d.ps.sps, d.ps.pps = f.SafeParams()
	case *format.MJPEG:
		d.codec = CodecMJPEG
		d.needKey = false
	default:
		return nil, errors.New("unsupported format " + forma.Codec())
	}
	if err := d.reset(); err != nil {
		return nil, err
	}
	return d, nil
}

// reset drops whatever the RTP decoder holds (fragments of a picture with a hole).
func (d *depacketizer) reset() error {
	var err error
	switch f := d.forma.(type) {
	case *format.H264:
		d.h264, err = f.CreateDecoder()
	case *format.H265:
		d.h265, err = f.CreateDecoder()
	case *format.MJPEG:
		d.mjpeg, err = f.CreateDecoder()
	}
	d.inProgress = false
	return err
}

// push takes the next packet of the track, received at recv. It returns an access unit
// when the packet completed one that can be decoded.
func (d *depacketizer) push(pkt *rtp.Packet, recv time.Time) (au accessUnit, ok bool, res pushResult) {
	if d.haveSeq {
		diff := int16(pkt.SequenceNumber - d.lastSeq)
		if diff <= 0 {
			return au, false, res // a duplicate or a straggler from before a gap: already given up
		}
		if diff > 1 {
			res.lost = uint64(diff - 1)
			if d.inProgress {
				res.corrupt++
			}
			_ = d.reset() // recreating a decoder for a format that made one before cannot fail
			if d.codec != CodecMJPEG {
				d.needKey = true
			}
		}
	}
	d.haveSeq, d.lastSeq = true, pkt.SequenceNumber

	if d.haveTS {
		// Signed difference: B-frames step back in time, and the 32-bit clock wraps.
		d.pts += int64(int32(pkt.Timestamp - d.lastTS))
	}
	d.haveTS, d.lastTS = true, pkt.Timestamp

	var (
		nalus [][]byte
		jpg   []byte
		err   error
	)
	switch {
	case d.h264 != nil:
		nalus, err = d.h264.Decode(pkt)
	case d.h265 != nil:
		nalus, err = d.h265.Decode(pkt)
	default:
		jpg, err = d.mjpeg.Decode(pkt)
	}
	switch {
	case errors.Is(err, rtph264.ErrMorePacketsNeeded), errors.Is(err, rtph265.ErrMorePacketsNeeded),
		errors.Is(err, rtpmjpeg.ErrMorePacketsNeeded):
		d.inProgress = true
		return au, false, res
	case errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious), errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious),
		errors.Is(err, rtpmjpeg.ErrNonStartingPacketAndNoPrevious):
		// The tail of a picture whose start we did not see (joined mid-picture or after
		// a reset): nothing to count twice.
		return au, false, res
	case err != nil:
		res.corrupt++
		_ = d.reset()
		if d.codec != CodecMJPEG {
			d.needKey = true
		}
		return au, false, res
	}
	d.inProgress = false

	au = accessUnit{pts: d.pts, recv: recv, randomAccess: true}
	if d.codec == CodecMJPEG {
		au.jpeg = bytes.Clone(jpg)
		return au, true, res
	}
	au.nalus, au.randomAccess = assembleAU(d.codec, nalus, &d.ps)
	if d.needKey && !au.randomAccess {
		res.skipped++
		return accessUnit{}, false, res
	}
	if au.randomAccess && !d.ps.complete(d.codec) {
		res.skipped++ // no parameter sets yet, neither in the SDP nor in-band
		return accessUnit{}, false, res
	}
	d.needKey = false
	return au, true, res
}

// requireKey makes push skip to the next random-access picture (after a decoder error or
// a dropped access unit). Intra-only MJPEG needs no such wait.
func (d *depacketizer) requireKey() {
	if d.codec != CodecMJPEG {
		d.needKey = true
	}
}

// jitterEstimator is RFC 3550's interarrival jitter (section 6.4.1): the mean deviation,
// smoothed over 16 packets, of the difference between two packets' spacing in receive
// time and in RTP time. Bursts of packets of one picture share a timestamp and arrive
// together, so they add little; a network that delays some pictures shows up at once.
type jitterEstimator struct {
	rate        float64 // RTP clock rate, ticks per second
	first       time.Time
	have        bool
	prevTransit float64
	j           float64 // ticks
}

func (e *jitterEstimator) update(pts int64, recv time.Time) {
	if e.first.IsZero() {
		e.first = recv
	}
	transit := recv.Sub(e.first).Seconds()*e.rate - float64(pts)
	if e.have {
		d := transit - e.prevTransit
		if d < 0 {
			d = -d
		}
		e.j += (d - e.j) / 16
	}
	e.have, e.prevTransit = true, transit
}

// ms returns the jitter in milliseconds.
func (e *jitterEstimator) ms() float64 {
	if e.rate <= 0 {
		return 0
	}
	return e.j / e.rate * 1000
}
