package edgedepth_test

// The import rules of DESIGN.md §1, enforced. A failure here means a package reached
// across a boundary the design keeps closed; move the code, don't loosen the rule.

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/edgedepth/edgedepth"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	CgoFiles   []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,Deps,CgoFiles", module+"/...").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages: the test is not looking at the module", len(pkgs))
	}
	return pkgs
}

// rel strips the module path: "github.com/edgedepth/edgedepth/camera/sim" → "camera/sim".
func rel(p string) (string, bool) {
	if p == module {
		return "", true
	}
	r, ok := strings.CutPrefix(p, module+"/")
	return r, ok
}

// under reports whether package path r is top or inside it.
func under(r, top string) bool { return r == top || strings.HasPrefix(r, top+"/") }

func TestImportRules(t *testing.T) {
	// cgo lives only in these packages (DESIGN.md §1).
	cgoAllowed := []string{"jetson/cuda", "jetson/trt", "tensor/cpu", "camera/codec", "camera/decode", "camera/calib3d"}
	for _, p := range listPackages(t) {
		r, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		var ownDeps, ownImports []string
		for _, d := range p.Deps {
			if dr, ok := rel(d); ok {
				ownDeps = append(ownDeps, dr)
			}
		}
		for _, d := range p.Imports {
			if dr, ok := rel(d); ok {
				ownImports = append(ownImports, dr)
			}
		}

		// camera and telemetry know nothing of tensors or learning.
		if under(r, "camera") || under(r, "telemetry") {
			for _, d := range ownDeps {
				for _, banned := range []string{"tensor", "nn", "depth", "odom", "trainer", "jetson"} {
					if under(d, banned) {
						t.Errorf("%s depends on %s: camera and telemetry must know nothing of tensors, networks or depth", r, d)
					}
				}
			}
		}
		// depth, odom and trainer reach compute only through tensor.Backend.
		if under(r, "depth") || under(r, "odom") || under(r, "trainer") {
			for _, d := range ownDeps {
				if under(d, "jetson") {
					t.Errorf("%s depends on %s: use tensor.Backend, never jetson/ directly", r, d)
				}
			}
		}
		// Nothing imports runtime but cmd (and runtime's own sub-packages).
		if !under(r, "cmd") && !under(r, "runtime") {
			for _, d := range ownImports {
				if under(d, "runtime") {
					t.Errorf("%s imports %s: only cmd may import runtime", r, d)
				}
			}
		}
		// health is a leaf every part may report to.
		if r == "health" && len(ownDeps) > 0 {
			t.Errorf("health depends on %v: it must stay a leaf", ownDeps)
		}
		if len(p.CgoFiles) > 0 {
			allowed := false
			for _, a := range cgoAllowed {
				allowed = allowed || under(r, a)
			}
			if !allowed {
				t.Errorf("%s uses cgo (%v): cgo lives only in %v", r, p.CgoFiles, cgoAllowed)
			}
		}
	}
}
