package trainer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cam "github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/health"
	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
)

// ContinualConfig configures a Continual learner. The zero value of a field means
// its default unless the field says otherwise.
type ContinualConfig struct {
	// Sampler turns the live stream into samples (training resolution, motion
	// test, triplet interval, validation hold-out).
	Sampler SamplerConfig
	// BatchSize is the number of samples a step. Default 4.
	BatchSize int
	// Signals: temporal, stereo or both (the zero value, the default).
	Signals Signals
	// NoAugment turns off Monodepth2's colour jitter and flips (on by default).
	NoAugment bool
	// RecentSamples and ReservoirSamples size the replay buffer: the newest samples
	// and a uniform reservoir of older ones. Defaults 32 and 256, negative means none
	// (0 is the default); host memory is at
	// most (RecentSamples + ReservoirSamples + ValidationSamples) · SampleBytes, 63 MB
	// at 128x96 with the defaults and ground truth.
	RecentSamples, ReservoirSamples int
	// ReservoirShare is the fraction of a batch drawn from the reservoir, in [0, 1].
	// Default 0.5; negative means 0.
	ReservoirShare float64
	// ValidationSamples bounds the held-out set the guard judges on: half the newest
	// held-out samples (where the robot is) and half a uniform reservoir of older ones
	// (where it has been, so that forgetting shows). Default 32.
	ValidationSamples int
	// MinValidation is how many held-out samples the guard needs before it judges;
	// until then the learner trains and the guard waits. Default 8.
	MinValidation int
	// GuardEvery is the number of steps between two judgements of the guard.
	// Default 50.
	GuardEvery int
	// GuardTolerance lets the guard promote weights whose held-out photometric error
	// exceeds the active version's by at most this much (absolute). Default 0: never
	// worse.
	GuardTolerance float64
	// Duty is the fraction of time the learner computes: after work that took d it
	// rests d·(1−Duty)/Duty. In (0, 1]; default 0.3.
	Duty float64
	// Optim: Adam's learning rate (0: 1e-4) and L2SP, the pull towards the weights
	// the learner started from (0 turns it off; no default).
	Optim Optim
	// BatchNormTraining trains batch norm with batch statistics (a model learning
	// from scratch); false keeps it frozen (fine-tuning a trained model with small
	// batches: the default).
	BatchNormTraining bool
	// Seed drives batch draws, augmentation and the reservoirs.
	Seed uint64
	// Note describes the stream in the manifest entries of the versions written.
	Note string
}

// WithDefaults fills the zero fields.
func (c ContinualConfig) WithDefaults() ContinualConfig {
	c.Sampler = c.Sampler.WithDefaults()
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.BatchSize, 4)
	def(&c.RecentSamples, 32)
	def(&c.ReservoirSamples, 256)
	def(&c.ValidationSamples, 32)
	def(&c.MinValidation, 8)
	def(&c.GuardEvery, 50)
	if c.ReservoirShare == 0 {
		c.ReservoirShare = 0.5 // negative stays: 0 where used
	}
	if c.Duty == 0 {
		c.Duty = 0.3
	}
	if c.Optim.LR == 0 {
		c.Optim.LR = 1e-4
	}
	return c
}

