package trainer_test

import (
	"errors"
	"math"
	"testing"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

// TestEarlyFreeingKeepsGradients: Backward frees intermediates as it goes unless
// KeepIntermediates is set; both must give bit-identical gradients.
func TestEarlyFreeingKeepsGradients(t *testing.T) {
	b := cpu.New(0)
	m, err := monodepth2.New(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(b, 3); err != nil {
		t.Fatal(err)
	}
	batch, err := trainer.RandomBatch(b, 2, 64, 96, true, 5)
	if err != nil {
		t.Fatal(err)
	}
	grads := func(keep bool) map[string][]float32 {
		m.Params.ZeroGrad(b)
		tp := nn.NewTape(b)
		tp.KeepIntermediates = keep
		out, err := trainer.Loss(tp, m, batch)
		if err != nil {
			t.Fatal(err)
		}
		if err := tp.Backward(out.Loss); err != nil {
			t.Fatal(err)
		}
		if !keep && out.Disp[0].Value != nil {
			t.Error("an intermediate output survived Backward without KeepIntermediates")
		}
		g := map[string][]float32{}
		for _, p := range m.Params.Trainable() {
			g[p.Name], _ = b.ToHost(p.Grad)
		}
		tp.Release()
		return g
	}
	kept, freed := grads(true), grads(false)
	for name, want := range kept {
		got := freed[name]
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s[%d]: %v with early freeing, %v without", name, i, got[i], want[i])
			}
		}
	}
}

// TestTrainerStepLowersTheLoss: a few Adam steps on one batch lower its loss.
func TestTrainerStepLowersTheLoss(t *testing.T) {
	b := cpu.New(0)
	m, _ := monodepth2.New(b)
	if err := m.Init(b, 1); err != nil {
		t.Fatal(err)
	}
	batch, err := trainer.RandomBatch(b, 2, 64, 96, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	o := trainer.DefaultOptim()
	o.LR = 1e-3
	tr, err := trainer.NewTrainer(b, m, o)
	if err != nil {
		t.Fatal(err)
	}
	var first, last float32
	for i := 0; i < 8; i++ {
		res, err := tr.Step(batch)
		if err != nil {
			t.Fatal(err)
		}
		l := float32(res.Loss)
		if i == 0 {
			first = l
		}
		last = l
	}
	t.Logf("loss %.5f → %.5f after 8 steps", first, last)
	if !(last < 0.99*first) {
		t.Errorf("loss %.5f → %.5f: eight steps on one batch should lower it by 1%% at least (deterministic: fixed seeds)", first, last)
	}
}

// TestNonFiniteStepIsSkipped: a NaN in the input makes the loss NaN; the step is
// skipped, counted, and leaves every weight as it was.
func TestNonFiniteStepIsSkipped(t *testing.T) {
	b := cpu.New(0)
	m, _ := monodepth2.NewWithOptions(b, monodepth2.Options{ChannelScale: 0.25})
	if err := m.Init(b, 1); err != nil {
		t.Fatal(err)
	}
	batch, err := trainer.RandomBatch(b, 1, 64, 96, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := b.ToHost(batch.Target)
	v[100] = float32(math.NaN())
	batch.Target, _ = b.FromHost(v, batch.Target.Shape...)
	before, _ := m.Params.Export(b)
	tr, _ := trainer.NewTrainer(b, m, trainer.DefaultOptim())
	if _, err := tr.Step(batch); !errors.Is(err, trainer.ErrNonFinite) {
		t.Fatalf("step on a NaN image: %v, want ErrNonFinite", err)
	}
	if tr.Skipped() != 1 || tr.Steps() != 0 {
		t.Errorf("skipped %d, steps %d; want 1 and 0", tr.Skipped(), tr.Steps())
	}
	after, _ := m.Params.Export(b)
	for i := range before {
		for j := range before[i].Data {
			if before[i].Data[j] != after[i].Data[j] {
				t.Fatalf("%s changed in a skipped step", before[i].Name)
			}
		}
	}
}

// TestL2SPPullsTowardsTheAnchor: with a strong regulariser, weights moved away from
// the anchor come back faster than without it.
func TestL2SPPullsTowardsTheAnchor(t *testing.T) {
	distance := func(l2sp float64) float64 {
		b := cpu.New(0)
		m, _ := monodepth2.NewWithOptions(b, monodepth2.Options{ChannelScale: 0.25})
		m.Init(b, 1)
		o := trainer.DefaultOptim()
		o.L2SP = l2sp
		tr, err := trainer.NewTrainer(b, m, o) // anchors the initial weights
		if err != nil {
			t.Fatal(err)
		}
		anchor, _ := m.Params.Export(b)
		p := m.Params.Get("depth/decoder.13.conv.weight")
		shifted, _ := b.Affine(p.Value, 1, 0.05)
		b.Copy(p.Value, shifted)
		batch, _ := trainer.RandomBatch(b, 1, 64, 96, true, 2)
		for i := 0; i < 5; i++ {
			if _, err := tr.Step(batch); err != nil {
				t.Fatal(err)
			}
		}
		now, _ := b.ToHost(p.Value)
		var d float64
		for _, a := range anchor {
			if a.Name == p.Name {
				for j := range now {
					d += math.Abs(float64(now[j] - a.Data[j]))
				}
			}
		}
		return d
	}
	free, pulled := distance(0), distance(1e3)
	t.Logf("distance from the anchor after 5 steps: %.4f without L2-SP, %.4f with", free, pulled)
	if !(pulled < free) {
		t.Errorf("L2-SP did not pull the weights back: %.4f with, %.4f without", pulled, free)
	}
}
