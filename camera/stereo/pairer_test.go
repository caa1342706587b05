package stereo

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/health"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const p30 = time.Second / 30

// synthFrame is one frame of a synthetic stream: when it was exposed (its true partner is
// the other side's frame of the same index), its capture time, and when it arrives.
type synthFrame struct {
	side    Side
	index   int
	capture time.Time
	arrival time.Time
}

// stream describes one synthetic camera.
type stream struct {
	period  time.Duration
	phase   time.Duration // capture-time offset of frame 0
	late    time.Duration // arrival delay after capture
	jitter  time.Duration // uniform ± on capture time
	drop    float64       // probability a frame is lost
	ppm     float64       // clock rate error: capture times stretched by 1+ppm·1e-6
	burst   int           // arrivals grouped in bursts of this many frames (0: none)
	stallAt int           // frames from this index on are never delivered (0: never)
}

func (s stream) frames(side Side, n int, rng *rand.Rand) []synthFrame {
	var out []synthFrame
	for i := range n {
		if s.stallAt > 0 && i >= s.stallAt {
			break
		}
		if s.drop > 0 && rng.Float64() < s.drop {
			continue
		}
		t := time.Duration(i)*s.period + s.phase
		t = time.Duration(float64(t) * (1 + s.ppm*1e-6))
		if s.jitter > 0 {
			t += time.Duration((rng.Float64()*2 - 1) * float64(s.jitter))
		}
		c := epoch.Add(t)
		a := c.Add(s.late)
		if s.burst > 1 {
			// Held back until the last frame of its burst has been captured.
			last := (i/s.burst+1)*s.burst - 1
			a = epoch.Add(time.Duration(last)*s.period + s.late + time.Millisecond)
		}
		out = append(out, synthFrame{side: side, index: i, capture: c, arrival: a})
	}
	return out
}

// pairRec is one emitted pair with the identities of its frames.
type pairRec struct {
	seq            uint64
	at             time.Time
	left, right    int // frame indices
	tL, tR         time.Time
	toleranceInUse time.Duration
}

// feed merges the streams by arrival, runs them through p and checks the invariants.
func feed(t testing.TB, p *Pairer, cfg Config, fs ...[]synthFrame) []pairRec {
	t.Helper()
	var all []synthFrame
	for _, f := range fs {
		all = append(all, f...)
	}
	slices.SortStableFunc(all, func(a, b synthFrame) int { return a.arrival.Compare(b.arrival) })
	times := map[[2]int]time.Time{}
	var out []pairRec
	var got []camera.StereoFrame
	for _, f := range all {
		times[[2]int{int(f.side), f.index}] = f.capture
		// The frame's index travels in the image size so pairs can be traced back.
		img := camera.Image{Width: f.index, Height: int(f.side) + 1}
		got = got[:0]
		p.Add(f.side, camera.Frame{CaptureTime: f.capture, Clock: camera.ClockNTP, Image: img}, func(sf camera.StereoFrame) { got = append(got, sf) })
		tol := p.Tolerance()
		for _, sf := range got {
			r := pairRec{seq: sf.Seq, at: sf.CaptureTime, left: sf.Left.Width, right: sf.Right.Width, toleranceInUse: tol}
			r.tL, r.tR = times[[2]int{0, r.left}], times[[2]int{1, r.right}]
			out = append(out, r)
		}
		// Not Stats: it fits the drift window, O(window) per frame.
		p.mu.Lock()
		nl, nr := len(p.side[Left].buf), len(p.side[Right].buf)
		p.mu.Unlock()
		if nl > cfg.Resolved().BufferFrames || nr > cfg.Resolved().BufferFrames {
			t.Fatalf("buffers %d/%d exceed %d frames", nl, nr, cfg.Resolved().BufferFrames)
		}
	}
	checkPairs(t, out)
	return out
}