// Validate names the first field out of range (after WithDefaults).
func (c ContinualConfig) Validate() error {
	if err := c.Sampler.Validate(); err != nil {
		return err
	}
	switch {
	case c.BatchSize < 1:
		return fmt.Errorf("trainer: continual: batch size %d: must be at least 1", c.BatchSize)
	case c.Signals < SignalsBoth || c.Signals > SignalsStereo:
		return fmt.Errorf("trainer: continual: signals %v: use SignalsBoth, SignalsTemporal or SignalsStereo", c.Signals)
	case max(c.RecentSamples, 0)+max(c.ReservoirSamples, 0) < c.BatchSize:
		return fmt.Errorf("trainer: continual: replay of %d recent and %d reservoir samples: must hold at least a batch (%d)",
			c.RecentSamples, c.ReservoirSamples, c.BatchSize)
	case !(c.ReservoirShare <= 1):
		return fmt.Errorf("trainer: continual: reservoir share %g: must be in [0, 1]", c.ReservoirShare)
	case c.ValidationSamples < 2:
		return fmt.Errorf("trainer: continual: validation set of %d samples: must be at least 2", c.ValidationSamples)
	case c.MinValidation < 1 || c.MinValidation > c.ValidationSamples:
		return fmt.Errorf("trainer: continual: min validation %d: must be in [1, validation samples = %d]", c.MinValidation, c.ValidationSamples)
	case c.GuardEvery < 1:
		return fmt.Errorf("trainer: continual: guard every %d steps: must be at least 1", c.GuardEvery)
	case !(c.GuardTolerance >= 0) || math.IsInf(c.GuardTolerance, 0):
		return fmt.Errorf("trainer: continual: guard tolerance %g: must be ≥ 0", c.GuardTolerance)
	case !(c.Duty > 0 && c.Duty <= 1):
		return fmt.Errorf("trainer: continual: duty %g: must be in (0, 1]", c.Duty)
	}
	return nil
}

// Clock is the time source of the duty cycle: the wall clock by default, a fake in
// tests.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx ends and then returns ctx's error.
	Sleep(ctx context.Context, d time.Duration) error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// GuardDecision is one judgement of the guard: the learner's weights against the
// active version's on the held-out samples.
type GuardDecision struct {
	Time time.Time
	// Promoted: the learner's weights became the active version. Otherwise they
	// were rejected and the learner rolled back to the active version.
	Promoted bool
	// Version is the store version the learner's weights were saved as (active if
	// promoted, rejected if not); 0 when the store could not be written (SaveErr).
	Version int
	// Previous is the active version before the decision (0: the learner's starting
	// weights were not in the store, or an earlier promotion was kept in memory only).
	Previous int
	// CandidateError and ActiveError are the held-out photometric errors of the
	// learner's weights and of the active version's (lower is better).
	CandidateError, ActiveError float64
	// Samples is the size of the held-out set judged on; Steps the learner's steps
	// since the base.
	Samples, Steps int
	// SaveErr is set when the store could not be written: a promotion then holds in
	// memory only (the learner goes on from it and the next judgement tries again).
	SaveErr error
}

// Event names the decision as the MQTT events topic does: "model_promoted" or
// "model_rolled_back".
func (g GuardDecision) Event() string {
	if g.Promoted {
		return "model_promoted"
	}
	return "model_rolled_back"
}

func (g GuardDecision) String() string {
	verb := "promoted"
	if !g.Promoted {
		verb = "rejected (rolled back to the active version)"
	}
	s := fmt.Sprintf("guard: candidate %s: held-out photometric error %.5f vs active %.5f on %d samples, after %d steps",
		verb, g.CandidateError, g.ActiveError, g.Samples, g.Steps)
	if g.SaveErr != nil {
		s += fmt.Sprintf(" (not saved: %v)", g.SaveErr)
	}
	return s
}

// ContinualStatus is a snapshot of a Continual learner.
type ContinualStatus struct {
	// State is "stopped" (Run is not running), "waiting" (for enough samples),
	// "learning" or "paused".
	State string
	// Steps are the optimisation steps this learner took; SkippedNonFinite the steps
	// skipped for a NaN or Inf loss or gradient (weights untouched).
	Steps, SkippedNonFinite int
	// Loss is the loss of the last step.
	Loss float64
	// Promotions and Rollbacks count the guard's decisions; LastGuard is the latest
	// (nil before the first).
	Promotions, Rollbacks int
	LastGuard             *GuardDecision
	// ActiveVersion is the store version the learner's last promoted weights were
	// saved as (0: not in the store).
	ActiveVersion int
	// LR and Duty are the settings in force; MeasuredDuty is the fraction of time
	// spent computing while learning (pauses and waits for samples excluded).
	LR, Duty, MeasuredDuty float64
	// FramesOffered reached the sampler; FramesDropped were offered while it was
	// busy and dropped (counted, never waited for); FramesRejected were unusable.
	FramesOffered, FramesDropped, FramesRejected uint64
	// Sampler counts what the sampler did with its frames.
	Sampler SamplerStats
	// Recent, Reservoir and Validation are the samples held; ReplayBytes their memory.
	Recent, Reservoir, Validation int
	ReplayBytes                   int
	// Degraded says what is wrong ("model store not writable: ..."); "" when healthy.
	Degraded string
}

