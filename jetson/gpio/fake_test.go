package gpio

import (
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// fakeClock is a manual clock: time moves only when the test advances it. The test
// synchronises with the loop under test through the timers the loop creates, never
// through sleeps.
type fakeClock struct {
	mu      sync.Mutex
	cond    *sync.Cond
	now     time.Time
	pending []*fakeTimer
	created int
}

func newFakeClock() *fakeClock {
	c := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

type fakeTimer struct {
	clk *fakeClock
	at  time.Time
	c   chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Timer(at time.Time) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, at: at, c: make(chan time.Time, 1)}
	c.created++
	if !at.After(c.now) {
		t.c <- c.now
	} else {
		c.pending = append(c.pending, t)
	}
	c.cond.Broadcast()
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	c := t.clk
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.pending {
		if p == t {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			c.cond.Broadcast()
			return true
		}
	}
	return false
}

// waitPending blocks until a timer is pending and returns its deadline.
func (c *fakeClock) waitPending() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) == 0 {
		c.cond.Wait()
	}
	return c.pending[0].at
}

// waitCreated blocks until n timers have been created in all.
func (c *fakeClock) waitCreated(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.created < n {
		c.cond.Wait()
	}
}

func (c *fakeClock) createdCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created
}

// fireNext waits for a pending timer, moves the clock to its deadline plus late (the
// wake-up latency of a real system) and fires every timer due.
func (c *fakeClock) fireNext(late time.Duration) {
	c.waitPending()
	c.mu.Lock()
	defer c.mu.Unlock()
	earliest := c.pending[0].at
	for _, p := range c.pending {
		if p.at.Before(earliest) {
			earliest = p.at
		}
	}
	if t := earliest.Add(late); t.After(c.now) {
		c.now = t
	}
	keep := c.pending[:0]
	for _, p := range c.pending {
		if !p.at.After(c.now) {
			p.c <- c.now
		} else {
			keep = append(keep, p)
		}
	}
	c.pending = keep
}

// edge is one Out call on a recordingPin.
type edge struct {
	level gpio.Level
	at    time.Time
}

// recordingPin is a gpiotest.Pin that records every Out with the fake clock's time.
type recordingPin struct {
	*gpiotest.Pin
	clk   Clock
	mu    sync.Mutex
	cond  *sync.Cond
	outs  []edge
	fail  error
	calls int
}

func newRecordingPin(name string, clk Clock) *recordingPin {
	r := &recordingPin{Pin: &gpiotest.Pin{N: name, Num: 1}, clk: clk}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recordingPin) Out(l gpio.Level) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail != nil {
		return r.fail
	}
	r.outs = append(r.outs, edge{l, r.clk.Now()})
	r.cond.Broadcast()
	return r.Pin.Out(l)
}

func (r *recordingPin) waitOuts(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.outs) < n {
		r.cond.Wait()
	}
}

func (r *recordingPin) edges() []edge {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]edge(nil), r.outs...)
}
