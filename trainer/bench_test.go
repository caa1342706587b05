package trainer_test

import (
	"fmt"
	"testing"

	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

// BenchmarkTrainStep times a full training step (forward, loss, backward, Adam),
// stereo + temporal, on the CPU backend. `edgedepth bench` runs the same step beside
// the PyTorch reference.
func BenchmarkTrainStep(b *testing.B) {
	for _, c := range []struct{ n, h, w int }{{4, 96, 320}, {2, 192, 640}} {
		b.Run(fmt.Sprintf("b%d-%dx%d", c.n, c.h, c.w), func(b *testing.B) {
			be := cpu.New(0)
			m, err := monodepth2.New(be)
			if err != nil {
				b.Fatal(err)
			}
			if err := m.Init(be, 1); err != nil {
				b.Fatal(err)
			}
			batch, err := trainer.RandomBatch(be, c.n, c.h, c.w, true, 1)
			if err != nil {
				b.Fatal(err)
			}
			tr, err := trainer.NewTrainer(be, m, trainer.DefaultOptim())
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < b.N; i++ {
				if _, err := tr.Step(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
