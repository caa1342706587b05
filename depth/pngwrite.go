package depth

import (
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"sync"
)

// This file is the PNG writer behind EncodePNG. image/png is general (it boxes every
// pixel of a Gray16 through the image.Image interface and tries all five row filters on
// every row); the depth payload needs one layout only, written here directly:
//
//	signature
//	IHDR   width, height, bit depth 16, colour type 0 (grey), deflate, filter method 0,
//	       no interlace
//	tEXt   the metadata, one chunk per key, in metaText order
//	IDAT   zlib stream of the scanlines, each one filter-type byte then 2*width bytes
//	       of big-endian samples; split into chunks of at most maxIDATLen bytes
//	IEND
//
// Every chunk carries the CRC-32 (IEEE) of its type and data (PNG spec, section 5.3).

// PNG row filter types (PNG spec, section 9.2). Average (3) is not implemented.
const (
	pngFilterNone  = 0
	pngFilterSub   = 1
	pngFilterUp    = 2
	pngFilterPaeth = 4
)

// The payload's row filter and zlib level, chosen by measurement at 640x480 on the
// shared 2-core dev box: the simulator's street and room scenes (frames 0, 40, 80, 120)
// as SGBM estimates them, which is what the pipeline publishes, and as ground truth, and
// smoothMap of BenchmarkEncodePNG640x480. Mean bytes of image data per frame:
//
//	                    SGBM    truth  smoothMap
//	image/png before   82389    64519     272997  (adaptive filters, BestSpeed)
//	BestSpeed  None    98307   154233     272115
//	BestSpeed  Sub     94878    82267     277885
//	BestSpeed  Up      91602    78027     282452
//	BestSpeed  Paeth   84776    64921     278355  <- payload
//	Default    None    65855   122082     247877
//	Default    Paeth   71231    43476     258365
//
// Level: DefaultCompression takes about three times as long as BestSpeed (23 to 28 ms
// per frame on smoothMap against 8 to 10, as long as image/png took before) for 11 to
// 33 % fewer bytes, so BestSpeed, whose time also depends less on the content.
//
// Filter: one fixed filter for every row (no per-row heuristic, which would cost a pass
// per candidate). Paeth gives the smallest BestSpeed payload on estimated and true
// depth: 7 % below Up and 11 % below Sub on SGBM output, 17 % below Up on ground truth,
// within 3 % of image/png's per-row choice; Up and Sub lose because estimated depth has
// steps both along and across rows (disparity quantisation, object edges, holes), which
// Paeth follows by predicting from whichever neighbour continues the surface. On the
// sensor-noise-dominated smoothMap all filters are within 4 %. Paeth costs about 1 ms
// per frame more than Up (the predictor runs for every byte; BenchmarkPNGFilters/Store
// isolates it), which the 10 ms budget allows; Up is the fallback should it not.
const (
	payloadFilter = pngFilterPaeth
	payloadLevel  = zlib.BestSpeed
)

// maxIDATLen is the largest IDAT chunk data written. PNG allows up to 2^31-1 bytes; 1
// MiB keeps a 640x480 payload in one IDAT chunk while bounding any chunk a streaming
// reader has to buffer before it can check the CRC.
const maxIDATLen = 1 << 20

// pngWriter holds what encoding one image needs besides its input; EncodePNG pools it
// so that a stream of frames of one size allocates little more than the result.
type pngWriter struct {
	out []byte // the PNG so far

	idat    int // offset in out of the open IDAT chunk's length field, -1 when none
	maxIDAT int // largest IDAT data length; tests lower it

	zw      *zlib.Writer // writes into the pngWriter itself (Write), reused via Reset
	zlevel  int          // zw's level
	zinited bool

	cur, prev []byte // the current and previous scanline, unfiltered, 2*width bytes
	line      []byte // the filtered scanline handed to zlib: filter byte + 2*width
}

var pngWriters = sync.Pool{New: func() any { return &pngWriter{maxIDAT: maxIDATLen} }}

