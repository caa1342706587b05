package depth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

func testMeta() Meta {
	return Meta{
		Seq:        1234567890123,
		Stamp:      time.Date(2026, 11, 3, 14, 5, 6, 123456789, time.UTC),
		FrameID:    "left_camera_optical",
		Estimator:  "sgbm",
		Intrinsics: camera.Intrinsics{Fx: 525.5, Fy: 524.25, Cx: 319.5, Cy: 239.75},
		BaselineM:  0.12,
	}
}

// randomMap has depths up to 80 m (beyond the 16-bit range) and 10 % invalid pixels.
func randomMap(w, h int, seed uint64) Map {
	rng := rand.New(rand.NewPCG(seed, 7))
	m := NewMap(w, h)
	for i := range m.M {
		if rng.IntN(10) > 0 {
			m.M[i] = 0.2 + 80*rng.Float32()
		}
	}
	return m
}

func wantMillimetres(z float32) float32 {
	return float32(float64(toMillimetres(z)) / 1000)
}

func TestPNGRoundTrip(t *testing.T) {
	m := randomMap(64, 48, 1)
	m.M[0], m.M[1], m.M[2], m.M[3] = 0, 1.0005, 65.535, 1e-4
	meta := testMeta()
	data, err := EncodePNG(m, meta)
	if err != nil {
		t.Fatal(err)
	}
	got, gotMeta, err := DecodePNG(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Width != m.Width || got.Height != m.Height {
		t.Fatalf("decoded %dx%d, want %dx%d", got.Width, got.Height, m.Width, m.Height)
	}
	for i, z := range m.M {
		if want := wantMillimetres(z); got.M[i] != want {
			t.Fatalf("pixel %d: %g m decoded as %g, want %g", i, z, got.M[i], want)
		}
		if d := math.Abs(float64(got.M[i] - z)); z >= 0.0005 && z < 65.535 && d > 0.00051 {
			t.Fatalf("pixel %d: %g m decoded as %g, off by more than half a millimetre", i, z, got.M[i])
		}
	}
	meta.Intrinsics.Width, meta.Intrinsics.Height = m.Width, m.Height
	if !gotMeta.Stamp.Equal(meta.Stamp) {
		t.Errorf("stamp %v, want %v", gotMeta.Stamp, meta.Stamp)
	}
	gotMeta.Stamp = meta.Stamp
	if gotMeta != meta {
		t.Errorf("meta %+v, want %+v", gotMeta, meta)
	}
	// Encoding what was decoded gives the same bytes: the format is stable.
	again, err := EncodePNG(got, gotMeta)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Error("re-encoding a decoded payload changed it")
	}
}

func TestToMillimetres(t *testing.T) {
	tests := []struct {
		z    float32
		want uint16
	}{
		{0, 0}, {-1, 0}, {float32(math.NaN()), 0}, {float32(math.Inf(-1)), 0},
		{1e-9, 1}, {0.0004, 1}, {0.0015, 2}, {1.2344, 1234}, {1.2346, 1235},
		{65.5344, 65534}, {65.5346, 65535}, {65.535, 65535}, {200, 65535},
		{float32(math.Inf(1)), 0},
	}
	for _, tt := range tests {
		if got := toMillimetres(tt.z); got != tt.want {
			t.Errorf("toMillimetres(%g) = %d, want %d", tt.z, got, tt.want)
		}
	}
}

