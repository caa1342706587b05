package governor

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

const framePeriod = 33333 * time.Microsecond // 30 fps; the latency limit is 26.7 ms

// sim replays a trace through Step, one sample per period, and records everything.
type sim struct {
	t        *testing.T
	g        *Governor
	cfg      Config
	i        int
	steps    []Decision
	reported []Decision
}

func newSim(t *testing.T, cfg Config) *sim {
	t.Helper()
	s := &sim{t: t, cfg: cfg}
	g, err := New(cfg, Options{OnChange: func(d Decision) { s.reported = append(s.reported, d) }})
	if err != nil {
		t.Fatal(err)
	}
	s.g = g
	return s
}

func (s *sim) step(in Inputs) Decision {
	d := s.g.Step(t0.Add(time.Duration(s.i)*s.cfg.Period), in)
	s.i++
	s.steps = append(s.steps, d)
	return d
}

func temp(c float64) []ZoneTemp { return []ZoneTemp{{"tj-thermal", c}, {"tboard-thermal", c - 20}} }

func calm(tempC float64) Inputs {
	return Inputs{Temps: temp(tempC), Latency: 12 * time.Millisecond, FramePeriod: framePeriod}
}

// stateChanges counts the steps whose state differs from the step before.
func stateChanges(ds []Decision) int {
	n := 0
	for i := 1; i < len(ds); i++ {
		if ds[i].State != ds[i-1].State {
			n++
		}
	}
	return n
}

func TestHeatingTrace(t *testing.T) {
	cfg := DefaultConfig()
	s := newSim(t, cfg)
	// 60 s at 60 °C, ramp to 90 °C at 0.1 °C/s, back down to 60 °C, then 120 s at 60 °C.
	var trace []float64
	for range 60 {
		trace = append(trace, 60)
	}
	for c := 60.0; c < 90; c += 0.1 {
		trace = append(trace, c)
	}
	for c := 90.0; c > 60; c -= 0.1 {
		trace = append(trace, c)
	}
	for range 120 {
		trace = append(trace, 60)
	}
	stopAt, resumeAt := -1, -1
	for i, c := range trace {
		d := s.step(calm(c))
		switch {
		case i == 59:
			if d.State != Running || d.DutyCycle != cfg.MaxDutyCycle {
				t.Fatalf("after 60 s at 60 °C: %+v, want running at %g", d, cfg.MaxDutyCycle)
			}
		case stopAt < 0 && c < cfg.HardLimitC:
			if c >= 80 && d.DutyCycle > 0.25 {
				t.Errorf("at %.1f °C duty %.3f: should have fallen well below max before the hard limit", c, d.DutyCycle)
			}
			if d.State == Stopped {
				t.Fatalf("stopped at %.1f °C, below the hard limit", c)
			}
		case stopAt < 0 && c >= cfg.HardLimitC:
			if d.State != Stopped || d.DutyCycle != 0 || d.Limit != LimitTemperature {
				t.Fatalf("at %.1f °C: %+v, want stopped for temperature", c, d)
			}
			stopAt = i
		case stopAt >= 0 && resumeAt < 0 && d.DutyCycle > 0:
			resumeAt = i
			if c > cfg.ResumeC {
				t.Errorf("resumed at %.1f °C, above the resume temperature %g °C", c, cfg.ResumeC)
			}
			if d.DutyCycle != cfg.MinDutyCycle {
				t.Errorf("resumed at duty %.3f, want the minimum %g", d.DutyCycle, cfg.MinDutyCycle)
			}
		}
		if stopAt >= 0 && resumeAt < 0 && d.DutyCycle != 0 && i != resumeAt {
			t.Fatalf("duty %.3f while it should be stopped (%.1f °C)", d.DutyCycle, c)
		}
	}
	if stopAt < 0 || resumeAt < 0 {
		t.Fatalf("stop at %d, resume at %d: want both", stopAt, resumeAt)
	}
	// Just before the stop the duty cycle was already at its floor.
	if d := s.steps[stopAt-1]; d.DutyCycle > 2*cfg.MinDutyCycle {
		t.Errorf("just before the hard limit duty was %.3f, want near the minimum", d.DutyCycle)
	}
	if last := s.steps[len(s.steps)-1]; last.State != Running || last.DutyCycle != cfg.MaxDutyCycle {
		t.Errorf("end of trace: %+v, want running at max again", last)
	}
	if n := stateChanges(s.steps); n > 8 {
		t.Errorf("%d state changes over one heat cycle, want a handful", n)
	}
	if st := s.g.Stats(); st.Stops[LimitTemperature] != 1 {
		t.Errorf("stops = %v, want one for temperature", st.Stops)
	}
}

