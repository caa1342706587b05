package trainer

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// SampleBytes is the most host memory one sample at width x height pixels holds: four
// RGB images (target, previous, next, other eye) of 3·width·height bytes and, with
// ground truth, a float32 depth map of 4·width·height bytes. The two samples of a
// stereo triplet (left and right target) share their images, so a buffer of them
// holds about three quarters of this in practice; the bound is what capacities are
// planned with.
func SampleBytes(width, height int, truth bool) int {
	n := 4 * 3 * width * height
	if truth {
		n += 4 * width * height
	}
	return n
}

// sampleBytes is SampleBytes of s as it is.
func sampleBytes(s *Sample) int {
	return len(s.Target.Pix) + len(s.Prev.Pix) + len(s.Next.Pix) + len(s.Other.Pix) + 4*len(s.TruthDepth)
}

// ReplayBuffer holds the training samples of continual learning in bounded memory:
// a ring of the Recent newest samples, and a reservoir of Reservoir older ones that is
// a uniform random sample of every sample that has left the ring (Vitter's algorithm
// R: the n-th sample to leave the ring replaces a random slot with probability
// Reservoir/n). Batches mix both, so that the networks keep seeing where the robot
// has been (against forgetting) while they adapt to where it is. Memory is at most
// (Recent + Reservoir) · SampleBytes. Safe for concurrent use.
type ReplayBuffer struct {
	mu        sync.Mutex
	recent    []Sample // ring: recent[next % cap] is the oldest once full
	next      int      // samples ever added
	recentCap int
	reservoir []Sample
	resCap    int
	offered   int // samples that have left the ring (the reservoir's n)
	bytes     int
	r         *rand.Rand
}

// NewReplayBuffer makes a buffer of recent newest samples and a reservoir of
// reservoir older ones (either may be 0, not both); seed drives the reservoir's
// replacement draws.
func NewReplayBuffer(recent, reservoir int, seed uint64) (*ReplayBuffer, error) {
	if recent < 0 || reservoir < 0 || recent+reservoir == 0 {
		return nil, fmt.Errorf("trainer: replay buffer of %d recent and %d reservoir samples: both must be ≥ 0 and one > 0", recent, reservoir)
	}
	return &ReplayBuffer{recentCap: recent, resCap: reservoir, r: rand.New(rand.NewPCG(seed, 0x7e91a))}, nil
}

// Add puts s in the ring; the sample it pushes out of a full ring is offered to the
// reservoir.
func (rb *ReplayBuffer) Add(s Sample) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	rb.bytes += sampleBytes(&s)
	if rb.recentCap == 0 {
		rb.next++
		rb.toReservoir(s)
		return
	}
	if len(rb.recent) < rb.recentCap {
		rb.recent = append(rb.recent, s)
		rb.next++
		return
	}
	i := rb.next % rb.recentCap
	old := rb.recent[i]
	rb.recent[i] = s
	rb.next++
	rb.toReservoir(old)
}

// toReservoir is one step of algorithm R. Called with mu held.
func (rb *ReplayBuffer) toReservoir(s Sample) {
	rb.offered++
	if rb.resCap == 0 {
		rb.bytes -= sampleBytes(&s)
		return
	}
	if len(rb.reservoir) < rb.resCap {
		rb.reservoir = append(rb.reservoir, s)
		return
	}
	j := rb.r.IntN(rb.offered)
	if j < rb.resCap {
		rb.bytes -= sampleBytes(&rb.reservoir[j])
		rb.reservoir[j] = s
		return
	}
	rb.bytes -= sampleBytes(&s)
}

// Len is the number of samples held: in the ring and in the reservoir.
func (rb *ReplayBuffer) Len() (recent, reservoir int) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return len(rb.recent), len(rb.reservoir)
}

// Added is the number of samples ever added.
func (rb *ReplayBuffer) Added() int {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.next
}

// Bytes is the host memory the held samples' images and depths take (shared images
// counted once per sample).
func (rb *ReplayBuffer) Bytes() int {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.bytes
}

// All returns every held sample: the ring oldest first, then the reservoir.
func (rb *ReplayBuffer) All() []Sample {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	out := make([]Sample, 0, len(rb.recent)+len(rb.reservoir))
	if len(rb.recent) == rb.recentCap && rb.recentCap > 0 {
		i := rb.next % rb.recentCap
		out = append(out, rb.recent[i:]...)
		out = append(out, rb.recent[:i]...)
	} else {
		out = append(out, rb.recent...)
	}
	return append(out, rb.reservoir...)
}

// Batch draws n distinct samples (fewer when the buffer holds fewer): about
// reservoirShare of them (rounded) from the reservoir and the rest from the ring,
// topping up from the other part when one runs short. r makes the draws.
func (rb *ReplayBuffer) Batch(n int, reservoirShare float64, r *rand.Rand) []Sample {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	fromRes := min(int(reservoirShare*float64(n)+0.5), len(rb.reservoir))
	fromRecent := min(n-fromRes, len(rb.recent))
	fromRes = min(n-fromRecent, len(rb.reservoir))
	out := make([]Sample, 0, fromRes+fromRecent)
	for _, i := range r.Perm(len(rb.recent))[:fromRecent] {
		out = append(out, rb.recent[i])
	}
	for _, i := range r.Perm(len(rb.reservoir))[:fromRes] {
		out = append(out, rb.reservoir[i])
	}
	return out
}
