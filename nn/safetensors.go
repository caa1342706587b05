package nn

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"

	"github.com/edgedepth/edgedepth/internal/atomicfile"
	"github.com/edgedepth/edgedepth/tensor"
)

// The safetensors format (https://github.com/huggingface/safetensors), the model
// store's file format:
//
//	8 bytes   N, the header length, unsigned little-endian
//	N bytes   JSON: {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [BEGIN, END]},
//	          ..., "__metadata__": {"key": "value", ...}} (metadata optional, strings only),
//	          padded with spaces
//	rest      the tensors' bytes, little-endian; offsets are relative to this section,
//	          which they must cover exactly, without holes or overlaps
//
// It is small enough to write here rather than depend on a module: we need F32 only,
// and the reader must be strict because it reads files that crossed a network.

const (
	// safetensorsMaxHeader is the header limit of the reference implementation: a
	// larger header is refused before it is read.
	safetensorsMaxHeader = 100_000_000
	safetensorsMetaKey   = "__metadata__"
)

type safetensorsEntry struct {
	DType   string   `json:"dtype"`
	Shape   []int64  `json:"shape"`
	Offsets []uint64 `json:"data_offsets"`
}

// WriteSafetensors writes the tensors, sorted by name, as float32 ("F32") with the
// optional metadata. It checks everything (unique non-empty names, data lengths) before
// writing the first byte. The header is padded to a multiple of 8 bytes, as the
// reference implementation does, so that the data section is aligned.
func WriteSafetensors(w io.Writer, ts []NamedTensor, meta map[string]string) error {
	sorted := make([]*NamedTensor, len(ts))
	for i := range ts {
		sorted[i] = &ts[i]
	}
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	field := func(k string, v any) error {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(v)
		if err != nil {
			return err
		}
		hdr.Write(kb)
		hdr.WriteByte(':')
		hdr.Write(vb)
		return nil
	}
	if len(meta) > 0 {
		if err := field(safetensorsMetaKey, meta); err != nil { // json sorts map keys
			return fmt.Errorf("write safetensors: metadata: %w", err)
		}
	}
	var off uint64
	for i, t := range sorted {
		switch {
		case t.Name == "":
			return errors.New("write safetensors: a tensor without a name")
		case t.Name == safetensorsMetaKey:
			return fmt.Errorf("write safetensors: %q is reserved for metadata, not a tensor name", t.Name)
		case i > 0 && sorted[i-1].Name == t.Name:
			return fmt.Errorf("write safetensors: two tensors named %q", t.Name)
		}
		shape := make([]int64, len(t.Shape))
		for j, d := range t.Shape {
			if d < 0 {
				return fmt.Errorf("write safetensors: tensor %s has shape %v", t.Name, t.Shape)
			}
			shape[j] = int64(d)
		}
		if t.Shape.Len() != len(t.Data) {
			return fmt.Errorf("write safetensors: tensor %s has %d values for shape %v (%d)", t.Name, len(t.Data), t.Shape, t.Shape.Len())
		}
		end := off + 4*uint64(len(t.Data))
		if err := field(t.Name, safetensorsEntry{DType: "F32", Shape: shape, Offsets: []uint64{off, end}}); err != nil {
			return fmt.Errorf("write safetensors: %w", err)
		}
		off = end
	}
	hdr.WriteByte('}')
	for (8+hdr.Len())%8 != 0 {
		hdr.WriteByte(' ')
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(hdr.Len()))
	if _, err := w.Write(n[:]); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	buf := make([]byte, 0, 64<<10)
	for _, t := range sorted {
		for _, v := range t.Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) {
				if _, err := w.Write(buf); err != nil {
					return fmt.Errorf("write safetensors: %w", err)
				}
				buf = buf[:0]
			}
		}
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	return nil
}

