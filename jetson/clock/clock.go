// Package clock is the time source of edgedepth's control loops on a Jetson (GPIO
// trigger, LED and button; the training governor). Production uses the system clock;
// tests inject a manual clock so that schedules are exact and no test sleeps.
package clock

import "time"

// Clock tells the time and makes one-shot timers.
type Clock interface {
	Now() time.Time
	// Timer fires once the clock reaches at.
	Timer(at time.Time) Timer
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop releases the timer; it reports whether it stopped it before it fired.
	Stop() bool
}

// System is the wall clock.
type System struct{}

// Now implements Clock.
func (System) Now() time.Time { return time.Now() }

// Timer implements Clock.
func (System) Timer(at time.Time) Timer { return systemTimer{time.NewTimer(time.Until(at))} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }

// Or returns c, or the system clock when c is nil (a nil Clock field means "real time").
func Or(c Clock) Clock {
	if c == nil {
		return System{}
	}
	return c
}
