package cpu

// The cgo part of the backend: single-precision GEMM from OpenBLAS.
//
// Building needs only Debian's (or Ubuntu's, JetPack's) libopenblas-dev, which puts
// libopenblas.so into the linker's default multiarch directory (/usr/lib/<triplet>,
// through update-alternatives) on amd64 and arm64 alike. We deliberately include no
// header: Debian installs cblas.h under /usr/include/<triplet>/ as an alternatives link
// that another BLAS (netlib, BLIS, ATLAS) may own, and those headers lack the OpenBLAS
// extension openblas_set_num_threads. The two prototypes below are fixed by the CBLAS
// standard and by OpenBLAS's ABI (blasint is a 32-bit int in libopenblas.so; the 64-bit
// interface is the separate libopenblas64), and CBLAS's enum arguments are passed as
// ints on every Linux ABI, so declaring them here is exact.

/*
#cgo LDFLAGS: -lopenblas

#include <stdlib.h>
#include <string.h>

void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb,
	float beta, float *c, int ldc);
void openblas_set_num_threads(int n);
char *openblas_get_corename(void);
void gotoblas_init(void);
void gotoblas_quit(void);

// edgedepth_blas_setup makes OpenBLAS single-threaded and, on x86-64, repairs its
// choice of kernels. OpenBLAS picks them from a table of CPU models, and for a model
// missing from its table it may fall back to its SSE3 "Prescott" kernels: Debian 12's
// 0.3.21 does so on the project's Xeon development machines (cpuid family 6, model
// 0xCF), where its sgemm then runs at about 25 GFLOP/s per core instead of about 100
// with its AVX-512 ("SkylakeX") kernels. The library reads OPENBLAS_CORETYPE only while
// it initialises, before main, so in that case we set the variable to the best kernel
// set the CPU's features allow (__builtin_cpu_supports checks the OS's support through
// xgetbv as well), shut OpenBLAS down and initialise it again: gotoblas_quit and
// gotoblas_init are its own exported destructor and constructor. A user's
// OPENBLAS_CORETYPE is left alone. This runs once, before our first sgemm, when no
// other OpenBLAS call can be in flight.
static const char *edgedepth_blas_setup(void) {
#if defined(__x86_64__)
	if (getenv("OPENBLAS_CORETYPE") == NULL && strcmp(openblas_get_corename(), "Prescott") == 0) {
		const char *core = NULL;
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
			__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")) {
			core = "SkylakeX";
		} else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
			core = "Haswell";
		} else if (__builtin_cpu_supports("avx")) {
			core = "Sandybridge";
		}
		if (core != NULL) {
			setenv("OPENBLAS_CORETYPE", core, 0);
			gotoblas_quit();
			gotoblas_init();
			unsetenv("OPENBLAS_CORETYPE"); // child processes choose for themselves
		}
	}
#endif
	openblas_set_num_threads(1);
	return openblas_get_corename();
}
*/
import "C"

import (
	"fmt"
	"math"
	"sync"
)

// CBLAS enum values (cblas.h).
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

// Threading: the backend parallelises in Go (over the images, groups, channel blocks and
// row tiles of a convolution; over the batch, or the rows or columns of one product,
// in MatMul) and OpenBLAS runs single-threaded, on the calling goroutine's thread.
// Measured at Monodepth2's shapes (conv_bench_test.go, batch 2 at 192×640, 2 cores)
// this beat letting OpenBLAS thread each sgemm with the rest serial: forward and
// backward of the decoder's 16→16 layer at 192×640 took 48 ms against 86 to 92 ms,
// 96→32 at 96×320 92 ms against 127 to 147 ms, ResNet's conv1 29 to 34 ms against
// 38 ms, and only the 512-channel layer at 6×20 was even (30 to 36 ms either way).
// Going wide in Go also parallelises im2col, col2im and the partial sums, which
// OpenBLAS cannot; it keeps OpenBLAS's pool idle (its workers spin after every threaded
// call, taking the cores from the Go loops of the ops between convolutions); and a
// single-threaded OpenBLAS is safe to call from several goroutines at once, as the
// backend's ops may be.
//
// blasSetup applies this and picks OpenBLAS's kernels (see edgedepth_blas_setup); it
// returns the name of the kernel set in use.
var blasSetup = sync.OnceValue(func() string { return C.GoString(C.edgedepth_blas_setup()) })

// sgemm computes C = alpha·op(A)·op(B) + beta·C on row-major matrices: op(A) is m×k,
// op(B) is k×n, C is m×n; lda, ldb and ldc are the row strides of A, B and C as stored
// (A is k×m when transA). The slices start at the matrices' first elements. It checks
// that every matrix lies inside its slice, since C code cannot: a violation is a
// programmer error and panics.
//
// The slices are passed to C for the duration of the call only (they hold no Go
// pointers, which the cgo pointer rules allow); OpenBLAS keeps nothing.
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	checkMatrix("C", c, m, n, ldc)
	if k == 0 || alpha == 0 {
		// Nothing to multiply: C = beta·C. OpenBLAS would do the same, but its argument
		// checks reject the leading dimensions of empty matrices.
		scaleMatrix(c, m, n, ldc, beta)
		return
	}
	ra, ca := m, k
	ta := C.int(cblasNoTrans)
	if transA {
		ra, ca = k, m
		ta = cblasTrans
	}
	rb, cb := k, n
	tb := C.int(cblasNoTrans)
	if transB {
		rb, cb = n, k
		tb = cblasTrans
	}
	checkMatrix("A", a, ra, ca, lda)
	checkMatrix("B", b, rb, cb, ldb)
	for _, d := range [...]int{m, n, k, lda, ldb, ldc} {
		if d > math.MaxInt32 {
			panic(fmt.Sprintf("cpu: sgemm dimension %d does not fit OpenBLAS's 32-bit int", d))
		}
	}
	blasSetup()
	C.cblas_sgemm(cblasRowMajor, ta, tb, C.int(m), C.int(n), C.int(k),
		C.float(alpha), (*C.float)(&a[0]), C.int(lda), (*C.float)(&b[0]), C.int(ldb),
		C.float(beta), (*C.float)(&c[0]), C.int(ldc))
}

// checkMatrix panics unless a rows×cols matrix with row stride ld fits in s.
func checkMatrix(name string, s []float32, rows, cols, ld int) {
	if ld < max(1, cols) || len(s) < (rows-1)*ld+cols {
		panic(fmt.Sprintf("cpu: sgemm matrix %s (%d×%d, stride %d) does not fit its %d elements", name, rows, cols, ld, len(s)))
	}
}

// scaleMatrix sets C = beta·C (beta 0 clears it, whatever it held).
func scaleMatrix(c []float32, m, n, ldc int, beta float32) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}
