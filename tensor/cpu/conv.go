package cpu

import (
	"sync"
	"sync/atomic"

	"github.com/edgedepth/edgedepth/tensor"
)

// Convolutions are matrix products. For image n and group g, the column matrix
// col (K × P) holds in row (c, i, j) and column (r, q) the input pixel
// x[n, g·Cg+c, r·sh−ph+i, q·sw−pw+j] (zero outside the image), where K = Cg·KH·KW and
// P = OH·OW. Then
//
//	y[n, g]  = W_g · col             (Og × K)·(K × P), written straight into NCHW y
//	dW_g    += dy[n, g] · colᵀ       (convGradW)
//	dcol     = W_gᵀ · dy[n, g]       scattered back onto dx by col2im, or, with
//	                                 stride 1, dx as a convolution of dy (convGradX)
//
// A 1×1 convolution with stride 1 and no padding needs no column matrix: the input
// plane itself is col. Otherwise col is built for a tile of output rows at a time, so
// that it stays in the L2 cache for the sgemm that reads it (and the full-resolution
// decoder layers do not need hundreds of megabytes of scratch); the (image, group,
// tile) triples are also the units of parallel work.

// Tile sizing: a column tile holds about colTileElems elements but at least minTileCols
// columns (an sgemm repacks W for every call, so very narrow tiles waste that).
const (
	colTileElems = 1 << 18 // 1 MiB of float32
	minTileCols  = 512
)

// convGeom is the geometry of one convolution.
type convGeom struct {
	n, c, h, w      int // input
	o, groups       int
	cg, og          int // input and output channels per group
	kh, kw, kk      int // kernel; kk = kh·kw
	sh, sw, ph, pw  int
	oh, ow          int
	k, p            int // rows (Cg·KH·KW) and columns (OH·OW) of a group's column matrix
	direct          bool
	tileRows, tiles int // output rows per column tile; tiles per image
	// qlo[j], qhi[j]: the output columns q whose input column q·sw−pw+j lies in the
	// image are [qlo[j], qhi[j]).
	qlo, qhi []int
}

func newConvGeom(x, w *tensor.Tensor, out tensor.Shape, p tensor.Conv2DParams, threads int) *convGeom {
	return makeConvGeom(x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], w.Shape[0], w.Shape[2], w.Shape[3],
		p.Groups, p.Stride, p.Padding, out[2], out[3], threads)
}

// makeConvGeom builds the geometry of a convolution of an n×c×h×w input with o
// kernels of kh×kw, giving an oh×ow output.
func makeConvGeom(n, c, h, w, o, kh, kw, groups int, stride, pad [2]int, oh, ow, threads int) *convGeom {
	g := &convGeom{
		n: n, c: c, h: h, w: w, o: o, groups: groups, kh: kh, kw: kw,
		sh: stride[0], sw: stride[1], ph: pad[0], pw: pad[1], oh: oh, ow: ow,
	}
	g.cg, g.og, g.kk = g.c/g.groups, g.o/g.groups, g.kh*g.kw
	g.k, g.p = g.cg*g.kk, g.oh*g.ow
	g.direct = g.kk == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0
	cols := max(minTileCols, colTileElems/max(g.k, 1))
	g.tileRows = min(g.oh, max(1, cols/g.ow))
	if items := g.n * g.groups; items < threads {
		// Too few images to keep every thread busy: cut each into more tiles.
		per := (threads + items - 1) / items
		g.tileRows = min(g.tileRows, max(1, (g.oh+per-1)/per))
	}
	g.tiles = (g.oh + g.tileRows - 1) / g.tileRows
	g.qlo, g.qhi = make([]int, g.kw), make([]int, g.kw)
	for j := 0; j < g.kw; j++ {
		off := j - g.pw // input column of output column q is q·sw + off
		lo := 0
		if off < 0 {
			lo = (-off + g.sw - 1) / g.sw
		}
		hi := 0
		if g.w-1-off >= 0 {
			hi = (g.w-1-off)/g.sw + 1
		}
		lo, hi = min(lo, g.ow), min(hi, g.ow)
		g.qlo[j], g.qhi[j] = lo, max(lo, hi)
	}
	return g
}