// ReadSafetensors reads a safetensors stream of F32 tensors and returns them sorted by
// name, with the metadata (nil when there is none). It rejects anything the format does
// not allow: a header that is not a JSON object, duplicate or unknown keys, offsets
// that overlap, leave holes, do not match the shape or run past the data, and trailing
// bytes after the data. Other dtypes are refused with an error that names them.
func ReadSafetensors(r io.Reader) ([]NamedTensor, map[string]string, error) {
	var n [8]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, nil, fmt.Errorf("read safetensors: no 8-byte header length (%w): not a safetensors file", err)
	}
	hlen := binary.LittleEndian.Uint64(n[:])
	if hlen < 2 || hlen > safetensorsMaxHeader {
		return nil, nil, fmt.Errorf("read safetensors: header length %d outside [2, %d]: not a safetensors file", hlen, safetensorsMaxHeader)
	}
	// ReadAll through a limit, not a buffer of hlen bytes: a short file claiming a big
	// header costs only what it holds.
	hdr, err := io.ReadAll(io.LimitReader(r, int64(hlen)))
	if err != nil {
		return nil, nil, fmt.Errorf("read safetensors: header: %w", err)
	}
	if uint64(len(hdr)) != hlen {
		return nil, nil, fmt.Errorf("read safetensors: header of %d bytes announced, file ends after %d", hlen, len(hdr))
	}
	names, entries, meta, err := parseSafetensorsHeader(hdr)
	if err != nil {
		return nil, nil, fmt.Errorf("read safetensors: header: %w", err)
	}

	// Offsets, in data order, must tile [0, total) exactly.
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		ea, eb := entries[order[a]], entries[order[b]]
		if ea.Offsets[0] != eb.Offsets[0] {
			return ea.Offsets[0] < eb.Offsets[0]
		}
		return ea.Offsets[1] < eb.Offsets[1]
	})
	var total uint64
	for _, i := range order {
		e := entries[i]
		if e.Offsets[0] != total {
			if e.Offsets[0] < total {
				return nil, nil, fmt.Errorf("read safetensors: tensor %s at bytes [%d, %d) overlaps the tensor before it, which ends at %d", names[i], e.Offsets[0], e.Offsets[1], total)
			}
			return nil, nil, fmt.Errorf("read safetensors: tensor %s starts at byte %d, leaving a hole after byte %d", names[i], e.Offsets[0], total)
		}
		total = e.Offsets[1]
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(min(total, math.MaxInt64))))
	if err != nil {
		return nil, nil, fmt.Errorf("read safetensors: data: %w", err)
	}
	if uint64(len(data)) != total {
		return nil, nil, fmt.Errorf("read safetensors: the header places %d bytes of data, the file holds %d: truncated", total, len(data))
	}
	var extra [1]byte
	if k, _ := io.ReadFull(r, extra[:]); k > 0 {
		return nil, nil, fmt.Errorf("read safetensors: bytes after the %d bytes of data the header places", total)
	}

	ts := make([]NamedTensor, len(names))
	for i, name := range names {
		e := entries[i]
		shape := make(tensor.Shape, len(e.Shape))
		for j, d := range e.Shape {
			shape[j] = int(d)
		}
		vals := make([]float32, (e.Offsets[1]-e.Offsets[0])/4)
		src := data[e.Offsets[0]:e.Offsets[1]]
		for j := range vals {
			vals[j] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*j:]))
		}
		ts[i] = NamedTensor{Name: name, Shape: shape, Data: vals}
	}
	sort.Slice(ts, func(a, b int) bool { return ts[a].Name < ts[b].Name })
	return ts, meta, nil
}

