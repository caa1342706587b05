package platform

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestProbeFixtures(t *testing.T) {
	tests := []struct {
		root       string
		state      State
		reason     string
		l4t        string
		jetpack    string
		model      string
		module     string
		mode       PowerMode // Modes not compared
		cpuMaxKHz  []int64
		gpuDevice  string
		gpuMaxHz   int64
		gpuLoad    float64
		emc        bool
		zones      int     // thermal zones listed
		hottest    float64 // °C
		rails      []string
		railW      float64 // first rail
		noteSubstr []string
	}{
		{
			root: "agx-orin-jp6", state: Loaded, l4t: "36.3.0", jetpack: "6.0",
			model: "NVIDIA Jetson AGX Orin Developer Kit", module: "Jetson AGX Orin 64GB (P3701-0005)",
			mode:      PowerMode{ID: 2, Name: "MODE_30W", Source: "status"},
			cpuMaxKHz: []int64{1728000, 1728000, 1728000},
			gpuDevice: "17000000.gpu", gpuMaxHz: 612000000, gpuLoad: 0.125, emc: true,
			zones: 10, hottest: 47.593,
			rails: []string{"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"}, railW: 19.232 * 1.048,
		},
		{
			root: "orin-nx-16gb-jp5", state: Loaded, l4t: "35.4.1", jetpack: "5.1.2",
			model: "NVIDIA Orin NX Developer Kit", module: "Jetson Orin NX 16GB (P3767-0000)",
			mode:      PowerMode{ID: 3, Name: "MODE_25W", Fan: "quiet", Source: "status"},
			cpuMaxKHz: []int64{1984000, 1984000},
			gpuDevice: "17000000.ga10b", gpuMaxHz: 918000000, gpuLoad: 0.34,
			zones: 11, hottest: 51.062,
			rails: []string{"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}, railW: 5.080 * 2.464,
			noteSubstr: []string{"thermal_zone10 (Tdiode_tegra): no reading", "memory clock: not readable"},
		},
		{
			root: "orin-nano-8gb-jp6", state: Loaded, l4t: "36.4.3", jetpack: "6.2",
			model: "NVIDIA Jetson Orin Nano Developer Kit", module: "Jetson Orin Nano 8GB, developer kit (P3767-0005)",
			mode:      PowerMode{ID: 0, Name: "15W", Source: "default"},
			cpuMaxKHz: []int64{1510400, 1510400},
			gpuDevice: "17000000.gpu", gpuMaxHz: 624750000, gpuLoad: -1,
			zones: 9, hottest: 43.218,
			rails: []string{"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}, railW: 5.104 * 1.208,
			noteSubstr: []string{"power mode: open /var/lib/nvpmodel/status", "reporting the conf's default", "memory clock: not readable"},
		},
		{root: "non-jetson", state: Skipped, reason: "not a Jetson (no /etc/nv_tegra_release)"},
		{root: "malformed-release", state: Failed, reason: "/etc/nv_tegra_release: malformed nv_tegra_release: major release \"(release)\" is not a positive number"},
		{root: "does-not-exist", state: Skipped, reason: "not a Jetson (no /etc/nv_tegra_release)"},
	}
	for _, tt := range tests {
		t.Run(tt.root, func(t *testing.T) {
			r := Probe(filepath.Join("testdata", tt.root))
			if r.State != tt.state || r.Reason != tt.reason {
				t.Fatalf("state %v %q, want %v %q", r.State, r.Reason, tt.state, tt.reason)
			}
			if tt.state != Loaded {
				if r.Release != nil || r.CPU != nil || r.Thermal != nil {
					t.Errorf("a %v probe reports details: %+v", r.State, r)
				}
				if got := r.Text(); got != "jetson: "+tt.state.String()+": "+tt.reason+"\n" {
					t.Errorf("Text() = %q", got)
				}
				return
			}
			if got := r.Release.L4T(); got != tt.l4t || r.JetPack != tt.jetpack {
				t.Errorf("L4T %s JetPack %s, want %s %s", got, r.JetPack, tt.l4t, tt.jetpack)
			}
			if r.Model != tt.model || r.Module != tt.module {
				t.Errorf("model %q module %q, want %q %q", r.Model, r.Module, tt.model, tt.module)
			}
			if r.PowerMode == nil {
				t.Fatalf("no power mode; notes %q", r.Notes)
			}
			got := *r.PowerMode
			got.Modes = nil
			if !reflect.DeepEqual(got, tt.mode) {
				t.Errorf("power mode %+v, want %+v", got, tt.mode)
			}
			var maxes []int64
			for _, p := range r.CPU {
				maxes = append(maxes, p.MaxKHz)
			}
			if !reflect.DeepEqual(maxes, tt.cpuMaxKHz) {
				t.Errorf("cpu max %v, want %v", maxes, tt.cpuMaxKHz)
			}
			if r.GPU == nil || r.GPU.Device != tt.gpuDevice || r.GPU.MaxHz != tt.gpuMaxHz || r.GPU.Load != tt.gpuLoad {
				t.Errorf("gpu %+v, want %s max %d load %g", r.GPU, tt.gpuDevice, tt.gpuMaxHz, tt.gpuLoad)
			}
			if (r.EMC != nil) != tt.emc {
				t.Errorf("emc %+v, want present=%v", r.EMC, tt.emc)
			}
			if len(r.Thermal) != tt.zones {
				t.Errorf("%d zones, want %d", len(r.Thermal), tt.zones)
			}
			hot := -1.0
			for i, z := range r.Thermal {
				if want := "thermal_zone" + strconv.Itoa(i); z.Zone != want {
					t.Errorf("zone %d is %s, want %s (natural order)", i, z.Zone, want)
				}
				if z.OK && z.TempC > hot {
					hot = z.TempC
				}
			}
			if math.Abs(hot-tt.hottest) > 1e-9 {
				t.Errorf("hottest %g °C, want %g", hot, tt.hottest)
			}
			var names []string
			for _, p := range r.Rails {
				names = append(names, p.Name)
			}
			if !reflect.DeepEqual(names, tt.rails) {
				t.Errorf("rails %v, want %v", names, tt.rails)
			}
			if len(r.Rails) > 0 && math.Abs(r.Rails[0].PowerW-tt.railW) > 1e-9 {
				t.Errorf("rail %s %g W, want %g", r.Rails[0].Name, r.Rails[0].PowerW, tt.railW)
			}
			notes := strings.Join(r.Notes, "\n")
			for _, s := range tt.noteSubstr {
				if !strings.Contains(notes, s) {
					t.Errorf("notes lack %q:\n%s", s, notes)
				}
			}
			if len(tt.noteSubstr) == 0 && len(r.Notes) > 0 {
				t.Errorf("unexpected notes:\n%s", notes)
			}
			if strings.Contains(notes, "testdata") {
				t.Errorf("notes name the fixture root instead of system paths:\n%s", notes)
			}
			text := r.Text()
			for _, s := range []string{"jetson: loaded: " + tt.model, "L4T " + tt.l4t, "JetPack " + tt.jetpack, "power mode: ", tt.mode.Name, "temperatures: ", "power: " + tt.rails[0]} {
				if !strings.Contains(text, s) {
					t.Errorf("Text() lacks %q:\n%s", s, text)
				}
			}

			// The JSON form round-trips.
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var back Report
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, r) {
				t.Errorf("JSON round trip changed the report:\n%s", b)
			}
		})
	}
}

func TestProbeUnreadableRelease(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, TegraReleasePath), 0o755); err != nil { // a directory: read fails
		t.Fatal(err)
	}
	r := Probe(root)
	if r.State != Failed || !strings.Contains(r.Reason, "read /etc/nv_tegra_release") {
		t.Errorf("got %v %q, want failed with the read error", r.State, r.Reason)
	}
}

func TestStateText(t *testing.T) {
	for _, s := range []State{Loaded, Skipped, Failed} {
		b, _ := s.MarshalText()
		var back State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%v: round trip gave %v, %v", s, back, err)
		}
	}
	var s State
	if err := s.UnmarshalText([]byte("exploded")); err == nil {
		t.Error("unknown state accepted")
	}
}
