package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

// TestImportMonodepth2 imports checkpoints written by the PyTorch reference and
// checks that the store's base version holds exactly the checkpoint's weights.
func TestImportMonodepth2(t *testing.T) {
	ckDir := t.TempDir()
	ref := "../../trainer/testdata/monodepth2_ref.py"
	out, err := exec.Command("/usr/bin/python3", ref, "parity", "--out", ckDir, "--height", "64", "--width", "96").CombinedOutput()
	if err != nil {
		t.Fatalf("reference: %v\n%s\n(make test-deps installs python3-torch)", err, out)
	}
	store := filepath.Join(t.TempDir(), "models")
	var so, se bytes.Buffer
	if code := run([]string{"import", "monodepth2", "--store", store, ckDir}, &so, &se); code != 0 {
		t.Fatalf("import exit %d: %s", code, se.String())
	}
	if !strings.Contains(so.String(), "base version 1") || !strings.Contains(so.String(), "96x64") {
		t.Errorf("import printed %q", so.String())
	}

	s, err := trainer.OpenStore(store, 0)
	if err != nil {
		t.Fatal(err)
	}
	base, ok := s.Base()
	if !ok {
		t.Fatal("no base version after import")
	}
	ts, _, err := s.Load(base.Version)
	if err != nil {
		t.Fatal(err)
	}
	b := cpu.New(1)
	fromStore, _ := monodepth2.New(b)
	if err := fromStore.Params.Load(b, base.File, "", ts, nil); err != nil {
		t.Fatal(err)
	}
	direct, _ := monodepth2.New(b)
	ck, err := nn.ReadMonodepth2Dir(ckDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := direct.Import(b, ck); err != nil {
		t.Fatal(err)
	}
	for _, p := range direct.Params.All() {
		want, _ := b.ToHost(p.Value)
		got, _ := b.ToHost(fromStore.Params.Get(p.Name).Value)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s[%d] = %v in the store, %v in the checkpoint", p.Name, i, got[i], want[i])
			}
		}
	}

	// A second import would replace the base: refused.
	se.Reset()
	if code := run([]string{"import", "monodepth2", "--store", store, ckDir}, &so, &se); code != 1 || !strings.Contains(se.String(), "never replaced") {
		t.Errorf("second import: exit %d, %q", code, se.String())
	}
	// A folder that is not a checkpoint says what a checkpoint holds.
	se.Reset()
	if code := run([]string{"import", "monodepth2", "--store", store, t.TempDir()}, &so, &se); code != 1 || !strings.Contains(se.String(), "encoder.pth") {
		t.Errorf("empty folder: exit %d, %q", code, se.String())
	}
	// A checkpoint with a mis-shaped tensor names it.
	bad := t.TempDir()
	for _, f := range nn.Monodepth2Files {
		data, _ := os.ReadFile(filepath.Join(ckDir, f))
		os.WriteFile(filepath.Join(bad, f), data, 0o644)
	}
	os.Rename(filepath.Join(bad, "pose.pth"), filepath.Join(bad, "depth.pth"))
	os.WriteFile(filepath.Join(bad, "pose.pth"), mustRead(t, filepath.Join(ckDir, "pose.pth")), 0o644)
	se.Reset()
	if code := run([]string{"import", "monodepth2", "--store", filepath.Join(t.TempDir(), "m"), bad}, &so, &se); code != 1 || !strings.Contains(se.String(), "depth.pth") || !strings.Contains(se.String(), "decoder.0.conv.conv.weight") {
		t.Errorf("pose weights in depth.pth: exit %d, %q", code, se.String())
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
