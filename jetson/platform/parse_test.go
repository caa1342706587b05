package platform

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var releaseTests = []struct {
	in      string
	want    Release
	jetpack string
	err     bool
}{
	{in: "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, DATE: Mon May  6 17:34:21 UTC 2024\n# KERNEL_VARIANT: oot\n",
		want:    Release{Major: 36, Minor: 3, Patch: 0, Kind: "release", Revision: "3.0", GCID: "36191598", Board: "generic", EABI: "aarch64", Date: "Mon May  6 17:34:21 UTC 2024"},
		jetpack: "6.0"},
	{in: "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023",
		want:    Release{Major: 35, Minor: 4, Patch: 1, Kind: "release", Revision: "4.1", GCID: "33958178", Board: "t186ref", EABI: "aarch64", Date: "Tue Aug  1 19:57:35 UTC 2023"},
		jetpack: "5.1.2"},
	{in: "# R35 (release), REVISION: 9.9", want: Release{Major: 35, Minor: 9, Patch: 9, Kind: "release", Revision: "9.9"}, jetpack: "5.1.x"},
	{in: "# R36 (release), REVISION: 7.0", want: Release{Major: 36, Minor: 7, Kind: "release", Revision: "7.0"}, jetpack: "6.x"},
	{in: "# R32 (release), REVISION: 7.4, GCID: 33514132", want: Release{Major: 32, Minor: 7, Patch: 4, Kind: "release", Revision: "7.4", GCID: "33514132"}, jetpack: "4.6.4"},
	{in: "# R99 (release), REVISION: 1", want: Release{Major: 99, Minor: 1, Kind: "release", Revision: "1"}, jetpack: ""},
	{in: "TARGET_USERSPACE_LIB_DIR=nvidia\n# R36 (release), REVISION: 4.3", want: Release{Major: 36, Minor: 4, Patch: 3, Kind: "release", Revision: "4.3"}, jetpack: "6.2"},
	{in: "", err: true},
	{in: "# KERNEL_VARIANT: oot", err: true},
	{in: "# R36 (release), GCID: 1", err: true},
	{in: "# Rxx (release), REVISION: 3.0", err: true},
	{in: "# R36 (release), REVISION: three", err: true},
	{in: "# R36 (release), REVISION: 3.x", err: true},
	{in: "# R-1 (release), REVISION: 3.0", err: true},
}

func TestParseTegraRelease(t *testing.T) {
	for _, tt := range releaseTests {
		got, err := ParseTegraRelease(tt.in)
		if tt.err {
			if !errors.Is(err, ErrMalformedRelease) {
				t.Errorf("%q: err %v, want ErrMalformedRelease", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q:\n got %+v, %v\nwant %+v", tt.in, got, err, tt.want)
		}
		if jp := JetPack(got); jp != tt.jetpack {
			t.Errorf("%q: JetPack %q, want %q", tt.in, jp, tt.jetpack)
		}
	}
}

func FuzzParseTegraRelease(f *testing.F) {
	for _, tt := range releaseTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ParseTegraRelease(in)
		if err != nil {
			if !errors.Is(err, ErrMalformedRelease) {
				t.Fatalf("error not wrapping ErrMalformedRelease: %v", err)
			}
			return
		}
		if r.Major <= 0 || r.Minor < 0 || r.Patch < 0 || r.Revision == "" {
			t.Fatalf("accepted an impossible release %+v", r)
		}
		_ = JetPack(r)
		_ = r.L4T()
	})
}

