package gpio

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

func TestConfigYAML(t *testing.T) {
	in := "trigger_pin: PQ.05\ntrigger_rate_hz: 60\ntrigger_pulse_width: 500us\nled_pin: PAC.06\nbutton_pin: PH.00\nbutton_debounce: 20ms\nbutton_active_low: false\n"
	c := DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(in))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := Config{TriggerPin: "PQ.05", TriggerRateHz: 60, TriggerPulseWidth: 500 * time.Microsecond, LEDPin: "PAC.06", ButtonPin: "PH.00", ButtonDebounce: 20 * time.Millisecond}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	base := DefaultConfig()
	base.TriggerPin, base.LEDPin, base.ButtonPin = "PQ.05", "PAC.06", "PH.00"
	tests := []struct {
		name   string
		change func(*Config)
		key    string
	}{
		{"zero rate", func(c *Config) { c.TriggerRateHz = 0 }, "gpio.trigger_rate_hz"},
		{"too fast", func(c *Config) { c.TriggerRateHz = 5000 }, "gpio.trigger_rate_hz"},
		{"no width", func(c *Config) { c.TriggerPulseWidth = 0 }, "gpio.trigger_pulse_width"},
		{"width over period", func(c *Config) { c.TriggerPulseWidth = 40 * time.Millisecond }, "gpio.trigger_pulse_width"},
		{"long debounce", func(c *Config) { c.ButtonDebounce = 2 * time.Second }, "gpio.button_debounce"},
		{"shared line", func(c *Config) { c.LEDPin = "PQ.05" }, "gpio.led_pin"},
	}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		c := base
		tt.change(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tt.key+":") {
			t.Errorf("%s: %v, want an error naming %s", tt.name, err, tt.key)
		}
	}
	// Rate and width do not matter without a trigger pin.
	c := DefaultConfig()
	c.TriggerRateHz = 0
	if err := c.Validate(); err != nil {
		t.Errorf("no trigger pin: %v", err)
	}
}

// This development machine has no GPIO: Open must say "skipped" and why, for real.
func TestOpenSkippedOnThisHost(t *testing.T) {
	c := DefaultConfig()
	c.LEDPin = "PQ.05"
	pins, st := Open(c)
	if pins != nil || st.Outcome != Skipped {
		t.Fatalf("Open = %v, %v; want skipped (no GPIO here)", pins, st)
	}
	if !strings.Contains(st.Reason, `gpio.led_pin: line "PQ.05" not found`) {
		t.Errorf("reason %q does not name the key and line", st.Reason)
	}
	t.Logf("Open on this host: %v", st)

	if _, st := Open(DefaultConfig()); st.Outcome != Skipped || !strings.Contains(st.Reason, "no GPIO pins configured") {
		t.Errorf("empty config: %v", st)
	}
	bad := c
	bad.TriggerPin, bad.TriggerRateHz = "PAC.06", -3
	if _, st := Open(bad); st.Outcome != Failed || !strings.Contains(st.Reason, "gpio.trigger_rate_hz") {
		t.Errorf("invalid config: %v", st)
	}
	if got := (State{Skipped, "x"}).String(); got != "skipped: x" {
		t.Errorf("State.String() = %q", got)
	}
}

func TestBuildAndRunPins(t *testing.T) {
	c := DefaultConfig()
	trig := newRecordingPin("TRIG", newFakeClock())
	led := newRecordingPin("LED", newFakeClock())
	btn := &gpiotest.Pin{N: "BTN"}
	pins, st := build(c, trig, led, btn)
	if st.Outcome != Loaded || pins.Trigger == nil || pins.LED == nil || pins.Button == nil {
		t.Fatalf("build: %v %+v", st, pins)
	}
	// A part that fails stops the others and Run returns its error: the button fake has
	// no EdgesChan, so the button fails at once.
	pins.Trigger.Clock, pins.LED.Clock = newFakeClock(), newFakeClock()
	if err := pins.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "button") {
		t.Fatalf("Run: %v, want the button's error", err)
	}

	led.fail = errors.New("line busy")
	if _, st := build(c, trig, led, nil); st.Outcome != Failed || !strings.Contains(st.Reason, "gpio.led_pin") {
		t.Errorf("failing LED line: %v", st)
	}
}
