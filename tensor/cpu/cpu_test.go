package cpu_test

import (
	"testing"

	"github.com/edgedepth/edgedepth/tensor/backendtest"
	"github.com/edgedepth/edgedepth/tensor/cpu"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, cpu.New(0), backendtest.Float32)
}
