package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/stereo"
	"github.com/edgedepth/edgedepth/jetson/governor"
	"github.com/edgedepth/edgedepth/jetson/platform"
	"github.com/edgedepth/edgedepth/runtime/config"
	"github.com/edgedepth/edgedepth/telemetry"
)

// The training budget governor in the daemon (training.governor): jetson/governor
// decides, once a period, how much of the time the learner may compute, from the SoC's
// temperature and power (on a Jetson) and the inference latency against the camera's
// frame period (everywhere); this file feeds it and carries its decisions out.
//
// Inputs. The depth actor reports each pair's inference time (estimation to the
// messages handed to the publisher: the time the actor is busy with it) to a
// governor.LatencyRecorder; that, not capture → published, is the latency the
// governor weighs against latency_fraction of the frame period, because the camera's
// and the network's transport delay (RTSP easily adds 100 ms) does not change with
// training while the actor's busy time does, and it is what makes pairs queue once
// it exceeds the frame period. The frame period is the configured one where the
// configuration states it (source.sim.fps, source.sequence.fps,
// source.rtsp.pairing.frame_period); else for RTSP the pairing's measured period (the
// slower camera's, or the side-by-side stream's rate); else the rate at which pairs
// arrive from the source. Temperatures and power come from jetson/platform's Sampler
// only when the platform probe says this is a Jetson: a desktop's thermal zones mean
// nothing against an Orin's limits, so elsewhere the governor runs on latency alone.
//
// Outputs. Every change of the decision is applied to the learner: a duty cycle
// through SetDuty, a stop as Pause, the end of a stop as Resume. An operator outranks
// the governor: after training/pause the governor never resumes the learner (only
// training/resume does, and only into a duty cycle the governor allows: a thermal
// stop holds against an operator's resume too); training/set duty becomes a ceiling
// on the governor's duty cycle. Each reportable change (the governor's rule: state,
// limit, or the duty cycle moving by 0.1 or reaching its bounds) is an MQTT `events`
// message of kind "training_budget"; the governor's Collector exports the duty cycle,
// the state and the stops on /metrics, and the status message's training part
// carries the decision as "budget".
//
// Lifecycle. startGovernor builds it after the learner (nothing runs); Run starts
// runGovernor before the learner under the same supervision, and both stop with the
// pipeline; the Sampler's files are closed with the other closers after the pipeline
// has stopped.

// budgetLearner is what the governor steers; *trainer.Continual is one.
type budgetLearner interface {
	SetDuty(duty float64) error
	Pause()
	Resume()
}

// trainingGovernor joins the governor to its inputs, the learner and the events topic.
type trainingGovernor struct {
	g       *governor.Governor
	latency *governor.LatencyRecorder
	src     governor.InputSource
	sampler *platform.Sampler // nil off a Jetson
	learner budgetLearner
	log     *slog.Logger
	// publish sends an event; nil: logged only (MQTT off).
	publish func(telemetry.Event)
	// applied, when set (tests), is called after each decision has reached the learner.
	applied func(governor.Decision)

	mu             sync.Mutex
	paused         bool    // the learner is paused: the governor stopped it, an operator paused it, or both
	operatorPaused bool    // training/pause, until training/resume
	operatorDuty   float64 // training/set duty: a ceiling; 0 none
	duty           float64 // the duty cycle last given to the learner; 0 none yet
}

// governorOptions are what newTrainingGovernor needs.
type governorOptions struct {
	Config governor.Config
	// Root is the filesystem root the platform probe and sampler read ("/").
	Root string
	// FramePeriod gives the camera's frame period when the governor samples; 0: unknown
	// (the latency limit is off until it is known).
	FramePeriod func() time.Duration
	Learner     budgetLearner
	Log         *slog.Logger
	Publish     func(telemetry.Event)
}

