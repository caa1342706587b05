package cpu

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/edgedepth/edgedepth/tensor"
)

// MaxPool2D implements tensor.Backend. Windows are clipped to the input instead of
// reading padding, so padding never wins; the scan is row-major with a strict >, so the
// first maximum wins ties. A NaN wins as in PyTorch, so that it propagates.
func (b *Backend) MaxPool2D(x *tensor.Tensor, p tensor.Pool2DParams) (y, argmax *tensor.Tensor, err error) {
	const op = "maxpool2d"
	shape, err := tensor.PoolCheck(op, x, p)
	if err != nil {
		return nil, nil, err
	}
	p = p.Norm()
	h, w := x.Shape[2], x.Shape[3]
	oh, ow := shape[2], shape[3]
	kh, kw, sh, sw, ph, pw := p.Kernel[0], p.Kernel[1], p.Stride[0], p.Stride[1], p.Padding[0], p.Padding[1]
	y, argmax = newF(shape), newI(shape)
	src, dst, am := f32(x), f32(y), i32(argmax)
	// Columns [oxA, oxB) have windows wholly inside the row; for the 3x3 kernel of
	// ResNet's stem they take an unrolled path, the borders the general one.
	oxA := min((pw+sw-1)/sw, ow)
	oxB := oxA
	if w+pw-kw >= 0 {
		oxB = max(min((w+pw-kw)/sw+1, ow), oxA)
	}
	b.imgSplit(shape[0]*shape[1]*oh, ow*kh*kw, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			pl, oy := row/oh, row%oh
			in := src[pl*h*w:][:h*w]
			out, idx := dst[row*ow:][:ow], am[row*ow:][:ow]
			// Pool2DShape keeps the padding at most half the kernel, so every clipped
			// window holds at least one input pixel.
			y0 := oy*sh - ph
			y1 := min(y0+kh, h)
			y0 = max(y0, 0)
			a, z := 0, 0 // the columns done by the unrolled path
			if kh == 3 && kw == 3 && y1-y0 == 3 {
				a, z = oxA, oxB
				maxPool3x3(in, w, y0, sw, pw, out[a:z], idx[a:z], a)
			}
			for ox := 0; ox < ow; ox++ {
				if ox == a && z > a {
					ox = z - 1 // skip what maxPool3x3 did
					continue
				}
				x0 := ox*sw - pw
				x1 := min(x0+kw, w)
				x0 = max(x0, 0)
				out[ox], idx[ox] = maxWindow(in, w, y0, y1, x0, x1)
			}
		}
	})
	return y, argmax, nil
}

// maxWindow is the maximum of rows [y0, y1) and columns [x0, x1) of a plane of width
// w and its index, scanning row-major with a strict > so that the first maximum wins;
// a NaN wins, as in PyTorch, so that it propagates. The window must not be empty.
func maxWindow(in []float32, w, y0, y1, x0, x1 int) (float32, int32) {
	best, bi := float32(math.Inf(-1)), y0*w+x0
	for iy := y0; iy < y1; iy++ {
		for ix, v := range in[iy*w+x0 : iy*w+x1] {
			if v > best || v != v {
				best, bi = v, iy*w+x0+ix
			}
		}
	}
	return best, int32(bi)
}

// maxPool3x3 is maxWindow for the 3x3 windows of rows y0..y0+2 starting at columns
// (ox0+k)·sw - pw, written out: it is the stem of every ResNet and the general loop
// spends more on bookkeeping than on comparing. Starting from the first element
// instead of -inf changes nothing: anything beats -inf but -inf and NaN, and the
// first element would win those too.
func maxPool3x3(in []float32, w, y0, sw, pw int, out []float32, idx []int32, ox0 int) {
	for k := range out {
		c := (ox0+k)*sw - pw
		o := y0*w + c
		r0, r1, r2 := in[o:o+3], in[o+w:o+w+3], in[o+2*w:o+2*w+3]
		best, bi := r0[0], o
		if v := r0[1]; v > best || v != v {
			best, bi = v, o+1
		}
		if v := r0[2]; v > best || v != v {
			best, bi = v, o+2
		}
		if v := r1[0]; v > best || v != v {
			best, bi = v, o+w
		}
		if v := r1[1]; v > best || v != v {
			best, bi = v, o+w+1
		}
		if v := r1[2]; v > best || v != v {
			best, bi = v, o+w+2
		}
		if v := r2[0]; v > best || v != v {
			best, bi = v, o+2*w
		}
		if v := r2[1]; v > best || v != v {
			best, bi = v, o+2*w+1
		}
		if v := r2[2]; v > best || v != v {
			best, bi = v, o+2*w+2
		}
		out[k], idx[k] = best, int32(bi)
	}
}

// MaxPool2DBackward implements tensor.Backend. Windows may overlap, so one input pixel
// can win several of them: each (n, c) plane is scattered by one goroutine.
func (b *Backend) MaxPool2DBackward(dy, argmax *tensor.Tensor, inShape tensor.Shape) (*tensor.Tensor, error) {
	const op = "maxpool2dbackward"
	if err := tensor.MaxPool2DBackwardCheck(dy, argmax, inShape); err != nil {
		return nil, err
	}
	hw, ohw := inShape[2]*inShape[3], dy.Shape[2]*dy.Shape[3]
	dx := newF(inShape)
	g, am, d := f32(dy), i32(argmax), f32(dx)
	var bad atomic.Bool
	b.imgSplit(inShape[0]*inShape[1], 2*ohw, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			out := d[pl*hw:][:hw]
			idx := am[pl*ohw:][:ohw]
			for i, v := range g[pl*ohw:][:ohw] {
				k := idx[i]
				if uint(k) >= uint(hw) {
					bad.Store(true)
					continue
				}
				out[k] += v
			}
		}
	})
	if bad.Load() {
		return nil, fmt.Errorf("%s: argmax holds an index outside the %dx%d input plane (input shape %v)", op, inShape[2], inShape[3], inShape)
	}
	return dx, nil
}