// checkPairs asserts the invariants every pairing must keep.
func checkPairs(t testing.TB, pairs []pairRec) {
	t.Helper()
	usedL, usedR := map[int]bool{}, map[int]bool{}
	for i, r := range pairs {
		if d := absDur(r.tL.Sub(r.tR)); d > r.toleranceInUse || r.toleranceInUse <= 0 {
			t.Fatalf("pair %d: |tL − tR| = %v outside tolerance %v", r.seq, d, r.toleranceInUse)
		}
		if !r.at.Equal(r.tL) {
			t.Fatalf("pair %d: CaptureTime %v, want the left frame's %v", r.seq, r.at, r.tL)
		}
		if usedL[r.left] || usedR[r.right] {
			t.Fatalf("pair %d reuses a frame (left %d, right %d)", r.seq, r.left, r.right)
		}
		usedL[r.left], usedR[r.right] = true, true
		if r.seq != uint64(i) {
			t.Fatalf("pair %d has Seq %d", i, r.seq)
		}
		if i > 0 && !r.at.After(pairs[i-1].at) {
			t.Fatalf("pair %d: capture time %v not after %v", r.seq, r.at, pairs[i-1].at)
		}
	}
}

func TestPairerScenarios(t *testing.T) {
	const n = 300
	tests := []struct {
		name        string
		cfg         Config
		left, right stream
		// wantShift: every pair is (i, i+wantShift) (the true partner); -1000 skips the check.
		wantShift int
		minPairs  int
		maxErr    time.Duration
	}{
		{name: "synchronised", left: stream{period: p30}, right: stream{period: p30}, minPairs: n - 1, maxErr: 0},
		{name: "constant phase 10ms", left: stream{period: p30}, right: stream{period: p30, phase: 10 * time.Millisecond}, minPairs: n - 1, maxErr: 10 * time.Millisecond},
		{name: "right arrives 100ms late", left: stream{period: p30}, right: stream{period: p30, phase: 3 * time.Millisecond, late: 100 * time.Millisecond}, minPairs: n - 5, maxErr: 3 * time.Millisecond},
		{name: "left arrives 100ms late", left: stream{period: p30, late: 100 * time.Millisecond}, right: stream{period: p30, phase: -4 * time.Millisecond}, minPairs: n - 5, maxErr: 4 * time.Millisecond},
		{
			// The right camera's capture times themselves are 100 ms late (receive clock
			// behind a delay); a tolerance that allows it pairs each left frame with the
			// nearest right time, 3 frames earlier in the right stream.
			name: "right clock 100ms late, wide tolerance", cfg: Config{PairTolerance: 110 * time.Millisecond},
			left: stream{period: p30}, right: stream{period: p30, phase: 100*time.Millisecond + time.Millisecond, late: 100 * time.Millisecond},
			wantShift: -3, minPairs: n - 4, maxErr: 2 * time.Millisecond,
		},
		{name: "jitter 3ms", left: stream{period: p30, jitter: 3 * time.Millisecond}, right: stream{period: p30, jitter: 3 * time.Millisecond}, minPairs: n - 10, maxErr: 6 * time.Millisecond},
		{name: "drops 10%", cfg: Config{FramePeriod: p30}, left: stream{period: p30, drop: 0.1}, right: stream{period: p30, phase: 5 * time.Millisecond, drop: 0.1}, minPairs: n * 7 / 10, maxErr: 5 * time.Millisecond},
		{name: "bursts of 5", left: stream{period: p30, burst: 5}, right: stream{period: p30, phase: 2 * time.Millisecond, late: 20 * time.Millisecond}, minPairs: n - 6, maxErr: 2 * time.Millisecond},
		{name: "different rates 30/15", cfg: Config{PairTolerance: 10 * time.Millisecond}, left: stream{period: p30}, right: stream{period: 2 * p30, phase: time.Millisecond}, wantShift: -1000, minPairs: n/2 - 2, maxErr: time.Millisecond},
	}
	// With the period measured, the first few frames of the earlier camera can overflow
	// the buffer while the period is not known yet: minPairs allows for it.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			p := NewPairer(tc.cfg, nil)
			pairs := feed(t, p, tc.cfg, tc.left.frames(Left, n, rng), tc.right.frames(Right, n, rng))
			if len(pairs) < tc.minPairs {
				t.Errorf("%d pairs, want at least %d (stats %+v)", len(pairs), tc.minPairs, p.Stats())
			}
			for _, r := range pairs {
				if tc.wantShift != -1000 && r.right != r.left+tc.wantShift {
					t.Fatalf("left frame %d paired with right frame %d, want %d", r.left, r.right, r.left+tc.wantShift)
				}
				if d := absDur(r.tL.Sub(r.tR)); d > tc.maxErr {
					t.Fatalf("pair %d error %v > %v", r.seq, d, tc.maxErr)
				}
			}
			st := p.Stats()
			if st.Pairs != uint64(len(pairs)) {
				t.Errorf("Stats.Pairs = %d, emitted %d", st.Pairs, len(pairs))
			}
			if st.ErrorMax > tc.maxErr {
				t.Errorf("Stats.ErrorMax = %v > %v", st.ErrorMax, tc.maxErr)
			}
		})
	}
}

