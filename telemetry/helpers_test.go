package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgedepth/edgedepth/health"
)

// waitTimeout bounds every wait in these tests. It only catches hangs: on a healthy
// machine each wait ends in milliseconds, but CI machines are shared and slow.
const waitTimeout = 20 * time.Second

// eventually polls cond until it holds, failing the test after waitTimeout.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		<-tick.C
	}
}

// testLogger logs to the test log, so that a failing test shows what the component
// said. Logging stops when the test's cleanups are done.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// testConfig is a configuration with short retry intervals for tests.
func testConfig(url string) MQTTConfig {
	return MQTTConfig{
		BrokerURL:      url,
		ConnectTimeout: 5 * time.Second,
		ReconnectMin:   20 * time.Millisecond,
		ReconnectMax:   200 * time.Millisecond,
	}
}

// runningPublisher is a Publisher whose Run goroutine the test owns.
type runningPublisher struct {
	*Publisher
	topics Topics
	health *health.Tracker
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func newTestPublisher(t testing.TB, cfg MQTTConfig, robotID string) *runningPublisher {
	t.Helper()
	tp, err := NewTopics(robotID)
	if err != nil {
		t.Fatal(err)
	}
	h := new(health.Tracker)
	p, err := NewPublisher(cfg, tp, testLogger(t), h)
	if err != nil {
		t.Fatal(err)
	}
	return &runningPublisher{Publisher: p, topics: tp, health: h, done: make(chan error, 1)}
}

func (r *runningPublisher) start(t testing.TB) *runningPublisher {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func startPublisher(t testing.TB, cfg MQTTConfig, robotID string) *runningPublisher {
	t.Helper()
	return newTestPublisher(t, cfg, robotID).start(t)
}

// stop cancels Run and returns its result; it fails the test if Run hangs.
func (r *runningPublisher) stop(t testing.TB) error {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(waitTimeout):
			t.Fatalf("Publisher.Run did not return within %v of cancellation", waitTimeout)
		}
	})
	return r.err
}

func (r *runningPublisher) warning() string {
	for _, w := range r.health.Warnings() {
		if w.Component == HealthComponent {
			return w.Message
		}
	}
	return ""
}

// subscriber is a plain paho client standing for a consumer of the robot's topics.
type subscriber struct {
	c    mqtt.Client
	msgs chan mqtt.Message
}

var subscriberN atomic.Int64

func subscribe(t testing.TB, url, filter string) *subscriber {
	t.Helper()
	s := &subscriber{msgs: make(chan mqtt.Message, 100000)}
	opts := mqtt.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("test-subscriber-%d", subscriberN.Add(1))).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	s.c = mqtt.NewClient(opts)
	if tok := s.c.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("subscriber connect to %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(100) })
	// QoS 2 so that messages arrive with the QoS they were published with.
	tok := s.c.Subscribe(filter, 2, func(_ mqtt.Client, m mqtt.Message) { s.msgs <- m })
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return s
}

// next returns the next message that satisfies match, skipping the others.
func (s *subscriber) next(t testing.TB, what string, match func(mqtt.Message) bool) mqtt.Message {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case m := <-s.msgs:
			if match(m) {
				return m
			}
		case <-timeout:
			t.Fatalf("no message %s within %v", what, waitTimeout)
			return nil
		}
	}
}

func onTopic(topic string) func(mqtt.Message) bool {
	return func(m mqtt.Message) bool { return m.Topic() == topic }
}

func withPayload(topic, payload string) func(mqtt.Message) bool {
	return func(m mqtt.Message) bool { return m.Topic() == topic && string(m.Payload()) == payload }
}

func statusState(topic string, state State) func(mqtt.Message) bool {
	return func(m mqtt.Message) bool {
		return m.Topic() == topic && strings.Contains(string(m.Payload()), `"state":"`+string(state)+`"`)
	}
}
