package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/edgedepth/edgedepth/health"
)

// Backoff bounds for restarting a failed part: the first retry after backoffMin, doubling
// up to backoffMax, reset once the part has run for backoffReset without failing.
const (
	backoffMin   = 500 * time.Millisecond
	backoffMax   = 30 * time.Second
	backoffReset = time.Minute
	// healthyAfter is how long a restarted part must run before its warning is cleared.
	healthyAfter = 2 * time.Second
)

// supervise runs part until ctx ends, restarting it with exponential backoff whenever it
// fails or returns early, and keeps the part's health warning up to date. It returns when
// ctx is done and the last run has returned. A part that ends on cancellation with nil is
// a clean stop, not an error.
func supervise(ctx context.Context, log *slog.Logger, h *health.Tracker, name string, part func(context.Context) error) {
	wait := backoffMin
	for {
		started := time.Now()
		recovered := time.AfterFunc(healthyAfter, func() { h.Clear(name) })
		err := part(ctx)
		recovered.Stop()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = fmt.Errorf("stopped unexpectedly")
		}
		if time.Since(started) > backoffReset {
			wait = backoffMin
		}
		h.Set(name, fmt.Sprintf("%v (retrying in %s)", err, wait.Round(100*time.Millisecond)))
		log.Warn("part failed; restarting", "component", name, "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, backoffMax)
	}
}
