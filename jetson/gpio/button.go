package gpio

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// ButtonEvent is a debounced press or release.
type ButtonEvent struct {
	Pressed bool      // true on press, false on release
	At      time.Time // when the level settled
}

// Button reads a push button (e.g. "snapshot the model") on an input pin and delivers
// debounced presses and releases on Events.
//
// Debounce: after an edge, the level must stay put for Debounce (no further edge) before
// it counts; a burst of contact bounces gives one event. Events go to a small buffered
// channel; when the reader falls behind, new events are dropped and counted.
type Button struct {
	Pin       gpio.PinIn
	Debounce  time.Duration // how long the level must be stable; default 50 ms
	ActiveLow bool          // pressed pulls the line low (button to ground, pull-up on)
	Clock     Clock         // nil: the system clock (for event times)

	events  chan ButtonEvent
	dropped atomic.Uint64
}

// NewButton returns a button on pin.
func NewButton(pin gpio.PinIn, debounce time.Duration, activeLow bool) *Button {
	if debounce <= 0 {
		debounce = DefaultButtonDebounce
	}
	return &Button{Pin: pin, Debounce: debounce, ActiveLow: activeLow, events: make(chan ButtonEvent, 8)}
}

// Events delivers the debounced events. It is never closed.
func (b *Button) Events() <-chan ButtonEvent { return b.events }

// Dropped is the number of events lost because Events was full.
func (b *Button) Dropped() uint64 { return b.dropped.Load() }

// pollEvery bounds how long Run takes to notice a cancelled ctx: periph's WaitForEdge
// cannot be interrupted, so Run waits in slices.
const pollEvery = 100 * time.Millisecond

// Run watches the pin until ctx ends and returns nil then. It returns an error when the
// pin cannot be set up for edge detection.
func (b *Button) Run(ctx context.Context) error {
	if b.events == nil {
		return fmt.Errorf("button: use NewButton")
	}
	clk := clockOr(b.Clock)
	pull := gpio.PullDown
	if b.ActiveLow {
		pull = gpio.PullUp
	}
	if err := b.Pin.In(pull, gpio.BothEdges); err != nil {
		// Some GPIO controllers (Tegra's among them) take the bias from the pinmux, not
		// from the request: fall back to the pin's own bias.
		if err2 := b.Pin.In(gpio.PullNoChange, gpio.BothEdges); err2 != nil {
			return fmt.Errorf("button %s: edge detection: %w", b.Pin, err)
		}
	}
	pressed := b.isPressed(b.Pin.Read())
	for ctx.Err() == nil {
		if !b.Pin.WaitForEdge(pollEvery) {
			continue
		}
		// Bouncing: wait until no edge arrives for Debounce.
		for ctx.Err() == nil && b.Pin.WaitForEdge(b.Debounce) {
		}
		if ctx.Err() != nil {
			break
		}
		now := b.isPressed(b.Pin.Read())
		if now == pressed {
			continue // bounced back to where it was
		}
		pressed = now
		select {
		case b.events <- ButtonEvent{Pressed: now, At: clk.Now()}:
		default:
			b.dropped.Add(1)
		}
	}
	return nil
}

func (b *Button) isPressed(l gpio.Level) bool { return bool(l) != b.ActiveLow }
