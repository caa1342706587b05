package rtsptest

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/rtspserve"
)

// serverReadyTimeout bounds how long our server may take to serve its first pair.
const serverReadyTimeout = 30 * time.Second

// Server is a camera/rtspserve.Server whose Run goroutine the test owns.
type Server struct {
	*rtspserve.Server
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's result, valid once done is closed
}

// StartServer runs our RTSP server with cfg (Addr defaults to 127.0.0.1:0, a free
// port) for src (nil with cfg.AllowPublish: published streams only) and returns once
// it is Ready. The test's cleanup stops it and fails the test if Run returned an error.
// Its log goes to the test's log.
func StartServer(t testing.TB, cfg rtspserve.Config, src camera.Source) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := rtspserve.New(cfg, src, slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatalf("rtsptest: StartServer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs := &Server{Server: s, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rs.done)
		rs.err = s.Run(ctx)
	}()
	t.Cleanup(func() {
		if err := rs.Stop(); err != nil {
			t.Errorf("rtsptest: rtspserve Run: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case <-rs.done:
		t.Fatalf("rtsptest: rtspserve ended before it was ready: %v", rs.err)
	case <-time.After(serverReadyTimeout):
		t.Fatalf("rtsptest: rtspserve not ready after %v", serverReadyTimeout)
	}
	return rs
}

// Stop cancels Run, waits for it and returns its error (nil on a clean stop). Calling
// it again returns the same.
func (s *Server) Stop() error {
	s.cancel()
	<-s.done
	return s.err
}

// PathURL returns the rtsp:// URL of any path on the server (a published one, "cam1"),
// where URL takes only the eyes.
func (s *Server) PathURL(path string) string {
	return "rtsp://" + s.Addr().String() + "/" + strings.TrimPrefix(path, "/")
}

// testLog writes slog lines to the test's log.
type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
