package command

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgedepth/edgedepth/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitTimeout = 20 * time.Second

// fakeTransport stands for the Publisher: it records the subscription and the
// replies.
type fakeTransport struct {
	mu      sync.Mutex
	handler func(string, []byte)
	replies chan published
}

type published struct {
	topic   string
	payload []byte
}

func (f *fakeTransport) Subscribe(_ string, _ byte, h func(string, []byte)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = h
}

func (f *fakeTransport) Publish(topic string, payload []byte, _ byte, _ bool) {
	f.replies <- published{topic, payload}
}

var (
	testKey    = []byte("0123456789abcdef0123456789abcdef")
	testTopics = telemetry.Topics{Prefix: "edgedepth/r1/"}
	testNow    = time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)
)

type harness struct {
	d      *Dispatcher
	t      *fakeTransport
	calls  atomic.Int64
	cancel context.CancelFunc
	done   chan error
}

func startDispatcher(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	h := &harness{t: &fakeTransport{replies: make(chan published, 100)}, done: make(chan error, 1)}
	d, err := NewDispatcher(cfg, h.t, testTopics)
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	d.Register("status", func(context.Context, json.RawMessage) (any, error) {
		h.calls.Add(1)
		return map[string]string{"state": "running"}, nil
	})
	d.Register("model/rollback", func(_ context.Context, args json.RawMessage) (any, error) {
		var a struct {
			Version int `json:"version"`
		}
		if err := DecodeArgs(args, &a); err != nil {
			return nil, err
		}
		if a.Version < 1 {
			return nil, InvalidArgs("version: must be at least 1")
		}
		h.calls.Add(1)
		return a, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- d.Run(ctx) }()
	t.Cleanup(h.stop)
	// Run subscribes right away; wait for it.
	deadline := time.Now().Add(waitTimeout)
	for h.handler() == nil {
		if time.Now().After(deadline) {
			t.Fatal("dispatcher did not subscribe")
		}
		time.Sleep(time.Millisecond)
	}
	return h
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
}

func (h *harness) handler() func(string, []byte) {
	h.t.mu.Lock()
	defer h.t.mu.Unlock()
	return h.t.handler
}

// send delivers payload on the command topic of name and returns the reply.
func (h *harness) send(t *testing.T, name string, payload []byte) (string, Reply) {
	t.Helper()
	h.handler()(testTopics.Cmd(name), payload)
	return h.reply(t)
}

func (h *harness) reply(t *testing.T) (string, Reply) {
	t.Helper()
	select {
	case p := <-h.t.replies:
		var r Reply
		if err := json.Unmarshal(p.payload, &r); err != nil {
			t.Fatalf("reply %s: %v", p.payload, err)
		}
		return p.topic, r
	case <-time.After(waitTimeout):
		t.Fatal("no reply")
		return "", Reply{}
	}
}

func signed(t testing.TB, key []byte, name string, r Request) []byte {
	t.Helper()
	b, err := EncodeRequest(key, testTopics.Cmd(name), r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProtocol(t *testing.T) {
	stamp := testNow.Format(time.RFC3339)
	good := Request{ID: "a1", Time: stamp, Args: json.RawMessage(`{"version": 3}`)}
	tamper := func(b []byte) []byte { return []byte(strings.Replace(string(b), `"version":3`, `"version":4`, 1)) }
	for _, tc := range []struct {
		name    string
		cmd     string
		payload []byte
		code    Code // "" means ok
	}{
		{"valid signed", "model/rollback", signed(t, testKey, "model/rollback", good), ""},
		{"unsigned with key", "model/rollback", signed(t, nil, "model/rollback", good), CodeUnauthorized},
		{"wrong key", "model/rollback", signed(t, []byte("another-key-of-32-bytes-........"), "model/rollback", good), CodeUnauthorized},
		{"tampered args", "model/rollback", tamper(signed(t, testKey, "model/rollback", good)), CodeUnauthorized},
		{"signed for another command", "status", signed(t, testKey, "model/rollback", good), CodeUnauthorized},
		{"expired", "model/rollback", signed(t, testKey, "model/rollback", Request{ID: "a2", Time: testNow.Add(-31 * time.Second).Format(time.RFC3339), Args: good.Args}), CodeExpired},
		{"future", "model/rollback", signed(t, testKey, "model/rollback", Request{ID: "a3", Time: testNow.Add(31 * time.Second).Format(time.RFC3339), Args: good.Args}), CodeExpired},
		{"malformed json", "status", []byte(`{"id": "a4", "time":`), CodeMalformed},
		{"unknown field", "status", []byte(`{"id":"a5","time":"` + stamp + `","ok":true}`), CodeMalformed},
		{"missing id", "status", []byte(`{"time":"` + stamp + `"}`), CodeMalformed},
		{"args not an object", "status", []byte(`{"id":"a6","time":"` + stamp + `","args":[1]}`), CodeMalformed},
		{"oversized", "status", append(append([]byte(`{"id":"a7","time":"`+stamp+`","args":{"x":"`), strings.Repeat("y", DefaultMaxRequestBytes)...), `"}}`...), CodeMalformed},
		{"unknown command", "model/explode", signed(t, testKey, "model/explode", Request{ID: "a8", Time: stamp}), CodeUnknownCommand},
		{"bad command name", "Model", signed(t, testKey, "Model", Request{ID: "a9", Time: stamp}), CodeUnknownCommand},
		{"invalid args: value", "model/rollback", signed(t, testKey, "model/rollback", Request{ID: "a10", Time: stamp, Args: json.RawMessage(`{"version":0}`)}), CodeInvalidArgs},
		{"invalid args: field", "model/rollback", signed(t, testKey, "model/rollback", Request{ID: "a11", Time: stamp, Args: json.RawMessage(`{"versoin":2}`)}), CodeInvalidArgs},
		{"invalid args: type", "model/rollback", signed(t, testKey, "model/rollback", Request{ID: "a12", Time: stamp, Args: json.RawMessage(`{"version":"x"}`)}), CodeInvalidArgs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startDispatcher(t, Config{Key: testKey})
			topic, r := h.send(t, tc.cmd, tc.payload)
			if topic != testTopics.Cmd(tc.cmd)+"/reply" {
				t.Errorf("reply on %q", topic)
			}
			if tc.code == "" {
				if !r.OK || r.Error != nil || h.calls.Load() != 1 || string(r.Result) != `{"version":3}` {
					t.Errorf("reply %+v (error %+v), calls %d; want ok", r, r.Error, h.calls.Load())
				}
				return
			}
			if r.OK || r.Error == nil || r.Error.Code != tc.code {
				t.Fatalf("reply %+v (error %+v), want code %s", r, r.Error, tc.code)
			}
			if n := h.calls.Load(); n != 0 {
				t.Errorf("handler ran %d times", n)
			}
			t.Logf("%s: %q", r.Error.Code, r.Error.Message)
			if tc.code == CodeUnauthorized && r.Error.Message != "not authorised" {
				t.Errorf("unauthorized reply says %q: it must not say why", r.Error.Message)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	h := startDispatcher(t, Config{Key: testKey})
	stamp := testNow.Format(time.RFC3339)
	first := signed(t, testKey, "status", Request{ID: "same", Time: stamp})
	_, r1 := h.send(t, "status", first)
	if !r1.OK {
		t.Fatalf("first: %+v", r1.Error)
	}
	// The same bytes again (a QoS 1 redelivery, or an attacker's replay): not run
	// again, the same reply again.
	_, r2 := h.send(t, "status", first)
	if !r2.OK || r2.Time != r1.Time || h.calls.Load() != 1 {
		t.Errorf("duplicate: reply %+v, calls %d; want the first reply and one call", r2, h.calls.Load())
	}
	// Another request with the same id: replayed.
	other := signed(t, testKey, "status", Request{ID: "same", Time: stamp, Args: json.RawMessage(`{}`)})
	if _, r := h.send(t, "status", other); r.Error == nil || r.Error.Code != CodeReplayed {
		t.Errorf("reused id: %+v", r)
	}
	if h.calls.Load() != 1 {
		t.Errorf("calls %d", h.calls.Load())
	}
}

func TestReplayMemoryBounded(t *testing.T) {
	now := testNow
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := startDispatcher(t, Config{Key: testKey, MaxRemembered: 2, Now: clock})
	send := func(id string) Reply {
		_, r := h.send(t, "status", signed(t, testKey, "status", Request{ID: id, Time: clock().Format(time.RFC3339)}))
		return r
	}
	if !send("1").OK || !send("2").OK {
		t.Fatal("first two refused")
	}
	if r := send("3"); r.Error == nil || r.Error.Code != CodeBusy {
		t.Fatalf("third with a full memory: %+v, want busy", r)
	}
	mu.Lock()
	now = now.Add(2*DefaultWindow + time.Second)
	mu.Unlock()
	if r := send("3"); !r.OK {
		t.Fatalf("after expiry: %+v", r.Error)
	}
}

func TestUnsigned(t *testing.T) {
	if _, err := NewDispatcher(Config{}, &fakeTransport{}, testTopics); err == nil {
		t.Fatal("no key and unsigned not allowed: no error")
	}
	h := startDispatcher(t, Config{AllowUnsigned: true})
	// Without a key the clock is not checked either: robots without NTP still obey.
	old := []byte(`{"id":"u1","time":"2001-01-01T00:00:00Z","reply_to":"ops/replies/u1"}`)
	topic, r := h.send(t, "status", old)
	if !r.OK || topic != "ops/replies/u1" || r.ID != "u1" {
		t.Errorf("unsigned: %+v on %s", r, topic)
	}
}

func TestIgnoresReplies(t *testing.T) {
	h := startDispatcher(t, Config{AllowUnsigned: true})
	h.handler()(testTopics.Cmd("status/reply"), []byte(`{"id":"x","ok":true,"time":"2025-01-02T15:04:05Z"}`))
	h.handler()(testTopics.Cmd("status/reply/x"), []byte(`garbage`))
	_, r := h.send(t, "status", []byte(`{"id":"after","time":"2025-01-02T15:04:05Z"}`))
	if r.ID != "after" {
		t.Errorf("a reply topic was answered: %+v", r)
	}
}

// TestTimeout: a command waiting for something that never comes (a camera that is
// gone) is answered "timeout" at its deadline, and the robot stays responsive.
func TestTimeout(t *testing.T) {
	h := startDispatcher(t, Config{AllowUnsigned: true, Now: time.Now})
	stuck := make(chan struct{})
	defer close(stuck)
	h.d.Register("camera/wait", func(ctx context.Context, _ json.RawMessage) (any, error) {
		<-stuck // ignores ctx on purpose: the worst case
		return nil, nil
	}, WithTimeout(100*time.Millisecond))
	start := time.Now()
	_, r := h.send(t, "camera/wait", []byte(`{"id":"t1","time":"2025-01-02T15:04:05Z"}`))
	if r.Error == nil || r.Error.Code != CodeTimeout {
		t.Fatalf("reply %+v, want timeout", r)
	}
	if took := time.Since(start); took > 100*time.Millisecond+5*time.Second {
		t.Errorf("timeout reply after %v", took)
	}
	if _, r := h.send(t, "status", []byte(`{"id":"t2","time":"2025-01-02T15:04:05Z"}`)); !r.OK {
		t.Errorf("status after a stuck command: %+v", r.Error)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	h := startDispatcher(t, Config{AllowUnsigned: true, MaxConcurrent: 2})
	release := make(chan struct{})
	var running atomic.Int64
	entered := make(chan struct{}, 10)
	h.d.Register("slow", func(ctx context.Context, _ json.RawMessage) (any, error) {
		running.Add(1)
		entered <- struct{}{}
		<-release
		return "done", nil
	})
	req := func(id string) []byte { return []byte(`{"id":"` + id + `","time":"2025-01-02T15:04:05Z"}`) }
	h.handler()(testTopics.Cmd("slow"), req("c1"))
	h.handler()(testTopics.Cmd("slow"), req("c2"))
	<-entered
	<-entered
	_, r := h.send(t, "slow", req("c3"))
	if r.Error == nil || r.Error.Code != CodeBusy || r.ID != "c3" {
		t.Fatalf("third concurrent: %+v, want busy", r)
	}
	close(release)
	h.reply(t)
	h.reply(t)
	// Refused for want of a slot, the same request may be retried.
	go func() { <-entered }()
	if _, r := h.send(t, "slow", req("c3")); !r.OK {
		t.Errorf("retry after busy: %+v", r.Error)
	}
	if running.Load() != 3 {
		t.Errorf("ran %d, want 3", running.Load())
	}
}

func TestHandlerErrors(t *testing.T) {
	h := startDispatcher(t, Config{AllowUnsigned: true})
	h.d.Register("fail", func(context.Context, json.RawMessage) (any, error) {
		return nil, errors.New("no frames from the left camera")
	})
	h.d.Register("busy", func(context.Context, json.RawMessage) (any, error) {
		return nil, errors.Join(ErrBusy, errors.New("calibration running"))
	})
	h.d.Register("panic", func(context.Context, json.RawMessage) (any, error) { panic("bug") })
	for i, tc := range []struct {
		name string
		code Code
	}{{"fail", CodeFailed}, {"busy", CodeBusy}, {"panic", CodeFailed}} {
		_, r := h.send(t, tc.name, []byte(`{"id":"h`+string(rune('0'+i))+`","time":"2025-01-02T15:04:05Z"}`))
		if r.Error == nil || r.Error.Code != tc.code {
			t.Errorf("%s: %+v, want %s", tc.name, r, tc.code)
		}
	}
}

func TestSignatureRoundTrip(t *testing.T) {
	// Characters json.Marshal would escape, whitespace, non-ASCII: what is signed
	// must be what is sent.
	r := Request{ID: "x", Time: "2025-01-02T15:04:05Z", Args: json.RawMessage("{ \"note\" : \"<a&b> é\\u00e9\" }"), ReplyTo: "ops/r"}
	b, err := EncodeRequest(testKey, "edgedepth/r1/cmd/status", r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if !Verify(testKey, "edgedepth/r1/cmd/status", back) {
		t.Errorf("own signature does not verify: %s", b)
	}
	if Verify(testKey, "edgedepth/r2/cmd/status", back) {
		t.Error("signature valid for another robot")
	}
	back.ReplyTo = "evil/r"
	if Verify(testKey, "edgedepth/r1/cmd/status", back) {
		t.Error("signature valid with another reply_to")
	}
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"status": true, "model/rollback": true, "training/set": true, "calibrate/chessboard": true,
		"": false, "Status": false, "a//b": false, "/a": false, "a/": false, "reply": false, "a/reply": false,
		"a/+": false, "a b": false, strings.Repeat("a", MaxNameLen+1): false,
	} {
		if err := ValidateName(name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
}