// Health components the learner reports under.
const (
	// HealthModelStore is set while the model store cannot be written.
	HealthModelStore = "model store"
)

// ShutdownNote starts the manifest note of the checkpoint a learner writes when it
// stops (see LatestShutdownCheckpoint).
const ShutdownNote = "continual: at shutdown, not yet judged"

// Continual is the learner that keeps training the networks on the robot, from the
// live stream, without ever making depth worse: a Sampler cuts the stream into
// samples (skipping a resting rig), holds every few out for validation, and fills a
// ReplayBuffer of recent samples and a reservoir of older keyframes; a duty-cycled
// loop trains on batches mixed from both, with L2-SP pulling towards the weights it
// started from; every GuardEvery steps the guard evaluates the learner's weights and
// the active version's on the held-out samples and promotes the learner's (store:
// add a candidate, judge, activate) only if their photometric error is not worse,
// else rejects them and rolls the learner back to the active version.
//
// Concurrency: Offer never blocks (the inference path calls it); Pause, Resume,
// SetLR, SetDuty and Status are safe from any goroutine. Run owns the backend and the
// model: nothing else may use them while it runs. AddFrame and TrainStep drive the
// same work synchronously (tests, offline replay) and must not overlap Run.
//
// Lifecycle: NewContinual prepares (it starts nothing); Run samples and trains until
// its context ends, then writes the learner's weights as a candidate (ShutdownNote)
// and returns nil. Run may be called again after it returned (a supervisor restart):
// the buffers and counters carry over.
type Continual struct {
	// Log receives decisions and problems; nil discards them.
	Log *slog.Logger
	// Health, when set, carries the HealthModelStore warning.
	Health *health.Tracker
	// OnGuard, when set, is called with every decision of the guard, on Run's
	// goroutine: it must not block.
	OnGuard func(GuardDecision)
	// Clock paces the duty cycle; nil is the wall clock.
	Clock Clock

	cfg     ContinualConfig
	b       tensor.Backend
	m       *monodepth2.Model
	store   *Store
	tr      *Trainer
	aug     *Augment
	rng     *rand.Rand
	sampler *Sampler
	replay  *ReplayBuffer
	val     *ReplayBuffer

	// Test seams: the unit of work of the duty-cycled loop, and the held-out error
	// of the model's current weights.
	work     func(ctx context.Context) (bool, error)
	validate func(ctx context.Context, batches []*HostBatch) (float64, error)
	// Test hooks, nil in production: every state the loop enters, and the sample
	// IDs of every batch trained on.
	onState func(string)
	onBatch func(ids []string)

	// workMu serialises the learner's work with an operator's model commands
	// (Snapshot, Activate), which touch the same weights.
	workMu sync.Mutex

	frames  chan cam.StereoFrame
	sampled chan struct{} // a sample arrived (capacity 1)
	wake    chan struct{} // a setting changed (capacity 1)
	running atomic.Bool
	paused  atomic.Bool

	offered, dropped, rejected atomic.Uint64

	// Owned by the goroutine running the learner's work.
	active        []nn.NamedTensor // host copy of the active weights
	activeVersion int
	baseSteps     int // steps of the version the learner started from
	sinceGuard    int // steps since the last judgement
	sinceSave     int // steps since the weights last reached the store

	mu         sync.Mutex // guards what Status reads
	lr, duty   float64
	state      string
	loss       float64
	steps      int
	skipped    int
	promotions int
	rollbacks  int
	lastGuard  *GuardDecision
	busy, idle time.Duration
	degraded   string
	samplerSt  SamplerStats
	pubActive  int
}