// A camera that stalls must not grow memory: the other side's buffer stays bounded and
// its frames are counted as unpaired.
func TestPairerStalledCameraBounded(t *testing.T) {
	cfg := Config{FramePeriod: p30, BufferFrames: 4}
	rng := rand.New(rand.NewPCG(3, 4))
	p := NewPairer(cfg, nil)
	pairs := feed(t, p, cfg, stream{period: p30}.frames(Left, 600, rng), stream{period: p30, stallAt: 30}.frames(Right, 600, rng))
	st := p.Stats()
	if len(pairs) != 30 {
		t.Errorf("%d pairs, want 30", len(pairs))
	}
	if st.BufferedLeft > 4 || st.UnpairedLeft < 600-30-4 {
		t.Errorf("buffered %d, unpaired left %d: want ≤4 and ≥%d", st.BufferedLeft, st.UnpairedLeft, 600-30-4)
	}
}

func TestPairerToleranceFromMeasuredPeriod(t *testing.T) {
	p := NewPairer(Config{}, nil)
	if tol := p.Tolerance(); tol != 0 {
		t.Fatalf("tolerance before any frame = %v, want 0 (unknown)", tol)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	feed(t, p, Config{}, stream{period: 40 * time.Millisecond}.frames(Left, 50, rng), stream{period: 40 * time.Millisecond, phase: 5 * time.Millisecond}.frames(Right, 50, rng))
	if tol := p.Tolerance(); tol != 20*time.Millisecond {
		t.Errorf("tolerance = %v, want 20ms (half the measured 40ms period)", tol)
	}
	st := p.Stats()
	if st.PeriodLeft != 40*time.Millisecond || st.PeriodRight != 40*time.Millisecond {
		t.Errorf("periods %v/%v, want 40ms", st.PeriodLeft, st.PeriodRight)
	}
}

func TestPairerDrift(t *testing.T) {
	tests := []struct {
		name     string
		ppm      float64
		want     float64 // ms per minute, left − right
		wantWarn bool
	}{
		{name: "no drift", ppm: 0, want: 0},
		// The right clock runs 50 ppm fast: its times gain 3 ms a minute, so
		// left − right falls by 3 ms/min. Over 3 minutes it wraps around the 33 ms
		// period several times; unwrapping keeps the slope.
		{name: "right clock 50ppm fast", ppm: 50, want: -3, wantWarn: true},
		{name: "right clock 500ppm slow", ppm: -500, want: 30, wantWarn: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h health.Tracker
			cfg := Config{DriftWindow: time.Minute, DriftWarnMsPerMin: 2}
			rng := rand.New(rand.NewPCG(7, 8))
			p := NewPairer(cfg, &h)
			const n = 3 * 60 * 30
			feed(t, p, cfg, stream{period: p30, jitter: time.Millisecond}.frames(Left, n, rng),
				stream{period: p30, phase: 7 * time.Millisecond, jitter: time.Millisecond, ppm: tc.ppm}.frames(Right, n, rng))
			st := p.Stats()
			if !st.DriftValid || math.Abs(st.DriftMsPerMin-tc.want) > 0.3 {
				t.Errorf("drift %.3f ms/min (valid %v), want %.1f ± 0.3", st.DriftMsPerMin, st.DriftValid, tc.want)
			}
			warned := !h.OK()
			if warned != tc.wantWarn {
				t.Errorf("health warned %v, want %v (%v)", warned, tc.wantWarn, h.Warnings())
			}
			if warned && !strings.Contains(h.Warnings()[0].Message, "drift") {
				t.Errorf("warning %q does not say drift", h.Warnings()[0].Message)
			}
		})
	}
}

