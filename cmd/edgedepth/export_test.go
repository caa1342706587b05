package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/nn/onnx"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

// TestExportONNX exports the active version of a store (a quarter-width model, as
// training writes it) and checks the files and what the command says; bad
// invocations are errors that say why. ONNX Runtime's run of such files is tested
// in jetson/trt.
func TestExportONNX(t *testing.T) {
	store := filepath.Join(t.TempDir(), "models")
	b := cpu.New(1)
	m, err := monodepth2.NewWithOptions(b, monodepth2.Options{ChannelScale: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(b, 1); err != nil {
		t.Fatal(err)
	}
	ts, err := m.Params.Export(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := trainer.OpenStore(store, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ts, trainer.Version{State: trainer.StateBase, ChannelScale: 0.25}); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "onnx")
	var so, se bytes.Buffer
	if code := run([]string{"export", "onnx", "--store", store, "--width", "128", "--height", "64", "--out", out}, &so, &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	for _, want := range []string{"version 1", "channel scale 0.25", "batch×3×64×128", "opset 13"} {
		if !strings.Contains(so.String(), want) {
			t.Errorf("output %q does not say %q", so.String(), want)
		}
	}
	man, err := onnx.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if man.ChannelScale != 0.25 || !strings.Contains(man.Source, "version 1") || man.Depth.Outputs[1].Name != onnx.DepthDepth {
		t.Errorf("manifest %+v", man)
	}
	for _, f := range []string{onnx.DepthFile, onnx.PoseFile} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() < 1e6 {
			t.Errorf("%s: %v", f, err)
		}
	}

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"help", []string{"export", "-h"}, 0, "image_pair"},
		{"no format", []string{"export"}, 2, "Usage: edgedepth export onnx"},
		{"needs out", []string{"export", "onnx", "--store", store}, 2, "--out is required"},
		{"bad size", []string{"export", "onnx", "--store", store, "--width", "100", "--out", out}, 1, "multiple of 32"},
		{"no such version", []string{"export", "onnx", "--store", store, "--version", "7", "--out", out}, 1, "7"},
		{"empty store", []string{"export", "onnx", "--store", t.TempDir(), "--out", out}, 1, "edgedepth import monodepth2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var so, se bytes.Buffer
			code := run(tc.args, &so, &se)
			if all := so.String() + se.String(); code != tc.code || !strings.Contains(all, tc.contains) {
				t.Errorf("exit %d (want %d), output does not contain %q:\n%s", code, tc.code, tc.contains, all)
			}
		})
	}
}
