package stereo

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/health"
)

// Side names one eye of the rig.
type Side int

// The two eyes. Left is the reference eye: depth and pose are of the left camera.
const (
	Left Side = iota
	Right
)

func (s Side) String() string {
	if s == Left {
		return "left"
	}
	return "right"
}

// HealthPairing is the health component under which drift is reported.
const HealthPairing = "camera pairing"

const (
	// gapWindow is how many recent inter-frame gaps estimate a camera's frame period.
	gapWindow = 16
	// minGaps is how many gaps a side needs before its period is trusted.
	minGaps = 8
	// maxDriftSamples caps the drift window's memory whatever the frame rate
	// (8192 samples: over two minutes at 60 fps).
	maxDriftSamples = 8192
	// driftCheckEvery is how often (in capture time) drift is compared with the
	// warning threshold: the fit costs O(window), not worth doing per pair.
	driftCheckEvery = time.Second
)

// Pairer matches the frames of two free-running cameras into stereo pairs by capture
// time. A left and a right frame form a pair when each is the other's nearest frame in
// time and they are at most the tolerance apart; every other frame is discarded and
// counted. Matching by nearest capture time rather than by arrival order is what keeps
// the pairs right when one camera's frames arrive consistently later (network or
// decoder delay): its frames are matched with the left frames exposed at the same
// moment, which wait in the buffer meanwhile.
//
// Each side's capture times must increase; a frame that goes back in time on its side is
// discarded and counted (OutOfOrder), except when its Clock differs from the previous
// frame's, which starts a new time base for that side (the camera switched from receive
// time to NTP time): its buffered frames are dropped and the drift fit restarts.
//
// Emitted pairs carry the left frame's capture time (depth and pose are of the left
// camera, so the time a consumer stamps them with is the left exposure; the right one
// is within the tolerance), unrectified images, no intrinsics, and Seq counting pairs
// from 0. Within one clock, Seq and CaptureTime strictly increase.
//
// Latency: a frame may wait for the next frame of the other camera to rule out a closer
// partner, unless the smallest recent gap of that camera already rules it out; so
// pairing adds at most about one frame period.
//
// A Pairer is safe for concurrent use; emit is called with its lock held, in order, and
// must neither block nor call back into the Pairer.
type Pairer struct {
	cfg    Config
	health *health.Tracker

	mu   sync.Mutex
	side [2]sideState
	seq  uint64

	pairs     uint64
	errSum    time.Duration // Σ|tL − tR| over all pairs
	errMax    time.Duration
	drift     offsetWindow
	nextCheck time.Time // capture time of the next drift check
	driftWarn bool
}

// sideState is what the Pairer keeps of one camera.
type sideState struct {
	buf []camera.Frame // waiting for a partner, oldest first, capture times increasing

	floor    time.Time // capture time of the last accepted frame: the next must be later
	hasFloor bool
	prev     time.Time // capture time of the previous frame for the gap estimate
	hasPrev  bool
	clock    camera.Clock

	gaps  [gapWindow]time.Duration
	nGaps int // total gaps recorded (the window holds the last gapWindow)

	frames, unpaired, outOfOrder, clockChanges uint64
}

// NewPairer returns a Pairer with cfg (zero fields mean their defaults; cfg must pass
// Validate). Drift above cfg.DriftWarnMsPerMin is reported to h under HealthPairing;
// h may be nil.
func NewPairer(cfg Config, h *health.Tracker) *Pairer {
	cfg = cfg.Resolved()
	p := &Pairer{cfg: cfg, health: h}
	for i := range p.side {
		p.side[i].buf = make([]camera.Frame, 0, cfg.BufferFrames)
	}
	p.drift.window = cfg.DriftWindow
	return p
}

// Add offers one frame of side and calls emit for every pair it completes.
func (p *Pairer) Add(side Side, f camera.Frame, emit func(camera.StereoFrame)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.side[side]
	if s.hasFloor && f.Clock != s.clock {
		// A new time base: nothing buffered is comparable with what comes next.
		s.clockChanges++
		s.unpaired += uint64(len(s.buf))
		clear(s.buf)
		s.buf = s.buf[:0]
		s.hasFloor, s.hasPrev, s.nGaps = false, false, 0
		p.drift.reset()
	}
	if s.hasFloor && !f.CaptureTime.After(s.floor) {
		s.outOfOrder++
		return
	}
	s.clock = f.Clock
	s.frames++
	if s.hasPrev {
		s.gaps[s.nGaps%gapWindow] = f.CaptureTime.Sub(s.prev)
		s.nGaps++
	}
	s.prev, s.hasPrev = f.CaptureTime, true
	s.floor, s.hasFloor = f.CaptureTime, true
	if len(s.buf) == p.cfg.BufferFrames {
		// The other camera is stalled or far behind: the oldest frame has waited
		// longest and is the least likely to be wanted.
		s.buf[0] = camera.Frame{}
		s.buf = append(s.buf[:0], s.buf[1:]...)
		s.unpaired++
	}
	s.buf = append(s.buf, f)
	p.match(emit)
}

