package governor

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestRest(t *testing.T) {
	tests := []struct {
		step time.Duration
		duty float64
		want time.Duration
	}{
		{100 * time.Millisecond, 0.5, 100 * time.Millisecond},
		{100 * time.Millisecond, 0.25, 300 * time.Millisecond},
		{100 * time.Millisecond, 1, 0},
		{30 * time.Millisecond, 0.05, 570 * time.Millisecond},
		{0, 0.5, 0},
		{100 * time.Millisecond, 0, time.Duration(math.MaxInt64)},
		{100 * time.Millisecond, math.NaN(), time.Duration(math.MaxInt64)},
	}
	for _, tt := range tests {
		if got := Rest(tt.step, tt.duty); got != tt.want {
			t.Errorf("Rest(%s, %g) = %s, want %s", tt.step, tt.duty, got, tt.want)
		}
	}
}

// fixedDuty is a DutySource whose duty cycle the test sets.
type fixedDuty struct {
	mu      sync.Mutex
	duty    float64
	changed chan struct{}
}

func newFixedDuty(u float64) *fixedDuty { return &fixedDuty{duty: u, changed: make(chan struct{})} }

func (f *fixedDuty) Duty() (float64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.duty, f.changed
}

func (f *fixedDuty) set(u float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.duty = u
	close(f.changed)
	f.changed = make(chan struct{})
}

// Over many steps of random length the trainer runs the requested fraction of the time,
// within 1 %.
func TestBudgetDutyAccuracy(t *testing.T) {
	for _, u := range []float64{0.05, 0.1, 0.37, 0.5, 0.9, 1} {
		clk := newFakeClock(true)
		b := NewBudget(newFixedDuty(u), clk)
		rng := rand.New(rand.NewPCG(5, uint64(u*1000)))
		ctx := context.Background()
		var ran time.Duration
		start := clk.Now()
		for range 5000 {
			if err := b.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			d := time.Duration(5+rng.IntN(200)) * time.Millisecond
			clk.advance(d)
			ran += d
			b.Charge(d)
		}
		if err := b.Wait(ctx); err != nil { // the last step's rest counts too
			t.Fatal(err)
		}
		got := float64(ran) / float64(clk.Now().Sub(start))
		if math.Abs(got-u)/u > 0.01 {
			t.Errorf("duty %g: trainer ran %.4f of the time", u, got)
		}
	}
}

// A rest under way follows a cut, and a stop holds the trainer until the duty cycle is
// above zero again.
func TestBudgetWaitFollowsDuty(t *testing.T) {
	clk := newFakeClock(false)
	src := newFixedDuty(0.5)
	b := NewBudget(src, clk)
	b.Charge(100 * time.Millisecond) // ended at t0: may start again at t0+100ms

	done := make(chan error, 1)
	go func() { done <- b.Wait(context.Background()) }()
	if at := clk.waitPending(); !at.Equal(t0.Add(100 * time.Millisecond)) {
		t.Fatalf("rest until %v, want t0+100ms", at)
	}
	src.set(0) // stopped: the pending timer is dropped, Wait waits for a change
	clk.advance(time.Second)
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v while stopped", err)
	default:
	}
	src.set(0.25) // resumed at 0.25: rest 300 ms from t0, already past
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	src.set(0)
	go func() { done <- b.Wait(ctx) }()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Wait after cancel = %v, want context.Canceled", err)
	}
}
