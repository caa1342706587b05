package onnx

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor/cpu"
)

// The numerical checks (ONNX Runtime on the exported files against our forward pass
// and against PyTorch's exporter) are in jetson/trt, which has ONNX Runtime; these
// tests read the files back with a protobuf decoder and check their structure.

// fields decodes one protobuf message into its fields, in order: varints as
// uint64, fixed32 as uint32, length-delimited as []byte.
func fields(t *testing.T, b []byte) map[protowire.Number][]any {
	t.Helper()
	out := map[protowire.Number][]any{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		var v any
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			v, n = protowire.ConsumeFixed32(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			t.Fatalf("field %d: unexpected wire type %d", num, typ)
		}
		if n < 0 {
			t.Fatalf("field %d: %v", num, protowire.ParseError(n))
		}
		out[num] = append(out[num], v)
		b = b[n:]
	}
	return out
}

func str(v any) string { return string(v.([]byte)) }

type decodedGraph struct {
	nodes   []decodedNode
	inits   map[string][]int64 // name → dims
	inputs  map[string][]string
	outputs map[string][]string
}

type decodedNode struct {
	op      string
	inputs  []string
	outputs []string
	attrs   map[string]bool
}

// decode reads a model back: it checks the header fields and returns the graph.
func decode(t *testing.T, model []byte) (decodedGraph, map[string]string) {
	t.Helper()
	m := fields(t, model)
	if got := m[fModelIRVersion]; len(got) != 1 || got[0].(uint64) != IRVersion {
		t.Errorf("ir_version %v, want %d", got, IRVersion)
	}
	if got := m[fModelProducerName]; len(got) != 1 || str(got[0]) != Producer {
		t.Errorf("producer %v", got)
	}
	ops := m[fModelOpsetImport]
	if len(ops) != 1 {
		t.Fatalf("%d opset imports", len(ops))
	}
	op := fields(t, ops[0].([]byte))
	if len(op[fOpsetDomain]) != 1 || str(op[fOpsetDomain][0]) != "" || op[fOpsetVersion][0].(uint64) != Opset {
		t.Errorf("opset import %v", op)
	}
	meta := map[string]string{}
	for _, e := range m[fModelMetadataProps] {
		kv := fields(t, e.([]byte))
		meta[str(kv[fEntryKey][0])] = str(kv[fEntryValue][0])
	}
	if len(m[fModelGraph]) != 1 {
		t.Fatalf("%d graphs", len(m[fModelGraph]))
	}
	g := fields(t, m[fModelGraph][0].([]byte))
	d := decodedGraph{inits: map[string][]int64{}, inputs: map[string][]string{}, outputs: map[string][]string{}}
	for _, raw := range g[fGraphNode] {
		n := fields(t, raw.([]byte))
		dn := decodedNode{op: str(n[fNodeOpType][0]), attrs: map[string]bool{}}
		for _, v := range n[fNodeInput] {
			dn.inputs = append(dn.inputs, str(v))
		}
		for _, v := range n[fNodeOutput] {
			dn.outputs = append(dn.outputs, str(v))
		}
		for _, a := range n[fNodeAttribute] {
			dn.attrs[str(fields(t, a.([]byte))[fAttrName][0])] = true
		}
		d.nodes = append(d.nodes, dn)
	}
	for _, raw := range g[fGraphInitializer] {
		tp := fields(t, raw.([]byte))
		var dims []int64
		n := int64(1)
		for _, v := range tp[fTensorDims] {
			dims = append(dims, int64(v.(uint64)))
			n *= int64(v.(uint64))
		}
		name := str(tp[fTensorName][0])
		size := map[uint64]int64{dtFloat: 4, dtInt64: 8}[tp[fTensorDataType][0].(uint64)]
		if got := int64(len(tp[fTensorRawData][0].([]byte))); got != n*size {
			t.Errorf("initializer %s: %d bytes of data for dims %v", name, got, dims)
		}
		d.inits[name] = dims
	}
	info := func(raw any) (string, []string) {
		v := fields(t, raw.([]byte))
		typ := fields(t, v[fValueType][0].([]byte))
		tt := fields(t, typ[fTypeTensor][0].([]byte))
		if tt[fTensorElemType][0].(uint64) != dtFloat {
			t.Errorf("element type %v", tt[fTensorElemType])
		}
		var dims []string
		for _, dim := range fields(t, tt[fTensorShape][0].([]byte))[fShapeDim] {
			df := fields(t, dim.([]byte))
			if p, ok := df[fDimParam]; ok {
				dims = append(dims, str(p[0]))
			} else {
				dims = append(dims, strconv.FormatUint(df[fDimValue][0].(uint64), 10))
			}
		}
		return str(v[fValueName][0]), dims
	}
	for _, raw := range g[fGraphInput] {
		name, dims := info(raw)
		d.inputs[name] = dims
	}
	for _, raw := range g[fGraphOutput] {
		name, dims := info(raw)
		d.outputs[name] = dims
	}
	return d, meta
}

