package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgedepth/edgedepth/telemetry/mqtttest"
)

func TestPublisherDelivers(t *testing.T) {
	m := mqtttest.StartMosquitto(t, mqtttest.Options{})
	sub := subscribe(t, m.URL(), "edgedepth/#")
	p := startPublisher(t, testConfig(m.URL()), "r1")
	eventually(t, "connection", p.Connected)
	if w := p.warning(); w != "" {
		t.Errorf("health warning while connected: %q", w)
	}

	for _, tc := range []struct {
		name     string
		topic    string
		qos      byte
		retained bool
	}{
		{"status", p.topics.Status(), 1, true},
		{"depth", p.topics.Depth(), 0, false},
		{"preview", p.topics.DepthPreview(), 0, false},
		{"pose", p.topics.Pose(), 0, false},
		{"event", p.topics.Events(), 1, false},
		{"command reply", p.topics.Cmd("snapshot/reply"), 1, false},
		{"qos 2", p.topics.Prefix + "custom", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := "payload of " + tc.name
			p.Publish(tc.topic, []byte(payload), tc.qos, tc.retained)
			got := sub.next(t, "on "+tc.topic, withPayload(tc.topic, payload))
			if got.Qos() != tc.qos {
				t.Errorf("QoS %d, want %d", got.Qos(), tc.qos)
			}
		})
	}
	eventually(t, "published count", func() bool { return p.Stats().Published == 7 })
	if s := p.Stats(); s.Dropped != 0 || s.Reconnects != 0 || s.ConnectFailures != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestPublisherRetainedStatus(t *testing.T) {
	m := mqtttest.StartMosquitto(t, mqtttest.Options{})
	p := startPublisher(t, testConfig(m.URL()), "r1")
	st := Status{State: StateRunning, RobotID: "r1", Time: time.Now()}
	if err := p.PublishJSON(p.topics.Status(), st, 1, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "status published", func() bool { return p.Stats().Published == 1 })

	// A consumer that starts later still learns the state: that is what retained is for.
	late := subscribe(t, m.URL(), "edgedepth/+/status")
	got := late.next(t, "retained status", onTopic(p.topics.Status()))
	if !got.Retained() {
		t.Error("status not retained")
	}
	var back Status
	if err := json.Unmarshal(got.Payload(), &back); err != nil || back.State != StateRunning {
		t.Errorf("status %s: %v", got.Payload(), err)
	}
}

// TestPublisherLastWill makes the publisher's connection vanish without a DISCONNECT,
// the two ways a robot loses its network, and checks that the broker tells the world
// the robot is offline, and that the robot says "running" again once back.
func TestPublisherLastWill(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cut   func(*mqtttest.Proxy)
		keepA time.Duration
	}{
		// Both ends see a reset at once (cable pulled at a switch, NAT reboot).
		{"connection reset", (*mqtttest.Proxy).Sever, 10 * time.Second},
		// Nothing arrives and nobody is told (out of Wi-Fi range): the broker only
		// notices when 1.5 keep-alive periods pass in silence.
		{"silent loss", (*mqtttest.Proxy).Blackhole, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mqtttest.StartMosquitto(t, mqtttest.Options{})
			link := mqtttest.StartProxy(t, m.Addr())
			sub := subscribe(t, m.URL(), "edgedepth/+/status")

			cfg := testConfig(link.URL())
			cfg.KeepAlive = tc.keepA
			p := newTestPublisher(t, cfg, "r1")
			p.SetOfflinePayload([]byte(`{"state":"offline","robot_id":"r1","version":"will"}`))
			p.start(t)
			p.Publish(p.topics.Status(), []byte(`{"state":"running"}`), 1, true)
			sub.next(t, "running", statusState(p.topics.Status(), StateRunning))

			link.Refuse(true)
			tc.cut(link)
			got := sub.next(t, "the Last Will", statusState(p.topics.Status(), StateOffline))
			if !strings.Contains(string(got.Payload()), `"version":"will"`) {
				t.Errorf("offline status %s is not the Last Will set with SetOfflinePayload", got.Payload())
			}
			late := subscribe(t, m.URL(), "edgedepth/+/status")
			if got := late.next(t, "retained offline", onTopic(p.topics.Status())); !got.Retained() || !strings.Contains(string(got.Payload()), "offline") {
				t.Errorf("retained status %s (retained %v), want the offline will", got.Payload(), got.Retained())
			}
			eventually(t, "publisher notices", func() bool { return !p.Connected() && p.warning() != "" })
			t.Logf("health while away: %s", p.warning())

			// Back in range: the publisher reconnects and restores its own retained
			// status over the will, without waiting for the next status update.
			link.Refuse(false)
			sub.next(t, "running again", statusState(p.topics.Status(), StateRunning))
			eventually(t, "health cleared", func() bool { return p.Connected() && p.warning() == "" })
			if s := p.Stats(); s.Reconnects < 1 {
				t.Errorf("Reconnects = %d, want ≥ 1", s.Reconnects)
			}
		})
	}
}