// macs is the number of multiply-adds of the convolution (and of each of its two
// gradients).
func (g *convGeom) macs() int { return g.n * g.o * g.p * g.k }

// tile returns the output rows [r0, r1) of tile t.
func (g *convGeom) tile(t int) (r0, r1 int) {
	r0 = t * g.tileRows
	return r0, min(g.oh, r0+g.tileRows)
}

// im2col fills the rows for channels [c0, c1) of the column matrix, columns of output
// rows [r0, r1), into col, whose rows are ld elements apart. xg is the input from the
// group's first channel on.
func (g *convGeom) im2col(col []float32, ld int, xg []float32, c0, c1, r0, r1 int) {
	cols := (r1 - r0) * g.ow
	hw := g.h * g.w
	for c := c0; c < c1; c++ {
		plane := xg[c*hw : (c+1)*hw]
		for i := 0; i < g.kh; i++ {
			for j := 0; j < g.kw; j++ {
				row := col[(((c-c0)*g.kh+i)*g.kw+j)*ld:][:cols]
				lo, hi, off := g.qlo[j], g.qhi[j], j-g.pw
				for r := r0; r < r1; r++ {
					dst := row[(r-r0)*g.ow : (r-r0+1)*g.ow]
					y := r*g.sh - g.ph + i
					if y < 0 || y >= g.h {
						clear(dst)
						continue
					}
					src := plane[y*g.w : (y+1)*g.w]
					clear(dst[:lo])
					clear(dst[hi:])
					if g.sw == 1 {
						copy(dst[lo:hi], src[lo+off:hi+off])
						continue
					}
					d := dst[lo:hi]
					for q, xi := 0, lo*g.sw+off; q < len(d); q, xi = q+1, xi+g.sw {
						d[q] = src[xi]
					}
				}
			}
		}
	}
}

// col2im adds the rows for channels [c0, c1) of a column matrix (columns of output rows
// [r0, r1)) onto the input gradient dxg, which starts at the group's first channel.
// Different channels touch different planes, so callers may split by channel.
func (g *convGeom) col2im(dxg, col []float32, c0, c1, r0, r1 int) {
	cols := (r1 - r0) * g.ow
	hw := g.h * g.w
	for c := c0; c < c1; c++ {
		plane := dxg[c*hw : (c+1)*hw]
		for i := 0; i < g.kh; i++ {
			for j := 0; j < g.kw; j++ {
				row := col[(((c-c0)*g.kh+i)*g.kw+j)*cols:][:cols]
				lo, hi, off := g.qlo[j], g.qhi[j], j-g.pw
				if lo >= hi {
					continue
				}
				for r := r0; r < r1; r++ {
					y := r*g.sh - g.ph + i
					if y < 0 || y >= g.h {
						continue
					}
					src := row[(r-r0)*g.ow+lo : (r-r0)*g.ow+hi]
					dst := plane[y*g.w : (y+1)*g.w]
					if g.sw == 1 {
						d := dst[lo+off : hi+off]
						for q, v := range src {
							d[q] += v
						}
						continue
					}
					for q, xi := 0, lo*g.sw+off; q < len(src); q, xi = q+1, xi+g.sw {
						dst[xi] += src[q]
					}
				}
			}
		}
	}
}

// scratch keeps column matrices, turned kernels and partial sums between calls.
// Unlike a sync.Pool it survives garbage collections: a training step collects often,
// and memory fresh from the OS costs a page fault per 4 KiB on first touch, which on
// the development VMs measured as much as the im2col that fills it. It holds at most
// maxScratch buffers, dropping the smallest; the largest are a few MiB (column tiles,
// and the partial weight gradients of layers below bigWeightGrad).
var scratch struct {
	mu   sync.Mutex
	free []*[]float32
}

const maxScratch = 16

