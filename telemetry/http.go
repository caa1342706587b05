package telemetry

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgedepth/edgedepth/health"
)

// DefaultHTTPAddr is where the HTTP server listens unless told otherwise.
const DefaultHTTPAddr = "127.0.0.1:8080"

//go:embed web/viewer.html
var viewerHTML []byte

// HTTPServer serves the daemon's local web endpoints:
//
//	/            live viewer: the depth preview and the status, refreshed every second
//	/preview.jpg latest depth preview (JPEG); 503 until there is one
//	/status      status as JSON (the same document as the MQTT status topic)
//	/healthz     200 and {"ok":true,"warnings":[]} when healthy, else 503 and the warnings
//	/metrics     Prometheus metrics
//
// There is no authentication: keep it on the loopback interface, or put a reverse
// proxy with authentication in front.
type HTTPServer struct {
	// Addr is the TCP host:port to listen on; port 0 picks a free port (see
	// ListenAddr). Default "127.0.0.1:8080".
	Addr string
	// Health backs /healthz; nil reports healthy.
	Health *health.Tracker
	// Registry backs /metrics; nil answers 404.
	Registry *prometheus.Registry
	// Preview returns the latest depth preview JPEG, or nil if there is none yet. It
	// must be fast and safe for concurrent use. The caller must not modify a slice
	// after returning it. nil answers 404.
	Preview func() []byte
	// Status returns the current status, encoded as JSON for /status (usually a
	// Status). It must be safe for concurrent use. nil answers 404.
	Status func() any
	// Log receives the server's messages. Default: discard.
	Log *slog.Logger

	listen listenState
}

// Ready is closed once the server accepts connections. It stays open if Run fails
// before that, so wait on Run's result too.
func (s *HTTPServer) Ready() <-chan struct{} { return s.listen.readyChan() }

// ListenAddr is the address the server listens on once Ready is closed ("" before).
func (s *HTTPServer) ListenAddr() string { return s.listen.get() }

// Handler returns the server's routes, for tests and for embedding in another mux.
func (s *HTTPServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(viewerHTML)
	})
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.HandleFunc("GET /status", s.serveStatus)
	mux.HandleFunc("GET /preview.jpg", s.servePreview)
	if s.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{
			ErrorLog: promLogger{s.logger()},
			// A failing collector must not blank the whole page: the other metrics are
			// exactly what one needs to investigate.
			ErrorHandling: promhttp.ContinueOnError,
		}))
	} else {
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "no metrics registry configured", http.StatusNotFound)
		})
	}
	return mux
}

// healthReport is the body of /healthz.
type healthReport struct {
	OK       bool             `json:"ok"`
	Warnings []health.Warning `json:"warnings"`
}

func (s *HTTPServer) serveHealth(w http.ResponseWriter, _ *http.Request) {
	r := healthReport{OK: true, Warnings: []health.Warning{}}
	if s.Health != nil {
		r.Warnings = s.Health.Warnings()
		r.OK = len(r.Warnings) == 0
	}
	code := http.StatusOK
	if !r.OK {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, r)
}

func (s *HTTPServer) serveStatus(w http.ResponseWriter, _ *http.Request) {
	if s.Status == nil {
		http.Error(w, "no status source configured", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, s.Status())
}

func (s *HTTPServer) servePreview(w http.ResponseWriter, _ *http.Request) {
	if s.Preview == nil {
		http.Error(w, "no preview source configured", http.StatusNotFound)
		return
	}
	jpeg := s.Preview()
	if len(jpeg) == 0 {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "no depth preview yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(jpeg)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "encoding JSON: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func (s *HTTPServer) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log.With("component", "http")
}

// promLogger routes promhttp's error log to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Warn("metrics: collecting failed", "error", v) }

// Run listens and serves until ctx is cancelled, then shuts down: it stops accepting,
// gives requests in progress up to two seconds, closes the rest and returns nil.
// It fails at once if it cannot listen.
func (s *HTTPServer) Run(ctx context.Context) error {
	addr := s.Addr
	if addr == "" {
		addr = DefaultHTTPAddr
	}
	log := s.logger()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		hint := "set http.addr"
		if errors.Is(err, syscall.EADDRINUSE) {
			hint = "another edgedepth running? " + hint
		}
		return &listenError{what: "HTTP server", addr: addr, hint: hint, err: err}
	}
	bound := ln.Addr().String()
	if !isLoopback(bound) {
		log.Warn("HTTP server listens beyond this machine without authentication", "addr", bound)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- srv.Serve(ln) })
	s.listen.set(bound)
	log.Info("HTTP server listening", "addr", bound)

	var result error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		// Serve only returns early on a listener failure.
		result = err
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close() // requests still running (a slow /metrics client): cut them
	}
	wg.Wait()
	if result != nil && !errors.Is(result, http.ErrServerClosed) {
		return fmt.Errorf("HTTP server %s: %w", bound, result)
	}
	return nil
}
