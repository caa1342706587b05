package governor

import (
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/jetson/platform"
)

func TestLatencyRecorderP95(t *testing.T) {
	var r LatencyRecorder
	r.SetFramePeriod(framePeriod)
	if p, fp := r.Take(); p != 0 || fp != framePeriod {
		t.Fatalf("no frames: %s, %s; want 0 and the frame period", p, fp)
	}
	for i := 1; i <= 100; i++ {
		r.Observe(time.Duration(i) * time.Millisecond)
	}
	if p, _ := r.Take(); p != 95*time.Millisecond {
		t.Fatalf("p95 of 1..100 ms = %s, want 95ms", p)
	}
	if p, _ := r.Take(); p != 0 {
		t.Fatalf("second Take without frames = %s, want 0 (a fresh window)", p)
	}
	for i := range 1000 { // more than the ring: the latest 256 count
		r.Observe(time.Duration(i) * time.Millisecond)
	}
	if p, _ := r.Take(); p != 987*time.Millisecond {
		t.Fatalf("p95 of the last 256 of 0..999 ms = %s, want 987ms", p)
	}
	r.Observe(7 * time.Millisecond)
	if p, _ := r.Take(); p != 7*time.Millisecond {
		t.Fatalf("one frame: %s, want 7ms", p)
	}
}

func TestLatencyRecorderObserveDoesNotAllocate(t *testing.T) {
	var r LatencyRecorder
	if n := testing.AllocsPerRun(1000, func() { r.Observe(time.Millisecond) }); n != 0 {
		t.Fatalf("Observe allocates %.0f times", n)
	}
}

func TestBoardSourceOnRecordedBoards(t *testing.T) {
	tests := []struct {
		root      string
		powerRail string // "" : the sum of the rails
	}{
		{"../platform/testdata/orin-nx-16gb-jp5", "VDD_IN"},
		{"../platform/testdata/orin-nano-8gb-jp6", "VDD_IN"},
		{"../platform/testdata/agx-orin-jp6", ""},
	}
	for _, tt := range tests {
		want := platform.Sample(tt.root)
		var wantW float64
		for _, r := range want.Rails {
			if tt.powerRail == "" || r.Name == tt.powerRail {
				wantW += r.W
			}
		}
		sampler := platform.NewSampler(tt.root)
		var lat LatencyRecorder
		lat.SetFramePeriod(framePeriod)
		lat.Observe(12 * time.Millisecond)
		src := &BoardSource{Sampler: sampler, Latency: &lat}
		var in Inputs
		src.Sample(&in)
		sampler.Close()
		if len(in.Temps) != len(want.Temps) || len(in.Temps) == 0 {
			t.Errorf("%s: %d zones, want %d", tt.root, len(in.Temps), len(want.Temps))
		}
		if in.PowerW != wantW || wantW <= 0 {
			t.Errorf("%s: power %.3f W, want %.3f W", tt.root, in.PowerW, wantW)
		}
		if in.Latency != 12*time.Millisecond || in.FramePeriod != framePeriod {
			t.Errorf("%s: latency %s / %s", tt.root, in.Latency, in.FramePeriod)
		}
	}
}

func TestBoardSourceLatencyOnly(t *testing.T) {
	var lat LatencyRecorder
	lat.SetFramePeriod(framePeriod)
	lat.Observe(20 * time.Millisecond)
	src := &BoardSource{Latency: &lat}
	in := Inputs{Temps: []ZoneTemp{{"stale", 99}}, PowerW: 50}
	src.Sample(&in)
	if len(in.Temps) != 0 || in.PowerW != 0 || in.Latency != 20*time.Millisecond {
		t.Fatalf("latency-only source gave %+v", in)
	}
}
