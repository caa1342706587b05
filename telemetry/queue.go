package telemetry

import "sync"

// message is one MQTT publication waiting in the outgoing queue.
type message struct {
	topic    string
	payload  []byte
	qos      byte
	retained bool
	kind     topicKind
}

// queueCounters receives the outgoing queue's accounting. The queue calls it with its
// lock held, so implementations must be quick and must not call back into the queue.
type queueCounters interface {
	coalesced(k topicKind)
	dropped(k topicKind)
}

// outQueue is the bounded buffer between Publish (many goroutines, must never block)
// and the sender (one goroutine, at the pace of the network).
//
// Two policies, chosen by topic kind:
//   - latest wins, for everything but events: each topic holds at most its newest
//     message; a newer one replaces it in place (counted as coalesced). Depth,
//     previews and status are states, and an old state is worthless once a newer
//     one exists. At most maxTopics topics may be pending; a new topic beyond that is
//     dropped.
//   - FIFO, for events and poses: each event is a fact of its own and order matters,
//     and a consumer integrating the trajectory needs every pose (a reset among them),
//     so they queue up to maxEvents together; when full, the oldest is dropped (the
//     newest facts are the ones an operator needs).
//
// The queue also remembers the last retained message sent on each topic so that it
// can send it again after a reconnection (see requeueRetained).
type outQueue struct {
	maxTopics int
	maxEvents int
	counters  queueCounters
	// ready has room for one token: Publish leaves one when it adds work, the sender
	// takes it. A full channel means "already signalled", so Publish never waits.
	ready chan struct{}

	mu       sync.Mutex
	latest   []message      // pending latest-wins messages, in arrival order of their topic
	index    map[string]int // topic → position in latest
	events   []message      // pending events, oldest first
	retained map[string]message
	closed   bool
	spare    []message // a drained batch slice kept for reuse
}

func newOutQueue(maxTopics, maxEvents int, counters queueCounters) *outQueue {
	return &outQueue{
		maxTopics: maxTopics,
		maxEvents: maxEvents,
		counters:  counters,
		ready:     make(chan struct{}, 1),
		index:     make(map[string]int, maxTopics),
		retained:  make(map[string]message),
	}
}

// push adds m according to its topic's policy. It never blocks beyond the short
// critical section.
func (q *outQueue) push(m message) {
	q.mu.Lock()
	switch {
	case q.closed:
		q.counters.dropped(m.kind)
	case m.kind.ordered():
		q.pushEventLocked(m)
	default:
		if i, ok := q.index[m.topic]; ok {
			q.latest[i] = m
			q.counters.coalesced(m.kind)
		} else if len(q.latest) >= q.maxTopics {
			q.counters.dropped(m.kind)
		} else {
			q.index[m.topic] = len(q.latest)
			q.latest = append(q.latest, m)
		}
	}
	q.mu.Unlock()
	q.signal()
}

func (q *outQueue) pushEventLocked(m message) {
	if len(q.events) >= q.maxEvents {
		q.counters.dropped(q.events[0].kind)
		n := copy(q.events, q.events[1:])
		q.events = q.events[:n]
	}
	q.events = append(q.events, m)
}

func (q *outQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take removes and returns everything pending: events first (small, and the ones an
// operator is waiting for), then the latest-wins messages in the order their topics
// became pending. The returned slice is valid until the next take.
func (q *outQueue) take() []message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.takeLocked()
}

func (q *outQueue) takeLocked() []message {
	if len(q.events) == 0 && len(q.latest) == 0 {
		return nil
	}
	batch := append(q.spare[:0], q.events...)
	batch = append(batch, q.latest...)
	clear(q.events)
	q.events = q.events[:0]
	clear(q.latest)
	q.latest = q.latest[:0]
	clear(q.index)
	q.spare = batch
	return batch
}

// requeue puts back messages that were taken but not confirmed as sent (the
// connection went down under them), unless something newer has arrived meanwhile:
// a newer message on the same topic wins (the old one counts as coalesced), and
// events go back in front of newer events, dropping the oldest beyond the limit.
func (q *outQueue) requeue(ms []message) {
	if len(ms) == 0 {
		return
	}
	q.mu.Lock()
	var events []message
	for _, m := range ms {
		if q.closed {
			q.counters.dropped(m.kind)
			continue
		}
		if m.kind.ordered() {
			events = append(events, m)
			continue
		}
		if _, ok := q.index[m.topic]; ok {
			q.counters.coalesced(m.kind)
		} else if len(q.latest) >= q.maxTopics {
			q.counters.dropped(m.kind)
		} else {
			q.index[m.topic] = len(q.latest)
			q.latest = append(q.latest, m)
		}
	}
	if len(events) > 0 {
		newer := q.events
		q.events = make([]message, 0, max(q.maxEvents, len(events)+len(newer)))
		for _, m := range events {
			q.pushEventLocked(m)
		}
		for _, m := range newer {
			q.pushEventLocked(m)
		}
	}
	q.mu.Unlock()
	q.signal()
}

// sent records that m reached the broker, for requeueRetained.
func (q *outQueue) sent(m message) {
	if !m.retained {
		return
	}
	q.mu.Lock()
	if _, ok := q.retained[m.topic]; ok || len(q.retained) < q.maxTopics {
		q.retained[m.topic] = m
	}
	q.mu.Unlock()
}

// requeueRetained queues again the last retained message sent on each topic that
// has nothing newer pending. Called after every (re)connection: while we were away
// the broker may have replaced our retained status with the Last Will's "offline",
// or lost everything in a restart, and a consumer must not see "offline" until the
// next periodic status.
func (q *outQueue) requeueRetained() {
	q.mu.Lock()
	for topic, m := range q.retained {
		if _, ok := q.index[topic]; ok || q.closed || len(q.latest) >= q.maxTopics {
			continue
		}
		q.index[topic] = len(q.latest)
		q.latest = append(q.latest, m)
	}
	q.mu.Unlock()
	q.signal()
}

// close makes every later push a counted drop and returns what was pending, as take
// does. The sender uses it at shutdown so that nothing slips in behind the final
// offline status.
func (q *outQueue) close() []message {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	return q.takeLocked()
}

// len is the number of messages waiting.
func (q *outQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.latest) + len(q.events)
}