// getScratch returns a buffer of n elements (contents undefined); putScratch recycles it.
func getScratch(n int) *[]float32 {
	scratch.mu.Lock()
	best := -1
	for i, s := range scratch.free { // the smallest that fits
		if cap(*s) >= n && (best < 0 || cap(*s) < cap(*scratch.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		s := scratch.free[best]
		last := len(scratch.free) - 1
		scratch.free[best], scratch.free[last] = scratch.free[last], nil
		scratch.free = scratch.free[:last]
		scratch.mu.Unlock()
		*s = (*s)[:n]
		return s
	}
	scratch.mu.Unlock()
	s := make([]float32, n)
	return &s
}

func putScratch(s *[]float32) {
	scratch.mu.Lock()
	defer scratch.mu.Unlock()
	scratch.free = append(scratch.free, s)
	if len(scratch.free) > maxScratch { // drop the smallest
		small := 0
		for i, f := range scratch.free {
			if cap(*f) < cap(*scratch.free[small]) {
				small = i
			}
		}
		last := len(scratch.free) - 1
		scratch.free[small], scratch.free[last] = scratch.free[last], nil
		scratch.free = scratch.free[:last]
	}
}

// dynamic calls fn(i) for every i in [0, n) on up to b.threads goroutines that take the
// indices in turn; with less than minParallelMACs of work (multiply-adds in all) it
// runs them on the caller. Each goroutine has its own scratch buffer of scratchLen
// elements (none if 0). The units must write disjoint memory.
func (b *Backend) dynamic(n, macs, scratchLen int, fn func(i int, scratch []float32)) {
	work := func(next *atomic.Int64) {
		var s *[]float32
		var buf []float32
		if scratchLen > 0 {
			s = getScratch(scratchLen)
			buf = *s
			defer putScratch(s)
		}
		for {
			i := int(next.Add(1)) - 1
			if i >= n {
				return
			}
			fn(i, buf)
		}
	}
	var next atomic.Int64
	workers := min(b.threads, n)
	if workers <= 1 || macs < minParallelMACs {
		work(&next)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(&next)
		}()
	}
	wg.Wait()
}

// Conv2D implements tensor.Backend.
func (b *Backend) Conv2D(x, w, bias *tensor.Tensor, p tensor.Conv2DParams) (*tensor.Tensor, error) {
	shape, err := tensor.Conv2DCheck(x, w, bias, p)
	if err != nil {
		return nil, err
	}
	p = p.Norm()
	y := newF(shape)
	if shape.Len() == 0 {
		return y, nil
	}
	var bv []float32
	if bias != nil {
		bv = f32(bias)
	}
	b.convForward(newConvGeom(x, w, shape, p, b.threads), f32(y), f32(x), f32(w), bv)
	return y, nil
}

// convForward computes y = conv(x, w) + bias (bv nil for none) into y, which holds
// zeros on entry.
func (b *Backend) convForward(g *convGeom, yv, xv, wv, bv []float32) {
	colLen := 0
	if !g.direct {
		colLen = g.k * g.tileRows * g.ow
	}
	b.dynamic(g.n*g.groups*g.tiles, g.macs(), colLen, func(item int, col []float32) {
		t, ng := item%g.tiles, item/g.tiles
		ni, gi := ng/g.groups, ng%g.groups
		r0, r1 := g.tile(t)
		cols := (r1 - r0) * g.ow
		xg := xv[(ni*g.c+gi*g.cg)*g.h*g.w:]
		yt := yv[(ni*g.o+gi*g.og)*g.p+r0*g.ow:]
		if bv != nil {
			for oc := 0; oc < g.og; oc++ {
				v := bv[gi*g.og+oc]
				row := yt[oc*g.p : oc*g.p+cols]
				for q := range row {
					row[q] = v
				}
			}
		}
		var src []float32
		ldb := cols
		if g.direct {
			src, ldb = xg[r0*g.ow:], g.p
		} else {
			src = col[:g.k*cols]
			g.im2col(src, cols, xg, 0, g.cg, r0, r1)
		}
		// beta 1: y is either the bias or zeros, and OpenBLAS skips its pass that
		// scales C when beta is 1.
		sgemm(false, false, g.og, cols, g.k, 1, wv[gi*g.og*g.k:], g.k, src, ldb, 1, yt, g.p)
	})
}

// Conv2DBackward implements tensor.Backend.
func (b *Backend) Conv2DBackward(x, w, dy *tensor.Tensor, p tensor.Conv2DParams, needX, needBias bool) (dx, dw, dbias *tensor.Tensor, err error) {
	shape, err := tensor.Conv2DBackwardShape(x, w, dy, p)
	if err != nil {
		return nil, nil, nil, err
	}
	p = p.Norm()
	g := newConvGeom(x, w, shape, p, b.threads)
	xv, wv, dyv := f32(x), f32(w), f32(dy)
	if needX {
		dx = newF(x.Shape)
		if shape.Len() > 0 && w.Len() > 0 {
			b.convGradX(g, f32(dx), wv, dyv)
		}
	}
	dw = newF(w.Shape)
	if shape.Len() > 0 && w.Len() > 0 {
		b.convGradW(g, f32(dw), xv, dyv)
	}
	if needBias {
		dbias = newF(tensor.Shape{g.o})
		b.convGradBias(g, f32(dbias), dyv)
	}
	return dx, dw, dbias, nil
}

// convGradX computes dx (zeroed on entry), in one of two ways.
//
// The general one: dcol = W_gᵀ·dy tile by tile, scattered onto dx by col2im.
//
// With stride 1, dx is itself a convolution, of dy padded by (k−1−pad) with the
// kernels turned 180° and their input and output channels swapped, and can go through
// convForward: its sgemm has an inner dimension of Og·KH·KW instead of Og, and it
// writes dx directly, with no col2im scatter. That is 1.5 to 10 times faster for
// layers with few output channels (the decoder's 16- to 64-channel layers, where
// W_gᵀ·dy is a poor sgemm) and on large images. With 128 and more output channels on
// small images the general way wins (by up to 40% on ResNet's 512-channel layer):
// turning the kernels costs a pass over all weights, which there outnumber the
// pixels.
func (b *Backend) convGradX(g *convGeom, dxv, wv, dyv []float32) {
	stride1 := g.sh == 1 && g.sw == 1 && g.ph < g.kh && g.pw < g.kw && !g.direct
	if stride1 && (g.og <= 64 || g.n*g.p >= 16*g.o) {
		b.convGradXTransposed(g, dxv, wv, dyv)
		return
	}
	b.convGradXCol2im(g, dxv, wv, dyv)
}

// convGradXTransposed is convGradX for stride 1, as a forward convolution.
func (b *Backend) convGradXTransposed(g *convGeom, dxv, wv, dyv []float32) {
	// wt[g·Cg+c, o, KH−1−i, KW−1−j] = w[g·Og+o, c, i, j]
	ws := getScratch(len(wv))
	defer putScratch(ws)
	wt := *ws
	for gi := 0; gi < g.groups; gi++ {
		for c := 0; c < g.cg; c++ { // in wt's order: scattered reads cost less than writes
			for o := 0; o < g.og; o++ {
				src := wv[((gi*g.og+o)*g.cg+c)*g.kk:][:g.kk]
				dst := wt[((gi*g.cg+c)*g.og+o)*g.kk:][:g.kk]
				for t, v := range src {
					dst[g.kk-1-t] = v
				}
			}
		}
	}
	gt := makeConvGeom(g.n, g.o, g.oh, g.ow, g.c, g.kh, g.kw, g.groups,
		[2]int{1, 1}, [2]int{g.kh - 1 - g.ph, g.kw - 1 - g.pw}, g.h, g.w, b.threads)
	b.convForward(gt, dxv, dyv, wt, nil)
}

// convGradXCol2im is convGradX through col2im. Units of work are (image, group,
// channel block): channel blocks write disjoint planes of dx, and there are more than
// one per group only when images × groups are too few for the threads.
func (b *Backend) convGradXCol2im(g *convGeom, dxv, wv, dyv []float32) {
	blocks := 1
	if items := g.n * g.groups; items < b.threads {
		blocks = min(g.cg, (b.threads+items-1)/items)
	}
	dcolLen := 0
	if !g.direct {
		dcolLen = ((g.cg + blocks - 1) / blocks) * g.kk * g.tileRows * g.ow
	}
	b.dynamic(g.n*g.groups*blocks, g.macs(), dcolLen, func(item int, dcol []float32) {
		blk, ng := item%blocks, item/blocks
		ni, gi := ng/g.groups, ng%g.groups
		c0, c1 := g.cg*blk/blocks, g.cg*(blk+1)/blocks
		if c0 == c1 {
			return
		}
		wg := wv[gi*g.og*g.k+c0*g.kk:] // columns c0·kk… of W_g, i.e. rows of W_gᵀ
		dyg := dyv[(ni*g.o+gi*g.og)*g.p:]
		dxg := dxv[(ni*g.c+gi*g.cg)*g.h*g.w:]
		rows := (c1 - c0) * g.kk
		if g.direct {
			// dx rows are the rows of dcol: write them in place (dx is zero, so beta 1
			// saves OpenBLAS a pass).
			sgemm(true, false, rows, g.p, g.og, 1, wg, g.k, dyg, g.p, 1, dxg[c0*g.p:], g.p)
			return
		}
		for t := 0; t < g.tiles; t++ {
			r0, r1 := g.tile(t)
			cols := (r1 - r0) * g.ow
			dc := dcol[:rows*cols]
			sgemm(true, false, rows, cols, g.og, 1, wg, g.k, dyg[r0*g.ow:], g.p, 0, dc, cols)
			g.col2im(dxg, dc, c0, c1, r0, r1)
		}
	})
}

// convGradW computes dw (zeroed on entry), the sum over images and tiles of
// dy_tile·col_tileᵀ, in one of two ways.
//
// Layers with many weights (ResNet's 256- and 512-channel layers) split the input
// channels into one block per thread: each thread builds only its block's rows of the
// column matrices and owns the matching columns of dw, so nothing needs summing. Their
// images are small, so several are put side by side in one column matrix: the sgemm
// then runs over a longer inner dimension and reads and writes its dw block (several
// MiB, more than the L2 cache) fewer times.
//
// Other layers (few weights, large images) split the (image, group, tile) units into
// one contiguous run per thread, each accumulating into its own copy of dw (the first
// into dw itself), summed at the end; a fixed split keeps the result the same from
// run to run.
func (b *Backend) convGradW(g *convGeom, dwv, xv, dyv []float32) {
	if b.threads > 1 && g.o*g.k >= bigWeightGrad && g.cg >= 4*b.threads && g.macs() >= minParallelMACs {
		b.convGradWByChannels(g, dwv, xv, dyv)
		return
	}
	b.convGradWByUnits(g, dwv, xv, dyv)
}

// bigWeightGrad is the weight count (1 MiB of float32) from which convGradW splits by
// channels: below it a copy of dw per thread and their sum cost little.
const bigWeightGrad = 1 << 18

func (b *Backend) convGradWByChannels(g *convGeom, dwv, xv, dyv []float32) {
	blocks := max(1, (b.threads+g.groups-1)/g.groups)
	blockRows := (g.cg + blocks - 1) / blocks * g.kk // rows of the largest block
	// Images per column matrix: as many as fit four tiles' budget (the sgemm's inner
	// dimension matters more here than the cache), at least one. A larger image is cut
	// into row tiles instead (imgs stays 1).
	imgs := max(1, min(g.n, 4*colTileElems/max(1, blockRows*g.p)))
	tileRows := g.oh
	if imgs == 1 {
		tileRows = max(1, min(g.oh, max(minTileCols, colTileElems/blockRows)/g.ow))
	}
	tiles := (g.oh + tileRows - 1) / tileRows
	chunkCols := imgs * tileRows * g.ow
	scratchLen := blockRows * chunkCols
	if imgs > 1 {
		scratchLen += g.og * chunkCols // dy of the images side by side
	}
	b.dynamic(g.groups*blocks, g.macs(), scratchLen, func(unit int, buf []float32) {
		gi, blk := unit/blocks, unit%blocks
		c0, c1 := g.cg*blk/blocks, g.cg*(blk+1)/blocks
		if c0 == c1 {
			return
		}
		dwb := dwv[gi*g.og*g.k+c0*g.kk:] // dw_g's columns for channels c0…
		rows := (c1 - c0) * g.kk
		for n0 := 0; n0 < g.n; n0 += imgs {
			n1 := min(g.n, n0+imgs)
			for t := 0; t < tiles; t++ {
				r0, r1 := t*tileRows, min(g.oh, (t+1)*tileRows)
				cols := (n1 - n0) * (r1 - r0) * g.ow
				col := buf[:rows*cols]
				for ni := n0; ni < n1; ni++ {
					g.im2col(col[(ni-n0)*(r1-r0)*g.ow:], cols, xv[(ni*g.c+gi*g.cg)*g.h*g.w:], c0, c1, r0, r1)
				}
				dy, lddy := dyv[(n0*g.o+gi*g.og)*g.p+r0*g.ow:], g.p
				if n1-n0 > 1 {
					cat := buf[rows*cols:][:g.og*cols]
					for ni := n0; ni < n1; ni++ {
						for oc := 0; oc < g.og; oc++ {
							copy(cat[oc*cols+(ni-n0)*g.p:][:g.p], dyv[(ni*g.o+gi*g.og+oc)*g.p:][:g.p])
						}
					}
					dy, lddy = cat, cols
				}
				sgemm(false, true, g.og, rows, cols, 1, dy, lddy, col, cols, 1, dwb, g.k)
			}
		}
	})
}

func (b *Backend) convGradWByUnits(g *convGeom, dwv, xv, dyv []float32) {
	units := g.n * g.groups * g.tiles
	workers := min(b.threads, units)
	if g.macs() < minParallelMACs {
		workers = 1
	}
	acc := make([]*[]float32, workers)
	var wgr sync.WaitGroup
	for wk := 0; wk < workers; wk++ {
		lo, hi := units*wk/workers, units*(wk+1)/workers
		var dst []float32
		if wk == 0 {
			dst = dwv
		} else {
			acc[wk] = getScratch(len(dwv))
			dst = *acc[wk]
			clear(dst)
		}
		run := func() {
			var col []float32
			if !g.direct {
				s := getScratch(g.k * g.tileRows * g.ow)
				defer putScratch(s)
				col = *s
			}
			for item := lo; item < hi; item++ {
				t, ng := item%g.tiles, item/g.tiles
				ni, gi := ng/g.groups, ng%g.groups
				r0, r1 := g.tile(t)
				cols := (r1 - r0) * g.ow
				xg := xv[(ni*g.c+gi*g.cg)*g.h*g.w:]
				var src []float32
				ldb := cols
				if g.direct {
					src, ldb = xg[r0*g.ow:], g.p
				} else {
					src = col[:g.k*cols]
					g.im2col(src, cols, xg, 0, g.cg, r0, r1)
				}
				dyt := dyv[(ni*g.o+gi*g.og)*g.p+r0*g.ow:]
				sgemm(false, true, g.og, g.k, cols, 1, dyt, g.p, src, ldb, 1, dst[gi*g.og*g.k:], g.k)
			}
		}
		if workers == 1 {
			run()
			break
		}
		wgr.Add(1)
		go func() {
			defer wgr.Done()
			run()
		}()
	}
	wgr.Wait()
	if workers > 1 {
		b.parallel(len(dwv), func(lo, hi int) {
			for wk := 1; wk < workers; wk++ {
				a := (*acc[wk])[lo:hi]
				d := dwv[lo:hi]
				for i, v := range a {
					d[i] += v
				}
			}
		})
		for wk := 1; wk < workers; wk++ {
			putScratch(acc[wk])
		}
	}
}

// convGradBias sums dy over images and pixels for each output channel: float32 within
// a plane (eight interleaved partial sums keep rounding error low and the loop fast),
// float64 across planes.
func (b *Backend) convGradBias(g *convGeom, dbv, dyv []float32) {
	workers := b.threads
	if g.n*g.o*g.p < minParallelMACs {
		workers = 1
	}
	b.parallelN(g.o, workers, func(lo, hi int) {
		for oc := lo; oc < hi; oc++ {
			var sum float64
			for ni := 0; ni < g.n; ni++ {
				plane := dyv[(ni*g.o+oc)*g.p : (ni*g.o+oc+1)*g.p]
				var s [8]float32
				i := 0
				for ; i+8 <= len(plane); i += 8 {
					s[0] += plane[i]
					s[1] += plane[i+1]
					s[2] += plane[i+2]
					s[3] += plane[i+3]
					s[4] += plane[i+4]
					s[5] += plane[i+5]
					s[6] += plane[i+6]
					s[7] += plane[i+7]
				}
				for ; i < len(plane); i++ {
					s[0] += plane[i]
				}
				sum += float64(s[0]+s[1]) + float64(s[2]+s[3]) + float64(s[4]+s[5]) + float64(s[6]+s[7])
			}
			dbv[oc] = float32(sum)
		}
	})
}
