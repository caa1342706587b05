package governor

import (
	"sync"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a manual clock: time moves only when the test advances it. With auto
// set, creating a timer moves the clock to its deadline and fires it at once, which
// lets a single goroutine simulate hours of waiting exactly. Without it, the test
// synchronises with the loop under test through the timers the loop creates, never
// through sleeps.
type fakeClock struct {
	mu      sync.Mutex
	cond    *sync.Cond
	now     time.Time
	auto    bool
	pending []*fakeTimer
}

func newFakeClock(auto bool) *fakeClock {
	c := &fakeClock{now: t0, auto: auto}
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

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Timer(at time.Time) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, at: at, c: make(chan time.Time, 1)}
	if c.auto && at.After(c.now) {
		c.now = at
	}
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

// fireNext waits for a pending timer, moves the clock to its deadline and fires every
// timer due.
func (c *fakeClock) fireNext() {
	at := c.waitPending()
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.After(c.now) {
		c.now = at
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
