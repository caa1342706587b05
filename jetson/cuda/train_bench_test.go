package cuda

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/trainer"
)

// BenchmarkTrainStep times a full Monodepth2 training step (forward, loss, backward,
// Adam; temporal + stereo) on the GPU at the reference bench's default shape, and
// batch-1 depth+pose inference. Compare with `monodepth2_ref.py bench --stereo` on the
// same card in the same run.
func BenchmarkTrainStep(b *testing.B) {
	o := DefaultOptions()
	if os.Getenv("EDGEDEPTH_CUDA_CACHE_DIR") == "" {
		o.CacheDir = b.TempDir() // compile afresh, unless a cache is named for the run
	}
	be, err := Open(o)
	if errors.Is(err, ErrUnavailable) {
		b.Skipf("%v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	for _, c := range []struct{ n, h, w int }{{12, 192, 640}} {
		b.Run(fmt.Sprintf("b%d-%dx%d-%s", c.n, c.h, c.w, convTag(be)), func(b *testing.B) {
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
			for i := 0; i < 3; i++ { // warm up: kernels compile, the pool fills
				if _, err := tr.Step(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tr.Step(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
			b.ReportMetric(float64(be.DeviceBytes())/(1<<20), "pool-MiB")

			one, err := trainer.RandomBatch(be, 1, c.h, c.w, false, 2)
			if err != nil {
				b.Fatal(err)
			}
			var best time.Duration = 1 << 62
			for i := 0; i < 20; i++ {
				start := time.Now()
				t := nn.NewTape(be)
				if _, _, _, err := trainer.Predict(t, m, one.Target, one.Prev); err != nil {
					b.Fatal(err)
				}
				if err := be.Sync(); err != nil {
					b.Fatal(err)
				}
				t.Release()
				if d := time.Since(start); i >= 5 && d < best {
					best = d
				}
			}
			b.ReportMetric(float64(best.Microseconds())/1000, "infer-b1-ms")
			b.Logf("%s", be.convSummary())
		})
	}
}
