package runtime

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/edgedepth/edgedepth/jetson/cuda"
	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/tensor/cpu"
)

// healthBackend is the health component that says the networks run on the CPU
// although the configuration asked for a GPU if there is one.
const healthBackend = "backend"

// openBackend opens the tensor backend of the configuration (backend: auto | cuda |
// cpu) for the networks. cpuThreads bounds the CPU backend's goroutines. With auto, a
// machine without a usable CUDA runs on the CPU with a health warning that says why.
func (d *Daemon) openBackend(cpuThreads int) (tensor.Backend, error) {
	switch d.cfg.Backend {
	case "cpu":
		return cpu.New(cpuThreads), nil
	case "cuda", "auto":
		o := cuda.DefaultOptions()
		if dir := d.cudaCacheDir(); dir != "" {
			o.CacheDir = dir
		}
		b, err := cuda.Open(o)
		if err == nil {
			d.log.Info("networks on the GPU", "component", "backend", "gpu", b.Device().Name, "sm", b.Device().SM)
			return b, nil
		}
		if d.cfg.Backend == "cuda" {
			return nil, fmt.Errorf("backend cuda: %w (backend: auto falls back to the CPU)", err)
		}
		d.health.Set(healthBackend, fmt.Sprintf("no usable CUDA (%v): the networks run on the CPU", err))
		return cpu.New(cpuThreads), nil
	}
	return nil, fmt.Errorf("backend: %q: want auto, cuda or cpu", d.cfg.Backend)
}

// cudaCacheDir keeps compiled kernels under the data directory when the user's cache
// directory is not available (a service account without a home).
func (d *Daemon) cudaCacheDir() string {
	if _, err := os.UserCacheDir(); err == nil {
		return ""
	}
	return filepath.Join(d.cfg.DataDir, "cuda-cache")
}
