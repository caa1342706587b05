package camera

import (
	"context"
	"sync"
)

// Ring is a bounded queue of stereo pairs between a live source and a slower consumer.
// When full, Push drops the oldest pair and counts it: live video must never wait for
// processing, and the freshest pair is always the most useful one.
type Ring struct {
	mu      sync.Mutex
	buf     []StereoFrame
	cap     int
	dropped uint64
	ready   chan struct{} // has one token while buf is non-empty
}

// NewRing returns a ring holding at most capacity pairs (at least 1).
func NewRing(capacity int) *Ring {
	if capacity < 1 {
		capacity = 1
	}
	return &Ring{cap: capacity, ready: make(chan struct{}, 1)}
}

// Push appends f, dropping the oldest pair when the ring is full. It never blocks.
func (r *Ring) Push(f StereoFrame) {
	r.mu.Lock()
	if len(r.buf) == r.cap {
		r.buf[0] = StereoFrame{}
		r.buf = r.buf[1:]
		r.dropped++
	}
	r.buf = append(r.buf, f)
	r.mu.Unlock()
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

// Pop waits for the oldest pair in the ring, or for ctx to end.
func (r *Ring) Pop(ctx context.Context) (StereoFrame, error) {
	for {
		r.mu.Lock()
		if len(r.buf) > 0 {
			f := r.buf[0]
			r.buf[0] = StereoFrame{}
			r.buf = r.buf[1:]
			more := len(r.buf) > 0
			r.mu.Unlock()
			if more {
				select {
				case r.ready <- struct{}{}:
				default:
				}
			}
			return f, nil
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return StereoFrame{}, ctx.Err()
		case <-r.ready:
		}
	}
}

// Dropped is the number of pairs dropped so far because the consumer was behind.
func (r *Ring) Dropped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// Len is the number of pairs waiting.
func (r *Ring) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.buf)
}
