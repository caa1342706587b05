package cpu

import "github.com/edgedepth/edgedepth/tensor"

// UpsampleNearest implements tensor.Backend. Output pixel (y, x) is input pixel
// (y/f, x/f); each input row is widened once and the result copied f-1 more times.
func (b *Backend) UpsampleNearest(x *tensor.Tensor, factor int) (*tensor.Tensor, error) {
	shape, err := tensor.UpsampleNearestShape(x, factor)
	if err != nil {
		return nil, err
	}
	f := factor
	h, w := x.Shape[2], x.Shape[3]
	ow := shape[3]
	y := newF(shape)
	src, dst := f32(x), f32(y)
	b.imgSplit(x.Shape[0]*x.Shape[1]*h, ow*f, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			in := src[row*w:][:w]
			// Input row (plane, iy) becomes output rows plane·h·f + iy·f + k = row·f + k.
			first := dst[row*f*ow:][:ow]
			if f == 2 {
				for ix, v := range in {
					first[2*ix], first[2*ix+1] = v, v
				}
			} else {
				for ix, v := range in {
					o := first[ix*f:][:f]
					for k := range o {
						o[k] = v
					}
				}
			}
			for k := 1; k < f; k++ {
				copy(dst[(row*f+k)*ow:][:ow], first)
			}
		}
	})
	return y, nil
}

// UpsampleNearestBackward implements tensor.Backend.
func (b *Backend) UpsampleNearestBackward(dy *tensor.Tensor, factor int) (*tensor.Tensor, error) {
	shape, err := tensor.UpsampleNearestBackwardShape(dy, factor)
	if err != nil {
		return nil, err
	}
	f := factor
	ow := dy.Shape[3]
	h, w := shape[2], shape[3]
	dx := newF(shape)
	g, d := f32(dy), f32(dx)
	b.imgSplit(dy.Shape[0]*dy.Shape[1]*h, ow*f, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			out := d[row*w:][:w]
			for k := range f {
				gr := g[(row*f+k)*ow:][:ow]
				if f == 2 {
					for ix := range out {
						out[ix] += gr[2*ix] + gr[2*ix+1]
					}
					continue
				}
				for ix := range out {
					var s float32
					for _, v := range gr[ix*f:][:f] {
						s += v
					}
					out[ix] += s
				}
			}
		}
	})
	return dx, nil
}

// linTap is where one output index of a linear resize reads: weight l0 at i0 and l1 at
// i1 (i1 == i0 at the last input index).
type linTap struct {
	i0, i1 int
	l0, l1 float32
}

// linearTaps maps every output index along one axis to its two input indices, by
// PyTorch's align_corners=False rule: the output centre d + 0.5 sits at
// (d + 0.5)·in/out in input units, so the source coordinate is that minus 0.5,
// clamped at 0 (below it, near the border of an upsampling, PyTorch repeats the first
// pixel instead of extrapolating). Above, the coordinate stays below in - 0.5 and i1
// is clamped to the last index.
func linearTaps(in, out int) []linTap {
	scale := float64(in) / float64(out)
	taps := make([]linTap, out)
	for d := range taps {
		src := max((float64(d)+0.5)*scale-0.5, 0)
		i0 := min(int(src), in-1)
		i1 := min(i0+1, in-1)
		l1 := src - float64(i0)
		taps[d] = linTap{i0: i0, i1: i1, l0: float32(1 - l1), l1: float32(l1)}
	}
	return taps
}

// ResizeBilinear implements tensor.Backend.
func (b *Backend) ResizeBilinear(x *tensor.Tensor, h, w int) (*tensor.Tensor, error) {
	if err := tensor.ResizeBilinearCheck(x, h, w); err != nil {
		return nil, err
	}
	ih, iw := x.Shape[2], x.Shape[3]
	ys, xs := linearTaps(ih, h), linearTaps(iw, w)
	y := newF(tensor.Shape{x.Shape[0], x.Shape[1], h, w})
	src, dst := f32(x), f32(y)
	b.imgSplit(x.Shape[0]*x.Shape[1]*h, 2*w, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			pl, oy := row/h, row%h
			t := ys[oy]
			r0, r1 := src[(pl*ih+t.i0)*iw:][:iw], src[(pl*ih+t.i1)*iw:][:iw]
			out := dst[row*w:][:w]
			for ox, c := range xs {
				out[ox] = t.l0*(c.l0*r0[c.i0]+c.l1*r0[c.i1]) + t.l1*(c.l0*r1[c.i0]+c.l1*r1[c.i1])
			}
		}
	})
	return y, nil
}

// ResizeBilinearBackward implements tensor.Backend. It gathers by input row so that
// rows split over goroutines without races: input row iy collects every output row
// that reads it, with that row's vertical weight, and scatters it along the columns
// into its own row only.
func (b *Backend) ResizeBilinearBackward(dy *tensor.Tensor, inShape tensor.Shape) (*tensor.Tensor, error) {
	if err := tensor.ResizeBilinearBackwardCheck(dy, inShape); err != nil {
		return nil, err
	}
	h, w, oh, ow := inShape[2], inShape[3], dy.Shape[2], dy.Shape[3]
	ys, xs := linearTaps(h, oh), linearTaps(w, ow)
	// readers[start[iy]:start[iy+1]] lists the output rows reading input row iy, with
	// their weights; a counting sort, since each output row reads two input rows.
	type reader struct {
		oy  int
		wgt float32
	}
	start := make([]int, h+1)
	for _, t := range ys {
		start[t.i0+1]++
		start[t.i1+1]++
	}
	for i := range h {
		start[i+1] += start[i]
	}
	readers := make([]reader, 2*oh)
	next := append([]int(nil), start[:h]...)
	for oy, t := range ys {
		readers[next[t.i0]] = reader{oy, t.l0}
		next[t.i0]++
		readers[next[t.i1]] = reader{oy, t.l1}
		next[t.i1]++
	}
	dx := newF(inShape)
	g, d := f32(dy), f32(dx)
	cost := w + 2*ow*max(oh/h, 1)
	b.imgSplit(inShape[0]*inShape[1]*h, cost, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			pl, iy := row/h, row%h
			out := d[row*w:][:w]
			for _, r := range readers[start[iy]:start[iy+1]] {
				if r.wgt == 0 {
					continue // the clamped second tap of a border row
				}
				gr := g[(pl*oh+r.oy)*ow:][:ow]
				for ox, c := range xs {
					v := r.wgt * gr[ox]
					out[c.i0] += c.l0 * v
					out[c.i1] += c.l1 * v
				}
			}
		}
	})
	return dx, nil
}