// match pairs or discards buffered frames until it must wait for more.
func (p *Pairer) match(emit func(camera.StereoFrame)) {
	tol := p.toleranceLocked()
	if tol <= 0 {
		return // the period is not known yet: keep buffering (bounded) until it is
	}
	L, R := &p.side[Left], &p.side[Right]
	for len(L.buf) > 0 && len(R.buf) > 0 {
		tl, tr := L.buf[0].CaptureTime, R.buf[0].CaptureTime
		d := tl.Sub(tr)
		switch {
		case d > tol:
			// r is too early for l and for every later left frame.
			p.discard(Right)
			continue
		case -d > tol:
			p.discard(Left)
			continue
		case d > 0:
			// r is before l: l's nearest right frame may be a later one. r has no better
			// partner than l (later left frames are further from it).
			if next, ok := p.nextCloser(R, tr, tl); !ok {
				return // wait for the next right frame
			} else if next {
				p.discard(Right)
				continue
			}
		case d < 0:
			if next, ok := p.nextCloser(L, tl, tr); !ok {
				return
			} else if next {
				p.discard(Left)
				continue
			}
		}
		p.emitPair(emit)
	}
}

// nextCloser reports whether the frame after the head of s (at time cur) would be closer
// to target (> cur) than the head is. ok is false when that cannot be known yet. When the
// next frame has not arrived, the camera's smallest recent gap bounds how early it can
// be: if even that is not closer, the head is paired now instead of a frame period later.
func (p *Pairer) nextCloser(s *sideState, cur, target time.Time) (closer, ok bool) {
	dist := target.Sub(cur)
	if len(s.buf) > 1 {
		return absDur(s.buf[1].CaptureTime.Sub(target)) < dist, true
	}
	if g, known := s.minGap(); known && absDur(cur.Add(g).Sub(target)) >= dist {
		return false, true
	}
	return false, false
}

func (p *Pairer) discard(side Side) {
	s := &p.side[side]
	s.buf[0] = camera.Frame{}
	s.buf = append(s.buf[:0], s.buf[1:]...)
	s.unpaired++
}

func (p *Pairer) emitPair(emit func(camera.StereoFrame)) {
	L, R := &p.side[Left], &p.side[Right]
	l, r := L.buf[0], R.buf[0]
	L.buf[0], R.buf[0] = camera.Frame{}, camera.Frame{}
	L.buf = append(L.buf[:0], L.buf[1:]...)
	R.buf = append(R.buf[:0], R.buf[1:]...)

	off := l.CaptureTime.Sub(r.CaptureTime)
	p.pairs++
	p.errSum += absDur(off)
	p.errMax = max(p.errMax, absDur(off))
	p.drift.add(l.CaptureTime, off, p.periodLocked())
	p.checkDrift(l.CaptureTime)

	sf := camera.StereoFrame{Seq: p.seq, CaptureTime: l.CaptureTime, Left: l.Image, Right: r.Image}
	p.seq++
	emit(sf)
}

// checkDrift compares the drift with the warning threshold once a second of capture time.
// The warning clears below 80% of the threshold so that a drift hovering at the threshold
// does not flap.
func (p *Pairer) checkDrift(now time.Time) {
	if p.health == nil || now.Before(p.nextCheck) {
		return
	}
	p.nextCheck = now.Add(driftCheckEvery)
	fit := p.drift.fit()
	if !fit.valid || fit.span < p.cfg.DriftWindow/2 {
		return
	}
	a := math.Abs(fit.msPerMin)
	switch {
	case a > p.cfg.DriftWarnMsPerMin:
		p.driftWarn = true
		p.health.Set(HealthPairing, fmt.Sprintf(
			"camera clocks drift apart by %.1f ms/min (left − right, over %s), above drift_warn_ms_per_min %g: synchronise the cameras' clocks (NTP/PTP) or use hardware-triggered cameras",
			fit.msPerMin, fit.span.Round(time.Second), p.cfg.DriftWarnMsPerMin))
	case p.driftWarn && a < 0.8*p.cfg.DriftWarnMsPerMin:
		p.driftWarn = false
		p.health.Clear(HealthPairing)
	}
}

// Flush discards every buffered frame (counted as unpaired) and restarts the drift fit.
// Call it when a camera restarts: frames from before an outage must not pair with frames
// after it, and a restarted stream may anchor its clock anew. The frame-period estimate
// is kept (the camera's rate has not changed) but the next gap is not measured across
// the outage.
func (p *Pairer) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.side {
		s := &p.side[i]
		s.unpaired += uint64(len(s.buf))
		clear(s.buf)
		s.buf = s.buf[:0]
		s.hasPrev = false
	}
	p.drift.reset()
}

// Tolerance is the pairing tolerance in force: configured, or half the frame period
// (configured or measured); 0 while the period is still unknown (nothing pairs yet).
func (p *Pairer) Tolerance() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.toleranceLocked()
}

