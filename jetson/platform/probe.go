package platform

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// State is how the probe ended, in the words periph drivers use.
type State int

const (
	// Loaded: this is a Jetson and the report describes it (parts that could not be
	// read are listed in Notes).
	Loaded State = iota
	// Skipped: not a Jetson; nothing NVIDIA-specific applies. Not an error.
	Skipped
	// Failed: the machine says it is a Jetson but the release file cannot be understood.
	Failed
)

func (s State) String() string {
	switch s {
	case Loaded:
		return "loaded"
	case Skipped:
		return "skipped"
	case Failed:
		return "failed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText writes the state as its word.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the word MarshalText writes.
func (s *State) UnmarshalText(b []byte) error {
	for _, c := range []State{Loaded, Skipped, Failed} {
		if string(b) == c.String() {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("platform: unknown state %q", b)
}

// Paths of the files the probe reads, relative to the filesystem root.
const (
	TegraReleasePath   = "etc/nv_tegra_release"
	ModelPath          = "proc/device-tree/model"
	CompatiblePath     = "proc/device-tree/compatible"
	SoCDir             = "sys/devices/soc0"
	NvpmodelConfPath   = "etc/nvpmodel.conf"
	NvpmodelStatusPath = "var/lib/nvpmodel/status"
	CPUFreqDir         = "sys/devices/system/cpu/cpufreq"
	DevfreqDir         = "sys/class/devfreq"
	LegacyGPULoadPath  = "sys/devices/gpu.0/load"
	EMCClockDir        = "sys/kernel/debug/bpmp/debug/clk/emc"
	ThermalDir         = "sys/class/thermal"
	INA3221Glob        = "sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*"
)

// Report is what the probe found.
type Report struct {
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"` // why skipped or failed

	Release *Release `json:"l4t,omitempty"`
	JetPack string   `json:"jetpack,omitempty"`

	Model      string   `json:"model,omitempty"`      // device-tree model
	Module     string   `json:"module,omitempty"`     // from the compatible list, e.g. "Jetson AGX Orin 64GB (P3701-0005)"
	Compatible []string `json:"compatible,omitempty"` // device-tree compatible, most specific first
	SoCID      string   `json:"soc_id,omitempty"`     // /sys/devices/soc0/soc_id ("35" on Orin: T234)
	SoCMachine string   `json:"soc_machine,omitempty"`

	PowerMode *PowerMode    `json:"power_mode,omitempty"`
	CPU       []CPUPolicy   `json:"cpu,omitempty"`
	GPU       *Devfreq      `json:"gpu,omitempty"`
	EMC       *EMCClock     `json:"emc,omitempty"`
	Thermal   []ThermalZone `json:"thermal,omitempty"`
	Rails     []PowerRail   `json:"rails,omitempty"`
	Notes     []string      `json:"notes,omitempty"` // parts that could not be read, and why
}

// PowerMode is the nvpmodel mode in force. The current id comes from
// /var/lib/nvpmodel/status, which the nvpmodel tool (and its boot service) writes each
// time it applies a mode; the name comes from the matching POWER_MODEL section of
// /etc/nvpmodel.conf. When the status file is missing, the conf's PM_CONFIG DEFAULT is
// reported with Source "default".
type PowerMode struct {
	ID     int          `json:"id"`
	Name   string       `json:"name"`
	Fan    string       `json:"fan,omitempty"`   // fan profile on JetPack 5 ("quiet", "cool")
	Source string       `json:"source"`          // "status" or "default"
	Modes  []PowerModel `json:"modes,omitempty"` // all modes of the conf
}

// CPUPolicy is one cpufreq policy (a cluster of cores that share a clock). Frequencies
// in kHz as cpufreq writes them.
type CPUPolicy struct {
	Policy   string `json:"policy"` // "policy0"
	CPUs     string `json:"cpus"`   // affected_cpus: "0 1 2 3"
	MaxKHz   int64  `json:"max_khz"`
	CurKHz   int64  `json:"cur_khz,omitempty"`
	HWMaxKHz int64  `json:"hw_max_khz"` // cpuinfo_max_freq: the limit without nvpmodel
	Governor string `json:"governor,omitempty"`
}

// Devfreq is the GPU clock as its devfreq device reports it, in Hz.
type Devfreq struct {
	Device   string  `json:"device"` // "17000000.gpu" (JetPack 6), "17000000.ga10b" (JetPack 5)
	MinHz    int64   `json:"min_hz"`
	MaxHz    int64   `json:"max_hz"`
	CurHz    int64   `json:"cur_hz"`
	Governor string  `json:"governor,omitempty"`
	Load     float64 `json:"load"` // 0..1; -1 when unknown
}

// EMCClock is the external memory controller clock, from the BPMP debugfs (root only).
type EMCClock struct {
	RateHz    int64 `json:"rate_hz"`
	MaxRateHz int64 `json:"max_rate_hz"`
}

// ThermalZone is one /sys/class/thermal/thermal_zoneN.
type ThermalZone struct {
	Zone  string  `json:"zone"` // "thermal_zone0"
	Type  string  `json:"type"` // "cpu-thermal" (JetPack 6), "CPU-therm" (JetPack 5)
	TempC float64 `json:"temp_c"`
	OK    bool    `json:"ok"` // false when the zone did not give a temperature
}

// PowerRail is one INA3221 channel: bus voltage and current, and their product.
type PowerRail struct {
	Name     string  `json:"name"` // the in*_label: "VDD_GPU_SOC", "VDD_IN", ...
	Sensor   string  `json:"sensor"`
	Channel  int     `json:"channel"`
	VoltageV float64 `json:"voltage_v"`
	CurrentA float64 `json:"current_a"`
	PowerW   float64 `json:"power_w"`
}

// Probe inspects the filesystem under root ("/" in production) and reports the Jetson
// it finds. It never fails the caller: a non-Jetson gives State Skipped, an unreadable
// part a note.
func Probe(root string) Report {
	var r Report
	raw, err := os.ReadFile(filepath.Join(root, TegraReleasePath))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.State, r.Reason = Skipped, "not a Jetson (no /etc/nv_tegra_release)"
		return r
	case err != nil:
		r.State, r.Reason = Failed, fmt.Sprintf("read /etc/nv_tegra_release: %v", err)
		return r
	}
	rel, err := ParseTegraRelease(string(raw))
	if err != nil {
		r.State, r.Reason = Failed, fmt.Sprintf("/etc/nv_tegra_release: %v", err)
		return r
	}
	r.State = Loaded
	r.Release = &rel
	r.JetPack = JetPack(rel)
	if r.JetPack == "" {
		r.note("JetPack: L4T %s is not in the table of known releases", rel.L4T())
	}

	r.probeIdentity(root)
	r.probePowerMode(root)
	r.probeCPU(root)
	r.probeGPU(root)
	r.probeEMC(root)
	r.probeThermal(root)
	r.probeRails(root)
	return r
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *Report) probeIdentity(root string) {
	if b, err := os.ReadFile(filepath.Join(root, ModelPath)); err == nil {
		r.Model = strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
	} else {
		r.note("model: %v", shortErr(root, err))
	}
	if b, err := os.ReadFile(filepath.Join(root, CompatiblePath)); err == nil {
		for _, c := range strings.Split(string(b), "\x00") {
			if c = strings.TrimSpace(c); c != "" {
				r.Compatible = append(r.Compatible, c)
			}
		}
		r.Module = ModuleName(r.Compatible)
	} else {
		r.note("compatible: %v", shortErr(root, err))
	}
	r.SoCID, _ = readTrimmed(filepath.Join(root, SoCDir, "soc_id"))
	r.SoCMachine, _ = readTrimmed(filepath.Join(root, SoCDir, "machine"))
	if r.Model == "" && r.SoCMachine != "" {
		r.Model = r.SoCMachine
	}
}

// modules maps device-tree compatible strings of Jetson modules to their names.
var modules = map[string]string{
	"nvidia,p3701-0000": "Jetson AGX Orin 32GB (P3701-0000)",
	"nvidia,p3701-0004": "Jetson AGX Orin 32GB (P3701-0004)",
	"nvidia,p3701-0005": "Jetson AGX Orin 64GB (P3701-0005)",
	"nvidia,p3701-0008": "Jetson AGX Orin Industrial (P3701-0008)",
	"nvidia,p3767-0000": "Jetson Orin NX 16GB (P3767-0000)",
	"nvidia,p3767-0001": "Jetson Orin NX 8GB (P3767-0001)",
	"nvidia,p3767-0003": "Jetson Orin Nano 8GB (P3767-0003)",
	"nvidia,p3767-0004": "Jetson Orin Nano 4GB (P3767-0004)",
	"nvidia,p3767-0005": "Jetson Orin Nano 8GB, developer kit (P3767-0005)",
	"nvidia,p3668-0000": "Jetson Xavier NX (P3668-0000)",
	"nvidia,p3668-0001": "Jetson Xavier NX (P3668-0001)",
	"nvidia,p2888-0001": "Jetson AGX Xavier (P2888-0001)",
	"nvidia,p3448-0000": "Jetson Nano (P3448-0000)",
	"nvidia,p3448-0002": "Jetson Nano (P3448-0002)",
}

// ModuleName names the Jetson module from its device-tree compatible list ("" when no
// entry is known). Entries of the form "carrier+module" are looked up by their module.
func ModuleName(compatible []string) string {
	for _, c := range compatible {
		if _, mod, ok := strings.Cut(c, "+"); ok {
			c = "nvidia," + mod
		}
		if name, ok := modules[c]; ok {
			return name
		}
	}
	return ""
}

func (r *Report) probePowerMode(root string) {
	raw, err := os.ReadFile(filepath.Join(root, NvpmodelConfPath))
	if err != nil {
		r.note("power mode: %v", shortErr(root, err))
		return
	}
	conf, err := ParseNvpmodelConf(string(raw))
	if err != nil {
		r.note("power mode: %v", err)
		return
	}
	pm := PowerMode{Modes: conf.Modes, Source: "status"}
	status, err := os.ReadFile(filepath.Join(root, NvpmodelStatusPath))
	if err == nil {
		pm.ID, pm.Fan, err = ParseNvpmodelStatus(string(status))
	}
	if err != nil {
		if conf.Default < 0 {
			r.note("power mode: %v, and nvpmodel.conf names no default", shortErr(root, err))
			return
		}
		r.note("power mode: %v; reporting the conf's default mode", shortErr(root, err))
		pm.ID, pm.Source = conf.Default, "default"
	}
	m, ok := conf.Lookup(pm.ID)
	if !ok {
		r.note("power mode: mode %d is not in nvpmodel.conf", pm.ID)
	}
	pm.Name = m.Name
	r.PowerMode = &pm
}

func (r *Report) probeCPU(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, CPUFreqDir, "policy*"))
	if len(dirs) == 0 {
		r.note("cpu clocks: no cpufreq policies under /%s", CPUFreqDir)
		return
	}
	sort.Slice(dirs, func(i, j int) bool { return naturalLess(filepath.Base(dirs[i]), filepath.Base(dirs[j])) })
	for _, d := range dirs {
		p := CPUPolicy{Policy: filepath.Base(d)}
		p.CPUs, _ = readTrimmed(filepath.Join(d, "affected_cpus"))
		p.Governor, _ = readTrimmed(filepath.Join(d, "scaling_governor"))
		var err error
		if p.MaxKHz, err = readInt(filepath.Join(d, "scaling_max_freq")); err != nil {
			r.note("cpu %s: %v", p.Policy, shortErr(root, err))
		}
		if p.HWMaxKHz, err = readInt(filepath.Join(d, "cpuinfo_max_freq")); err != nil {
			r.note("cpu %s: %v", p.Policy, shortErr(root, err))
		}
		p.CurKHz, _ = readInt(filepath.Join(d, "scaling_cur_freq"))
		r.CPU = append(r.CPU, p)
	}
}

// gpuDevfreq finds the GPU's devfreq directory under root: a name with "gpu" in it
// (17000000.gpu on JetPack 6) or the Orin GPU's device name (17000000.ga10b, JetPack 5).
func gpuDevfreq(root string) string {
	entries, _ := os.ReadDir(filepath.Join(root, DevfreqDir))
	for _, e := range entries {
		n := e.Name()
		if strings.Contains(n, "gpu") || strings.HasSuffix(n, ".ga10b") || strings.HasSuffix(n, ".gv11b") || strings.HasSuffix(n, ".gp10b") {
			return filepath.Join(root, DevfreqDir, n)
		}
	}
	return ""
}

// gpuLoadPath is the GPU load file (per mille): the devfreq device's own load on JetPack
// 6, /sys/devices/gpu.0/load on JetPack 5; "" when neither exists.
func gpuLoadPath(root, devfreq string) string {
	cands := []string{filepath.Join(root, LegacyGPULoadPath)}
	if devfreq != "" {
		cands = append([]string{filepath.Join(devfreq, "device", "load")}, cands...)
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return ""
}

func (r *Report) probeGPU(root string) {
	d := gpuDevfreq(root)
	if d == "" {
		r.note("gpu clock: no GPU devfreq device under /%s", DevfreqDir)
		return
	}
	g := Devfreq{Device: filepath.Base(d), Load: -1}
	var err error
	if g.MaxHz, err = readInt(filepath.Join(d, "max_freq")); err != nil {
		r.note("gpu clock: %v", shortErr(root, err))
	}
	if g.CurHz, err = readInt(filepath.Join(d, "cur_freq")); err != nil {
		r.note("gpu clock: %v", shortErr(root, err))
	}
	g.MinHz, _ = readInt(filepath.Join(d, "min_freq"))
	g.Governor, _ = readTrimmed(filepath.Join(d, "governor"))
	if p := gpuLoadPath(root, d); p != "" {
		if v, err := readInt(p); err == nil {
			g.Load = float64(v) / 1000
		}
	}
	r.GPU = &g
}

func (r *Report) probeEMC(root string) {
	d := filepath.Join(root, EMCClockDir)
	rate, err1 := readInt(filepath.Join(d, "rate"))
	maxRate, err2 := readInt(filepath.Join(d, "max_rate"))
	if err1 != nil || err2 != nil {
		r.note("memory clock: not readable (/%s is in debugfs, readable by root only)", EMCClockDir)
		return
	}
	r.EMC = &EMCClock{RateHz: rate, MaxRateHz: maxRate}
}

func (r *Report) probeThermal(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, ThermalDir, "thermal_zone*"))
	if len(dirs) == 0 {
		r.note("thermal: no thermal zones under /%s", ThermalDir)
		return
	}
	sort.Slice(dirs, func(i, j int) bool { return naturalLess(filepath.Base(dirs[i]), filepath.Base(dirs[j])) })
	for _, d := range dirs {
		z := ThermalZone{Zone: filepath.Base(d)}
		z.Type, _ = readTrimmed(filepath.Join(d, "type"))
		milli, err := readInt(filepath.Join(d, "temp"))
		switch {
		case err != nil:
			r.note("thermal %s (%s): %v", z.Zone, z.Type, shortErr(root, err))
		case milli <= -40000:
			// Jetson zones without a sensor reading report -256000 (or similar).
			r.note("thermal %s (%s): no reading (%d m°C)", z.Zone, z.Type, milli)
		default:
			z.TempC, z.OK = float64(milli)/1000, true
		}
		r.Thermal = append(r.Thermal, z)
	}
}

