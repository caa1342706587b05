package cpu

import (
	"fmt"
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
//	dW_g    += dy[n, g] · colᵀ
//	dcol     = W_gᵀ · dy[n, g], scattered back onto dx by col2im.
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
	g := &convGeom{
		n: x.Shape[0], c: x.Shape[1], h: x.Shape[2], w: x.Shape[3],
		o: w.Shape[0], groups: p.Groups, kh: w.Shape[2], kw: w.Shape[3],
		sh: p.Stride[0], sw: p.Stride[1], ph: p.Padding[0], pw: p.Padding[1],
		oh: out[2], ow: out[3],
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

// im2col fills col with the rows for channels [c0, c1) of the column matrix, columns of
// output rows [r0, r1). xg is the input from the group's first channel on.
func (g *convGeom) im2col(col, xg []float32, c0, c1, r0, r1 int) {
	cols := (r1 - r0) * g.ow
	hw := g.h * g.w
	for c := c0; c < c1; c++ {
		plane := xg[c*hw : (c+1)*hw]
		for i := 0; i < g.kh; i++ {
			for j := 0; j < g.kw; j++ {
				row := col[(((c-c0)*g.kh+i)*g.kw+j)*cols:][:cols]
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

// scratchPool recycles column matrices between calls and between workers.
var scratchPool sync.Pool

// getScratch returns a buffer of n elements (contents undefined); putScratch recycles it.
func getScratch(n int) *[]float32 {
	if v, ok := scratchPool.Get().(*[]float32); ok {
		if cap(*v) >= n {
			*v = (*v)[:n]
			return v
		}
	}
	s := make([]float32, n)
	return &s
}

func putScratch(s *[]float32) { scratchPool.Put(s) }

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
	const op = "conv2d"
	if err := tensor.CheckFloat(op, x, w); err != nil {
		return nil, err
	}
	if bias != nil {
		if err := tensor.CheckFloat(op, bias); err != nil {
			return nil, err
		}
	}
	p = p.Norm()
	shape, err := tensor.Conv2DShape(x, w, bias, p)
	if err != nil {
		return nil, err
	}
	y := newF(shape)
	if shape.Len() == 0 {
		return y, nil
	}
	g := newConvGeom(x, w, shape, p, b.threads)
	xv, wv, yv := f32(x), f32(w), f32(y)
	var bv []float32
	if bias != nil {
		bv = f32(bias)
	}
	scratch := 0
	if !g.direct {
		scratch = g.k * g.tileRows * g.ow
	}
	b.dynamic(g.n*g.groups*g.tiles, g.macs(), scratch, func(item int, col []float32) {
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
			g.im2col(src, xg, 0, g.cg, r0, r1)
		}
		// beta 1: y is either the bias or the zeros newF made, and OpenBLAS skips its
		// pass that scales C when beta is 1.
		sgemm(false, false, g.og, cols, g.k, 1, wv[gi*g.og*g.k:], g.k, src, ldb, 1, yt, g.p)
	})
	return y, nil
}

// Conv2DBackward implements tensor.Backend.
func (b *Backend) Conv2DBackward(x, w, dy *tensor.Tensor, p tensor.Conv2DParams, needX, needBias bool) (dx, dw, dbias *tensor.Tensor, err error) {
	const op = "conv2d backward"
	if err := tensor.CheckFloat(op, x, w, dy); err != nil {
		return nil, nil, nil, err
	}
	p = p.Norm()
	shape, err := tensor.Conv2DShape(x, w, nil, p)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	if !dy.Shape.Equal(shape) {
		return nil, nil, nil, tensor.ShapeError(op, fmt.Sprintf("dy must be %v", shape), x, w, dy)
	}
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

// convGradX computes dx (zeroed on entry): for each image and group, dcol = W_gᵀ·dy
// tile by tile, scattered onto dx by col2im. Units of work are (image, group, channel
// block): channel blocks write disjoint planes of dx, and there are more than one per
// group only when images × groups are too few for the threads.
func (b *Backend) convGradX(g *convGeom, dxv, wv, dyv []float32) {
	blocks := 1
	if items := g.n * g.groups; items < b.threads {
		blocks = min(g.cg, (b.threads+items-1)/items)
	}
	scratch := 0
	if !g.direct {
		scratch = ((g.cg + blocks - 1) / blocks) * g.kk * g.tileRows * g.ow
	}
	b.dynamic(g.n*g.groups*blocks, g.macs(), scratch, func(item int, dcol []float32) {
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

// convGradW computes dw (zeroed on entry) as the sum over images and tiles of
// dy_tile·col_tileᵀ. The (image, group, tile) units are split into one contiguous run
// per thread, each accumulating into its own copy of dw (the first into dw itself),
// summed at the end: a fixed split keeps the result the same from run to run.
func (b *Backend) convGradW(g *convGeom, dwv, xv, dyv []float32) {
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
					g.im2col(src, xg, 0, g.cg, r0, r1)
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
