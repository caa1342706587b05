package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

const importUsage = `Usage: edgedepth import monodepth2 [--store DIR] CHECKPOINT_DIR

Converts a Monodepth2 checkpoint folder (encoder.pth, depth.pth, pose_encoder.pth,
pose.pth, as released with Monodepth2 or written by its training code) into the model
store: one safetensors file holding the depth and pose networks, recorded as the
store's base model, which training adapts and never overwrites.

Every tensor is checked against the networks: a missing, unexpected or mis-shaped key
is an error that names it and the file. The unused classifier weights (fc.*) and batch
norm step counters are skipped. A stereo-only checkpoint without pose files is
refused: the daemon needs the pose network.

`

func cmdImport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgedepth import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := fs.String("store", filepath.Join("data", "models"), "model store `directory` (the daemon's <data_dir>/models)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), importUsage)
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "monodepth2" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fs.Usage()
			return flag.ErrHelp
		}
		fs.Usage()
		return errUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "give exactly one checkpoint folder")
		fs.Usage()
		return errUsage
	}
	dir := fs.Arg(0)
	ck, err := nn.ReadMonodepth2Dir(dir)
	if err != nil {
		return err
	}
	if ck.Pose == nil || ck.PoseEncoder == nil {
		return fmt.Errorf("%s holds no pose network (a stereo-only Monodepth2 model): edgedepth needs depth and pose; import a mono or mono+stereo checkpoint", dir)
	}
	b := cpu.New(0)
	m, err := monodepth2.New(b)
	if err != nil {
		return err
	}
	if err := m.Import(b, ck); err != nil {
		return err
	}
	ts, err := m.Params.Export(b)
	if err != nil {
		return err
	}
	s, err := trainer.OpenStore(*store, 0)
	if err != nil {
		return err
	}
	kind := "mono"
	if ck.UseStereo {
		kind = "mono+stereo"
	}
	abs, _ := filepath.Abs(dir)
	v, err := s.Add(ts, trainer.Version{State: trainer.StateBase,
		Note: fmt.Sprintf("imported from Monodepth2 checkpoint %s (trained at %dx%d, %s)", abs, ck.Width, ck.Height, kind)})
	if err != nil {
		return err
	}
	var n int
	for _, t := range ts {
		n += len(t.Data)
	}
	fmt.Fprintf(stdout, "imported %s (%dx%d, %s): %d tensors, %.1f M values → base version %d in %s\n",
		dir, ck.Width, ck.Height, kind, len(ts), float64(n)/1e6, v.Version, filepath.Join(*store, v.File))
	return nil
}
