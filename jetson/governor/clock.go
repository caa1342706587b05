package governor

import "github.com/edgedepth/edgedepth/jetson/clock"

// Clock is the time source of the governor's loop and of Budget (nil means the system
// clock); tests inject a manual clock so that traces and time slicing are exact.
type Clock = clock.Clock

// Timer is a one-shot timer of a Clock.
type Timer = clock.Timer

func clockOr(c Clock) Clock { return clock.Or(c) }