// NewContinual prepares a learner of model m on backend b that saves into store. m
// holds the weights to start from: those of store version from (its Version 0 means
// random or otherwise unsaved weights, which the guard then treats as the active
// ones). They become the L2-SP anchor and the guard's first active version.
func NewContinual(b tensor.Backend, m *monodepth2.Model, store *Store, from Version, cfg ContinualConfig) (*Continual, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("trainer: continual: no model store")
	}
	sampler, err := NewSampler(cfg.Sampler)
	if err != nil {
		return nil, err
	}
	replay, err := NewReplayBuffer(max(cfg.RecentSamples, 0), max(cfg.ReservoirSamples, 0), cfg.Seed^0x5eed)
	if err != nil {
		return nil, err
	}
	val, err := NewReplayBuffer(cfg.ValidationSamples/2, cfg.ValidationSamples-cfg.ValidationSamples/2, cfg.Seed^0x7a1)
	if err != nil {
		return nil, err
	}
	tr, err := NewTrainer(b, m, cfg.Optim)
	if err != nil {
		return nil, err
	}
	active, err := m.Params.Export(b)
	if err != nil {
		return nil, fmt.Errorf("trainer: continual: %w", err)
	}
	c := &Continual{
		cfg: cfg, b: b, m: m, store: store, tr: tr,
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0xc0a7)),
		sampler: sampler, replay: replay, val: val,
		frames:  make(chan cam.StereoFrame, 2),
		sampled: make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
		active:  active, activeVersion: from.Version, baseSteps: from.Steps,
		lr: cfg.Optim.LR, duty: cfg.Duty, state: "stopped", pubActive: from.Version,
	}
	if !cfg.NoAugment {
		a := DefaultAugment()
		c.aug = &a
	}
	c.work = c.TrainStep
	c.validate = c.heldOutError
	return c, nil
}

// Config is the learner's configuration with defaults filled.
func (c *Continual) Config() ContinualConfig { return c.cfg }

// ResumeFrom makes the learner continue from weights ts of store version v (a checkpoint
// written at the last shutdown) instead of the active version it was made with; the
// L2-SP anchor and the guard's active version stay. Call it before Run.
func (c *Continual) ResumeFrom(ts []nn.NamedTensor, v Version) error {
	if err := c.m.Params.Load(c.b, v.File, "", ts, nil); err != nil {
		return fmt.Errorf("trainer: continual: resume from version %d: %w", v.Version, err)
	}
	c.tr.SetSteps(max(0, v.Steps-c.baseSteps))
	c.mu.Lock()
	c.steps = c.tr.Steps()
	c.mu.Unlock()
	return nil
}

// LatestShutdownCheckpoint returns the version a learner wrote when it last stopped,
// if it is the store's newest version, has not been judged and descends from the
// active version: the weights to ResumeFrom. Anything else (a promotion or an
// operator's rollback since) means starting from the active version.
func LatestShutdownCheckpoint(s *Store) (Version, bool) {
	vs := s.List()
	a, ok := s.Active()
	if len(vs) == 0 || !ok {
		return Version{}, false
	}
	v := vs[len(vs)-1]
	if v.State != StateCandidate || v.ValidationError != nil || v.Parent != a.Version || !strings.HasPrefix(v.Note, ShutdownNote) {
		return Version{}, false
	}
	return v, true
}

// Offer hands the learner the next rectified stereo pair of the live stream. It never
// blocks: when the sampler is still busy with earlier pairs the pair is dropped and
// counted. While paused, pairs are ignored.
func (c *Continual) Offer(f cam.StereoFrame) {
	if c.paused.Load() {
		return
	}
	select {
	case c.frames <- f:
		c.offered.Add(1)
	default:
		c.dropped.Add(1)
	}
}