var confTests = []struct {
	name    string
	in      string
	modes   []PowerModel
	def     int
	errPart string
}{
	{name: "agx orin", in: readFixture("agx-orin-jp6", NvpmodelConfPath),
		modes: []PowerModel{{0, "MAXN"}, {1, "MODE_15W"}, {2, "MODE_30W"}, {3, "MODE_50W"}}, def: 2},
	{name: "orin nano", in: readFixture("orin-nano-8gb-jp6", NvpmodelConfPath),
		modes: []PowerModel{{0, "15W"}, {1, "7W"}, {2, "MAXN_SUPER"}}, def: 0},
	{name: "no default", in: "< POWER_MODEL ID=2 NAME=15W >\n", modes: []PowerModel{{2, "15W"}}, def: -1},
	{name: "spaces", in: "  <  POWER_MODEL   NAME=10W  ID=7  >  \n<PM_CONFIG DEFAULT=7>", modes: []PowerModel{{7, "10W"}}, def: 7},
	{name: "empty", in: "", errPart: "no POWER_MODEL"},
	{name: "only params", in: "< PARAM TYPE=FILE NAME=CPU_ONLINE >\nCORE_0 /x\n", errPart: "no POWER_MODEL"},
	{name: "bad id", in: "< POWER_MODEL ID=two NAME=x >", errPart: "line 1: POWER_MODEL ID \"two\""},
	{name: "duplicate id", in: "< POWER_MODEL ID=1 NAME=a >\n< POWER_MODEL ID=1 NAME=b >", errPart: "line 2: POWER_MODEL ID=1 given twice"},
	{name: "unclosed", in: "< POWER_MODEL ID=1 NAME=a", errPart: "no closing '>'"},
}

func readFixture(model, path string) string {
	b, err := os.ReadFile(filepath.Join("testdata", model, path))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestParseNvpmodelConf(t *testing.T) {
	for _, tt := range confTests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseNvpmodelConf(tt.in)
			if tt.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("err %v, want one containing %q", err, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Modes) != len(tt.modes) || c.Default != tt.def {
				t.Fatalf("got %+v, want modes %v default %d", c, tt.modes, tt.def)
			}
			for i := range c.Modes {
				if c.Modes[i] != tt.modes[i] {
					t.Errorf("mode %d: %+v, want %+v", i, c.Modes[i], tt.modes[i])
				}
			}
			if m, ok := c.Lookup(tt.modes[0].ID); !ok || m != tt.modes[0] {
				t.Errorf("Lookup(%d) = %v, %v", tt.modes[0].ID, m, ok)
			}
		})
	}
}

func FuzzParseNvpmodelConf(f *testing.F) {
	for _, tt := range confTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseNvpmodelConf(in)
		if err != nil {
			return
		}
		if len(c.Modes) == 0 {
			t.Fatal("accepted a conf without modes")
		}
		seen := map[int]bool{}
		for _, m := range c.Modes {
			if m.ID < 0 || seen[m.ID] {
				t.Fatalf("bad or repeated id in %+v", c.Modes)
			}
			seen[m.ID] = true
		}
	})
}

func TestParseNvpmodelStatus(t *testing.T) {
	tests := []struct {
		in   string
		mode int
		fan  string
		err  bool
	}{
		{in: "pmode:0002\n", mode: 2},
		{in: "pmode:0000 fmode:quiet\n", mode: 0, fan: "quiet"},
		{in: "fmode:cool pmode:0003", mode: 3, fan: "cool"},
		{in: "", err: true},
		{in: "pmode:x", err: true},
		{in: "pmode:-1", err: true},
	}
	for _, tt := range tests {
		m, fan, err := ParseNvpmodelStatus(tt.in)
		if (err != nil) != tt.err || (!tt.err && (m != tt.mode || fan != tt.fan)) {
			t.Errorf("%q: %d %q %v, want %d %q err=%v", tt.in, m, fan, err, tt.mode, tt.fan, tt.err)
		}
	}
}

func TestModuleName(t *testing.T) {
	tests := []struct {
		compat []string
		want   string
	}{
		{[]string{"nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234"}, "Jetson AGX Orin 64GB (P3701-0005)"},
		{[]string{"nvidia,p3767-0001", "nvidia,tegra234"}, "Jetson Orin NX 8GB (P3767-0001)"},
		{[]string{"nvidia,tegra234"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := ModuleName(tt.compat); got != tt.want {
			t.Errorf("%v: %q, want %q", tt.compat, got, tt.want)
		}
	}
}
