package platform

import (
	"fmt"
	"strconv"
	"strings"
)

// PowerModel is one "< POWER_MODEL ID=2 NAME=MODE_30W >" section of /etc/nvpmodel.conf.
type PowerModel struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// NvpmodelConf is what edgedepth needs from /etc/nvpmodel.conf: the modes and the
// default one ("< PM_CONFIG DEFAULT=2 >"; -1 when the file names none).
type NvpmodelConf struct {
	Modes   []PowerModel `json:"modes"`
	Default int          `json:"default"`
}

// Lookup returns the mode with the given id.
func (c NvpmodelConf) Lookup(id int) (PowerModel, bool) {
	for _, m := range c.Modes {
		if m.ID == id {
			return m, true
		}
	}
	return PowerModel{}, false
}

// ParseNvpmodelConf reads the section headers of an nvpmodel.conf. Header lines are
// "< KIND KEY=VALUE ... >"; POWER_MODEL and PM_CONFIG headers are used, others (PARAM
// declarations) and the settings lines under each header are skipped. A POWER_MODEL
// header without a numeric ID, or an ID given twice, is an error.
func ParseNvpmodelConf(content string) (NvpmodelConf, error) {
	conf := NvpmodelConf{Default: -1}
	seen := map[int]bool{}
	for n, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "<") {
			continue
		}
		body, ok := strings.CutSuffix(line[1:], ">")
		if !ok {
			return NvpmodelConf{}, fmt.Errorf("nvpmodel.conf line %d: header %q has no closing '>'", n+1, line)
		}
		fields := strings.Fields(body)
		if len(fields) == 0 {
			continue
		}
		attrs := map[string]string{}
		for _, f := range fields[1:] {
			if k, v, ok := strings.Cut(f, "="); ok {
				attrs[k] = v
			}
		}
		switch fields[0] {
		case "POWER_MODEL":
			id, err := strconv.Atoi(attrs["ID"])
			if err != nil || id < 0 {
				return NvpmodelConf{}, fmt.Errorf("nvpmodel.conf line %d: POWER_MODEL ID %q is not a number", n+1, attrs["ID"])
			}
			if seen[id] {
				return NvpmodelConf{}, fmt.Errorf("nvpmodel.conf line %d: POWER_MODEL ID=%d given twice", n+1, id)
			}
			seen[id] = true
			conf.Modes = append(conf.Modes, PowerModel{ID: id, Name: attrs["NAME"]})
		case "PM_CONFIG":
			if d, err := strconv.Atoi(attrs["DEFAULT"]); err == nil && d >= 0 {
				conf.Default = d
			}
		}
	}
	if len(conf.Modes) == 0 {
		return NvpmodelConf{}, fmt.Errorf("nvpmodel.conf: no POWER_MODEL section")
	}
	return conf, nil
}

// ParseNvpmodelStatus reads /var/lib/nvpmodel/status, which nvpmodel rewrites whenever
// the mode changes: "pmode:0002" (JetPack 6) or "pmode:0000 fmode:quiet" (JetPack 5,
// with the fan profile).
func ParseNvpmodelStatus(content string) (mode int, fan string, err error) {
	mode = -1
	for _, tok := range strings.Fields(content) {
		k, v, ok := strings.Cut(tok, ":")
		if !ok {
			continue
		}
		switch k {
		case "pmode":
			m, perr := strconv.Atoi(v)
			if perr != nil || m < 0 {
				return -1, "", fmt.Errorf("nvpmodel status: pmode %q is not a number", v)
			}
			mode = m
		case "fmode":
			fan = v
		}
	}
	if mode < 0 {
		return -1, "", fmt.Errorf("nvpmodel status: no pmode in %q", strings.TrimSpace(content))
	}
	return mode, fan, nil
}
