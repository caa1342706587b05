package cuda

// CUDA C of the image ops (NCHW). Each kernel mirrors the CPU backend's definition
// (tensor/cpu) element for element; where the CPU scatters, these gather (one thread
// owns each output element, no atomics), except max pooling's and grid sampling's
// backward passes, whose sources are data-dependent and use atomicAdd.

// convFamily holds the column-matrix kernels of the im2col convolution (ops_conv.go).
var convFamily = &family{name: "conv", src: `
// col[img][r][p] with r = (c·KH + ki)·KW + kj over all C channels and p = oy·OW + ox:
// the input pixel under kernel tap (ki, kj) of output pixel p, 0 in the padding.
extern "C" __global__ void im2col(float *col, const float *x, i64 total, int C, int H, int W,
		int KH, int KW, int sh, int sw, int ph, int pw, int OH, int OW) {
	i64 P = (i64)OH * OW, R = (i64)C * KH * KW;
	GRID_LOOP(i, total) {
		i64 p = i % P, t = i / P;
		int r = (int)(t % R);
		i64 img = t / R;
		int kj = r % KW, ki = (r / KW) % KH, c = r / (KH * KW);
		int oy = (int)(p / OW), ox = (int)(p % OW);
		int iy = oy * sh - ph + ki, ix = ox * sw - pw + kj;
		col[i] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[((img * C + c) * H + iy) * W + ix] : 0.0f;
	}
}

// dx[img][c][iy][ix] = the sum of dcol over the (tap, output pixel) pairs that read it.
extern "C" __global__ void col2im(float *dx, const float *dcol, i64 total, int C, int H, int W,
		int KH, int KW, int sh, int sw, int ph, int pw, int OH, int OW) {
	i64 P = (i64)OH * OW, R = (i64)C * KH * KW;
	GRID_LOOP(i, total) {
		int ix = (int)(i % W);
		i64 t = i / W;
		int iy = (int)(t % H);
		t /= H;
		int c = (int)(t % C);
		i64 img = t / C;
		const float *d = dcol + img * R * P;
		float acc = 0.0f;
		for (int ki = 0; ki < KH; ki++) {
			int ty = iy + ph - ki;
			if (ty < 0 || ty % sh != 0) continue;
			int oy = ty / sh;
			if (oy >= OH) continue;
			for (int kj = 0; kj < KW; kj++) {
				int tx = ix + pw - kj;
				if (tx < 0 || tx % sw != 0) continue;
				int ox = tx / sw;
				if (ox >= OW) continue;
				acc += d[((i64)(c * KH + ki) * KW + kj) * P + (i64)oy * OW + ox];
			}
		}
		dx[i] = acc;
	}
}

// y[n][o][p] += bias[o]
extern "C" __global__ void add_bias(float *y, const float *bias, i64 total, int O, i64 P) {
	GRID_LOOP(i, total) y[i] += bias[(i / P) % O];
}
`}

