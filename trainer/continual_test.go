package trainer_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	cam "github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/health"
	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

// tinyRig is a learner's surroundings: the smallest variant of the networks (8
// channels at the narrowest encoder level: a step at 64x64 takes milliseconds) and a
// store whose base and active version are its initial weights.
type tinyRig struct {
	b     *cpu.Backend
	m     *monodepth2.Model
	store *trainer.Store
	base  trainer.Version
}

func newTinyLearner(t testing.TB, cfg trainer.ContinualConfig) (*trainer.Continual, *tinyRig) {
	t.Helper()
	r := &tinyRig{b: cpu.New(1)}
	var err error
	if r.m, err = monodepth2.NewWithOptions(r.b, monodepth2.Options{ChannelScale: 0.125}); err != nil {
		t.Fatal(err)
	}
	if err := r.m.Init(r.b, 1); err != nil {
		t.Fatal(err)
	}
	if r.store, err = trainer.OpenStore(filepath.Join(t.TempDir(), "models"), 0); err != nil {
		t.Fatal(err)
	}
	if r.base, err = trainer.Checkpoint(r.b, r.m, r.store, trainer.Version{State: trainer.StateBase, Note: "test"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Sampler.Width == 0 {
		cfg.Sampler.Width, cfg.Sampler.Height = 64, 64
	}
	c, err := trainer.NewContinual(r.b, r.m, r.store, r.base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, r
}

// weightsOf exports the model's parameters.
func (r *tinyRig) weights(t testing.TB) []nn.NamedTensor {
	t.Helper()
	ts, err := r.m.Params.Export(r.b)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// sameWeights reports whether two sets of named tensors (in any order) hold the same
// values.
func sameWeights(a, b []nn.NamedTensor) bool {
	if len(a) != len(b) {
		return false
	}
	byName := map[string][]float32{}
	for _, t := range b {
		byName[t.Name] = t.Data
	}
	for _, t := range a {
		d, ok := byName[t.Name]
		if !ok || len(d) != len(t.Data) {
			return false
		}
		for j := range d {
			if d[j] != t.Data[j] {
				return false
			}
		}
	}
	return true
}

// feed gives the learner consecutive frames of a 64x64 street until it holds at
// least want held-out samples and a batch to train on.
func feed(t testing.TB, c *trainer.Continual, want int) {
	t.Helper()
	world := smallWorld(t, sim.SceneStreet, 1, 64, 64)
	for i := 0; ; i++ {
		st := c.Status()
		if st.Validation >= want && st.Recent+st.Reservoir >= c.Config().BatchSize {
			return
		}
		if i > 500 {
			t.Fatalf("500 frames gave %+v", st)
		}
		if _, err := c.AddFrame(world.Render(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// scripted is a fake held-out error: it returns the given values in order (the guard
// asks for the learner's error first, then the active version's).
type scripted struct{ values []float64 }

func (s *scripted) validate(ctx context.Context, _ []*trainer.HostBatch) (float64, error) {
	if len(s.values) == 0 {
		return 0, errors.New("scripted validation ran out of values")
	}
	v := s.values[0]
	s.values = s.values[1:]
	return v, nil
}

var guardTestConfig = trainer.ContinualConfig{
	Sampler:    trainer.SamplerConfig{Interval: -1, ValidationEvery: 2},
	BatchSize:  2,
	GuardEvery: 1000, MinValidation: 2,
}

func TestGuardPromotesBetterAndRollsBackWorse(t *testing.T) {
	c, r := newTinyLearner(t, guardTestConfig)
	var events []trainer.GuardDecision
	c.OnGuard = func(d trainer.GuardDecision) { events = append(events, d) }
	errs := &scripted{}
	trainer.SetContinualValidate(c, errs.validate)
	feed(t, c, 2)
	ctx := t.Context()

	// Better: promoted, saved, judged, active; the learner keeps its weights.
	if ran, err := c.TrainStep(ctx); !ran || err != nil {
		t.Fatalf("step: %v %v", ran, err)
	}
	learned := r.weights(t)
	errs.values = []float64{0.10, 0.20}
	d, judged, err := c.Guard(ctx)
	if err != nil || !judged {
		t.Fatalf("guard: %v %v", judged, err)
	}
	if !d.Promoted || d.Version == 0 || d.Previous != r.base.Version || d.CandidateError != 0.10 || d.ActiveError != 0.20 || d.SaveErr != nil {
		t.Fatalf("decision %+v: want a saved promotion from the base", d)
	}
	a, ok := r.store.Active()
	if !ok || a.Version != d.Version || a.State != trainer.StateActive || a.ValidationError == nil || *a.ValidationError != 0.10 || a.Parent != r.base.Version {
		t.Fatalf("active after promotion: %+v", a)
	}
	saved, _, err := r.store.Load(a.Version)
	if err != nil || !sameWeights(saved, learned) || !sameWeights(r.weights(t), learned) {
		t.Fatalf("the promoted version or the learner does not hold the learned weights (%v)", err)
	}
	if b, _ := r.store.Get(r.base.Version); b.State != trainer.StateBase {
		t.Errorf("the base became %s", b.State)
	}

	// Worse: saved as rejected, the active version stays, the learner rolls back.
	if ran, err := c.TrainStep(ctx); !ran || err != nil {
		t.Fatalf("step: %v %v", ran, err)
	}
	if sameWeights(r.weights(t), learned) {
		t.Fatal("a step did not change the weights")
	}
	errs.values = []float64{0.30, 0.20}
	d2, _, err := c.Guard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Promoted || d2.Previous != d.Version || d2.Version == 0 || d2.SaveErr != nil {
		t.Fatalf("decision %+v: want a saved rejection", d2)
	}
	if v, _ := r.store.Get(d2.Version); v.State != trainer.StateRejected || v.ValidationError == nil || *v.ValidationError != 0.30 {
		t.Errorf("the worse candidate is %+v, want rejected with its error", v)
	}
	if a, _ := r.store.Active(); a.Version != d.Version {
		t.Errorf("active is version %d after a rejection, want %d", a.Version, d.Version)
	}
	if !sameWeights(r.weights(t), learned) {
		t.Error("the learner was not rolled back to the active version's weights")
	}
	if n := trainer.ContinualOptimizerSteps(c); n != 0 {
		t.Errorf("Adam's moments have seen %d steps after the rollback, want 0 (they were the rejected weights')", n)
	}
	st := c.Status()
	if st.Promotions != 1 || st.Rollbacks != 1 || st.ActiveVersion != d.Version || st.LastGuard == nil || st.LastGuard.Version != d2.Version {
		t.Errorf("status %+v", st)
	}
	if len(events) != 2 || events[0].Event() != "model_promoted" || events[1].Event() != "model_rolled_back" {
		t.Errorf("events %+v", events)
	}
}

func TestGuardToleranceAndRealEvaluation(t *testing.T) {
	cfg := guardTestConfig
	cfg.GuardTolerance = 0.05
	c, _ := newTinyLearner(t, cfg)
	feed(t, c, 2)
	// Untrained: the learner's weights are the active ones, so the real held-out
	// errors are equal and finite, and "not worse" promotes.
	d, judged, err := c.Guard(t.Context())
	if err != nil || !judged || !d.Promoted || d.CandidateError != d.ActiveError || !(d.CandidateError > 0) || math.IsInf(d.CandidateError, 0) {
		t.Fatalf("guard on equal weights: %+v %v %v", d, judged, err)
	}
	errs := &scripted{values: []float64{0.24, 0.20, 0.26, 0.20}}
	trainer.SetContinualValidate(c, errs.validate)
	if d, _, _ := c.Guard(t.Context()); !d.Promoted {
		t.Errorf("0.24 vs 0.20 with tolerance 0.05: rejected")
	}
	if d, _, _ := c.Guard(t.Context()); d.Promoted {
		t.Errorf("0.26 vs 0.20 with tolerance 0.05: promoted")
	}

	// Too few held-out samples: the guard waits.
	c2, _ := newTinyLearner(t, trainer.ContinualConfig{MinValidation: 30, Sampler: trainer.SamplerConfig{Interval: -1}})
	feed(t, c2, 0)
	if _, judged, err := c2.Guard(t.Context()); judged || err != nil {
		t.Errorf("judged on fewer than MinValidation samples: %v %v", judged, err)
	}
}

func TestNonFiniteStepIsSkippedAndCounted(t *testing.T) {
	c, r := newTinyLearner(t, guardTestConfig)
	feed(t, c, 0)
	p := r.m.Params.Trainable()[0]
	nan := make([]float32, p.Value.Len())
	for i := range nan {
		nan[i] = float32(math.NaN())
	}
	v, _ := r.b.FromHost(nan, p.Value.Shape...)
	r.b.Copy(p.Value, v)
	before := r.weights(t)
	ran, err := c.TrainStep(t.Context())
	if !ran || err != nil {
		t.Fatalf("a non-finite step: %v %v; want it done (skipped), no error", ran, err)
	}
	if st := c.Status(); st.SkippedNonFinite != 1 || st.Steps != 0 {
		t.Errorf("status %+v: want 1 skipped, 0 steps", st)
	}
	after := r.weights(t)
	for i := range before {
		for j := range before[i].Data {
			if a, b := before[i].Data[j], after[i].Data[j]; a != b && !(a != a && b != b) {
				t.Fatalf("weight %s changed on a skipped step", before[i].Name)
			}
		}
	}
}

// fakeClock advances only when told (Advance) or when the learner rests (Sleep,
// which returns at once and records the rest).
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return nil
}

func TestDutyCycleRestsInProportion(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, _ := newTinyLearner(t, trainer.ContinualConfig{Duty: 0.3})
	clk := &fakeClock{now: time.Unix(1000, 0)}
	c.Clock = clk
	work := []time.Duration{100 * time.Millisecond, 250 * time.Millisecond, time.Second, 40 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond}
	ctx, cancel := context.WithCancel(t.Context())
	i := 0
	trainer.SetContinualWork(c, func(ctx context.Context) (bool, error) {
		if i == len(work) {
			cancel()
			return false, ctx.Err()
		}
		clk.Advance(work[i])
		if i == 3 {
			if err := c.SetDuty(0.5); err != nil {
				t.Error(err)
			}
		}
		i++
		return true, nil
	})
	if err := c.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(clk.sleeps) != len(work) {
		t.Fatalf("%d rests after %d steps", len(clk.sleeps), len(work))
	}
	var busy, idle time.Duration
	for k, d := range work {
		duty := 0.3
		if k >= 3 {
			duty = 0.5 // set during step 3: from its rest on
		}
		want := time.Duration(float64(d) * (1 - duty) / duty)
		if got := clk.sleeps[k]; got != want {
			t.Errorf("rest after a %s step at duty %g: %s, want %s", d, duty, got, want)
		}
		busy += d
		idle += clk.sleeps[k]
	}
	st := c.Status()
	want := float64(busy) / float64(busy+idle)
	if math.Abs(st.MeasuredDuty-want) > 1e-9 || st.Duty != 0.5 || st.State != "stopped" {
		t.Errorf("status duty %g measured %g state %s; want 0.5, %g, stopped", st.Duty, st.MeasuredDuty, st.State, want)
	}
	t.Logf("busy %s, resting %s: measured duty %.3f", busy, idle, st.MeasuredDuty)
	for _, bad := range []float64{0, -1, 1.5, math.NaN()} {
		if c.SetDuty(bad) == nil {
			t.Errorf("SetDuty(%g) accepted", bad)
		}
	}
	if c.SetLR(0) == nil || c.SetLR(math.Inf(1)) == nil || c.SetLR(3e-5) != nil || c.Status().LR != 3e-5 {
		t.Error("SetLR: wrong acceptance")
	}
}

func TestPauseHoldsTrainingUntilResume(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, _ := newTinyLearner(t, trainer.ContinualConfig{})
	c.Clock = &fakeClock{}
	states := make(chan string, 16)
	trainer.SetContinualHooks(c, func(s string) {
		select {
		case states <- s:
		default:
		}
	}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	var calls int
	trainer.SetContinualWork(c, func(ctx context.Context) (bool, error) {
		calls++
		cancel()
		return false, ctx.Err()
	})
	c.Pause()
	c.Offer(cam.StereoFrame{}) // ignored while paused: neither offered nor dropped
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	if s := <-states; s != "paused" {
		t.Fatalf("first state %q, want paused", s)
	}
	if st := c.Status(); st.State != "paused" || calls != 0 || st.FramesOffered+st.FramesDropped != 0 {
		t.Fatalf("while paused: status %+v, %d work calls", st, calls)
	}
	c.Resume()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("%d work calls after Resume, want 1", calls)
	}
}

// TestRunLearnsFromOfferedFrames runs the real loop: frames offered as fast as the
// caller can (the sampler drops what it cannot take, counted), steps taken, and at
// the end a shutdown checkpoint that LatestShutdownCheckpoint finds and a new learner
// resumes from.
func TestRunLearnsFromOfferedFrames(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, r := newTinyLearner(t, trainer.ContinualConfig{BatchSize: 2, Duty: 1, Sampler: trainer.SamplerConfig{Interval: -1}})
	stepped := make(chan struct{}, 1)
	trainer.SetContinualHooks(c, func(s string) {
		if s == "learning" {
			select {
			case stepped <- struct{}{}:
			default:
			}
		}
	}, nil)
	world := smallWorld(t, sim.SceneStreet, 1, 64, 64)
	var frames []cam.StereoFrame
	for i := range 120 {
		frames = append(frames, world.Render(i))
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	// A camera at 500 fps: faster than the sampler may take them, so some drop.
	camera := time.NewTicker(2 * time.Millisecond)
	defer camera.Stop()
	timeout := time.After(60 * time.Second)
feeding:
	for i := 0; ; i++ {
		c.Offer(frames[i%len(frames)])
		select {
		case <-stepped:
			break feeding
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-timeout:
			t.Fatalf("no step after %d offers: %+v", i, c.Status())
		case <-camera.C:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := c.Status()
	t.Logf("status after the first step: %+v", st)
	if st.Steps < 1 || st.FramesOffered == 0 || st.Sampler.Triplets == 0 || st.State != "stopped" {
		t.Errorf("status %+v", st)
	}
	v, ok := trainer.LatestShutdownCheckpoint(r.store)
	if !ok || !strings.HasPrefix(v.Note, trainer.ShutdownNote) || v.Parent != r.base.Version || v.Steps != st.Steps {
		t.Fatalf("shutdown checkpoint %+v %v", v, ok)
	}
	ts, _, err := r.store.Load(v.Version)
	if err != nil || !sameWeights(ts, r.weights(t)) {
		t.Fatalf("the shutdown checkpoint does not hold the learner's weights: %v", err)
	}
	c2, r2 := newTinyLearner(t, trainer.ContinualConfig{})
	if err := c2.ResumeFrom(ts, v); err != nil {
		t.Fatal(err)
	}
	if !sameWeights(r2.weights(t), ts) || c2.Status().Steps != v.Steps {
		t.Errorf("resumed learner: steps %d, weights equal %v", c2.Status().Steps, sameWeights(r2.weights(t), ts))
	}
}

// storeBreakers make a model store directory unwritable and writable again.
var storeBreakers = []struct {
	name         string
	break_, mend func(dir string) error
}{
	{
		// Works as root too: creating the temp file in a path that is a file fails.
		name: "directory replaced by a file",
		break_: func(dir string) error {
			if err := os.Rename(dir, dir+".away"); err != nil {
				return err
			}
			return os.WriteFile(dir, nil, 0o644)
		},
		mend: func(dir string) error {
			if err := os.Remove(dir); err != nil {
				return err
			}
			return os.Rename(dir+".away", dir)
		},
	},
	{
		name:   "read-only directory",
		break_: func(dir string) error { return os.Chmod(dir, 0o555) },
		mend:   func(dir string) error { return os.Chmod(dir, 0o755) },
	},
}

// TestFullStoreDegradesAndRecovers: a store that cannot be written (a full disk)
// does not stop learning; the learner says so (status and health) until a write
// succeeds.
func TestFullStoreDegradesAndRecovers(t *testing.T) {
	for _, sb := range storeBreakers {
		t.Run(sb.name, func(t *testing.T) {
			c, r := newTinyLearner(t, guardTestConfig)
			h := &health.Tracker{}
			c.Health = h
			errs := &scripted{}
			trainer.SetContinualValidate(c, errs.validate)
			feed(t, c, 2)
			ctx := t.Context()
			dir := r.store.Dir
			if err := sb.break_(dir); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sb.mend(dir) })
			if f, err := os.CreateTemp(dir, "probe-*"); err == nil {
				f.Close()
				os.Remove(f.Name())
				t.Skipf("%s: still writable (running as root ignores permissions); the other breaker covers this", sb.name)
			}

			c.TrainStep(ctx)
			learned := r.weights(t)
			errs.values = []float64{0.1, 0.2}
			d, _, err := c.Guard(ctx)
			if err != nil {
				t.Fatalf("guard on an unwritable store: %v (want training to go on)", err)
			}
			if !d.Promoted || d.Version != 0 || d.SaveErr == nil {
				t.Fatalf("decision %+v: want a promotion held in memory", d)
			}
			st := c.Status()
			if !strings.HasPrefix(st.Degraded, "model store not writable: ") || st.ActiveVersion != 0 {
				t.Errorf("status degraded %q active %d", st.Degraded, st.ActiveVersion)
			}
			if w := h.Warnings(); len(w) != 1 || w[0].Component != trainer.HealthModelStore || !strings.Contains(w[0].Message, "not writable") {
				t.Errorf("health %+v", w)
			}
			if a, _ := r.store.Active(); a.Version != r.base.Version {
				t.Errorf("the store's active version changed to %d", a.Version)
			}
			// Learning goes on in memory, from the promoted weights.
			if ran, err := c.TrainStep(ctx); !ran || err != nil {
				t.Fatalf("step on an unwritable store: %v %v", ran, err)
			}
			if err := sb.mend(dir); err != nil {
				t.Fatal(err)
			}
			errs.values = []float64{0.3, 0.2} // worse: rolled back to the in-memory promotion
			d2, _, err := c.Guard(ctx)
			if err != nil || d2.Promoted || d2.SaveErr != nil || d2.Version == 0 {
				t.Fatalf("after mending: %+v %v", d2, err)
			}
			if st := c.Status(); st.Degraded != "" || len(h.Warnings()) != 0 {
				t.Errorf("still degraded after a successful write: %q %+v", st.Degraded, h.Warnings())
			}
			if !sameWeights(r.weights(t), learned) {
				t.Error("not rolled back to the weights promoted in memory")
			}
		})
	}
}

// TestLoadActiveFallsBackFromADamagedFile: a corrupt active checkpoint gives a clear
// error and the previous good version (a judged, not rejected candidate), then the
// base; unjudged and rejected candidates are never fallen back on.
func TestLoadActiveFallsBackFromADamagedFile(t *testing.T) {
	s, err := trainer.OpenStore(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	add := func(v float32, ver trainer.Version) trainer.Version {
		out, err := s.Add(weights(v), ver)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	base := add(1, trainer.Version{State: trainer.StateBase})
	good := add(2, trainer.Version{})
	s.Judge(good.Version, 0.2, false)
	bad := add(3, trainer.Version{})
	s.Judge(bad.Version, 0.5, true)
	active := add(4, trainer.Version{})
	s.Judge(active.Version, 0.1, false)
	s.SetActive(active.Version)
	add(5, trainer.Version{Note: "unjudged"})

	ts, v, failed, err := s.LoadActive()
	if err != nil || failed != nil || v.Version != active.Version || ts[0].Data[0] != 4 {
		t.Fatalf("healthy store: version %d, failed %v, err %v", v.Version, failed, err)
	}
	corrupt := func(v trainer.Version) {
		if err := os.WriteFile(filepath.Join(s.Dir, v.File), []byte("not a model"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	corrupt(active)
	ts, v, failed, err = s.LoadActive()
	if err != nil || v.Version != good.Version || ts[0].Data[0] != 2 || len(failed) != 1 {
		t.Fatalf("damaged active: version %d, failed %v, err %v; want version %d", v.Version, failed, err, good.Version)
	}
	if msg := failed[0].Error(); !strings.Contains(msg, "version 4") || !strings.Contains(msg, "not a safetensors file") {
		t.Errorf("the error does not say which version and what is wrong: %q", msg)
	}
	corrupt(good)
	if _, v, failed, err = s.LoadActive(); err != nil || v.Version != base.Version || len(failed) != 2 {
		t.Fatalf("damaged active and candidate: version %d, failed %v, err %v; want the base", v.Version, failed, err)
	}
	corrupt(base)
	if _, _, failed, err = s.LoadActive(); !errors.Is(err, trainer.ErrNoUsableVersion) || len(failed) != 3 {
		t.Fatalf("everything damaged: %v, failed %v", err, failed)
	}
	empty, _ := trainer.OpenStore(t.TempDir(), 0)
	if _, _, _, err := empty.LoadActive(); !errors.Is(err, trainer.ErrNoUsableVersion) {
		t.Errorf("empty store: %v", err)
	}
}