// railChannels lists the INA3221 channels under root: label file, input voltage file,
// current file. Channels labelled "NC" (not connected) are left out.
type railChannel struct {
	name, sensor  string
	channel       int
	inPath, cPath string
}

func railChannels(root string) []railChannel {
	hwmons, _ := filepath.Glob(filepath.Join(root, INA3221Glob))
	sort.Strings(hwmons)
	var out []railChannel
	for _, h := range hwmons {
		// .../ina3221/<bus-addr>/hwmon/hwmonN
		sensor := filepath.Base(filepath.Dir(filepath.Dir(h)))
		labels, _ := filepath.Glob(filepath.Join(h, "in*_label"))
		sort.Slice(labels, func(i, j int) bool { return naturalLess(filepath.Base(labels[i]), filepath.Base(labels[j])) })
		for _, l := range labels {
			name, err := readTrimmed(l)
			if err != nil || name == "" || strings.EqualFold(name, "NC") {
				continue
			}
			chText := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(l), "in"), "_label")
			ch, err := strconv.Atoi(chText)
			if err != nil {
				continue
			}
			out = append(out, railChannel{
				name: name, sensor: sensor, channel: ch,
				inPath: filepath.Join(h, "in"+chText+"_input"),
				cPath:  filepath.Join(h, "curr"+chText+"_input"),
			})
		}
	}
	return out
}

