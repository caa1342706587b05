package governor

import (
	"context"
	"math"
	"sync"
	"time"
)

// DutySource gives the duty cycle a Budget enforces. *Governor is one.
type DutySource interface {
	// Duty returns the duty cycle now, in [0, 1], and a channel that is closed when it
	// next changes.
	Duty() (float64, <-chan struct{})
}

// Budget turns a duty cycle into time slices for the trainer: after a micro-step of
// duration d at duty cycle u the trainer rests d·(1−u)/u, so that over any run of steps
// it runs u of the wall-clock time. The trainer's loop is
//
//	for {
//		if err := budget.Wait(ctx); err != nil {
//			return nil // shutting down
//		}
//		start := time.Now()
//		trainMicroStep()
//		budget.Charge(time.Since(start))
//	}
//
// The rest is measured from the end of the step, so a trainer that starts late only
// rests longer: the duty cycle is an upper bound, never exceeded. The rest follows the
// duty cycle as it is when Wait runs, so a cut from the governor lengthens a rest
// already under way and a stop holds the trainer until training may resume.
//
// Rest is proportional to the last step, so a single step is never cut short: the
// trainer keeps micro-steps short (tens of milliseconds) for the governor to have a
// say. Budget is safe for concurrent use, but one trainer loop owns it.
type Budget struct {
	src DutySource
	clk Clock

	mu       sync.Mutex
	lastEnd  time.Time
	lastStep time.Duration
}

// NewBudget returns a Budget that follows src's duty cycle; clk nil: the system clock.
func NewBudget(src DutySource, clk Clock) *Budget {
	return &Budget{src: src, clk: clockOr(clk)}
}

// Rest is how long to rest after a step of duration step at duty cycle duty in (0, 1]
// so that the step and the rest together run at that duty cycle: step·(1−duty)/duty.
// A duty cycle of 0 or less (stopped) rests forever, which Rest gives as the largest
// Duration.
func Rest(step time.Duration, duty float64) time.Duration {
	if step <= 0 || duty >= 1 {
		return 0
	}
	if !(duty > 0) {
		return time.Duration(math.MaxInt64)
	}
	r := float64(step) * (1 - duty) / duty
	if r >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Round(r))
}

// Charge records a step that has just ended and lasted step.
func (b *Budget) Charge(step time.Duration) {
	now := b.clk.Now()
	b.mu.Lock()
	b.lastEnd, b.lastStep = now, step
	b.mu.Unlock()
}

// NextStart is when the next step may start at duty cycle duty; the zero time when no
// step was charged yet.
func (b *Budget) NextStart(duty float64) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastStep <= 0 {
		return b.lastEnd
	}
	return b.lastEnd.Add(Rest(b.lastStep, duty)) // duty 0: about three centuries on
}

// Wait blocks until the trainer may start its next step: the duty cycle is above 0 and
// the rest after the last step is over. It returns ctx's error when ctx ends first.
func (b *Budget) Wait(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		duty, changed := b.src.Duty()
		if !(duty > 0) {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		at := b.NextStart(duty)
		if !at.After(b.clk.Now()) {
			return nil
		}
		t := b.clk.Timer(at)
		select {
		case <-t.C():
			// The rest is over at the duty cycle read above; loop to check that it has
			// not been cut meanwhile.
		case <-changed:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