// newTrainingGovernor probes the platform, opens the Sampler on a Jetson, builds the
// governor and gives the learner the governor's first duty cycle (the minimum: training
// starts gently). It starts nothing; the caller owns Close.
func newTrainingGovernor(o governorOptions) (*trainingGovernor, error) {
	t := &trainingGovernor{latency: &governor.LatencyRecorder{}, learner: o.Learner, log: o.Log, publish: o.Publish}
	var inputs string
	switch rep := platform.Probe(o.Root); rep.State {
	case platform.Loaded:
		t.sampler = platform.NewSampler(o.Root)
		var tel platform.Telemetry
		t.sampler.Sample(&tel)
		inputs = fmt.Sprintf("%d thermal zones, %d power rails and the inference latency", len(tel.Temps), len(tel.Rails))
	default:
		inputs = fmt.Sprintf("the inference latency alone (%s: %s)", rep.State, rep.Reason)
	}
	t.src = &budgetSource{board: governor.BoardSource{Sampler: t.sampler, Latency: t.latency}, period: o.FramePeriod}
	g, err := governor.New(o.Config, governor.Options{Source: t.src, OnChange: t.announce})
	if err != nil {
		t.Close()
		return nil, err
	}
	t.g = g
	t.apply(g.Current())
	c := o.Config
	t.log.Info("training governor on", "inputs", inputs, "max_duty_cycle", c.MaxDutyCycle, "min_duty_cycle", c.MinDutyCycle,
		"soft_limit_c", c.SoftLimitC, "hard_limit_c", c.HardLimitC, "resume_c", c.ResumeC, "power_budget_w", c.PowerBudgetW,
		"latency_fraction", c.LatencyFraction, "period", c.Period)
	return t, nil
}

// Close releases the Sampler's files; call it after run has returned.
func (t *trainingGovernor) Close() error {
	if t.sampler == nil {
		return nil
	}
	return t.sampler.Close()
}

// run runs the governor's loop and carries every change of its decision to the learner
// until ctx ends; it returns nil then.
func (t *trainingGovernor) run(ctx context.Context) error {
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr = t.g.Run(gctx)
	}()
	t.follow(ctx, done)
	stop()
	<-done
	if ctx.Err() != nil {
		return nil
	}
	if runErr == nil {
		runErr = errors.New("training governor: stopped unexpectedly")
	}
	return runErr
}

// follow applies the governor's decision to the learner, and again at each change of
// its duty cycle or state (every one, not only those reported as events), until ctx
// ends or done is closed.
func (t *trainingGovernor) follow(ctx context.Context, done <-chan struct{}) {
	for {
		_, changed := t.g.Duty() // before Current: a change in between closes it
		t.apply(t.g.Current())
		select {
		case <-changed:
		case <-ctx.Done():
			return
		case <-done:
			return
		}
	}
}

// apply brings the learner in line with decision dec.
func (t *trainingGovernor) apply(dec governor.Decision) {
	t.mu.Lock()
	t.enforceLocked(dec)
	t.mu.Unlock()
	if t.applied != nil {
		t.applied(dec)
	}
}

// enforceLocked pauses the learner while the governor stops training or an operator
// paused it, and otherwise runs it at the lower of the governor's duty cycle and the
// operator's ceiling; it calls the learner only for what changes.
func (t *trainingGovernor) enforceLocked(dec governor.Decision) {
	stopped := dec.State == governor.Stopped || !(dec.DutyCycle > 0)
	if !stopped {
		duty := dec.DutyCycle
		if t.operatorDuty > 0 {
			duty = min(duty, t.operatorDuty)
		}
		if duty != t.duty {
			if err := t.learner.SetDuty(duty); err != nil {
				t.log.Error("the learner refused the governor's duty cycle", "duty", duty, "err", err)
			} else {
				t.duty = duty
			}
		}
	}
	if want := stopped || t.operatorPaused; want != t.paused {
		if want {
			t.learner.Pause()
		} else {
			t.learner.Resume()
		}
		t.paused = want
	}
}

