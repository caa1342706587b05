package stereo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

// ErrNotRunning is returned by CaptureRaw when the Source is not running (before Run,
// or after it has returned).
var ErrNotRunning = errors.New("stereo: source not running")

// ErrNoPairs is wrapped by CaptureRaw's error when the cameras deliver no pairs (a
// camera is down, or the two never pair); the message says which camera and why.
var ErrNoPairs = errors.New("no stereo pairs")

// minNoPairsWait is the least CaptureRaw waits for a pair before it gives up.
const minNoPairsWait = 2 * time.Second

// RawPair is a stereo pair as the cameras delivered it, before rectification. Its
// images are copies that belong to the caller.
type RawPair struct {
	// Seq and CaptureTime are those of the rectified pair the pipeline made of it.
	Seq         uint64
	CaptureTime time.Time
	Left, Right camera.Image
}

// rawCapture is one CaptureRaw call waiting for pairs; its fields but out and stopped
// are guarded by Source.mu.
type rawCapture struct {
	n     int
	every time.Duration
	last  time.Time // capture time of the last pair taken
	taken int
	seen  chan struct{} // a pair arrived (taken or not): the cameras are alive; capacity 1
	out   chan RawPair  // capacity n: sending never blocks
	// stopped is closed when Run returns.
	stopped chan struct{}
}

// CaptureRaw collects n raw (unrectified) pairs from the running Source, as they are
// paired, at least every apart in capture time (0: consecutive pairs), and returns
// them. The live pipeline is not disturbed: each pair taken is copied before it is
// rectified and emitted as usual. It fails with ErrNotRunning when Run is not running,
// with ctx's error when ctx ends first, with an error wrapping ErrNoPairs (naming the
// camera that is down and why) when no pair arrives for longer than every plus the
// cameras' stall timeout (at least 2 s), and when Run returns meanwhile. On error, the
// pairs collected so far are returned too. Several calls may run at once.
func (s *Source) CaptureRaw(ctx context.Context, n int, every time.Duration) ([]RawPair, error) {
	if n <= 0 {
		return nil, fmt.Errorf("stereo: capture: %d pairs asked for, want at least 1", n)
	}
	if every < 0 {
		return nil, fmt.Errorf("stereo: capture: spacing %v must not be negative", every)
	}
	c := &rawCapture{
		n: n, every: every,
		seen:    make(chan struct{}, 1),
		out:     make(chan RawPair, n),
		stopped: make(chan struct{}),
	}
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return nil, ErrNotRunning
	}
	s.captures = append(s.captures, c)
	s.mu.Unlock()
	defer s.removeCapture(c)

	noPairs := every + max(s.Config.Resolved().StallTimeout, minNoPairsWait)
	idle := time.NewTimer(noPairs)
	defer idle.Stop()
	got := make([]RawPair, 0, n)
	for len(got) < n {
		select {
		case p := <-c.out:
			got = append(got, p)
		case <-c.seen:
			idle.Reset(noPairs)
		case <-ctx.Done():
			if got = c.drain(got); len(got) == n {
				return got, nil
			}
			return got, fmt.Errorf("stereo: capture: %d of %d raw pairs when %w%s", len(got), n, ctx.Err(), s.camerasDown())
		case <-idle.C:
			return got, fmt.Errorf("stereo: capture: %w for %v (%d of %d raw pairs captured)%s",
				ErrNoPairs, noPairs, len(got), n, s.camerasDown())
		case <-c.stopped:
			// Pairs taken before Run returned are still in out.
			if got = c.drain(got); len(got) == n {
				return got, nil
			}
			return got, fmt.Errorf("stereo: capture: source stopped after %d of %d raw pairs", len(got), n)
		}
	}
	return got, nil
}

// drain appends the pairs already sent to c to got.
func (c *rawCapture) drain(got []RawPair) []RawPair {
	for {
		select {
		case p := <-c.out:
			got = append(got, p)
		default:
			return got
		}
	}
}

// camerasDown says which cameras are down and why, for CaptureRaw's errors ("" when
// all are up).
func (s *Source) camerasDown() string {
	st := s.Stats()
	var down []string
	cams := []CameraStats{st.Left, st.Right}
	names := []string{HealthLeft, HealthRight}
	if st.SideBySide {
		cams, names = cams[:1], []string{HealthSideBySide}
	}
	for i, c := range cams {
		if c.Up {
			continue
		}
		msg := fmt.Sprintf("%s (%s) is down", names[i], c.Name)
		if c.LastError != "" {
			msg += ": " + c.LastError
		}
		down = append(down, msg)
	}
	if len(down) == 0 {
		return ""
	}
	return ": " + strings.Join(down, "; ")
}

// offerRaw hands a copy of the raw pair sf to every CaptureRaw that wants it. It runs
// on Run's goroutine, before sf is rectified.
func (s *Source) offerRaw(sf camera.StereoFrame) {
	s.mu.Lock()
	if len(s.captures) == 0 {
		s.mu.Unlock()
		return
	}
	at := sf.CaptureTime
	if at.IsZero() {
		at = time.Now()
	}
	var want []*rawCapture
	for _, c := range s.captures {
		select {
		case c.seen <- struct{}{}:
		default:
		}
		if c.taken >= c.n || (c.taken > 0 && at.Sub(c.last) < c.every) {
			continue
		}
		c.taken++
		c.last = at
		want = append(want, c)
	}
	s.mu.Unlock()
	// Copy outside the lock: the cameras' goroutines need it to pair.
	for _, c := range want {
		c.out <- RawPair{Seq: sf.Seq, CaptureTime: sf.CaptureTime, Left: cloneImage(sf.Left), Right: cloneImage(sf.Right)}
	}
}

func cloneImage(im camera.Image) camera.Image {
	im.Pix = append([]byte(nil), im.Pix...)
	return im
}

func (s *Source) removeCapture(c *rawCapture) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.captures {
		if x == c {
			s.captures = append(s.captures[:i], s.captures[i+1:]...)
			return
		}
	}
}

// stopCaptures ends every waiting CaptureRaw: Run is returning.
func (s *Source) stopCaptures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	for _, c := range s.captures {
		close(c.stopped)
	}
	s.captures = nil
}

// SetRectifier makes r rectify the pairs from the next one on, and returns the
// rectifier it replaces. It is safe while Run runs: a pair is rectified, and gets its
// intrinsics and baseline, wholly by one rectifier, and SetRectifier waits for the
// pair being rectified (if any), so that once it returns previous is no longer used by
// the Source and may be closed. r nil means the streams are already rectified and
// Intrinsics and BaselineM describe them.
func (s *Source) SetRectifier(r camera.Rectifier) (previous camera.Rectifier) {
	s.rectMu.Lock()
	defer s.rectMu.Unlock()
	previous, s.Rectifier = s.Rectifier, r
	return previous
}