// The power draw follows the duty cycle (training costs 16 W at full duty on top of
// 12 W for the rest); motors add 6 W for 100 s on the same budget.
func TestPowerTrace(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PowerBudgetW = 20
	s := newSim(t, cfg)
	duty := cfg.MinDutyCycle
	maxAvg := 0.0
	for i := range 600 {
		p := 12 + 16*duty
		if i >= 200 && i < 300 {
			p += 6
		}
		in := calm(50)
		in.PowerW = p
		d := s.step(in)
		duty = d.DutyCycle
		if i >= 150 && i < 200 {
			// Settled before the motors: held near, not over, the budget.
			if p >= cfg.PowerBudgetW || d.State != BackingOff || d.Limit != LimitPower {
				t.Errorf("t=%d s: %.1f W, %+v: want held below the budget, backing off for power", i, p, d)
			}
			maxAvg = max(maxAvg, p)
		}
		if i == 205 && d.DutyCycle >= s.steps[199].DutyCycle {
			t.Errorf("5 s into the motor load duty %.3f, want below %.3f", d.DutyCycle, s.steps[199].DutyCycle)
		}
		if d.State == Stopped {
			t.Fatalf("t=%d s: stopped for power; a cut to the minimum was enough", i)
		}
	}
	if maxAvg < 0.85*cfg.PowerBudgetW {
		t.Errorf("settled at %.1f W, want it to use the budget (near %g W)", maxAvg, cfg.PowerBudgetW)
	}
	// Without the motors the budget binds again at the same duty cycle as before.
	if last := s.steps[len(s.steps)-1]; last.DutyCycle < s.steps[199].DutyCycle-0.05 || last.State == Stopped {
		t.Errorf("end: %+v, want back near duty %.3f after the load went away", last, s.steps[199].DutyCycle)
	}
}

func TestLatencySpike(t *testing.T) {
	cfg := DefaultConfig()
	s := newSim(t, cfg)
	for range 60 {
		s.step(calm(50))
	}
	before := s.steps[len(s.steps)-1].DutyCycle
	spike := calm(50)
	spike.Latency = 30 * time.Millisecond // over 0.8 × 33.3 ms
	d := s.step(spike)
	if d.DutyCycle != before*cfg.DecreaseFactor || d.State != BackingOff || d.Limit != LimitLatency {
		t.Fatalf("first spiking sample: %+v, want an immediate cut from %.2f", d, before)
	}
	d2 := s.step(spike)
	if d2.DutyCycle >= d.DutyCycle {
		t.Fatalf("second spiking sample: duty %.3f, want below %.3f", d2.DutyCycle, d.DutyCycle)
	}
	// Clear again: held for Window samples, then back to running.
	for i := range 60 {
		d := s.step(calm(50))
		if i < cfg.Window-1 && d.DutyCycle != d2.DutyCycle {
			t.Errorf("%d s after the spike duty %.3f, want held at %.3f", i+1, d.DutyCycle, d2.DutyCycle)
		}
	}
	if last := s.steps[len(s.steps)-1]; last.State != Running {
		t.Errorf("60 s after the spike: %+v, want running", last)
	}
}

func TestLatencySustainedStopsAndResumes(t *testing.T) {
	cfg := DefaultConfig()
	s := newSim(t, cfg)
	for range 60 {
		s.step(calm(50))
	}
	slow := calm(50)
	slow.Latency = 40 * time.Millisecond
	stoppedAt := -1
	for i := range 60 {
		d := s.step(slow)
		if d.State == Stopped && stoppedAt < 0 {
			stoppedAt = i
		}
	}
	if stoppedAt < 0 || stoppedAt > 6 {
		t.Fatalf("stopped after %d slow samples, want within 6 (halving 0.5 to the 0.05 floor)", stoppedAt)
	}
	// Inference alone too slow: stays stopped past MinStopped.
	if d := s.steps[len(s.steps)-1]; d.State != Stopped {
		t.Fatalf("still slow with training stopped: %+v, want stopped", d)
	}
	for range 40 {
		s.step(calm(50))
	}
	if d := s.steps[len(s.steps)-1]; d.State == Stopped {
		t.Fatalf("40 s of fast inference: %+v, want resumed", d)
	}
}

