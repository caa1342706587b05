package gpio

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	goruntime "runtime"
	"sync"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// Outcome is how Open ended, in the words periph drivers use.
type Outcome int

const (
	Loaded  Outcome = iota // the pins are ready
	Skipped                // no GPIO here, or none configured: not an error
	Failed                 // configured and present, but unusable
)

func (o Outcome) String() string {
	switch o {
	case Loaded:
		return "loaded"
	case Skipped:
		return "skipped"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// MarshalText writes the outcome as its word.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// State is the outcome of Open with its reason.
type State struct {
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`
}

func (s State) String() string {
	if s.Reason == "" {
		return s.Outcome.String()
	}
	return s.Outcome.String() + ": " + s.Reason
}

// Pins are the opened parts; a part whose pin is not configured is nil.
type Pins struct {
	Trigger *Trigger
	LED     *StatusLED
	Button  *Button
}

// Run runs every part until ctx ends and waits for all of them. It returns nil on
// cancel; if one part fails, the others are stopped and its error is returned.
func (p *Pins) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := func(run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel()
			}
		}()
	}
	if p.Trigger != nil {
		start(p.Trigger.Run)
	}
	if p.LED != nil {
		start(p.LED.Run)
	}
	if p.Button != nil {
		start(p.Button.Run)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Open resolves the configured pins through periph: host.Init loads the host drivers
// (on Linux the GPIO v2 character device driver, "ioctl-gpio"), then gpioreg.ByName finds
// each line. Missing GPIO support (not Linux, no /dev/gpiochip*, a kernel without the v2
// interface, a line name that does not exist) gives State Skipped with the reason and
// nil Pins; an invalid config or a line that refuses to be set up gives Failed. Neither
// is meant to stop the daemon: report the State to health and carry on.
func Open(cfg Config) (*Pins, State) {
	if err := cfg.Validate(); err != nil {
		return nil, State{Failed, err.Error()}
	}
	if cfg.Empty() {
		return nil, State{Skipped, "no GPIO pins configured (gpio.trigger_pin, gpio.led_pin, gpio.button_pin)"}
	}
	if goruntime.GOOS != "linux" {
		return nil, State{Skipped, fmt.Sprintf("GPIO needs Linux's GPIO character device; this is %s", goruntime.GOOS)}
	}
	st, err := host.Init()
	if err != nil {
		return nil, State{Skipped, fmt.Sprintf("periph host drivers: %v", err)}
	}
	resolve := func(key, name string) (gpio.PinIO, *State) {
		if name == "" {
			return nil, nil
		}
		if p := gpioreg.ByName(name); p != nil {
			return p, nil
		}
		return nil, &State{Skipped, fmt.Sprintf("gpio.%s: line %q not found: %s", key, name, whyNoLine(st))}
	}
	trig, s := resolve("trigger_pin", cfg.TriggerPin)
	if s != nil {
		return nil, *s
	}
	led, s := resolve("led_pin", cfg.LEDPin)
	if s != nil {
		return nil, *s
	}
	btn, s := resolve("button_pin", cfg.ButtonPin)
	if s != nil {
		return nil, *s
	}
	return build(cfg, trig, led, btn)
}

// build makes the parts from resolved pins and drives the outputs low.
func build(cfg Config, trig, led gpio.PinOut, btn gpio.PinIn) (*Pins, State) {
	var p Pins
	if trig != nil {
		if err := trig.Out(gpio.Low); err != nil {
			return nil, State{Failed, fmt.Sprintf("gpio.trigger_pin %s: set as output: %v", trig, err)}
		}
		p.Trigger = &Trigger{Pin: trig, RateHz: cfg.TriggerRateHz, PulseWidth: cfg.TriggerPulseWidth}
	}
	if led != nil {
		if err := led.Out(gpio.Low); err != nil {
			return nil, State{Failed, fmt.Sprintf("gpio.led_pin %s: set as output: %v", led, err)}
		}
		p.LED = NewStatusLED(led)
	}
	if btn != nil {
		p.Button = NewButton(btn, cfg.ButtonDebounce, cfg.ButtonActiveLow)
	}
	return &p, State{Outcome: Loaded}
}

// whyNoLine explains a missing line from the driver state of host.Init.
func whyNoLine(st *driverreg.State) string {
	if st != nil {
		for _, list := range [][]driverreg.DriverFailure{st.Skipped, st.Failed} {
			for _, f := range list {
				if f.D.String() == "ioctl-gpio" {
					return fmt.Sprintf("the GPIO character device driver did not load (%v); GPIO needs /dev/gpiochip* with the v2 interface (Linux 5.10+, JetPack 5/6) and access to it", f.Err)
				}
			}
		}
	}
	chips, _ := filepath.Glob("/dev/gpiochip*")
	if len(chips) == 0 {
		return "no /dev/gpiochip* on this machine (no GPIO, or not passed into the container)"
	}
	return fmt.Sprintf("%d GPIO lines are known; `gpioinfo` lists their names", len(gpioreg.All()))
}
