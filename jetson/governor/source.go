package governor

import (
	"slices"
	"sync"
	"time"

	"github.com/edgedepth/edgedepth/jetson/platform"
)

// LatencyRecorder collects inference latencies from the inference actor and hands the
// governor their p95 once per period. Observe is the hot path: a lock and a store, no
// allocation. It is safe for concurrent use.
type LatencyRecorder struct {
	mu      sync.Mutex
	ring    [latencyRingSize]time.Duration
	n       int // latencies recorded since the last Take, at most latencyRingSize kept
	next    int
	period  time.Duration
	scratch [latencyRingSize]time.Duration
}

// latencyRingSize bounds the frames one period's p95 is taken over: 256 is over 8 s of
// 30 fps video, more than a period holds at any sensible rate.
const latencyRingSize = 256

// Observe records one frame's inference latency (from the rectified pair entering the
// inference actor to its results leaving it).
func (r *LatencyRecorder) Observe(d time.Duration) {
	r.mu.Lock()
	r.ring[r.next] = d
	r.next = (r.next + 1) % latencyRingSize
	r.n++
	r.mu.Unlock()
}

// SetFramePeriod records the camera's frame period (1/fps), which the latency limit is
// a fraction of. The daemon sets it when the camera opens and whenever its rate changes.
func (r *LatencyRecorder) SetFramePeriod(p time.Duration) {
	r.mu.Lock()
	r.period = p
	r.mu.Unlock()
}

// Take returns the 95th percentile of the latencies observed since the previous Take
// (0 when no frame came: the camera is down, and latency says nothing) and the frame
// period, and starts a new window. Taking a fresh window each period means a spike
// is seen in the next sample and forgotten in the one after, and a stalled camera
// leaves no stale latency behind.
func (r *LatencyRecorder) Take() (p95, framePeriod time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := min(r.n, latencyRingSize)
	if n == 0 {
		return 0, r.period
	}
	// The last n entries end just before next.
	for i := range n {
		r.scratch[i] = r.ring[(r.next-n+i+latencyRingSize)%latencyRingSize]
	}
	s := r.scratch[:n]
	slices.Sort(s)
	// Nearest-rank percentile: the smallest value with at least 95 % at or below it.
	k := (n*95 + 99) / 100
	r.n = 0
	return s[k-1], r.period
}

// BoardSource is the InputSource of the daemon. On a Jetson it reads the thermal zones
// and power rails through a platform.Sampler; on any other machine Sampler is nil and
// the governor runs on inference latency alone. A desktop's thermal zones (a CPU
// package at 90 °C is normal for a laptop) do not fit the Orin's limits, so the daemon
// gives a Sampler only when the platform probe says Loaded.
type BoardSource struct {
	// Sampler reads temperatures and rail power; nil: none (not a Jetson).
	Sampler *platform.Sampler
	// Latency gives the inference latency; nil: none (inference not running).
	Latency *LatencyRecorder

	tel platform.Telemetry
}

// Sample fills dst, reusing its slices; in steady state it allocates nothing.
func (s *BoardSource) Sample(dst *Inputs) {
	dst.Temps = dst.Temps[:0]
	dst.PowerW = 0
	dst.Latency, dst.FramePeriod = 0, 0
	if s.Sampler != nil {
		s.Sampler.Sample(&s.tel)
		for _, t := range s.tel.Temps {
			dst.Temps = append(dst.Temps, ZoneTemp{Zone: t.Name, C: t.C})
		}
		dst.PowerW = TotalPowerW(s.tel.Rails)
	}
	if s.Latency != nil {
		dst.Latency, dst.FramePeriod = s.Latency.Take()
	}
}

// TotalPowerW is the module's input power from its INA3221 rails. Orin NX and Orin
// Nano measure the module's input as VDD_IN, and their other channels (VDD_CPU_GPU_CV,
// VDD_SOC) are parts of it, so VDD_IN alone is the total. AGX Orin has no such channel;
// its channels (VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0, VDDQ_VDD2_1V8AO) measure separate
// supplies, and their sum is the best total available, a little below the true input.
// 0 when there are no rails.
func TotalPowerW(rails []platform.RailReading) float64 {
	var sum float64
	for _, r := range rails {
		if r.Name == "VDD_IN" {
			return r.W
		}
		sum += r.W
	}
	return sum
}
