package onnx

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The ONNX protobuf schema (onnx.proto, IR version 7) as far as the exporter writes
// it: message field numbers and enum values. Messages are written by hand with
// protowire; repeated scalars are written unpacked, as proto2 does by default (every
// protobuf parser accepts both forms).
const (
	// ModelProto
	fModelIRVersion       protowire.Number = 1
	fModelProducerName    protowire.Number = 2
	fModelProducerVersion protowire.Number = 3
	fModelDomain          protowire.Number = 4
	fModelVersion         protowire.Number = 5
	fModelDocString       protowire.Number = 6
	fModelGraph           protowire.Number = 7
	fModelOpsetImport     protowire.Number = 8
	fModelMetadataProps   protowire.Number = 14

	// OperatorSetIdProto
	fOpsetDomain  protowire.Number = 1
	fOpsetVersion protowire.Number = 2

	// StringStringEntryProto
	fEntryKey   protowire.Number = 1
	fEntryValue protowire.Number = 2

	// GraphProto
	fGraphNode        protowire.Number = 1
	fGraphName        protowire.Number = 2
	fGraphInitializer protowire.Number = 5
	fGraphDocString   protowire.Number = 10
	fGraphInput       protowire.Number = 11
	fGraphOutput      protowire.Number = 12

	// NodeProto
	fNodeInput     protowire.Number = 1
	fNodeOutput    protowire.Number = 2
	fNodeName      protowire.Number = 3
	fNodeOpType    protowire.Number = 4
	fNodeAttribute protowire.Number = 5

	// AttributeProto
	fAttrName   protowire.Number = 1
	fAttrF      protowire.Number = 2
	fAttrI      protowire.Number = 3
	fAttrS      protowire.Number = 4
	fAttrFloats protowire.Number = 7
	fAttrInts   protowire.Number = 8
	fAttrType   protowire.Number = 20

	// TensorProto
	fTensorDims     protowire.Number = 1
	fTensorDataType protowire.Number = 2
	fTensorName     protowire.Number = 8
	fTensorRawData  protowire.Number = 9

	// ValueInfoProto
	fValueName protowire.Number = 1
	fValueType protowire.Number = 2

	// TypeProto and TypeProto.Tensor
	fTypeTensor     protowire.Number = 1
	fTensorElemType protowire.Number = 1
	fTensorShape    protowire.Number = 2

	// TensorShapeProto and its Dimension
	fShapeDim protowire.Number = 1
	fDimValue protowire.Number = 1
	fDimParam protowire.Number = 2
)

// AttributeProto.AttributeType values.
const (
	typeFloat  = 1
	typeInt    = 2
	typeString = 3
	typeFloats = 6
	typeInts   = 7
)

// TensorProto.DataType values.
const (
	dtFloat = 1
	dtInt64 = 7
)

// msg is a protobuf message being written.
type msg []byte

func (m *msg) bytes(n protowire.Number, b []byte) {
	*m = protowire.AppendTag(*m, n, protowire.BytesType)
	*m = protowire.AppendBytes(*m, b)
}

func (m *msg) str(n protowire.Number, s string) {
	*m = protowire.AppendTag(*m, n, protowire.BytesType)
	*m = protowire.AppendString(*m, s)
}

// int writes an int32, int64 or enum field (varint, two's complement for negatives).
func (m *msg) int(n protowire.Number, v int64) {
	*m = protowire.AppendTag(*m, n, protowire.VarintType)
	*m = protowire.AppendVarint(*m, uint64(v))
}

func (m *msg) float(n protowire.Number, v float32) {
	*m = protowire.AppendTag(*m, n, protowire.Fixed32Type)
	*m = protowire.AppendFixed32(*m, math.Float32bits(v))
}

// attr is one NodeProto attribute.
type attr struct {
	name   string
	typ    int
	i      int64
	f      float32
	s      string
	ints   []int64
	floats []float32
}

func attrI(name string, v int64) attr       { return attr{name: name, typ: typeInt, i: v} }
func attrF(name string, v float32) attr     { return attr{name: name, typ: typeFloat, f: v} }
func attrS(name, v string) attr             { return attr{name: name, typ: typeString, s: v} }
func attrInts(name string, v ...int64) attr { return attr{name: name, typ: typeInts, ints: v} }

func (a attr) encode() msg {
	var m msg
	m.str(fAttrName, a.name)
	m.int(fAttrType, int64(a.typ))
	switch a.typ {
	case typeInt:
		m.int(fAttrI, a.i)
	case typeFloat:
		m.float(fAttrF, a.f)
	case typeString:
		m.str(fAttrS, a.s)
	case typeInts:
		for _, v := range a.ints {
			m.int(fAttrInts, v)
		}
	case typeFloats:
		for _, v := range a.floats {
			m.float(fAttrFloats, v)
		}
	}
	return m
}

// tensorProto encodes a dense initializer with its data in raw_data (little-endian).
func tensorProto(name string, dataType int, dims []int64, raw []byte) msg {
	var m msg
	for _, d := range dims {
		m.int(fTensorDims, d)
	}
	m.int(fTensorDataType, int64(dataType))
	m.str(fTensorName, name)
	m.bytes(fTensorRawData, raw)
	return m
}

func floatsRaw(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func int64sRaw(v []int64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return b
}

// Dim is one dimension of a graph input or output: a fixed size (Value > 0) or a
// symbolic one (Param, e.g. "batch") that the runtime fills in.
type Dim struct {
	Value int64
	Param string
}

// valueInfo encodes a float32 tensor's name, type and shape.
func valueInfo(name string, elemType int, dims []Dim) msg {
	var shape msg
	for _, d := range dims {
		var dm msg
		if d.Param != "" {
			dm.str(fDimParam, d.Param)
		} else {
			dm.int(fDimValue, d.Value)
		}
		shape.bytes(fShapeDim, dm)
	}
	var tt msg
	tt.int(fTensorElemType, int64(elemType))
	tt.bytes(fTensorShape, shape)
	var typ msg
	typ.bytes(fTypeTensor, tt)
	var m msg
	m.str(fValueName, name)
	m.bytes(fValueType, typ)
	return m
}
