package calib

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// parseXMLDoc reads a cv::FileStorage XML file into a tree. FileStorage's XML is simple:
// the root element is <opencv_storage>; an element with child elements is a mapping
// (or, when every child is named "_", a sequence); an element with text only holds one
// value or, for numbers, several separated by white space (matrix data, a cv::Size).
// A type_id attribute ("opencv-matrix") plays the role of the YAML tag.
func parseXMLDoc(file string, data []byte) (*doc, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	budget := maxNodes
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil, &ParseError{File: file, Msg: "no <opencv_storage> element"}
		}
		if err != nil {
			return nil, &ParseError{File: file, Msg: "not valid XML: " + err.Error()}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			line, _ := dec.InputPos()
			if t.Name.Local != "opencv_storage" {
				return nil, &ParseError{File: file, Line: line, Msg: fmt.Sprintf("root element is <%s>, want <opencv_storage>", t.Name.Local)}
			}
			root, err := fromXML(file, dec, t, line, 0, &budget)
			if err != nil {
				return nil, err
			}
			if root.keys == nil {
				root.keys = []string{} // an empty storage is a mapping without keys
			}
			if root.isSeq {
				return nil, &ParseError{File: file, Line: line, Msg: "<opencv_storage> holds a sequence, want named values"}
			}
			return &doc{file: file, root: root}, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				line, _ := dec.InputPos()
				return nil, &ParseError{File: file, Line: line, Msg: "text outside <opencv_storage>"}
			}
		}
	}
}

// fromXML reads the content of start up to its end element.
func fromXML(file string, dec *xml.Decoder, start xml.StartElement, line, depth int, budget *int) (*node, error) {
	*budget--
	if *budget < 0 || depth > maxDepth {
		return nil, &ParseError{File: file, Line: line, Msg: errTooLarge.Error()}
	}
	n := &node{line: line}
	for _, a := range start.Attr {
		if a.Name.Local == "type_id" {
			n.tag = a.Value
		}
	}
	var text strings.Builder
	var children []*node
	var names []string
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, &ParseError{File: file, Key: start.Name.Local, Line: line, Msg: "not valid XML: " + err.Error()}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			l, _ := dec.InputPos()
			c, err := fromXML(file, dec, t, l, depth+1, budget)
			if err != nil {
				return nil, err
			}
			children = append(children, c)
			names = append(names, t.Name.Local)
		case xml.CharData:
			if text.Len()+len(t) > 1<<20 {
				return nil, &ParseError{File: file, Key: start.Name.Local, Line: line, Msg: errTooLarge.Error()}
			}
			text.Write(t)
		case xml.EndElement:
			return xmlNode(file, n, start.Name.Local, text.String(), names, children)
		}
	}
}

func xmlNode(file string, n *node, name, text string, names []string, children []*node) (*node, error) {
	if len(children) == 0 {
		fields := strings.Fields(text)
		switch len(fields) {
		case 0:
		case 1:
			n.scalar = fields[0]
		default:
			n.isSeq = true
			for _, f := range fields {
				n.seq = append(n.seq, &node{line: n.line, scalar: f})
			}
		}
		return n, nil
	}
	if strings.TrimSpace(text) != "" {
		return nil, &ParseError{File: file, Key: name, Line: n.line, Msg: "mixes text and elements"}
	}
	seq := true
	for _, nm := range names {
		if nm != "_" {
			seq = false
		}
	}
	if seq {
		n.isSeq = true
		n.seq = children
		return n, nil
	}
	n.keys = make([]string, 0, len(children))
	for i, c := range children {
		if n.get(names[i]) != nil {
			return nil, &ParseError{File: file, Key: names[i], Line: c.line, Msg: "key appears twice"}
		}
		n.keys = append(n.keys, names[i])
		n.vals = append(n.vals, c)
	}
	return n, nil
}
