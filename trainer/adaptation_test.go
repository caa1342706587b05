package trainer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return v
	}
	return def
}

// heldOut makes un-augmented batches of n samples spread evenly over ds.
func heldOut(t testing.TB, ds trainer.Dataset, n int) []*trainer.HostBatch {
	t.Helper()
	var idx []int
	for k := range n {
		idx = append(idx, k*ds.Len()/n)
	}
	vb, err := trainer.ValidationBatches(&trainer.Subset{Parent: ds, Indices: idx}, 4, trainer.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return vb
}

// TestContinualAdaptation is the adaptation test of continual learning: a model
// trained on one simulated scene kind (the street, 100 steps from scratch) runs
// continually through the Continual learner — sampler, validation hold-out, replay
// buffer, L2-SP towards the street model, guard — first 30 steps on the street (so
// that, as on a robot that drove there, street samples are in its replay reservoir and
// held-out set), then 100 steps in a room. From the moment it enters the room:
//
//   - its error on a held-out room (another seed: a room it never saw, so the fall is
//     adaptation to the kind, not memory of one room) falls by at least 25 %, and
//   - its error on held-out street frames (never trained on) rises by at most 40 %.
//
// Both are the mean per-pixel minimum photometric error (the guard's metric) of the
// weights in force after each judgement of the guard. The run is deterministic (fixed
// seeds, a fixed thread count): AddFrame and TrainStep drive the learner on the test's
// goroutine, which is what Run does minus the rests of the duty cycle (duty 1).
//
// Measured (2-core Xeon, 128x64, channel scale 0.25, batch 4, lr 1e-4, L2-SP 0.01;
// learner seeds 1, 2, 3): room −47 %, −49 %, −50 %; street +13 %, +26 %, +20 %;
// about 60 s. Why the bounds: the same room stream with nothing against forgetting
// (EDGEDEPTH_ADAPT_CONTROL=1 runs it: no street in the learner's past, no L2-SP) also
// halves the room error but doubles the street error (+90 to +111 % measured), since
// a network this small first learns the room's much nearer depths by shifting its
// depth prior; 40 % sits well below that and above the spread over seeds. The
// environment variables EDGEDEPTH_ADAPT_PRETRAIN, _STREET_STEPS, _STEPS, _L2SP, _LR and
// _SEED change the run.
func TestContinualAdaptation(t *testing.T) {
	const w, h = 128, 64
	pretrain := envInt("EDGEDEPTH_ADAPT_PRETRAIN", 100)
	streetSteps := envInt("EDGEDEPTH_ADAPT_STREET_STEPS", 30)
	steps := envInt("EDGEDEPTH_ADAPT_STEPS", 100)
	l2sp := envFloat("EDGEDEPTH_ADAPT_L2SP", 1e-2)
	lr := envFloat("EDGEDEPTH_ADAPT_LR", 1e-4)
	seed := uint64(envInt("EDGEDEPTH_ADAPT_SEED", 1))
	start := time.Now()

	// The old scene: train from scratch on the street, hold out every 10th frame.
	street, err := trainer.NewSimDataset(smallWorld(t, sim.SceneStreet, 1, w, h), 200, w, h, trainer.DatasetOptions{CacheFrames: 400})
	if err != nil {
		t.Fatal(err)
	}
	train, val, err := trainer.Split(street, 10)
	if err != nil {
		t.Fatal(err)
	}
	streetVal := heldOut(t, val, 16)
	// The new scene kind: another room than the one the robot drives through.
	otherRoom, err := trainer.NewSimDataset(smallWorld(t, sim.SceneRoom, 2, w, h), 240, w, h, trainer.DatasetOptions{CacheFrames: -1})
	if err != nil {
		t.Fatal(err)
	}
	roomVal := heldOut(t, otherRoom, 16)

	b := cpu.New(2) // a fixed split of the work: the same sums in the same order on any machine
	m, _ := monodepth2.NewWithOptions(b, monodepth2.Options{ChannelScale: 0.25})
	m.Init(b, 1)
	tr, _ := trainer.NewTrainer(b, m, trainer.Optim{LR: 2e-4})
	aug := trainer.DefaultAugment()
	ld, err := trainer.NewLoader(train, trainer.LoaderOptions{BatchSize: 4, Seed: 1, Batch: trainer.BatchOptions{Augment: &aug}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	loaded := make(chan error, 1)
	go func() { loaded <- ld.Run(ctx) }()
	m.SetBatchNormTraining(true)
	for range pretrain {
		hb, err := ld.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		batch, _ := hb.Upload(b)
		_, err = tr.Step(batch)
		batch.Free(b)
		if err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-loaded; err != nil {
		t.Fatal(err)
	}
	m.SetBatchNormTraining(false)
	street0, err := m.Params.Export(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("street model: %d steps from scratch in %.0f s", pretrain, time.Since(start).Seconds())
	eval := func(vb []*trainer.HostBatch) float64 {
		ev, err := trainer.Evaluate(b, m, vb)
		if err != nil {
			t.Fatal(err)
		}
		return ev.Photometric
	}

	type point struct {
		step         int
		room, street float64
		note         string
	}
	// adapt starts a learner from the street model (the base of a fresh store), drives
	// it streetSteps steps on the street (two triplets a step), then steps steps in
	// the room (one triplet a step: the stream runs as fast as training consumes it),
	// and returns the curve: a point after every judgement of the guard, and where the
	// robot enters the room.
	adapt := func(name string, streetSteps int, l2sp float64) (curve []point, enters point) {
		t0 := time.Now()
		if err := m.Params.Load(b, "street model", "", street0, nil); err != nil {
			t.Fatal(err)
		}
		store, err := trainer.OpenStore(filepath.Join(t.TempDir(), "models"), 0)
		if err != nil {
			t.Fatal(err)
		}
		base, err := trainer.Checkpoint(b, m, store, trainer.Version{State: trainer.StateBase, Steps: pretrain, Note: "street"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := trainer.NewContinual(b, m, store, base, trainer.ContinualConfig{
			Sampler:    trainer.SamplerConfig{Width: w, Height: h, Interval: -1, ValidationEvery: 5},
			BatchSize:  4,
			GuardEvery: 25, MinValidation: 8,
			Optim: trainer.Optim{LR: lr, L2SP: l2sp},
			Seed:  seed,
		})
		if err != nil {
			t.Fatal(err)
		}
		stream := func(world *sim.World, steps, triplets int) {
			frame := 0
			for done := 0; done < steps; {
				for got := 0; got < 2*triplets; frame++ {
					added, err := c.AddFrame(world.Render(frame))
					if err != nil {
						t.Fatal(err)
					}
					got += added
				}
				ran, err := c.TrainStep(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if !ran {
					continue // not a batch yet
				}
				done++
				st := c.Status()
				if g := st.LastGuard; g != nil && g.Steps == base.Steps+st.Steps {
					curve = append(curve, point{st.Steps, eval(roomVal), eval(streetVal),
						fmt.Sprintf("%s: %s (held-out %.4f vs %.4f)", world.Config().Scene, g.Event(), g.CandidateError, g.ActiveError)})
				}
			}
		}
		curve = append(curve, point{0, eval(roomVal), eval(streetVal), "street model"})
		if streetSteps > 0 {
			// The robot drives the street with the learner on: its replay reservoir
			// and held-out set fill with street samples.
			stream(smallWorld(t, sim.SceneStreet, 1, w, h), streetSteps, 2)
			curve = append(curve, point{c.Status().Steps, eval(roomVal), eval(streetVal), "enters the room"})
		}
		enters = curve[len(curve)-1]
		stream(smallWorld(t, sim.SceneRoom, 1, w, h), steps, 1)
		st := c.Status()
		t.Logf("%s: %d steps (%d on the street, %d in the room), L2-SP %g: %d triplets (%d held out), %d promotions, %d rollbacks, %.0f s",
			name, st.Steps, streetSteps, steps, l2sp, st.Sampler.Triplets, st.Sampler.Validation, st.Promotions, st.Rollbacks, time.Since(t0).Seconds())
		t.Logf("%6s %14s %14s  %s", "step", "room (unseen)", "street", "guard")
		for _, p := range curve {
			t.Logf("%6d %14.5f %14.5f  %s", p.step, p.room, p.street, p.note)
		}
		last := curve[len(curve)-1]
		t.Logf("%s: in the room, room error %+.1f %%, street error %+.1f %%", name,
			100*(last.room/enters.room-1), 100*(last.street/enters.street-1))
		return curve, enters
	}

	curve, enters := adapt("continual learning", streetSteps, l2sp)
	last := curve[len(curve)-1]
	if !(last.room <= 0.75*enters.room) {
		t.Errorf("held-out room error %.5f → %.5f: want a fall of at least 25 %%", enters.room, last.room)
	}
	if !(last.street <= 1.4*enters.street) {
		t.Errorf("held-out street error %.5f → %.5f: want a rise of at most 40 %%", enters.street, last.street)
	}
	if os.Getenv("EDGEDEPTH_ADAPT_CONTROL") == "" {
		return
	}
	// The control: the same room stream without the street in the learner's past (no
	// replay of it, nothing of it held out for the guard) and without L2-SP.
	ctl, ctlEnters := adapt("control (no street replay, no L2-SP)", 0, 0)
	ctlLast := ctl[len(ctl)-1]
	if rise, ctlRise := last.street/enters.street, ctlLast.street/ctlEnters.street; !(rise < ctlRise) {
		t.Errorf("street error rose by %.1f %% with replay, guard and L2-SP and by %.1f %% without: they did not help", 100*(rise-1), 100*(ctlRise-1))
	}
	t.Logf("in all %.0f s", time.Since(start).Seconds())
}
