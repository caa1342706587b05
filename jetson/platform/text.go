package platform

import (
	"fmt"
	"strings"
)

// Text describes the report in plain words, one finding a line, for `edgedepth doctor`.
func (r Report) Text() string {
	var b strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	if r.State != Loaded {
		line("jetson: %s: %s", r.State, r.Reason)
		return b.String()
	}
	what := r.Model
	if r.Module != "" {
		what += ", module " + r.Module
	}
	if what == "" {
		what = "unknown model"
	}
	jp := r.JetPack
	if jp == "" {
		jp = "unknown"
	}
	line("jetson: loaded: %s; L4T %s (JetPack %s)", what, r.Release.L4T(), jp)
	if pm := r.PowerMode; pm != nil {
		src := ""
		if pm.Source == "default" {
			src = " (the conf's default; no status file)"
		}
		line("power mode: %d %s%s", pm.ID, pm.Name, src)
	}
	for _, p := range r.CPU {
		capped := ""
		if p.HWMaxKHz > 0 && p.MaxKHz > 0 && p.MaxKHz < p.HWMaxKHz {
			capped = fmt.Sprintf(" (capped below the hardware's %.0f MHz)", float64(p.HWMaxKHz)/1000)
		}
		line("cpu %s [%s]: max %.0f MHz, now %.0f MHz%s", p.Policy, p.CPUs, float64(p.MaxKHz)/1000, float64(p.CurKHz)/1000, capped)
	}
	if g := r.GPU; g != nil {
		load := "unknown"
		if g.Load >= 0 {
			load = fmt.Sprintf("%.0f %%", g.Load*100)
		}
		line("gpu %s: max %.0f MHz, now %.0f MHz, load %s", g.Device, float64(g.MaxHz)/1e6, float64(g.CurHz)/1e6, load)
	}
	if e := r.EMC; e != nil {
		line("memory clock: max %.0f MHz, now %.0f MHz", float64(e.MaxRateHz)/1e6, float64(e.RateHz)/1e6)
	}
	if len(r.Thermal) > 0 {
		var zs []string
		for _, z := range r.Thermal {
			if z.OK {
				zs = append(zs, fmt.Sprintf("%s %.1f °C", z.Type, z.TempC))
			}
		}
		line("temperatures: %s", strings.Join(zs, ", "))
	}
	if len(r.Rails) > 0 {
		var rs []string
		for _, p := range r.Rails {
			rs = append(rs, fmt.Sprintf("%s %.2f W", p.Name, p.PowerW))
		}
		line("power: %s", strings.Join(rs, ", "))
	}
	for _, n := range r.Notes {
		line("note: %s", n)
	}
	return b.String()
}
