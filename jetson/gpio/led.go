package gpio

import (
	"context"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// LEDState is what the status LED shows.
type LEDState int

const (
	Starting LEDState = iota // slow blink
	Running                  // solid on
	Training                 // fast blink
	Degraded                 // double blink
	Error                    // SOS
	Off                      // dark (shutdown)
)

func (s LEDState) String() string {
	switch s {
	case Starting:
		return "starting"
	case Running:
		return "running"
	case Training:
		return "training"
	case Degraded:
		return "degraded"
	case Error:
		return "error"
	case Off:
		return "off"
	}
	return fmt.Sprintf("LEDState(%d)", int(s))
}

// Step is one part of a pattern: the LED on or off for D. A step with D == 0 holds
// until the state changes (solid on, or dark).
type Step struct {
	On bool
	D  time.Duration
}

// Pattern is a sequence of steps played in a loop.
type Pattern []Step

// Period is the length of one loop of the pattern (0 for a held pattern).
func (p Pattern) Period() time.Duration {
	var d time.Duration
	for _, s := range p {
		d += s.D
	}
	return d
}

const (
	dot  = 150 * time.Millisecond
	dash = 3 * dot
)

// DefaultPatterns are the patterns of each state.
var DefaultPatterns = map[LEDState]Pattern{
	Starting: {{true, 500 * time.Millisecond}, {false, 500 * time.Millisecond}},
	Running:  {{true, 0}},
	Training: {{true, 100 * time.Millisecond}, {false, 100 * time.Millisecond}},
	Degraded: {{true, 100 * time.Millisecond}, {false, 150 * time.Millisecond}, {true, 100 * time.Millisecond}, {false, 650 * time.Millisecond}},
	Error: {
		{true, dot}, {false, dot}, {true, dot}, {false, dot}, {true, dot}, {false, dash},
		{true, dash}, {false, dot}, {true, dash}, {false, dot}, {true, dash}, {false, dash},
		{true, dot}, {false, dot}, {true, dot}, {false, dot}, {true, dot}, {false, 7 * dot},
	},
	Off: {{false, 0}},
}

// StatusLED plays the pattern of the current state on an output pin.
type StatusLED struct {
	Pin      gpio.PinOut
	Patterns map[LEDState]Pattern // nil: DefaultPatterns
	Clock    Clock                // nil: the system clock

	mu      sync.Mutex
	state   LEDState
	changed chan struct{}
}

// NewStatusLED returns an LED on pin showing Starting.
func NewStatusLED(pin gpio.PinOut) *StatusLED {
	return &StatusLED{Pin: pin, changed: make(chan struct{}, 1)}
}

// Set changes the state; the new pattern starts at once, from its first step. Safe for
// concurrent use; it never blocks.
func (l *StatusLED) Set(s LEDState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s == l.state {
		return
	}
	l.state = s
	select {
	case l.changed <- struct{}{}:
	default: // a change is already pending; Run reads the latest state
	}
}

// State is the state being shown.
func (l *StatusLED) State() LEDState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

func (l *StatusLED) pattern(s LEDState) Pattern {
	ps := l.Patterns
	if ps == nil {
		ps = DefaultPatterns
	}
	if p, ok := ps[s]; ok && len(p) > 0 {
		return p
	}
	return Pattern{{true, 0}}
}

// Run plays patterns until ctx ends, then turns the LED off and returns nil. Step
// boundaries are absolute times from the pattern's start, so the blink does not drift.
func (l *StatusLED) Run(ctx context.Context) error {
	if l.changed == nil {
		return fmt.Errorf("status LED: use NewStatusLED")
	}
	clk := clockOr(l.Clock)
	defer l.Pin.Out(gpio.Low)
	for {
		select { // the state read below includes any pending change
		case <-l.changed:
		default:
		}
		p := l.pattern(l.State())
		at := clk.Now()
		changed := false
		for i := 0; !changed; i = (i + 1) % len(p) {
			step := p[i]
			if err := l.Pin.Out(gpio.Level(step.On)); err != nil {
				return fmt.Errorf("status LED %s: %w", l.Pin, err)
			}
			var fire <-chan time.Time
			var tm Timer
			if step.D > 0 {
				at = at.Add(step.D)
				tm = clk.Timer(at)
				fire = tm.C()
			}
			select {
			case <-ctx.Done():
				if tm != nil {
					tm.Stop()
				}
				return nil
			case <-l.changed:
				if tm != nil {
					tm.Stop()
				}
				changed = true
			case <-fire:
			}
		}
	}
}
