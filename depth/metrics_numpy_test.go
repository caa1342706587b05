package depth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// numpyPython is the interpreter the numpy cross-check runs; Debian's, where
// python3-numpy installs numpy.
const numpyPython = "/usr/bin/python3"

// jsonFloats writes v as a JSON array, with NaN and ±Infinity as Python's json module
// reads them (encoding/json refuses them).
func jsonFloats(v []float32) []byte {
	b := []byte{'['}
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		switch f := float64(x); {
		case math.IsNaN(f):
			b = append(b, "NaN"...)
		case math.IsInf(f, 1):
			b = append(b, "Infinity"...)
		case math.IsInf(f, -1):
			b = append(b, "-Infinity"...)
		default:
			b = strconv.AppendFloat(b, f, 'g', -1, 64)
		}
	}
	return append(b, ']')
}

// randomDepthCase is a 40x30 truth with invalid and out-of-range pixels, and a
// prediction that is the truth times scale with log-normal noise, outliers and
// invalid values.
func randomDepthCase(rng *rand.Rand, scale float64) (pred, truth Map, mask []bool) {
	truth, pred = NewMap(40, 30), NewMap(40, 30)
	mask = make([]bool, len(truth.M))
	for i := range truth.M {
		z := float32(0.5 + 100*rng.Float64()*rng.Float64())
		switch rng.IntN(40) {
		case 0:
			z = 0
		case 1:
			z = float32(math.NaN())
		case 2:
			z = float32(math.Inf(1))
		case 3:
			z = -1
		}
		truth.M[i] = z
		p := float32(float64(z) * scale * math.Exp(0.1*rng.NormFloat64()))
		switch rng.IntN(40) {
		case 0:
			p = 0
		case 1:
			p = float32(math.NaN())
		case 2:
			p = float32(math.Inf(1))
		case 3:
			p = float32(200 * rng.Float64()) // an outlier
		case 4:
			p = float32(1e-4 * rng.Float64()) // below the lower cap
		}
		pred.M[i] = p
		mask[i] = rng.IntN(10) != 0
	}
	return pred, truth, mask
}

func TestCompareAgainstNumpy(t *testing.T) {
	if _, err := os.Stat(numpyPython); err != nil {
		t.Fatalf("%s not found (%v): install python3-numpy (apt-get install python3-numpy) to run the numpy cross-check", numpyPython, err)
	}
	if out, err := exec.Command(numpyPython, "-c", "import numpy").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import numpy (%v): install python3-numpy (apt-get install python3-numpy)\n%s", numpyPython, err, out)
	}
	const script = "testdata/depth_metrics.py"
	// Read the script here so that go test's cache notices when it changes.
	if _, err := os.ReadFile(script); err != nil {
		t.Fatal(err)
	}

	// The input is written by hand: encoding/json refuses NaN and infinities.
	var in bytes.Buffer
	in.WriteByte('[')
	rng := rand.New(rand.NewPCG(21, 22))
	type goCase struct {
		name string
		m    Metrics
		err  error
	}
	var outs []goCase
	add := func(name string, pred, truth Map, mask []bool, opt CompareOptions) {
		m, err := Compare(pred, truth, mask, opt)
		if len(outs) > 0 {
			in.WriteByte(',')
		}
		maskJSON, jerr := json.Marshal(mask)
		if jerr != nil {
			t.Fatal(jerr)
		}
		fmt.Fprintf(&in, `{"pred":%s,"truth":%s,"mask":%s,"min_depth_m":%s,"max_depth_m":%s,"median_scaling":%t}`,
			jsonFloats(pred.M), jsonFloats(truth.M), maskJSON,
			strconv.FormatFloat(opt.MinDepthM, 'g', -1, 64), strconv.FormatFloat(opt.MaxDepthM, 'g', -1, 64), opt.MedianScaling)
		outs = append(outs, goCase{name, m, err})
	}
	for _, scale := range []float64{1, 0.3, 4} {
		pred, truth, mask := randomDepthCase(rng, scale)
		s := fmt.Sprintf("scale %g", scale)
		add(s+" metric", pred, truth, nil, DefaultCompareOptions())
		add(s+" metric masked", pred, truth, mask, DefaultCompareOptions())
		add(s+" median", pred, truth, nil, CompareOptions{MinDepthM: 1e-3, MaxDepthM: 80, MedianScaling: true})
		add(s+" median masked, caps 1..20", pred, truth, mask, CompareOptions{MinDepthM: 1, MaxDepthM: 20, MedianScaling: true})
		add(s+" metric, no upper cap", pred, truth, nil, CompareOptions{MinDepthM: 0.7})
		add(s+" median, no caps", pred, truth, mask, CompareOptions{MedianScaling: true})
	}
	// Truths exactly at the caps (used: the caps are inclusive) and ratios exactly 1.25
	// (not within δ<1.25: strict).
	add("boundaries", Map{Width: 6, Height: 1, M: []float32{1.25, 16, 1, 1, 5, 8}},
		Map{Width: 6, Height: 1, M: []float32{1, 20, 0.5, 21, 4, 8}}, nil, CompareOptions{MinDepthM: 1, MaxDepthM: 20})
	// An even count (the median of the middle two) and no valid pixel at all.
	add("even", Map{Width: 4, Height: 1, M: []float32{1, 2, 3, 4}}, Map{Width: 4, Height: 1, M: []float32{1.5, 2, 2.5, 7}},
		nil, CompareOptions{MinDepthM: 1e-3, MaxDepthM: 80, MedianScaling: true})
	add("none valid", Map{Width: 2, Height: 1, M: []float32{0, 1}}, Map{Width: 2, Height: 1, M: []float32{1, 90}},
		nil, DefaultCompareOptions())

	in.WriteByte(']')
	cmd := exec.Command(numpyPython, script)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	res, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.Bytes())
	}
	var ref []map[string]any
	if err := json.Unmarshal(res, &ref); err != nil {
		t.Fatalf("%s: output: %v", script, err)
	}
	if len(ref) != len(outs) {
		t.Fatalf("reference returned %d cases, want %d", len(ref), len(outs))
	}
	for k, g := range outs {
		want := ref[k]
		if _, refErr := want["error"]; refErr || g.err != nil {
			if !refErr || !errors.Is(g.err, ErrNoValidPixels) {
				t.Errorf("%s: Go error %v, reference %v", g.name, g.err, want)
			}
			continue
		}
		got := map[string]float64{
			"AbsRel": g.m.AbsRel, "SqRel": g.m.SqRel, "RMSE": g.m.RMSE, "RMSELog": g.m.RMSELog,
			"Delta1": g.m.Delta1, "Delta2": g.m.Delta2, "Delta3": g.m.Delta3,
			"MedianAbsRel": g.m.MedianAbsRel, "Scale": g.m.Scale, "N": float64(g.m.N),
		}
		if len(want) != len(got) {
			t.Errorf("%s: reference fields %v, Go fields %v", g.name, want, got)
		}
		for key, gv := range got {
			wv, ok := want[key].(float64)
			if !ok {
				t.Errorf("%s: reference has no number %s", g.name, key)
				continue
			}
			if math.Abs(gv-wv) > 1e-9*math.Max(math.Abs(gv), math.Abs(wv)) {
				t.Errorf("%s: %s = %.17g, reference %.17g", g.name, key, gv, wv)
			}
		}
		if g.m.N < 4 {
			t.Errorf("%s: only %d pixels: the case tests little", g.name, g.m.N)
		}
	}
}
