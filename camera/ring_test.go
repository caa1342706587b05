package camera

import (
	"context"
	"testing"
	"time"
)

func TestRingDropsOldestAndCounts(t *testing.T) {
	r := NewRing(3)
	for i := range 5 {
		r.Push(StereoFrame{Seq: uint64(i)})
	}
	if r.Len() != 3 || r.Dropped() != 2 {
		t.Fatalf("len %d dropped %d, want 3 and 2", r.Len(), r.Dropped())
	}
	for want := uint64(2); want < 5; want++ {
		f, err := r.Pop(context.Background())
		if err != nil || f.Seq != want {
			t.Fatalf("Pop = seq %d, %v; want %d (oldest surviving first)", f.Seq, err, want)
		}
	}
}

func TestRingPopWaitsAndCancels(t *testing.T) {
	r := NewRing(2)
	got := make(chan uint64)
	go func() {
		f, err := r.Pop(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- f.Seq
	}()
	r.Push(StereoFrame{Seq: 7})
	if s := <-got; s != 7 {
		t.Fatalf("Pop after Push = %d, want 7", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.Pop(ctx); err == nil {
		t.Fatal("Pop on an empty ring returned without its context ending")
	}
}

func TestImageRoundTrip(t *testing.T) {
	img := NewImage(3, 2)
	for i := range img.Pix {
		img.Pix[i] = byte(i * 11)
	}
	back := FromImage(img.RGBA())
	for i := range img.Pix {
		if back.Pix[i] != img.Pix[i] {
			t.Fatalf("byte %d: %d after RGBA round trip, want %d", i, back.Pix[i], img.Pix[i])
		}
	}
}