func (r *Report) probeRails(root string) {
	chans := railChannels(root)
	if len(chans) == 0 {
		r.note("power rails: no INA3221 sensor under /sys/bus/i2c/drivers/ina3221")
		return
	}
	for _, c := range chans {
		mv, err1 := readInt(c.inPath)
		ma, err2 := readInt(c.cPath)
		if err := errors.Join(err1, err2); err != nil {
			r.note("power rail %s: %v", c.name, shortErr(root, err))
			continue
		}
		v, a := float64(mv)/1000, float64(ma)/1000
		r.Rails = append(r.Rails, PowerRail{Name: c.name, Sensor: c.sensor, Channel: c.channel, VoltageV: v, CurrentA: a, PowerW: v * a})
	}
}

func readTrimmed(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(strings.TrimRight(string(b), "\x00")), nil
}

func readInt(path string) (int64, error) {
	s, err := readTrimmed(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", path, s)
	}
	return v, nil
}

// shortErr rewrites paths in err relative to root so that notes read the same for "/"
// and for a fixture.
func shortErr(root string, err error) string {
	msg := err.Error()
	if root != "/" && root != "" {
		msg = strings.ReplaceAll(msg, filepath.Clean(root), "")
	}
	return msg
}

// naturalLess orders "policy4" before "policy10" and "thermal_zone2" before "thermal_zone10".
func naturalLess(a, b string) bool {
	ap, an := splitNum(a)
	bp, bn := splitNum(b)
	if ap != bp {
		return ap < bp
	}
	return an < bn
}

func splitNum(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(s[i:])
	return s[:i], n
}
