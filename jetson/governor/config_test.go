package governor

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidateNamesKey(t *testing.T) {
	tests := []struct {
		key    string
		modify func(*Config)
	}{
		{"max_duty_cycle", func(c *Config) { c.MaxDutyCycle = 0 }},
		{"max_duty_cycle", func(c *Config) { c.MaxDutyCycle = 1.5 }},
		{"min_duty_cycle", func(c *Config) { c.MinDutyCycle = 0 }},
		{"min_duty_cycle", func(c *Config) { c.MinDutyCycle = 0.6 }},
		{"soft_limit_c", func(c *Config) { c.SoftLimitC = -1 }},
		{"hard_limit_c", func(c *Config) { c.HardLimitC = 65 }},
		{"hard_limit_c", func(c *Config) { c.HardLimitC = 99 }},
		{"resume_c", func(c *Config) { c.ResumeC = 85 }},
		{"soft_hysteresis_c", func(c *Config) { c.SoftHysteresisC = -1 }},
		{"power_budget_w", func(c *Config) { c.PowerBudgetW = -5 }},
		{"latency_fraction", func(c *Config) { c.LatencyFraction = 0 }},
		{"latency_fraction", func(c *Config) { c.LatencyFraction = 1.2 }},
		{"period", func(c *Config) { c.Period = time.Millisecond }},
		{"window", func(c *Config) { c.Window = 0 }},
		{"increase_step", func(c *Config) { c.IncreaseStep = 0 }},
		{"decrease_factor", func(c *Config) { c.DecreaseFactor = 1 }},
		{"min_stopped", func(c *Config) { c.MinStopped = -time.Second }},
		{"zones[1]", func(c *Config) { c.Zones = []string{"tj-thermal", ""} }},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.modify(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "governor."+tt.key+":") {
			t.Errorf("%s: Validate() = %v, want an error naming governor.%s", tt.key, err, tt.key)
		}
		if _, nerr := New(c, Options{}); nerr == nil {
			t.Errorf("%s: New accepted an invalid config", tt.key)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
max_duty_cycle: 0.4
min_duty_cycle: 0.1
soft_limit_c: 65
hard_limit_c: 80
resume_c: 70
soft_hysteresis_c: 3
power_budget_w: 25
latency_fraction: 0.7
period: 500ms
window: 8
increase_step: 0.01
decrease_factor: 0.6
min_stopped: 1m
zones: [tj-thermal, gpu-thermal]
`
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewBufferString(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := Config{0.4, 0.1, 65, 80, 70, 3, 25, 0.7, 500 * time.Millisecond, 8, 0.01, 0.6, time.Minute, []string{"tj-thermal", "gpu-thermal"}}
	if c.Period != want.Period || c.MinStopped != want.MinStopped || c.PowerBudgetW != 25 || c.Window != 8 ||
		c.ResumeC != 70 || len(c.Zones) != 2 || c.DecreaseFactor != 0.6 {
		t.Fatalf("decoded %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	dec = yaml.NewDecoder(bytes.NewBufferString("max_duty: 0.3\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err == nil || !strings.Contains(err.Error(), "max_duty") {
		t.Fatalf("unknown key: err = %v, want one naming max_duty", err)
	}
}
