// Package monodepth2 defines the Monodepth2 networks on an nn.Tape: the ResNet-18
// encoder (one image, or two stacked for pose), the depth decoder with sigmoid
// disparity heads at four scales, and the pose decoder. Parameter names are those of
// the released Monodepth2 checkpoints, so encoder.pth, depth.pth, pose_encoder.pth and
// pose.pth load as they are. The semantics are those of the reference
// ../shared/reference/monodepth2_ref.py.
package monodepth2

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/tensor"
)

// Depth range of the disparity-to-depth mapping, metres.
const (
	MinDepth = 0.1
	MaxDepth = 100.0
)

// Scales are the decoder's output scales: scale s is 1/2^s of the input resolution.
var Scales = []int{0, 1, 2, 3}

// EncoderChannels are the channels of the full-width encoder's five feature maps.
var EncoderChannels = [5]int{64, 64, 128, 256, 512}

// decoderChannels are the full-width depth decoder's channels at each level.
var decoderChannels = [5]int{16, 32, 64, 128, 256}

// Options choose a model variant.
type Options struct {
	// ChannelScale multiplies every channel count of the encoders and decoders
	// (0 or 1: the released Monodepth2 networks). 0.5 is a variant for CPUs and small
	// Jetsons with about a quarter of the multiply-adds; only scale 1 can import
	// Monodepth2 checkpoints.
	ChannelScale float64
}

// scale is a channel count of the variant (at least 8).
func (o Options) scale(c int) int {
	if o.ChannelScale == 0 || o.ChannelScale == 1 {
		return c
	}
	return max(8, int(math.Round(float64(c)*o.ChannelScale)))
}

func (o Options) scaled(c [5]int) [5]int {
	for i := range c {
		c[i] = o.scale(c[i])
	}
	return c
}

// block is a ResNet basic block: two 3x3 convolutions with batch norm and a shortcut.
type block struct {
	conv1, conv2 *nn.Conv2D
	bn1, bn2     *nn.BatchNorm2D
	down         *nn.Conv2D // nil when the shortcut is the identity
	downBN       *nn.BatchNorm2D
}

// Encoder is torchvision's ResNet-18 without its classifier, applied to images in
// [0, 1] normalised as (x - 0.45) / 0.225.
type Encoder struct {
	Images   int    // input images stacked along channels: 1 for depth, 2 for pose
	Channels [5]int // channels of the five feature maps
	conv1    *nn.Conv2D
	bn1      *nn.BatchNorm2D
	layers   [4][2]*block
	bns      []*nn.BatchNorm2D
}

func newEncoder(bd *nn.Builder, prefix string, images int, ch [5]int) *Encoder {
	e := &Encoder{Images: images, Channels: ch}
	bn := func(name string, c int) *nn.BatchNorm2D {
		b := bd.NewBatchNorm2D(name, c)
		e.bns = append(e.bns, b)
		return b
	}
	p := prefix + "encoder."
	e.conv1 = bd.NewConv2D(p+"conv1", 3*images, ch[0], 7, tensor.Conv2DParams{Stride: [2]int{2, 2}, Padding: [2]int{3, 3}}, false)
	e.bn1 = bn(p+"bn1", ch[0])
	cin := ch[0]
	for l := 0; l < 4; l++ {
		cout := ch[l+1]
		for i := 0; i < 2; i++ {
			name := fmt.Sprintf("%slayer%d.%d.", p, l+1, i)
			stride := 1
			if l > 0 && i == 0 {
				stride = 2
			}
			b := &block{
				conv1: bd.NewConv2D(name+"conv1", cin, cout, 3, tensor.Conv2DParams{Stride: [2]int{stride, stride}, Padding: [2]int{1, 1}}, false),
				bn1:   bn(name+"bn1", cout),
				conv2: bd.NewConv2D(name+"conv2", cout, cout, 3, tensor.Conv2DParams{Padding: [2]int{1, 1}}, false),
				bn2:   bn(name+"bn2", cout),
			}
			if stride != 1 || cin != cout {
				b.down = bd.NewConv2D(name+"downsample.0", cin, cout, 1, tensor.Conv2DParams{Stride: [2]int{stride, stride}}, false)
				b.downBN = bn(name+"downsample.1", cout)
			}
			e.layers[l][i] = b
			cin = cout
		}
	}
	return e
}

// Forward returns the five feature maps of x (N, 3*Images, H, W).
func (e *Encoder) Forward(t *nn.Tape, x *nn.Var) [5]*nn.Var {
	var f [5]*nn.Var
	x = t.Affine(x, 1/0.225, -0.45/0.225)
	f[0] = t.Unary(tensor.ReLU, e.bn1.Forward(t, e.conv1.Forward(t, x)))
	x = t.MaxPool2D(f[0], tensor.Pool2DParams{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}})
	for l := 0; l < 4; l++ {
		for _, b := range e.layers[l] {
			x = b.forward(t, x)
		}
		f[l+1] = x
	}
	return f
}

