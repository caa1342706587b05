package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgedepth/edgedepth/telemetry"
	"github.com/edgedepth/edgedepth/telemetry/command"
	"github.com/edgedepth/edgedepth/telemetry/mqtttest"
)

// TestCmdEndToEnd: a Dispatcher on a Publisher, against a real mosquitto, answers
// `edgedepth cmd status` run in-process; a wrong key is refused; no daemon times out
// with a message that says what to check.
func TestCmdEndToEnd(t *testing.T) {
	// Checked after every cleanup, mosquitto's included (cleanups run last first).
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	m := mqtttest.StartMosquitto(t, mqtttest.Options{})
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "cmd.key")
	key, created, err := command.LoadOrCreateKey(keyPath)
	if err != nil || !created {
		t.Fatal(created, err)
	}

	topics, _ := telemetry.NewTopics("r1")
	pub, err := telemetry.NewPublisher(telemetry.MQTTConfig{BrokerURL: m.URL(), ReconnectMin: 20 * time.Millisecond}, topics, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := command.NewDispatcher(command.Config{Key: key}, pub, topics)
	if err != nil {
		t.Fatal(err)
	}
	d.Register("status", func(context.Context, json.RawMessage) (any, error) {
		return map[string]string{"state": "running"}, nil
	}, command.WithTimeout(2*time.Second))
	d.Register("model/rollback", func(_ context.Context, args json.RawMessage) (any, error) {
		var a struct {
			Version int `json:"version"`
		}
		if err := command.DecodeArgs(args, &a); err != nil {
			return nil, err
		}
		return a, nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	pubDone, dDone := make(chan error, 1), make(chan error, 1)
	go func() { pubDone <- pub.Run(ctx) }()
	go func() { dDone <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-dDone
		<-pubDone
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !pub.Connected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	run := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := cmdCmd(append(args, "--broker", m.URL(), "--robot", "r1"), &out, &errb)
		return out.String(), errb.String(), err
	}
	// The daemon's subscription may trail its connection by a round trip: the
	// first command is retried until it is answered.
	var out string
	for {
		out, _, err = run("status", "--key", keyPath, "--timeout", "1s")
		if err == nil || !strings.Contains(err.Error(), "no reply") || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !strings.Contains(out, `"ok": true`) || !strings.Contains(out, `"state": "running"`) {
		t.Fatalf("status: %v\n%s", err, out)
	}

	out, _, err = run("model/rollback", "version=3", "--key", keyPath)
	if err != nil || !strings.Contains(out, `"version": 3`) {
		t.Errorf("rollback with args: %v\n%s", err, out)
	}

	other := filepath.Join(dir, "other.key")
	if err := os.WriteFile(other, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = run("status", "--key", other)
	if err == nil || !strings.Contains(err.Error(), "unauthorized") || !strings.Contains(out, `"unauthorized"`) {
		t.Errorf("wrong key: %v\n%s", err, out)
	}
	if _, _, err = run("status"); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("unsigned: %v", err)
	}

	// A robot nobody serves.
	var o, e bytes.Buffer
	err = cmdCmd([]string{"status", "--broker", m.URL(), "--robot", "nobody", "--timeout", "200ms"}, &o, &e)
	want := "no reply from edgedepth/nobody within 200ms: is the daemon running and connected to " + m.URL() + "?"
	if err == nil || err.Error() != want {
		t.Errorf("no daemon: %v, want %q", err, want)
	}
}

func TestCmdArgs(t *testing.T) {
	got, err := commandArgs(`{"a":1,"b":"x"}`, []string{"b=2", "c=text", "d=true", "e=[1,2]", "f="})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":1,"b":2,"c":"text","d":true,"e":[1,2],"f":""}`; string(got) != want {
		t.Errorf("args %s, want %s", got, want)
	}
	for _, bad := range [][]string{{"noequals"}, {"=v"}} {
		if _, err := commandArgs("", bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	if _, err := commandArgs("[1]", nil); err == nil {
		t.Error("--args array: no error")
	}
	var out, errb bytes.Buffer
	if err := cmdCmd(nil, &out, &errb); err != errUsage {
		t.Errorf("no name: %v", err)
	}
}