// encode writes m as a 16-bit greyscale PNG into w.out (replacing what was there), in
// millimetres as toMillimetres rounds them, with meta's text chunks when meta is not
// nil (it must have passed meta.check), every row filtered with filter, and the image
// data compressed at the given zlib level.
func (w *pngWriter) encode(m Map, meta *Meta, filter byte, level int) error {
	if m.Width <= 0 || m.Height <= 0 || m.Width > math.MaxInt32 || m.Height > math.MaxInt32 ||
		len(m.M) != m.Width*m.Height {
		return fmt.Errorf("depth: payload: cannot write a %dx%d PNG from %d values", m.Width, m.Height, len(m.M))
	}
	if m.Width > (math.MaxInt32-1)/2 {
		return fmt.Errorf("depth: payload: %d pixels is too wide for a PNG row", m.Width)
	}
	switch filter {
	case pngFilterNone, pngFilterSub, pngFilterUp, pngFilterPaeth:
	default:
		return fmt.Errorf("depth: payload: PNG filter type %d not supported", filter)
	}
	if !w.zinited || w.zlevel != level {
		zw, err := zlib.NewWriterLevel(w, level)
		if err != nil {
			return fmt.Errorf("depth: payload: %w", err)
		}
		w.zw, w.zlevel, w.zinited = zw, level, true
	} else {
		w.zw.Reset(w)
	}

	w.out = append(w.out[:0], pngSignature...)
	var start int
	w.out, start = beginChunk(w.out, "IHDR")
	w.out = binary.BigEndian.AppendUint32(w.out, uint32(m.Width))
	w.out = binary.BigEndian.AppendUint32(w.out, uint32(m.Height))
	// bit depth 16, colour type 0 (greyscale), compression 0 (deflate), filter method
	// 0 (adaptive, five types), interlace 0 (none)
	w.out = append(w.out, 16, 0, 0, 0, 0)
	w.out = endChunk(w.out, start)
	if meta != nil {
		for _, t := range metaText {
			w.out, start = beginChunk(w.out, "tEXt")
			w.out = append(w.out, t.key...)
			w.out = append(w.out, 0)
			w.out = t.value(w.out, *meta)
			w.out = endChunk(w.out, start)
		}
	}

	n := 2 * m.Width
	w.cur = resize(w.cur, n)
	w.prev = resize(w.prev, n)
	w.line = resize(w.line, 1+n)
	clear(w.prev) // the row above the first is all zeros (PNG spec, section 9.2)
	w.idat = -1
	for y := 0; y < m.Height; y++ {
		cur, prev, line := w.cur, w.prev, w.line[1:]
		line = line[:len(cur)]
		prev = prev[:len(cur)]
		row := m.M[y*m.Width : (y+1)*m.Width]
		for x, z := range row {
			binary.BigEndian.PutUint16(cur[2*x:], toMillimetres(z))
		}
		w.line[0] = filter
		switch filter {
		case pngFilterNone:
			copy(line, cur)
		case pngFilterSub:
			filterSub(line, cur)
		case pngFilterUp:
			for i := range line {
				line[i] = cur[i] - prev[i]
			}
		case pngFilterPaeth:
			filterPaeth(line, cur, prev)
		}
		if _, err := w.zw.Write(w.line); err != nil {
			return fmt.Errorf("depth: payload: %w", err)
		}
		w.cur, w.prev = w.prev, w.cur
	}
	if err := w.zw.Close(); err != nil {
		return fmt.Errorf("depth: payload: %w", err)
	}
	w.endIDAT()

	w.out, start = beginChunk(w.out, "IEND")
	w.out = endChunk(w.out, start)
	return nil
}

// Write appends zlib output to the image data, in IDAT chunks of at most w.maxIDAT
// bytes. It never fails.
func (w *pngWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if w.idat < 0 {
			w.out, w.idat = beginChunk(w.out, "IDAT")
		}
		room := w.maxIDAT - (len(w.out) - w.idat - 8)
		k := min(room, len(p))
		w.out = append(w.out, p[:k]...)
		p = p[k:]
		if k == room {
			w.endIDAT()
		}
	}
	return n, nil
}

// endIDAT finishes the open IDAT chunk, if any.
func (w *pngWriter) endIDAT() {
	if w.idat >= 0 {
		w.out = endChunk(w.out, w.idat)
		w.idat = -1
	}
}

// filterSub writes the Sub filter of a 2-byte-per-pixel scanline: each byte minus the
// corresponding byte of the pixel to its left (0 for the first pixel).
func filterSub(dst, cur []byte) {
	if len(cur) < 2 {
		return
	}
	dst = dst[:len(cur)]
	dst[0], dst[1] = cur[0], cur[1]
	for i := 2; i < len(cur); i++ {
		dst[i] = cur[i] - cur[i-2]
	}
}

// filterPaeth writes the Paeth filter of a 2-byte-per-pixel scanline: each byte minus
// whichever of left (a), above (b) and upper left (c) is closest to p = a + b - c, ties
// going to a, then b (PNG spec, section 9.4). It is branch-free: on noisy depth a
// branching predictor mispredicts often enough to double its cost. The distances
// |p-a| = |b-c|, |p-b| = |a-c|, |p-c| = |(b-c) + (a-c)| are compared as in the spec:
// b wins only when strictly closer than a, c only when strictly closer than both.
func filterPaeth(dst, cur, prev []byte) {
	n := len(cur)
	if n < 2 {
		return
	}
	dst = dst[:n]
	prev = prev[:n]
	// The first pixel has no left neighbour: a = c = 0, so the predictor is b.
	dst[0], dst[1] = cur[0]-prev[0], cur[1]-prev[1]
	for i := 2; i < n; i++ {
		a, b, c := int32(cur[i-2]), int32(prev[i]), int32(prev[i-2])
		p, q := b-c, a-c
		r := p + q
		pa := (p ^ p>>31) - p>>31 // |p|, branch-free
		pb := (q ^ q>>31) - q>>31
		pc := (r ^ r>>31) - r>>31
		pred := a
		if pb < pa {
			pa, pred = pb, b
		}
		if pc < pa {
			pred = c
		}
		dst[i] = cur[i] - byte(pred)
	}
}

// resize returns b with length n, reallocating only when its capacity is too small.
func resize(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// beginChunk appends a chunk's length (filled in by endChunk) and type, and returns
// the offset of the chunk.
func beginChunk(b []byte, typ string) ([]byte, int) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	return append(b, typ...), start
}

// endChunk completes the chunk begun at offset start, whose data is everything after
// its type: it writes the data length and appends the CRC-32 of type and data.
func endChunk(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-8))
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start+4:]))
}