func (b *block) forward(t *nn.Tape, x *nn.Var) *nn.Var {
	y := t.Unary(tensor.ReLU, b.bn1.Forward(t, b.conv1.Forward(t, x)))
	y = b.bn2.Forward(t, b.conv2.Forward(t, y))
	short := x
	if b.down != nil {
		short = b.downBN.Forward(t, b.down.Forward(t, x))
	}
	return t.Unary(tensor.ReLU, t.Add(y, short))
}

// conv3x3 is Monodepth2's 3x3 convolution on a reflection-padded input.
type conv3x3 struct{ conv *nn.Conv2D }

func (c conv3x3) forward(t *nn.Tape, x *nn.Var) *nn.Var {
	return c.conv.Forward(t, t.Pad2D(x, tensor.Pad2DParams{Top: 1, Bottom: 1, Left: 1, Right: 1, Mode: tensor.PadReflect}))
}

// DepthDecoder turns encoder features into sigmoid disparities at Scales.
type DepthDecoder struct {
	Channels [5]int        // channels at each level
	upconv   [5][2]conv3x3 // [level][0: before upsampling, 1: after the skip]
	disp     [4]conv3x3
}

func newDepthDecoder(bd *nn.Builder, prefix string, enc, dec [5]int) *DepthDecoder {
	d := &DepthDecoder{Channels: dec}
	k := 0 // module index in the released layout: decoder.0..9 upconvs, 10..13 dispconvs
	mk := func(cin, cout int, name string) conv3x3 {
		return conv3x3{bd.NewConv2D(name, cin, cout, 3, tensor.Conv2DParams{}, true)}
	}
	for i := 4; i >= 0; i-- {
		cin := enc[4]
		if i < 4 {
			cin = dec[i+1]
		}
		d.upconv[i][0] = mk(cin, dec[i], fmt.Sprintf("%sdecoder.%d.conv.conv", prefix, k))
		k++
		cin = dec[i]
		if i > 0 {
			cin += enc[i-1]
		}
		d.upconv[i][1] = mk(cin, dec[i], fmt.Sprintf("%sdecoder.%d.conv.conv", prefix, k))
		k++
	}
	for _, s := range Scales {
		d.disp[s] = mk(dec[s], 1, fmt.Sprintf("%sdecoder.%d.conv", prefix, 10+s))
	}
	return d
}

// Forward returns the disparity (N, 1, H/2^s, W/2^s), in (0, 1), at each scale s.
func (d *DepthDecoder) Forward(t *nn.Tape, f [5]*nn.Var) [4]*nn.Var {
	var out [4]*nn.Var
	x := f[4]
	for i := 4; i >= 0; i-- {
		x = t.Unary(tensor.ELU, d.upconv[i][0].forward(t, x))
		x = t.UpsampleNearest(x, 2)
		if i > 0 {
			x = t.Concat(1, x, f[i-1])
		}
		x = t.Unary(tensor.ELU, d.upconv[i][1].forward(t, x))
		if i < 4 {
			out[i] = t.Unary(tensor.Sigmoid, d.disp[i].forward(t, x))
		}
	}
	return out
}

// PoseDecoder turns the pose encoder's last feature map into an axis-angle rotation
// and a translation.
type PoseDecoder struct {
	squeeze, pose1, pose2, pose3 *nn.Conv2D
}

// framesToPredict is fixed by the released pose.pth (its last layer has 12 outputs);
// only the first frame pair's six values are used.
const framesToPredict = 2

func newPoseDecoder(bd *nn.Builder, prefix string, encLast, width int) *PoseDecoder {
	return &PoseDecoder{
		squeeze: bd.NewConv2D(prefix+"net.0", encLast, width, 1, tensor.Conv2DParams{}, true),
		pose1:   bd.NewConv2D(prefix+"net.1", width, width, 3, tensor.Conv2DParams{Padding: [2]int{1, 1}}, true),
		pose2:   bd.NewConv2D(prefix+"net.2", width, width, 3, tensor.Conv2DParams{Padding: [2]int{1, 1}}, true),
		pose3:   bd.NewConv2D(prefix+"net.3", width, 6*framesToPredict, 1, tensor.Conv2DParams{}, true),
	}
}

// Forward returns the axis-angle rotation (N, 3) and translation (N, 3), in radians
// and in the network's distance unit, of the first frame pair.
func (p *PoseDecoder) Forward(t *nn.Tape, f [5]*nn.Var) (axisAngle, translation *nn.Var) {
	x := t.Unary(tensor.ReLU, p.squeeze.Forward(t, f[4]))
	x = t.Unary(tensor.ReLU, p.pose1.Forward(t, x))
	x = t.Unary(tensor.ReLU, p.pose2.Forward(t, x))
	x = p.pose3.Forward(t, x)
	x = t.Affine(t.Mean(x, 2, 3), 0.01, 0) // (N, 12, 1, 1)
	if x == nil {
		return nil, nil
	}
	x = t.Reshape(x, x.Shape()[0], 6*framesToPredict)
	return t.Slice(x, 1, 0, 3), t.Slice(x, 1, 3, 6)
}

