package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// DefaultBrokerAddr is where the embedded broker listens unless told otherwise.
const DefaultBrokerAddr = "127.0.0.1:1883"

// Broker is the embedded MQTT broker (mochi-mqtt) of the zero-setup default: the
// daemon publishes to it and tools on the robot (or a laptop through an SSH tunnel)
// subscribe to it, with nothing else to install. It keeps retained messages in memory
// only and accepts every client: it is meant to listen on the loopback interface.
type Broker struct {
	// Addr is the TCP host:port to listen on. Port 0 picks a free port (see
	// ListenAddr). A non-loopback address exposes an unauthenticated broker to the
	// network, which Run logs as a warning. Default "127.0.0.1:1883".
	Addr string
	// Log receives the broker's messages; mochi's own chatter is passed on from
	// warning level up only. Default: discard.
	Log *slog.Logger

	listen listenState
}

// Ready is closed once the broker accepts connections. It stays open if Run fails
// before that, so wait on Run's result too.
func (b *Broker) Ready() <-chan struct{} { return b.listen.readyChan() }

// ListenAddr is the address the broker listens on once Ready is closed ("" before).
func (b *Broker) ListenAddr() string { return b.listen.get() }

// Run listens, serves clients until ctx is cancelled, then disconnects every client
// and returns nil once all of the broker's connections are closed. It fails at once
// if it cannot listen, with a message that says what to change.
func (b *Broker) Run(ctx context.Context) error {
	addr := b.Addr
	if addr == "" {
		addr = DefaultBrokerAddr
	}
	log := b.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "mqtt-broker")

	// We listen ourselves rather than let mochi do it: we own the error message, we
	// know the bound address without racing, and we keep accepting after a transient
	// accept error (mochi's TCP listener stops for good on the first one, e.g. when
	// the process runs out of file descriptors).
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		hint := "set mqtt.embedded_broker.addr or disable it"
		if errors.Is(err, syscall.EADDRINUSE) {
			hint = "another broker running? " + hint
		}
		return &listenError{what: "embedded MQTT broker", addr: addr, hint: hint, err: err}
	}
	bound := ln.Addr().String()
	if !isLoopback(bound) {
		log.Warn("embedded MQTT broker listens beyond this machine and accepts every client without authentication: anyone on the network can read and command the robot", "addr", bound)
	}

	server := mochi.New(&mochi.Options{
		Logger: slog.New(&minLevelHandler{next: log.Handler(), min: slog.LevelWarn}),
		// $SYS statistics every 10 s rather than every second: nobody reads them on
		// a robot, and each update wakes the CPU.
		SysTopicResendInterval: 10,
	})
	if err := server.AddHook(new(auth.AllowHook), nil); err != nil {
		_ = ln.Close()
		return fmt.Errorf("embedded MQTT broker: auth hook: %w", err)
	}
	bl := &brokerListener{ln: ln, log: log, conns: make(map[net.Conn]struct{}), served: make(chan struct{})}
	if err := server.AddListener(bl); err != nil {
		_ = ln.Close()
		return fmt.Errorf("embedded MQTT broker: %w", err)
	}
	if err := server.Serve(); err != nil {
		_ = server.Close()
		return fmt.Errorf("embedded MQTT broker: serve: %w", err)
	}
	b.listen.set(bound)
	log.Info("embedded MQTT broker listening", "addr", bound)

	<-ctx.Done()
	// Close closes our listener (brokerListener.Close), disconnects the clients and
	// waits for mochi's per-client goroutines.
	_ = server.Close()
	<-bl.served
	bl.connsWG.Wait()
	log.Info("embedded MQTT broker stopped")
	return nil
}

// brokerListener adapts a net.Listener to mochi's listeners.Listener and tracks
// every connection so that Close can wait for all of them.
type brokerListener struct {
	ln      net.Listener
	log     *slog.Logger
	served  chan struct{} // closed when Serve returns
	connsWG sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

var _ listeners.Listener = (*brokerListener)(nil)

func (l *brokerListener) ID() string       { return "edgedepth-tcp" }
func (l *brokerListener) Address() string  { return l.ln.Addr().String() }
func (l *brokerListener) Protocol() string { return "tcp" }

// Init is a no-op: Broker.Run already listens.
func (l *brokerListener) Init(*slog.Logger) error { return nil }

// Serve accepts connections until the listener is closed, retrying transient accept
// errors with a short backoff instead of giving up.
func (l *brokerListener) Serve(establish listeners.EstablishFn) {
	defer close(l.served)
	var delay time.Duration
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.log.Warn("embedded MQTT broker: accept failed; retrying", "error", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if !l.track(conn) {
			_ = conn.Close()
			return
		}
		l.connsWG.Go(func() {
			defer l.untrack(conn)
			// mochi returns an error for every connection that does not end with a
			// DISCONNECT, which is routine (a robot losing Wi-Fi); not worth a warning.
			if err := establish(l.ID(), conn); err != nil {
				l.log.Debug("client connection ended", "remote", conn.RemoteAddr().String(), "error", err)
			}
		})
	}
}

func (l *brokerListener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *brokerListener) untrack(c net.Conn) {
	_ = c.Close()
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// Close stops accepting, lets mochi disconnect its clients, then closes whatever
// connection is left (one still in its CONNECT handshake is not a mochi client yet).
func (l *brokerListener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()

	_ = l.ln.Close()
	closeClients(l.ID())
	l.mu.Lock()
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
}

// minLevelHandler passes on records from min up. mochi logs every client event at
// info level; on a robot that is noise in the journal.
type minLevelHandler struct {
	next slog.Handler
	min  slog.Level
}

func (h *minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.next.Enabled(ctx, l)
}

func (h *minLevelHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "" {
		r.Message = "embedded MQTT broker" // mochi logs some errors with no message
	}
	return h.next.Handle(ctx, r)
}

func (h *minLevelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &minLevelHandler{next: h.next.WithAttrs(as), min: h.min}
}

func (h *minLevelHandler) WithGroup(name string) slog.Handler {
	return &minLevelHandler{next: h.next.WithGroup(name), min: h.min}
}
