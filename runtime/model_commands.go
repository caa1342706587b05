package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/edgedepth/edgedepth/telemetry"
	"github.com/edgedepth/edgedepth/telemetry/command"
	"github.com/edgedepth/edgedepth/trainer"
)

// The model and training commands: an operator lists, snapshots and restores model
// versions and steers the continual learner. Restoring needs the learner (its weights
// are what changes); without training enabled the store can still be listed and its
// active version set, which takes effect when the daemon next starts learning.

// registerModelCommands adds model/list, model/snapshot, model/rollback, model/reset,
// training/pause, training/resume and training/set to disp.
func (d *Daemon) registerModelCommands(disp *command.Dispatcher) {
	disp.Register("model/list", d.modelList)
	disp.Register("model/snapshot", d.modelSnapshot)
	disp.Register("model/rollback", d.modelRollback)
	disp.Register("model/reset", d.modelReset)
	disp.Register("training/pause", d.trainingPause)
	disp.Register("training/resume", d.trainingResume)
	disp.Register("training/set", d.trainingSet)
}

// modelStore is the daemon's one model store, shared by the learner, inference and
// the commands: opened on first use (and retried after a failure). One instance
// matters: opening a store removes temporary files, which must never be a write of
// the learner in progress.
func (d *Daemon) modelStore() (*trainer.Store, error) {
	d.storeMu.Lock()
	defer d.storeMu.Unlock()
	if d.store != nil {
		return d.store, nil
	}
	dir := d.cfg.Training.StoreDir
	if dir == "" {
		dir = filepath.Join(d.cfg.DataDir, "models")
	}
	s, err := trainer.OpenStore(dir, d.cfg.Training.Keep)
	if err != nil {
		return nil, fmt.Errorf("model store: %w", err)
	}
	d.store = s
	return s, nil
}

// noArgs refuses any argument.
func noArgs(raw json.RawMessage) error {
	var v struct{}
	return command.DecodeArgs(raw, &v)
}

// ModelList is the reply of model/list.
type ModelList struct {
	Active   int               `json:"active"`
	Versions []trainer.Version `json:"versions"`
}

func (d *Daemon) modelList(_ context.Context, raw json.RawMessage) (any, error) {
	if err := noArgs(raw); err != nil {
		return nil, err
	}
	s, err := d.modelStore()
	if err != nil {
		return nil, err
	}
	out := ModelList{Versions: s.List()}
	if a, ok := s.Active(); ok {
		out.Active = a.Version
	}
	return out, nil
}

func (d *Daemon) requireLearner() error {
	if d.learner == nil {
		return command.InvalidArgs("continual learning is off on this robot (training.enabled: false)")
	}
	return nil
}

func (d *Daemon) modelSnapshot(_ context.Context, raw json.RawMessage) (any, error) {
	var a struct {
		Note string `json:"note"`
	}
	if err := command.DecodeArgs(raw, &a); err != nil {
		return nil, err
	}
	if err := d.requireLearner(); err != nil {
		return nil, err
	}
	note := "snapshot by an operator"
	if a.Note != "" {
		note += ": " + a.Note
	}
	v, err := d.learner.Snapshot(note)
	if err != nil {
		return nil, err
	}
	d.log.Info("model snapshot", "component", "training", "version", v.Version)
	return v, nil
}

func (d *Daemon) modelRollback(_ context.Context, raw json.RawMessage) (any, error) {
	var a struct {
		Version *int `json:"version"`
	}
	if err := command.DecodeArgs(raw, &a); err != nil {
		return nil, err
	}
	if a.Version == nil || *a.Version < 1 {
		return nil, command.InvalidArgs("version: give the version number to restore (model/list shows them)")
	}
	return d.activate(*a.Version, "rollback")
}

func (d *Daemon) modelReset(_ context.Context, raw json.RawMessage) (any, error) {
	if err := noArgs(raw); err != nil {
		return nil, err
	}
	s, err := d.modelStore()
	if err != nil {
		return nil, err
	}
	base, ok := s.Base()
	if !ok {
		return nil, command.InvalidArgs("the model store has no base model to reset to (edgedepth import or edgedepth train makes one)")
	}
	return d.activate(base.Version, "reset")
}

// activate makes a version active: through the learner (which also takes its weights)
// when it runs, in the store alone otherwise.
func (d *Daemon) activate(version int, why string) (any, error) {
	var v trainer.Version
	var err error
	if d.learner != nil {
		v, err = d.learner.Activate(version)
	} else {
		var s *trainer.Store
		if s, err = d.modelStore(); err == nil {
			if v, err = s.Get(version); err == nil {
				err = s.SetActive(version)
			}
		}
	}
	if err != nil {
		return nil, command.InvalidArgs("%v", err)
	}
	d.log.Info("model version activated by an operator", "component", "training", "version", version, "why", why)
	d.queueVersion(version)
	if d.publisher == nil {
		return v, nil
	}
	d.publisher.PublishJSON(d.topics.Events(), telemetry.Event{Time: time.Now().UTC(), Kind: "model_" + why,
		Message: fmt.Sprintf("an operator made version %d active", version), Fields: map[string]any{"version": version}}, 1, false)
	return v, nil
}

func (d *Daemon) trainingPause(_ context.Context, raw json.RawMessage) (any, error) {
	if err := noArgs(raw); err != nil {
		return nil, err
	}
	if err := d.requireLearner(); err != nil {
		return nil, err
	}
	d.pauseLearner()
	return d.learner.Status(), nil
}

func (d *Daemon) trainingResume(_ context.Context, raw json.RawMessage) (any, error) {
	if err := noArgs(raw); err != nil {
		return nil, err
	}
	if err := d.requireLearner(); err != nil {
		return nil, err
	}
	d.resumeLearner()
	return d.learner.Status(), nil
}

func (d *Daemon) trainingSet(_ context.Context, raw json.RawMessage) (any, error) {
	var a struct {
		LR   *float64 `json:"lr"`
		Duty *float64 `json:"duty"`
	}
	if err := command.DecodeArgs(raw, &a); err != nil {
		return nil, err
	}
	if a.LR == nil && a.Duty == nil {
		return nil, command.InvalidArgs("give lr (Adam's learning rate) and/or duty (fraction of time spent learning, 0–1]")
	}
	if err := d.requireLearner(); err != nil {
		return nil, err
	}
	if a.LR != nil {
		if err := d.learner.SetLR(*a.LR); err != nil {
			return nil, command.InvalidArgs("lr: %v", err)
		}
	}
	if a.Duty != nil {
		if err := d.setLearnerDuty(*a.Duty); err != nil {
			return nil, command.InvalidArgs("duty: %v", err)
		}
	}
	return d.learner.Status(), nil
}