// Model holds the four networks of Monodepth2 and their parameters, named
// "encoder/…", "depth/…", "pose_encoder/…" and "pose/…" followed by the key of the
// released checkpoint.
type Model struct {
	Options     Options
	Params      nn.Params
	Encoder     *Encoder
	Depth       *DepthDecoder
	PoseEncoder *Encoder
	Pose        *PoseDecoder
}

// Network prefixes of the parameter names, one per released checkpoint file.
const (
	EncoderPrefix     = "encoder/"
	DepthPrefix       = "depth/"
	PoseEncoderPrefix = "pose_encoder/"
	PosePrefix        = "pose/"
)

// New creates the released Monodepth2 networks on backend b, zero-filled: load
// weights (Import, Params.Load) or call Init.
func New(b tensor.Backend) (*Model, error) { return NewWithOptions(b, Options{}) }

// NewWithOptions creates a variant of the networks (see Options).
func NewWithOptions(b tensor.Backend, o Options) (*Model, error) {
	if o.ChannelScale < 0 || o.ChannelScale > 1 {
		return nil, fmt.Errorf("monodepth2: channel scale %g must be in (0, 1]", o.ChannelScale)
	}
	m := &Model{Options: o}
	bd := &nn.Builder{B: b, Params: &m.Params}
	enc, dec := o.scaled(EncoderChannels), o.scaled(decoderChannels)
	m.Encoder = newEncoder(bd, EncoderPrefix, 1, enc)
	m.Depth = newDepthDecoder(bd, DepthPrefix, enc, dec)
	m.PoseEncoder = newEncoder(bd, PoseEncoderPrefix, 2, enc)
	m.Pose = newPoseDecoder(bd, PosePrefix, enc[4], o.scale(256))
	if err := bd.Err(); err != nil {
		return nil, fmt.Errorf("monodepth2: %w", err)
	}
	return m, nil
}

// SetBatchNormTraining switches every batch norm between batch statistics (true)
// and frozen running statistics (false, the default).
func (m *Model) SetBatchNormTraining(on bool) {
	for _, e := range []*Encoder{m.Encoder, m.PoseEncoder} {
		for _, bn := range e.bns {
			bn.Training = on
		}
	}
}

// BatchNormTraining reports whether batch norms use batch statistics.
func (m *Model) BatchNormTraining() bool { return m.Encoder.bn1.Training }

// Init fills the weights as a fresh torchvision ResNet-18 and Monodepth2 decoders
// would be: He-normal (fan out) encoder convolutions, PyTorch's default uniform
// decoder convolutions, batch norm at identity. Deterministic for a seed.
func (m *Model) Init(b tensor.Backend, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 0x6d64))
	for _, e := range []*Encoder{m.Encoder, m.PoseEncoder} {
		convs := []*nn.Conv2D{e.conv1}
		for l := range e.layers {
			for _, blk := range e.layers[l] {
				convs = append(convs, blk.conv1, blk.conv2)
				if blk.down != nil {
					convs = append(convs, blk.down)
				}
			}
		}
		for _, c := range convs {
			if err := nn.InitNormal(b, c.W, r, math.Sqrt(2/float64(nn.FanOut(c.W)))); err != nil {
				return err
			}
		}
	}
	var convs []*nn.Conv2D
	for i := range m.Depth.upconv {
		convs = append(convs, m.Depth.upconv[i][0].conv, m.Depth.upconv[i][1].conv)
	}
	for _, d := range m.Depth.disp {
		convs = append(convs, d.conv)
	}
	convs = append(convs, m.Pose.squeeze, m.Pose.pose1, m.Pose.pose2, m.Pose.pose3)
	for _, c := range convs {
		if err := nn.InitConvDefault(b, c, r); err != nil {
			return err
		}
	}
	// Start the disparity heads at InitDepth rather than at sigmoid(0) = 0.5, which
	// is 0.2 m: with every pixel that close, the stereo and temporal warps land far
	// off, the un-warped (identity) error wins the auto-masking minimum everywhere
	// and no gradient reaches the depth network. Monodepth2 escapes this over many
	// epochs from an ImageNet-pretrained encoder; a robot training from scratch
	// should not have to.
	d := (1/InitDepth - 1/MaxDepth) / (1/MinDepth - 1/MaxDepth)
	bias := float32(math.Log(d / (1 - d)))
	for _, h := range m.Depth.disp {
		f, err := b.Full(bias, 1)
		if err != nil {
			return err
		}
		err = b.Copy(h.conv.B.Value, f)
		b.Free(f)
		if err != nil {
			return err
		}
	}
	return nil
}

// InitDepth is the depth in metres a freshly initialised depth network predicts
// everywhere (see Init): a typical distance for a robot's camera.
const InitDepth = 5.0

// DispToDepth maps a sigmoid disparity to depth in [MinDepth, MaxDepth]:
// depth = 1 / (1/MaxDepth + (1/MinDepth - 1/MaxDepth) * disp).
func DispToDepth(t *nn.Tape, disp *nn.Var) *nn.Var {
	lo, hi := 1/MaxDepth, 1/MinDepth
	return t.Unary(tensor.Reciprocal, t.Affine(disp, float32(hi-lo), float32(lo)))
}