// AddFrame runs the sampler on f on the calling goroutine and files the samples it
// yields (training or held out). It returns how many samples it added. Not to be used
// while Run runs (Run's sampler takes the frames given to Offer).
func (c *Continual) AddFrame(f cam.StereoFrame) (int, error) {
	samples, validation, err := c.sampler.Push(f)
	c.mu.Lock()
	c.samplerSt = c.sampler.Stats()
	c.mu.Unlock()
	if err != nil {
		c.rejected.Add(1)
		return 0, err
	}
	for _, s := range samples {
		if validation {
			c.val.Add(s)
		} else {
			c.replay.Add(s)
		}
	}
	if len(samples) > 0 && !validation {
		select {
		case c.sampled <- struct{}{}:
		default:
		}
	}
	return len(samples), nil
}

// Pause stops training after the current step (and sampling): the networks and
// buffers are kept. Resume continues.
func (c *Continual) Pause() {
	c.paused.Store(true)
	c.notify()
}

// Resume continues after Pause.
func (c *Continual) Resume() {
	c.paused.Store(false)
	c.notify()
}

// SetLR sets Adam's learning rate from the next step on.
func (c *Continual) SetLR(lr float64) error {
	if !(lr > 0) || math.IsInf(lr, 0) {
		return fmt.Errorf("trainer: continual: learning rate %g: must be positive", lr)
	}
	c.mu.Lock()
	c.lr = lr
	c.mu.Unlock()
	c.notify()
	return nil
}

// SetDuty sets the fraction of time the learner computes, in (0, 1], from the next
// rest on.
func (c *Continual) SetDuty(duty float64) error {
	if !(duty > 0 && duty <= 1) {
		return fmt.Errorf("trainer: continual: duty %g: must be in (0, 1]", duty)
	}
	c.mu.Lock()
	c.duty = duty
	c.mu.Unlock()
	c.notify()
	return nil
}

func (c *Continual) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Status returns a snapshot; safe from any goroutine.
func (c *Continual) Status() ContinualStatus {
	recent, reservoir := c.replay.Len()
	vr, vres := c.val.Len()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ContinualStatus{
		State: c.state, Steps: c.steps, SkippedNonFinite: c.skipped, Loss: c.loss,
		Promotions: c.promotions, Rollbacks: c.rollbacks, ActiveVersion: c.pubActive,
		LR: c.lr, Duty: c.duty,
		FramesOffered: c.offered.Load(), FramesDropped: c.dropped.Load(), FramesRejected: c.rejected.Load(),
		Sampler: c.samplerSt, Recent: recent, Reservoir: reservoir, Validation: vr + vres,
		ReplayBytes: c.replay.Bytes() + c.val.Bytes(),
		Degraded:    c.degraded,
	}
	if c.paused.Load() && st.State != "stopped" {
		st.State = "paused"
	}
	if c.lastGuard != nil {
		g := *c.lastGuard
		st.LastGuard = &g
	}
	if t := c.busy + c.idle; t > 0 {
		st.MeasuredDuty = float64(c.busy) / float64(t)
	}
	return st
}

func (c *Continual) setState(s string) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
	if c.onState != nil {
		c.onState(s)
	}
}

func (c *Continual) clock() Clock {
	if c.Clock == nil {
		return wallClock{}
	}
	return c.Clock
}

func (c *Continual) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// Run samples the frames given to Offer on a goroutine of its own and trains on the
// calling one, duty-cycled, until ctx ends; then it writes the learner's weights as
// a candidate (unless nothing changed since they were last saved) and returns nil. It
// returns an error when a step fails for another reason than a non-finite loss; the
// buffers survive for the next Run.
func (c *Continual) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("trainer: continual: Run is already running")
	}
	defer c.running.Store(false)
	defer c.setState("stopped")

	sctx, stopSampler := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { c.runSampler(sctx) })
	defer func() {
		stopSampler()
		wg.Wait()
	}()

	err := c.loop(ctx)
	if ctx.Err() != nil {
		c.saveAtShutdown()
		return nil
	}
	return err
}