// Property test: random rigs (jitter, drops, lateness, phase, drift, bursts). Invariants
// always hold; and where the jitter leaves no ambiguity the pairs are the true partners.
func TestPairerRandomRigs(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 99))
		period := time.Duration(10+rng.IntN(90)) * time.Millisecond
		jit := time.Duration(rng.Int64N(int64(period / 8)))
		mk := func() stream {
			return stream{
				period: period,
				phase:  time.Duration(rng.Int64N(int64(period/8))) - period/16,
				late:   time.Duration(rng.Int64N(int64(200 * time.Millisecond))),
				jitter: jit,
				drop:   rng.Float64() * 0.3,
				burst:  rng.IntN(4),
			}
		}
		cfg := Config{BufferFrames: 2 + rng.IntN(30)}
		// Buffers must cover the arrival lag for true partners to meet.
		l, r := mk(), mk()
		cover := int(absDur(l.late-r.late)/period) + 2 + max(l.burst, r.burst)
		cfg.BufferFrames = max(cfg.BufferFrames, cover)
		if rng.IntN(2) == 0 {
			cfg.FramePeriod = period
		}
		p := NewPairer(cfg, nil)
		pairs := feed(t, p, cfg, l.frames(Left, 400, rng), r.frames(Right, 400, rng))
		for _, pr := range pairs {
			// |phase difference| ≤ period/8 and 2·jitter ≤ period/4, so the true partner
			// is always nearest and within half a period.
			if pr.left != pr.right {
				t.Fatalf("seed %d: left %d paired with right %d (period %v, jitter %v)", seed, pr.left, pr.right, period, jit)
			}
		}
	}
}

func TestPairerOutOfOrderAndClockChange(t *testing.T) {
	p := NewPairer(Config{FramePeriod: p30}, nil)
	var got []camera.StereoFrame
	emit := func(sf camera.StereoFrame) { got = append(got, sf) }
	add := func(s Side, ms int, c camera.Clock) {
		p.Add(s, camera.Frame{CaptureTime: epoch.Add(time.Duration(ms) * time.Millisecond), Clock: c}, emit)
	}
	add(Left, 100, camera.ClockReceive)
	add(Left, 100, camera.ClockReceive) // same time again: discarded
	add(Left, 50, camera.ClockReceive)  // back in time: discarded
	add(Right, 101, camera.ClockReceive)
	add(Left, 134, camera.ClockReceive) // now left 100 is known to be right 101's nearest
	if len(got) != 1 {
		t.Fatalf("%d pairs, want 1", len(got))
	}
	// The left camera switches to NTP time, 10 s behind: a new time base, accepted.
	add(Left, -10000, camera.ClockNTP)
	add(Right, -9999, camera.ClockNTP)
	add(Left, -9966, camera.ClockNTP)
	st := p.Stats()
	if st.OutOfOrderLeft != 2 || st.ClockChanges != 2 || len(got) != 2 {
		t.Errorf("out of order %d, clock changes %d, pairs %d: want 2, 2, 2", st.OutOfOrderLeft, st.ClockChanges, len(got))
	}
}

