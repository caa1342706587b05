package depth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"math"
	"strconv"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

// The depth payload is a standard 16-bit greyscale PNG: every PNG reader sees depth in
// millimetres (0 = no estimate), and the metadata a consumer needs to use it travels
// inside, as PNG tEXt chunks placed between IHDR and the image data. Schema version 1:
//
//	edgedepth:schema      "1"; a decoder rejects versions it does not know
//	edgedepth:unit        "mm": one grey level is one millimetre
//	edgedepth:scale       "0.001": metres per grey level
//	edgedepth:invalid     "0": the grey level that means "no estimate"
//	edgedepth:seq         stereo pair sequence number, decimal
//	edgedepth:stamp       capture time, RFC 3339 in UTC with nanoseconds
//	edgedepth:frame_id    coordinate frame of the depth image (the left camera's optical frame)
//	edgedepth:estimator   what produced the depth ("sgbm", "monodepth2")
//	edgedepth:fx, :fy     focal lengths of the rectified left camera, pixels
//	edgedepth:cx, :cy     principal point, pixels
//	edgedepth:baseline_m  stereo baseline, metres
//
// Every key is written every time, numbers in Go's shortest round-trip decimal form.
// Text values are printable ASCII. Keys may be added in later versions of schema 1;
// decoders ignore edgedepth: keys they do not know.
const (
	PayloadSchema = "1"

	keySchema    = "edgedepth:schema"
	keyUnit      = "edgedepth:unit"
	keyScale     = "edgedepth:scale"
	keyInvalid   = "edgedepth:invalid"
	keySeq       = "edgedepth:seq"
	keyStamp     = "edgedepth:stamp"
	keyFrameID   = "edgedepth:frame_id"
	keyEstimator = "edgedepth:estimator"
	keyFx        = "edgedepth:fx"
	keyFy        = "edgedepth:fy"
	keyCx        = "edgedepth:cx"
	keyCy        = "edgedepth:cy"
	keyBaseline  = "edgedepth:baseline_m"

	keyPrefix = "edgedepth:"
	unitMM    = "mm"
	scaleMM   = "0.001"
)

// MaxPayloadPixels bounds the image size DecodePNG accepts (4096x4096), so that a
// malformed or hostile header cannot make it allocate gigabytes.
const MaxPayloadPixels = 1 << 24

// ErrNotDepthPayload is wrapped by DecodePNG errors about input that is not an
// edgedepth depth PNG (not a PNG, not 16-bit grey, no edgedepth metadata).
var ErrNotDepthPayload = errors.New("not an edgedepth depth PNG")

// Meta is the metadata carried inside a depth payload.
type Meta struct {
	// Seq is the sequence number of the stereo pair the depth was estimated from.
	Seq uint64
	// Stamp is the capture time of that pair.
	Stamp time.Time
	// FrameID names the coordinate frame of the depth image, such as
	// "left_camera_optical". Printable ASCII.
	FrameID string
	// Estimator names what produced the depth, such as "sgbm". Printable ASCII.
	Estimator string
	// Intrinsics of the rectified left camera (Fx, Fy, Cx, Cy in pixels). Width and
	// Height are not stored: DecodePNG fills them from the image.
	Intrinsics camera.Intrinsics
	// BaselineM is the stereo baseline in metres (0 when unknown, e.g. monocular).
	BaselineM float64
}

// check reports metadata that cannot be written: numbers that are not finite, text
// that is not printable ASCII, stamps outside what RFC 3339 can write.
func (meta *Meta) check() error {
	for _, f := range []struct {
		key string
		v   float64
	}{
		{keyFx, meta.Intrinsics.Fx}, {keyFy, meta.Intrinsics.Fy},
		{keyCx, meta.Intrinsics.Cx}, {keyCy, meta.Intrinsics.Cy},
		{keyBaseline, meta.BaselineM},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("depth: payload: %s is %g, want a finite number", f.key, f.v)
		}
	}
	for _, f := range []struct{ key, v string }{
		{keyFrameID, meta.FrameID}, {keyEstimator, meta.Estimator},
	} {
		if err := checkText(f.key, f.v); err != nil {
			return err
		}
	}
	return checkStamp(meta.Stamp)
}