func (p *Pairer) toleranceLocked() time.Duration {
	if p.cfg.PairTolerance > 0 {
		return p.cfg.PairTolerance
	}
	return p.periodLocked() / 2
}

// periodLocked is the configured frame period, else the longer of the two cameras'
// measured periods (a slower camera bounds how far apart partners can be), else 0.
func (p *Pairer) periodLocked() time.Duration {
	if p.cfg.FramePeriod > 0 {
		return p.cfg.FramePeriod
	}
	l, okL := p.side[Left].period()
	r, okR := p.side[Right].period()
	if !okL || !okR {
		return 0
	}
	return max(l, r)
}

// window returns the recorded gaps still in the window.
func (s *sideState) window() []time.Duration {
	return s.gaps[:min(s.nGaps, gapWindow)]
}

// period is the lower quartile of the recent gaps between frames. A dropped frame makes
// a gap of two periods or more, never less, so a low quantile stays right even when a
// camera loses many frames (the median would double once half the gaps span a drop),
// and jitter only makes it a little shorter: a slightly tighter tolerance.
func (s *sideState) period() (time.Duration, bool) {
	if s.nGaps < minGaps {
		return 0, false
	}
	var tmp [gapWindow]time.Duration
	g := tmp[:copy(tmp[:], s.window())]
	slices.Sort(g)
	return g[len(g)/4], true
}

// minGap is the smallest recent gap between frames: how soon the next frame can come.
func (s *sideState) minGap() (time.Duration, bool) {
	if s.nGaps < minGaps {
		return 0, false
	}
	return slices.Min(s.window()), true
}

// PairStats describes the pairing so far.
type PairStats struct {
	Pairs uint64 `json:"pairs"`
	// UnpairedLeft and UnpairedRight count frames discarded without a partner (including
	// frames flushed on a camera restart and the oldest frames dropped from a full buffer).
	UnpairedLeft  uint64 `json:"unpaired_left"`
	UnpairedRight uint64 `json:"unpaired_right"`
	// OutOfOrderLeft and OutOfOrderRight count frames discarded because their capture
	// time was not after the previous frame's on the same side.
	OutOfOrderLeft  uint64 `json:"out_of_order_left"`
	OutOfOrderRight uint64 `json:"out_of_order_right"`
	// ClockChanges counts frames whose Clock differed from the previous frame's on their side.
	ClockChanges uint64 `json:"clock_changes"`
	// Tolerance in force (0: frame period not known yet).
	Tolerance time.Duration `json:"tolerance_ns"`
	// PeriodLeft and PeriodRight are the measured frame periods (0: not known yet).
	PeriodLeft  time.Duration `json:"period_left_ns"`
	PeriodRight time.Duration `json:"period_right_ns"`
	// ErrorMean and ErrorMax are |tL − tR| over all pairs; ErrorRecent is its mean over
	// the drift window.
	ErrorMean   time.Duration `json:"error_mean_ns"`
	ErrorMax    time.Duration `json:"error_max_ns"`
	ErrorRecent time.Duration `json:"error_recent_ns"`
	// OffsetRecent is the mean of tL − tR over the drift window: positive when the left
	// capture times are later.
	OffsetRecent time.Duration `json:"offset_recent_ns"`
	// DriftMsPerMin is the trend of tL − tR in milliseconds per minute, a least-squares
	// fit over DriftSpan of recent pairs; meaningful only when DriftValid.
	DriftMsPerMin float64       `json:"drift_ms_per_min"`
	DriftSpan     time.Duration `json:"drift_span_ns"`
	DriftValid    bool          `json:"drift_valid"`
	// BufferedLeft and BufferedRight are the frames waiting for a partner now.
	BufferedLeft  int `json:"buffered_left"`
	BufferedRight int `json:"buffered_right"`
}

// Stats returns a snapshot of the pairing statistics.
func (p *Pairer) Stats() PairStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	L, R := &p.side[Left], &p.side[Right]
	st := PairStats{
		Pairs:           p.pairs,
		UnpairedLeft:    L.unpaired,
		UnpairedRight:   R.unpaired,
		OutOfOrderLeft:  L.outOfOrder,
		OutOfOrderRight: R.outOfOrder,
		ClockChanges:    L.clockChanges + R.clockChanges,
		Tolerance:       p.toleranceLocked(),
		ErrorMax:        p.errMax,
		BufferedLeft:    len(L.buf),
		BufferedRight:   len(R.buf),
	}
	st.PeriodLeft, _ = L.period()
	st.PeriodRight, _ = R.period()
	if p.pairs > 0 {
		st.ErrorMean = p.errSum / time.Duration(p.pairs)
	}
	fit := p.drift.fit()
	st.ErrorRecent, st.OffsetRecent = fit.absMean, fit.mean
	st.DriftMsPerMin, st.DriftSpan, st.DriftValid = fit.msPerMin, fit.span, fit.valid
	return st
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