// announce publishes a reported change as a "training_budget" event and logs it. It
// runs on the governor's goroutine and never blocks (the publisher queues).
func (t *trainingGovernor) announce(dec governor.Decision) {
	t.mu.Lock()
	opPaused := t.operatorPaused
	t.mu.Unlock()
	level := slog.LevelInfo
	if dec.State == governor.Stopped {
		level = slog.LevelWarn
	}
	t.log.Log(context.Background(), level, "training budget", "state", dec.State.String(), "duty_cycle", round(dec.DutyCycle, 1e3),
		"limit", string(dec.Limit), "reason", dec.Reason, "operator_paused", opPaused)
	if t.publish == nil {
		return
	}
	fields := map[string]any{
		"duty_cycle": round(dec.DutyCycle, 1e3),
		"state":      dec.State.String(),
		"reason":     dec.Reason,
	}
	if dec.Limit != governor.LimitNone {
		fields["limit"] = string(dec.Limit)
	}
	if opPaused {
		fields["operator_paused"] = true
	}
	t.publish(telemetry.Event{Time: dec.At.UTC(), Kind: "training_budget",
		Message: fmt.Sprintf("training %s at duty cycle %.2f: %s", dec.State, dec.DutyCycle, dec.Reason), Fields: fields})
}

// operatorPause is training/pause: the learner pauses and stays paused whatever the
// governor decides, until operatorResume.
func (t *trainingGovernor) operatorPause() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.operatorPaused = true
	t.enforceLocked(t.g.Current())
}

// operatorResume is training/resume: it lifts the operator's pause. The learner
// resumes unless the governor has stopped training; then it returns why, and the
// learner resumes when the governor does.
func (t *trainingGovernor) operatorResume() (heldBy string) {
	dec := t.g.Current()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.operatorPaused = false
	t.enforceLocked(dec)
	if t.paused {
		return dec.Reason
	}
	return ""
}