// runSampler feeds offered frames to the sampler until ctx ends.
func (c *Continual) runSampler(ctx context.Context) {
	var lastLog time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-c.frames:
			if _, err := c.AddFrame(f); err != nil && time.Since(lastLog) > time.Minute {
				lastLog = time.Now()
				c.log().Warn("continual learning: frame not usable for training", "err", err, "rejected", c.rejected.Load())
			}
		}
	}
}

// loop is the duty cycle: work, then rest for the time that keeps the work at the
// configured fraction of the time.
func (c *Continual) loop(ctx context.Context) error {
	clk := c.clock()
	for ctx.Err() == nil {
		if c.paused.Load() {
			c.setState("paused")
			select {
			case <-ctx.Done():
			case <-c.wake:
			}
			continue
		}
		t0 := clk.Now()
		c.workMu.Lock()
		ran, err := c.work(ctx)
		c.workMu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !ran {
			c.setState("waiting")
			select {
			case <-ctx.Done():
			case <-c.sampled:
			case <-c.wake:
			}
			continue
		}
		d := clk.Now().Sub(t0)
		c.setState("learning")
		c.mu.Lock()
		duty := c.duty
		c.mu.Unlock()
		rest := time.Duration(float64(d) * (1 - duty) / duty)
		c.mu.Lock()
		c.busy += d
		c.idle += rest // counted ahead, so that the measured duty is exact at any time
		c.mu.Unlock()
		if err := clk.Sleep(ctx, rest); err != nil {
			return nil
		}
	}
	return nil
}

// TrainStep takes one optimisation step on a batch from the replay buffer and, when
// GuardEvery steps have passed and enough samples are held out, lets the guard judge.
// It returns false when the buffer does not hold a batch yet. A step skipped for a
// non-finite loss or gradient counts as done (the weights are untouched). It runs on
// the calling goroutine and must not overlap Run.
func (c *Continual) TrainStep(ctx context.Context) (bool, error) {
	recent, reservoir := c.replay.Len()
	if recent+reservoir < c.cfg.BatchSize {
		return false, nil
	}
	c.mu.Lock()
	c.tr.Optim.LR = c.lr
	c.mu.Unlock()
	samples := c.replay.Batch(c.cfg.BatchSize, math.Max(c.cfg.ReservoirShare, 0), c.rng)
	hb, err := NewHostBatch(samples, BatchOptions{Signals: c.cfg.Signals, Augment: c.aug}, c.rng)
	if err != nil {
		return false, fmt.Errorf("trainer: continual: %w", err)
	}
	if c.onBatch != nil {
		c.onBatch(hb.IDs)
	}
	batch, err := hb.Upload(c.b)
	if err != nil {
		return false, fmt.Errorf("trainer: continual: %w", err)
	}
	c.m.SetBatchNormTraining(c.cfg.BatchNormTraining)
	res, err := c.tr.Step(batch)
	batch.Free(c.b)
	if err != nil && !errors.Is(err, ErrNonFinite) {
		return false, fmt.Errorf("trainer: continual: %w", err)
	}
	c.mu.Lock()
	c.steps, c.skipped = c.tr.Steps(), c.tr.Skipped()
	if err == nil {
		c.loss = res.Loss
	}
	c.mu.Unlock()
	if err != nil {
		c.log().Warn("continual learning: step skipped", "err", err, "skipped", c.tr.Skipped())
		return true, nil
	}
	c.sinceGuard++
	c.sinceSave++
	if c.sinceGuard >= c.cfg.GuardEvery {
		if _, judged, err := c.Guard(ctx); err != nil {
			return true, err
		} else if judged {
			c.sinceGuard = 0
		}
	}
	return true, nil
}

