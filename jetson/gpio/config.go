package gpio

import (
	"fmt"
	"time"
)

// Defaults and limits of Config.
const (
	DefaultTriggerRateHz     = 30.0
	DefaultTriggerPulseWidth = time.Millisecond
	DefaultButtonDebounce    = 50 * time.Millisecond
	MaxTriggerRateHz         = 1000
)

// Config names the pins, as the GPIO character device names its lines (`gpioinfo`
// lists them; on Orin, header pin 7 is line "PAC.06", pin 29 "PQ.05"). An empty name
// leaves that part out. It is the `gpio:` section of the daemon's YAML.
type Config struct {
	// TriggerPin is the camera trigger output line; "" (default): no trigger.
	TriggerPin string `yaml:"trigger_pin"`
	// TriggerRateHz is the pulse rate in Hz, the camera frame rate; default 30.
	TriggerRateHz float64 `yaml:"trigger_rate_hz"`
	// TriggerPulseWidth is how long each pulse stays high (a duration: "1ms"); default
	// 1 ms; shorter than the period.
	TriggerPulseWidth time.Duration `yaml:"trigger_pulse_width"`
	// LEDPin is the status LED output line; "" (default): no LED.
	LEDPin string `yaml:"led_pin"`
	// ButtonPin is the snapshot button input line; "" (default): no button.
	ButtonPin string `yaml:"button_pin"`
	// ButtonDebounce is how long the button level must be stable ("50ms"); default 50 ms,
	// at most 1 s.
	ButtonDebounce time.Duration `yaml:"button_debounce"`
	// ButtonActiveLow: the button connects the line to ground (pull-up); default true.
	ButtonActiveLow bool `yaml:"button_active_low"`
}

// DefaultConfig is the configuration with no pins and the default rate, width and
// debounce.
func DefaultConfig() Config {
	return Config{
		TriggerRateHz:     DefaultTriggerRateHz,
		TriggerPulseWidth: DefaultTriggerPulseWidth,
		ButtonDebounce:    DefaultButtonDebounce,
		ButtonActiveLow:   true,
	}
}

// Validate checks the values and names the offending key.
func (c Config) Validate() error {
	if c.TriggerPin != "" {
		if !(c.TriggerRateHz > 0 && c.TriggerRateHz <= MaxTriggerRateHz) {
			return fmt.Errorf("gpio.trigger_rate_hz: %g Hz is outside (0, %d]", c.TriggerRateHz, MaxTriggerRateHz)
		}
		period := time.Duration(float64(time.Second) / c.TriggerRateHz)
		if c.TriggerPulseWidth <= 0 || c.TriggerPulseWidth >= period {
			return fmt.Errorf("gpio.trigger_pulse_width: %s must be positive and shorter than the period %s of %g Hz", c.TriggerPulseWidth, period, c.TriggerRateHz)
		}
	}
	if c.ButtonPin != "" && (c.ButtonDebounce < 0 || c.ButtonDebounce > time.Second) {
		return fmt.Errorf("gpio.button_debounce: %s is outside [0, 1s]", c.ButtonDebounce)
	}
	seen := map[string]string{}
	for _, p := range []struct{ key, name string }{{"trigger_pin", c.TriggerPin}, {"led_pin", c.LEDPin}, {"button_pin", c.ButtonPin}} {
		if p.name == "" {
			continue
		}
		if other, ok := seen[p.name]; ok {
			return fmt.Errorf("gpio.%s: line %q is already gpio.%s", p.key, p.name, other)
		}
		seen[p.name] = p.key
	}
	return nil
}

// Empty reports whether no pin is configured.
func (c Config) Empty() bool { return c.TriggerPin == "" && c.LEDPin == "" && c.ButtonPin == "" }
