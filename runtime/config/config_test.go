package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEveryShippedConfigLoads(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("expected at least default.yaml and jetson-orin.yaml in configs/, got %v (%v)", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadErrorsNameTheProblem(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        []string
		want       []string // substrings the error must contain
	}{
		{"malformed", "source: [kind: sim\n", nil, []string{"malformed YAML", "line"}},
		{"unknown top key", "robotid: x\n", nil, []string{"unknown key robotid", "robot_id"}},
		{"unknown nested key", "mqtt:\n  embedded_broker:\n    enabeld: true\n", nil,
			[]string{"unknown key mqtt.embedded_broker.enabeld", "line 3", "enabled"}},
		{"duplicate key", "log_level: info\nlog_level: debug\n", nil, []string{"log_level", "twice"}},
		{"wrong type", "source:\n  ring_size: many\n", nil, []string{"wrong type", "many"}},
		{"mapping expected", "mqtt: yes\n", nil, []string{"mqtt", "mapping"}},
		{"out of range", "source:\n  ring_size: 500\n", nil, []string{"source.ring_size", "500", "[1, 64]"}},
		{"bad enum", "source:\n  kind: usb\n", nil, []string{"source.kind", "usb", "sim, rtsp"}},
		{"fps range", "source:\n  sim:\n    fps: 0\n", nil, []string{"source.sim.fps", "[0.1, 1000]"}},
		{"sim extra key", "source:\n  sim:\n    texture_scale: 9\n", nil, []string{"source.sim.texture_scale", "9"}},
		{"sgbm mode", "depth:\n  sgbm:\n    mode: turbo\n", nil, []string{"depth.sgbm.mode", "turbo"}},
		{"sgbm depth range is not its own", "depth:\n  sgbm:\n    max_depth_m: 5\n", nil, []string{"unknown key depth.sgbm.max_depth_m"}},
		{"mqtt inline key", "mqtt:\n  keep_alive: 10ms\n", nil, []string{"mqtt.keep_alive"}},
		{"disparities multiple", "depth:\n  sgbm:\n    num_disparities: 100\n", nil, []string{"depth.sgbm.num_disparities", "multiple of 16"}},
		{"depth order", "depth:\n  min_depth_m: 10\n  max_depth_m: 5\n", nil, []string{"depth.max_depth_m", "greater"}},
		{"16-bit cap", "depth:\n  max_depth_m: 100\n", nil, []string{"depth.max_depth_m", "65.535"}},
		{"broker url", "mqtt:\n  broker_url: 127.0.0.1:1883\n", nil, []string{"mqtt.broker_url"}},
		{"rtsp needs urls", "source:\n  kind: rtsp\n", nil, []string{"source.rtsp.left", "url is required", "source.rtsp.calibration"}},
		{"pairing key", "source:\n  kind: rtsp\n  rtsp:\n    pairing:\n      pair_tolerance: -1s\n", nil, []string{"source.rtsp.pairing.pair_tolerance"}},
		{"robot id", "robot_id: a/b\n", nil, []string{"robot_id", "a/b"}},
		{"training size", "training:\n  enabled: true\n  width: 100\n  height: 32\n", nil,
			[]string{"training.width: 100", "training.height: 32", "multiple of 32"}},
		{"training duty", "training:\n  enabled: true\n  duty: 0\n", nil, []string{"training.duty", "(0, 1]"}},
		{"training replay", "training:\n  enabled: true\n  recent_samples: 1\n  reservoir_samples: 0\n", nil,
			[]string{"training.recent_samples + training.reservoir_samples", "training.batch 4"}},
		{"training key", "training:\n  l2sp: 1\n", nil, []string{"unknown key training.l2sp", "l2sp_weight"}},
		{"training env", "", []string{"EDGEDEPTH_TRAINING_ENABLED=true", "EDGEDEPTH_TRAINING_CHANNEL_SCALE=2"},
			[]string{"training.channel_scale", "(0, 1]"}},
		{"unknown env", "", []string{"EDGEDEPTH_MQTT_BROKERURL=x"}, []string{"EDGEDEPTH_MQTT_BROKERURL", "no configuration key"}},
		{"bad env int", "", []string{"EDGEDEPTH_SOURCE_RING_SIZE=lots"}, []string{"EDGEDEPTH_SOURCE_RING_SIZE", "integer"}},
		{"env out of range", "", []string{"EDGEDEPTH_SOURCE_SIM_WIDTH=10"}, []string{"source.sim.width", "[16, 8192]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tc.yaml), tc.env)
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestMissingFileNamesIt(t *testing.T) {
	_, err := Load("/nonexistent/edgedepth.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/edgedepth.yaml") {
		t.Fatalf("error %v does not name the file", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	c, err := Load(writeConfig(t, "mqtt:\n  broker_url: tcp://a:1\n"), []string{
		"EDGEDEPTH_MQTT_BROKER_URL=tcp://b:2",
		"EDGEDEPTH_MQTT_EMBEDDED_BROKER_ENABLED=false",
		"EDGEDEPTH_SOURCE_SIM_FPS=2.5",
		"EDGEDEPTH_SHUTDOWN_TIMEOUT=2s",
		"EDGEDEPTH_DEPTH_SGBM_MODE=hh",
		"EDGEDEPTH_MQTT_USERNAME=robot",
		"EDGEDEPTH_CONFIG=ignored.yaml",
		"PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.BrokerURL != "tcp://b:2" || c.MQTT.Embedded.Enabled || c.Source.Sim.FPS != 2.5 || c.ShutdownTimeout != 2*time.Second ||
		c.Depth.SGBM.Mode != "hh" || c.MQTT.Username != "robot" {
		t.Fatalf("overrides not applied: %+v", c)
	}
}

func TestYAMLOverridesDefaultsOnlyWhereGiven(t *testing.T) {
	c, err := Load(writeConfig(t, "source:\n  sim:\n    scene: room\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Source.Sim.Scene != "room" || c.Source.Sim.Width != d.Source.Sim.Width || c.MQTT.BrokerURL != d.MQTT.BrokerURL {
		t.Fatalf("unexpected merge: %+v", c.Source.Sim)
	}
}

func TestEnvNamesCoverNestedKeys(t *testing.T) {
	names := strings.Join(EnvNames(), " ")
	for _, want := range []string{"EDGEDEPTH_MQTT_EMBEDDED_BROKER_ADDR", "EDGEDEPTH_DEPTH_SGBM_BLOCK_SIZE", "EDGEDEPTH_ROBOT_ID",
		"EDGEDEPTH_MQTT_PASSWORD_FILE", "EDGEDEPTH_DEPTH_SGBM_MODE", "EDGEDEPTH_TRAINING_ENABLED", "EDGEDEPTH_TRAINING_SAMPLE_INTERVAL"} {
		if !strings.Contains(names, want) {
			t.Errorf("EnvNames lacks %s", want)
		}
	}
}

func FuzzLoad(f *testing.F) {
	for _, s := range []string{"", "robot_id: x\n", "source:\n  kind: sim\n", "mqtt: {enabled: false}\n", "a: &x 1\nb: *x\n"} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(dir, "f.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p, nil)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Load accepted a config that does not validate: %v", verr)
			}
		}
	})
}