func TestPublisherCleanShutdown(t *testing.T) {
	m := mqtttest.StartMosquitto(t, mqtttest.Options{})
	sub := subscribe(t, m.URL(), "edgedepth/#")
	p := newTestPublisher(t, testConfig(m.URL()), "r1")
	p.SetOfflinePayload([]byte(`{"state":"offline","version":"will"}`))
	p.start(t)
	p.Publish(p.topics.Status(), []byte(`{"state":"running"}`), 1, true)
	sub.next(t, "running", statusState(p.topics.Status(), StateRunning))

	// Changed after connecting: the will still holds the old payload, so receiving
	// this one proves the offline status was published, not the will.
	p.SetOfflinePayload([]byte(`{"state":"offline","version":"shutdown"}`))
	p.Publish(p.topics.Events(), []byte(`stopping`), 1, false)
	p.Publish(p.topics.Depth(), []byte(`stale depth`), 0, false)
	if err := p.stop(t); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	if p.Connected() {
		t.Error("still connected after Run returned")
	}
	sub.next(t, "pending event", withPayload(p.topics.Events(), "stopping"))
	got := sub.next(t, "offline status", statusState(p.topics.Status(), StateOffline))
	if !strings.Contains(string(got.Payload()), "shutdown") {
		t.Errorf("offline status %s, want the shutdown payload", got.Payload())
	}
	late := subscribe(t, m.URL(), "edgedepth/+/status")
	if got := late.next(t, "retained offline", onTopic(p.topics.Status())); !strings.Contains(string(got.Payload()), "shutdown") {
		t.Errorf("retained status %s after shutdown", got.Payload())
	}
	if w := p.warning(); w != "" {
		t.Errorf("health warning left after Run: %q", w)
	}
	// A publish after shutdown is counted, not queued forever.
	before := p.Stats().Dropped
	p.Publish(p.topics.Depth(), []byte("late"), 0, false)
	if p.Stats().Dropped != before+1 {
		t.Error("publish after shutdown not counted as dropped")
	}
	if !strings.Contains(m.Log(), "edgedepth-r1 disconnected") {
		t.Error("mosquitto did not log a clean DISCONNECT from edgedepth-r1")
	}
}

func TestPublisherCredentials(t *testing.T) {
	m := mqtttest.StartMosquitto(t, mqtttest.Options{Users: map[string]string{"robot": "s3cret"}})
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrongFile, []byte("guess\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		user, pw    string
		pwFile      string
		wantWarning string // "" means it must connect
	}{
		{"password", "robot", "s3cret", "", ""},
		{"password file", "robot", "", pwFile, ""},
		{"wrong password", "robot", "guess", "", "refused the credentials (not authorised): check mqtt.username/password"},
		{"wrong password file", "robot", "", wrongFile, "check mqtt.username and the password in mqtt.password_file " + wrongFile},
		{"no credentials", "", "", "", "the broker wants credentials"},
		{"unreadable password file", "robot", "", filepath.Join(t.TempDir(), "missing"), "cannot read mqtt.password_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(m.URL())
			cfg.Username, cfg.Password, cfg.PasswordFile = tc.user, tc.pw, tc.pwFile
			p := startPublisher(t, cfg, "r1")
			if tc.wantWarning == "" {
				eventually(t, "connection", p.Connected)
				return
			}
			// Refused: a clear warning, retried with backoff, publishing unaffected.
			eventually(t, "three refused attempts", func() bool { return p.Stats().ConnectFailures >= 3 })
			w := p.warning()
			t.Logf("health warning: %s", w)
			if !strings.Contains(w, tc.wantWarning) || !strings.Contains(w, m.URL()) {
				t.Errorf("health warning %q, want it to name the broker and say %q", w, tc.wantWarning)
			}
			if strings.Contains(w, "guess") || strings.Contains(w, "s3cret") {
				t.Errorf("health warning leaks a password: %q", w)
			}
			p.Publish(p.topics.Depth(), []byte("x"), 0, false)
			if p.Connected() {
				t.Error("connected with bad credentials")
			}
			if err := p.stop(t); err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		})
	}
}

