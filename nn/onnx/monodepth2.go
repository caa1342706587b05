package onnx

import (
	"errors"
	"fmt"
	"strings"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
)

// Versions of what the exporter writes.
const (
	// Opset is the ONNX operator set of every exported model (ai.onnx, opset 13).
	Opset = 13
	// IRVersion is the ONNX IR version that goes with opset 13.
	IRVersion = 7
	// Producer and Domain name the exporter in every model.
	Producer = "edgedepth"
	Domain   = "io.github.edgedepth"
)

// Names of the graph inputs and outputs.
const (
	// DepthInput is the depth network's input: RGB images, N×3×H×W, values in [0, 1].
	DepthInput = "image"
	// DepthDisparity is the sigmoid disparity at scale 0, N×1×H×W, in (0, 1).
	DepthDisparity = "disparity"
	// DepthDepth is the depth in metres, N×1×H×W, in [monodepth2.MinDepth, MaxDepth].
	DepthDepth = "depth"
	// PoseInput is the pose network's input: two RGB images in [0, 1] stacked along
	// channels, N×6×H×W (channels 0–2 the first frame of the pair, 3–5 the second).
	PoseInput = "image_pair"
	// PoseAxisAngle is the rotation of the pair as an axis-angle vector, N×3, radians.
	PoseAxisAngle = "axis_angle"
	// PoseTranslation is the translation of the pair, N×3, in the network's unit.
	PoseTranslation = "translation"
)

// Symbolic dimension names used where Options leave a size open.
const (
	DimBatch  = "batch"
	DimHeight = "height"
	DimWidth  = "width"
)

// Metadata keys every exported model carries (ModelProto.metadata_props).
const (
	// MetaStructureSHA256 is the SHA-256 of the graph without its weights: two
	// exports of the same network with different weights share it. An engine cache
	// that can refit weights keys on it.
	MetaStructureSHA256 = "edgedepth.structure_sha256"
	// MetaNetwork is "depth" or "pose".
	MetaNetwork = "edgedepth.network"
)

// Normalisation and DepthFormula describe, in words, what the graphs do to their
// input and output; the JSON manifest repeats them.
const (
	Normalisation = "inside the graph: x' = (x - 0.45) / 0.225 on RGB in [0, 1] (feed unnormalised images)"
	DepthFormula  = "inside the graph: depth = 1 / (1/max_depth + (1/min_depth - 1/max_depth) * disparity), min_depth 0.1 m, max_depth 100 m"
)

// bnEps is the epsilon of every batch norm of the networks (nn.NewBatchNorm2D's).
const bnEps = 1e-5

// Options fix the sizes of the exported graphs. A zero size stays symbolic
// (DimBatch, DimHeight, DimWidth): the model then accepts any size, which ONNX
// Runtime's CPU and CUDA providers handle directly; TensorRT builds an engine per
// shape range, so fix height and width for it.
type Options struct {
	// Batch is the batch size (0: any).
	Batch int
	// Height and Width are the image size in pixels (0: any). The networks need
	// multiples of 32, at least 64.
	Height, Width int
	// ProducerVersion is written as the model's producer_version (edgedepth's
	// version); empty leaves it out.
	ProducerVersion string
}

// Validate checks the sizes.
func (o Options) Validate() error {
	if o.Batch < 0 {
		return fmt.Errorf("onnx export: batch %d must be ≥ 0 (0: any)", o.Batch)
	}
	for _, d := range []struct {
		name string
		v    int
	}{{"height", o.Height}, {"width", o.Width}} {
		if d.v != 0 && (d.v < 64 || d.v%32 != 0) {
			return fmt.Errorf("onnx export: %s %d must be a multiple of 32 and at least 64 (0: any)", d.name, d.v)
		}
	}
	return nil
}

func (o Options) dims(channels int) []Dim {
	d := func(v int, param string) Dim {
		if v == 0 {
			return Dim{Param: param}
		}
		return Dim{Value: int64(v)}
	}
	return []Dim{d(o.Batch, DimBatch), {Value: int64(channels)}, d(o.Height, DimHeight), d(o.Width, DimWidth)}
}

// ErrModel is wrapped by every error about the model not having the structure the
// exporter expects.
var ErrModel = errors.New("onnx export: unexpected model structure")

// Depth returns the depth network of m (encoder and depth decoder) as an ONNX model:
// input DepthInput (N×3×H×W RGB in [0, 1]), outputs DepthDisparity (the sigmoid
// disparity at scale 0, N×1×H×W) and DepthDepth (metres, N×1×H×W), with the input
// normalisation and the disparity-to-depth mapping of monodepth2.DispToDepth inside
// the graph (see Normalisation and DepthFormula). Batch norms use their running
// statistics (inference), whatever m's batch-norm mode. The weights are read from m
// on backend b.
func Depth(b tensor.Backend, m *monodepth2.Model, o Options) ([]byte, error) {
	x, err := exportDepth(b, m, o)
	return x.data, err
}

