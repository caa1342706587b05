package runtime

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/runtime/config"
	"github.com/edgedepth/edgedepth/trainer"
)

// TestModelCommands drives the model and training commands' handlers against a
// learner on a fresh store: snapshot, list, rollback to a version, reset to the base,
// pause/resume/set, and the errors that name what is wrong.
func TestModelCommands(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Training = tinyTraining()
	d := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	l, err := d.newLearner()
	if err != nil {
		t.Fatal(err)
	}
	d.learner = l
	ctx := context.Background()
	call := func(h func(context.Context, json.RawMessage) (any, error), args string) (any, error) {
		return h(ctx, json.RawMessage(args))
	}

	if _, err := call(d.modelReset, ""); err == nil || !strings.Contains(err.Error(), "no base model") {
		t.Errorf("model/reset on an empty store: %v", err)
	}
	first, err := call(d.modelSnapshot, `{"note":"before the field trip"}`)
	if err != nil {
		t.Fatal(err)
	}
	v1 := first.(trainer.Version)
	if !strings.Contains(v1.Note, "before the field trip") {
		t.Errorf("snapshot note %q", v1.Note)
	}
	second, err := call(d.modelSnapshot, "")
	if err != nil {
		t.Fatal(err)
	}
	v2 := second.(trainer.Version)
	if _, err := call(d.modelRollback, `{"version":`+itoa(v1.Version)+`}`); err != nil {
		t.Fatal(err)
	}
	list, err := call(d.modelList, "")
	if err != nil {
		t.Fatal(err)
	}
	ml := list.(ModelList)
	if ml.Active != v1.Version || len(ml.Versions) != 2 || ml.Versions[1].Version != v2.Version {
		t.Errorf("model/list after rollback: %+v", ml)
	}
	if st := l.Status(); st.ActiveVersion != v1.Version {
		t.Errorf("the learner's active version is %d, want %d", st.ActiveVersion, v1.Version)
	}
	for _, c := range []struct{ args, want string }{
		{``, "version: give the version number"},
		{`{"version":0}`, "version: give the version number"},
		{`{"version":99}`, "no version 99"},
		{`{"versoin":1}`, "versoin"},
	} {
		if _, err := call(d.modelRollback, c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("model/rollback %s: %v, want an error with %q", c.args, err, c.want)
		}
	}

	if _, err := call(d.trainingPause, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := call(d.trainingSet, `{"lr":0.0002,"duty":0.5}`); err != nil {
		t.Fatal(err)
	}
	if _, err := call(d.trainingResume, ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ args, want string }{
		{`{}`, "give lr"},
		{`{"duty":2}`, "duty"},
		{`{"lr":-1}`, "lr"},
		{`{"speed":1}`, "speed"},
	} {
		if _, err := call(d.trainingSet, c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("training/set %s: %v, want an error with %q", c.args, err, c.want)
		}
	}

	// Without a learner, snapshot and training commands say learning is off; the
	// store can still be listed.
	off := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	if _, err := off.modelSnapshot(ctx, nil); err == nil || !strings.Contains(err.Error(), "training.enabled") {
		t.Errorf("snapshot without a learner: %v", err)
	}
	if _, err := off.modelList(ctx, nil); err != nil {
		t.Errorf("list without a learner: %v", err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
