package gpio

import (
	"context"
	"math"
	"testing"
	"time"

	"go.uber.org/goleak"
	"periph.io/x/conn/v3/gpio"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runTrigger runs a trigger on a fake clock for pulses pulses, with late(i) as the
// wake-up latency of the i-th timer, and returns the recorded edges.
func runTrigger(t *testing.T, tr *Trigger, pulses int, late func(i int) time.Duration) (time.Time, []edge) {
	t.Helper()
	clk := newFakeClock()
	pin := newRecordingPin("TRIG", clk)
	tr.Pin, tr.Clock = pin, clk
	start := clk.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	for i := 0; tr.Pulses() < uint64(pulses) || len(pin.edges())%2 == 0; i++ {
		clk.fireNext(late(i))
		clk.waitPending() // Run handled the timer and waits again: its edges are recorded
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if pin.Read() != gpio.Low {
		t.Error("the pin is left high after Run")
	}
	return start, pin.edges()
}

func rising(edges []edge) []time.Time {
	var out []time.Time
	prev := gpio.Low
	for _, e := range edges {
		if e.level == gpio.High && prev == gpio.Low {
			out = append(out, e.at)
		}
		prev = e.level
	}
	return out
}

func TestTriggerPeriod(t *testing.T) {
	// Deterministic wake-up latency of 0..79 µs: what a loaded Linux scheduler adds.
	jitter := func(i int) time.Duration { return time.Duration((i*7919)%80) * time.Microsecond }
	for _, rate := range []float64{15, 29.97, 30, 60, 120} {
		tr := &Trigger{RateHz: rate, PulseWidth: time.Millisecond}
		const n = 1000
		start, edges := runTrigger(t, tr, n, jitter)
		rises := rising(edges)
		if len(rises) < n {
			t.Fatalf("%g Hz: %d rising edges, want %d", rate, len(rises), n)
		}
		frame := float64(time.Second) / rate
		for i := 1; i < len(rises); i++ {
			p := float64(rises[i].Sub(rises[i-1]))
			if math.Abs(p-frame)/frame > 0.01 {
				t.Fatalf("%g Hz: period %d is %v, more than 1%% off %v", rate, i, time.Duration(p), time.Duration(frame))
			}
		}
		// Drift-free: edge i sits on the grid start + i·frame up to one wake-up latency,
		// however many pulses came before.
		for i, r := range rises {
			ideal := start.Add(time.Duration(float64(i) * frame))
			if off := r.Sub(ideal); off < 0 || off >= 80*time.Microsecond {
				t.Fatalf("%g Hz: edge %d is %v off its deadline", rate, i, off)
			}
		}
		mean := float64(rises[len(rises)-1].Sub(rises[0])) / float64(len(rises)-1)
		if math.Abs(mean-frame)/frame > 1e-5 {
			t.Errorf("%g Hz: mean period %v, want %v", rate, time.Duration(mean), time.Duration(frame))
		}
		if tr.Missed() != 0 {
			t.Errorf("%g Hz: %d pulses missed", rate, tr.Missed())
		}
	}
}

func TestTriggerPulseWidth(t *testing.T) {
	tr := &Trigger{RateHz: 30, PulseWidth: 2 * time.Millisecond}
	_, edges := runTrigger(t, tr, 50, func(int) time.Duration { return 0 })
	if edges[0].level != gpio.Low {
		t.Fatalf("first Out is %v, want the initial low", edges[0].level)
	}
	for i := 1; i+1 < len(edges); i += 2 {
		if edges[i].level != gpio.High || edges[i+1].level != gpio.Low {
			t.Fatalf("edges %d,%d are %v,%v, want high then low", i, i+1, edges[i].level, edges[i+1].level)
		}
		if w := edges[i+1].at.Sub(edges[i].at); w != 2*time.Millisecond {
			t.Fatalf("pulse %d is %v wide, want 2ms", i/2, w)
		}
	}
}

// A stall of several frames skips the lost pulses and keeps the grid.
func TestTriggerSkipsAfterStall(t *testing.T) {
	tr := &Trigger{RateHz: 100, PulseWidth: time.Millisecond}
	late := func(i int) time.Duration {
		if i == 19 { // timer 19 is the rise of pulse 10 (pulse 0 needs none): it wakes 35 ms late
			return 35 * time.Millisecond
		}
		return 0
	}
	start, edges := runTrigger(t, tr, 40, late)
	if tr.Missed() != 4 {
		t.Errorf("missed %d pulses, want 4 (35 ms late at 10 ms a frame)", tr.Missed())
	}
	for _, r := range rising(edges) {
		off := r.Sub(start) % (10 * time.Millisecond)
		if off != 0 {
			t.Fatalf("edge at %v is off the 10 ms grid by %v", r.Sub(start), off)
		}
	}
}

func TestTriggerValidation(t *testing.T) {
	pin := newRecordingPin("T", newFakeClock())
	for _, c := range []struct {
		rate  float64
		width time.Duration
	}{{0, time.Millisecond}, {-1, time.Millisecond}, {math.NaN(), time.Millisecond}, {2000, time.Microsecond}, {30, 0}, {30, 40 * time.Millisecond}} {
		if _, err := NewTrigger(pin, c.rate, c.width); err == nil {
			t.Errorf("rate %g width %v accepted", c.rate, c.width)
		}
	}
	if _, err := NewTrigger(pin, 30, time.Millisecond); err != nil {
		t.Error(err)
	}
}

func TestTriggerPinError(t *testing.T) {
	clk := newFakeClock()
	pin := newRecordingPin("T", clk)
	pin.fail = errTest
	tr := &Trigger{Pin: pin, RateHz: 30, PulseWidth: time.Millisecond, Clock: clk}
	if err := tr.Run(context.Background()); err == nil {
		t.Fatal("Run ignored the pin error")
	}
}

type testError string

func (e testError) Error() string { return string(e) }

const errTest = testError("line busy")