// exported is one exported model and the SHA-256 of its structure (MetaStructureSHA256).
type exported struct {
	data      []byte
	structure string
}

func exportDepth(b tensor.Backend, m *monodepth2.Model, o Options) (exported, error) {
	if err := o.Validate(); err != nil {
		return exported{}, err
	}
	e := newExporter(b, &m.Params, "edgedepth_depth", "Monodepth2 depth network (ResNet-18 encoder, depth decoder), exported by edgedepth")
	x := e.g.input(DepthInput, o.dims(3*m.Encoder.Images))
	f := e.encoder(x, monodepth2.EncoderPrefix)
	disp := e.depthDecoder(f, monodepth2.DepthPrefix)
	lo, hi := float32(1/monodepth2.MaxDepth), float32(1/monodepth2.MinDepth)
	e.out(e.g.node("Sigmoid", DepthDisparity, []string{disp}), DepthDisparity)
	scaled := e.g.node("Add", "disp_to_depth/Add", []string{
		e.g.node("Mul", "disp_to_depth/Mul", []string{DepthDisparity, e.g.constFloats("const/depth_scale", nil, hi-lo)}),
		e.g.constFloats("const/depth_shift", nil, lo)})
	e.out(e.g.node("Reciprocal", DepthDepth, []string{scaled}), DepthDepth)
	out := o.dims(1)
	e.g.output(DepthDisparity, out)
	e.g.output(DepthDepth, out)
	// The disparity heads of scales 1–3 serve training only.
	unusedHeads := func(name string) bool {
		for _, s := range monodepth2.Scales[1:] {
			if strings.HasPrefix(name, fmt.Sprintf("%sdecoder.%d.", monodepth2.DepthPrefix, 10+s)) {
				return true
			}
		}
		return false
	}
	return e.finish("depth", m, o, []string{monodepth2.EncoderPrefix, monodepth2.DepthPrefix}, unusedHeads,
		"Depth from one image. Input "+DepthInput+": N×3×H×W RGB in [0, 1], H and W multiples of 32. "+
			"Outputs "+DepthDisparity+" (sigmoid disparity, N×1×H×W) and "+DepthDepth+" (metres, N×1×H×W). "+Normalisation+"; "+DepthFormula+".")
}

// Pose returns the pose network of m (pose encoder and pose decoder) as an ONNX
// model: input PoseInput (two RGB images in [0, 1] stacked along channels,
// N×6×H×W, as trainer.Predict stacks [previous, current]), outputs PoseAxisAngle
// and PoseTranslation (N×3 each): the first frame pair's six values of the pose
// decoder's last convolution, averaged over the image and scaled by 0.01, exactly
// as monodepth2.PoseDecoder.Forward returns them. The input normalisation is inside
// the graph; batch norms use their running statistics.
func Pose(b tensor.Backend, m *monodepth2.Model, o Options) ([]byte, error) {
	x, err := exportPose(b, m, o)
	return x.data, err
}

func exportPose(b tensor.Backend, m *monodepth2.Model, o Options) (exported, error) {
	if err := o.Validate(); err != nil {
		return exported{}, err
	}
	e := newExporter(b, &m.Params, "edgedepth_pose", "Monodepth2 pose network (ResNet-18 encoder on two stacked images, pose decoder), exported by edgedepth")
	x := e.g.input(PoseInput, o.dims(3*m.PoseEncoder.Images))
	f := e.encoder(x, monodepth2.PoseEncoderPrefix)
	aa, tr := e.poseDecoder(f[4], monodepth2.PosePrefix)
	e.out(aa, PoseAxisAngle)
	e.out(tr, PoseTranslation)
	vec := []Dim{o.dims(0)[0], {Value: 3}}
	e.g.output(PoseAxisAngle, vec)
	e.g.output(PoseTranslation, vec)
	return e.finish("pose", m, o, []string{monodepth2.PoseEncoderPrefix, monodepth2.PosePrefix}, nil,
		"Ego-motion between two images. Input "+PoseInput+": N×6×H×W, two RGB images in [0, 1] stacked along channels "+
			"(Monodepth2's convention: [source, target] for a source frame before the target, [target, source] after it). "+
			"Outputs "+PoseAxisAngle+" (radians) and "+PoseTranslation+", N×3 each: mean of the last convolution × 0.01, first frame pair. "+Normalisation+".")
}

// exporter walks a model's parameters by their names (those of the released
// Monodepth2 checkpoints) and writes the layers they belong to. Errors are sticky.
type exporter struct {
	b      tensor.Backend
	params *nn.Params
	g      *graph
	used   map[string]bool
	err    error
}