// Guard judges the learner's weights against the active version's on the held-out
// samples now: it promotes them (store: candidate → judged → active) if their
// photometric error is at most the active's plus GuardTolerance, and otherwise saves
// them as rejected and rolls the learner back to the active weights. It returns false
// without judging when fewer than MinValidation samples are held out. A store that
// cannot be written does not stop learning: the decision holds in memory and the
// learner reports itself degraded until a write succeeds. It runs on the calling
// goroutine and must not overlap Run.
func (c *Continual) Guard(ctx context.Context) (GuardDecision, bool, error) {
	held := c.val.All()
	if len(held) < c.cfg.MinValidation {
		return GuardDecision{}, false, nil
	}
	var batches []*HostBatch
	for i := 0; i < len(held); i += c.cfg.BatchSize {
		hb, err := NewHostBatch(held[i:min(i+c.cfg.BatchSize, len(held))], BatchOptions{Signals: c.cfg.Signals}, nil)
		if err != nil {
			return GuardDecision{}, false, fmt.Errorf("trainer: continual: guard: %w", err)
		}
		batches = append(batches, hb)
	}
	cur, err := c.m.Params.Export(c.b)
	if err != nil {
		return GuardDecision{}, false, fmt.Errorf("trainer: continual: guard: %w", err)
	}
	candErr, err := c.validate(ctx, batches)
	if err != nil {
		return GuardDecision{}, false, err
	}
	if err := c.load(c.active, "active weights"); err != nil {
		return GuardDecision{}, false, err
	}
	actErr, err := c.validate(ctx, batches)
	if err != nil {
		// Cancelled (or failed) half-way: leave the learner as it was.
		if lerr := c.load(cur, "learner's weights"); lerr != nil {
			return GuardDecision{}, false, errors.Join(err, lerr)
		}
		return GuardDecision{}, false, err
	}
	d := GuardDecision{
		Time: c.clock().Now(), Previous: c.activeVersion, CandidateError: candErr, ActiveError: actErr,
		Samples: len(held), Steps: c.baseSteps + c.tr.Steps(),
		Promoted: candErr <= actErr+c.cfg.GuardTolerance || (math.IsNaN(actErr) && finite(candErr)),
	}
	note := c.cfg.Note
	if note == "" {
		note = "continual learning"
	}
	v := Version{Parent: c.activeVersion, Steps: d.Steps, ChannelScale: c.m.Options.ChannelScale,
		Note: fmt.Sprintf("%s: held-out photometric error %.5f vs %.5f of version %d", note, candErr, actErr, c.activeVersion)}
	if d.Promoted {
		if err := c.load(cur, "learner's weights"); err != nil {
			return d, false, err
		}
		c.active = cur
		saved, err := c.store.Add(cur, v)
		if err == nil {
			d.Version = saved.Version
			err = c.store.Judge(saved.Version, candErr, false)
		}
		if err == nil {
			err = c.store.SetActive(saved.Version)
		}
		d.SaveErr = err
		// Even unsaved, the promoted weights are what the learner goes on from and
		// what the next judgement compares against.
		c.activeVersion = d.Version
	} else {
		// The model already holds the active weights: that is the rollback. Adam's
		// moments belong to the rejected weights: start them afresh.
		c.tr.ResetOptimizer()
		saved, err := c.store.Add(cur, v)
		if err == nil {
			d.Version = saved.Version
			err = c.store.Judge(saved.Version, candErr, true)
		}
		d.SaveErr = err
	}
	c.storeWritten(d.SaveErr)
	if d.SaveErr == nil || !d.Promoted {
		// Saved, or rolled back to the active weights: nothing for a shutdown
		// checkpoint to keep.
		c.sinceSave = 0
	}
	c.mu.Lock()
	if d.Promoted {
		c.promotions++
		c.pubActive = c.activeVersion
	} else {
		c.rollbacks++
	}
	c.lastGuard = &d
	c.mu.Unlock()
	c.log().Info("continual learning: "+d.String(), "version", d.Version, "previous", d.Previous)
	if c.OnGuard != nil {
		c.OnGuard(d)
	}
	return d, true, nil
}

