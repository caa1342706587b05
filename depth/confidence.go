package depth

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math"
	"strconv"
	"time"
)

// unitConfidence is the edgedepth:unit of a confidence PNG: value/255 is the
// confidence in [0, 1].
const unitConfidence = "confidence"

// EncodeConfidencePNG encodes a per-pixel confidence map (values in [0, 1], row-major,
// width·height values) as an 8-bit greyscale PNG, 255 for 1, carrying the depth
// message's seq, stamp, frame id and estimator in the same tEXt keys as the depth
// payload, so that a consumer can pair the two by seq. Values outside [0, 1] are
// clamped; NaN is written as 0.
func EncodeConfidencePNG(conf []float32, width, height int, meta Meta) ([]byte, error) {
	if width <= 0 || height <= 0 || len(conf) != width*height {
		return nil, fmt.Errorf("depth: confidence: %d values for a %dx%d image", len(conf), width, height)
	}
	if err := meta.check(); err != nil {
		return nil, err
	}
	img := image.NewGray(image.Rect(0, 0, width, height))
	for i, c := range conf {
		if !(c > 0) {
			continue
		}
		img.Pix[i] = uint8(math.Round(float64(min(c, 1)) * 255))
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("depth: confidence: %w", err)
	}
	// Splice the text chunks in after IHDR (signature 8 bytes, IHDR 25).
	data := buf.Bytes()
	const afterIHDR = 8 + 25
	out := make([]byte, 0, len(data)+256)
	out = append(out, data[:afterIHDR]...)
	for _, kv := range [][2]string{
		{keySchema, PayloadSchema},
		{keyUnit, unitConfidence},
		{keySeq, strconv.FormatUint(meta.Seq, 10)},
		{keyStamp, meta.Stamp.UTC().Format(time.RFC3339Nano)},
		{keyFrameID, meta.FrameID},
		{keyEstimator, meta.Estimator},
	} {
		var start int
		out, start = beginChunk(out, "tEXt")
		out = append(out, kv[0]...)
		out = append(out, 0)
		out = append(out, kv[1]...)
		out = endChunk(out, start)
	}
	return append(out, data[afterIHDR:]...), nil
}

// DecodeConfidencePNG decodes a payload of EncodeConfidencePNG: the confidences in
// [0, 1] and the seq, stamp, frame id and estimator (the other Meta fields stay zero).
func DecodeConfidencePNG(data []byte) (conf []float32, width, height int, meta Meta, err error) {
	texts, err := readTextChunks(data)
	if err != nil {
		return nil, 0, 0, meta, err
	}
	if texts[keyUnit] != unitConfidence {
		return nil, 0, 0, meta, fmt.Errorf("depth: confidence: edgedepth:unit is %q, want %q: %w", texts[keyUnit], unitConfidence, ErrNotDepthPayload)
	}
	if meta.Seq, err = strconv.ParseUint(texts[keySeq], 10, 64); err != nil {
		return nil, 0, 0, meta, fmt.Errorf("depth: confidence: %s: %w", keySeq, err)
	}
	if meta.Stamp, err = time.Parse(time.RFC3339Nano, texts[keyStamp]); err != nil {
		return nil, 0, 0, meta, fmt.Errorf("depth: confidence: %s: %w", keyStamp, err)
	}
	meta.FrameID, meta.Estimator = texts[keyFrameID], texts[keyEstimator]
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil || int64(cfg.Width)*int64(cfg.Height) > MaxPayloadPixels {
		return nil, 0, 0, meta, fmt.Errorf("depth: confidence: not a PNG of at most %d pixels (%v)", MaxPayloadPixels, err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, 0, 0, meta, fmt.Errorf("depth: confidence: %w", err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		return nil, 0, 0, meta, fmt.Errorf("depth: confidence: image is %T, want 8-bit greyscale", img)
	}
	width, height = g.Rect.Dx(), g.Rect.Dy()
	conf = make([]float32, width*height)
	for y := range height {
		for x := range width {
			conf[y*width+x] = float32(g.Pix[y*g.Stride+x]) / 255
		}
	}
	return conf, width, height, meta, nil
}
