package cuda

// CUDA C of grid sampling and of the fused photometric minimum (ops_sampling.go). The
// arithmetic follows tensor/cpu/gridsample.go and tensor/cpu/photometric.go: the
// window statistics of SSIM are summed in double, and the dissimilarity is formed
// without subtracting SSIM from 1 (see the CPU file for why).
//
// This first version favours being right over being fast: one thread per output
// pixel recomputes its 3x3 window statistics for every candidate and channel. The
// row-streaming, shared-memory version is the next step (the loss is the hot spot of a
// training step).

var samplingFamily = &family{name: "sampling", src: `
// clamp v to [0, hi]; inside reports whether it was strictly inside (a gradient flows)
__device__ __forceinline__ float clamp_coord(float v, float hi, bool &inside) {
	if (!(v > 0.0f)) { inside = false; return 0.0f; } // also NaN
	if (v >= hi) { inside = false; return hi; }
	inside = true;
	return v;
}

struct Tap { int x0, x1, y0, y1; float fx, fy; bool gx, gy; };

__device__ __forceinline__ Tap make_tap(float x, float y, int ws, int hs) {
	Tap t;
	x = clamp_coord(x, (float)(ws - 1), t.gx);
	y = clamp_coord(y, (float)(hs - 1), t.gy);
	float fx0 = floorf(x), fy0 = floorf(y);
	t.x0 = (int)fx0;
	t.y0 = (int)fy0;
	t.fx = x - fx0;
	t.fy = y - fy0;
	t.x1 = min(t.x0 + 1, ws - 1);
	t.y1 = min(t.y0 + 1, hs - 1);
	return t;
}

// one thread per (image, output pixel), all channels
extern "C" __global__ void grid_sample(float *out, const float *src, const float *xy, i64 total, int c, int hs, int ws, i64 hw) {
	GRID_LOOP(i, total) {
		i64 bi = i / hw, p = i - bi * hw;
		Tap t = make_tap(xy[2 * bi * hw + p], xy[(2 * bi + 1) * hw + p], ws, hs);
		float w00 = (1.0f - t.fx) * (1.0f - t.fy), w01 = t.fx * (1.0f - t.fy);
		float w10 = (1.0f - t.fx) * t.fy, w11 = t.fx * t.fy;
		i64 r0 = (i64)t.y0 * ws, r1 = (i64)t.y1 * ws;
		for (int ch = 0; ch < c; ch++) {
			const float *pl = src + (bi * c + ch) * hs * ws;
			out[(bi * c + ch) * hw + p] = w00 * pl[r0 + t.x0] + w01 * pl[r0 + t.x1] + w10 * pl[r1 + t.x0] + w11 * pl[r1 + t.x1];
		}
	}
}

// dsrc: each sample scatters its gradient onto its four source pixels (atomicAdd:
// neighbouring samples share pixels). dsrc must be zero on entry.
extern "C" __global__ void grid_sample_dsrc(float *dsrc, const float *xy, const float *dy, i64 total, int c, int hs, int ws, i64 hw) {
	GRID_LOOP(i, total) {
		i64 bi = i / hw, p = i - bi * hw;
		Tap t = make_tap(xy[2 * bi * hw + p], xy[(2 * bi + 1) * hw + p], ws, hs);
		i64 r0 = (i64)t.y0 * ws, r1 = (i64)t.y1 * ws;
		for (int ch = 0; ch < c; ch++) {
			float g = dy[(bi * c + ch) * hw + p];
			if (g == 0.0f) continue;
			float *d = dsrc + (bi * c + ch) * hs * ws;
			atomicAdd(d + r0 + t.x0, g * (1.0f - t.fx) * (1.0f - t.fy));
			atomicAdd(d + r0 + t.x1, g * t.fx * (1.0f - t.fy));
			atomicAdd(d + r1 + t.x0, g * (1.0f - t.fx) * t.fy);
			atomicAdd(d + r1 + t.x1, g * t.fx * t.fy);
		}
	}
}

// dcoords: the derivative of the bilinear form along x and y, summed over channels;
// 0 where the coordinate was clamped, as in PyTorch.
extern "C" __global__ void grid_sample_dcoords(float *dxy, const float *src, const float *xy, const float *dy,
		i64 total, int c, int hs, int ws, i64 hw) {
	GRID_LOOP(i, total) {
		i64 bi = i / hw, p = i - bi * hw;
		Tap t = make_tap(xy[2 * bi * hw + p], xy[(2 * bi + 1) * hw + p], ws, hs);
		float gx = 0.0f, gy = 0.0f;
		if (t.gx || t.gy) {
			i64 r0 = (i64)t.y0 * ws, r1 = (i64)t.y1 * ws;
			for (int ch = 0; ch < c; ch++) {
				float g = dy[(bi * c + ch) * hw + p];
				const float *pl = src + (bi * c + ch) * hs * ws;
				float v00 = pl[r0 + t.x0], v01 = pl[r0 + t.x1], v10 = pl[r1 + t.x0], v11 = pl[r1 + t.x1];
				gx += g * ((v01 - v00) * (1.0f - t.fy) + (v11 - v10) * t.fy);
				gy += g * ((v10 - v00) * (1.0f - t.fx) + (v11 - v01) * t.fx);
			}
		}
		dxy[2 * bi * hw + p] = t.gx ? gx : 0.0f;
		dxy[(2 * bi + 1) * hw + p] = t.gy ? gy : 0.0f;
	}
}

#define MAXCAND 16
struct Ptrs { const float *p[MAXCAND]; }; // the candidates, passed by value

#define SSIM_C1 (0.01 * 0.01)
#define SSIM_C2 (0.03 * 0.03)

// index i in [-1, n] of a 1-pixel reflection-padded axis, mapped into [0, n)
__device__ __forceinline__ int reflect1(int i, int n) {
	return i < 0 ? 1 : (i >= n ? n - 2 : i);
}

// The 3x3 window sums around (i, j) of candidate x and target y: Σx, Σy, Σx², Σy²,
// Σd and Σd² with d = x − y, in double.
struct Window { double sx, sy, sxx, syy, sd, sdd; };

__device__ __forceinline__ Window window_sums(const float *x, const float *y, int i, int j, int h, int w) {
	Window s = {0, 0, 0, 0, 0, 0};
	for (int di = -1; di <= 1; di++) {
		int r = reflect1(i + di, h) * w;
		for (int dj = -1; dj <= 1; dj++) {
			int k = r + reflect1(j + dj, w);
			double xv = (double)x[k], yv = (double)y[k], dv = xv - yv;
			s.sx += xv; s.sy += yv; s.sxx += xv * xv; s.syy += yv * yv; s.sd += dv; s.sdd += dv * dv;
		}
	}
	return s;
}

// clamp((1 − SSIM)/2, 0, 1) as (A·Q + P·E)/(2·D·E), which keeps its digits when SSIM
// is near 1 (P = μd², Q = var(d))
__device__ __forceinline__ double dissim(const Window &s) {
	double mx = s.sx / 9, my = s.sy / 9, md = s.sd / 9;
	double p = md * md;
	double a = 2 * mx * my + SSIM_C1;
	double e = s.sxx / 9 - mx * mx + s.syy / 9 - my * my + SSIM_C2;
	double v = (a * (s.sdd / 9 - p) + p * e) / (2 * (mx * mx + my * my + SSIM_C1) * e);
	return v < 0 ? 0 : (v > 1 ? 1 : v);
}

// The per-pixel minimum over k candidates (pointers in cands) of
// 0.85·mean_c dissim + 0.15·mean_c |y − x| (+ offset), and the first candidate reaching it.
extern "C" __global__ void photometric_min(float *minErr, int *argmin, const float *y, Ptrs cands,
		const float *offset, i64 total, int k, int c, int h, int w) {
	i64 hw = (i64)h * w;
	double ws = 0.85 / c, wl = 0.15 / c;
	GRID_LOOP(i, total) {
		i64 bi = i / hw, p = i - bi * hw;
		int pi = (int)(p / w), pj = (int)(p % w);
		double best = 0;
		int arg = 0;
		for (int kk = 0; kk < k; kk++) {
			double e = 0;
			for (int ch = 0; ch < c; ch++) {
				i64 pl = (bi * c + ch) * hw;
				const float *xp = cands.p[kk] + pl, *yp = y + pl;
				e += ws * dissim(window_sums(xp, yp, pi, pj, h, w)) + wl * fabs((double)xp[p] - (double)yp[p]);
			}
			if (offset) e += (double)offset[(bi * k + kk) * hw + p];
			if (kk == 0 || e < best) { best = e; arg = kk; } // the first minimum wins ties
		}
		minErr[i] = (float)best;
		argmin[i] = arg;
	}
}

// The backward pass, first half: for every pixel q and channel, the coefficients a, b, c
// of d e(q)/d x(p) = a + b·(x(p) − y(p)) + c·x(p) for the pixels p of q's window, for
// q's winning candidate, scaled by dMin(q) (zero where the winner needs no gradient, by
// bit kk of needMask, or where the clamp cut it). coef is (n, c, 3, h, w).
extern "C" __global__ void photometric_coef(float *coef, const float *y, Ptrs cands, const int *argmin,
		const float *dMin, int needMask, i64 total, int c, int h, int w) {
	i64 hw = (i64)h * w;
	double gScale = 0.85 / c * 2.0 / 9.0; // the channel weight and the 2/9 every box statistic's derivative shares
	GRID_LOOP(i, total) { // i over (n, c, h, w)
		i64 p = i % hw, t = i / hw;
		int ch = (int)(t % c);
		i64 bi = t / c;
		int kk = argmin[bi * hw + p];
		float g = dMin[bi * hw + p];
		float *out = coef + ((bi * c + ch) * 3) * hw + p;
		out[0] = out[hw] = out[2 * hw] = 0.0f;
		if (kk < 0 || kk >= MAXCAND || !((needMask >> kk) & 1) || g == 0.0f) continue;
		i64 pl = (bi * c + ch) * hw;
		Window s = window_sums(cands.p[kk] + pl, y + pl, (int)(p / w), (int)(p % w), h, w);
		double mx = s.sx / 9, my = s.sy / 9, md = s.sd / 9;
		double A = 2 * mx * my + SSIM_C1, D = mx * mx + my * my + SSIM_C1;
		double P = md * md, Q = s.sdd / 9 - P;
		double E = s.sxx / 9 - mx * mx + s.syy / 9 - my * my + SSIM_C2;
		double u = 1 / (2 * D * E), v = (A * Q + P * E) * u;
		if (!(v >= 0 && v <= 1)) continue; // PyTorch's clamp passes the gradient only inside
		double G = (double)g * gScale, invE = 2 * D * u, invD = 2 * E * u;
		out[0] = (float)(G * (u * (my * Q - A * md + md * E - P * mx) + v * mx * (invE - invD)));
		out[hw] = (float)(G * u * A);
		out[2 * hw] = (float)(G * (u * P - v * invE));
	}
}

// how many of the window rows (or columns) of centre q map onto p under reflection
__device__ __forceinline__ int multiplicity(int p, int q, int n) {
	int m = 0;
	for (int d = -1; d <= 1; d++) m += reflect1(q + d, n) == p;
	return m;
}

// The backward pass, second half: the gradient of candidate kk at every pixel p
// gathers the coefficients of the window centres q around it that candidate kk won,
// counted as often as p appears in q's reflected window, plus the L1 term at p.
extern "C" __global__ void photometric_grad(float *grad, const float *x, const float *y, const float *coef,
		const int *argmin, const float *dMin, i64 total, int kk, int c, int h, int w, float wl) {
	i64 hw = (i64)h * w;
	GRID_LOOP(i, total) { // i over (n, c, h, w)
		i64 p = i % hw, t = i / hw;
		int ch = (int)(t % c);
		i64 bi = t / c;
		int pi = (int)(p / w), pj = (int)(p % w);
		float xv = x[i], dv = xv - y[i];
		const float *cf = coef + ((bi * c + ch) * 3) * hw;
		const int *am = argmin + bi * hw;
		float acc = 0.0f;
		for (int qi = max(pi - 1, 0); qi <= min(pi + 1, h - 1); qi++) {
			int mr = multiplicity(pi, qi, h);
			if (mr == 0) continue;
			for (int qj = max(pj - 1, 0); qj <= min(pj + 1, w - 1); qj++) {
				int m = mr * multiplicity(pj, qj, w);
				i64 q = (i64)qi * w + qj;
				if (m == 0 || am[q] != kk) continue;
				acc += (float)m * (cf[q] + dv * cf[hw + q] + xv * cf[2 * hw + q]);
			}
		}
		if (am[p] == kk) {
			float g = dMin[bi * hw + p] * wl;
			if (dv > 0.0f) acc += g;
			else if (dv < 0.0f) acc -= g;
		}
		grad[i] = acc;
	}
}
`}
