package governor

import "time"

// Clock is the time source of the governor's loop and of Budget. Production uses the
// system clock (a nil Clock means that); tests inject a manual clock so that traces and
// time slicing are exact and no test sleeps.
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

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Timer(at time.Time) Timer { return systemTimer{time.NewTimer(time.Until(at))} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }

func clockOr(c Clock) Clock {
	if c == nil {
		return systemClock{}
	}
	return c
}
