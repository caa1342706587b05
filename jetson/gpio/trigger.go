package gpio

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Trigger pulses an output pin at the camera frame rate. Wired to the external trigger
// input of both cameras of a stereo pair, it makes the two eyes expose together.
//
// The schedule is absolute: pulse n rises at start + n/RateHz, computed from n, never by
// adding periods, so late wake-ups (scheduler latency, GC) shift single edges but do not
// accumulate. A pulse that would start more than half a period late is skipped and
// counted instead of being sent in a burst.
type Trigger struct {
	Pin        gpio.PinOut
	RateHz     float64       // pulses per second: the camera frame rate
	PulseWidth time.Duration // high time of each pulse; must be shorter than the period
	Clock      Clock         // nil: the system clock

	pulses atomic.Uint64
	missed atomic.Uint64
}

// NewTrigger checks the rate and width and returns a trigger on pin.
func NewTrigger(pin gpio.PinOut, rateHz float64, width time.Duration) (*Trigger, error) {
	t := &Trigger{Pin: pin, RateHz: rateHz, PulseWidth: width}
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Trigger) check() error {
	if t.Pin == nil {
		return fmt.Errorf("trigger: no pin")
	}
	if !(t.RateHz > 0 && t.RateHz <= MaxTriggerRateHz) {
		return fmt.Errorf("trigger: rate %g Hz is outside (0, %g]", t.RateHz, float64(MaxTriggerRateHz))
	}
	if t.PulseWidth <= 0 || t.PulseWidth >= t.Period() {
		return fmt.Errorf("trigger: pulse width %s must be positive and shorter than the period %s", t.PulseWidth, t.Period())
	}
	return nil
}

// Period is the time between rising edges.
func (t *Trigger) Period() time.Duration { return time.Duration(float64(time.Second) / t.RateHz) }

// Pulses is the number of pulses sent so far.
func (t *Trigger) Pulses() uint64 { return t.pulses.Load() }

// Missed is the number of pulses skipped because the loop woke up too late for them.
func (t *Trigger) Missed() uint64 { return t.missed.Load() }

// deadline is the rising edge of pulse n.
func (t *Trigger) deadline(start time.Time, n int64) time.Time {
	return start.Add(time.Duration(float64(n) * float64(time.Second) / t.RateHz))
}

// Run pulses the pin until ctx ends, then leaves it low and returns nil. It returns an
// error only when the pin refuses a level.
func (t *Trigger) Run(ctx context.Context) error {
	if err := t.check(); err != nil {
		return err
	}
	clk := clockOr(t.Clock)
	if err := t.Pin.Out(gpio.Low); err != nil {
		return fmt.Errorf("trigger %s: %w", t.Pin, err)
	}
	defer t.Pin.Out(gpio.Low)
	period := t.Period()
	start := clk.Now()
	for n := int64(0); ; n++ {
		rise := t.deadline(start, n)
		if !waitUntil(ctx, clk, rise) {
			return nil
		}
		if late := clk.Now().Sub(rise); late > period/2 {
			// Skip to the next pulse still ahead of us, keeping the grid.
			skip := int64(late/period) + 1
			t.missed.Add(uint64(skip))
			n += skip - 1
			continue
		}
		if err := t.Pin.Out(gpio.High); err != nil {
			return fmt.Errorf("trigger %s: %w", t.Pin, err)
		}
		t.pulses.Add(1)
		if !waitUntil(ctx, clk, rise.Add(t.PulseWidth)) {
			return nil
		}
		if err := t.Pin.Out(gpio.Low); err != nil {
			return fmt.Errorf("trigger %s: %w", t.Pin, err)
		}
	}
}

// waitUntil blocks until clk reaches at (true) or ctx ends (false).
func waitUntil(ctx context.Context, clk Clock, at time.Time) bool {
	tm := clk.Timer(at)
	select {
	case <-ctx.Done():
		tm.Stop()
		return false
	case <-tm.C():
		return true
	}
}
