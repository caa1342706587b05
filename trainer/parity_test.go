package trainer_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer/paritytest"
)

// TestParity checks the CPU backend against the PyTorch reference (see paritytest).
func TestParity(t *testing.T) { paritytest.Run(t, cpu.New(0)) }

const sharedReference = "../../shared/reference/monodepth2_ref.py"

// TestReferenceCopy keeps testdata's copy of the reference equal to the shared one.
func TestReferenceCopy(t *testing.T) {
	shared, err := os.ReadFile(sharedReference)
	if err != nil {
		t.Logf("no shared reference beside the repository (%v): the copy in testdata is used as it is", err)
		return
	}
	ours, err := os.ReadFile(filepath.Join("testdata", "monodepth2_ref.py"))
	if err != nil {
		t.Fatal(err)
	}
	if string(ours) != string(shared) {
		t.Fatalf("testdata/monodepth2_ref.py differs from %s: copy the shared one over", sharedReference)
	}
}
