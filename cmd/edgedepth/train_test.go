package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/trainer"
)

func TestTrainOnTheSimAndResume(t *testing.T) {
	store := filepath.Join(t.TempDir(), "models")
	args := []string{"train", "--sim", "room", "--sim-frames", "40", "--width", "96", "--height", "64", "--channel-scale", "0.25",
		"--batch", "2", "--val-every", "2", "--checkpoint-every", "2", "--store", store}
	var out, errb bytes.Buffer
	if code := run(append(args, "--steps", "4"), &out, &errb); code != 0 {
		t.Fatalf("train exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "now the store's base") || !strings.Contains(errb.String(), "validation at step 2") ||
		!strings.Contains(errb.String(), "abs_rel") {
		t.Errorf("stdout %q\nstderr %q", out.String(), errb.String())
	}
	s, err := trainer.OpenStore(store, 0)
	if err != nil {
		t.Fatal(err)
	}
	vs := s.List()
	if len(vs) != 3 || vs[1].Steps != 4 || vs[1].ValidationError == nil || vs[2].State != trainer.StateBase {
		t.Fatalf("store after training: %+v", vs)
	}
	out.Reset()
	errb.Reset()
	if code := run(append(args, "--steps", "6", "--resume"), &out, &errb); code != 0 {
		t.Fatalf("resume exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "(4 steps)") || !strings.Contains(out.String(), "trained 6 steps: candidate version 4") {
		t.Errorf("resume: stdout %q\nstderr %q", out.String(), errb.String())
	}
}

func TestTrainUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "either --data DIR or --sim"},
		{[]string{"--sim", "street", "--data", "x"}, "either --data DIR or --sim"},
		{[]string{"--sim", "street", "--width", "100"}, "multiples of 32"},
		{[]string{"--sim", "street", "--signals", "mono"}, "want both, temporal or stereo"},
		{[]string{"--sim", "street", "--val-split", "3"}, "at least 6"},
		{[]string{"--sim", "moon"}, "moon"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"train", "--store", filepath.Join(t.TempDir(), "m")}, c.args...), &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("train %v: exit %d, stderr %q; want an error with %q", c.args, code, errb.String(), c.want)
		}
	}
}