// checkTopology checks that every node reads only graph inputs, initializers and
// outputs of earlier nodes, that every value is made once, and that every graph
// output is made.
func checkTopology(t *testing.T, g decodedGraph) {
	t.Helper()
	defined := map[string]bool{"": true} // "" is an omitted optional input
	for name := range g.inputs {
		defined[name] = true
	}
	for name := range g.inits {
		if defined[name] {
			t.Errorf("%s defined twice", name)
		}
		defined[name] = true
	}
	for i, n := range g.nodes {
		for _, in := range n.inputs {
			if !defined[in] {
				t.Errorf("node %d (%s) reads %q before anything makes it", i, n.op, in)
			}
		}
		for _, out := range n.outputs {
			if defined[out] {
				t.Errorf("node %d (%s) makes %q again", i, n.op, out)
			}
			defined[out] = true
		}
	}
	for name := range g.outputs {
		if !defined[name] {
			t.Errorf("graph output %s is never made", name)
		}
	}
}

func TestDepthAndPoseGraphs(t *testing.T) {
	b := cpu.New(0)
	m, err := monodepth2.NewWithOptions(b, monodepth2.Options{ChannelScale: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(b, 1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		export   func() ([]byte, error)
		o        Options
		prefixes []string
		unused   int // parameters of those networks the graph leaves out
		inputs   map[string][]string
		outputs  map[string][]string
		ops      []string
	}{
		{
			name:     "depth",
			export:   func() ([]byte, error) { return Depth(b, m, Options{Height: 96, Width: 320}) },
			prefixes: []string{monodepth2.EncoderPrefix, monodepth2.DepthPrefix},
			unused:   6, // weight and bias of the disparity heads at scales 1–3
			inputs:   map[string][]string{DepthInput: {DimBatch, "3", "96", "320"}},
			outputs:  map[string][]string{DepthDisparity: {DimBatch, "1", "96", "320"}, DepthDepth: {DimBatch, "1", "96", "320"}},
			ops:      []string{"Add", "BatchNormalization", "Concat", "Conv", "Elu", "MaxPool", "Mul", "Pad", "Reciprocal", "Relu", "Resize", "Sigmoid"},
		},
		{
			name:     "pose",
			export:   func() ([]byte, error) { return Pose(b, m, Options{Batch: 1}) },
			prefixes: []string{monodepth2.PoseEncoderPrefix, monodepth2.PosePrefix},
			inputs:   map[string][]string{PoseInput: {"1", "6", DimHeight, DimWidth}},
			outputs:  map[string][]string{PoseAxisAngle: {"1", "3"}, PoseTranslation: {"1", "3"}},
			ops:      []string{"Add", "BatchNormalization", "Conv", "MaxPool", "Mul", "ReduceMean", "Relu", "Slice"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			model, err := c.export()
			if err != nil {
				t.Fatal(err)
			}
			g, meta := decode(t, model)
			checkTopology(t, g)
			if !reflect.DeepEqual(g.inputs, c.inputs) || !reflect.DeepEqual(g.outputs, c.outputs) {
				t.Errorf("inputs %v outputs %v, want %v %v", g.inputs, g.outputs, c.inputs, c.outputs)
			}
			ops := map[string]int{}
			for _, n := range g.nodes {
				ops[n.op]++
			}
			var got []string
			for op := range ops {
				got = append(got, op)
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, c.ops) {
				t.Errorf("operators %v, want %v", got, c.ops)
			}
			// ResNet-18: 20 convolutions, 20 batch norms per encoder.
			if ops["BatchNormalization"] != 20 {
				t.Errorf("%d batch norms, want 20", ops["BatchNormalization"])
			}
			// Every parameter but the unused heads is an initializer, with its shape.
			n := 0
			for _, p := range m.Params.All() {
				for _, pre := range c.prefixes {
					if !strings.HasPrefix(p.Name, pre) {
						continue
					}
					dims, ok := g.inits[p.Name]
					if !ok {
						n++
						continue
					}
					for i, d := range p.Value.Shape {
						if dims[i] != int64(d) {
							t.Errorf("%s: dims %v, parameter %v", p.Name, dims, p.Value.Shape)
							break
						}
					}
				}
			}
			if n != c.unused {
				t.Errorf("%d parameters left out, want %d", n, c.unused)
			}
			if meta[MetaNetwork] != c.name || len(meta[MetaStructureSHA256]) != 64 || meta["edgedepth.channel_scale"] != "0.25" {
				t.Errorf("metadata %v", meta)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		o  Options
		ok bool
	}{
		{Options{}, true},
		{Options{Batch: 4, Height: 192, Width: 640}, true},
		{Options{Height: 64, Width: 64}, true},
		{Options{Batch: -1}, false},
		{Options{Height: 100}, false},
		{Options{Width: 32}, false},
	} {
		if err := c.o.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.o, err)
		}
	}
	b := cpu.New(0)
	m, _ := monodepth2.NewWithOptions(b, monodepth2.Options{ChannelScale: 0.25})
	if _, err := Depth(b, m, Options{Height: 100}); err == nil || !strings.Contains(err.Error(), "multiple of 32") {
		t.Errorf("Depth with height 100: %v", err)
	}
}

// TestWriteDirAndStructureHash: an export directory holds both files and a manifest
// that describes them; new weights change the files' hashes but not the structure
// hash, another channel scale changes both.
func TestWriteDirAndStructureHash(t *testing.T) {
	b := cpu.New(0)
	export := func(scale float64, seed uint64) (string, Manifest) {
		m, err := monodepth2.NewWithOptions(b, monodepth2.Options{ChannelScale: scale})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Init(b, seed); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		man, err := WriteDir(dir, b, m, Options{Height: 64, Width: 128, ProducerVersion: "v-test"}, "seed")
		if err != nil {
			t.Fatal(err)
		}
		return dir, man
	}
	dir, a := export(0.25, 1)
	_, same := export(0.25, 2)
	_, other := export(0.5, 1)

	back, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, a) {
		t.Errorf("manifest read back %+v, written %+v", back, a)
	}
	for _, n := range []Network{a.Depth, a.Pose} {
		raw, err := os.ReadFile(filepath.Join(dir, n.File))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(raw)
		if hex.EncodeToString(sum[:]) != n.SHA256 || len(raw) != n.Bytes {
			t.Errorf("%s: manifest says sha256 %s, %d bytes", n.File, n.SHA256, n.Bytes)
		}
	}
	if a.Opset != 13 || a.Depth.Inputs[0].Shape[2] != (Dim{Value: 64}) || a.Depth.Inputs[0].Shape[0] != (Dim{Param: DimBatch}) || a.Version != "v-test" {
		t.Errorf("manifest %+v", a)
	}
	if a.Depth.SHA256 == same.Depth.SHA256 || a.Depth.StructureSHA256 != same.Depth.StructureSHA256 || a.Pose.StructureSHA256 != same.Pose.StructureSHA256 {
		t.Errorf("new weights: file hash %s → %s, structure hash %s → %s", a.Depth.SHA256, same.Depth.SHA256, a.Depth.StructureSHA256, same.Depth.StructureSHA256)
	}
	if a.Depth.StructureSHA256 == other.Depth.StructureSHA256 || a.Depth.StructureSHA256 == a.Pose.StructureSHA256 {
		t.Error("different networks share a structure hash")
	}
	if _, err := ReadManifest(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no manifest: %v", err)
	}
}
