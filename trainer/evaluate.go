package trainer

import (
	"fmt"

	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
)

// Evaluation is how well a model does on held-out batches.
type Evaluation struct {
	// Photometric is the mean per-pixel minimum photometric error at scale 0 (the
	// self-supervised error the guard of continual learning watches; lower is
	// better). Loss is the full training loss (all scales, with smoothness).
	Photometric, Loss float64
	// Depth averages the KITTI metrics of each target with ground truth (metric:
	// no median scaling; Monodepth2's depth range). DepthImages counts them; 0
	// means no ground truth was available and Depth is empty.
	Depth       depth.Metrics
	DepthImages int
	Samples     int
}

func (e Evaluation) String() string {
	s := fmt.Sprintf("photometric %.4f loss %.4f (%d samples)", e.Photometric, e.Loss, e.Samples)
	if e.DepthImages > 0 {
		s += fmt.Sprintf("; depth over %d images: abs_rel %.3f sq_rel %.3f rmse %.2f m δ<1.25 %.3f",
			e.DepthImages, e.Depth.AbsRel, e.Depth.SqRel, e.Depth.RMSE, e.Depth.Delta1)
	}
	return s
}

// Evaluate runs m (batch norm frozen, no gradients) over host batches built without
// augmentation and returns the mean errors. The model's batch-norm mode is restored.
func Evaluate(b tensor.Backend, m *monodepth2.Model, batches []*HostBatch) (Evaluation, error) {
	defer m.SetBatchNormTraining(m.BatchNormTraining())
	m.SetBatchNormTraining(false)
	var ev Evaluation
	var photo, loss float64
	var sums [7]float64
	opts := depth.CompareOptions{MinDepthM: monodepth2.MinDepth, MaxDepthM: monodepth2.MaxDepth}
	for _, hb := range batches {
		batch, err := hb.Upload(b)
		if err != nil {
			return ev, err
		}
		t := nn.NewTape(b)
		t.NoGrad = true
		out, err := Loss(t, m, batch)
		if err != nil {
			batch.Free(b)
			return ev, err
		}
		l, err1 := b.ToHost(out.Loss.Value)
		p, err2 := b.ToHost(out.Photo[0].Value)
		d, err3 := b.ToHost(out.Depth0.Value)
		t.Release()
		batch.Free(b)
		if err := firstErr(err1, err2, err3); err != nil {
			return ev, err
		}
		photo += float64(p[0]) * float64(hb.N)
		loss += float64(l[0]) * float64(hb.N)
		ev.Samples += hb.N
		if hb.Truth == nil {
			continue
		}
		hw := hb.H * hb.W
		for i := 0; i < hb.N; i++ {
			truth := depth.Map{Width: hb.W, Height: hb.H, M: hb.Truth[i*hw : (i+1)*hw]}
			if depth.ValidFraction(truth) == 0 {
				continue // a right-eye target: the simulator records the left eye's depth
			}
			pred := depth.Map{Width: hb.W, Height: hb.H, M: d[i*hw : (i+1)*hw]}
			mt, err := depth.Compare(pred, truth, nil, opts)
			if err != nil {
				return ev, err
			}
			for k, v := range []float64{mt.AbsRel, mt.SqRel, mt.RMSE, mt.RMSELog, mt.Delta1, mt.Delta2, mt.Delta3} {
				sums[k] += v
			}
			ev.DepthImages++
		}
	}
	if ev.Samples == 0 {
		return ev, fmt.Errorf("evaluate: no samples")
	}
	ev.Photometric, ev.Loss = photo/float64(ev.Samples), loss/float64(ev.Samples)
	if ev.DepthImages > 0 {
		n := float64(ev.DepthImages)
		ev.Depth = depth.Metrics{AbsRel: sums[0] / n, SqRel: sums[1] / n, RMSE: sums[2] / n, RMSELog: sums[3] / n,
			Delta1: sums[4] / n, Delta2: sums[5] / n, Delta3: sums[6] / n, Scale: 1}
	}
	return ev, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