func TestPairerFlush(t *testing.T) {
	p := NewPairer(Config{FramePeriod: p30}, nil)
	var got []camera.StereoFrame
	emit := func(sf camera.StereoFrame) { got = append(got, sf) }
	p.Add(Right, camera.Frame{CaptureTime: epoch}, emit)
	p.Flush()
	p.Add(Left, camera.Frame{CaptureTime: epoch.Add(time.Millisecond)}, emit)
	if len(got) != 0 || p.Stats().UnpairedRight != 1 {
		t.Fatalf("a frame from before Flush was paired (%d pairs, stats %+v)", len(got), p.Stats())
	}
}

// FuzzPairer feeds arbitrary timestamp sequences: 3 bytes an event (side, time step in
// 0.5 ms, clock). The invariants: no pair outside the tolerance in force, Seq counting
// pairs, capture times increasing within a clock, bounded buffers.
func FuzzPairer(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 66, 0, 1, 2, 0, 0, 64, 0, 1, 66, 0})
	f.Add([]byte{10, 0, 66, 0, 0, 66, 0, 1, 1, 0, 1, 1, 1, 200, 0, 1, 0, 0, 0, 255, 1})
	f.Add([]byte{3, 1, 10, 0, 1, 10, 0, 1, 10, 0, 0, 1, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		cfg := Config{PairTolerance: time.Duration(data[0]) * time.Millisecond, BufferFrames: 2 + int(data[1]%16)}
		p := NewPairer(cfg, nil)
		data = data[2:]
		var now [2]time.Duration
		var last time.Time
		var seq uint64
		var clockSwitches uint64
		for i := 0; i+2 < len(data); i += 3 {
			side := Side(data[i] & 1)
			// Mostly forward; a step ≥ 200 goes back in time.
			step := time.Duration(data[i+1]) * 500 * time.Microsecond
			if data[i+1] >= 200 {
				step = -step / 4
			}
			now[side] += step
			clock := camera.ClockNTP
			if data[i+2]&1 == 1 {
				clock = camera.ClockReceive
			}
			var got []camera.StereoFrame
			p.Add(side, camera.Frame{CaptureTime: epoch.Add(now[side]), Clock: clock, Image: camera.Image{Width: int(now[side])}}, func(sf camera.StereoFrame) { got = append(got, sf) })
			tol := p.Tolerance()
			st := p.Stats()
			if st.ClockChanges != clockSwitches {
				last, clockSwitches = time.Time{}, st.ClockChanges // a new time base
			}
			for _, sf := range got {
				if sf.Seq != seq {
					t.Fatalf("Seq %d, want %d", sf.Seq, seq)
				}
				seq++
				if !last.IsZero() && !sf.CaptureTime.After(last) {
					t.Fatalf("pair time %v not after %v", sf.CaptureTime, last)
				}
				last = sf.CaptureTime
				// Each image's Width carries its frame's capture time.
				if d := absDur(time.Duration(sf.Left.Width - sf.Right.Width)); tol <= 0 || d > tol {
					t.Fatalf("pair %d: |tL − tR| = %v, tolerance %v", sf.Seq, d, tol)
				}
			}
			if st.BufferedLeft > cfg.Resolved().BufferFrames || st.BufferedRight > cfg.Resolved().BufferFrames {
				t.Fatalf("buffers %d/%d over %d", st.BufferedLeft, st.BufferedRight, cfg.Resolved().BufferFrames)
			}
		}
	})
}

func BenchmarkPairer(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	p := NewPairer(Config{}, nil)
	pairs := 0
	emit := func(camera.StereoFrame) { pairs++ }
	jit := func() time.Duration { return time.Duration(rng.Int64N(int64(2 * time.Millisecond))) }
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t := epoch.Add(time.Duration(i) * p30)
		p.Add(Left, camera.Frame{CaptureTime: t.Add(jit())}, emit)
		p.Add(Right, camera.Frame{CaptureTime: t.Add(5*time.Millisecond + jit())}, emit)
	}
	b.ReportMetric(float64(pairs)/b.Elapsed().Seconds(), "pairs/s")
}