// The Must-hold property: with inference slowing down as training takes the GPU
// (latency 12 ms + 40 ms × duty, over the limit above duty 0.37), the closed loop never
// lets inference cross its limit; when inference itself gets heavier, the limit is
// crossed in one period at most before the governor has cut.
func TestClosedLoopLatencyUntouched(t *testing.T) {
	cfg := DefaultConfig()
	s := newSim(t, cfg)
	limit := time.Duration(cfg.LatencyFraction * float64(framePeriod))
	duty := cfg.MinDutyCycle
	over := 0
	for i := range 600 {
		base := 12 * time.Millisecond
		if i >= 300 {
			base = 18 * time.Millisecond
		}
		lat := base + time.Duration(duty*float64(40*time.Millisecond))
		if lat > limit {
			over++
		}
		in := calm(50)
		in.Latency = lat
		duty = s.step(in).DutyCycle
		if i == 299 && duty < 0.2 {
			t.Errorf("settled at duty %.3f, want the headroom used (about 0.3)", duty)
		}
	}
	if over > 1 {
		t.Errorf("inference over its limit in %d periods, want at most 1 (the step change)", over)
	}
}

func TestCombinedTrace(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PowerBudgetW = 30
	s := newSim(t, cfg)
	for i := range 900 {
		c := 60.0
		if i >= 100 && i < 400 {
			c = 60 + 0.06*float64(i-100) // to 78 °C
		} else if i >= 400 && i < 600 {
			c = 78 - 0.09*float64(i-400)
		}
		in := calm(c)
		in.PowerW = 22 + 10*s.g.Current().DutyCycle
		if i >= 250 && i < 253 {
			in.Latency = 35 * time.Millisecond
		}
		d := s.step(in)
		ceiling := cfg.MaxDutyCycle
		if c > cfg.SoftLimitC+1 { // the average lags the raw reading by about 0.2 °C
			ceiling = max(cfg.MinDutyCycle, cfg.MaxDutyCycle*(cfg.HardLimitC-(c-1))/(cfg.HardLimitC-cfg.SoftLimitC))
		}
		if d.DutyCycle > ceiling+1e-9 {
			t.Errorf("t=%d s, %.1f °C: duty %.3f above the thermal ceiling %.3f", i, c, d.DutyCycle, ceiling)
		}
		if i == 250 && d.Limit != LimitLatency {
			t.Errorf("t=250 s: %+v, want latency to take precedence", d)
		}
		if d.State == Stopped {
			t.Fatalf("t=%d s: %+v, nothing here should stop training", i, d)
		}
	}
	if last := s.steps[len(s.steps)-1]; last.State != BackingOff && last.State != Running {
		t.Errorf("end: %+v", last)
	}
	if n := stateChanges(s.steps); n > 12 {
		t.Errorf("%d state changes, want few", n)
	}
}

func TestNoFlappingUnderNoise(t *testing.T) {
	tests := []struct {
		name       string
		center     float64
		maxChanges int
	}{
		{"around the soft limit", DefaultSoftLimitC, 2},
		{"around the hard limit", DefaultHardLimitC, 2},
		{"around the resume temperature", DefaultResumeC, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			s := newSim(t, cfg)
			rng := rand.New(rand.NewPCG(1, 2))
			for range 60 {
				s.step(calm(60))
			}
			if tt.center == DefaultResumeC {
				s.step(calm(cfg.HardLimitC)) // stopped; now cool to the resume point
			}
			start := len(s.steps)
			for range 1800 {
				s.step(calm(tt.center + 2*rng.Float64() - 1))
			}
			seg := s.steps[start-1:]
			if n := stateChanges(seg); n > tt.maxChanges {
				t.Errorf("%d state changes in 30 min of ±1 °C noise, want at most %d", n, tt.maxChanges)
			}
			var reports int
			for _, d := range s.reported {
				if !d.At.Before(seg[0].At) {
					reports++
				}
			}
			if reports > 2*tt.maxChanges+5 {
				t.Errorf("%d reported changes in 30 min of noise, want few", reports)
			}
		})
	}
}

