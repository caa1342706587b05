package runtime

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/edgedepth/edgedepth/jetson/trt"
	"github.com/edgedepth/edgedepth/runtime/config"
	"github.com/edgedepth/edgedepth/trainer"
)

// checkModel says where depth will come from: the model store's active version (its
// size, channel scale and the networks' input size) or SGBM, and whether the ONNX
// Runtime engine of `inference` loads with its provider.
func checkModel(cfg config.Config, report reportFunc) {
	if cfg.Depth.Estimator == "sgbm" {
		report("ok", "model", "depth from SGBM (depth.estimator: sgbm); poses from the photometric odometry")
		return
	}
	dir := cfg.Training.StoreDir
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, "models")
	}
	// Read the manifest without touching the directory: doctor changes nothing.
	s, err := trainer.ReadStore(dir)
	// With auto, SGBM is a sound choice of its own; with network it is a failure.
	level := "ok"
	if cfg.Depth.Estimator == "network" {
		level = "FAIL"
	}
	if errors.Is(err, fs.ErrNotExist) {
		report(level, "model", "no model store at %s yet: depth will come from SGBM (make one with `edgedepth import` or `edgedepth train --store %s`)", dir, dir)
		return
	}
	if err != nil {
		report("FAIL", "model", "%v: depth will come from SGBM; restore the store from a backup or move it away", err)
		return
	}
	v, ok := s.Active()
	if !ok {
		if vs := s.List(); len(vs) > 0 {
			v, ok = vs[len(vs)-1], true
		}
	}
	if !ok {
		report(level, "model", "model store %s is empty: depth will come from SGBM until a model is imported, trained or learned", dir)
		return
	}
	w, h := cfg.NetworkSize()
	report("ok", "model", "store %s: version %d (%s, channel scale %g, %d steps); networks at %dx%d on %s",
		dir, v.Version, v.State, v.ChannelScale, v.Steps, w, h, cfg.Inference)
	if cfg.Inference == "native" {
		return
	}
	p, err := trt.ParseProvider(cfg.Inference)
	if err != nil {
		report("FAIL", "inference", "%v", err)
		return
	}
	if err := trt.CheckProvider(cfg.Depth.Network.ONNXRuntimeLib, p); err != nil {
		report("FAIL", "inference", "%s: %v", cfg.Inference, err)
		return
	}
	report("ok", "inference", "ONNX Runtime %s with the %s provider", trt.Version(), p)
}
