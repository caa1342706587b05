package cuda

import (
	"fmt"

	"github.com/edgedepth/edgedepth/tensor"
)

// Convolutions as matrix products (im2col + cuBLAS). For image n and group g the column
// matrix col (K × P) holds in row (c, i, j) and column (r, q) the input pixel
// x[n, g·Cg+c, r·sh−ph+i, q·sw−pw+j] (zero outside the image), K = Cg·KH·KW and
// P = OH·OW. Then
//
//	y[n, g]  = W_g · col            (Og × K)·(K × P)
//	dW_g    += dy[n, g] · colᵀ      summed over the images
//	dcol     = W_gᵀ · dy[n, g]      gathered back onto dx by col2im
//
// A 1×1 convolution with stride 1 and no padding needs no column matrix: the input is
// col. Column matrices are built for as many images at a time as fit colBudget bytes.
// This is the portable path and the fallback; where cuDNN is in use (ops_cudnn.go),
// Conv2D and Conv2DBackward hand each direction to it first.

// colBudget bounds the column matrix of one chunk of images.
const colBudget = 256 << 20

// convGeom is the geometry of one convolution.
type convGeom struct {
	n, c, h, w     int
	o, groups      int
	cg, og         int
	kh, kw         int
	sh, sw, ph, pw int
	oh, ow         int
	k, p           int // rows of a group's column matrix (Cg·KH·KW) and its columns (OH·OW)
	direct         bool
	chunk          int // images per column matrix
}

func newConvGeom(x, w *tensor.Tensor, out tensor.Shape, p tensor.Conv2DParams) convGeom {
	g := convGeom{
		n: x.Shape[0], c: x.Shape[1], h: x.Shape[2], w: x.Shape[3],
		o: w.Shape[0], groups: p.Groups, kh: w.Shape[2], kw: w.Shape[3],
		sh: p.Stride[0], sw: p.Stride[1], ph: p.Padding[0], pw: p.Padding[1],
		oh: out[2], ow: out[3],
	}
	g.cg, g.og = g.c/g.groups, g.o/g.groups
	g.k, g.p = g.cg*g.kh*g.kw, g.oh*g.ow
	g.direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0
	perImage := max(int64(g.c*g.kh*g.kw)*int64(g.p)*4, 1)
	g.chunk = int(min(max(colBudget/perImage, 1), int64(max(g.n, 1))))
	return g
}

// colArgs are the geometry parameters shared by im2col and col2im.
func (g *convGeom) colArgs(a *kargs) *kargs {
	return a.i32(g.c).i32(g.h).i32(g.w).i32(g.kh).i32(g.kw).i32(g.sh).i32(g.sw).i32(g.ph).i32(g.pw).i32(g.oh).i32(g.ow)
}

// columns returns the column matrices of images [n0, n0+nc) (owner): x itself for a
// direct convolution, else im2col into a pooled block that release gives back.
func (b *Backend) columns(g *convGeom, x devptr, n0, nc int) (col devptr, release func(), err error) {
	xi := x.at(n0 * g.c * g.h * g.w)
	if g.direct {
		return xi, func() {}, nil
	}
	total := int64(nc) * int64(g.c*g.kh*g.kw) * int64(g.p)
	bl, err := b.pool.get(4 * total)
	if err != nil {
		return 0, nil, err
	}
	release = func() { _ = b.pool.put(bl) }
	if err := b.launch1D(convFamily, "im2col", total, g.colArgs(new(kargs).ptr(bl.ptr).ptr(xi).i64(total))); err != nil {
		release()
		return 0, nil, err
	}
	return bl.ptr, release, nil
}

