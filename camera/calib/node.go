package calib

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParseError is a calibration file that cannot be used, naming the file, the key (when
// one is to blame) and what is wrong with it.
type ParseError struct {
	File string
	Key  string
	Line int // 1-based; 0 when unknown
	Msg  string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("calib: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": ")
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// node is the common tree the YAML and XML readers produce: a mapping (keys in file
// order), a sequence or a scalar. A FileStorage matrix is a mapping tagged
// "opencv-matrix".
type node struct {
	line   int
	tag    string // without its leading ! or !!
	scalar string
	isSeq  bool
	seq    []*node
	keys   []string
	vals   []*node
}

func (n *node) isMap() bool { return n.keys != nil }

// get returns the value of key in a mapping, or nil.
func (n *node) get(key string) *node {
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// doc is one parsed file: its name, for errors, and its top-level mapping.
type doc struct {
	file string
	root *node
}

func (d *doc) errorf(key string, n *node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.line
	}
	return &ParseError{File: d.file, Key: key, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// maxNodes bounds the tree of one file: calibration files have a few hundred values,
// and a fuzzer's deeply nested or enormous input must not cost more than that.
const (
	maxNodes = 1 << 16
	maxDepth = 32
)

var errTooLarge = errors.New("file too large or too deeply nested for a calibration")

// parseYAMLDoc reads a YAML file, OpenCV's FileStorage dialect or plain YAML, into a
// tree. OpenCV writes a "%YAML:1.0" directive that no YAML 1.2 parser accepts (the
// standard form is "%YAML 1.2", and yaml.v3 takes only 1.1 and 1.2); it is blanked
// rather than removed so that line numbers stay those of the file.
func parseYAMLDoc(file string, data []byte) (*doc, error) {
	if bytes.HasPrefix(data, []byte("%YAML")) {
		end := bytes.IndexByte(data, '\n')
		if end < 0 {
			end = len(data)
		}
		header := strings.TrimSpace(string(data[:end]))
		if header != "%YAML:1.0" && header != "%YAML 1.0" && header != "%YAML:1.1" && header != "%YAML 1.1" && header != "%YAML 1.2" {
			return nil, &ParseError{File: file, Line: 1, Msg: fmt.Sprintf("unsupported YAML directive %q", header)}
		}
		data = data[end:] // keeps the newline, so line 2 is still line 2
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &ParseError{File: file, Msg: "not valid YAML: " + err.Error()}
	}
	if root.Kind == 0 {
		return nil, &ParseError{File: file, Msg: "empty file"}
	}
	top := &root
	if top.Kind == yaml.DocumentNode {
		if len(top.Content) != 1 {
			return nil, &ParseError{File: file, Msg: "empty document"}
		}
		top = top.Content[0]
	}
	if top.Kind != yaml.MappingNode {
		return nil, &ParseError{File: file, Line: top.Line, Msg: "the top level is not a mapping of keys to values"}
	}
	budget := maxNodes
	n, err := fromYAML(file, top, 0, &budget)
	if err != nil {
		return nil, err
	}
	return &doc{file: file, root: n}, nil
}

func fromYAML(file string, y *yaml.Node, depth int, budget *int) (*node, error) {
	*budget--
	if *budget < 0 || depth > maxDepth {
		return nil, &ParseError{File: file, Line: y.Line, Msg: errTooLarge.Error()}
	}
	n := &node{line: y.Line}
	// yaml.v3 gives every node a resolved tag (!!map, !!str, ...); only an explicit one,
	// such as OpenCV's !!opencv-matrix, says anything about the content.
	if y.Style&yaml.TaggedStyle != 0 {
		n.tag = strings.TrimPrefix(strings.TrimLeft(y.ShortTag(), "!"), "tag:yaml.org,2002:")
	}
	switch y.Kind {
	case yaml.ScalarNode:
		n.scalar = y.Value
	case yaml.SequenceNode:
		n.isSeq = true
		n.seq = make([]*node, 0, len(y.Content))
		for _, c := range y.Content {
			cn, err := fromYAML(file, c, depth+1, budget)
			if err != nil {
				return nil, err
			}
			n.seq = append(n.seq, cn)
		}
	case yaml.MappingNode:
		n.keys = make([]string, 0, len(y.Content)/2)
		for i := 0; i+1 < len(y.Content); i += 2 {
			k := y.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, &ParseError{File: file, Line: k.Line, Msg: "a mapping key is not a plain name"}
			}
			if n.get(k.Value) != nil {
				return nil, &ParseError{File: file, Key: k.Value, Line: k.Line, Msg: "key appears twice"}
			}
			v, err := fromYAML(file, y.Content[i+1], depth+1, budget)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k.Value)
			n.vals = append(n.vals, v)
		}
	case yaml.AliasNode:
		// Anchors and aliases are not part of what OpenCV writes, and following them
		// invites exponential expansion.
		return nil, &ParseError{File: file, Line: y.Line, Msg: "YAML aliases are not supported in calibration files"}
	default:
		return nil, &ParseError{File: file, Line: y.Line, Msg: "unexpected YAML node"}
	}
	return n, nil
}

// matrix is a dense row-major matrix read from a file.
type matrix struct {
	rows, cols int
	data       []float64
}

// maxMatrixDim bounds rows and cols of a matrix we decode; calibration matrices are at
// most 4x4, and the limit keeps rows·cols far from overflowing.
const maxMatrixDim = 1 << 12

// asMatrix decodes a matrix node: FileStorage's opencv-matrix (rows, cols, dt, data) or
// ROS's mapping (rows, cols, data). requireDt is true for FileStorage.
func (d *doc) asMatrix(key string, n *node, requireDt bool) (matrix, error) {
	if !n.isMap() {
		return matrix{}, d.errorf(key, n, "not a matrix (want a mapping with rows, cols and data)")
	}
	if n.tag != "" && n.tag != "opencv-matrix" {
		return matrix{}, d.errorf(key, n, "has type %q, want opencv-matrix", n.tag)
	}
	var m matrix
	var err error
	if m.rows, err = d.intField(key, n, "rows"); err != nil {
		return matrix{}, err
	}
	if m.cols, err = d.intField(key, n, "cols"); err != nil {
		return matrix{}, err
	}
	if m.rows <= 0 || m.cols <= 0 || m.rows > maxMatrixDim || m.cols > maxMatrixDim {
		return matrix{}, d.errorf(key, n, "size %d rows x %d cols is not a calibration matrix", m.rows, m.cols)
	}
	dt := n.get("dt")
	switch {
	case dt == nil && requireDt:
		return matrix{}, d.errorf(key, n, "has no dt (element type)")
	case dt != nil:
		if dt.isMap() || dt.isSeq {
			return matrix{}, d.errorf(key+".dt", dt, "is not a type name")
		}
		// One channel of u (uchar), c (schar), w (ushort), s (short), i (int),
		// f (float) or d (double). A count before the letter means several channels,
		// which no calibration matrix has.
		switch dt.scalar {
		case "u", "c", "w", "s", "i", "f", "d", "1u", "1c", "1w", "1s", "1i", "1f", "1d":
		default:
			return matrix{}, d.errorf(key+".dt", dt, "%q is not a single-channel element type (want d, f, i, ...)", dt.scalar)
		}
	}
	data := n.get("data")
	if data == nil {
		return matrix{}, d.errorf(key, n, "has no data")
	}
	vals, err := d.numbers(key+".data", data)
	if err != nil {
		return matrix{}, err
	}
	if len(vals) != m.rows*m.cols {
		return matrix{}, d.errorf(key+".data", data, "has %d values, want rows·cols = %d·%d = %d", len(vals), m.rows, m.cols, m.rows*m.cols)
	}
	m.data = vals
	return m, nil
}

func (d *doc) intField(key string, n *node, field string) (int, error) {
	f := n.get(field)
	if f == nil {
		return 0, d.errorf(key, n, "has no %s", field)
	}
	if f.isMap() || f.isSeq {
		return 0, d.errorf(key+"."+field, f, "is not a number")
	}
	v, err := strconv.Atoi(strings.TrimSpace(f.scalar))
	if err != nil {
		return 0, d.errorf(key+"."+field, f, "%q is not an integer", f.scalar)
	}
	return v, nil
}

// numbers reads a sequence of finite numbers (a YAML flow sequence, or the
// whitespace-separated text of an XML element).
func (d *doc) numbers(key string, n *node) ([]float64, error) {
	var items []*node
	switch {
	case n.isSeq:
		items = n.seq
	case n.isMap():
		return nil, d.errorf(key, n, "is a mapping, want a list of numbers")
	default:
		items = []*node{n}
	}
	out := make([]float64, 0, len(items))
	for i, it := range items {
		if it.isSeq || it.isMap() {
			return nil, d.errorf(key, it, "item %d is not a number", i)
		}
		v, err := parseNumber(it.scalar)
		if err != nil {
			return nil, d.errorf(key, it, "item %d: %v", i, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// parseNumber reads a number as OpenCV writes it ("5.3e+02", "0.", "-1") and rejects
// the non-finite values (.Inf, .Nan) that a calibration cannot hold.
func parseNumber(s string) (float64, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number", s)
	}
	return v, nil
}

// intValue reads a top-level integer such as image_width.
func (d *doc) intValue(key string, n *node) (int, error) {
	if n.isMap() || n.isSeq {
		return 0, d.errorf(key, n, "is not a number")
	}
	v, err := strconv.Atoi(strings.TrimSpace(n.scalar))
	if err != nil {
		return 0, d.errorf(key, n, "%q is not an integer", n.scalar)
	}
	return v, nil
}
