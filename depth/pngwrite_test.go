package depth

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"testing"
)

// metresFor is a depth in metres that toMillimetres turns back into exactly mm.
func metresFor(mm uint16) float32 { return float32(float64(mm) / 1000) }

func TestMetresForRoundTrips(t *testing.T) {
	for v := range 1 << 16 {
		if got := toMillimetres(metresFor(uint16(v))); got != uint16(v) {
			t.Fatalf("toMillimetres(metresFor(%d)) = %d", v, got)
		}
	}
}

// mmImage is a test image given in millimetres, and the Map that encodes to it.
type mmImage struct {
	name string
	w, h int
	mm   []uint16
}

func (im mmImage) depthMap() Map {
	m := NewMap(im.w, im.h)
	for i, v := range im.mm {
		m.M[i] = metresFor(v)
	}
	return m
}

// testImages covers the edge sizes (1x1, one row, one column, odd widths, 4096 wide)
// and values (0, 1, 255, 256, 65535 next to each other, so that byte-wise filtering
// wraps and borrows) a PNG writer can get wrong.
func testImages() []mmImage {
	rng := rand.New(rand.NewPCG(11, 12))
	var ims []mmImage
	add := func(name string, w, h int, f func(x, y int) uint16) {
		im := mmImage{name: fmt.Sprintf("%s/%dx%d", name, w, h), w: w, h: h, mm: make([]uint16, w*h)}
		for y := range h {
			for x := range w {
				im.mm[y*w+x] = f(x, y)
			}
		}
		ims = append(ims, im)
	}
	sizes := [][2]int{{1, 1}, {2, 1}, {1, 2}, {3, 3}, {7, 5}, {33, 17}, {1, 300}, {301, 1}, {4096, 3}}
	for _, s := range sizes {
		add("random", s[0], s[1], func(x, y int) uint16 { return uint16(rng.Uint32()) })
		add("extremes", s[0], s[1], func(x, y int) uint16 {
			return []uint16{0, 65535, 1, 255, 256, 65280, 65534}[rng.IntN(7)]
		})
		add("checker", s[0], s[1], func(x, y int) uint16 { return uint16((x+y)%2) * 65535 })
		add("smooth", s[0], s[1], func(x, y int) uint16 {
			if (x/5+y/3)%4 == 0 {
				return 0
			}
			return uint16(1000 + 37*x + 101*y + rng.IntN(3))
		})
	}
	add("zero", 5, 4, func(x, y int) uint16 { return 0 })
	add("max", 5, 4, func(x, y int) uint16 { return 65535 })
	return ims
}

func findImage(t *testing.T, name string) mmImage {
	t.Helper()
	for _, im := range testImages() {
		if im.name == name {
			return im
		}
	}
	t.Fatalf("no test image %s", name)
	return mmImage{}
}

// pngParts is what checkPNGFile found in a PNG.
type pngParts struct {
	types []string // chunk types in order
	ihdr  []byte
	texts [][2]string
	idats []int  // data length of each IDAT chunk
	raw   []byte // the inflated image data: filter byte + samples, per row
}

// checkPNGFile walks a PNG independently of any decoder: signature, chunk framing and
// CRCs, IDAT chunks contiguous, and the image data one zlib stream.
func checkPNGFile(t *testing.T, data []byte) pngParts {
	t.Helper()
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatal("no PNG signature")
	}
	var p pngParts
	var idat []byte
	for rest := data[8:]; len(rest) > 0; {
		if len(rest) < 12 {
			t.Fatalf("%d trailing bytes", len(rest))
		}
		n := int(binary.BigEndian.Uint32(rest))
		if n > len(rest)-12 {
			t.Fatalf("chunk of %d bytes, %d left", n, len(rest)-12)
		}
		typ, body := string(rest[4:8]), rest[8:8+n]
		if crc32.ChecksumIEEE(rest[4:8+n]) != binary.BigEndian.Uint32(rest[8+n:]) {
			t.Fatalf("%s chunk: bad CRC", typ)
		}
		switch typ {
		case "IHDR":
			p.ihdr = body
		case "tEXt":
			k, v, ok := bytes.Cut(body, []byte{0})
			if !ok {
				t.Fatal("tEXt chunk without NUL")
			}
			p.texts = append(p.texts, [2]string{string(k), string(v)})
		case "IDAT":
			if len(p.idats) > 0 && p.types[len(p.types)-1] != "IDAT" {
				t.Fatal("IDAT chunks not consecutive")
			}
			p.idats = append(p.idats, n)
			idat = append(idat, body...)
		}
		p.types = append(p.types, typ)
		rest = rest[12+n:]
	}
	if len(p.types) == 0 || p.types[len(p.types)-1] != "IEND" {
		t.Fatalf("chunks %v do not end with IEND", p.types)
	}
	zr, err := zlib.NewReader(bytes.NewReader(idat))
	if err != nil {
		t.Fatal(err)
	}
	if p.raw, err = io.ReadAll(zr); err != nil {
		t.Fatalf("inflating IDAT: %v", err) // also checks the Adler-32
	}
	return p
}

