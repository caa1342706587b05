package cuda

import (
	"testing"

	"github.com/edgedepth/edgedepth/trainer/paritytest"
)

// TestParity checks the CUDA backend against the PyTorch reference, as the CPU
// backend's test does (the reference runs on this machine's interpreter: set
// EDGEDEPTH_PYTHON where /usr/bin/python3 has no torch).
func TestParity(t *testing.T) {
	b := openOrSkip(t, nil)
	paritytest.Run(t, b)
	t.Logf("%s", b.convSummary())
}