// Conv2D implements tensor.Backend.
func (b *Backend) Conv2D(x, w, bias *tensor.Tensor, p tensor.Conv2DParams) (*tensor.Tensor, error) {
	const op = "conv2d"
	shape, err := tensor.Conv2DCheck(x, w, bias, p)
	if err != nil {
		return nil, err
	}
	p = p.Norm()
	g := newConvGeom(x, w, shape, p)
	var y *tensor.Tensor
	err = b.run(func() error {
		var err error
		if y, err = b.newTensor(tensor.Float32, shape); err != nil {
			return err
		}
		if y.Len() == 0 {
			return nil
		}
		xp, wp, yp := b.ptr(x), b.ptr(w), b.ptr(y)
		if err := b.convForward(&g, xp, wp, yp); err != nil {
			return err
		}
		if bias == nil {
			return nil
		}
		total := int64(y.Len())
		return b.launch1D(convFamily, "add_bias", total, new(kargs).ptr(yp).ptr(b.ptr(bias)).i64(total).i32(g.o).i64(int64(g.p)))
	})
	if err != nil {
		b.discard(y)
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return y, nil
}

// convForward computes y = conv(x, w) without bias: cuDNN where it runs this shape,
// else im2col + cuBLAS chunk by chunk of images (owner).
func (b *Backend) convForward(g *convGeom, xp, wp, yp devptr) error {
	if b.dnn != nil {
		if ran, err := b.dnnRun(g, dirForward, xp, wp, yp, 0); ran || err != nil {
			return err
		}
	}
	return b.im2colForward(g, xp, wp, yp)
}

// im2colForward computes y = conv(x, w) by im2col + cuBLAS (owner).
func (b *Backend) im2colForward(g *convGeom, xp, wp, yp devptr) error {
	for n0 := 0; n0 < g.n; n0 += g.chunk {
		nc := min(g.chunk, g.n-n0)
		col, release, err := b.columns(g, xp, n0, nc)
		if err != nil {
			return err
		}
		colImage := g.c * g.kh * g.kw * g.p // a column matrix per image, all groups
		if g.groups == 1 {
			// y_n (O × P) = W (O × K) · col_n (K × P) for every image of the chunk.
			err = b.gemm(false, false, g.o, g.p, g.k, wp, g.k, 0, col, g.p, int64(colImage),
				0, yp.at(n0*g.o*g.p), g.p, int64(g.o*g.p), nc)
		} else {
			// Per image, batched over the groups.
			for i := 0; i < nc && err == nil; i++ {
				err = b.gemm(false, false, g.og, g.p, g.k, wp, g.k, int64(g.og*g.k), col.at(i*colImage), g.p, int64(g.k*g.p),
					0, yp.at((n0+i)*g.o*g.p), g.p, int64(g.og*g.p), g.groups)
			}
		}
		release()
		if err != nil {
			return err
		}
	}
	return nil
}

// Conv2DBackward implements tensor.Backend.
func (b *Backend) Conv2DBackward(x, w, dy *tensor.Tensor, p tensor.Conv2DParams, needX, needBias bool) (dx, dw, dbias *tensor.Tensor, err error) {
	const op = "conv2d backward"
	shape, err := tensor.Conv2DBackwardShape(x, w, dy, p)
	if err != nil {
		return nil, nil, nil, err
	}
	p = p.Norm()
	g := newConvGeom(x, w, shape, p)
	err = b.run(func() error {
		var err error
		if needX {
			if dx, err = b.newTensor(tensor.Float32, x.Shape); err != nil {
				return err
			}
		}
		if dw, err = b.newTensor(tensor.Float32, w.Shape); err != nil {
			return err
		}
		if needBias {
			if dbias, err = b.newTensor(tensor.Float32, tensor.Shape{g.o}); err != nil {
				return err
			}
		}
		if shape.Len() == 0 || w.Len() == 0 {
			// Sums over nothing.
			for _, t := range []*tensor.Tensor{dx, dw, dbias} {
				if t != nil {
					if err := cuMemsetD32(b.ptr(t), 0, t.Len(), b.stream); err != nil {
						return err
					}
				}
			}
			return nil
		}
		if err := b.convGrads(&g, x, w, dy, dx, dw); err != nil {
			return err
		}
		if dbias == nil {
			return nil
		}
		if b.dnn != nil {
			if ran, err := b.dnnBiasGrad(&g, b.ptr(dy), b.ptr(dbias)); ran || err != nil {
				return err
			}
		}
		return b.reduceInto(b.ptr(dbias), b.ptr(dy), dy.Shape, tensor.Shape{1, g.o, 1, 1}, 1)
	})
	if err != nil {
		b.discard(dx, dw, dbias)
		return nil, nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	return dx, dw, dbias, nil
}

// convGrads computes dw and, when dx is not nil, dx, chunk by chunk of images (owner).
func (b *Backend) convGrads(g *convGeom, x, w, dy, dx, dw *tensor.Tensor) error {
	xp, wp, dyp, dwp := b.ptr(x), b.ptr(w), b.ptr(dy), b.ptr(dw)
	if b.dnn != nil {
		var dxp devptr
		if dx != nil {
			dxp = b.ptr(dx)
		}
		if ran, err := b.dnnGrads(g, xp, wp, dyp, dxp, dwp, dx != nil); ran || err != nil {
			return err
		}
	}
	colImage := g.c * g.kh * g.kw * g.p
	for n0 := 0; n0 < g.n; n0 += g.chunk {
		nc := min(g.chunk, g.n-n0)
		col, release, err := b.columns(g, xp, n0, nc)
		if err != nil {
			return err
		}
		// dW_g (Og × K) += dy_n,g (Og × P) · col_n,gᵀ (P × K), image after image (the
		// first one overwrites), batched over the groups.
		for i := 0; i < nc && err == nil; i++ {
			beta := float32(1)
			if n0+i == 0 {
				beta = 0
			}
			err = b.gemm(false, true, g.og, g.k, g.p, dyp.at((n0+i)*g.o*g.p), g.p, int64(g.og*g.p),
				col.at(i*colImage), g.p, int64(g.k*g.p), beta, dwp, g.k, int64(g.og*g.k), g.groups)
		}
		release()
		if err != nil {
			return err
		}
		if dx == nil {
			continue
		}
		if err := b.convGradX(g, wp, dyp, b.ptr(dx), n0, nc); err != nil {
			return err
		}
	}
	return nil
}

// convGradX computes dx of images [n0, n0+nc): dcol = W_gᵀ · dy_n,g, then col2im
// (owner). A direct convolution's dcol is dx itself.
func (b *Backend) convGradX(g *convGeom, wp, dyp, dxp devptr, n0, nc int) error {
	colImage := g.c * g.kh * g.kw * g.p
	dcol := dxp.at(n0 * g.c * g.h * g.w)
	var release func()
	if !g.direct {
		bl, err := b.pool.get(4 * int64(nc) * int64(colImage))
		if err != nil {
			return err
		}
		release = func() { _ = b.pool.put(bl) }
		defer release()
		dcol = bl.ptr
	}
	var err error
	if g.groups == 1 {
		// dcol_n (K × P) = Wᵀ (K × O) · dy_n (O × P) for every image of the chunk.
		err = b.gemm(true, false, g.k, g.p, g.o, wp, g.k, 0, dyp.at(n0*g.o*g.p), g.p, int64(g.o*g.p),
			0, dcol, g.p, int64(colImage), nc)
	} else {
		for i := 0; i < nc && err == nil; i++ {
			err = b.gemm(true, false, g.k, g.p, g.og, wp, g.k, int64(g.og*g.k), dyp.at((n0+i)*g.o*g.p), g.p, int64(g.og*g.p),
				0, dcol.at(i*colImage), g.p, int64(g.k*g.p), g.groups)
		}
	}
	if err != nil || g.direct {
		return err
	}
	total := int64(nc) * int64(g.c*g.h*g.w)
	return b.launch1D(convFamily, "col2im", total, g.colArgs(new(kargs).ptr(dxp.at(n0*g.c*g.h*g.w)).ptr(dcol).i64(total)))
}
