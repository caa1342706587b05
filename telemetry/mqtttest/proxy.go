package mqtttest

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to a target and can break them the ways a robot's
// network breaks: abruptly (Sever: both ends see a reset), silently (Blackhole:
// nothing arrives any more and neither end is told, as when Wi-Fi drops out of
// range), or by refusing new connections (Refuse). Point the client under test at
// Proxy.URL and the broker stays untouched.
type Proxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	refuse atomic.Bool

	mu    sync.Mutex
	pairs map[*pair]struct{}
}

type pair struct {
	client, server net.Conn
	blackholed     atomic.Bool
}

// StartProxy listens on a free loopback port and forwards to target (host:port). It
// closes everything when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, ln: ln, target: target, pairs: make(map[*pair]struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is "tcp://" + Addr.
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

// Refuse makes the proxy close new connections right after accepting them (on) or
// forward them again (off).
func (p *Proxy) Refuse(on bool) { p.refuse.Store(on) }

// Sever resets every open connection at once, on both sides.
func (p *Proxy) Sever() {
	for _, pr := range p.take() {
		reset(pr.client)
		reset(pr.server)
	}
}

// Blackhole makes every open connection silently discard what it carries, in both
// directions, without closing anything: each end only notices through its own
// timeouts (MQTT keep-alive). The connections stay open until Sever or the end of
// the test. New connections are not affected (combine with Refuse).
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pr := range p.pairs {
		pr.blackholed.Store(true)
	}
}

// Conns is the number of open proxied connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pairs)
}

func (p *Proxy) take() []*pair {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*pair, 0, len(p.pairs))
	for pr := range p.pairs {
		out = append(out, pr)
	}
	clear(p.pairs)
	return out
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if p.refuse.Load() {
			reset(c)
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			reset(c)
			continue
		}
		pr := &pair{client: c, server: s}
		p.mu.Lock()
		p.pairs[pr] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(pr, c, s) })
		p.wg.Go(func() { p.pipe(pr, s, c) })
	}
}

// pipe copies src to dst until either fails. A failure closes both ends and so ends
// the other direction too, unless the pair is black-holed: then nothing is passed on,
// not even the close.
func (p *Proxy) pipe(pr *pair, src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !pr.blackholed.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			if pr.blackholed.Load() && !errors.Is(err, net.ErrClosed) {
				// Keep the other end open and ignorant; Sever or the end of the test
				// closes it.
				return
			}
			p.mu.Lock()
			delete(p.pairs, pr)
			p.mu.Unlock()
			_ = src.Close()
			_ = dst.Close()
			return
		}
	}
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.Sever()
	p.wg.Wait()
}

// reset closes c with a TCP RST instead of a FIN, like a crashed peer or a NAT that
// forgot the connection.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
