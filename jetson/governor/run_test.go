package governor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

// scriptedSource returns one scripted sample per call, then repeats the last.
type scriptedSource struct {
	mu      sync.Mutex
	samples []Inputs
	calls   int
}

func (s *scriptedSource) Sample(dst *Inputs) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*dst = s.samples[min(s.calls, len(s.samples)-1)]
	s.calls++
}

func TestRunSamplesEveryPeriodAndReports(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := newFakeClock(false)
	src := &scriptedSource{samples: []Inputs{calm(60), calm(60), calm(86), calm(86)}}
	reports := make(chan Decision, 16)
	g, err := New(DefaultConfig(), Options{Source: src, Clock: clk, OnChange: func(d Decision) { reports <- d }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()

	first := <-reports // sampled at once
	if first.State != Resuming || !first.At.Equal(t0) {
		t.Fatalf("first report %+v, want resuming at t0", first)
	}
	for i := 1; i <= 3; i++ {
		if at := clk.waitPending(); !at.Equal(t0.Add(time.Duration(i) * time.Second)) {
			t.Fatalf("tick %d scheduled at %v, want t0+%ds", i, at, i)
		}
		clk.fireNext()
		if i == 2 {
			if d := <-reports; d.State != Stopped {
				t.Fatalf("at 86 °C: %+v, want stopped", d)
			}
		}
	}
	clk.waitPending()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil on cancel", err)
	}
	if d := g.Current(); d.State != Stopped {
		t.Fatalf("Current = %+v", d)
	}
	select {
	case d := <-reports:
		t.Fatalf("unexpected report %+v: the stop was reported twice", d)
	default:
	}
}

func TestRunNeedsSource(t *testing.T) {
	g, err := New(DefaultConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(context.Background()); err != ErrNoSource {
		t.Fatalf("Run = %v, want ErrNoSource", err)
	}
}

func TestCollector(t *testing.T) {
	g, err := New(DefaultConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	g.Step(t0, calm(90))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(g.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			if m.Gauge != nil {
				got[key] = m.GetGauge().GetValue()
			} else {
				got[key] = m.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{
		"edgedepth_governor_duty_cycle":                     0,
		"edgedepth_governor_state{state=stopped}":           1,
		"edgedepth_governor_state{state=running}":           0,
		"edgedepth_governor_state{state=resuming}":          0,
		"edgedepth_governor_state{state=backing-off}":       0,
		"edgedepth_governor_stops_total{limit=temperature}": 1,
		"edgedepth_governor_stops_total{limit=power}":       0,
		"edgedepth_governor_stops_total{limit=latency}":     0,
		"edgedepth_governor_changes_total":                  1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("exported %d series, want %d: %v", len(got), len(want), got)
	}
}