// checkGray16 checks data is a PNG of im as 16-bit greyscale, with every row filtered
// with filter, and decodes to exactly im's values with image/png.
func checkGray16(t *testing.T, data []byte, im mmImage, filter byte) pngParts {
	t.Helper()
	p := checkPNGFile(t, data)
	if p.types[0] != "IHDR" {
		t.Fatalf("chunks %v: IHDR is not first", p.types)
	}
	wantIHDR := binary.BigEndian.AppendUint32(nil, uint32(im.w))
	wantIHDR = binary.BigEndian.AppendUint32(wantIHDR, uint32(im.h))
	wantIHDR = append(wantIHDR, 16, 0, 0, 0, 0)
	if !bytes.Equal(p.ihdr, wantIHDR) {
		t.Fatalf("IHDR % x, want % x", p.ihdr, wantIHDR)
	}
	stride := 1 + 2*im.w
	if len(p.raw) != im.h*stride {
		t.Fatalf("%d bytes of image data, want %d rows of %d", len(p.raw), im.h, stride)
	}
	for y := range im.h {
		if f := p.raw[y*stride]; f != filter {
			t.Fatalf("row %d has filter type %d, want %d", y, f, filter)
		}
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("png.Decode: %v", err)
	}
	g, ok := img.(*image.Gray16)
	if !ok {
		t.Fatalf("png.Decode gave %T, want *image.Gray16", img)
	}
	if g.Bounds() != image.Rect(0, 0, im.w, im.h) {
		t.Fatalf("bounds %v, want %dx%d", g.Bounds(), im.w, im.h)
	}
	for y := range im.h {
		for x := range im.w {
			if got, want := g.Gray16At(x, y).Y, im.mm[y*im.w+x]; got != want {
				t.Fatalf("(%d,%d) = %d mm, want %d", x, y, got, want)
			}
		}
	}
	return p
}

var testFilters = []struct {
	name string
	f    byte
}{{"none", pngFilterNone}, {"sub", pngFilterSub}, {"up", pngFilterUp}, {"paeth", pngFilterPaeth}}

// TestPNGWriterFilters checks every filter the writer implements, not just the one
// EncodePNG uses, so that the choice can be changed safely.
func TestPNGWriterFilters(t *testing.T) {
	w := &pngWriter{maxIDAT: maxIDATLen}
	for _, f := range testFilters {
		for _, im := range testImages() {
			t.Run(f.name+"/"+im.name, func(t *testing.T) {
				if err := w.encode(im.depthMap(), nil, f.f, zlib.BestSpeed); err != nil {
					t.Fatal(err)
				}
				p := checkGray16(t, w.out, im, f.f)
				if len(p.texts) != 0 {
					t.Errorf("text chunks without metadata: %v", p.texts)
				}
			})
		}
	}
	// Other levels use another compressor; the writer is reused across them.
	for _, level := range []int{zlib.DefaultCompression, zlib.NoCompression, zlib.HuffmanOnly, zlib.BestCompression} {
		im := findImage(t, "smooth/4096x3")
		if err := w.encode(im.depthMap(), nil, payloadFilter, level); err != nil {
			t.Fatal(err)
		}
		checkGray16(t, w.out, im, payloadFilter)
	}
}

