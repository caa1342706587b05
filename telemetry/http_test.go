package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgedepth/edgedepth/health"
)

func TestHTTPEndpoints(t *testing.T) {
	degraded := new(health.Tracker)
	degraded.Set("camera", "left camera: no frames for 2s")
	reg := prometheus.NewRegistry()
	tp, _ := NewTopics("r1")
	pub, err := NewPublisher(MQTTConfig{}, tp, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(pub)
	pub.Publish(tp.Depth(), []byte("x"), 0, false)
	pub.Publish(tp.Depth(), []byte("y"), 0, false) // one coalesced
	jpeg := []byte("\xff\xd8\xff\xe0fake jpeg")
	full := &HTTPServer{
		Health:   new(health.Tracker),
		Registry: reg,
		Preview:  func() []byte { return jpeg },
		Status:   func() any { return Status{State: StateRunning, RobotID: "r1"} },
	}

	for _, tc := range []struct {
		name       string
		srv        *HTTPServer
		method     string
		path       string
		wantCode   int
		wantType   string
		wantInBody []string
	}{
		{"viewer", full, "GET", "/", 200, "text/html", []string{"<img", "/preview.jpg", "/status"}},
		{"healthy", full, "GET", "/healthz", 200, "application/json", []string{`"ok": true`, `"warnings": []`}},
		{"degraded", &HTTPServer{Health: degraded}, "GET", "/healthz", 503, "application/json", []string{`"ok": false`, `"component": "camera"`, "no frames for 2s"}},
		{"no tracker is healthy", &HTTPServer{}, "GET", "/healthz", 200, "application/json", []string{`"ok": true`}},
		{"status", full, "GET", "/status", 200, "application/json", []string{`"state": "running"`, `"robot_id": "r1"`, `"warnings": []`}},
		{"no status source", &HTTPServer{}, "GET", "/status", 404, "text/plain", nil},
		{"preview", full, "GET", "/preview.jpg", 200, "image/jpeg", []string{"fake jpeg"}},
		{"no preview yet", &HTTPServer{Preview: func() []byte { return nil }}, "GET", "/preview.jpg", 503, "text/plain", []string{"no depth preview yet"}},
		{"metrics", full, "GET", "/metrics", 200, "text/plain", []string{
			`edgedepth_mqtt_messages_coalesced_total{kind="depth"} 1`,
			`edgedepth_mqtt_messages_dropped_total{kind="events"} 0`,
			"edgedepth_mqtt_connected 0",
			"edgedepth_mqtt_queued_messages 1",
			"edgedepth_mqtt_reconnects_total 0",
		}},
		{"no registry", &HTTPServer{}, "GET", "/metrics", 404, "text/plain", nil},
		{"HEAD", full, "HEAD", "/healthz", 200, "application/json", nil},
		{"unknown path", full, "GET", "/nope", 404, "text/plain", nil},
		{"wrong method", full, "POST", "/healthz", 405, "text/plain", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.srv.Handler().ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.wantCode {
				t.Errorf("status %d, want %d; body %q", rec.Code, tc.wantCode, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
				t.Errorf("Content-Type %q, want %s", ct, tc.wantType)
			}
			for _, s := range tc.wantInBody {
				if !strings.Contains(rec.Body.String(), s) {
					t.Errorf("body lacks %q:\n%s", s, rec.Body)
				}
			}
		})
	}
}

// TestHTTPViewerSelfContained: the robot may have no Internet; the viewer must not
// load anything from elsewhere.
func TestHTTPViewerSelfContained(t *testing.T) {
	for _, s := range []string{"http://", "https://", "//cdn", "<link"} {
		if strings.Contains(string(viewerHTML), s) {
			t.Errorf("viewer page references an external asset (%q)", s)
		}
	}
}

func TestHTTPServerRun(t *testing.T) {
	h := new(health.Tracker)
	s := &HTTPServer{Addr: "127.0.0.1:0", Health: h, Log: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-time.After(waitTimeout):
		t.Fatal("HTTP server not ready")
	}

	client := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() (int, healthReport) {
		resp, err := client.Get("http://" + s.ListenAddr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r healthReport
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return resp.StatusCode, r
	}
	if code, r := get(); code != 200 || !r.OK {
		t.Errorf("healthy: %d %+v", code, r)
	}
	h.Set("mqtt", "broker gone")
	if code, r := get(); code != 503 || r.OK || len(r.Warnings) != 1 || r.Warnings[0].Message != "broker gone" {
		t.Errorf("degraded: %d %+v", code, r)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return")
	}
}

func TestHTTPServerAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = (&HTTPServer{Addr: ln.Addr().String()}).Run(context.Background())
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "set http.addr") {
		t.Errorf("Run on a busy port: %v", err)
	}
}