// imageFamily holds padding, pooling, resizing and batch norm.
var imageFamily = &family{name: "image", src: `
__device__ __forceinline__ int reflect_index(int i, int n) {
	if (i < 0) return -i;
	if (i >= n) return 2 * (n - 1) - i;
	return i;
}

// Pad2D over planes of h×w into oh×ow; reflect is PyTorch's "reflect" (no edge repeat).
extern "C" __global__ void pad2d(float *y, const float *x, i64 total, int h, int w, int oh, int ow,
		int top, int left, int reflect) {
	GRID_LOOP(i, total) {
		int ox = (int)(i % ow);
		i64 t = i / ow;
		int oy = (int)(t % oh);
		i64 pl = t / oh;
		int iy = oy - top, ix = ox - left;
		float v = 0.0f;
		if (reflect) {
			iy = reflect_index(iy, h);
			ix = reflect_index(ix, w);
			v = x[(pl * h + iy) * w + ix];
		} else if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
			v = x[(pl * h + iy) * w + ix];
		}
		y[i] = v;
	}
}

// The gradient of Pad2D: input pixel (iy, ix) gathers the padded pixel in front of it
// and, with reflection, those mirrored onto it (at most two more per axis).
extern "C" __global__ void pad2d_backward(float *dx, const float *dy, i64 total, int h, int w, int oh, int ow,
		int top, int bottom, int left, int right, int reflect) {
	GRID_LOOP(i, total) {
		int ix = (int)(i % w);
		i64 t = i / w;
		int iy = (int)(t % h);
		i64 pl = t / h;
		int rows[3], cols[3], nr = 0, nc = 0;
		rows[nr++] = iy + top;
		cols[nc++] = ix + left;
		if (reflect) {
			if (iy >= 1 && iy <= top) rows[nr++] = top - iy;
			if (iy <= h - 2 && iy >= h - 1 - bottom) rows[nr++] = top + 2 * (h - 1) - iy;
			if (ix >= 1 && ix <= left) cols[nc++] = left - ix;
			if (ix <= w - 2 && ix >= w - 1 - right) cols[nc++] = left + 2 * (w - 1) - ix;
		}
		const float *g = dy + pl * oh * ow;
		float acc = 0.0f;
		for (int a = 0; a < nr; a++)
			for (int b = 0; b < nc; b++) acc += g[(i64)rows[a] * ow + cols[b]];
		dx[i] = acc;
	}
}

// Max pooling: windows clipped to the input (padding never wins), scanned row-major
// with a strict >, so the first maximum wins; NaN wins so that it propagates.
extern "C" __global__ void maxpool2d(float *y, int *argmax, const float *x, i64 total, int h, int w,
		int oh, int ow, int kh, int kw, int sh, int sw, int ph, int pw) {
	GRID_LOOP(i, total) {
		int ox = (int)(i % ow);
		i64 t = i / ow;
		int oy = (int)(t % oh);
		i64 pl = t / oh;
		int y0 = oy * sh - ph, x0 = ox * sw - pw;
		int y1 = min(y0 + kh, h), x1 = min(x0 + kw, w);
		y0 = max(y0, 0);
		x0 = max(x0, 0);
		const float *in = x + pl * h * w;
		float best = -__int_as_float(0x7f800000);
		int bi = y0 * w + x0;
		for (int iy = y0; iy < y1; iy++)
			for (int ix = x0; ix < x1; ix++) {
				float v = in[iy * w + ix];
				if (v > best || v != v) { best = v; bi = iy * w + ix; }
			}
		y[i] = best;
		argmax[i] = bi;
	}
}

// The gradient of max pooling: each output sends dy to its winner. Windows may
// overlap, so winners are shared: atomicAdd. Indices outside the plane are skipped.
extern "C" __global__ void maxpool2d_backward(float *dx, const float *dy, const int *argmax, i64 total, int ohw, int hw) {
	GRID_LOOP(i, total) {
		int k = argmax[i];
		if (k < 0 || k >= hw) continue;
		atomicAdd(dx + (i / ohw) * hw + k, dy[i]);
	}
}

// Average pooling with zero padding counted: every window divides by kh·kw.
extern "C" __global__ void avgpool2d(float *y, const float *x, i64 total, int h, int w,
		int oh, int ow, int kh, int kw, int sh, int sw, int ph, int pw, float inv) {
	GRID_LOOP(i, total) {
		int ox = (int)(i % ow);
		i64 t = i / ow;
		int oy = (int)(t % oh);
		i64 pl = t / oh;
		int y0 = oy * sh - ph, x0 = ox * sw - pw;
		int y1 = min(y0 + kh, h), x1 = min(x0 + kw, w);
		y0 = max(y0, 0);
		x0 = max(x0, 0);
		const float *in = x + pl * h * w;
		float s = 0.0f;
		for (int iy = y0; iy < y1; iy++)
			for (int ix = x0; ix < x1; ix++) s += in[iy * w + ix];
		y[i] = s * inv;
	}
}

// first output (along one axis) whose window (start o·s − pad, length k) reaches i,
// and one past the last
__device__ __forceinline__ void pool_cover(int i, int out, int k, int s, int pad, int &lo, int &hi) {
	int a = i + pad - k + 1;
	lo = a > 0 ? (a + s - 1) / s : 0;
	hi = min((i + pad) / s + 1, out);
	hi = max(hi, lo);
}

// The gradient of average pooling: each input pixel gathers the windows covering it.
extern "C" __global__ void avgpool2d_backward(float *dx, const float *dy, i64 total, int h, int w,
		int oh, int ow, int kh, int kw, int sh, int sw, int ph, int pw, float inv) {
	GRID_LOOP(i, total) {
		int ix = (int)(i % w);
		i64 t = i / w;
		int iy = (int)(t % h);
		i64 pl = t / h;
		int r0, r1, c0, c1;
		pool_cover(iy, oh, kh, sh, ph, r0, r1);
		pool_cover(ix, ow, kw, sw, pw, c0, c1);
		const float *g = dy + pl * oh * ow;
		float s = 0.0f;
		for (int oy = r0; oy < r1; oy++)
			for (int ox = c0; ox < c1; ox++) s += g[oy * ow + ox];
		dx[i] = s * inv;
	}
}

extern "C" __global__ void upsample_nearest(float *y, const float *x, i64 total, int h, int w, int f) {
	int ow = w * f, oh = h * f;
	GRID_LOOP(i, total) {
		int ox = (int)(i % ow);
		i64 t = i / ow;
		int oy = (int)(t % oh);
		i64 pl = t / oh;
		y[i] = x[(pl * h + oy / f) * w + ox / f];
	}
}

extern "C" __global__ void upsample_nearest_backward(float *dx, const float *dy, i64 total, int h, int w, int f) {
	int ow = w * f;
	GRID_LOOP(i, total) {
		int ix = (int)(i % w);
		i64 t = i / w;
		int iy = (int)(t % h);
		i64 pl = t / h;
		const float *g = dy + (pl * h * f + (i64)iy * f) * ow + (i64)ix * f;
		float s = 0.0f;
		for (int a = 0; a < f; a++)
			for (int b = 0; b < f; b++) s += g[(i64)a * ow + b];
		dx[i] = s;
	}
}

// Where output index d of an axis resized from in to out reads (PyTorch's
// align_corners=False, no extrapolation below 0), as the CPU's linearTaps computes it.
__device__ __forceinline__ void linear_tap(int d, int in, double scale, int &i0, int &i1, float &l0, float &l1) {
	double src = ((double)d + 0.5) * scale - 0.5;
	if (src < 0.0) src = 0.0;
	i0 = min((int)src, in - 1);
	i1 = min(i0 + 1, in - 1);
	double f = src - (double)i0;
	l1 = (float)f;
	l0 = (float)(1.0 - f);
}

extern "C" __global__ void resize_bilinear(float *y, const float *x, i64 total, int h, int w, int oh, int ow,
		double sy, double sx) {
	GRID_LOOP(i, total) {
		int ox = (int)(i % ow);
		i64 t = i / ow;
		int oy = (int)(t % oh);
		i64 pl = t / oh;
		int y0, y1, x0, x1;
		float ly0, ly1, lx0, lx1;
		linear_tap(oy, h, sy, y0, y1, ly0, ly1);
		linear_tap(ox, w, sx, x0, x1, lx0, lx1);
		const float *r0 = x + (pl * h + y0) * w, *r1 = x + (pl * h + y1) * w;
		y[i] = ly0 * (lx0 * r0[x0] + lx1 * r0[x1]) + ly1 * (lx0 * r1[x0] + lx1 * r1[x1]);
	}
}

// first and one past the last output index (along an axis of out) that can read input
// index i: those whose source coordinate lies within one pixel of it
__device__ __forceinline__ void resize_cover(int i, int out, double scale, int &lo, int &hi) {
	lo = max((int)floor(((double)i - 0.5) / scale - 0.5) - 1, 0);
	hi = min((int)ceil(((double)i + 1.5) / scale - 0.5) + 2, out);
}

// The gradient of the bilinear resize: each input pixel gathers the outputs that read it.
extern "C" __global__ void resize_bilinear_backward(float *dx, const float *dy, i64 total, int h, int w,
		int oh, int ow, double sy, double sx) {
	GRID_LOOP(i, total) {
		int ix = (int)(i % w);
		i64 t = i / w;
		int iy = (int)(t % h);
		i64 pl = t / h;
		int r0, r1, c0, c1;
		resize_cover(iy, oh, sy, r0, r1);
		resize_cover(ix, ow, sx, c0, c1);
		const float *g = dy + pl * oh * ow;
		float acc = 0.0f;
		for (int oy = r0; oy < r1; oy++) {
			int y0, y1;
			float ly0, ly1;
			linear_tap(oy, h, sy, y0, y1, ly0, ly1);
			float wy = (y0 == iy ? ly0 : 0.0f) + (y1 == iy ? ly1 : 0.0f);
			if (wy == 0.0f) continue;
			for (int ox = c0; ox < c1; ox++) {
				int x0, x1;
				float lx0, lx1;
				linear_tap(ox, w, sx, x0, x1, lx0, lx1);
				float wx = (x0 == ix ? lx0 : 0.0f) + (x1 == ix ? lx1 : 0.0f);
				if (wx != 0.0f) acc += wx * (wy * g[(i64)oy * ow + ox]);
			}
		}
		dx[i] = acc;
	}
}

// Batch statistics of channel blockIdx.x over (n, h, w), one block per channel: sums in
// double of d = x − k and d², k the channel's first value, so that a mean large
// against the spread does not cancel the variance (as the CPU backend does). Thread 0
// writes the mean, 1/sqrt(var + eps), gamma·invStd and the running statistics. In eval
// the running statistics are used instead.
extern "C" __global__ void bn_stats(float *mean, float *invStd, float *scale, float *runMean, float *runVar,
		const float *x, const float *gamma, int n, int c, i64 hw, double eps, double momentum, int training) {
	int ch = blockIdx.x;
	double mu, var;
	if (training) {
		double k = (double)x[(i64)ch * hw];
		double a1 = 0.0, a2 = 0.0;
		i64 m = (i64)n * hw;
		for (i64 j = threadIdx.x; j < m; j += blockDim.x) {
			i64 img = j / hw, p = j - img * hw;
			double d = (double)x[(img * c + ch) * hw + p] - k;
			a1 += d;
			a2 += d * d;
		}
		a1 = block_sum(a1);
		a2 = block_sum(a2);
		if (threadIdx.x != 0) return;
		double fm = (double)m, d = a1 / fm;
		var = fmax(a2 / fm - d * d, 0.0);
		mu = k + d;
		runMean[ch] = (float)((1.0 - momentum) * (double)runMean[ch] + momentum * mu);
		runVar[ch] = (float)((1.0 - momentum) * (double)runVar[ch] + momentum * var * fm / (fm - 1.0));
	} else {
		if (threadIdx.x != 0) return;
		mu = (double)runMean[ch];
		var = (double)runVar[ch];
	}
	float is = (float)(1.0 / sqrt(var + eps));
	mean[ch] = (float)mu;
	invStd[ch] = is;
	scale[ch] = (float)((double)gamma[ch] * (double)is);
}

// y = (x − mean)·scale + beta, per channel
extern "C" __global__ void bn_apply(float *y, const float *x, const float *mean, const float *scale, const float *beta,
		i64 total, int c, i64 hw) {
	GRID_LOOP(i, total) {
		int ch = (int)((i / hw) % c);
		y[i] = (x[i] - mean[ch]) * scale[ch] + beta[ch];
	}
}

// Per channel, in double: dbeta = Σdy and dgamma = Σdy·(x − mean)·invStd; for batch
// statistics also the two coefficients of dx (mean(dy), and mean(dy·x̂)·invStd).
extern "C" __global__ void bn_grad_sums(float *dgamma, float *dbeta, float *coef, const float *x, const float *dy,
		const float *gamma, const float *mean, const float *invStd, int n, int c, i64 hw) {
	int ch = blockIdx.x;
	double mc = (double)mean[ch];
	double a1 = 0.0, a2 = 0.0;
	i64 m = (i64)n * hw;
	for (i64 j = threadIdx.x; j < m; j += blockDim.x) {
		i64 img = j / hw, p = j - img * hw;
		i64 k = (img * c + ch) * hw + p;
		double g = (double)dy[k];
		a1 += g;
		a2 += g * ((double)x[k] - mc);
	}
	a1 = block_sum(a1);
	a2 = block_sum(a2);
	if (threadIdx.x != 0) return;
	double s = (double)invStd[ch], fm = (double)m;
	dbeta[ch] = (float)a1;
	dgamma[ch] = (float)(a2 * s);
	coef[3 * ch] = (float)((double)gamma[ch] * s); // gamma·invStd
	coef[3 * ch + 1] = (float)(a1 / fm);           // mean(dy)
	coef[3 * ch + 2] = (float)(a2 * s * s / fm);   // mean(dy·x̂)·invStd
}

// dx = gamma·invStd·(dy − mean(dy) − (x − mean)·mean(dy·x̂)·invStd) with batch
// statistics, dy·gamma·invStd with frozen ones
extern "C" __global__ void bn_grad_apply(float *dx, const float *x, const float *dy, const float *mean, const float *coef,
		i64 total, int c, i64 hw, int training) {
	GRID_LOOP(i, total) {
		int ch = (int)((i / hw) % c);
		float a = coef[3 * ch];
		dx[i] = training ? a * (dy[i] - coef[3 * ch + 1] - (x[i] - mean[ch]) * coef[3 * ch + 2]) : dy[i] * a;
	}
}
`}