// TestEncodePNGConformance checks what EncodePNG publishes: a PNG any reader decodes to
// the millimetres we wrote, every row filtered with payloadFilter (a wrong filter byte
// would fail here even where it happens to decode), metadata right after IHDR in schema
// order, and the same through DecodePNG.
func TestEncodePNGConformance(t *testing.T) {
	meta := testMeta()
	for _, im := range testImages() {
		t.Run(im.name, func(t *testing.T) {
			data, err := EncodePNG(im.depthMap(), meta)
			if err != nil {
				t.Fatal(err)
			}
			p := checkGray16(t, data, im, payloadFilter)
			wantTypes := []string{"IHDR"}
			for range metaText {
				wantTypes = append(wantTypes, "tEXt")
			}
			for range p.idats {
				wantTypes = append(wantTypes, "IDAT")
			}
			wantTypes = append(wantTypes, "IEND")
			if fmt.Sprint(p.types) != fmt.Sprint(wantTypes) {
				t.Fatalf("chunks %v, want %v", p.types, wantTypes)
			}
			for i, mt := range metaText {
				if want := [2]string{mt.key, string(mt.value(nil, meta))}; p.texts[i] != want {
					t.Errorf("text chunk %d is %q, want %q", i, p.texts[i], want)
				}
			}

			got, gotMeta, err := DecodePNG(data)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range im.mm {
				if got.M[i] != float32(float64(v)/1000) {
					t.Fatalf("pixel %d: DecodePNG gave %g m, want %d mm", i, got.M[i], v)
				}
			}
			want := meta
			want.Intrinsics.Width, want.Intrinsics.Height = im.w, im.h
			if !gotMeta.Stamp.Equal(want.Stamp) {
				t.Fatalf("stamp %v, want %v", gotMeta.Stamp, want.Stamp)
			}
			gotMeta.Stamp = want.Stamp
			if gotMeta != want {
				t.Fatalf("meta %+v, want %+v", gotMeta, want)
			}
		})
	}
}

// TestEncodePNGRandomMaps checks random metric maps (beyond the 16-bit range, with
// invalid pixels) decode with image/png to toMillimetres of every pixel.
func TestEncodePNGRandomMaps(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 99))
		m := randomMap(1+rng.IntN(200), 1+rng.IntN(50), seed)
		im := mmImage{name: "random", w: m.Width, h: m.Height, mm: make([]uint16, len(m.M))}
		for i, z := range m.M {
			im.mm[i] = toMillimetres(z)
		}
		data, err := EncodePNG(m, testMeta())
		if err != nil {
			t.Fatal(err)
		}
		checkGray16(t, data, im, payloadFilter)
	}
}

// TestPNGWriterSplitsIDAT checks image data over maxIDAT bytes is split into
// consecutive IDAT chunks that readers join back together.
func TestPNGWriterSplitsIDAT(t *testing.T) {
	im := findImage(t, "random/4096x3") // about 24 KB compressed
	meta := testMeta()
	for _, max := range []int{1, 7, 1000, 24578, maxIDATLen} {
		w := &pngWriter{maxIDAT: max}
		if err := w.encode(im.depthMap(), &meta, payloadFilter, payloadLevel); err != nil {
			t.Fatal(err)
		}
		p := checkGray16(t, w.out, im, payloadFilter)
		total := 0
		for i, n := range p.idats {
			total += n
			if n > max || n == 0 || (n < max && i < len(p.idats)-1) {
				t.Fatalf("max %d: IDAT chunk %d of %d has %d bytes", max, i, len(p.idats), n)
			}
		}
		if want := (total + max - 1) / max; len(p.idats) != want {
			t.Errorf("max %d: %d bytes in %d IDAT chunks, want %d", max, total, len(p.idats), want)
		}
	}
}

