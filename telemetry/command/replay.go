package command

import "time"

// replayCache remembers the request ids seen recently, with a hash of each request
// and, once sent, its reply. It is not safe for concurrent use (the Dispatcher holds
// its mutex).
//
// Why ids are kept for twice the window: a signed request is accepted while its time
// is within ±Window of the robot's clock, so any request accepted now carries a time
// no later than now+Window and stops being acceptable by now+2×Window at the latest.
// Remembering it that long means any replay is caught either here or by the clock.
type replayCache struct {
	max   int
	seen  map[string]*seenEntry
	order []orderEntry // in insertion order; expiries are (nearly) increasing
}

type seenEntry struct {
	sum   [32]byte // SHA-256 of the request payload
	until time.Time
	reply []byte // nil while the command runs
}

type orderEntry struct {
	id string
	e  *seenEntry
}

type replayVerdict int

const (
	replayNew       replayVerdict = iota // first time: run it
	replayDuplicate                      // the same request again: do not run
	replayReused                         // the id of another request: refuse
	replayFull                           // no room to remember it: refuse
)

// admit records id for a request with hash sum, remembered for keep, unless it is
// known; for a duplicate it returns the reply sent, if any.
func (c *replayCache) admit(id string, sum [32]byte, now time.Time, keep time.Duration) (replayVerdict, []byte) {
	c.prune(now)
	if e, ok := c.seen[id]; ok {
		if e.sum == sum {
			return replayDuplicate, e.reply
		}
		return replayReused, nil
	}
	if len(c.seen) >= c.max {
		return replayFull, nil
	}
	e := &seenEntry{sum: sum, until: now.Add(keep)}
	c.seen[id] = e
	c.order = append(c.order, orderEntry{id, e})
	return replayNew, nil
}

// done stores the reply sent for id.
func (c *replayCache) done(id string, reply []byte) {
	if e, ok := c.seen[id]; ok {
		e.reply = reply
	}
}

// forget drops id: the request was refused before it ran, and may come again.
func (c *replayCache) forget(id string) {
	delete(c.seen, id)
	if len(c.order) > 2*c.max { // forgotten entries linger in order; compact it
		kept := c.order[:0]
		for _, o := range c.order {
			if c.seen[o.id] == o.e {
				kept = append(kept, o)
			}
		}
		clear(c.order[len(kept):])
		c.order = kept
	}
}

// prune drops the expired ids from the front. If the wall clock steps back, entries
// live longer than needed, never shorter.
func (c *replayCache) prune(now time.Time) {
	i := 0
	for ; i < len(c.order) && !now.Before(c.order[i].e.until); i++ {
		if c.seen[c.order[i].id] == c.order[i].e {
			delete(c.seen, c.order[i].id)
		}
	}
	if i > 0 {
		clear(c.order[:i])
		c.order = c.order[i:]
	}
}
