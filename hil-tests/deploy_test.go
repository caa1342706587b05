package hiltests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnitVerifies: deploy/edgedepth.service passes systemd's own checker with the
// binary under test in ExecStart (the unit is otherwise installed as it is).
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not found: install the Debian package systemd")
	}
	unit, err := os.ReadFile("../deploy/edgedepth.service")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(unit), "ExecStart=/usr/local/bin/edgedepth", "ExecStart="+binary, 1)
	if text == string(unit) {
		t.Fatal("deploy/edgedepth.service has no ExecStart=/usr/local/bin/edgedepth line")
	}
	path := filepath.Join(t.TempDir(), "edgedepth.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