// paethSpec is the Paeth predictor as the PNG specification (section 9.4) writes it.
func paethSpec(a, b, c byte) byte {
	p := int(a) + int(b) - int(c)
	pa, pb, pc := abs(p-int(a)), abs(p-int(b)), abs(p-int(c))
	if pa <= pb && pa <= pc {
		return a
	} else if pb <= pc {
		return b
	}
	return c
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// TestFilterPaethExhaustive checks the branch-free filter against the specification
// for every left, above and upper-left byte.
func TestFilterPaethExhaustive(t *testing.T) {
	if testing.Short() {
		t.Skip("16M cases")
	}
	cur, prev, dst := make([]byte, 4), make([]byte, 4), make([]byte, 4)
	for a := range 256 {
		for b := range 256 {
			for c := range 256 {
				x := byte(a*7 + b*3 + c) // a byte to filter, varied
				cur[0], cur[1], cur[2], cur[3] = byte(a), byte(c), x, ^x
				prev[0], prev[1], prev[2], prev[3] = byte(c), byte(a), byte(b), byte(c)
				filterPaeth(dst, cur, prev)
				// Byte 2: left a, above b, upper left c. Byte 3: left c, above c, upper left a.
				if want := x - paethSpec(byte(a), byte(b), byte(c)); dst[2] != want {
					t.Fatalf("a=%d b=%d c=%d: filtered %d, want %d", a, b, c, dst[2], want)
				}
				if want := ^x - paethSpec(byte(c), byte(c), byte(a)); dst[3] != want {
					t.Fatalf("a=%d b=%d c=%d: filtered %d, want %d", c, c, a, dst[3], want)
				}
				if dst[0] != byte(a)-byte(c) || dst[1] != byte(c)-byte(a) {
					t.Fatal("first pixel is not predicted from above")
				}
			}
		}
	}
}

// TestPNGWriterAllocs checks a reused writer encodes without allocating (EncodePNG adds
// only its result), with metadata.
func TestPNGWriterAllocs(t *testing.T) {
	m := smoothMap(64, 48)
	meta := testMeta()
	w := &pngWriter{maxIDAT: maxIDATLen}
	if err := w.encode(m, &meta, payloadFilter, payloadLevel); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := w.encode(m, &meta, payloadFilter, payloadLevel); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per encode, want 0", allocs)
	}
}

func TestPNGWriterErrors(t *testing.T) {
	w := &pngWriter{maxIDAT: maxIDATLen}
	for _, tt := range []struct {
		m      Map
		filter byte
		level  int
	}{
		{NewMap(0, 3), payloadFilter, payloadLevel},
		{Map{Width: 2, Height: 2, M: make([]float32, 3)}, payloadFilter, payloadLevel},
		{NewMap(2, 2), 3, payloadLevel}, // Average: not implemented
		{NewMap(2, 2), 5, payloadLevel},
		{NewMap(2, 2), payloadFilter, 10},
	} {
		if err := w.encode(tt.m, nil, tt.filter, tt.level); err == nil {
			t.Errorf("encode(%dx%d, filter %d, level %d) succeeded", tt.m.Width, tt.m.Height, tt.filter, tt.level)
		}
	}
	// A failed call leaves the writer usable.
	im := testImages()[0]
	if err := w.encode(im.depthMap(), nil, payloadFilter, payloadLevel); err != nil {
		t.Fatal(err)
	}
	checkGray16(t, w.out, im, payloadFilter)
}

// BenchmarkPNGFilters measures each row filter at BestSpeed and DefaultCompression on
// smoothMap, time and bytes/frame, for revisiting payloadFilter and payloadLevel. Store
// (zlib.NoCompression) leaves out deflate: what remains is our conversion and filter.
func BenchmarkPNGFilters(b *testing.B) {
	m := smoothMap(640, 480)
	for _, level := range []struct {
		name string
		l    int
	}{{"BestSpeed", zlib.BestSpeed}, {"Default", zlib.DefaultCompression}, {"Store", zlib.NoCompression}} {
		for _, f := range testFilters {
			b.Run(level.name+"/"+f.name, func(b *testing.B) {
				w := &pngWriter{maxIDAT: maxIDATLen}
				b.SetBytes(int64(2 * len(m.M)))
				b.ReportAllocs()
				for b.Loop() {
					if err := w.encode(m, nil, f.f, level.l); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(w.out)), "bytes/frame")
			})
		}
	}
}
