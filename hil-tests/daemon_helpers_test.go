package hiltests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// binary is the edgedepth executable under test and consumer the README's example
// consumer, both built once by TestMain.
var binary, consumer string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edgedepth-hil-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "edgedepth")
	consumer = filepath.Join(dir, "depth-consumer")
	for out, pkg := range map[string]string{binary: "../cmd/edgedepth", consumer: "../examples/depth-consumer"} {
		build := exec.Command("go", "build", "-o", out, pkg)
		if b, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, b)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output for the test log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemon is one edgedepth process.
type daemon struct {
	t    testing.TB
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // valid after done is closed
}

// startDaemon writes configYAML to a file and runs `edgedepth run --config` on it.
func startDaemon(t testing.TB, configYAML string) *daemon {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "edgedepth.yaml")
	if err := os.WriteFile(cfg, []byte(configYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	return startDaemonArgs(t, nil, "run", "--config", cfg)
}

// startDaemonArgs runs edgedepth with args and extra environment variables. The process
// is killed when the test ends; on failure its log goes to the test log.
func startDaemonArgs(t testing.TB, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, out: new(syncBuffer), done: make(chan struct{})}
	d.cmd = exec.Command(binary, args...)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("edgedepth log:\n%s", d.out.String())
		}
	})
	return d
}

// stop sends sig and waits for the process to exit, at most timeout.
func (d *daemon) stop(sig syscall.Signal, timeout time.Duration) error {
	d.t.Helper()
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
		return d.err
	case <-time.After(timeout):
		d.t.Fatalf("edgedepth did not exit within %s of %v", timeout, sig)
		return nil
	}
}

// runOnce runs edgedepth with args to completion and returns its exit code and output.
func runOnce(t testing.TB, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatal(err)
	}
	return 0, string(out)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// message is one MQTT message a subscriber received, with its arrival time.
type message struct {
	Topic    string
	Payload  []byte
	Retained bool
	At       time.Time
	QoS      byte // as delivered: the lower of the publisher's and the subscription's
}

// subscribe connects a paho client to broker and delivers every message on filter to
// the returned channel (buffered; the handler never blocks: overflow is a test failure).
func subscribe(t testing.TB, brokerURL, filter string) <-chan message {
	t.Helper()
	return subscribeQoS(t, brokerURL, filter, 0)
}

// subscribeQoS is subscribe with the subscription's QoS.
func subscribeQoS(t testing.TB, brokerURL, filter string, qos byte) <-chan message {
	t.Helper()
	ch := make(chan message, 4096)
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).
		SetClientID(fmt.Sprintf("hil-sub-%d", time.Now().UnixNano())).
		SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect to %s: %v", brokerURL, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(filter, qos, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case ch <- message{m.Topic(), append([]byte(nil), m.Payload()...), m.Retained(), time.Now(), m.Qos()}:
		default:
			t.Errorf("subscriber buffer full: dropping %s", m.Topic())
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return ch
}

// waitFor returns the first message on ch for which ok is true, or fails after timeout.
func waitFor(t testing.TB, ch <-chan message, timeout time.Duration, what string, ok func(message) bool) message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-ch:
			if ok(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s within %s", what, timeout)
		}
	}
}

// statusMsg is the part of the status payload the tests read.
type statusMsg struct {
	State           string  `json:"state"`
	Version         string  `json:"version"`
	RobotID         string  `json:"robot_id"`
	FPS             float64 `json:"fps"`
	FramesPublished uint64  `json:"frames_published"`
	Warnings        []struct {
		Component string `json:"component"`
		Message   string `json:"message"`
	} `json:"warnings"`
}

func parseStatus(t testing.TB, b []byte) statusMsg {
	t.Helper()
	var s statusMsg
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("status is not JSON: %v: %s", err, b)
	}
	return s
}

// waitHealth polls http://addr/healthz until cond holds on (code, body), or fails.
func waitHealth(t testing.TB, addr string, timeout time.Duration, cond func(code int, body string) bool) (int, string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var code int
	var body string
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, b.String()
			if cond(code, body) {
				return code, body
			}
		}
		time.Sleep(100 * time.Millisecond) // polling an external process: nothing to wait on
	}
	t.Fatalf("healthz at %s never matched within %s; last: %d %s", addr, timeout, code, strings.TrimSpace(body))
	return 0, ""
}

// waitMetric polls http://addr/metrics until the un-labelled metric name satisfies cond.
func waitMetric(t testing.TB, addr, name string, timeout time.Duration, cond func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := math.NaN()
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(b.String(), "\n") {
				if v, ok := strings.CutPrefix(line, name+" "); ok {
					last, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
				}
			}
			if cond(last) {
				return last
			}
		}
		time.Sleep(100 * time.Millisecond) // polling an external process: nothing to wait on
	}
	t.Fatalf("metric %s at %s never matched within %s; last value %v", name, addr, timeout, last)
	return last
}
