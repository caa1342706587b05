package odom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"testing"
)

// python3 is the interpreter the numpy cross-checks run; Debian's, where python3-numpy
// installs numpy.
const python3 = "/usr/bin/python3"

// requireNumpy fails the test (it does not skip: CI must run the cross-check) when
// python3 or numpy is missing.
func requireNumpy(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(python3); err != nil {
		t.Fatalf("%s not found (%v): install python3-numpy (apt-get install python3-numpy) to run the numpy cross-check", python3, err)
	}
	if out, err := exec.Command(python3, "-c", "import numpy").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import numpy (%v): install python3-numpy (apt-get install python3-numpy)\n%s", python3, err, out)
	}
}

// runPython runs script with in as JSON on stdin and decodes its JSON stdout into out.
func runPython(t *testing.T, script string, in, out any) {
	t.Helper()
	requireNumpy(t)
	// Read the script here so that go test's cache notices when it changes (it only
	// tracks files the test process itself opens).
	if _, err := os.ReadFile(script); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python3, script)
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	res, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.Bytes())
	}
	if err := json.Unmarshal(res, out); err != nil {
		t.Fatalf("%s: output: %v", script, err)
	}
}

// compareJSON compares two decoded JSON values: the same keys, the same structure, and
// numbers within rel relative error (plus abs for values near zero).
func compareJSON(path string, got, want any, rel, abs float64) []string {
	switch w := want.(type) {
	case float64:
		g, ok := got.(float64)
		if !ok {
			return []string{fmt.Sprintf("%s: got %v, want the number %v", path, got, w)}
		}
		if math.Abs(g-w) > rel*math.Max(math.Abs(g), math.Abs(w))+abs {
			return []string{fmt.Sprintf("%s: got %.17g, want %.17g (rel %.2g)", path, g, w, math.Abs(g-w)/math.Abs(w))}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %v, want %d elements", path, got, len(w))}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, compareJSON(fmt.Sprintf("%s[%d]", path, i), g[i], w[i], rel, abs)...)
		}
		return diffs
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %v, want an object", path, got)}
		}
		var diffs []string
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: only in Go", path, k))
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: only in the reference", path, k))
				continue
			}
			diffs = append(diffs, compareJSON(path+"."+k, gv, w[k], rel, abs)...)
		}
		return diffs
	default:
		if got != want {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		return nil
	}
}

// roundTrip turns v into its generic JSON form.
func roundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// noisyTrajectories returns a ground truth of n frames that drives forward about
// 0.1 m a frame while turning, starting anywhere, and an estimate that starts at the
// identity, over-reads distance by 2 % and picks up translation and rotation noise.
func noisyTrajectories(rng *rand.Rand, n int) (est, gt []Pose) {
	g := randomPose(rng, math.Pi, 5)
	e := Identity()
	for range n {
		gt = append(gt, g)
		est = append(est, e)
		motion := Exp([6]float64{0.02 * rng.NormFloat64(), 0.01 * rng.NormFloat64(), 0.08 + 0.04*rng.Float64(),
			0.01 * rng.NormFloat64(), 0.05 * rng.NormFloat64(), 0.01 * rng.NormFloat64()})
		noise := Exp([6]float64{0.003 * rng.NormFloat64(), 0.003 * rng.NormFloat64(), 0.003 * rng.NormFloat64(),
			0.002 * rng.NormFloat64(), 0.002 * rng.NormFloat64(), 0.002 * rng.NormFloat64()})
		estMotion := motion
		for k := range 3 {
			estMotion.T[k] *= 1.02
		}
		g = g.Mul(motion)
		e = e.Mul(estMotion.Mul(noise))
	}
	return est, gt
}

func TestEvaluateTrajectoryAgainstNumpy(t *testing.T) {
	type caseIn struct {
		Est  [][3][4]float64 `json:"est"`
		GT   [][3][4]float64 `json:"gt"`
		Lens []float64       `json:"segment_lengths_m"`
		Step int             `json:"segment_step_frames"`
		D    int             `json:"rpe_delta_frames"`
	}
	rows := func(ps []Pose) [][3][4]float64 {
		out := make([][3][4]float64, len(ps))
		for i, p := range ps {
			for r := range 3 {
				out[i][r] = [4]float64{p.R[r][0], p.R[r][1], p.R[r][2], p.T[r]}
			}
		}
		return out
	}
	rng := rand.New(rand.NewPCG(11, 12))
	opts := []TrajectoryOptions{
		{},
		{SegmentLengthsM: []float64{0.5, 3, 7.5, 100}, SegmentStepFrames: 3, RPEDeltaFrames: 5},
		{SegmentLengthsM: []float64{2}, SegmentStepFrames: 10, RPEDeltaFrames: 1},
	}
	var ins []caseIn
	var goOut []any
	for k, o := range opts {
		est, gt := noisyTrajectories(rng, 60+70*k)
		m, pf, err := EvaluateTrajectory(est, gt, o)
		if err != nil {
			t.Fatal(err)
		}
		full, _ := o.withDefaults()
		ins = append(ins, caseIn{Est: rows(est), GT: rows(gt), Lens: full.SegmentLengthsM, Step: full.SegmentStepFrames, D: full.RPEDeltaFrames})
		goOut = append(goOut, map[string]any{"metrics": roundTrip(t, m), "per_frame": roundTrip(t, pf)})
	}
	var ref []map[string]any
	runPython(t, "testdata/trajectory_metrics.py", ins, &ref)
	if len(ref) != len(ins) {
		t.Fatalf("reference returned %d cases, want %d", len(ref), len(ins))
	}
	for k := range ins {
		g := goOut[k].(map[string]any)
		name := fmt.Sprintf("case %d", k)
		diffs := compareJSON(name+".metrics", g["metrics"], ref[k]["metrics"], 1e-9, 0)
		diffs = append(diffs, compareJSON(name+".per_frame", g["per_frame"], ref[k]["per_frame"], 1e-9, 1e-12)...)
		for _, d := range diffs {
			t.Error(d)
		}
		if k == 0 {
			t.Logf("case 0: %v", ref[k]["metrics"])
		}
	}
}
