package telemetry

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
)

// listenState publishes the address a server ended up listening on, for callers
// that asked for port 0 (tests) or want to log it.
type listenState struct {
	once  sync.Once
	set1  sync.Once
	ready chan struct{}
	mu    sync.Mutex
	addr  string
}

func (s *listenState) init() { s.once.Do(func() { s.ready = make(chan struct{}) }) }

func (s *listenState) readyChan() <-chan struct{} {
	s.init()
	return s.ready
}

func (s *listenState) set(addr string) {
	s.init()
	s.set1.Do(func() {
		s.mu.Lock()
		s.addr = addr
		s.mu.Unlock()
		close(s.ready)
	})
}

func (s *listenState) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// listenError is a failed listen, with a hint for the operator. It wraps the
// system error, so errors.Is(err, syscall.EADDRINUSE) works.
type listenError struct {
	what, addr, hint string
	err              error
}

func (e *listenError) Error() string {
	var cause error = e.err
	var op *net.OpError
	switch {
	case errors.Is(e.err, syscall.EADDRINUSE):
		cause = syscall.EADDRINUSE // "address already in use", without "bind: "
	case errors.As(e.err, &op) && op.Err != nil:
		cause = op.Err // without net's own "listen tcp <addr>: ": we say it already
	}
	msg := fmt.Sprintf("%s: listen %s: %v", e.what, e.addr, cause)
	if e.hint != "" {
		msg += " — " + e.hint
	}
	return msg
}

func (e *listenError) Unwrap() error { return e.err }

// isLoopback reports whether a listen address only accepts local connections.
// "localhost" counts; an empty or unspecified host (":1883", "0.0.0.0") does not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
