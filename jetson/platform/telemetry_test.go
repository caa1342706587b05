package platform

import (
	"math"
	"path/filepath"
	"testing"
)

func TestSample(t *testing.T) {
	tests := []struct {
		root    string
		temps   int
		hottest string
		rails   int
		totalW  float64
		gpuLoad float64
	}{
		{"agx-orin-jp6", 10, "cpu-thermal", 4, 19.232*1.048 + 19.232*0.416 + 5.024*1.136 + 5.016*0.216, 0.125},
		{"orin-nx-16gb-jp5", 10, "CPU-therm", 3, 5.080 * (2.464 + 0.864 + 0.648), 0.34},
		{"orin-nano-8gb-jp6", 9, "cpu-thermal", 3, 5.104 * (1.208 + 0.312 + 0.440), -1},
		{"non-jetson", 1, "x86_pkg_temp", 0, 0, -1},
		{"does-not-exist", 0, "", 0, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.root, func(t *testing.T) {
			s := Sample(filepath.Join("testdata", tt.root))
			if len(s.Temps) != tt.temps || len(s.Rails) != tt.rails || s.GPULoad != tt.gpuLoad {
				t.Fatalf("%d temps %d rails load %g, want %d %d %g", len(s.Temps), len(s.Rails), s.GPULoad, tt.temps, tt.rails, tt.gpuLoad)
			}
			if name, _, ok := s.MaxTemp(); ok != (tt.temps > 0) || name != tt.hottest {
				t.Errorf("hottest %q, want %q", name, tt.hottest)
			}
			var w float64
			for _, r := range s.Rails {
				w += r.W
			}
			if math.Abs(w-tt.totalW) > 1e-9 {
				t.Errorf("total %g W, want %g", w, tt.totalW)
			}
		})
	}
}

// A governor polls: after the first sample, sampling allocates nothing.
func TestSamplerDoesNotAllocate(t *testing.T) {
	s := NewSampler(filepath.Join("testdata", "agx-orin-jp6"))
	defer s.Close()
	var tel Telemetry
	s.Sample(&tel)
	if n := testing.AllocsPerRun(100, func() { s.Sample(&tel) }); n != 0 {
		t.Errorf("Sample allocates %g times per call", n)
	}
	if len(tel.Temps) != 10 || len(tel.Rails) != 4 {
		t.Errorf("got %d temps, %d rails", len(tel.Temps), len(tel.Rails))
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"47593\n", 47593, true}, {"-256000\n", -256000, true}, {" 12 \x00", 12, true},
		{"", 0, false}, {"-", 0, false}, {"12a", 0, false}, {"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseDecimal([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("%q: %d %v, want %d %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func BenchmarkSampler(b *testing.B) {
	s := NewSampler(filepath.Join("testdata", "agx-orin-jp6"))
	defer s.Close()
	var tel Telemetry
	b.ReportAllocs()
	for b.Loop() {
		s.Sample(&tel)
	}
}