func newExporter(b tensor.Backend, ps *nn.Params, name, doc string) *exporter {
	return &exporter{b: b, params: ps, g: newGraph(name, doc), used: map[string]bool{}}
}

func (e *exporter) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// out checks that the value that must be graph output name got exactly that name.
func (e *exporter) out(value, name string) {
	if value != name {
		panic(fmt.Sprintf("onnx: graph output %q came out as %q", name, value))
	}
}

// has reports whether the model has a parameter called name.
func (e *exporter) has(name string) bool { return e.params.Get(name) != nil }

// weight adds parameter name as an initializer (once) and returns its name.
func (e *exporter) weight(name string) (string, tensor.Shape) {
	p := e.params.Get(name)
	if p == nil {
		e.fail(fmt.Errorf("%w: no parameter %s", ErrModel, name))
		return name, nil
	}
	if e.used[name] {
		return name, p.Value.Shape
	}
	e.used[name] = true
	if e.err != nil {
		return name, p.Value.Shape
	}
	v, err := e.b.ToHost(p.Value)
	if err != nil {
		e.fail(fmt.Errorf("onnx export: %s: %w", name, err))
		return name, p.Value.Shape
	}
	dims := make([]int64, len(p.Value.Shape))
	for i, d := range p.Value.Shape {
		dims[i] = int64(d)
	}
	e.g.initializer(name, dtFloat, dims, floatsRaw(v))
	return name, p.Value.Shape
}

// conv is a convolution layer (layer.weight, and layer.bias when the model has
// one) with zero padding pad.
func (e *exporter) conv(x, layer string, stride, pad int) string {
	w, shape := e.weight(layer + ".weight")
	if len(shape) != 4 {
		e.fail(fmt.Errorf("%w: %s.weight has shape %v, want 4 dimensions", ErrModel, layer, shape))
		return x
	}
	in := []string{x, w}
	if e.has(layer + ".bias") {
		bias, _ := e.weight(layer + ".bias")
		in = append(in, bias)
	}
	p := int64(pad)
	return e.g.node("Conv", layer+"/Conv", in,
		attrInts("kernel_shape", int64(shape[2]), int64(shape[3])),
		attrInts("strides", int64(stride), int64(stride)),
		attrInts("pads", p, p, p, p))
}

// bn is a batch norm in inference mode (running statistics).
func (e *exporter) bn(x, layer string) string {
	var in []string
	for _, s := range []string{".weight", ".bias", ".running_mean", ".running_var"} {
		n, _ := e.weight(layer + s)
		in = append(in, n)
	}
	return e.g.node("BatchNormalization", layer+"/BatchNormalization", append([]string{x}, in...), attrF("epsilon", bnEps))
}

func (e *exporter) relu(x, name string) string { return e.g.node("Relu", name+"/Relu", []string{x}) }

// encoder is monodepth2.Encoder.Forward: the input normalisation, then ResNet-18's
// stem and four stages; it returns the five feature maps.
func (e *exporter) encoder(x, prefix string) [5]string {
	p := prefix + "encoder."
	x = e.g.node("Mul", prefix+"normalise/Mul", []string{x, e.g.constFloats("const/norm_scale", nil, 1/0.225)})
	x = e.g.node("Add", prefix+"normalise/Add", []string{x, e.g.constFloats("const/norm_shift", nil, -0.45/0.225)})
	var f [5]string
	f[0] = e.relu(e.bn(e.conv(x, p+"conv1", 2, 3), p+"bn1"), p+"bn1")
	x = e.g.node("MaxPool", p+"maxpool/MaxPool", []string{f[0]},
		attrInts("kernel_shape", 3, 3), attrInts("strides", 2, 2), attrInts("pads", 1, 1, 1, 1))
	for l := 1; l <= 4; l++ {
		for i := 0; i < 2; i++ {
			name := fmt.Sprintf("%slayer%d.%d.", p, l, i)
			stride := 1
			if l > 1 && i == 0 {
				stride = 2
			}
			y := e.relu(e.bn(e.conv(x, name+"conv1", stride, 1), name+"bn1"), name+"bn1")
			y = e.bn(e.conv(y, name+"conv2", 1, 1), name+"bn2")
			short := x
			if e.has(name + "downsample.0.weight") {
				short = e.bn(e.conv(x, name+"downsample.0", stride, 0), name+"downsample.1")
			}
			x = e.relu(e.g.node("Add", name+"add/Add", []string{y, short}), name+"add")
		}
		f[l] = x
	}
	return f
}

// conv3x3 is Monodepth2's reflection-padded 3x3 convolution.
func (e *exporter) conv3x3(x, layer string) string {
	pads := e.g.constInt64s("const/reflect_pads", 0, 0, 1, 1, 0, 0, 1, 1)
	x = e.g.node("Pad", layer+"/Pad", []string{x, pads}, attrS("mode", "reflect"))
	return e.conv(x, layer, 1, 0)
}

