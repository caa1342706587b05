package platform

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformedRelease means /etc/nv_tegra_release exists but does not say which L4T
// release is installed.
var ErrMalformedRelease = errors.New("malformed nv_tegra_release")

// Release is the L4T (Linux for Tegra) release of /etc/nv_tegra_release, whose first line
// reads like "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI:
// aarch64, DATE: Mon May  6 17:34:21 UTC 2024".
type Release struct {
	Major    int    `json:"major"` // 36 in R36.3.0
	Minor    int    `json:"minor"` // 3 in R36.3.0
	Patch    int    `json:"patch"` // 0 in R36.3.0
	Kind     string `json:"kind"`  // "release" for a production build
	GCID     string `json:"gcid,omitempty"`
	Board    string `json:"board,omitempty"` // "generic" (JetPack 6), "t186ref" (JetPack 5)
	EABI     string `json:"eabi,omitempty"`
	Date     string `json:"date,omitempty"`
	Revision string `json:"revision"` // as written: "3.0", "4.1"
}

// L4T is the release as L4T names it: "36.3.0".
func (r Release) L4T() string { return fmt.Sprintf("%d.%d.%d", r.Major, r.Minor, r.Patch) }

// ParseTegraRelease parses the content of /etc/nv_tegra_release. Lines other than the
// "# R<major> (<kind>), REVISION: ..." line (kernel variant, library hashes) are ignored.
func ParseTegraRelease(content string) (Release, error) {
	sc := bufio.NewScanner(strings.NewReader(content))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, "# R")
		if !ok {
			continue
		}
		return parseReleaseLine(rest)
	}
	return Release{}, fmt.Errorf("%w: no \"# R<major> (release), REVISION: <minor>.<patch>\" line", ErrMalformedRelease)
}

func parseReleaseLine(rest string) (Release, error) {
	var r Release
	fields := strings.Split(rest, ",")
	// fields[0]: "36 (release)"
	head := strings.TrimSpace(fields[0])
	majorText, kind, _ := strings.Cut(head, " ")
	major, err := strconv.Atoi(majorText)
	if err != nil || major <= 0 {
		return Release{}, fmt.Errorf("%w: major release %q is not a positive number", ErrMalformedRelease, majorText)
	}
	r.Major = major
	r.Kind = strings.Trim(strings.TrimSpace(kind), "()")
	for _, f := range fields[1:] {
		key, val, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(key) {
		case "REVISION":
			r.Revision = val
		case "GCID":
			r.GCID = val
		case "BOARD":
			r.Board = val
		case "EABI":
			r.EABI = val
		case "DATE":
			r.Date = val
		}
	}
	if r.Revision == "" {
		return Release{}, fmt.Errorf("%w: R%d without REVISION", ErrMalformedRelease, major)
	}
	minorText, patchText, hasPatch := strings.Cut(r.Revision, ".")
	minor, err := strconv.Atoi(minorText)
	if err != nil || minor < 0 {
		return Release{}, fmt.Errorf("%w: REVISION %q is not <minor>.<patch>", ErrMalformedRelease, r.Revision)
	}
	r.Minor = minor
	if hasPatch {
		patch, err := strconv.Atoi(patchText)
		if err != nil || patch < 0 {
			return Release{}, fmt.Errorf("%w: REVISION %q is not <minor>.<patch>", ErrMalformedRelease, r.Revision)
		}
		r.Patch = patch
	}
	return r, nil
}

// jetpackByL4T lists the L4T releases whose JetPack version NVIDIA documents.
var jetpackByL4T = map[[3]int]string{
	{32, 7, 1}: "4.6.1", {32, 7, 2}: "4.6.2", {32, 7, 3}: "4.6.3", {32, 7, 4}: "4.6.4",
	{32, 7, 5}: "4.6.5", {32, 7, 6}: "4.6.6",
	{35, 1, 0}: "5.0.2", {35, 2, 1}: "5.1", {35, 3, 1}: "5.1.1", {35, 4, 1}: "5.1.2",
	{35, 5, 0}: "5.1.3", {35, 6, 0}: "5.1.4",
	{36, 2, 0}: "6.0 DP", {36, 3, 0}: "6.0", {36, 4, 0}: "6.1", {36, 4, 3}: "6.2", {36, 4, 4}: "6.2.1",
}

// JetPack names the JetPack release that ships r: exact where NVIDIA documents the
// pairing ("6.0" for L4T 36.3.0), the major line otherwise ("6.x" for an unlisted R36,
// "5.1.x" for an unlisted R35 after 35.1), and "" for an L4T line this table does not know.
func JetPack(r Release) string {
	if v, ok := jetpackByL4T[[3]int{r.Major, r.Minor, r.Patch}]; ok {
		return v
	}
	switch {
	case r.Major == 32:
		return "4.x"
	case r.Major == 35 && r.Minor >= 2:
		return "5.1.x"
	case r.Major == 35:
		return "5.x"
	case r.Major == 36:
		return "6.x"
	case r.Major == 38:
		return "7.x"
	}
	return ""
}
