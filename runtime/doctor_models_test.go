package runtime

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/runtime/config"
)

// TestDoctorReportsTheModel: doctor says which model version the networks would run,
// or that depth comes from SGBM, and changes nothing on disk.
func TestDoctorReportsTheModel(t *testing.T) {
	report := func(cfg config.Config) string {
		var buf bytes.Buffer
		checkModel(cfg, func(level, what, format string, args ...any) {
			buf.WriteString(level + " " + what + " ")
			buf.WriteString(strings.TrimSpace(strings.ReplaceAll(format, "%", "")))
			buf.WriteString("\n")
		})
		return buf.String()
	}
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	if got := report(cfg); !strings.HasPrefix(got, "ok model no model store") {
		t.Errorf("empty data dir: %q", got)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "models")); err == nil {
		t.Error("doctor created the model store")
	}
	cfg.Depth.Estimator = "network"
	if got := report(cfg); !strings.HasPrefix(got, "FAIL model") {
		t.Errorf("network without a model: %q", got)
	}
	d := networkDaemon(t) // a data dir holding the test model
	var buf bytes.Buffer
	Doctor(context.Background(), d.cfg, "test", &buf)
	if !strings.Contains(buf.String(), "version 1 (base, channel scale 0.25") {
		t.Errorf("doctor with the test model:\n%s", buf.String())
	}
}
