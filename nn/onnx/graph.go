package onnx

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// graph collects one GraphProto: nodes in topological order (the order they are
// added), initializers, inputs and outputs.
type graph struct {
	name       string
	doc        string
	nodes      []msg
	inits      []msg
	initKeys   []msg // each initializer without its data: what the structure hash sees
	inputs     []msg
	outputs    []msg
	names      map[string]int // value names handed out, for uniqueness
	initByName map[string]bool
}

func newGraph(name, doc string) *graph {
	return &graph{name: name, doc: doc, names: map[string]int{}, initByName: map[string]bool{}}
}

// unique returns base, or base with a counter after it when base is taken.
func (g *graph) unique(base string) string {
	name := base
	for i := 1; g.names[name] > 0; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	g.names[name]++
	return name
}

// node appends a node of type op and returns its one output, named after name.
func (g *graph) node(op, name string, inputs []string, attrs ...attr) string {
	out := g.unique(name)
	var m msg
	for _, in := range inputs {
		m.str(fNodeInput, in)
	}
	m.str(fNodeOutput, out)
	m.str(fNodeName, out)
	m.str(fNodeOpType, op)
	for _, a := range attrs {
		m.bytes(fNodeAttribute, a.encode())
	}
	g.nodes = append(g.nodes, m)
	return out
}

// initializer adds a constant tensor; adding a name twice is a programmer error.
func (g *graph) initializer(name string, dataType int, dims []int64, raw []byte) string {
	if g.initByName[name] {
		panic("onnx: initializer " + name + " added twice")
	}
	g.initByName[name] = true
	g.names[name]++
	g.inits = append(g.inits, tensorProto(name, dataType, dims, raw))
	g.initKeys = append(g.initKeys, tensorProto(name, dataType, dims, nil))
	return name
}

// constFloats is a float32 constant, shared by every node that asks for the same
// name.
func (g *graph) constFloats(name string, dims []int64, v ...float32) string {
	if g.initByName[name] {
		return name
	}
	return g.initializer(name, dtFloat, dims, floatsRaw(v))
}

// constInt64s is a 1-D int64 constant, shared by every node that asks for the same
// name.
func (g *graph) constInt64s(name string, v ...int64) string {
	if g.initByName[name] {
		return name
	}
	return g.initializer(name, dtInt64, []int64{int64(len(v))}, int64sRaw(v))
}

// input declares a float32 graph input and returns its name.
func (g *graph) input(name string, dims []Dim) string {
	g.inputs = append(g.inputs, valueInfo(name, dtFloat, dims))
	g.names[name]++
	return name
}

// output declares the float32 value name as a graph output.
func (g *graph) output(name string, dims []Dim) {
	g.outputs = append(g.outputs, valueInfo(name, dtFloat, dims))
}

// encode writes the GraphProto.
func (g *graph) encode() msg {
	var m msg
	for _, n := range g.nodes {
		m.bytes(fGraphNode, n)
	}
	m.str(fGraphName, g.name)
	for _, t := range g.inits {
		m.bytes(fGraphInitializer, t)
	}
	if g.doc != "" {
		m.str(fGraphDocString, g.doc)
	}
	for _, v := range g.inputs {
		m.bytes(fGraphInput, v)
	}
	for _, v := range g.outputs {
		m.bytes(fGraphOutput, v)
	}
	return m
}

// structureHash is the SHA-256 of everything in the graph but the initializers'
// values: the same for two exports of one network that differ only in weights.
func (g *graph) structureHash() string {
	h := sha256.New()
	for _, part := range [][]msg{g.nodes, g.initKeys, g.inputs, g.outputs} {
		for _, m := range part {
			var n msg
			n.bytes(1, m) // length-prefixed, so that concatenations cannot collide
			h.Write(n)
		}
		h.Write([]byte{0xff})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// model is what goes around a graph in a ModelProto.
type model struct {
	producerVersion string
	doc             string
	metadata        [][2]string
}

// encodeModel writes the ModelProto of g.
func encodeModel(g *graph, md model) []byte {
	var m msg
	m.int(fModelIRVersion, IRVersion)
	m.str(fModelProducerName, Producer)
	if md.producerVersion != "" {
		m.str(fModelProducerVersion, md.producerVersion)
	}
	m.str(fModelDomain, Domain)
	m.int(fModelVersion, 1)
	if md.doc != "" {
		m.str(fModelDocString, md.doc)
	}
	m.bytes(fModelGraph, g.encode())
	var opset msg
	opset.str(fOpsetDomain, "")
	opset.int(fOpsetVersion, Opset)
	m.bytes(fModelOpsetImport, opset)
	for _, kv := range md.metadata {
		var e msg
		e.str(fEntryKey, kv[0])
		e.str(fEntryValue, kv[1])
		m.bytes(fModelMetadataProps, e)
	}
	return m
}
