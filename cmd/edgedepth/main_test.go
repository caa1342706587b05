package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"no args", nil, 2, "Usage"},
		{"help", []string{"help"}, 0, "Commands:"},
		{"version", []string{"version"}, 0, "edgedepth "},
		{"unknown", []string{"teleport"}, 2, `unknown command "teleport"`},
		{"run flag help", []string{"run", "-h"}, 0, "--config"},
		{"run stray argument", []string{"run", "extra"}, 2, `unexpected argument "extra"`},
		{"sim help", []string{"sim", "-h"}, 0, "serve"},
		{"sim unknown", []string{"sim", "fly"}, 2, `unknown command "fly"`},
		{"sim write needs out", []string{"sim", "write"}, 2, "--out is required"},
		{"sim write bad scene", []string{"sim", "write", "--out", "x", "--scene", "moon"}, 1, "moon"},
		{"calib needs board", []string{"calib"}, 2, "--board is required"},
		{"missing config", []string{"doctor", "--config", "/nonexistent.yaml"}, 1, "/nonexistent.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tc.args, &out, &errOut)
			all := out.String() + errOut.String()
			if code != tc.code || !strings.Contains(all, tc.contains) {
				t.Fatalf("exit %d (want %d); output does not contain %q or is wrong:\n%s", code, tc.code, tc.contains, all)
			}
		})
	}
}

// TestDoctor runs doctor on the default configuration with its ports moved to free ones
// and the data directory in a temporary folder: every check passes, and the report
// names OpenCV's version and says what CUDA it found (on CI: none, so the networks run
// on the CPU).
func TestDoctor(t *testing.T) {
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	broker := free()
	t.Setenv("EDGEDEPTH_DATA_DIR", t.TempDir())
	t.Setenv("EDGEDEPTH_MQTT_EMBEDDED_BROKER_ADDR", broker)
	t.Setenv("EDGEDEPTH_MQTT_BROKER_URL", "tcp://"+broker)
	t.Setenv("EDGEDEPTH_HTTP_ADDR", free())
	var out, errOut bytes.Buffer
	if code := run([]string{"doctor", "--config", "../../configs/default.yaml"}, &out, &errOut); code != 0 {
		t.Fatalf("doctor exit %d:\n%s%s", code, out.String(), errOut.String())
	}
	cuda := "no usable CUDA"
	if strings.Contains(out.String(), "ok    cuda") {
		cuda = "a test kernel compiled for"
	}
	for _, want := range []string{"OpenCV 4.", cuda, "simulated street rig", "is writable", "embedded broker can listen"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDoctorNamesUnreachableBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv("EDGEDEPTH_DATA_DIR", t.TempDir())
	t.Setenv("EDGEDEPTH_MQTT_EMBEDDED_BROKER_ENABLED", "false")
	t.Setenv("EDGEDEPTH_MQTT_BROKER_URL", "tcp://"+dead)
	t.Setenv("EDGEDEPTH_HTTP_ADDR", "")
	var out, errOut bytes.Buffer
	code := run([]string{"doctor"}, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), dead) {
		t.Fatalf("doctor exit %d, want 1 with a FAIL line naming %s:\n%s%s", code, dead, out.String(), errOut.String())
	}
}
