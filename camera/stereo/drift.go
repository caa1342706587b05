package stereo

import (
	"math"
	"time"
)

// offsetWindow holds the left − right capture-time offsets of recent pairs and fits
// their trend.
//
// With free-running cameras the offset is a sawtooth: it creeps as one camera's rate or
// clock runs ahead of the other's, and jumps by a frame period when the pairing moves to
// the next partner. The jumps are unwrapped (multiples of the period removed) before the
// fit, so that the slope is the creep alone: the real drift between the cameras.
type offsetWindow struct {
	window  time.Duration
	samples []offsetSample // oldest first; samples[head:] are live
	head    int
	lastRaw time.Duration // previous raw offset, to unwrap the next
	unwrap  time.Duration // running unwrapped offset
}

type offsetSample struct {
	at        time.Time
	raw       time.Duration // tL − tR as paired
	unwrapped time.Duration // raw with period jumps removed
}

func (w *offsetWindow) reset() {
	clear(w.samples)
	w.samples, w.head = w.samples[:0], 0
}

func (w *offsetWindow) live() []offsetSample { return w.samples[w.head:] }

// add records the offset of a pair at capture time at; period (0: unknown) unwraps it.
func (w *offsetWindow) add(at time.Time, off, period time.Duration) {
	if len(w.live()) == 0 {
		w.unwrap = off
	} else {
		step := off - w.lastRaw
		if period > 0 {
			step -= time.Duration(math.Round(float64(step)/float64(period))) * period
		}
		w.unwrap += step
	}
	w.lastRaw = off
	w.samples = append(w.samples, offsetSample{at: at, raw: off, unwrapped: w.unwrap})
	for live := w.live(); len(live) > maxDriftSamples || (len(live) > 1 && at.Sub(live[0].at) > w.window); live = w.live() {
		w.samples[w.head] = offsetSample{}
		w.head++
	}
	// Compact once the dead prefix is as long as the live part: amortised O(1).
	if w.head > 0 && w.head >= len(w.samples)-w.head {
		n := copy(w.samples, w.samples[w.head:])
		w.samples, w.head = w.samples[:n], 0
	}
}

// offsetFit is the summary of the window.
type offsetFit struct {
	mean, absMean time.Duration
	msPerMin      float64
	span          time.Duration
	valid         bool // enough samples over enough time for the slope to mean something
}

// minDriftSamples and minDriftSpan are the least a slope is computed from.
const (
	minDriftSamples = 10
	minDriftSpan    = 5 * time.Second
)

// fit computes the window's mean offsets and the least-squares slope of the unwrapped
// offset against capture time. Times are taken relative to the first sample, in
// seconds, so the sums stay well conditioned.
func (w *offsetWindow) fit() offsetFit {
	s := w.live()
	n := len(s)
	if n == 0 {
		return offsetFit{}
	}
	var f offsetFit
	var sumRaw, sumAbs, sx, sy float64
	t0 := s[0].at
	for _, v := range s {
		sumRaw += float64(v.raw)
		sumAbs += math.Abs(float64(v.raw))
		sx += v.at.Sub(t0).Seconds()
		sy += float64(v.unwrapped) / 1e6 // ms
	}
	f.mean = time.Duration(sumRaw / float64(n))
	f.absMean = time.Duration(sumAbs / float64(n))
	f.span = s[n-1].at.Sub(t0)
	if n < minDriftSamples || f.span < minDriftSpan {
		return f
	}
	mx, my := sx/float64(n), sy/float64(n)
	var sxy, sxx float64
	for _, v := range s {
		dx := v.at.Sub(t0).Seconds() - mx
		sxy += dx * (float64(v.unwrapped)/1e6 - my)
		sxx += dx * dx
	}
	if sxx == 0 {
		return f
	}
	f.msPerMin = sxy / sxx * 60 // ms per second → ms per minute
	f.valid = true
	return f
}
