package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/nn/onnx"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

const exportUsage = `Usage: edgedepth export onnx [--store DIR] [--version N] [--width 640 --height 192] [--batch 0] --out DIR

Writes the depth and pose networks of a model store version as ONNX (opset 13) for
ONNX Runtime and TensorRT (jetson/trt): DIR/depth.onnx, DIR/pose.onnx and
DIR/model.json, which describes their inputs and outputs.

  depth.onnx  image (N×3×H×W RGB in [0, 1]) → disparity (N×1×H×W, sigmoid) and
              depth (N×1×H×W, metres: 1 / (1/100 + (1/0.1 − 1/100)·disparity))
  pose.onnx   image_pair (N×6×H×W, two RGB images stacked) → axis_angle and
              translation (N×3 each)

The input normalisation and the disparity-to-depth mapping are inside the graphs.
Without --version the store's active version is exported (the one the daemon would
load). Width and height fix the image size (multiples of 32; 0 leaves it open, which
ONNX Runtime's CPU and CUDA providers accept but TensorRT builds best with a fixed
size); --batch 0 leaves the batch open.

`

func cmdExport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgedepth export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := fs.String("store", filepath.Join("data", "models"), "model store `directory` (the daemon's <data_dir>/models)")
	version := fs.Int("version", 0, "store `version` to export (0: the active one)")
	width := fs.Int("width", 640, "image width in `pixels`, a multiple of 32 (0: any)")
	height := fs.Int("height", 192, "image height in `pixels`, a multiple of 32 (0: any)")
	batch := fs.Int("batch", 0, "batch size (0: any)")
	out := fs.String("out", "", "output `directory` (created if needed; its files are replaced)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), exportUsage)
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "onnx" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fs.Usage()
			return flag.ErrHelp
		}
		fs.Usage()
		return errUsage
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *out == "" {
		fmt.Fprintln(stderr, "--out is required")
		fs.Usage()
		return errUsage
	}
	o := onnx.Options{Batch: *batch, Height: *height, Width: *width, ProducerVersion: buildVersion()}
	if err := o.Validate(); err != nil {
		return err
	}

	s, err := trainer.OpenStore(*store, 0)
	if err != nil {
		return err
	}
	tensors, v, err := loadVersion(s, *version, stderr)
	if err != nil {
		return err
	}
	b := cpu.New(0)
	m, err := monodepth2.NewWithOptions(b, monodepth2.Options{ChannelScale: v.ChannelScale})
	if err != nil {
		return err
	}
	if err := m.Params.Load(b, v.File, "", tensors, nil); err != nil {
		return fmt.Errorf("model store version %d does not fit the networks: %w", v.Version, err)
	}
	abs, _ := filepath.Abs(*store)
	man, err := onnx.WriteDir(*out, b, m, o, fmt.Sprintf("model store %s, version %d (%s)", abs, v.Version, v.State))
	if err != nil {
		return err
	}
	shape := func(n onnx.Network) string {
		var s string
		for i, d := range n.Inputs[0].Shape {
			if i > 0 {
				s += "×"
			}
			if d.Param != "" {
				s += d.Param
			} else {
				s += fmt.Sprint(d.Value)
			}
		}
		return s
	}
	fmt.Fprintf(stdout, "exported version %d (channel scale %g) of %s → %s: %s %.1f MB (input %s), %s %.1f MB (input %s), ONNX opset %d; see %s\n",
		v.Version, man.ChannelScale, *store, *out,
		onnx.DepthFile, float64(man.Depth.Bytes)/1e6, shape(man.Depth),
		onnx.PoseFile, float64(man.Pose.Bytes)/1e6, shape(man.Pose),
		man.Opset, filepath.Join(*out, onnx.ManifestFile))
	return nil
}

// loadVersion reads version n of the store, or with n = 0 the version the daemon
// would use (the active one, or the fallbacks LoadActive takes, which it names).
func loadVersion(s *trainer.Store, n int, stderr io.Writer) ([]nn.NamedTensor, trainer.Version, error) {
	if n != 0 {
		return s.Load(n)
	}
	ts, v, failed, err := s.LoadActive()
	for _, f := range failed {
		fmt.Fprintln(stderr, "edgedepth: skipping a version that does not load:", f)
	}
	if errors.Is(err, trainer.ErrNoUsableVersion) && len(failed) == 0 {
		return nil, v, fmt.Errorf("%w: fill it with `edgedepth import monodepth2` or `edgedepth train --store %s`", err, s.Dir)
	}
	return ts, v, err
}
