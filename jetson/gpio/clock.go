package gpio

import "github.com/edgedepth/edgedepth/jetson/clock"

// Clock is the time source of the trigger, LED and button loops (nil fields mean the
// system clock); tests inject a fake to record exact schedules.
type Clock = clock.Clock

// Timer is a one-shot timer of a Clock.
type Timer = clock.Timer

func clockOr(c Clock) Clock { return clock.Or(c) }
