package governor

import (
	"fmt"
	"math"
	"time"
)

// Defaults of Config. The temperatures are for the Orin family (AGX Orin, Orin NX,
// Orin Nano); see the field comments for why each is where it is.
const (
	DefaultMaxDutyCycle      = 0.5
	DefaultMinDutyCycle      = 0.05
	DefaultSoftLimitC        = 70.0
	DefaultHardLimitC        = 85.0
	DefaultResumeC           = 75.0
	DefaultSoftHysteresisC   = 2.0
	DefaultLatencyFraction   = 0.8
	DefaultPeriod            = time.Second
	DefaultWindow            = 5
	DefaultIncreaseStep      = 0.02
	DefaultDecreaseFactor    = 0.5
	DefaultMinStopped        = 30 * time.Second
	MaxHardLimitC            = 95.0 // below the Orin's software-throttling trip (about 99 °C)
	MinPeriod                = 10 * time.Millisecond
	nearFraction             = 0.9 // "near a limit": 90 % of it (power budget, latency limit)
	releaseFraction          = 0.8 // a power or latency limit releases below 80 % of it
	maxStopHoldMultiplier    = 16  // repeated stops double the hold up to 16 × MinStopped
	reportDutyStep           = 0.1
	defaultLatencyRingSize   = 256
	defaultLatencyPercentile = 0.95
)

// Config is the `governor:` section of the daemon's YAML: how much of the time the
// on-robot trainer may run, and the temperature, power and inference-latency limits that
// take that time away again.
//
// Why the temperature defaults are where they are. On the Orin modules the kernel's
// thermal zones (cpu-, gpu-, cv0..2-, soc0..2-thermal and tj-thermal, the hottest of
// them) carry trip points set by NVIDIA's device tree: software throttling (cpufreq and
// GPU devfreq capped) from about 99 °C in current JetPack releases, then hardware
// throttling and finally a thermal shutdown of the module a few degrees higher. The
// exact values differ by module and release (and were not checked against a board for
// this package); the board's own values are in
// /sys/class/thermal/thermal_zone*/trip_point_*_temp, worth reading on each new
// carrier. The fan (nvfancontrol, /etc/nvfancontrol.conf) follows its own
// temperature-to-PWM curve; the governor neither reads nor depends on it, but the soft
// limit should sit where the fan is already working hard, so that the fan, not the
// trainer, handles ordinary load. Training is optional work, so the governor keeps well
// clear of the trips: it starts to back off at 70 °C, stops at 85 °C (about 14 °C under
// the first trip, so inference never runs on a throttled SoC because of training), and
// resumes at 75 °C. In a hot enclosure, lower them; never raise the hard limit towards
// the trip points (Validate refuses more than 95 °C).
type Config struct {
	// MaxDutyCycle is the largest fraction of wall-clock time the trainer may run, in
	// (0, 1]; default 0.5. Half the time leaves the GPU idle between micro-steps so the
	// inference actor, which the GPU owner serves first, rarely waits behind a training
	// kernel, and it roughly halves training's share of the heat and power.
	MaxDutyCycle float64 `yaml:"max_duty_cycle"`
	// MinDutyCycle is the smallest duty cycle while training runs at all, in
	// (0, max_duty_cycle]; default 0.05. Below it a limit stops training instead: a
	// trickle of steps would keep the replay buffer and the GPU context busy for
	// almost no learning.
	MinDutyCycle float64 `yaml:"min_duty_cycle"`
	// SoftLimitC is the temperature in °C (hottest watched zone, smoothed) where the
	// duty cycle starts to fall, linearly to min_duty_cycle at hard_limit_c; default 70.
	SoftLimitC float64 `yaml:"soft_limit_c"`
	// HardLimitC is the temperature in °C (any single reading) at which training stops;
	// default 85, at most 95.
	HardLimitC float64 `yaml:"hard_limit_c"`
	// ResumeC is the temperature in °C (smoothed) below which a thermal stop ends;
	// default 75, below hard_limit_c. The 10 °C gap is the hysteresis that keeps the
	// trainer from toggling at the hard limit: an Orin under load cools by that much in
	// tens of seconds once training stops.
	ResumeC float64 `yaml:"resume_c"`
	// SoftHysteresisC: once the smoothed temperature has reached soft_limit_c, the
	// governor reports "backing-off" until it has fallen this many °C below it;
	// default 2. It keeps sensor noise (±1 °C is common) from flapping the state.
	SoftHysteresisC float64 `yaml:"soft_hysteresis_c"`
	// PowerBudgetW is the budget in W for the module's total input power (VDD_IN where
	// the board measures it, else the sum of its rails); 0 (default) turns power control
	// off. From 90 % of the budget the duty cycle no longer grows and falls slowly; over
	// the budget it halves each period; over the budget at min_duty_cycle training stops.
	// Useful on battery robots whose supply is shared with motors.
	PowerBudgetW float64 `yaml:"power_budget_w"`
	// LatencyFraction: inference's latency (p95 over each period) must stay under this
	// fraction of the frame period, in (0, 1]; default 0.8. Above it the duty cycle halves
	// at once; at min_duty_cycle training stops. 0.8 leaves a fifth of every frame for
	// pairing, rectification and publishing, so frames do not queue.
	LatencyFraction float64 `yaml:"latency_fraction"`
	// Period is how often the governor samples its inputs (a duration: "1s"); default
	// 1 s, at least 10 ms. SoC temperature moves over seconds, and a one-second answer
	// to a latency spike costs at most one period of slow frames.
	Period time.Duration `yaml:"period"`
	// Window is the number of samples the temperature and power are averaged over;
	// default 5 (5 s at the default period). It is also how many clear samples in a row
	// the governor waits after a limit clears before the duty cycle grows again.
	Window int `yaml:"window"`
	// IncreaseStep is how much the duty cycle grows each period while every limit is
	// clear, in (0, max_duty_cycle]; default 0.02, so from min to max in about 23 s:
	// slow against how fast the governor backs off (AIMD), fast against the minutes a
	// heatsink takes to warm up.
	IncreaseStep float64 `yaml:"increase_step"`
	// DecreaseFactor multiplies the duty cycle on each latency or power violation, in
	// (0, 1); default 0.5.
	DecreaseFactor float64 `yaml:"decrease_factor"`
	// MinStopped is the shortest time training stays stopped ("30s"); default 30 s. A
	// stop that follows a resume without ever reaching max_duty_cycle doubles it, up to
	// 16 times, so a limit that training alone cannot fix (inference already too slow
	// with training off) does not flap every few seconds.
	MinStopped time.Duration `yaml:"min_stopped"`
	// Zones lists the thermal zones to watch by type ("tj-thermal", "gpu-thermal"); empty
	// (default): all zones the board reports.
	Zones []string `yaml:"zones"`
}

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	return Config{
		MaxDutyCycle:    DefaultMaxDutyCycle,
		MinDutyCycle:    DefaultMinDutyCycle,
		SoftLimitC:      DefaultSoftLimitC,
		HardLimitC:      DefaultHardLimitC,
		ResumeC:         DefaultResumeC,
		SoftHysteresisC: DefaultSoftHysteresisC,
		LatencyFraction: DefaultLatencyFraction,
		Period:          DefaultPeriod,
		Window:          DefaultWindow,
		IncreaseStep:    DefaultIncreaseStep,
		DecreaseFactor:  DefaultDecreaseFactor,
		MinStopped:      DefaultMinStopped,
	}
}