// parseSafetensorsHeader decodes the JSON header, refusing duplicate keys (which
// encoding/json would silently resolve to the last one) and unknown fields, and checks
// each tensor's dtype, shape and byte count.
func parseSafetensorsHeader(hdr []byte) (names []string, entries []safetensorsEntry, meta map[string]string, err error) {
	if hdr[0] != '{' {
		return nil, nil, nil, fmt.Errorf("starts with %q, want a JSON object", hdr[:min(len(hdr), 16)])
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if _, err := dec.Token(); err != nil {
		return nil, nil, nil, err
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, nil, err
		}
		key := tok.(string) // object keys are always strings
		if seen[key] {
			return nil, nil, nil, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, nil, fmt.Errorf("%q: %w", key, err)
		}
		if key == "" {
			// Allowed by the format's grammar, but no network has such a parameter and
			// our writer refuses it, so it can only be a damaged file.
			return nil, nil, nil, errors.New("a tensor with an empty name")
		}
		if key == safetensorsMetaKey {
			if meta, err = parseSafetensorsMeta(raw); err != nil {
				return nil, nil, nil, fmt.Errorf("%s: %w", safetensorsMetaKey, err)
			}
			continue
		}
		e, err := parseSafetensorsEntry(raw)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("tensor %s: %w", strconv.Quote(key), err)
		}
		names = append(names, key)
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, nil, err
	}
	// Only padding may follow the object.
	rest := hdr[dec.InputOffset():]
	if len(bytes.Trim(rest, " \t\r\n")) != 0 {
		return nil, nil, nil, fmt.Errorf("%d bytes after the JSON object that are not padding", len(rest))
	}
	return names, entries, meta, nil
}

func parseSafetensorsMeta(raw json.RawMessage) (map[string]string, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("want an object of strings")
	}
	meta := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k := tok.(string)
		if _, dup := meta[k]; dup {
			return nil, fmt.Errorf("key %q appears twice", k)
		}
		v, err := dec.Token()
		if err != nil {
			return nil, err
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("value of %q is %v, want a string", k, v)
		}
		meta[k] = s
	}
	return meta, nil
}

func parseSafetensorsEntry(raw json.RawMessage) (safetensorsEntry, error) {
	var e safetensorsEntry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, err
	}
	switch {
	case e.DType == "":
		return e, errors.New("no dtype")
	case e.DType != "F32":
		return e, fmt.Errorf("dtype %s: only F32 is supported; convert the tensors to float32 before saving", e.DType)
	case e.Shape == nil:
		return e, errors.New("no shape")
	case len(e.Offsets) != 2:
		return e, fmt.Errorf("data_offsets %v, want [begin, end]", e.Offsets)
	case e.Offsets[0] > e.Offsets[1]:
		return e, fmt.Errorf("data_offsets %v end before they begin", e.Offsets)
	}
	numel := uint64(1)
	for _, d := range e.Shape {
		if d < 0 {
			return e, fmt.Errorf("shape %v has a negative dimension", e.Shape)
		}
		if d != 0 && numel > (1<<40)/uint64(d) { // no overflow of 4*numel below
			return e, fmt.Errorf("shape %v is too large", e.Shape)
		}
		numel *= uint64(d)
	}
	if e.Offsets[1]-e.Offsets[0] != 4*numel {
		return e, fmt.Errorf("data_offsets %v hold %d bytes, shape %v of F32 needs %d", e.Offsets, e.Offsets[1]-e.Offsets[0], e.Shape, 4*numel)
	}
	return e, nil
}

// SaveSafetensorsFile writes the tensors to path so that path holds either its old
// content or the complete new file, whatever happens: it writes a temporary file in the
// same directory, syncs it, renames it over path and syncs the directory, so the rename
// itself survives a power cut. On error the temporary file is removed and path is
// untouched. The file is readable by everyone (0644): model files are not secrets.
func SaveSafetensorsFile(path string, ts []NamedTensor, meta map[string]string) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return WriteSafetensors(w, ts, meta) })
}

// LoadSafetensorsFile reads a file written by SaveSafetensorsFile (or any safetensors
// file of F32 tensors).
func LoadSafetensorsFile(path string) ([]NamedTensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load safetensors: %w", err)
	}
	defer f.Close()
	ts, meta, err := ReadSafetensors(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, meta, nil
}
