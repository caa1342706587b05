package config

import (
	"strings"
	"testing"
	"time"
)

// TestGovernorSection: training.governor takes jetson/governor's keys under training,
// its max_duty_cycle follows training.duty unless given, and its errors name the full
// key.
func TestGovernorSection(t *testing.T) {
	d := Default()
	if !d.Training.Governor.Enabled || d.Training.GovernorConfig().MaxDutyCycle != d.Training.Duty {
		t.Fatalf("default governor %+v: want on, max_duty_cycle = training.duty %g", d.Training.Governor, d.Training.Duty)
	}

	c, err := Load(writeConfig(t, `
training:
  enabled: true
  duty: 0.4
  governor:
    hard_limit_c: 80
    resume_c: 70
    soft_limit_c: 65
    power_budget_w: 15
    period: 500ms
    zones: [tj-thermal, gpu-thermal]
`), []string{"EDGEDEPTH_TRAINING_GOVERNOR_MIN_STOPPED=1m"})
	if err != nil {
		t.Fatal(err)
	}
	g := c.Training.GovernorConfig()
	if g.MaxDutyCycle != 0.4 || g.HardLimitC != 80 || g.ResumeC != 70 || g.SoftLimitC != 65 || g.PowerBudgetW != 15 ||
		g.Period != 500*time.Millisecond || len(g.Zones) != 2 || g.MinStopped != time.Minute || g.Window != 5 {
		t.Fatalf("governor config %+v", g)
	}

	// A duty below the governor's default minimum and step still loads: they are
	// capped at it when max_duty_cycle follows training.duty.
	c, err = Load(writeConfig(t, "training:\n  enabled: true\n  duty: 0.02\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if g := c.Training.GovernorConfig(); g.MinDutyCycle != 0.02 || g.IncreaseStep != 0.02 {
		t.Fatalf("duty 0.02: %+v", g)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"training:\n  enabled: true\n  governor:\n    hard_limit_c: 99\n", "training.governor.hard_limit_c"},
		{"training:\n  enabled: true\n  governor:\n    max_duty_cycle: 0.1\n    min_duty_cycle: 0.2\n", "training.governor.min_duty_cycle"},
		{"training:\n  enabled: true\n  governor:\n    hard_limit: 80\n", "unknown key training.governor.hard_limit"},
		{"training:\n  enabled: true\n  duty: 2\n", "training.duty"},
	} {
		_, err := Load(writeConfig(t, tc.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to name %s", tc.yaml, err, tc.want)
		}
		if err != nil && tc.want == "training.duty" && strings.Contains(err.Error(), "governor") {
			t.Errorf("a bad training.duty is reported twice: %v", err)
		}
	}
	// Off, or with training off, the section is not checked.
	if _, err := Load(writeConfig(t, "training:\n  enabled: true\n  governor:\n    enabled: false\n    hard_limit_c: 99\n"), nil); err != nil {
		t.Errorf("governor off: %v", err)
	}
	if _, err := Load(writeConfig(t, "training:\n  governor:\n    hard_limit_c: 99\n"), nil); err != nil {
		t.Errorf("training off: %v", err)
	}
}