// Validate checks the values and names the offending key.
func (c Config) Validate() error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case !(c.MaxDutyCycle > 0 && c.MaxDutyCycle <= 1):
		return fmt.Errorf("governor.max_duty_cycle: %g is outside (0, 1]", c.MaxDutyCycle)
	case !(c.MinDutyCycle > 0 && c.MinDutyCycle <= c.MaxDutyCycle):
		return fmt.Errorf("governor.min_duty_cycle: %g is outside (0, max_duty_cycle %g]", c.MinDutyCycle, c.MaxDutyCycle)
	case !finite(c.SoftLimitC) || c.SoftLimitC <= 0:
		return fmt.Errorf("governor.soft_limit_c: %g °C must be a positive temperature", c.SoftLimitC)
	case !finite(c.HardLimitC) || c.HardLimitC <= c.SoftLimitC || c.HardLimitC > MaxHardLimitC:
		return fmt.Errorf("governor.hard_limit_c: %g °C must be above soft_limit_c (%g °C) and at most %g °C, clear of the SoC's throttling trip points", c.HardLimitC, c.SoftLimitC, MaxHardLimitC)
	case !finite(c.ResumeC) || c.ResumeC >= c.HardLimitC || c.ResumeC <= 0:
		return fmt.Errorf("governor.resume_c: %g °C must be positive and below hard_limit_c (%g °C)", c.ResumeC, c.HardLimitC)
	case !finite(c.SoftHysteresisC) || c.SoftHysteresisC < 0 || c.SoftHysteresisC >= c.SoftLimitC:
		return fmt.Errorf("governor.soft_hysteresis_c: %g °C must be in [0, soft_limit_c)", c.SoftHysteresisC)
	case !finite(c.PowerBudgetW) || c.PowerBudgetW < 0:
		return fmt.Errorf("governor.power_budget_w: %g W must be 0 (off) or positive", c.PowerBudgetW)
	case !(c.LatencyFraction > 0 && c.LatencyFraction <= 1):
		return fmt.Errorf("governor.latency_fraction: %g is outside (0, 1]", c.LatencyFraction)
	case c.Period < MinPeriod:
		return fmt.Errorf("governor.period: %s is shorter than %s", c.Period, MinPeriod)
	case c.Window < 1:
		return fmt.Errorf("governor.window: %d samples, need at least 1", c.Window)
	case !(c.IncreaseStep > 0 && c.IncreaseStep <= c.MaxDutyCycle):
		return fmt.Errorf("governor.increase_step: %g is outside (0, max_duty_cycle %g]", c.IncreaseStep, c.MaxDutyCycle)
	case !(c.DecreaseFactor > 0 && c.DecreaseFactor < 1):
		return fmt.Errorf("governor.decrease_factor: %g is outside (0, 1)", c.DecreaseFactor)
	case c.MinStopped < 0:
		return fmt.Errorf("governor.min_stopped: %s is negative", c.MinStopped)
	}
	for i, z := range c.Zones {
		if z == "" {
			return fmt.Errorf("governor.zones[%d]: empty zone name", i)
		}
	}
	return nil
}
