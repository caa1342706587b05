package governor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// State is where the governor stands.
type State int

const (
	// Resuming: every limit is clear and the duty cycle climbs towards the maximum
	// (after a stop, after a back-off, and at start-up).
	Resuming State = iota
	// Running: every limit is clear and the duty cycle is at the maximum.
	Running
	// BackingOff: a limit is active (temperature above the soft limit, power near the
	// budget, inference latency near or over its limit) or cleared fewer than Window
	// samples ago; the duty cycle is held or reduced.
	BackingOff
	// Stopped: training must not run (duty cycle 0) until the limit that stopped it
	// clears and MinStopped has passed.
	Stopped
	numStates
)

var stateNames = [numStates]string{"resuming", "running", "backing-off", "stopped"}

func (s State) String() string {
	if s >= 0 && s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText writes the state's name, for JSON event payloads.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Limit names what constrains training in a Decision.
type Limit string

const (
	LimitNone        Limit = ""
	LimitTemperature Limit = "temperature"
	LimitPower       Limit = "power"
	LimitLatency     Limit = "latency"
)

var stopLimits = []Limit{LimitTemperature, LimitPower, LimitLatency}

// Decision is what the trainer may do now and why.
type Decision struct {
	// DutyCycle is the fraction of wall-clock time the trainer may run, 0 when Stopped.
	DutyCycle float64 `json:"duty_cycle"`
	State     State   `json:"state"`
	// Limit is the limit that holds the duty cycle down; "" when none does.
	Limit Limit `json:"limit,omitempty"`
	// Reason says it in words, with the values that led to it.
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Inputs is one sample of what the governor watches. A value the machine cannot give
// is left at zero (or empty) and the limit that needs it is not applied: with no thermal
// zones and no power rails (any machine but a Jetson) the governor runs on inference
// latency alone.
type Inputs struct {
	// Temps are the thermal zones' temperatures in °C, by zone type.
	Temps []ZoneTemp
	// PowerW is the module's total input power in W; 0: unknown.
	PowerW float64
	// Latency is inference's latency over the last period (p95); 0: no frames.
	Latency time.Duration
	// FramePeriod is the camera's frame period; 0: unknown.
	FramePeriod time.Duration
}

// ZoneTemp is one thermal zone's temperature.
type ZoneTemp struct {
	Zone string
	C    float64
}

// InputSource fills one sample of Inputs. It is called from the governor's loop only,
// once per Period, and may reuse dst's slices.
type InputSource interface {
	Sample(dst *Inputs)
}

// Options are the governor's collaborators; all optional.
type Options struct {
	// Source gives the inputs in Run; required for Run, not for Step.
	Source InputSource
	// OnChange receives each reported change, from the goroutine that calls Step (Run's).
	// It must not block: the daemon queues an MQTT event, it does not publish inline.
	OnChange func(Decision)
	// Clock is the time source; nil: the system clock.
	Clock Clock
}

// ErrNoSource is Run's error when Options.Source is nil.
var ErrNoSource = errors.New("governor: no input source")

// Governor turns temperature, power and inference latency into the trainer's duty
// cycle. Create it with New; drive it with Run (or Step, in tests and simulations); read
// it from any goroutine with Current, Duty and Collector.
type Governor struct {
	cfg      Config
	src      InputSource
	onChange func(Decision)
	clk      Clock
	zones    map[string]bool // nil: all

	// Control state, written only by Step. mu guards it for Current, Duty and the
	// metrics; Step holds mu while it computes (a few hundred nanoseconds).
	mu            sync.Mutex
	state         State
	limit         Limit
	duty          float64
	temps, powers ring
	sinceCut      int       // samples since the last multiplicative cut
	thermal       bool      // the soft temperature limit is engaged
	power         bool      // the power limit is engaged (from 90 % of the budget)
	latency       bool      // the latency limit is engaged (from 90 % of it)
	stoppedAt     time.Time // when the current stop began
	stopHold      time.Duration
	reachedMax    bool // the duty cycle reached MaxDutyCycle since the last resume
	cur           Decision
	reported      Decision
	hasReported   bool
	changes       uint64
	stops         map[Limit]uint64
	changed       chan struct{} // closed and replaced when duty or state changes
}

// New returns a governor in state Resuming at MinDutyCycle: training starts gently and
// the first Step decides from real inputs. cfg must be valid.
func New(cfg Config, opts Options) (*Governor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Governor{
		cfg:      cfg,
		src:      opts.Source,
		onChange: opts.OnChange,
		clk:      clockOr(opts.Clock),
		state:    Resuming,
		duty:     cfg.MinDutyCycle,
		temps:    newRing(cfg.Window),
		powers:   newRing(cfg.Window),
		stopHold: cfg.MinStopped,
		sinceCut: cfg.Window,
		stops:    map[Limit]uint64{},
		changed:  make(chan struct{}),
	}
	if len(cfg.Zones) > 0 {
		g.zones = map[string]bool{}
		for _, z := range cfg.Zones {
			g.zones[z] = true
		}
	}
	g.cur = Decision{DutyCycle: g.duty, State: g.state, Reason: "starting"}
	return g, nil
}

// Current is the latest decision.
func (g *Governor) Current() Decision {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur
}

// Duty is the duty cycle now and a channel closed at its next change (of duty cycle or
// state). It makes the Governor a DutySource for Budget.
func (g *Governor) Duty() (float64, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur.DutyCycle, g.changed
}

// Run samples the source every Period, steps the governor and reports changes through
// OnChange, until ctx ends; it returns nil then. The first sample is taken at once.
func (g *Governor) Run(ctx context.Context) error {
	if g.src == nil {
		return ErrNoSource
	}
	var in Inputs
	next := g.clk.Now()
	for {
		g.src.Sample(&in)
		g.Step(g.clk.Now(), in)

		now := g.clk.Now()
		next = next.Add(g.cfg.Period)
		if !next.After(now) {
			// Late by a period or more (a stalled system, a suspended board): skip
			// the missed ticks instead of sampling in a burst.
			next = now.Add(g.cfg.Period)
		}
		t := g.clk.Timer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
	}
}

// Step applies one sample taken at now and returns the decision. Its result depends
// only on the configuration and the sequence of (now, inputs) since New, which is what
// makes the control law testable with recorded or simulated traces. A reportable change
// (state, limit, or the duty cycle moving by 0.05 or reaching the maximum) is passed to
// OnChange once, after the governor's lock is released. Step must not be called
// concurrently with itself or Run.
func (g *Governor) Step(now time.Time, in Inputs) Decision {
	g.mu.Lock()
	d := g.step(now, in)
	prevDuty, prevState := g.cur.DutyCycle, g.cur.State
	g.cur = d
	if d.DutyCycle != prevDuty || d.State != prevState {
		close(g.changed)
		g.changed = make(chan struct{})
	}
	report := !g.hasReported || d.State != g.reported.State || d.Limit != g.reported.Limit ||
		math.Abs(d.DutyCycle-g.reported.DutyCycle) >= reportDutyStep-1e-9 ||
		(d.DutyCycle != g.reported.DutyCycle && (d.DutyCycle == g.cfg.MaxDutyCycle || d.DutyCycle == g.cfg.MinDutyCycle))
	if report {
		g.reported, g.hasReported = d, true
		g.changes++
	}
	g.mu.Unlock()
	if report && g.onChange != nil {
		g.onChange(d)
	}
	return d
}

// observation is one sample reduced to what the control law uses.
type observation struct {
	haveTemp        bool
	tempRaw         float64 // hottest watched zone, this sample
	tempZone        string
	tempAvg         float64 // mean of the hottest-zone readings over Window
	havePower       bool
	powerAvg        float64
	haveLatency     bool
	latency, budget time.Duration // budget: LatencyFraction × frame period
	latencyRatio    float64       // latency / budget
}

func (g *Governor) observe(in Inputs) observation {
	var o observation
	for _, t := range in.Temps {
		if g.zones != nil && !g.zones[t.Zone] {
			continue
		}
		if math.IsNaN(t.C) {
			continue
		}
		if !o.haveTemp || t.C > o.tempRaw {
			o.haveTemp, o.tempRaw, o.tempZone = true, t.C, t.Zone
		}
	}
	if o.haveTemp {
		g.temps.push(o.tempRaw)
		o.tempAvg = g.temps.mean()
	}
	if g.cfg.PowerBudgetW > 0 && in.PowerW > 0 {
		g.powers.push(in.PowerW)
		o.havePower, o.powerAvg = true, g.powers.mean()
	}
	if in.Latency > 0 && in.FramePeriod > 0 {
		o.haveLatency = true
		o.latency = in.Latency
		o.budget = time.Duration(g.cfg.LatencyFraction * float64(in.FramePeriod))
		o.latencyRatio = float64(in.Latency) / float64(o.budget)
	}
	return o
}

// step is the control law; the package documentation says it in words.
func (g *Governor) step(now time.Time, in Inputs) Decision {
	c := &g.cfg
	o := g.observe(in)
	g.sinceCut++

	resumed := false
	if g.state == Stopped {
		if reason, ok := g.mayResume(now, o); !ok {
			return g.decide(now, 0, Stopped, g.limit, reason)
		}
		g.state, g.limit, g.duty = Resuming, LimitNone, c.MinDutyCycle
		g.reachedMax, g.sinceCut = false, c.Window
		resumed = true
	}

	// Hard limit, on the raw reading: one sample at the limit is enough, because a
	// wrong stop costs a little training and a late one costs a throttled SoC.
	if o.haveTemp && o.tempRaw >= c.HardLimitC {
		return g.stop(now, LimitTemperature, fmt.Sprintf(
			"temperature %.1f °C on %s reached the hard limit %g °C: training stopped until below %g °C",
			o.tempRaw, o.tempZone, c.HardLimitC, c.ResumeC))
	}

	// Which limits are engaged. Each engages at its threshold and releases only some
	// way below it, so that a reading that wobbles around a threshold holds one state.
	ceiling := c.MaxDutyCycle
	if o.haveTemp {
		g.thermal = engage(g.thermal, o.tempAvg, c.SoftLimitC, c.SoftLimitC-c.SoftHysteresisC)
		if o.tempAvg > c.SoftLimitC {
			// Proportional back-off: the duty cycle allowed falls linearly from max at
			// the soft limit to min at the hard limit.
			f := (c.HardLimitC - o.tempAvg) / (c.HardLimitC - c.SoftLimitC)
			ceiling = max(c.MinDutyCycle, c.MaxDutyCycle*f)
		}
	} else {
		g.thermal = false
	}
	if o.havePower {
		g.power = engage(g.power, o.powerAvg, nearFraction*c.PowerBudgetW, releaseFraction*c.PowerBudgetW)
	} else {
		g.power = false
	}
	if o.haveLatency {
		g.latency = engage(g.latency, o.latencyRatio, nearFraction, releaseFraction)
	}
	// Without frames there is no latency to judge; an engaged latency limit stays as it
	// was until frames come again.

	duty := g.duty
	switch {
	case o.haveLatency && o.latencyRatio > 1:
		// Inference comes first: halve at once, stop if already at the floor.
		if duty <= c.MinDutyCycle {
			return g.stop(now, LimitLatency, fmt.Sprintf(
				"inference latency %s over %s (%g of the %s frame period) at the minimum duty cycle: training stopped",
				o.latency, o.budget, c.LatencyFraction, in.FramePeriod))
		}
		duty = max(c.MinDutyCycle, duty*c.DecreaseFactor)
		g.sinceCut = 0
	case o.havePower && o.powerAvg >= c.PowerBudgetW && g.sinceCut >= c.Window:
		// The power average lags a cut by Window samples; cutting again before it has
		// caught up would count the same excess twice (TCP waits a round trip
		// between decreases for the same reason).
		if duty <= c.MinDutyCycle {
			return g.stop(now, LimitPower, fmt.Sprintf(
				"power %.1f W over the %g W budget at the minimum duty cycle: training stopped", o.powerAvg, c.PowerBudgetW))
		}
		duty = max(c.MinDutyCycle, duty*c.DecreaseFactor)
		g.sinceCut = 0
	case o.haveLatency && o.latencyRatio >= nearFraction,
		o.havePower && o.powerAvg >= nearFraction*c.PowerBudgetW,
		g.sinceCut < c.Window:
		// Near a limit, or a cut less than Window samples ago: hold.
	case resumed:
		// A resume starts at the floor; growth starts with the next sample.
	default:
		// Additive increase.
		duty = min(c.MaxDutyCycle, duty+c.IncreaseStep)
	}
	duty = min(duty, ceiling)

	var (
		state  State
		limit  Limit
		reason string
	)
	switch {
	case g.latency || (g.sinceCut < c.Window && g.limit == LimitLatency):
		state, limit = BackingOff, LimitLatency
		reason = fmt.Sprintf("inference latency %s against a limit of %s (%g of the %s frame period)",
			o.latency, o.budget, c.LatencyFraction, in.FramePeriod)
		if !o.haveLatency {
			reason = "no inference frames since the latency limit engaged"
		}
	case g.power || (g.sinceCut < c.Window && g.limit == LimitPower):
		state, limit = BackingOff, LimitPower
		reason = fmt.Sprintf("power %.1f W against a budget of %g W", o.powerAvg, c.PowerBudgetW)
	case g.thermal:
		state, limit = BackingOff, LimitTemperature
		reason = fmt.Sprintf("temperature %.1f °C (%s, averaged) against the soft limit %g °C: duty cycle at most %.2f",
			o.tempAvg, o.tempZone, c.SoftLimitC, ceiling)
	case g.sinceCut < c.Window:
		state, limit = BackingOff, g.limit
		reason = "holding after a cut: " + o.summary(c)
	case duty >= c.MaxDutyCycle:
		state, reason = Running, "clear: "+o.summary(c)
	default:
		state, reason = Resuming, "clear, duty cycle growing: "+o.summary(c)
	}
	if state == BackingOff && duty < g.duty {
		reason += fmt.Sprintf("; duty cycle cut to %.2f", duty)
	}
	if resumed {
		reason = "resumed after a stop; " + reason
	}
	return g.set(now, duty, state, limit, reason)
}

// engage is a threshold with hysteresis: on at or above on, off at or below off.
func engage(engaged bool, v, on, off float64) bool {
	if v >= on {
		return true
	}
	if v <= off {
		return false
	}
	return engaged
}

// mayResume reports whether a stop may end now, and if not, why.
func (g *Governor) mayResume(now time.Time, o observation) (string, bool) {
	c := &g.cfg
	if o.haveTemp && o.tempRaw >= c.HardLimitC {
		return fmt.Sprintf("temperature %.1f °C on %s at or above the hard limit %g °C: training stopped",
			o.tempRaw, o.tempZone, c.HardLimitC), false
	}
	switch g.limit {
	case LimitTemperature:
		if !o.haveTemp {
			// The sensor that stopped training is gone: stay stopped, the safe side for
			// optional work. The platform probe reports the missing zone.
			return "stopped for temperature and no temperature reading since: training stays stopped", false
		}
		if o.tempAvg > c.ResumeC {
			return fmt.Sprintf("temperature %.1f °C (averaged) not yet down to the resume temperature %g °C: training stopped",
				o.tempAvg, c.ResumeC), false
		}
	case LimitPower:
		if o.havePower && o.powerAvg >= nearFraction*c.PowerBudgetW {
			return fmt.Sprintf("power %.1f W with training stopped, still near the %g W budget: training stopped",
				o.powerAvg, c.PowerBudgetW), false
		}
	case LimitLatency:
		if o.haveLatency && o.latencyRatio >= nearFraction {
			return fmt.Sprintf("inference latency %s with training stopped, still near its %s limit: inference alone is too slow; training stopped",
				o.latency, o.budget), false
		}
	}
	if wait := g.stopHold - now.Sub(g.stoppedAt); wait > 0 {
		return fmt.Sprintf("%s limit clear; training stays stopped for %s more (minimum stop %s)",
			g.limit, wait.Round(time.Second), g.stopHold), false
	}
	return "", true
}

func (g *Governor) stop(now time.Time, limit Limit, reason string) Decision {
	// A stop after a resume that never got back to full speed means the limit is not
	// training's doing alone: hold longer each time (up to 16 × MinStopped), so the
	// trainer does not flap between stopped and resuming.
	if !g.stoppedAt.IsZero() && !g.reachedMax {
		g.stopHold = min(2*g.stopHold, maxStopHoldMultiplier*g.cfg.MinStopped)
	}
	g.stoppedAt = now
	g.thermal, g.power, g.latency = false, false, false
	g.stops[limit]++
	return g.set(now, 0, Stopped, limit, reason)
}

func (g *Governor) set(now time.Time, duty float64, state State, limit Limit, reason string) Decision {
	g.duty, g.state, g.limit = duty, state, limit
	if state == Running {
		g.reachedMax = true
		g.stopHold = g.cfg.MinStopped
	}
	return g.decide(now, duty, state, limit, reason)
}

func (g *Governor) decide(now time.Time, duty float64, state State, limit Limit, reason string) Decision {
	return Decision{DutyCycle: duty, State: state, Limit: limit, Reason: reason, At: now}
}

func (o observation) summary(c *Config) string {
	s := ""
	if o.haveTemp {
		s = fmt.Sprintf("temperature %.1f °C (%s)", o.tempAvg, o.tempZone)
	} else {
		s = "no temperature reading"
	}
	if o.havePower {
		s += fmt.Sprintf(", power %.1f W of %g W", o.powerAvg, c.PowerBudgetW)
	}
	if o.haveLatency {
		s += fmt.Sprintf(", inference latency %s of %s", o.latency, o.budget)
	} else {
		s += ", no inference latency"
	}
	return s
}

// ring is a fixed-size window of the last n samples.
type ring struct {
	v    []float64
	next int
	full bool
}

func newRing(n int) ring { return ring{v: make([]float64, n)} }

func (r *ring) push(x float64) {
	r.v[r.next] = x
	r.next++
	if r.next == len(r.v) {
		r.next, r.full = 0, true
	}
}

func (r *ring) mean() float64 {
	n := r.next
	if r.full {
		n = len(r.v)
	}
	if n == 0 {
		return 0
	}
	var s float64
	for _, x := range r.v[:n] {
		s += x
	}
	return s / float64(n)
}

// Stats are counters since New, for tests and `doctor`.
type Stats struct {
	Changes uint64           // reported changes
	Stops   map[Limit]uint64 // stops by limit
}

// Stats returns the counters.
func (g *Governor) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := Stats{Changes: g.changes, Stops: map[Limit]uint64{}}
	for _, l := range stopLimits {
		st.Stops[l] = g.stops[l]
	}
	return st
}
