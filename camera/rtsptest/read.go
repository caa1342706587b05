package rtsptest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/pion/rtp"
)

// Packet is what a reader saw of one RTP packet.
type Packet struct {
	SequenceNumber uint16
	Timestamp      uint32
	Marker         bool // last packet of a picture, for the video formats
	// NTP is the packet's capture time from the sender's RTCP reports; HasNTP is false
	// until the first report has arrived.
	NTP    time.Time
	HasNTP bool
	// Received is when the packet reached the reader (wall clock).
	Received time.Time
}

// Reading is what Read received.
type Reading struct {
	// Codec is the format's codec as gortsplib names it: "H264", "H265", "M-JPEG", ...
	Codec   string
	Packets []Packet
	// Lost is the number of RTP packets gortsplib found missing (gaps in sequence
	// numbers); they are not in Packets.
	Lost uint64
}

// readQueue is how many packets Read buffers between gortsplib's callback and itself.
const readQueue = 4096

// Read plays the first format of rawURL's first media with a gortsplib client over
// transport ("tcp" or "udp"), until until returns true for the packets so far (it is
// asked after each packet), or ctx ends, or the server ends the session (both errors,
// returned with what was read). It decodes nothing: it is for checking what a server
// sends (codec, timestamps, loss).
func Read(ctx context.Context, rawURL, transport string, until func([]Packet) bool) (Reading, error) {
	var proto gortsplib.Protocol
	switch transport {
	case "tcp":
		proto = gortsplib.ProtocolTCP
	case "udp":
		proto = gortsplib.ProtocolUDP
	default:
		return Reading{}, fmt.Errorf("rtsptest: Read: transport %q: want tcp or udp", transport)
	}
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return Reading{}, err
	}
	var lost atomic.Uint64
	c := &gortsplib.Client{
		Scheme: u.Scheme, Host: u.Host, Protocol: &proto,
		// Counted, not logged: loss is what some tests are about.
		OnPacketsLost: func(n uint64) { lost.Add(n) },
		OnDecodeError: func(error) {},
	}
	if err := c.Start(); err != nil {
		return Reading{}, err
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		return Reading{}, fmt.Errorf("describe: %w", err)
	}
	if len(desc.Medias) == 0 || len(desc.Medias[0].Formats) == 0 {
		return Reading{}, errors.New("describe: no media")
	}
	medi, forma := desc.Medias[0], desc.Medias[0].Formats[0]
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return Reading{}, fmt.Errorf("setup: %w", err)
	}
	got := make(chan Packet, readQueue)
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		ntp, ok := c.PacketNTP(medi, pkt) // on every packet, or it may never be available
		select {
		case got <- Packet{pkt.SequenceNumber, pkt.Timestamp, pkt.Marker, ntp, ok, time.Now()}:
		default: // Read returned, or lags far behind: either way nobody looks any more
		}
	})
	if _, err := c.Play(nil); err != nil {
		return Reading{}, fmt.Errorf("play: %w", err)
	}
	ended := make(chan error, 1)
	go func() { ended <- c.Wait() }()
	defer func() { c.Close(); <-ended }()

	r := Reading{Codec: forma.Codec()}
	for !until(r.Packets) {
		select {
		case p := <-got:
			r.Packets = append(r.Packets, p)
		case err := <-ended:
			ended <- err // for the deferred receive
			r.Lost = lost.Load()
			return r, fmt.Errorf("session ended after %d packets: %w", len(r.Packets), err)
		case <-ctx.Done():
			r.Lost = lost.Load()
			return r, fmt.Errorf("after %d packets: %w", len(r.Packets), ctx.Err())
		}
	}
	r.Lost = lost.Load()
	return r, nil
}

// Count returns an until for Read that stops after n packets.
func Count(n int) func([]Packet) bool {
	return func(p []Packet) bool { return len(p) >= n }
}
