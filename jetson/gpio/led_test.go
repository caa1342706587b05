package gpio

import (
	"context"
	"sync"
	"testing"

	"periph.io/x/conn/v3/gpio"
)

func startLED(t *testing.T, s LEDState) (*StatusLED, *fakeClock, *recordingPin, func()) {
	t.Helper()
	clk := newFakeClock()
	pin := newRecordingPin("LED", clk)
	led := NewStatusLED(pin)
	led.Clock = clk
	led.Set(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- led.Run(ctx) }()
	return led, clk, pin, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if pin.Read() != gpio.Low {
			t.Error("LED left on after Run")
		}
	}
}

// checkPlays compares recorded edges with the pattern repeated, from edges[from].
func checkPlays(t *testing.T, p Pattern, edges []edge, from int) {
	t.Helper()
	for i := from; i+1 < len(edges); i++ {
		step := p[(i-from)%len(p)]
		if edges[i].level != gpio.Level(step.On) {
			t.Fatalf("step %d: level %v, want %v", i-from, edges[i].level, step.On)
		}
		if d := edges[i+1].at.Sub(edges[i].at); d != step.D {
			t.Fatalf("step %d: lasted %v, want %v", i-from, d, step.D)
		}
	}
}

func TestStatusLEDPatterns(t *testing.T) {
	for _, s := range []LEDState{Starting, Training, Degraded, Error} {
		t.Run(s.String(), func(t *testing.T) {
			_, clk, pin, stop := startLED(t, s)
			p := DefaultPatterns[s]
			steps := 3 * len(p)
			for range steps {
				clk.fireNext(0)
			}
			clk.waitPending()
			stop()
			edges := pin.edges()
			if len(edges) < steps+1 {
				t.Fatalf("%d edges, want %d", len(edges), steps+1)
			}
			checkPlays(t, p, edges[:steps+1], 0)
		})
	}
}

func TestStatusLEDSolidAndChange(t *testing.T) {
	led, clk, pin, stop := startLED(t, Running)
	pin.waitOuts(1)
	if e := pin.edges(); e[0].level != gpio.High {
		t.Fatalf("running: LED %v, want solid on", e[0].level)
	}
	if n := clk.createdCount(); n != 0 {
		t.Fatalf("a solid pattern set %d timers", n)
	}

	// Running → Training mid-pattern, then → Error: each starts at its first step at once.
	led.Set(Training)
	clk.waitCreated(1)
	for range 5 {
		clk.fireNext(0)
	}
	clk.waitPending()
	before := clk.createdCount()
	changedAt := clk.Now()
	led.Set(Error)
	clk.waitCreated(before + 1)
	if at := clk.waitPending(); at != changedAt.Add(dot) {
		t.Fatalf("error pattern's first step ends at +%v, want +%v", at.Sub(changedAt), dot)
	}
	n := len(DefaultPatterns[Error])
	for range n {
		clk.fireNext(0)
	}
	clk.waitPending()
	stop()
	edges := pin.edges()
	// edges: [solid on] [training ×6] [error ×n+1]
	checkPlays(t, DefaultPatterns[Training], edges[1:7], 0)
	checkPlays(t, DefaultPatterns[Error], edges[7:7+n+1], 0)
	if led.State() != Error {
		t.Errorf("state %v, want error", led.State())
	}
}

func TestStatusLEDConcurrentSet(t *testing.T) {
	led, _, _, stop := startLED(t, Running)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				led.Set(LEDState((g + i) % 5))
			}
		}()
	}
	wg.Wait()
	led.Set(Off)
	if led.State() != Off {
		t.Errorf("state %v, want off", led.State())
	}
	stop()
}

func TestLEDStateString(t *testing.T) {
	for s, want := range map[LEDState]string{Starting: "starting", Running: "running", Training: "training", Degraded: "degraded", Error: "error", Off: "off", 42: "LEDState(42)"} {
		if s.String() != want {
			t.Errorf("%d: %q", int(s), s.String())
		}
	}
	if DefaultPatterns[Error].Period() != 34*dot {
		t.Errorf("SOS lasts %v", DefaultPatterns[Error].Period())
	}
}