func TestEveryChangeReportedOnce(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PowerBudgetW = 20
	s := newSim(t, cfg)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		in := calm(60 + 25*math.Sin(float64(i)/150) + rng.Float64())
		in.PowerW = 14 + 10*s.g.Current().DutyCycle
		if rng.IntN(50) == 0 {
			in.Latency = 40 * time.Millisecond
		}
		s.step(in)
	}
	if got, want := uint64(len(s.reported)), s.g.Stats().Changes; got != want {
		t.Fatalf("OnChange called %d times, Stats counts %d", got, want)
	}
	// Every change of state or limit is reported, exactly once, in order.
	r := 0
	for i, d := range s.steps {
		if i > 0 && d.State == s.steps[i-1].State && d.Limit == s.steps[i-1].Limit {
			continue
		}
		for r < len(s.reported) && s.reported[r].At.Before(d.At) {
			r++
		}
		if r == len(s.reported) || !s.reported[r].At.Equal(d.At) {
			t.Fatalf("step %d (%s/%s) changed state or limit and was not reported", i, d.State, d.Limit)
		}
	}
	for i := 1; i < len(s.reported); i++ {
		a, b := s.reported[i-1], s.reported[i]
		if !b.At.After(a.At) {
			t.Fatalf("reports %d and %d at %v and %v: a change reported twice", i-1, i, a.At, b.At)
		}
	}
	if s.reported[0].At != t0 {
		t.Errorf("first report at %v, want the first step", s.reported[0].At)
	}
}

func TestLatencyOnlyWithoutBoardReadings(t *testing.T) {
	s := newSim(t, DefaultConfig())
	var d Decision
	for range 40 {
		d = s.step(Inputs{Latency: 10 * time.Millisecond, FramePeriod: framePeriod, PowerW: 0})
	}
	if d.State != Running {
		t.Fatalf("no temperatures, no power: %+v, want running on latency alone", d)
	}
	d = s.step(Inputs{Latency: 30 * time.Millisecond, FramePeriod: framePeriod})
	if d.Limit != LimitLatency || d.DutyCycle >= DefaultMaxDutyCycle {
		t.Fatalf("latency spike without board readings: %+v, want a cut", d)
	}
}

func TestZonesFilter(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Zones = []string{"gpu-thermal"}
	s := newSim(t, cfg)
	d := s.step(Inputs{Temps: []ZoneTemp{{"cpu-thermal", 90}, {"gpu-thermal", 50}}})
	if d.State == Stopped {
		t.Fatalf("an unwatched zone at 90 °C stopped training: %+v", d)
	}
	d = s.step(Inputs{Temps: []ZoneTemp{{"cpu-thermal", 50}, {"gpu-thermal", 88}}})
	if d.State != Stopped {
		t.Fatalf("the watched zone at 88 °C: %+v, want stopped", d)
	}
}

func TestRepeatedStopsHoldLonger(t *testing.T) {
	cfg := DefaultConfig()
	s := newSim(t, cfg)
	slow := Inputs{Latency: 40 * time.Millisecond, FramePeriod: framePeriod}
	fast := Inputs{Latency: 10 * time.Millisecond, FramePeriod: framePeriod}
	// Inference is fast with training off and slow with any training at all: each
	// resume ends in a stop. The holds must grow.
	var stops []int
	for i := range 3600 {
		in := fast
		if s.g.Current().DutyCycle > 0 {
			in = slow
		}
		if d := s.step(in); d.State == Stopped && (len(s.steps) < 2 || s.steps[len(s.steps)-2].State != Stopped) {
			stops = append(stops, i)
		}
	}
	if len(stops) > 12 {
		t.Fatalf("%d stops in an hour, want the hold to grow (%v)", len(stops), stops)
	}
	if len(stops) < 3 {
		t.Fatalf("%d stops, want several", len(stops))
	}
	if gap1, gapN := stops[1]-stops[0], stops[len(stops)-1]-stops[len(stops)-2]; gapN <= gap1 {
		t.Errorf("gaps between stops %d then %d: want growing", gap1, gapN)
	}
}
