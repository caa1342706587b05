package mqtttest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMosquittoLifecycle(t *testing.T) {
	m := StartMosquitto(t, Options{Users: map[string]string{"u": "p"}})
	if !strings.HasPrefix(m.URL(), "tcp://127.0.0.1:") {
		t.Errorf("URL %q", m.URL())
	}
	dial := func() error {
		c, err := net.DialTimeout("tcp", m.Addr(), 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("broker not listening: %v", err)
	}
	addr := m.Addr()
	m.Restart()
	if m.Addr() != addr {
		t.Errorf("restart moved the broker from %s to %s", addr, m.Addr())
	}
	if err := dial(); err != nil {
		t.Fatalf("broker not listening after restart: %v", err)
	}
	m.Stop()
	if err := dial(); err == nil {
		t.Error("broker still listening after Stop")
	}
	m.Stop() // idempotent
	if !strings.Contains(m.Log(), "running") {
		t.Errorf("log: %s", m.Log())
	}
}

func TestMosquittoTLS(t *testing.T) {
	pki := NewPKI(t)
	m := StartMosquitto(t, Options{TLS: pki.BrokerTLS(true)})
	if !strings.HasPrefix(m.URL(), "ssl://") {
		t.Errorf("URL %q", m.URL())
	}
}

func TestProxy(t *testing.T) {
	// An echo server stands for the broker.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = bufio.NewReader(c).WriteTo(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-served })

	p := StartProxy(t, ln.Addr().String())
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo through proxy: %q, %v", line, err)
	}
	if p.Conns() != 1 {
		t.Errorf("Conns = %d", p.Conns())
	}
	p.Sever()
	if _, err := r.ReadString('\n'); err == nil {
		t.Error("connection survived Sever")
	}

	p.Refuse(true)
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		return // the reset arrived before the dial returned: refused as well
	}
	defer c2.Close()
	if _, err := bufio.NewReader(c2).ReadString('\n'); err == nil {
		t.Error("refused connection was served")
	}
}