// setOperatorDuty is training/set duty: a ceiling on the governor's duty cycle, in (0, 1].
func (t *trainingGovernor) setOperatorDuty(duty float64) error {
	if !(duty > 0 && duty <= 1) {
		return fmt.Errorf("duty %g: must be in (0, 1]", duty)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.operatorDuty = duty
	t.enforceLocked(t.g.Current())
	return nil
}

// status is the governor's part of the status message.
func (t *trainingGovernor) status() *telemetry.TrainingBudget {
	dec := t.g.Current()
	t.mu.Lock()
	defer t.mu.Unlock()
	return &telemetry.TrainingBudget{
		DutyCycle: round(dec.DutyCycle, 1e3), State: dec.State.String(), Limit: string(dec.Limit), Reason: dec.Reason,
		OperatorPaused: t.operatorPaused, OperatorDuty: t.operatorDuty,
	}
}

// budgetSource is the governor's InputSource: the board's readings and the inference
// latency (governor.BoardSource) with the frame period brought up to date first.
type budgetSource struct {
	board  governor.BoardSource
	period func() time.Duration
}

func (s *budgetSource) Sample(dst *governor.Inputs) {
	if s.period != nil {
		s.board.Latency.SetFramePeriod(s.period())
	}
	s.board.Sample(dst)
}

// startGovernor builds the training budget governor when the learner runs and
// training.governor.enabled is set (the default). A governor that cannot be built
// leaves a health warning; the learner then runs at training.duty.
func (d *Daemon) startGovernor(src camera.Source) {
	if d.learner == nil || !d.cfg.Training.Governor.Enabled {
		return
	}
	t, err := newTrainingGovernor(governorOptions{
		Config:      d.cfg.Training.GovernorConfig(),
		Root:        "/",
		FramePeriod: d.framePeriod(src),
		Learner:     d.learner,
		Log:         d.log.With("component", "training governor"),
		Publish:     d.publishEvent,
	})
	if err != nil {
		d.health.Set("training governor", fmt.Sprintf("training.governor: %v: training runs at training.duty without it", err))
		d.log.Error("training governor off", "component", "training governor", "err", err)
		return
	}
	d.gov = t
	d.closers = append(d.closers, t)
	d.collectors = append(d.collectors, t.g.Collector())
}

// runGovernor is the governor's part under supervision.
func (d *Daemon) runGovernor(ctx context.Context) error { return d.gov.run(ctx) }

// publishEvent queues ev on the events topic when MQTT is on.
func (d *Daemon) publishEvent(ev telemetry.Event) {
	if d.publisher != nil {
		d.publisher.PublishJSON(d.topics.Events(), ev, 1, false)
	}
}

// observeInference gives the governor one pair's inference time; the depth actor calls
// it for every pair (a lock and a store).
func (d *Daemon) observeInference(took time.Duration) {
	if d.gov != nil {
		d.gov.latency.Observe(took)
	}
}

// budgetStatus is the governor's part of the training status; nil when it is off.
func (d *Daemon) budgetStatus() *telemetry.TrainingBudget {
	if d.gov == nil {
		return nil
	}
	return d.gov.status()
}

// pauseLearner is training/pause: with the governor, a pause it will not undo.
func (d *Daemon) pauseLearner() {
	if d.gov != nil {
		d.gov.operatorPause()
		return
	}
	d.learner.Pause()
}

// resumeLearner is training/resume: with the governor, training resumes when the
// governor allows it too.
func (d *Daemon) resumeLearner() {
	if d.gov != nil {
		if why := d.gov.operatorResume(); why != "" {
			d.log.Info("training/resume: the operator's pause is lifted; the training governor still holds training stopped",
				"component", "training governor", "reason", why)
		}
		return
	}
	d.learner.Resume()
}

// setLearnerDuty is training/set duty: with the governor, a ceiling on its duty cycle.
func (d *Daemon) setLearnerDuty(duty float64) error {
	if d.gov != nil {
		return d.gov.setOperatorDuty(duty)
	}
	return d.learner.SetDuty(duty)
}

// framePeriod returns what tells the governor the camera's frame period: the
// configured period where the configuration states it, else the RTSP pairing's
// measured one, else the measured rate at which pairs arrive. It is called from the
// governor's goroutine only, once a period.
func (d *Daemon) framePeriod(src camera.Source) func() time.Duration {
	return sourceFramePeriod(d.cfg.Source, src, d.stats.framesIn.Load, time.Now)
}

func sourceFramePeriod(sc config.Source, src camera.Source, pairsIn func() uint64, now func() time.Time) func() time.Duration {
	fixed := func(p time.Duration) func() time.Duration { return func() time.Duration { return p } }
	switch {
	case sc.Kind == "sim" && sc.Sim.FPS > 0:
		return fixed(periodOfFPS(sc.Sim.FPS))
	case sc.Kind == "sequence" && sc.Sequence.FPS > 0:
		return fixed(periodOfFPS(sc.Sequence.FPS))
	case sc.Kind == "rtsp" && sc.RTSP.Pairing.FramePeriod > 0:
		return fixed(sc.RTSP.Pairing.FramePeriod)
	}
	if s, ok := src.(interface{ Stats() stereo.Stats }); ok {
		return func() time.Duration { return stereoFramePeriod(s.Stats()) }
	}
	a := &arrivalPeriod{count: pairsIn, now: now}
	return a.period
}

func periodOfFPS(fps float64) time.Duration {
	return time.Duration(math.Round(float64(time.Second) / fps))
}

// stereoFramePeriod is the frame period a stereo source measures: the slower camera's
// (pairs come at its rate), or the side-by-side stream's; 0 while too few frames came.
func stereoFramePeriod(st stereo.Stats) time.Duration {
	if p := max(st.Pairing.PeriodLeft, st.Pairing.PeriodRight); p > 0 {
		return p
	}
	if fps := min(st.Left.FPS, st.Right.FPS); fps > 0 {
		return periodOfFPS(fps)
	}
	if fps := max(st.Left.FPS, st.Right.FPS); fps > 0 && st.SideBySide {
		return periodOfFPS(fps)
	}
	return 0
}

// arrivalPeriod measures the frame period from the pairs a source hands over: the time
// between two calls over the pairs that arrived in between, smoothed over about four
// calls. Calls with fewer than two pairs (a stalled camera) leave it as it was.
type arrivalPeriod struct {
	count  func() uint64
	now    func() time.Time
	lastN  uint64
	lastAt time.Time
	est    time.Duration
}

func (a *arrivalPeriod) period() time.Duration {
	n, at := a.count(), a.now()
	if !a.lastAt.IsZero() && n >= a.lastN+2 {
		p := at.Sub(a.lastAt) / time.Duration(n-a.lastN)
		if a.est == 0 {
			a.est = p
		} else {
			a.est += (p - a.est) / 4
		}
	}
	a.lastN, a.lastAt = n, at
	return a.est
}
