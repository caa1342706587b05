package telemetry

import (
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgedepth/edgedepth/telemetry/mqtttest"
)

// received collects what a Subscribe handler was given.
type received struct {
	topic, payload string
}

func collect(ch chan<- received) func(string, []byte) {
	return func(topic string, payload []byte) { ch <- received{topic, string(payload)} }
}

// publishFrom publishes one message as another client would (an operator's tool).
func publishFrom(t testing.TB, c mqtt.Client, topic, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// waitFor returns the next message on ch with payload, skipping others.
func waitFor(t testing.TB, ch <-chan received, payload string) received {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case r := <-ch:
			if r.payload == payload {
				return r
			}
		case <-timeout:
			t.Fatalf("handler did not receive %q within %v", payload, waitTimeout)
		}
	}
}

func TestSubscribeSurvivesBrokerRestart(t *testing.T) {
	m := mqtttest.StartMosquitto(t, mqtttest.Options{})
	p := newTestPublisher(t, testConfig(m.URL()), "r1")
	got := make(chan received, 100)
	p.Subscribe(p.topics.Cmd("#"), 1, collect(got)) // before Run
	p.start(t)
	eventually(t, "connection", p.Connected)

	op := subscribe(t, m.URL(), "unused/topic") // a plain client that publishes
	// The SUBACK may trail the CONNACK: publish until the handler sees one.
	deadline := time.Now().Add(waitTimeout)
	for i := 0; ; i++ {
		payload := fmt.Sprint("before ", i)
		publishFrom(t, op.c, p.topics.Cmd("status"), payload)
		select {
		case r := <-got:
			if r.topic != p.topics.Cmd("status") {
				t.Errorf("topic %q, want %q", r.topic, p.topics.Cmd("status"))
			}
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("subscription never delivered")
			}
			continue
		}
		break
	}

	m.Restart()
	eventually(t, "reconnection", p.Connected)
	op = subscribe(t, m.URL(), "unused/topic")
	// Clean session: the restarted broker knows nothing of us; the publisher must
	// have subscribed again. Keep publishing until one arrives (the SUBACK races the
	// operator's publish).
	for i := 0; ; i++ {
		payload := fmt.Sprint("after ", i)
		publishFrom(t, op.c, p.topics.Cmd("model/list"), payload)
		select {
		case r := <-got:
			if r.topic != p.topics.Cmd("model/list") {
				t.Errorf("topic %q after restart", r.topic)
			}
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline.Add(waitTimeout)) {
				t.Fatal("subscription not restored after the broker restarted")
			}
			continue
		}
		break
	}
	if s := p.ReceiveStats(); s.Received < 2 || s.Dropped != 0 {
		t.Errorf("receive stats %+v", s)
	}
}

// TestSubscribeDuringRun: a filter registered on a live connection is subscribed
// without a reconnection.
func TestSubscribeDuringRun(t *testing.T) {
	m := mqtttest.StartMosquitto(t, mqtttest.Options{})
	p := startPublisher(t, testConfig(m.URL()), "r1")
	eventually(t, "connection", p.Connected)
	got := make(chan received, 100)
	p.Subscribe(p.topics.Prefix+"in", 1, collect(got))
	op := subscribe(t, m.URL(), "unused/topic")
	deadline := time.Now().Add(waitTimeout)
	for {
		publishFrom(t, op.c, p.topics.Prefix+"in", "hello")
		select {
		case <-got:
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("subscription made during Run never delivered")
			}
			continue
		}
		break
	}
	if s := p.Stats(); s.Reconnects != 0 {
		t.Errorf("reconnected to subscribe: %+v", s)
	}
}

// TestSlowHandlerDropsNotStalls: a handler that blocks fills the inbox; further
// messages are dropped and counted, and the connection (keep-alive, publishing) goes
// on as if nothing happened.
func TestSlowHandlerDropsNotStalls(t *testing.T) {
	m := mqtttest.StartMosquitto(t, mqtttest.Options{})
	cfg := testConfig(m.URL())
	cfg.KeepAlive = time.Second
	p := newTestPublisher(t, cfg, "r1")
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	p.Subscribe(p.topics.Prefix+"in", 0, func(string, []byte) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	})
	p.start(t)
	defer close(release) // before the publisher's cleanup: Run waits for the handler
	eventually(t, "connection", p.Connected)
	op := subscribe(t, m.URL(), p.topics.Pose())
	eventually(t, "handler blocked", func() bool {
		publishFrom(t, op.c, p.topics.Prefix+"in", "x")
		select {
		case <-entered:
			return true
		default:
			return false
		}
	})
	for range InboxLen + 10 {
		publishFrom(t, op.c, p.topics.Prefix+"in", "flood")
	}
	eventually(t, "drops counted", func() bool { return p.ReceiveStats().Dropped > 0 })
	// Several keep-alive periods later the connection is still up and publishing.
	p.Publish(p.topics.Pose(), []byte("still alive"), 0, false)
	op.next(t, "publish while the handler is stuck", withPayload(p.topics.Pose(), "still alive"))
	time.Sleep(2500 * time.Millisecond) // not synchronisation: 2.5 keep-alive periods must pass
	if !p.Connected() || p.Stats().Reconnects != 0 {
		t.Errorf("connection lost while a handler was slow: %+v", p.Stats())
	}
}

func TestSubscribeMisuse(t *testing.T) {
	p := newTestPublisher(t, testConfig("tcp://127.0.0.1:1"), "r1")
	p.Subscribe("a/#", 1, func(string, []byte) {})
	for name, f := range map[string]func(){
		"empty":     func() { p.Subscribe("", 0, func(string, []byte) {}) },
		"qos 3":     func() { p.Subscribe("b", 3, func(string, []byte) {}) },
		"nil":       func() { p.Subscribe("c", 0, nil) },
		"duplicate": func() { p.Subscribe("a/#", 0, func(string, []byte) {}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