// metaText is the metadata EncodePNG writes, one tEXt chunk per entry in this order:
// each key and a function appending its value (of metadata that passed check). The
// values are appended straight into the payload, so writing them allocates nothing
// (Meta goes by value: a pointer passed to these function values would escape, and
// EncodePNG's meta with it).
var metaText = [...]struct {
	key   string
	value func(b []byte, meta Meta) []byte
}{
	{keySchema, func(b []byte, _ Meta) []byte { return append(b, PayloadSchema...) }},
	{keyUnit, func(b []byte, _ Meta) []byte { return append(b, unitMM...) }},
	{keyScale, func(b []byte, _ Meta) []byte { return append(b, scaleMM...) }},
	{keyInvalid, func(b []byte, _ Meta) []byte { return append(b, '0') }},
	{keySeq, func(b []byte, meta Meta) []byte { return strconv.AppendUint(b, meta.Seq, 10) }},
	{keyStamp, func(b []byte, meta Meta) []byte { return meta.Stamp.UTC().AppendFormat(b, time.RFC3339Nano) }},
	{keyFrameID, func(b []byte, meta Meta) []byte { return append(b, meta.FrameID...) }},
	{keyEstimator, func(b []byte, meta Meta) []byte { return append(b, meta.Estimator...) }},
	{keyFx, func(b []byte, meta Meta) []byte { return appendFloat(b, meta.Intrinsics.Fx) }},
	{keyFy, func(b []byte, meta Meta) []byte { return appendFloat(b, meta.Intrinsics.Fy) }},
	{keyCx, func(b []byte, meta Meta) []byte { return appendFloat(b, meta.Intrinsics.Cx) }},
	{keyCy, func(b []byte, meta Meta) []byte { return appendFloat(b, meta.Intrinsics.Cy) }},
	{keyBaseline, func(b []byte, meta Meta) []byte { return appendFloat(b, meta.BaselineM) }},
}

// appendFloat appends v in Go's shortest round-trip decimal form.
func appendFloat(b []byte, v float64) []byte { return strconv.AppendFloat(b, v, 'g', -1, 64) }

// checkStamp accepts times RFC 3339 can write in UTC: years 0000..9999.
func checkStamp(t time.Time) error {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("depth: payload: %s %v is outside years 0000..9999 UTC", keyStamp, t)
	}
	return nil
}

// checkText accepts printable ASCII: tEXt is Latin-1, so UTF-8 would be misread by
// other tools, and control characters have no place in identifiers.
func checkText(key, v string) error {
	if len(v) > 1024 {
		return fmt.Errorf("depth: payload: %s is %d bytes long, at most 1024", key, len(v))
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return fmt.Errorf("depth: payload: %s %q has a byte 0x%02x outside printable ASCII", key, v, v[i])
		}
	}
	return nil
}

// toMillimetres rounds metres to the nearest millimetre for a 16-bit sample: 0 (and
// anything not a positive finite number, which a Map should not hold) stays 0 = invalid,
// a valid depth under half a millimetre becomes 1 so it stays valid, and anything from
// 65.5345 m up is 65535.
func toMillimetres(z float32) uint16 {
	if !(z > 0) || z > math.MaxFloat32 {
		return 0
	}
	mm := float64(z)*1000 + 0.5
	if mm >= math.MaxUint16 {
		return math.MaxUint16
	}
	if mm < 1 {
		return 1
	}
	return uint16(mm)
}

// EncodePNG encodes m as the depth payload described above: a 16-bit greyscale PNG in
// millimetres, values rounded to the nearest millimetre and clamped at 65535 (65.535 m),
// with meta in tEXt chunks ahead of the image data, so that a streaming reader has the
// metadata before the pixels. It favours speed over size: one fixed row filter and zlib
// BestSpeed (see payloadFilter and payloadLevel in pngwrite.go). EncodePNG is safe for
// concurrent use; once warm it allocates only the slice it returns.
func EncodePNG(m Map, meta Meta) ([]byte, error) {
	if err := checkMap("payload", m); err != nil {
		return nil, err
	}
	if m.Width == 0 || m.Height == 0 {
		return nil, fmt.Errorf("depth: payload: empty %dx%d map", m.Width, m.Height)
	}
	if err := meta.check(); err != nil {
		return nil, err
	}
	w := pngWriters.Get().(*pngWriter)
	defer pngWriters.Put(w)
	if err := w.encode(m, &meta, payloadFilter, payloadLevel); err != nil {
		return nil, err
	}
	return bytes.Clone(w.out), nil
}

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// readTextChunks walks the chunks of a PNG, checking lengths and CRCs, and returns the
// text of every tEXt chunk whose keyword starts with "edgedepth:".
func readTextChunks(data []byte) (map[string]string, error) {
	if !bytes.HasPrefix(data, pngSignature) {
		return nil, fmt.Errorf("depth: payload: no PNG signature: %w", ErrNotDepthPayload)
	}
	texts := make(map[string]string)
	rest := data[len(pngSignature):]
	for {
		if len(rest) < 12 {
			return nil, fmt.Errorf("depth: payload: truncated PNG chunk: %w", ErrNotDepthPayload)
		}
		n := binary.BigEndian.Uint32(rest)
		if n > math.MaxInt32 || uint64(n) > uint64(len(rest)-12) {
			return nil, fmt.Errorf("depth: payload: truncated PNG: %q chunk of %d bytes, %d left: %w",
				rest[4:8], n, len(rest)-12, ErrNotDepthPayload)
		}
		typ := string(rest[4:8])
		body := rest[8 : 8+n]
		sum := binary.BigEndian.Uint32(rest[8+n:])
		if crc32.ChecksumIEEE(rest[4:8+n]) != sum {
			return nil, fmt.Errorf("depth: payload: bad CRC in PNG %q chunk: %w", typ, ErrNotDepthPayload)
		}
		rest = rest[12+n:]
		switch typ {
		case "IEND":
			return texts, nil
		case "tEXt":
			key, value, ok := bytes.Cut(body, []byte{0})
			if !ok || !bytes.HasPrefix(key, []byte(keyPrefix)) {
				continue // not ours, or malformed but harmless to us
			}
			k := string(key)
			if _, dup := texts[k]; dup {
				return nil, fmt.Errorf("depth: payload: %s appears twice", k)
			}
			if err := checkText(k, string(value)); err != nil {
				return nil, err
			}
			texts[k] = string(value)
		}
	}
}