// heldOutError is the mean photometric error of the model's current weights on the
// held-out batches, one batch at a time so that a shutdown waits for one forward pass
// at most.
func (c *Continual) heldOutError(ctx context.Context, batches []*HostBatch) (float64, error) {
	var sum float64
	var n int
	for _, hb := range batches {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		ev, err := Evaluate(c.b, c.m, []*HostBatch{hb})
		if err != nil {
			return 0, fmt.Errorf("trainer: continual: guard: %w", err)
		}
		sum += ev.Photometric * float64(ev.Samples)
		n += ev.Samples
	}
	return sum / float64(n), nil
}

func (c *Continual) load(ts []nn.NamedTensor, what string) error {
	if err := c.m.Params.Load(c.b, what, "", ts, nil); err != nil {
		return fmt.Errorf("trainer: continual: loading the %s: %w", what, err)
	}
	return nil
}

// storeWritten records the outcome of a write to the model store: a failure makes
// the learner degraded (training goes on in memory), a success clears it.
func (c *Continual) storeWritten(err error) {
	msg := ""
	if err != nil {
		msg = fmt.Sprintf("model store not writable: %v (training goes on in memory; free space or fix %s)", err, c.store.Dir)
	}
	c.mu.Lock()
	changed := msg != c.degraded
	c.degraded = msg
	c.mu.Unlock()
	if !changed {
		return
	}
	if msg != "" {
		c.log().Warn("continual learning: "+msg, "dir", c.store.Dir)
	} else {
		c.log().Info("continual learning: model store writable again", "dir", c.store.Dir)
	}
	if c.Health != nil {
		if msg != "" {
			c.Health.Set(HealthModelStore, msg)
		} else {
			c.Health.Clear(HealthModelStore)
		}
	}
}

// saveAtShutdown writes the learner's weights as an unjudged candidate when they
// changed since they last reached the store, so that a restart can ResumeFrom them.
func (c *Continual) saveAtShutdown() {
	if c.sinceSave == 0 {
		return
	}
	cur, err := c.m.Params.Export(c.b)
	if err == nil {
		_, err = c.store.Add(cur, Version{Parent: c.activeVersion, Steps: c.baseSteps + c.tr.Steps(),
			ChannelScale: c.m.Options.ChannelScale, Note: fmt.Sprintf("%s, %d steps since the last judgement", ShutdownNote, c.sinceGuard)})
	}
	c.storeWritten(err)
	if err != nil {
		c.log().Warn("continual learning: the shutdown checkpoint was not written", "err", err)
		return
	}
	c.sinceSave = 0
}

// Snapshot saves the learner's current weights into the store as a candidate (an
// operator's model/snapshot), between two steps of the learner.
func (c *Continual) Snapshot(note string) (Version, error) {
	c.workMu.Lock()
	defer c.workMu.Unlock()
	ts, err := c.m.Params.Export(c.b)
	if err != nil {
		return Version{}, err
	}
	v, err := c.store.Add(ts, Version{Parent: c.activeVersion, Steps: c.baseSteps + c.tr.Steps(),
		ChannelScale: c.m.Options.ChannelScale, Note: note})
	c.storeWritten(err)
	return v, err
}

// Activate makes a store version the active one and the learner's weights (an
// operator's model/rollback or model/reset), between two steps of the learner. The
// L2-SP anchor stays where learning started.
func (c *Continual) Activate(version int) (Version, error) {
	c.workMu.Lock()
	defer c.workMu.Unlock()
	ts, v, err := c.store.Load(version)
	if err != nil {
		return Version{}, err
	}
	if err := c.load(ts, fmt.Sprintf("version %d", version)); err != nil {
		return Version{}, err
	}
	if err := c.store.SetActive(version); err != nil {
		return Version{}, err
	}
	c.tr.ResetOptimizer()
	c.active, c.activeVersion = ts, version
	c.sinceGuard, c.sinceSave = 0, 0
	c.mu.Lock()
	c.pubActive = version
	c.mu.Unlock()
	return v, nil
}
