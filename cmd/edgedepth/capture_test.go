package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/eval"
	"github.com/edgedepth/edgedepth/telemetry"
	"github.com/edgedepth/edgedepth/telemetry/mqtttest"
)

// watchWriter collects output and closes seen once it contains want.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestCaptureFromMosquitto publishes what a daemon would (a pose then a depth image for
// three pairs, and a malformed depth message) on a real mosquitto while `edgedepth
// capture --frames 3` runs, and checks the files it writes.
func TestCaptureFromMosquitto(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	m := mqtttest.StartMosquitto(t, mqtttest.Options{})
	out := filepath.Join(t.TempDir(), "cap")
	stderr := &watchWriter{want: "capture: subscribed", seen: make(chan struct{})}
	var stdout bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"capture", "--broker", m.URL(), "--robot", "r1", "--out", out, "--frames", "3", "--seconds", "30"}, &stdout, stderr)
	}()
	select {
	case <-stderr.seen:
	case code := <-done:
		t.Fatalf("capture exited %d before subscribing:\n%s", code, stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("capture did not subscribe:\n%s", stderr.String())
	}

	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(m.URL()).SetClientID("test-daemon"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	topics, _ := telemetry.NewTopics("r1")
	publish := func(topic string, payload []byte) {
		t.Helper()
		if tok := pub.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	stamp0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var depths [][]byte
	publish(topics.Depth(), []byte("not a depth image"))
	for i := range 3 {
		stamp := stamp0.Add(time.Duration(i) * 100 * time.Millisecond)
		pose, err := json.Marshal(telemetry.PoseMessage{
			Stamp: stamp, Seq: uint64(i), FrameID: "odom", ChildFrameID: "camera_left",
			Position: telemetry.Vector3{Z: 0.15 * float64(i)}, Orientation: telemetry.Quaternion{W: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		publish(topics.Pose(), pose)
		dm := depth.NewMap(8, 6)
		for k := range dm.M {
			dm.M[k] = float32(i + 1)
		}
		b, err := depth.EncodePNG(dm, depth.Meta{Seq: uint64(i), Stamp: stamp, FrameID: "camera_left", Estimator: "sgbm",
			Intrinsics: camera.Intrinsics{Fx: 10, Fy: 10, Cx: 4, Cy: 3}, BaselineM: 0.1})
		if err != nil {
			t.Fatal(err)
		}
		depths = append(depths, b)
		publish(topics.Depth(), b)
	}

	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("capture exit %d:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("capture did not stop after 3 depth messages:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "captured 3 depth images and 3 poses") {
		t.Errorf("stdout: %s", stdout.String())
	}
	for i, want := range depths {
		got, err := os.ReadFile(filepath.Join(out, "depth", []string{"000000.png", "000001.png", "000002.png"}[i]))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("depth %d: %v (the payload must be kept as received)", i, err)
		}
	}
	poses, err := os.ReadFile(filepath.Join(out, "poses.txt"))
	if err != nil || !strings.HasPrefix(string(poses), "1767323045.000000000 0 0 0 0 0 0 1\n") || strings.Count(string(poses), "\n") != 3 {
		t.Errorf("poses.txt: %v\n%s", err, poses)
	}
	seqs, err := os.ReadFile(filepath.Join(out, "poses_seq.txt"))
	if err != nil || string(seqs) != "0 0\n1 0\n2 0\n" {
		t.Errorf("poses_seq.txt: %v %q", err, seqs)
	}
	var info eval.CaptureInfo
	b, err := os.ReadFile(filepath.Join(out, "capture.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	if info.Robot != "r1" || info.Broker != m.URL() || info.DepthMessages != 3 || info.PoseMessages != 3 || info.DepthRejected != 1 ||
		info.Stopped != "frames" || info.LastSeq != 2 || info.Ended.Before(info.Started) {
		t.Errorf("capture.json: %s", b)
	}
}

func TestCaptureUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--out is required"},
		{[]string{"--out", "x", "--frames", "-1"}, "must not be negative"},
		{[]string{"--out", "x", "--broker", "udp://h"}, "unknown scheme"},
		{[]string{"--out", "x", "--robot", "a/b"}, "contains '/'"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"capture"}, c.args...), &out, &errb); code == 0 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("capture %v: exit %d, stderr lacks %q:\n%s", c.args, code, c.want, errb.String())
		}
	}
}