func parseMeta(texts map[string]string) (Meta, error) {
	var meta Meta
	if s, ok := texts[keySchema]; ok && s != PayloadSchema {
		return meta, fmt.Errorf("depth: payload: unsupported %s %q (this build reads %q)", keySchema, s, PayloadSchema)
	}
	unit, ok := texts[keyUnit]
	if !ok {
		return meta, fmt.Errorf("depth: payload: no %s: %w", keyUnit, ErrNotDepthPayload)
	}
	if unit != unitMM {
		return meta, fmt.Errorf("depth: payload: %s is %q, want %q", keyUnit, unit, unitMM)
	}
	if s, ok := texts[keyScale]; ok {
		if v, err := strconv.ParseFloat(s, 64); err != nil || v != 0.001 {
			return meta, fmt.Errorf("depth: payload: %s is %q, want %s", keyScale, s, scaleMM)
		}
	}
	if s, ok := texts[keyInvalid]; ok && s != "0" {
		return meta, fmt.Errorf("depth: payload: %s is %q, want 0", keyInvalid, s)
	}
	if s, ok := texts[keySeq]; ok {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return meta, fmt.Errorf("depth: payload: %s %q is not an unsigned integer", keySeq, s)
		}
		meta.Seq = v
	}
	if s, ok := texts[keyStamp]; ok {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return meta, fmt.Errorf("depth: payload: %s: %w", keyStamp, err)
		}
		if err := checkStamp(v); err != nil {
			return meta, err
		}
		meta.Stamp = v
	}
	meta.FrameID = texts[keyFrameID]
	meta.Estimator = texts[keyEstimator]
	for _, f := range []struct {
		key string
		dst *float64
	}{
		{keyFx, &meta.Intrinsics.Fx}, {keyFy, &meta.Intrinsics.Fy},
		{keyCx, &meta.Intrinsics.Cx}, {keyCy, &meta.Intrinsics.Cy},
		{keyBaseline, &meta.BaselineM},
	} {
		s, ok := texts[f.key]
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return meta, fmt.Errorf("depth: payload: %s %q is not a finite number", f.key, s)
		}
		*f.dst = v
	}
	return meta, nil
}

// DecodePNG decodes a depth payload written by EncodePNG: the map in metres and its
// metadata, with Meta.Intrinsics.Width and Height set to the image size. It rejects
// anything that is not a 16-bit greyscale PNG carrying edgedepth:unit = mm, images over
// MaxPayloadPixels, and metadata values that do not parse.
func DecodePNG(data []byte) (Map, Meta, error) {
	texts, err := readTextChunks(data)
	if err != nil {
		return Map{}, Meta{}, err
	}
	meta, err := parseMeta(texts)
	if err != nil {
		return Map{}, Meta{}, err
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return Map{}, Meta{}, fmt.Errorf("depth: payload: %w (%w)", err, ErrNotDepthPayload)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxPayloadPixels {
		return Map{}, Meta{}, fmt.Errorf("depth: payload: image size %dx%d outside 1..%d pixels",
			cfg.Width, cfg.Height, MaxPayloadPixels)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return Map{}, Meta{}, fmt.Errorf("depth: payload: %w (%w)", err, ErrNotDepthPayload)
	}
	g, ok := img.(*image.Gray16)
	if !ok {
		return Map{}, Meta{}, fmt.Errorf("depth: payload: image is %T, want 16-bit greyscale: %w", img, ErrNotDepthPayload)
	}
	b := g.Bounds()
	m := NewMap(b.Dx(), b.Dy())
	for y := 0; y < m.Height; y++ {
		row := g.Pix[y*g.Stride : y*g.Stride+2*m.Width]
		dst := m.M[y*m.Width : (y+1)*m.Width]
		for x := range dst {
			dst[x] = float32(float64(binary.BigEndian.Uint16(row[2*x:])) / 1000)
		}
	}
	meta.Intrinsics.Width, meta.Intrinsics.Height = m.Width, m.Height
	return m, meta, nil
}
