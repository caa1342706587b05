package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgedepth/edgedepth/telemetry/mqtttest"
)

// startBroker runs an embedded broker on a free port until the test ends.
func startBroker(t *testing.T) *Broker {
	t.Helper()
	b := &Broker{Addr: "127.0.0.1:0", Log: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Broker.Run = %v, want nil", err)
			}
		case <-time.After(waitTimeout):
			t.Error("Broker.Run did not return after cancellation")
		}
	})
	select {
	case <-b.Ready():
	case err := <-done:
		t.Fatalf("Broker.Run: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("embedded broker not ready")
	}
	return b
}

func TestBrokerEndToEnd(t *testing.T) {
	b := startBroker(t)
	url := "tcp://" + b.ListenAddr()

	// Plain paho clients on both sides: any MQTT tool can use the embedded broker.
	sub := subscribe(t, url, "edgedepth/#")
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("test-pub").SetProtocolVersion(4))
	if tok := pub.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	for _, tc := range []struct {
		topic, payload string
		qos            byte
		retained       bool
	}{
		{"edgedepth/r1/depth", "d", 0, false},
		{"edgedepth/r1/events", "e", 1, false},
		{"edgedepth/r1/status", `{"state":"running"}`, 1, true},
	} {
		if tok := pub.Publish(tc.topic, tc.qos, tc.retained, tc.payload); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", tc.topic, tok.Error())
		}
		sub.next(t, tc.topic, withPayload(tc.topic, tc.payload))
	}
	late := subscribe(t, url, "edgedepth/+/status")
	if got := late.next(t, "retained status", onTopic("edgedepth/r1/status")); !got.Retained() {
		t.Error("status not retained by the embedded broker")
	}

	// And our own publisher, Last Will included (through a proxy, to cut it off).
	link := mqtttest.StartProxy(t, b.ListenAddr())
	p := startPublisher(t, testConfig(link.URL()), "r2")
	p.Publish(p.topics.Status(), []byte(`{"state":"running"}`), 1, true)
	sub.next(t, "publisher status", statusState(p.topics.Status(), StateRunning))
	link.Sever()
	sub.next(t, "the Last Will", statusState(p.topics.Status(), StateOffline))
	sub.next(t, "running after reconnecting", statusState(p.topics.Status(), StateRunning))
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	sub.next(t, "offline on shutdown", statusState(p.topics.Status(), StateOffline))
}

func TestBrokerAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	err = (&Broker{Addr: addr}).Run(context.Background())
	want := "embedded MQTT broker: listen " + addr + ": address already in use — another broker running? set mqtt.embedded_broker.addr or disable it"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("%v does not wrap EADDRINUSE", err)
	}
}

func TestBrokerStopDisconnectsClients(t *testing.T) {
	b := &Broker{Addr: "127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	<-b.Ready()
	lost := make(chan struct{})
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + b.ListenAddr()).SetClientID("c").
		SetAutoReconnect(false).SetConnectionLostHandler(func(mqtt.Client, error) { close(lost) }))
	if tok := c.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	// A connection stuck before CONNECT must not hold up the shutdown either.
	raw, err := net.Dial("tcp", b.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return")
	}
	select {
	case <-lost:
	case <-time.After(waitTimeout):
		t.Fatal("client not disconnected by the broker's shutdown")
	}
	c.Disconnect(0)
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:1883": true, "[::1]:1883": true, "localhost:1883": true,
		"0.0.0.0:1883": false, ":1883": false, "192.168.1.5:1883": false, "nonsense": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v", addr, got)
		}
	}
}

func TestMinLevelHandler(t *testing.T) {
	var buf strings.Builder
	log := slog.New(&minLevelHandler{next: slog.NewTextHandler(&buf, nil), min: slog.LevelWarn})
	log.Info("chatter")
	log.Warn("", "error", "boom")
	if out := buf.String(); strings.Contains(out, "chatter") || !strings.Contains(out, "embedded MQTT broker") {
		t.Errorf("log output %q", out)
	}
}
