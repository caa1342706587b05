// Package mqtttest runs real MQTT peers for tests: a mosquitto broker started by the
// test with its own config, a TCP proxy that can sever or black-hole connections to
// simulate a lost network, and a throwaway certificate authority for TLS tests.
//
// It is a test-support package: it takes a testing.TB, fails the test on error and
// cleans up with t.Cleanup. The end-to-end tests in hil-tests/ use it as well as
// telemetry's own tests.
package mqtttest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MissingMosquitto is the failure message when the mosquitto binary is not found.
const MissingMosquitto = "mosquitto not found: install the Debian package mosquitto (make deps does)"

// startTimeout bounds how long mosquitto may take to open its listener.
const startTimeout = 10 * time.Second

// Options configures a mosquitto started by StartMosquitto. The zero value is an
// anonymous broker on a free loopback port.
type Options struct {
	// Users maps user names to passwords. When non-empty, anonymous clients are
	// refused ("not authorised"), as on a production broker.
	Users map[string]string
	// TLS, when non-nil, makes the listener TLS-only with these files.
	TLS *TLSFiles
	// Config holds extra mosquitto.conf lines, appended after the listener block.
	Config string
}

// TLSFiles are the PEM files of a TLS listener.
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
	// RequireClientCert makes the broker demand a client certificate signed by CAFile.
	RequireClientCert bool
}

// Mosquitto is a running mosquitto process owned by a test.
type Mosquitto struct {
	t    testing.TB
	bin  string
	conf string
	port int
	tls  bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	out  *syncBuffer   // the broker's log, across restarts
}

// StartMosquitto starts mosquitto on a free port of 127.0.0.1 and stops it when the
// test ends; on failure the test log gets the broker's log. It fails the test (never
// skips) if mosquitto is not installed.
func StartMosquitto(t testing.TB, opts Options) *Mosquitto {
	t.Helper()
	bin := findMosquitto()
	if bin == "" {
		t.Fatal(MissingMosquitto)
	}
	dir := t.TempDir()
	m := &Mosquitto{t: t, bin: bin, conf: filepath.Join(dir, "mosquitto.conf"), tls: opts.TLS != nil, out: new(syncBuffer)}
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", m.Log())
		}
	})

	var pwfile string
	if len(opts.Users) > 0 {
		pwfile = filepath.Join(dir, "passwd")
		if err := writePasswordFile(pwfile, opts.Users); err != nil {
			t.Fatal(err)
		}
	}
	// Another test process may take the free port between our probe and mosquitto's
	// bind; try a few ports before failing.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		m.port = port
		if err := os.WriteFile(m.conf, []byte(config(port, pwfile, opts)), 0o600); err != nil {
			t.Fatal(err)
		}
		if lastErr = m.start(); lastErr == nil {
			return m
		}
	}
	t.Fatalf("mosquitto: %v", lastErr)
	return nil
}

func findMosquitto() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	// Debian installs it in /usr/sbin, which is not on every user's PATH.
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	return ""
}

func config(port int, pwfile string, opts Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listener %d 127.0.0.1\n", port)
	if opts.TLS != nil {
		fmt.Fprintf(&b, "cafile %s\ncertfile %s\nkeyfile %s\n", opts.TLS.CAFile, opts.TLS.CertFile, opts.TLS.KeyFile)
		fmt.Fprintf(&b, "require_certificate %t\n", opts.TLS.RequireClientCert)
	}
	if pwfile != "" {
		fmt.Fprintf(&b, "allow_anonymous false\npassword_file %s\n", pwfile)
	} else {
		b.WriteString("allow_anonymous true\n")
	}
	// stderr: stdout is block-buffered when it is not a terminal, which would hide
	// the "running" line start() waits for.
	b.WriteString("persistence false\nlog_dest stderr\nlog_type all\nlog_timestamp_format %H:%M:%S\n")
	if os.Geteuid() == 0 {
		// As root, mosquitto switches to the user "mosquitto", which cannot read the
		// test's temporary directory.
		b.WriteString("user root\n")
	}
	b.WriteString(opts.Config)
	return b.String()
}

func writePasswordFile(path string, users map[string]string) error {
	first := true
	for user, pw := range users {
		args := []string{"-b", path, user, pw}
		if first {
			args = append([]string{"-c"}, args...)
			first = false
		}
		if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("mosquitto_passwd (package mosquitto): %v: %s", err, out)
		}
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start launches mosquitto and waits until it says it is running.
func (m *Mosquitto) start() error {
	mark := m.out.Len()
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout = m.out
	cmd.Stderr = m.out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()

	// mosquitto logs "running" once its listeners are open; polling the port instead
	// could find another process that took it first.
	timeout := time.NewTimer(startTimeout)
	defer timeout.Stop()
	for {
		log, changed := m.out.since(mark)
		if strings.Contains(log, " running") {
			return nil
		}
		select {
		case <-done:
			log, _ = m.out.since(mark)
			return fmt.Errorf("exited during start-up: %s", strings.TrimSpace(log))
		case <-timeout.C:
			m.Stop()
			return fmt.Errorf("not running after %v: %s", startTimeout, strings.TrimSpace(log))
		case <-changed:
		}
	}
}

// URL is the broker URL for clients: tcp://127.0.0.1:<port>, or ssl:// with TLS.
func (m *Mosquitto) URL() string {
	scheme := "tcp"
	if m.tls {
		scheme = "ssl"
	}
	return scheme + "://" + m.Addr()
}

// Addr is the broker's host:port.
func (m *Mosquitto) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port)) }

// Stop terminates the broker with SIGTERM and waits for it to exit; its clients see
// their connections closed. Stopping a stopped broker does nothing.
func (m *Mosquitto) Stop() { m.stop(syscall.SIGTERM) }

// Kill ends the broker with SIGKILL, as a crash would, and waits for it to exit.
func (m *Mosquitto) Kill() { m.stop(syscall.SIGKILL) }

func (m *Mosquitto) stop(sig syscall.Signal) {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	// mosquitto logs "running" just before it arms the flag its signal handler clears,
	// so a SIGTERM sent right after start-up can be lost: repeat it until it exits.
	resend := time.NewTicker(100 * time.Millisecond)
	defer resend.Stop()
	giveUp := time.NewTimer(startTimeout)
	defer giveUp.Stop()
	for {
		_ = cmd.Process.Signal(sig)
		select {
		case <-done:
			return
		case <-resend.C:
		case <-giveUp.C:
			_ = cmd.Process.Kill()
			<-done
			return
		}
	}
}

// Restart stops the broker and starts it again on the same port, with the same
// config. Retained messages do not survive (persistence is off), as with a broker
// that crashed and lost its state.
func (m *Mosquitto) Restart() {
	m.t.Helper()
	m.Stop()
	if err := m.start(); err != nil {
		m.t.Fatalf("mosquitto restart: %v", err)
	}
}

// Log returns everything the broker has logged so far.
func (m *Mosquitto) Log() string { return m.out.String() }

// syncBuffer is a bytes.Buffer safe for the process's writer and the test's reader,
// which can wait for the next write.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced at every write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

// since returns what was written after the first off bytes, and a channel closed at
// the next write.
func (s *syncBuffer) since(off int) (string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.b.String()[off:], s.changed
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}