// AvgPool2D implements tensor.Backend. Padding counts as zeros in the average, so every
// window divides by kh·kw (in floor mode no window reaches past the padding).
func (b *Backend) AvgPool2D(x *tensor.Tensor, p tensor.Pool2DParams) (*tensor.Tensor, error) {
	const op = "avgpool2d"
	shape, err := tensor.PoolCheck(op, x, p)
	if err != nil {
		return nil, err
	}
	p = p.Norm()
	h, w := x.Shape[2], x.Shape[3]
	oh, ow := shape[2], shape[3]
	kh, kw, sh, sw, ph, pw := p.Kernel[0], p.Kernel[1], p.Stride[0], p.Stride[1], p.Padding[0], p.Padding[1]
	inv := 1 / float32(kh*kw)
	y := newF(shape)
	src, dst := f32(x), f32(y)
	b.imgSplit(shape[0]*shape[1]*oh, ow*kh*kw, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			pl, oy := row/oh, row%oh
			in := src[pl*h*w:][:h*w]
			out := dst[row*ow:][:ow]
			y0 := oy*sh - ph
			y1 := min(y0+kh, h)
			y0 = max(y0, 0)
			if kh == 2 && kw == 2 && sw == 2 && pw == 0 && y1-y0 == 2 {
				// Monodepth2's image pyramid: 2x2 windows side by side.
				r0, r1 := in[y0*w:][:w], in[(y0+1)*w:][:w]
				for ox := range ow {
					out[ox] = (r0[2*ox] + r0[2*ox+1] + r1[2*ox] + r1[2*ox+1]) * inv
				}
				continue
			}
			for ox := range ow {
				x0 := ox*sw - pw
				x1 := min(x0+kw, w)
				x0 = max(x0, 0)
				var s float32
				for iy := y0; iy < y1; iy++ {
					for _, v := range in[iy*w+x0 : iy*w+x1] {
						s += v
					}
				}
				out[ox] = s * inv
			}
		}
	})
	return y, nil
}

// poolCover returns, for every input index along one axis, the range [lo, hi) of
// outputs whose windows (start o·s - pad, length k) cover it.
func poolCover(in, out, k, s, pad int) (lo, hi []int) {
	lo, hi = make([]int, in), make([]int, in)
	for i := range in {
		// o·s - pad ≤ i  ⇔  o ≤ (i+pad)/s;   o·s - pad + k - 1 ≥ i  ⇔  o ≥ ⌈(i+pad-k+1)/s⌉.
		a := i + pad - k + 1
		if a > 0 {
			lo[i] = (a + s - 1) / s
		}
		hi[i] = min((i+pad)/s+1, out)
		hi[i] = max(hi[i], lo[i])
	}
	return lo, hi
}

// AvgPool2DBackward implements tensor.Backend. It gathers: each input pixel sums the
// gradients of the windows that cover it, so input rows split over goroutines without
// races.
func (b *Backend) AvgPool2DBackward(dy *tensor.Tensor, inShape tensor.Shape, p tensor.Pool2DParams) (*tensor.Tensor, error) {
	want, err := tensor.AvgPool2DBackwardShape(dy, inShape, p)
	if err != nil {
		return nil, err
	}
	p = p.Norm()
	h, w := inShape[2], inShape[3]
	oh, ow := want[2], want[3]
	rowLo, rowHi := poolCover(h, oh, p.Kernel[0], p.Stride[0], p.Padding[0])
	colLo, colHi := poolCover(w, ow, p.Kernel[1], p.Stride[1], p.Padding[1])
	inv := 1 / float32(p.Kernel[0]*p.Kernel[1])
	dx := newF(inShape)
	g, d := f32(dy), f32(dx)
	if p.Stride[0] >= p.Kernel[0] && p.Stride[1] >= p.Kernel[1] {
		// Windows that do not overlap (Monodepth2's 2x2 pyramid) give each input pixel
		// a share of at most one gradient: a lookup instead of a sum.
		colOf := make([]int, w)
		for ix := range colOf {
			colOf[ix] = -1
			if colLo[ix] < colHi[ix] {
				colOf[ix] = colLo[ix]
			}
		}
		b.imgSplit(inShape[0]*inShape[1]*h, w, func(lo, hi int) {
			for row := lo; row < hi; row++ {
				pl, iy := row/h, row%h
				if rowLo[iy] >= rowHi[iy] {
					continue // no window covers this row (a gap, or past the last window)
				}
				gr := g[(pl*oh+rowLo[iy])*ow:][:ow]
				out := d[row*w:][:w]
				for ix, ox := range colOf {
					if ox >= 0 {
						out[ix] = gr[ox] * inv
					}
				}
			}
		})
		return dx, nil
	}
	cover := (p.Kernel[0] + p.Stride[0] - 1) / p.Stride[0] * (p.Kernel[1] + p.Stride[1] - 1) / p.Stride[1]
	b.imgSplit(inShape[0]*inShape[1]*h, w*max(cover, 1), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			pl, iy := row/h, row%h
			out := d[row*w:][:w]
			for oy := rowLo[iy]; oy < rowHi[iy]; oy++ {
				gr := g[(pl*oh+oy)*ow:][:ow]
				for ix := range out {
					var s float32
					for _, v := range gr[colLo[ix]:colHi[ix]] {
						s += v
					}
					out[ix] += s
				}
			}
			for ix := range out {
				out[ix] *= inv
			}
		}
	})
	return dx, nil
}
