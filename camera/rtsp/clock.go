package rtsp

import (
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

// maxClockOffset is how far the camera's NTP time may be from our receive-time estimate
// for the same picture when capture switches to it. The estimate includes the network and
// encoder delay (milliseconds), so the camera's time is normally a little earlier; the
// frames it would date before the last one emitted are dropped to keep capture times
// monotonic. A camera clock further off, either way, is not synchronised with ours (nor,
// probably, with the other camera's), so its NTP time is ignored for the rest of the
// session, with a warning.
const maxClockOffset = time.Second

// captureClock turns a picture's PTS into its capture time. Until the camera's RTCP
// sender reports give NTP time it anchors PTS to our receive clock at the first picture
// (capture = first receive time + (PTS - first PTS)); once NTP time is available it uses
// that. It never returns a time that is not after the previous one. One goroutine.
type captureClock struct {
	rate float64 // RTP clock rate, ticks per second

	anchored   bool
	anchorRecv time.Time
	anchorPTS  int64

	ntp        bool // switched to NTP time
	ntpRefused bool // the camera's clock stepped too far back: receive time for good
	last       time.Time
}

// clockEvent is a change of clock that capture made, for the log.
type clockEvent int

const (
	clockSame clockEvent = iota
	clockSwitchedToNTP
	clockNTPRefused
)

// capture returns the capture time of the picture with pts, received at recv (the time
// its last packet arrived) with NTP time ntp when hasNTP. ok is false when that time is
// not after the previous picture's: the picture must be dropped.
func (k *captureClock) capture(pts int64, recv, ntp time.Time, hasNTP bool) (t time.Time, clock camera.Clock, event clockEvent, ok bool) {
	event = clockSame
	if !k.anchored {
		k.anchored, k.anchorRecv, k.anchorPTS = true, recv, pts
	}
	t = k.anchorRecv.Add(time.Duration(float64(pts-k.anchorPTS) / k.rate * float64(time.Second)))
	clock = camera.ClockReceive
	if hasNTP && !k.ntpRefused {
		if !k.ntp {
			if off := ntp.Sub(t); off < -maxClockOffset || off > maxClockOffset {
				k.ntpRefused = true
				event = clockNTPRefused
			} else {
				k.ntp = true
				event = clockSwitchedToNTP
			}
		}
		if k.ntp {
			t, clock = ntp, camera.ClockNTP
		}
	}
	if !k.last.IsZero() && !t.After(k.last) {
		return t, clock, event, false
	}
	k.last = t
	return t, clock, event, true
}
