package platform

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
)

// Telemetry is one set of live readings. Temperatures in °C, power in W, GPU load 0..1.
type Telemetry struct {
	Temps   []TempReading `json:"temps"`
	Rails   []RailReading `json:"rails"`
	GPULoad float64       `json:"gpu_load"` // -1 when the board exposes no GPU load
}

// TempReading is one thermal zone's temperature.
type TempReading struct {
	Name string  `json:"name"` // the zone's type: "cpu-thermal", "tj-thermal", ...
	C    float64 `json:"c"`
}

// RailReading is one power rail's power.
type RailReading struct {
	Name string  `json:"name"`
	W    float64 `json:"w"`
}

// MaxTemp is the hottest zone's temperature and name; ok is false with no readings.
func (t Telemetry) MaxTemp() (name string, c float64, ok bool) {
	for _, r := range t.Temps {
		if !ok || r.C > c {
			name, c, ok = r.Name, r.C, true
		}
	}
	return name, c, ok
}

// Sampler reads the live values (temperatures, rail power, GPU load) again and again
// cheaply: it finds the files once, keeps them open and re-reads them from offset 0, so
// that a Sample in steady state allocates nothing. A Sampler belongs to one goroutine (the
// governor's loop); Close releases the files.
type Sampler struct {
	temps   []sampledFile
	rails   []sampledRail
	gpuLoad *os.File
	buf     [32]byte
}

type sampledFile struct {
	name string
	f    *os.File
}

type sampledRail struct {
	name      string
	volt, cur *os.File
}

// NewSampler finds the thermal zones, INA3221 rails and GPU load file under root. Files
// that cannot be opened are left out (the probe's notes say why); a Sampler on a machine
// without any gives empty readings.
func NewSampler(root string) *Sampler {
	s := &Sampler{}
	dirs, _ := filepath.Glob(filepath.Join(root, ThermalDir, "thermal_zone*"))
	sort.Slice(dirs, func(i, j int) bool { return naturalLess(filepath.Base(dirs[i]), filepath.Base(dirs[j])) })
	for _, d := range dirs {
		name, _ := readTrimmed(filepath.Join(d, "type"))
		f, err := os.Open(filepath.Join(d, "temp"))
		if err != nil {
			continue
		}
		if name == "" {
			name = filepath.Base(d)
		}
		s.temps = append(s.temps, sampledFile{name: name, f: f})
	}
	for _, c := range railChannels(root) {
		v, err1 := os.Open(c.inPath)
		a, err2 := os.Open(c.cPath)
		if err1 != nil || err2 != nil {
			closeAll(v, a)
			continue
		}
		s.rails = append(s.rails, sampledRail{name: c.name, volt: v, cur: a})
	}
	if p := gpuLoadPath(root, gpuDevfreq(root)); p != "" {
		if f, err := os.Open(p); err == nil {
			s.gpuLoad = f
		}
	}
	return s
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// Sample reads every value into dst, reusing dst's slices. Zones without a reading
// (unreadable, or the -256000 m°C Jetson zones report without a sensor) are left out.
func (s *Sampler) Sample(dst *Telemetry) {
	dst.Temps = dst.Temps[:0]
	dst.Rails = dst.Rails[:0]
	dst.GPULoad = -1
	for _, t := range s.temps {
		if milli, ok := s.readInt(t.f); ok && milli > -40000 {
			dst.Temps = append(dst.Temps, TempReading{Name: t.name, C: float64(milli) / 1000})
		}
	}
	for _, r := range s.rails {
		mv, ok1 := s.readInt(r.volt)
		ma, ok2 := s.readInt(r.cur)
		if ok1 && ok2 {
			dst.Rails = append(dst.Rails, RailReading{Name: r.name, W: float64(mv) * float64(ma) / 1e6})
		}
	}
	if s.gpuLoad != nil {
		if v, ok := s.readInt(s.gpuLoad); ok {
			dst.GPULoad = float64(v) / 1000
		}
	}
}

// Close releases the files. The Sampler must not be used afterwards.
func (s *Sampler) Close() error {
	var errs []error
	for _, t := range s.temps {
		errs = append(errs, t.f.Close())
	}
	for _, r := range s.rails {
		errs = append(errs, r.volt.Close(), r.cur.Close())
	}
	if s.gpuLoad != nil {
		errs = append(errs, s.gpuLoad.Close())
	}
	s.temps, s.rails, s.gpuLoad = nil, nil, nil
	return errors.Join(errs...)
}

// readInt re-reads a sysfs attribute from offset 0 and parses a decimal integer without
// allocating.
func (s *Sampler) readInt(f *os.File) (int64, bool) {
	n, err := f.ReadAt(s.buf[:], 0)
	if n == 0 && err != nil {
		return 0, false
	}
	return parseDecimal(s.buf[:n])
}

func parseDecimal(b []byte) (int64, bool) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		neg = b[i] == '-'
		i++
	}
	start := i
	var v int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if v > (1<<62)/10 {
			return 0, false
		}
		v = v*10 + int64(b[i]-'0')
		i++
	}
	if i == start {
		return 0, false
	}
	for ; i < len(b); i++ {
		if c := b[i]; c != '\n' && c != ' ' && c != '\t' && c != 0 {
			return 0, false
		}
	}
	if neg {
		v = -v
	}
	return v, true
}

// Sample is a one-shot NewSampler + Sample + Close, for callers that read once (doctor,
// tests). A loop that polls should keep a Sampler instead.
func Sample(root string) Telemetry {
	s := NewSampler(root)
	defer s.Close()
	var t Telemetry
	s.Sample(&t)
	return t
}
