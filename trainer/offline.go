package trainer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
)

// RunConfig configures an offline training run (Run).
type RunConfig struct {
	Steps     int // optimisation steps to reach (counting a resumed run's earlier ones)
	BatchSize int
	Signals   Signals
	Augment   bool   // Monodepth2's colour jitter and flips
	Seed      uint64 // shuffling, augmentation and noise
	// ValEvery and CheckpointEvery are in steps; 0 means only at the end.
	ValEvery, CheckpointEvery int
	// BatchNormTraining trains batch norm with batch statistics (from scratch);
	// false keeps it frozen (fine-tuning a trained model, small batches).
	BatchNormTraining bool
	// Note describes the data in the checkpoints' manifest entries.
	Note string
	// Parent is the store version the run started from (0: random weights).
	Parent int
}

// Progress is what Run reports: after every step, and with Eval or Checkpoint set
// after a validation or a checkpoint.
type Progress struct {
	Step, Steps   int
	Loss          float64
	LR            float64
	SamplesPerSec float64
	Skipped       int // steps skipped for a non-finite loss or gradient
	Eval          *Evaluation
	Checkpoint    *Version
	// CheckpointErr is set when a checkpoint could not be written (a full disk):
	// training goes on in memory and the next checkpoint tries again.
	CheckpointErr error
}

// ValidationBatches turns a dataset into un-augmented host batches for Evaluate.
func ValidationBatches(ds Dataset, batchSize int, o BatchOptions) ([]*HostBatch, error) {
	var out []*HostBatch
	for i := 0; i < ds.Len(); i += batchSize {
		var ss []Sample
		for j := i; j < min(i+batchSize, ds.Len()); j++ {
			s, err := ds.Sample(j)
			if err != nil {
				return nil, err
			}
			ss = append(ss, s)
		}
		o.Augment = nil
		hb, err := NewHostBatch(ss, o, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, hb)
	}
	return out, nil
}

// Run trains tr's model on train until cfg.Steps steps, validating on val and writing
// checkpoints (candidates) into store. Cancelling ctx ends the run after the current
// step with a last checkpoint; Run then returns nil. It returns the last version
// written (zero if none).
func Run(ctx context.Context, tr *Trainer, train Dataset, val []*HostBatch, store *Store, cfg RunConfig, report func(Progress)) (Version, error) {
	if cfg.BatchSize < 1 || cfg.Steps < 1 {
		return Version{}, fmt.Errorf("train: batch size %d and steps %d must be at least 1", cfg.BatchSize, cfg.Steps)
	}
	var aug *Augment
	if cfg.Augment {
		a := DefaultAugment()
		aug = &a
	}
	ld, err := NewLoader(train, LoaderOptions{BatchSize: cfg.BatchSize, Seed: cfg.Seed + uint64(tr.Steps()), DropLast: true,
		Batch: BatchOptions{Signals: cfg.Signals, Augment: aug}})
	if err != nil {
		return Version{}, err
	}
	lctx, stop := context.WithCancel(context.Background())
	loaded := make(chan error, 1)
	go func() { loaded <- ld.Run(lctx) }()
	defer func() {
		stop()
		<-loaded
	}()

	m := tr.Model
	var last Version
	var lastEval *Evaluation
	checkpoint := func(p *Progress) {
		v, err := Checkpoint(tr.B, m, store, Version{Parent: cfg.Parent, Steps: tr.Steps(), Note: cfg.Note})
		if err != nil {
			p.CheckpointErr = err
			return
		}
		last = v
		p.Checkpoint = &v
	}
	evaluate := func(p *Progress) error {
		if len(val) == 0 {
			return nil
		}
		ev, err := Evaluate(tr.B, m, val)
		if err != nil {
			return err
		}
		p.Eval, lastEval = &ev, &ev
		return nil
	}
	evaluated := -1 // the step of the last validation
	start, startStep := time.Now(), tr.Steps()
	for tr.Steps() < cfg.Steps && ctx.Err() == nil {
		hb, err := ld.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return last, err
		}
		batch, err := hb.Upload(tr.B)
		if err != nil {
			return last, err
		}
		m.SetBatchNormTraining(cfg.BatchNormTraining)
		res, err := tr.Step(batch)
		batch.Free(tr.B)
		if err != nil && !errors.Is(err, ErrNonFinite) {
			return last, err
		}
		p := Progress{Step: tr.Steps(), Steps: cfg.Steps, Loss: res.Loss, LR: res.LR, Skipped: tr.Skipped(),
			SamplesPerSec: float64((tr.Steps()-startStep)*cfg.BatchSize) / time.Since(start).Seconds()}
		if err == nil {
			if cfg.ValEvery > 0 && tr.Steps()%cfg.ValEvery == 0 {
				if err := evaluate(&p); err != nil {
					return last, err
				}
				evaluated = tr.Steps()
			}
			if cfg.CheckpointEvery > 0 && tr.Steps()%cfg.CheckpointEvery == 0 {
				checkpoint(&p)
			}
		}
		report(p)
	}
	p := Progress{Step: tr.Steps(), Steps: cfg.Steps, Skipped: tr.Skipped()}
	final := lastEval
	if evaluated != tr.Steps() {
		if err := evaluate(&p); err != nil {
			return last, err
		}
		final = p.Eval
	}
	if last.Steps != tr.Steps() || last.Version == 0 {
		checkpoint(&p)
	}
	if p.Eval != nil || p.Checkpoint != nil || p.CheckpointErr != nil {
		report(p)
	}
	if p.CheckpointErr != nil {
		return last, fmt.Errorf("train: the last checkpoint was not written: %w", p.CheckpointErr)
	}
	if final != nil && last.Version != 0 {
		if err := store.Judge(last.Version, final.Photometric, false); err != nil {
			return last, err
		}
	}
	return last, nil
}

// Checkpoint saves the model's parameters (weights and batch-norm statistics) into
// the store as a new version described by v (a candidate unless v.State says base).
func Checkpoint(b tensor.Backend, m *monodepth2.Model, store *Store, v Version) (Version, error) {
	ts, err := m.Params.Export(b)
	if err != nil {
		return Version{}, err
	}
	v.ChannelScale = m.Options.ChannelScale
	return store.Add(ts, v)
}

// Restore loads a store version into the model.
func Restore(b tensor.Backend, m *monodepth2.Model, store *Store, version int) (Version, error) {
	ts, v, err := store.Load(version)
	if err != nil {
		return Version{}, err
	}
	if err := m.Params.Load(b, v.File, "", ts, nil); err != nil {
		return Version{}, fmt.Errorf("model store version %d does not fit this model (another channel scale?): %w", version, err)
	}
	return v, nil
}