// TestPNGStandardDecoder checks the promise to consumers: any PNG reader gets a 16-bit
// greyscale image in millimetres.
func TestPNGStandardDecoder(t *testing.T) {
	m := randomMap(33, 17, 2)
	data, err := EncodePNG(m, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := img.(*image.Gray16)
	if !ok {
		t.Fatalf("png.Decode gave %T, want *image.Gray16", img)
	}
	if g.Bounds() != image.Rect(0, 0, 33, 17) {
		t.Fatalf("bounds %v", g.Bounds())
	}
	for y := range m.Height {
		for x := range m.Width {
			if got, want := g.Gray16At(x, y).Y, toMillimetres(m.M[y*m.Width+x]); got != want {
				t.Fatalf("(%d,%d) = %d mm, want %d", x, y, got, want)
			}
		}
	}
}

// TestPNGLayout checks the text chunks sit between IHDR and IDAT with valid CRCs (the
// decoder verifies CRCs too, but here independently of it), with schema 1's keys in
// their documented order.
func TestPNGLayout(t *testing.T) {
	data, err := EncodePNG(randomMap(8, 8, 3), testMeta())
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	var texts [][2]string
	for rest := data[8:]; len(rest) > 0; {
		n := binary.BigEndian.Uint32(rest)
		typ, body := string(rest[4:8]), rest[8:8+n]
		if crc32.ChecksumIEEE(rest[4:8+n]) != binary.BigEndian.Uint32(rest[8+n:]) {
			t.Fatalf("%s chunk: bad CRC", typ)
		}
		if len(types) == 0 || types[len(types)-1] != typ {
			types = append(types, typ)
		}
		if typ == "tEXt" {
			k, v, _ := strings.Cut(string(body), "\x00")
			texts = append(texts, [2]string{k, v})
		}
		rest = rest[12+n:]
	}
	if got := strings.Join(types, " "); got != "IHDR tEXt IDAT IEND" {
		t.Errorf("chunk order %q", got)
	}
	want := [][2]string{
		{"edgedepth:schema", "1"}, {"edgedepth:unit", "mm"}, {"edgedepth:scale", "0.001"},
		{"edgedepth:invalid", "0"}, {"edgedepth:seq", "1234567890123"},
		{"edgedepth:stamp", "2026-11-03T14:05:06.123456789Z"},
		{"edgedepth:frame_id", "left_camera_optical"}, {"edgedepth:estimator", "sgbm"},
		{"edgedepth:fx", "525.5"}, {"edgedepth:fy", "524.25"}, {"edgedepth:cx", "319.5"},
		{"edgedepth:cy", "239.75"}, {"edgedepth:baseline_m", "0.12"},
	}
	if len(texts) != len(want) {
		t.Fatalf("%d text chunks, want %d: %v", len(texts), len(want), texts)
	}
	for i := range want {
		if texts[i] != want[i] {
			t.Errorf("text chunk %d is %q, want %q", i, texts[i], want[i])
		}
	}
}

func TestEncodePNGErrors(t *testing.T) {
	tests := []struct {
		name   string
		m      Map
		modify func(*Meta)
		want   string
	}{
		{"empty map", NewMap(0, 0), nil, "empty"},
		{"corrupt map", Map{Width: 4, Height: 4, M: make([]float32, 3)}, nil, "size mismatch"},
		{"NaN fx", NewMap(2, 2), func(m *Meta) { m.Intrinsics.Fx = math.NaN() }, "edgedepth:fx"},
		{"Inf baseline", NewMap(2, 2), func(m *Meta) { m.BaselineM = math.Inf(1) }, "edgedepth:baseline_m"},
		{"UTF-8 frame id", NewMap(2, 2), func(m *Meta) { m.FrameID = "kamera_links_ä" }, "edgedepth:frame_id"},
		{"stamp before year 0", NewMap(2, 2), func(m *Meta) { m.Stamp = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }, "edgedepth:stamp"},
		{"newline in estimator", NewMap(2, 2), func(m *Meta) { m.Estimator = "a\nb" }, "edgedepth:estimator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta := testMeta()
			if tt.modify != nil {
				tt.modify(&meta)
			}
			_, err := EncodePNG(tt.m, meta)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("EncodePNG: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// appendTextChunk appends a PNG tEXt chunk, for tests that forge payloads: length,
// type, keyword NUL text, and the CRC-32 of type and data.
func appendTextChunk(b []byte, key, value string) []byte {
	b, start := beginChunk(b, "tEXt")
	b = append(b, key...)
	b = append(b, 0)
	b = append(b, value...)
	return endChunk(b, start)
}

// rewriteText returns a payload whose text chunks are replaced by the given ones.
func rewriteText(t *testing.T, data []byte, texts [][2]string) []byte {
	t.Helper()
	out := append([]byte(nil), data[:33]...)
	for _, kv := range texts {
		out = appendTextChunk(out, kv[0], kv[1])
	}
	rest := data[33:]
	for len(rest) > 0 {
		n := binary.BigEndian.Uint32(rest)
		if string(rest[4:8]) != "tEXt" {
			out = append(out, rest[:12+n]...)
		}
		rest = rest[12+n:]
	}
	return out
}

func encodeOther(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecodePNGErrors(t *testing.T) {
	good, err := EncodePNG(randomMap(16, 8, 4), testMeta())
	if err != nil {
		t.Fatal(err)
	}
	badCRC := append([]byte(nil), good...)
	badCRC[40] ^= 1 // inside the first text chunk
	unit := [2]string{"edgedepth:unit", "mm"}
	gray8 := encodeOther(t, image.NewGray(image.Rect(0, 0, 4, 4)))

	tests := []struct {
		name    string
		data    []byte
		want    string
		notOurs bool
	}{
		{"nil", nil, "no PNG signature", true},
		{"JPEG", []byte("\xff\xd8\xff\xe0"), "no PNG signature", true},
		{"truncated", good[:len(good)-20], "truncated", true},
		{"bad CRC", badCRC, "bad CRC", true},
		{"no metadata", rewriteText(t, good, nil), "no edgedepth:unit", true},
		{"8-bit grey", rewriteText(t, gray8, [][2]string{unit}), "want 16-bit greyscale", true},
		{"metres", rewriteText(t, good, [][2]string{{"edgedepth:unit", "m"}}), `edgedepth:unit is "m"`, false},
		{"scale", rewriteText(t, good, [][2]string{unit, {"edgedepth:scale", "0.01"}}), "edgedepth:scale", false},
		{"schema", rewriteText(t, good, [][2]string{unit, {"edgedepth:schema", "2"}}), "unsupported edgedepth:schema", false},
		{"seq", rewriteText(t, good, [][2]string{unit, {"edgedepth:seq", "-1"}}), "edgedepth:seq", false},
		{"stamp", rewriteText(t, good, [][2]string{unit, {"edgedepth:stamp", "yesterday"}}), "edgedepth:stamp", false},
		{"stamp year -1 in UTC", rewriteText(t, good, [][2]string{unit, {"edgedepth:stamp", "0000-01-01T00:00:00+01:00"}}), "outside years", false},
		{"fx", rewriteText(t, good, [][2]string{unit, {"edgedepth:fx", "NaN"}}), "edgedepth:fx", false},
		{"duplicate", rewriteText(t, good, [][2]string{unit, unit}), "twice", false},
		{"binary text", rewriteText(t, good, [][2]string{unit, {"edgedepth:frame_id", "\x01"}}), "printable", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodePNG(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodePNG: %v, want an error mentioning %q", err, tt.want)
			}
			if errors.Is(err, ErrNotDepthPayload) != tt.notOurs {
				t.Fatalf("DecodePNG: %v: errors.Is(ErrNotDepthPayload) = %v", err, !tt.notOurs)
			}
		})
	}
}

func TestDecodePNGForeignChunksIgnored(t *testing.T) {
	good, err := EncodePNG(randomMap(4, 4, 5), testMeta())
	if err != nil {
		t.Fatal(err)
	}
	// Other tools' text chunks and future edgedepth keys do not disturb decoding.
	data := rewriteText(t, good, [][2]string{
		{"edgedepth:unit", "mm"}, {"Software", "gimp"}, {"edgedepth:future_key", "x"},
	})
	if _, meta, err := DecodePNG(data); err != nil || meta.Estimator != "" {
		t.Fatalf("DecodePNG: %+v, %v", meta, err)
	}
}

func FuzzDecodePNG(f *testing.F) {
	for i, m := range []Map{randomMap(8, 4, 6), randomMap(1, 1, 7), NewMap(3, 2)} {
		meta := testMeta()
		meta.Seq = uint64(i)
		data, err := EncodePNG(m, meta)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add(encodeOther(f, image.NewGray16(image.Rect(0, 0, 2, 2))))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(checkDecodeRoundTrip)
}

// FuzzDecodePNGText fuzzes the metadata behind valid chunk framing: random mutation of
// whole files rarely gets past the CRCs, so the text parser gets its own target.
func FuzzDecodePNGText(f *testing.F) {
	good, err := EncodePNG(randomMap(4, 3, 10), testMeta())
	if err != nil {
		f.Fatal(err)
	}
	meta := testMeta()
	for _, mt := range metaText {
		v := string(mt.value(nil, meta))
		f.Add(mt.key, v, mt.key, v)
	}
	f.Add("edgedepth:seq", "18446744073709551616", "edgedepth:fx", "1e309")
	f.Add("edgedepth:stamp", "2026-11-03T14:05:06.1+02:00", "edgedepth:fy", "-0")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		texts := [][2]string{{"edgedepth:unit", "mm"}, {k1, v1}, {k2, v2}}
		for _, kv := range texts[1:] {
			// Keywords are 1..79 bytes without NUL; keep the framing valid.
			if len(kv[0]) == 0 || len(kv[0]) > 79 || strings.ContainsRune(kv[0], 0) {
				return
			}
		}
		checkDecodeRoundTrip(t, rewriteText(t, good, texts))
	})
}

// checkDecodeRoundTrip decodes data and, when that succeeds, checks the result is
// consistent and survives re-encoding unchanged.
func checkDecodeRoundTrip(t *testing.T, data []byte) {
	m, meta, err := DecodePNG(data)
	if err != nil {
		return
	}
	if len(m.M) != m.Width*m.Height || m.Width != meta.Intrinsics.Width || m.Height != meta.Intrinsics.Height {
		t.Fatalf("inconsistent result: %dx%d map with %d values, meta %dx%d",
			m.Width, m.Height, len(m.M), meta.Intrinsics.Width, meta.Intrinsics.Height)
	}
	again, err := EncodePNG(m, meta)
	if err != nil {
		t.Fatalf("re-encoding a decoded payload: %v", err)
	}
	m2, meta2, err := DecodePNG(again)
	if err != nil {
		t.Fatalf("decoding a re-encoded payload: %v", err)
	}
	for i := range m.M {
		if m.M[i] != m2.M[i] {
			t.Fatalf("pixel %d: %g then %g", i, m.M[i], m2.M[i])
		}
	}
	if !meta.Stamp.Equal(meta2.Stamp) {
		t.Fatalf("stamp %v then %v", meta.Stamp, meta2.Stamp)
	}
	meta2.Stamp = meta.Stamp
	if meta != meta2 {
		t.Fatalf("meta %+v then %+v", meta, meta2)
	}
}

// BenchmarkEncodePNG640x480 reports the time, allocations and payload size (bytes/frame)
// of encoding one frame of realistic depth; MB/s counts the 16-bit image encoded.
func BenchmarkEncodePNG640x480(b *testing.B) {
	m := smoothMap(640, 480)
	meta := testMeta()
	b.SetBytes(int64(2 * len(m.M)))
	b.ReportAllocs()
	var n int
	for b.Loop() {
		data, err := EncodePNG(m, meta)
		if err != nil {
			b.Fatal(err)
		}
		n = len(data)
	}
	b.ReportMetric(float64(n), "bytes/frame")
}

// smoothMap is depth shaped like a real scene (a floor and a wall with some noise and
// invalid patches), so compression benchmarks see realistic entropy.
func smoothMap(w, h int) Map {
	rng := rand.New(rand.NewPCG(8, 9))
	m := NewMap(w, h)
	for y := range h {
		for x := range w {
			z := float32(6)
			if y > h/2 { // floor: depth falls towards the bottom of the image
				z = min(z, 1.2*float32(h/2)/float32(y-h/2+1)*4)
			}
			z += 0.01 * float32(rng.NormFloat64())
			if (x/40+y/40)%7 == 0 {
				z = 0
			}
			m.M[y*w+x] = z
		}
	}
	return m
}
