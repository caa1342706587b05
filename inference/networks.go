package inference

import (
	"errors"
	"fmt"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/trainer"
)

// Networks run the depth and pose networks on host images at the engine's size:
// planar RGB in [0, 1], 3·H·W values (PutPlanar). Native runs them on one of our tensor
// backends; jetson/trt's Networks on ONNX Runtime (its CPU, CUDA or TensorRT provider).
// The engine calls them from one goroutine.
type Networks interface {
	// Depth writes the metric depth of img, H·W values in metres, into depthM.
	Depth(img, depthM []float32) error
	// Pose returns the pose network's output for the pair [prev, cur]: the
	// axis-angle rotation (radians) and translation (metres) of cur_T_prev.
	Pose(prev, cur []float32) (axisAngle, translation [3]float32, err error)
	// Close frees what the networks hold.
	Close() error
}

// Native runs a monodepth2.Model on a tensor backend.
type Native struct {
	b    tensor.Backend
	m    *monodepth2.Model
	w, h int
	own  bool // Close frees the model (NewNative's, not NativeModel's)
}

// NewNative loads the weights ts (a full set, as the model store holds them; file names
// them in errors) into a new model of the given channel scale on b, in inference mode,
// for images of width x height.
func NewNative(b tensor.Backend, channelScale float64, ts []nn.NamedTensor, file string, width, height int) (*Native, error) {
	m, err := monodepth2.NewWithOptions(b, monodepth2.Options{ChannelScale: channelScale})
	if err != nil {
		return nil, fmt.Errorf("inference: %w", err)
	}
	n := &Native{b: b, m: m, w: width, h: height, own: true}
	if err := m.Params.Load(b, file, "", ts, nil); err != nil {
		n.Close()
		return nil, fmt.Errorf("inference: %w", err)
	}
	m.SetBatchNormTraining(false)
	return n, nil
}

// NativeModel runs an existing model (its weights as they are) on b; Close leaves the
// model to its owner.
func NativeModel(b tensor.Backend, m *monodepth2.Model, width, height int) *Native {
	m.SetBatchNormTraining(false)
	return &Native{b: b, m: m, w: width, h: height}
}

// Depth implements Networks.
func (n *Native) Depth(img, depthM []float32) error {
	x, err := n.b.FromHost(img, 1, 3, n.h, n.w)
	if err != nil {
		return fmt.Errorf("inference: upload: %w", err)
	}
	defer n.b.Free(x)
	t := nn.NewTape(n.b)
	defer t.Release()
	disp, _, _, err := trainer.Predict(t, n.m, x, nil)
	if err != nil {
		return err
	}
	d := monodepth2.DispToDepth(t, disp)
	if err := t.Err(); err != nil {
		return err
	}
	v, err := n.b.ToHost(d.Value)
	if err != nil {
		return fmt.Errorf("inference: download depth: %w", err)
	}
	if len(v) != len(depthM) {
		return fmt.Errorf("inference: depth of %d values for a buffer of %d", len(v), len(depthM))
	}
	copy(depthM, v)
	return nil
}

// Pose implements Networks.
func (n *Native) Pose(prev, cur []float32) (aa, tr [3]float32, err error) {
	t := nn.NewTape(n.b)
	defer t.Release()
	t.NoGrad = true
	p, c := t.FromHost(prev, 1, 3, n.h, n.w), t.FromHost(cur, 1, 3, n.h, n.w)
	a, tt := n.m.Pose.Forward(t, n.m.PoseEncoder.Forward(t, t.Concat(1, p, c)))
	if err := t.Err(); err != nil {
		return aa, tr, fmt.Errorf("inference: pose: %w", err)
	}
	av, err1 := n.b.ToHost(a.Value)
	tv, err2 := n.b.ToHost(tt.Value)
	if err := errors.Join(err1, err2); err != nil {
		return aa, tr, fmt.Errorf("inference: download pose: %w", err)
	}
	copy(aa[:], av)
	copy(tr[:], tv)
	return aa, tr, nil
}

// Close frees the model's tensors when NewNative made it.
func (n *Native) Close() error {
	if !n.own {
		return nil
	}
	for _, p := range n.m.Params.All() {
		n.b.Free(p.Value)
		if p.Grad != nil {
			n.b.Free(p.Grad)
		}
	}
	return nil
}
