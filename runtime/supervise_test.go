package runtime

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edgedepth/edgedepth/health"
)

func TestSuperviseRestartsAndReportsHealth(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var h health.Tracker
	var runs atomic.Int32
	seen := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		supervise(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), &h, "camera", func(ctx context.Context) error {
			if runs.Add(1) == 1 {
				return errors.New("connection refused")
			}
			// Second run: the warning from the first failure is visible until the part
			// has run for healthyAfter.
			if w := h.Warnings(); len(w) == 1 {
				seen <- w[0].Message
			} else {
				seen <- ""
			}
			<-ctx.Done()
			return nil
		})
	}()
	msg := <-seen
	if !strings.Contains(msg, "connection refused") || !strings.Contains(msg, "retrying in") {
		t.Fatalf("health message %q should name the failure and the retry", msg)
	}
	cancel()
	<-done
	if got := runs.Load(); got != 2 {
		t.Fatalf("part ran %d times, want 2", got)
	}
}
