package trainer_test

import (
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

// TestTrainStepLowersTheLoss: a few Adam steps on one batch lower its loss.
func TestTrainStepLowersTheLoss(t *testing.T) {
	b := cpu.New(0)
	m, _ := monodepth2.New(b)
	if err := m.Init(b, 1); err != nil {
		t.Fatal(err)
	}
	batch, err := trainer.RandomBatch(b, 2, 64, 96, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	opt := nn.NewAdam(1e-3)
	var first, last float32
	for i := 0; i < 8; i++ {
		l, err := trainer.TrainStep(b, m, opt, batch)
		if err != nil {
			t.Fatal(err)
		}
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
