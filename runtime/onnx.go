package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/edgedepth/edgedepth/inference"
	"github.com/edgedepth/edgedepth/jetson/trt"
	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/nn/onnx"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

// onnxBuilder makes n build its networks on ONNX Runtime (inference:
// onnxruntime-cpu, onnxruntime-cuda or tensorrt): each model version is exported to
// <data_dir>/onnx/vNNNNNN-WxH (once; older exports are removed) and opened with the
// configured execution provider. TensorRT keeps its engines in
// <data_dir>/tensorrt-cache, refittable, so that a new version of the same networks
// is refitted instead of rebuilt.
func (d *Daemon) onnxBuilder(n *network) error {
	p, err := trt.ParseProvider(d.cfg.Inference)
	if err != nil {
		return fmt.Errorf("inference: %w", err)
	}
	n.kind = d.cfg.Inference
	threads := d.cfg.Depth.Network.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	opts := trt.Options{LibraryPath: d.cfg.Depth.Network.ONNXRuntimeLib, Provider: p, Threads: threads}
	if p == trt.TensorRT {
		opts.TensorRT = trt.TensorRTOptions{
			FP16: d.cfg.Depth.Network.TensorRTFP16, Refit: true,
			EngineCacheDir: filepath.Join(d.cfg.DataDir, "tensorrt-cache"),
		}
	}
	root := filepath.Join(d.cfg.DataDir, "onnx")
	n.build = func(ts []nn.NamedTensor, v trainer.Version) (inference.Networks, error) {
		dir := filepath.Join(root, fmt.Sprintf("v%06d-%dx%d", v.Version, n.w, n.h))
		if _, err := onnx.ReadManifest(dir); err != nil {
			// The export runs on a CPU backend of its own, off the inference path.
			b := cpu.New(1)
			m, err := monodepth2.NewWithOptions(b, monodepth2.Options{ChannelScale: v.ChannelScale})
			if err != nil {
				return nil, err
			}
			if err := m.Params.Load(b, fmt.Sprintf("model version %d", v.Version), "", ts, nil); err != nil {
				return nil, fmt.Errorf("model store version %d: %w", v.Version, err)
			}
			if _, err := onnx.WriteDir(dir, b, m, onnx.Options{Batch: 1, Height: n.h, Width: n.w, ProducerVersion: d.version},
				fmt.Sprintf("model store version %d", v.Version)); err != nil {
				return nil, err
			}
		}
		e, err := trt.Open(dir, opts)
		if err != nil {
			return nil, fmt.Errorf("inference %s: %w", d.cfg.Inference, err)
		}
		// Exports of other versions are no longer needed (the store keeps the weights).
		if old, err := os.ReadDir(root); err == nil {
			for _, o := range old {
				if o.Name() != filepath.Base(dir) {
					os.RemoveAll(filepath.Join(root, o.Name()))
				}
			}
		}
		return trt.NewNetworks(e, n.w, n.h), nil
	}
	return nil
}
