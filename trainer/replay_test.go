package trainer_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	cam "github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/trainer"
)

// numbered is a sample that carries only its place i in the stream.
func numbered(i int) trainer.Sample { return trainer.Sample{ID: fmt.Sprint(i), Frame: i} }

func TestReplayBufferIsBounded(t *testing.T) {
	const w, h, recent, reservoir = 32, 32, 8, 20
	rb, err := trainer.NewReplayBuffer(recent, reservoir, 1)
	if err != nil {
		t.Fatal(err)
	}
	img := cam.NewImage(w, h)
	for i := range 500 {
		s := numbered(i)
		s.Target, s.Prev, s.Next, s.Other = img, img, img, img
		s.TruthDepth = make([]float32, w*h)
		rb.Add(s)
		r, k := rb.Len()
		if r > recent || k > reservoir {
			t.Fatalf("after %d adds: %d recent, %d reservoir; capacities %d and %d", i+1, r, k, recent, reservoir)
		}
		if limit := (recent + reservoir) * trainer.SampleBytes(w, h, true); rb.Bytes() > limit {
			t.Fatalf("after %d adds: %d bytes held, more than the bound %d", i+1, rb.Bytes(), limit)
		}
	}
	if got, want := rb.Bytes(), (recent+reservoir)*trainer.SampleBytes(w, h, true); got != want {
		t.Errorf("full buffer holds %d bytes, want %d (every sample at the bound)", got, want)
	}
	all := rb.All()
	if len(all) != recent+reservoir || rb.Added() != 500 {
		t.Fatalf("All: %d samples, Added %d", len(all), rb.Added())
	}
	for i, s := range all[:recent] {
		if s.Frame != 500-recent+i {
			t.Errorf("ring slot %d holds sample %d, want the newest %d oldest first (%d)", i, s.Frame, recent, 500-recent+i)
		}
	}
	for _, s := range all[recent:] {
		if s.Frame >= 500-recent {
			t.Errorf("the reservoir holds sample %d, which is still in the ring", s.Frame)
		}
	}
	if _, err := trainer.NewReplayBuffer(0, 0, 1); err == nil {
		t.Error("a buffer of no capacity was accepted")
	}
}

// TestReplayReservoirIsUniform streams 0..N−1 through many buffers (fixed seeds) and
// checks that the reservoir holds every sample that left the ring with the same
// probability: a chi-square test of the counts over 10 equal stretches of the stream.
// Deterministic; a reservoir that favoured recent or early samples (e.g. replacing a
// random slot on every add) gives a chi-square in the thousands.
func TestReplayReservoirIsUniform(t *testing.T) {
	const recent, reservoir, n, trials, bins = 10, 100, 2010, 300, 10
	var counts [bins]float64
	for trial := range trials {
		rb, _ := trainer.NewReplayBuffer(recent, reservoir, uint64(trial)+1)
		for i := range n {
			rb.Add(numbered(i))
		}
		all := rb.All()
		for _, s := range all[recent:] {
			counts[s.Frame*bins/(n-recent)]++
		}
	}
	expect := float64(trials*reservoir) / bins
	var chi2 float64
	for _, c := range counts {
		chi2 += (c - expect) * (c - expect) / expect
	}
	// 9 degrees of freedom: P(χ² > 27.88) = 0.001 for a uniform reservoir.
	t.Logf("reservoir counts per tenth of the stream %v (expected %.0f each): χ² = %.2f", counts, expect, chi2)
	if chi2 > 27.88 {
		t.Errorf("χ² = %.1f over 9 degrees of freedom: the reservoir is not a uniform sample of the stream", chi2)
	}
}

func TestReplayBatchMixesRecentAndReservoir(t *testing.T) {
	rb, _ := trainer.NewReplayBuffer(10, 50, 1)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3 {
		rb.Add(numbered(i))
	}
	if b := rb.Batch(4, 0.5, r); len(b) != 3 {
		t.Fatalf("a batch of 4 from 3 samples has %d", len(b))
	}
	for i := 3; i < 200; i++ {
		rb.Add(numbered(i))
	}
	for _, tc := range []struct {
		n           int
		share       float64
		old, recent int
	}{{4, 0.5, 2, 2}, {4, 0, 0, 4}, {4, 1, 4, 0}, {16, 0.25, 4, 12}} {
		b := rb.Batch(tc.n, tc.share, r)
		seen := map[int]bool{}
		old := 0
		for _, s := range b {
			if seen[s.Frame] {
				t.Errorf("share %g: sample %d twice in a batch", tc.share, s.Frame)
			}
			seen[s.Frame] = true
			if s.Frame < 190 {
				old++
			}
		}
		// n 16 with share 0.25 wants 12 recent but the ring holds 10: topped up from the reservoir.
		want := tc.old
		if tc.recent > 10 {
			want += tc.recent - 10
		}
		if len(b) != tc.n || old != want {
			t.Errorf("Batch(%d, %g): %d samples, %d from the reservoir; want %d and %d", tc.n, tc.share, len(b), old, tc.n, want)
		}
	}
}