// depthDecoder is monodepth2.DepthDecoder.Forward up to the scale-0 disparity
// head's convolution (before its sigmoid, which the caller adds as the output).
func (e *exporter) depthDecoder(f [5]string, prefix string) string {
	x := f[4]
	k := 0 // module index in the released layout: decoder.0..9 upconvs, 10..13 dispconvs
	scales := e.g.constFloats("const/upsample_scales", []int64{4}, 1, 1, 2, 2)
	var head string
	for i := 4; i >= 0; i-- {
		name := fmt.Sprintf("%sdecoder.%d.conv", prefix, k)
		x = e.g.node("Elu", name+"/Elu", []string{e.conv3x3(x, name+".conv")}, attrF("alpha", 1))
		k++
		// Nearest ×2: output pixel (y, x) takes input (floor(y/2), floor(x/2)).
		x = e.g.node("Resize", fmt.Sprintf("%supsample%d/Resize", prefix, i), []string{x, "", scales},
			attrS("mode", "nearest"), attrS("coordinate_transformation_mode", "asymmetric"), attrS("nearest_mode", "floor"))
		if i > 0 {
			x = e.g.node("Concat", fmt.Sprintf("%sskip%d/Concat", prefix, i), []string{x, f[i-1]}, attrI("axis", 1))
		}
		name = fmt.Sprintf("%sdecoder.%d.conv", prefix, k)
		x = e.g.node("Elu", name+"/Elu", []string{e.conv3x3(x, name+".conv")}, attrF("alpha", 1))
		k++
		if i == 0 {
			head = e.conv3x3(x, fmt.Sprintf("%sdecoder.%d.conv", prefix, 10))
		}
	}
	return head
}

// poseDecoder is monodepth2.PoseDecoder.Forward on the last feature map.
func (e *exporter) poseDecoder(f4, prefix string) (axisAngle, translation string) {
	x := e.relu(e.conv(f4, prefix+"net.0", 1, 0), prefix+"net.0")
	x = e.relu(e.conv(x, prefix+"net.1", 1, 1), prefix+"net.1")
	x = e.relu(e.conv(x, prefix+"net.2", 1, 1), prefix+"net.2")
	x = e.conv(x, prefix+"net.3", 1, 0)
	// Mean over the image, ×0.01: (N, 6·frames).
	x = e.g.node("ReduceMean", prefix+"mean/ReduceMean", []string{x}, attrInts("axes", 2, 3), attrI("keepdims", 0))
	x = e.g.node("Mul", prefix+"scale/Mul", []string{x, e.g.constFloats("const/pose_scale", nil, 0.01)})
	slice := func(name string, start, end int64) string {
		return e.g.node("Slice", name, []string{x,
			e.g.constInt64s(fmt.Sprintf("const/slice_%d", start), start),
			e.g.constInt64s(fmt.Sprintf("const/slice_%d", end), end),
			e.g.constInt64s("const/axis_1", 1)})
	}
	return slice(PoseAxisAngle, 0, 3), slice(PoseTranslation, 3, 6)
}

// finish checks that every parameter of the exported networks went into the graph
// (but those exempt says the graph does not need) and encodes the model.
func (e *exporter) finish(network string, m *monodepth2.Model, o Options, prefixes []string, exempt func(string) bool, doc string) (exported, error) {
	if e.err != nil {
		return exported{}, e.err
	}
	var unused []string
	for _, p := range m.Params.All() {
		for _, pre := range prefixes {
			if strings.HasPrefix(p.Name, pre) && !e.used[p.Name] && (exempt == nil || !exempt(p.Name)) {
				unused = append(unused, p.Name)
			}
		}
	}
	if len(unused) > 0 {
		return exported{}, fmt.Errorf("%w: the %s export left %d parameter(s) out: %s", ErrModel, network, len(unused), strings.Join(unused, ", "))
	}
	scale := m.Options.ChannelScale
	if scale == 0 {
		scale = 1
	}
	structure := e.g.structureHash()
	md := model{
		producerVersion: o.ProducerVersion,
		doc:             doc,
		metadata: [][2]string{
			{MetaNetwork, network},
			{MetaStructureSHA256, structure},
			{"edgedepth.channel_scale", fmt.Sprint(scale)},
			{"edgedepth.normalisation", Normalisation},
		},
	}
	if network == "depth" {
		md.metadata = append(md.metadata, [2]string{"edgedepth.depth", DepthFormula},
			[2]string{"edgedepth.min_depth_m", fmt.Sprint(monodepth2.MinDepth)},
			[2]string{"edgedepth.max_depth_m", fmt.Sprint(monodepth2.MaxDepth)})
	}
	return exported{data: encodeModel(e.g, md), structure: structure}, nil
}
