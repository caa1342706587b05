package rtspserve

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
)

// udpPair is an RTP socket on an even port and the RTCP socket on the port after it,
// bound before the gortsplib server starts. gortsplib insists on that pairing and binds
// the addresses it is given itself; to offer "any free pair" without a race between
// finding a free pair and binding it (other processes, parallel tests), we bind first
// and hand the open sockets to gortsplib through Server.ListenPacket.
type udpPair struct {
	mu        sync.Mutex
	rtp, rtcp net.PacketConn // nil once handed over
	rtpAddr   string
	rtcpAddr  string
	loss      *lossyRTP // drops on the RTP socket when set (Config.UDPLoss)
}

// bindUDPPair binds RTP to host:rtpPort and RTCP to host:rtpPort+1; with rtpPort 0 it
// looks for a free pair.
func bindUDPPair(host string, rtpPort int) (*udpPair, error) {
	if rtpPort != 0 {
		return bindPairAt(host, rtpPort)
	}
	var lastErr error
	for range 64 {
		probe, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		port := probe.LocalAddr().(*net.UDPAddr).Port
		if port%2 == 0 && port < 65535 {
			rtcp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port+1)))
			if err == nil {
				return newUDPPair(probe, rtcp), nil
			}
			lastErr = err
		}
		probe.Close()
	}
	return nil, fmt.Errorf("no free pair of consecutive UDP ports on %q after 64 tries (last: %v): set UDPRTPPort", host, lastErr)
}

func bindPairAt(host string, rtpPort int) (*udpPair, error) {
	rtp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(rtpPort)))
	if err != nil {
		return nil, fmt.Errorf("UDPRTPPort %d: %w", rtpPort, err)
	}
	rtcp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(rtpPort+1)))
	if err != nil {
		rtp.Close()
		return nil, fmt.Errorf("UDPRTPPort %d: RTCP port %d: %w", rtpPort, rtpPort+1, err)
	}
	return newUDPPair(rtp, rtcp), nil
}

func newUDPPair(rtp, rtcp net.PacketConn) *udpPair {
	return &udpPair{rtp: rtp, rtcp: rtcp, rtpAddr: rtp.LocalAddr().String(), rtcpAddr: rtcp.LocalAddr().String()}
}

// listenPacket is gortsplib's Server.ListenPacket: it hands over the bound sockets, once
// each. Any other address is refused: this server offers no multicast.
func (p *udpPair) listenPacket(_, address string) (net.PacketConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var c net.PacketConn
	switch address {
	case p.rtpAddr:
		c, p.rtp = p.rtp, nil
		if c != nil && p.loss != nil {
			c = &lossyConn{UDPConn: c.(*net.UDPConn), loss: p.loss}
		}
	case p.rtcpAddr:
		c, p.rtcp = p.rtcp, nil
	}
	if c == nil {
		return nil, fmt.Errorf("rtspserve: unexpected UDP listen on %s", address)
	}
	return c, nil
}

// closeUnused closes the sockets gortsplib did not take (when its Start failed early).
func (p *udpPair) closeUnused() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, c := range []*net.PacketConn{&p.rtp, &p.rtcp} {
		if *c != nil {
			errs = append(errs, (*c).Close())
			*c = nil
		}
	}
	return errors.Join(errs...)
}

// lossyRTP decides which outgoing RTP datagrams to drop (Config.UDPLoss).
type lossyRTP struct {
	fraction float64
	mu       sync.Mutex
	rng      *rand.Rand // not safe for concurrent use: gortsplib writes from many goroutines
	dropped  atomic.Uint64
}

func newLossyRTP(cfg UDPLoss) *lossyRTP {
	return &lossyRTP{fraction: cfg.Fraction, rng: rand.New(rand.NewPCG(cfg.Seed, 0x65646765))}
}

func (l *lossyRTP) drop() bool {
	l.mu.Lock()
	d := l.rng.Float64() < l.fraction
	l.mu.Unlock()
	if d {
		l.dropped.Add(1)
	}
	return d
}

// lossyConn is the server's RTP socket with loss on the way out. It embeds the
// *net.UDPConn because gortsplib also needs its SyscallConn and SetReadBuffer.
type lossyConn struct {
	*net.UDPConn
	loss *lossyRTP
}

// WriteTo reports a dropped datagram as sent, as a lossy link would.
func (c *lossyConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.loss.drop() {
		return len(b), nil
	}
	return c.UDPConn.WriteTo(b, addr)
}