func TestPublisherTLS(t *testing.T) {
	pki := mqtttest.NewPKI(t)
	m := mqtttest.StartMosquitto(t, mqtttest.Options{TLS: pki.BrokerTLS(true)})
	for _, tc := range []struct {
		name        string
		cfg         MQTTConfig
		wantConnect bool
		wantWarning string // substring of the health warning when refused
	}{
		{"CA and client certificate", MQTTConfig{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKey}, true, ""},
		{"system CA pool", MQTTConfig{CertFile: pki.ClientCertFile, KeyFile: pki.ClientKey}, false, "signed by an unknown authority: set mqtt.ca_file"},
		// With TLS 1.3 the client completes its side of the handshake before the
		// broker checks for a certificate, so the refusal's wording depends on timing;
		// what matters is: not connected, warned with the broker's name, retried.
		{"no client certificate", MQTTConfig{CAFile: pki.CAFile}, false, ""},
		{"CA file missing", MQTTConfig{CAFile: pki.CAFile + ".missing"}, false, "cannot read mqtt.ca_file"},
		{"CA file without certificates", MQTTConfig{CAFile: pki.ClientKey}, false, "holds no PEM certificate"},
		{"client key missing", MQTTConfig{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKey + ".missing"}, false, "cannot load the client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(m.URL())
			cfg.CAFile, cfg.CertFile, cfg.KeyFile = tc.cfg.CAFile, tc.cfg.CertFile, tc.cfg.KeyFile
			p := startPublisher(t, cfg, "r1")
			if tc.wantConnect {
				eventually(t, "TLS connection", p.Connected)
				p.Publish(p.topics.Events(), []byte("over TLS"), 1, false)
				eventually(t, "acknowledged publish", func() bool { return p.Stats().Published == 1 })
				return
			}
			eventually(t, "two refused attempts", func() bool { return p.Stats().ConnectFailures >= 2 })
			w := p.warning()
			t.Logf("health warning: %s", w)
			if p.Connected() || !strings.Contains(w, m.URL()) || !strings.Contains(w, tc.wantWarning) {
				t.Errorf("connected %v, health warning %q; want it to name the broker and say %q", p.Connected(), w, tc.wantWarning)
			}
		})
	}
}

func TestPublisherBrokerRestart(t *testing.T) {
	m := mqtttest.StartMosquitto(t, mqtttest.Options{})
	p := startPublisher(t, testConfig(m.URL()), "r1")
	p.Publish(p.topics.Status(), []byte(`{"state":"running"}`), 1, true)
	eventually(t, "status published", func() bool { return p.Stats().Published == 1 })

	m.Stop()
	eventually(t, "disconnection noticed", func() bool { return !p.Connected() && p.warning() != "" })
	t.Logf("health while the broker is down: %s", p.warning())
	for i := range 5 {
		p.Publish(p.topics.Depth(), []byte(fmt.Sprint("depth ", i)), 0, true)
	}
	m.Restart()
	eventually(t, "reconnection", func() bool { return p.Connected() && p.warning() == "" })

	// The restarted broker lost its retained messages; the publisher restored the
	// status it had sent before, and sent the latest depth queued while away.
	sub := subscribe(t, m.URL(), "edgedepth/#")
	sub.next(t, "restored status", statusState(p.topics.Status(), StateRunning))
	p.Publish(p.topics.Pose(), []byte("after restart"), 0, false)
	sub.next(t, "new message", withPayload(p.topics.Pose(), "after restart"))
	late := subscribe(t, m.URL(), p.topics.Depth())
	if got := late.next(t, "retained depth", onTopic(p.topics.Depth())); string(got.Payload()) != "depth 4" {
		t.Errorf("depth after restart %q, want the latest, \"depth 4\"", got.Payload())
	}
	s := p.Stats()
	if s.Reconnects != 1 || s.Coalesced < 4 {
		t.Errorf("stats %+v, want 1 reconnect and ≥ 4 coalesced", s)
	}
}

