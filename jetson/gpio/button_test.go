package gpio

import (
	"context"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// The button test runs on real time for the debounce (periph's WaitForEdge takes a real
// timeout): edges are handed over on an unbuffered channel, so each burst arrives within
// microseconds, far inside the 50 ms debounce.
func TestButtonDebounce(t *testing.T) {
	pin := &gpiotest.Pin{N: "BTN", Num: 3, EdgesChan: make(chan gpio.Level)}
	b := NewButton(pin, 50*time.Millisecond, true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	burst := func(levels ...gpio.Level) {
		for _, l := range levels {
			pin.EdgesChan <- l
		}
	}
	next := func() ButtonEvent {
		select {
		case e := <-b.Events():
			return e
		case <-time.After(10 * time.Second): // a failure bound, not synchronisation
			t.Fatal("no button event")
			return ButtonEvent{}
		}
	}

	burst(gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low) // press, bouncing
	if e := next(); !e.Pressed {
		t.Fatalf("got %+v, want a press", e)
	}
	burst(gpio.High, gpio.Low, gpio.High) // release, bouncing
	if e := next(); e.Pressed {
		t.Fatalf("got %+v, want a release", e)
	}
	burst(gpio.Low, gpio.High) // a glitch that settles released: no event
	burst(gpio.Low)            // a clean press
	if e := next(); !e.Pressed {
		t.Fatalf("got %+v after a glitch, want the press (the glitch gave an event)", e)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-b.Events():
		t.Errorf("extra event %+v", e)
	default:
	}
	if pin.P != gpio.PullUp {
		t.Errorf("pull %v, want up for an active-low button", pin.P)
	}
}

func TestButtonNeedsEdges(t *testing.T) {
	pin := &gpiotest.Pin{N: "BTN"} // no EdgesChan: the fake refuses edge detection
	if err := NewButton(pin, 0, true).Run(context.Background()); err == nil {
		t.Fatal("Run without edge detection returned nil")
	}
}