// TestPublisherQueuesWhileDisconnected: what is published before the first connection
// is delivered after it, latest per topic and every event in order.
func TestPublisherQueuesWhileDisconnected(t *testing.T) {
	m := mqtttest.StartMosquitto(t, mqtttest.Options{})
	link := mqtttest.StartProxy(t, m.Addr())
	link.Refuse(true)
	sub := subscribe(t, m.URL(), "edgedepth/#")
	p := startPublisher(t, testConfig(link.URL()), "r1")
	eventually(t, "a failed attempt", func() bool { return p.Stats().ConnectFailures >= 1 })
	t.Logf("health while refused: %s", p.warning())

	for i := range 3 {
		p.Publish(p.topics.Depth(), []byte(fmt.Sprint("depth ", i)), 0, false)
		p.Publish(p.topics.Events(), []byte(fmt.Sprint("event ", i)), 1, false)
	}
	link.Refuse(false)
	var got []string
	for len(got) < 4 {
		m := sub.next(t, "queued messages", func(mqtt.Message) bool { return true })
		got = append(got, string(m.Payload()))
	}
	want := []string{"event 0", "event 1", "event 2", "depth 2"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("delivered %q, want %q", got, want)
	}
	if s := p.Stats(); s.Coalesced != 2 || s.Dropped != 0 {
		t.Errorf("stats %+v, want 2 coalesced, none dropped", s)
	}
}

// TestPublishNeverBlocks floods a publisher that cannot reach its broker: every call
// returns, the queue stays bounded, and every message is accounted for.
func TestPublishNeverBlocks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	cfg := testConfig("tcp://" + addr)
	cfg.EventQueueLen, cfg.MaxPendingTopics = 16, 8
	p := startPublisher(t, cfg, "r1")

	const n = 10000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			switch i % 4 {
			case 0:
				p.Publish(p.topics.Depth(), []byte("d"), 0, false)
			case 1:
				p.Publish(p.topics.Events(), []byte("e"), 1, false)
			case 2:
				p.Publish(p.topics.Prefix+fmt.Sprint("extra/", i%40), []byte("x"), 0, false)
			case 3:
				p.Publish(p.topics.Status(), []byte("s"), 1, true)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Publish blocked without a broker")
	}
	s := p.Stats()
	if s.Pending > cfg.EventQueueLen+cfg.MaxPendingTopics {
		t.Errorf("%d messages pending, bound is %d", s.Pending, cfg.EventQueueLen+cfg.MaxPendingTopics)
	}
	if total := s.Coalesced + s.Dropped + uint64(s.Pending) + s.Published; total != n {
		t.Errorf("accounted for %d of %d messages: %+v", total, n, s)
	}
	eventually(t, "a refused attempt", func() bool { return p.Stats().ConnectFailures >= 1 })
	if w := p.warning(); !strings.Contains(w, "refused the TCP connection") {
		t.Errorf("health warning %q", w)
	}
	if err := p.stop(t); err != nil {
		t.Errorf("Run returned %v", err)
	}
}

// TestPublisherStopsDuringHandshake: a broker that accepts TCP and never answers must
// not hold up shutdown for the connect timeout.
func TestPublisherStopsDuringHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	})
	cfg := testConfig("tcp://" + ln.Addr().String())
	cfg.ConnectTimeout = time.Hour
	p := startPublisher(t, cfg, "r1")
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(waitTimeout):
		t.Fatal("publisher never connected")
	}
	if err := p.stop(t); err != nil { // fails the test if it takes waitTimeout
		t.Errorf("Run returned %v", err)
	}
}

func TestPublisherRunTwice(t *testing.T) {
	p := startPublisher(t, testConfig("tcp://127.0.0.1:1"), "r1")
	eventually(t, "first attempt", func() bool { return p.Stats().ConnectFailures >= 1 })
	if err := p.Run(context.Background()); err == nil {
		t.Error("second Run accepted")
	}
}

func TestPublishInvalidTopic(t *testing.T) {
	p := newTestPublisher(t, testConfig(""), "r1")
	for _, topic := range []string{"", "edgedepth/r1/+", "a/#"} {
		p.Publish(topic, []byte("x"), 0, false)
	}
	if s := p.Stats(); s.Dropped != 3 || s.Pending != 0 {
		t.Errorf("stats %+v, want 3 dropped", s)
	}
	defer func() {
		if recover() == nil {
			t.Error("QoS 3 did not panic")
		}
	}()
	p.Publish("edgedepth/r1/depth", nil, 3, false)
}
