package cuda

// The one file with cgo. It declares the few types and functions of the CUDA driver
// API, NVRTC, cuBLAS and cuDNN that the backend uses, from their documented ABI, so
// that no CUDA header or toolkit is needed to build; the libraries are opened with
// dlopen at run time and their functions called through pointers found with dlsym.
// Everything else in the package is plain Go over the thin wrappers below, which turn
// every status code into an error through check (status.go).

/*
#cgo linux LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr; // CUdeviceptr_v2 on every 64-bit platform
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef int nvrtcResult;
typedef void *nvrtcProgram;
typedef int cublasStatus_t;
typedef void *cublasHandle_t;
typedef int cudnnStatus_t;
typedef void *cudnnHandle_t;
typedef void *cudnnTensorDescriptor_t;
typedef void *cudnnFilterDescriptor_t;
typedef void *cudnnConvolutionDescriptor_t;

// cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionBwdDataAlgoPerf_t and
// cudnnConvolutionBwdFilterAlgoPerf_t (cuDNN 7 to 9) share this layout: the algorithm
// (an enum), its status, its time in milliseconds (Find) or -1 (heuristics), its
// workspace in bytes, cudnnDeterminism_t, cudnnMathType_t and three reserved ints.
typedef struct {
	int algo;
	cudnnStatus_t status;
	float time;
	size_t memory;
	int determinism;
	int mathType;
	int reserved[3];
} edd_conv_perf;

// Returned by a wrapper whose function was not found in its library.
#define EDD_NOT_LOADED (-10000)

// --- driver API
static CUresult (*p_cuInit)(unsigned int);
static CUresult (*p_cuDriverGetVersion)(int *);
static CUresult (*p_cuDeviceGetCount)(int *);
static CUresult (*p_cuDeviceGet)(CUdevice *, int);
static CUresult (*p_cuDeviceGetName)(char *, int, CUdevice);
static CUresult (*p_cuDeviceGetAttribute)(int *, int, CUdevice);
static CUresult (*p_cuDeviceTotalMem)(size_t *, CUdevice);
static CUresult (*p_cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
static CUresult (*p_cuDevicePrimaryCtxRelease)(CUdevice);
static CUresult (*p_cuCtxSetCurrent)(CUcontext);
static CUresult (*p_cuCtxSynchronize)(void);
static CUresult (*p_cuStreamCreate)(CUstream *, unsigned int);
static CUresult (*p_cuStreamDestroy)(CUstream);
static CUresult (*p_cuStreamSynchronize)(CUstream);
static CUresult (*p_cuMemAlloc)(CUdeviceptr *, size_t);
static CUresult (*p_cuMemFree)(CUdeviceptr);
static CUresult (*p_cuMemGetInfo)(size_t *, size_t *);
static CUresult (*p_cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
static CUresult (*p_cuMemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
static CUresult (*p_cuMemcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
static CUresult (*p_cuMemsetD32Async)(CUdeviceptr, unsigned int, size_t, CUstream);
static CUresult (*p_cuModuleLoadData)(CUmodule *, const void *);
static CUresult (*p_cuModuleUnload)(CUmodule);
static CUresult (*p_cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
static CUresult (*p_cuLaunchKernel)(CUfunction, unsigned int, unsigned int, unsigned int,
	unsigned int, unsigned int, unsigned int, unsigned int, CUstream, void **, void **);

// --- NVRTC
static nvrtcResult (*p_nvrtcVersion)(int *, int *);
static nvrtcResult (*p_nvrtcGetNumSupportedArchs)(int *);
static nvrtcResult (*p_nvrtcGetSupportedArchs)(int *);
static nvrtcResult (*p_nvrtcCreateProgram)(nvrtcProgram *, const char *, const char *, int,
	const char *const *, const char *const *);
static nvrtcResult (*p_nvrtcCompileProgram)(nvrtcProgram, int, const char *const *);
static nvrtcResult (*p_nvrtcGetProgramLogSize)(nvrtcProgram, size_t *);
static nvrtcResult (*p_nvrtcGetProgramLog)(nvrtcProgram, char *);
static nvrtcResult (*p_nvrtcGetCUBINSize)(nvrtcProgram, size_t *);
static nvrtcResult (*p_nvrtcGetCUBIN)(nvrtcProgram, char *);
static nvrtcResult (*p_nvrtcGetPTXSize)(nvrtcProgram, size_t *);
static nvrtcResult (*p_nvrtcGetPTX)(nvrtcProgram, char *);
static nvrtcResult (*p_nvrtcDestroyProgram)(nvrtcProgram *);

// --- cuBLAS
static cublasStatus_t (*p_cublasCreate)(cublasHandle_t *);
static cublasStatus_t (*p_cublasDestroy)(cublasHandle_t);
static cublasStatus_t (*p_cublasSetStream)(cublasHandle_t, CUstream);
static cublasStatus_t (*p_cublasSetMathMode)(cublasHandle_t, int);
static cublasStatus_t (*p_cublasGetProperty)(int, int *);
static cublasStatus_t (*p_cublasSgemmStridedBatched)(cublasHandle_t, int, int, int, int, int,
	const float *, const float *, int, long long, const float *, int, long long,
	const float *, float *, int, long long, int);

// --- cuDNN: its version, and the legacy convolution API (cudnn_cnn / cudnn_ops,
// cuDNN 8 and 9). Descriptors are opaque pointers; enums are ints.
static size_t (*p_cudnnGetVersion)(void);
static cudnnStatus_t (*p_cudnnCreate)(cudnnHandle_t *);
static cudnnStatus_t (*p_cudnnDestroy)(cudnnHandle_t);
static cudnnStatus_t (*p_cudnnSetStream)(cudnnHandle_t, CUstream);
static cudnnStatus_t (*p_cudnnCreateTensorDescriptor)(cudnnTensorDescriptor_t *);
static cudnnStatus_t (*p_cudnnSetTensor4dDescriptor)(cudnnTensorDescriptor_t, int format, int dataType,
	int n, int c, int h, int w);
static cudnnStatus_t (*p_cudnnDestroyTensorDescriptor)(cudnnTensorDescriptor_t);
static cudnnStatus_t (*p_cudnnCreateFilterDescriptor)(cudnnFilterDescriptor_t *);
// Note the order: the data type comes before the format here, after it for tensors.
static cudnnStatus_t (*p_cudnnSetFilter4dDescriptor)(cudnnFilterDescriptor_t, int dataType, int format,
	int k, int c, int h, int w);
static cudnnStatus_t (*p_cudnnDestroyFilterDescriptor)(cudnnFilterDescriptor_t);
static cudnnStatus_t (*p_cudnnCreateConvolutionDescriptor)(cudnnConvolutionDescriptor_t *);
static cudnnStatus_t (*p_cudnnSetConvolution2dDescriptor)(cudnnConvolutionDescriptor_t, int padH, int padW,
	int strideH, int strideW, int dilationH, int dilationW, int mode, int computeType);
static cudnnStatus_t (*p_cudnnSetConvolutionGroupCount)(cudnnConvolutionDescriptor_t, int);
static cudnnStatus_t (*p_cudnnSetConvolutionMathType)(cudnnConvolutionDescriptor_t, int);
static cudnnStatus_t (*p_cudnnDestroyConvolutionDescriptor)(cudnnConvolutionDescriptor_t);
// Forward: (x, w) -> y.
static cudnnStatus_t (*p_cudnnGetConvolutionForwardAlgorithm_v7)(cudnnHandle_t, cudnnTensorDescriptor_t,
	cudnnFilterDescriptor_t, cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int, int *, edd_conv_perf *);
static cudnnStatus_t (*p_cudnnFindConvolutionForwardAlgorithmEx)(cudnnHandle_t, cudnnTensorDescriptor_t, const void *,
	cudnnFilterDescriptor_t, const void *, cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, void *,
	int, int *, edd_conv_perf *, void *, size_t);
static cudnnStatus_t (*p_cudnnGetConvolutionForwardWorkspaceSize)(cudnnHandle_t, cudnnTensorDescriptor_t,
	cudnnFilterDescriptor_t, cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int, size_t *);
static cudnnStatus_t (*p_cudnnConvolutionForward)(cudnnHandle_t, const void *alpha, cudnnTensorDescriptor_t, const void *,
	cudnnFilterDescriptor_t, const void *, cudnnConvolutionDescriptor_t, int, void *, size_t, const void *beta,
	cudnnTensorDescriptor_t, void *);
// Backward data: (w, dy) -> dx.
static cudnnStatus_t (*p_cudnnGetConvolutionBackwardDataAlgorithm_v7)(cudnnHandle_t, cudnnFilterDescriptor_t,
	cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int, int *, edd_conv_perf *);
static cudnnStatus_t (*p_cudnnFindConvolutionBackwardDataAlgorithmEx)(cudnnHandle_t, cudnnFilterDescriptor_t, const void *,
	cudnnTensorDescriptor_t, const void *, cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, void *,
	int, int *, edd_conv_perf *, void *, size_t);
static cudnnStatus_t (*p_cudnnGetConvolutionBackwardDataWorkspaceSize)(cudnnHandle_t, cudnnFilterDescriptor_t,
	cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int, size_t *);
static cudnnStatus_t (*p_cudnnConvolutionBackwardData)(cudnnHandle_t, const void *alpha, cudnnFilterDescriptor_t, const void *,
	cudnnTensorDescriptor_t, const void *, cudnnConvolutionDescriptor_t, int, void *, size_t, const void *beta,
	cudnnTensorDescriptor_t, void *);
// Backward filter: (x, dy) -> dw.
static cudnnStatus_t (*p_cudnnGetConvolutionBackwardFilterAlgorithm_v7)(cudnnHandle_t, cudnnTensorDescriptor_t,
	cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t, cudnnFilterDescriptor_t, int, int *, edd_conv_perf *);
static cudnnStatus_t (*p_cudnnFindConvolutionBackwardFilterAlgorithmEx)(cudnnHandle_t, cudnnTensorDescriptor_t, const void *,
	cudnnTensorDescriptor_t, const void *, cudnnConvolutionDescriptor_t, cudnnFilterDescriptor_t, void *,
	int, int *, edd_conv_perf *, void *, size_t);
static cudnnStatus_t (*p_cudnnGetConvolutionBackwardFilterWorkspaceSize)(cudnnHandle_t, cudnnTensorDescriptor_t,
	cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t, cudnnFilterDescriptor_t, int, size_t *);
static cudnnStatus_t (*p_cudnnConvolutionBackwardFilter)(cudnnHandle_t, const void *alpha, cudnnTensorDescriptor_t, const void *,
	cudnnTensorDescriptor_t, const void *, cudnnConvolutionDescriptor_t, int, void *, size_t, const void *beta,
	cudnnFilterDescriptor_t, void *);
// Bias gradient: dy -> db (1, O, 1, 1).
static cudnnStatus_t (*p_cudnnConvolutionBackwardBias)(cudnnHandle_t, const void *alpha, cudnnTensorDescriptor_t, const void *,
	const void *beta, cudnnTensorDescriptor_t, void *);

// A symbol: its slot, the names to try in order (the versioned name first, separated
// by '|'), and whether the library is unusable without it.
typedef struct {
	void **slot;
	const char *names;
	int required;
} edd_sym;

#define SYM(p, names, req) {(void **)&p, names, req}

static edd_sym edd_syms_cuda[] = {
	SYM(p_cuInit, "cuInit", 1),
	SYM(p_cuDriverGetVersion, "cuDriverGetVersion", 1),
	SYM(p_cuDeviceGetCount, "cuDeviceGetCount", 1),
	SYM(p_cuDeviceGet, "cuDeviceGet", 1),
	SYM(p_cuDeviceGetName, "cuDeviceGetName", 1),
	SYM(p_cuDeviceGetAttribute, "cuDeviceGetAttribute", 1),
	SYM(p_cuDeviceTotalMem, "cuDeviceTotalMem_v2", 1),
	SYM(p_cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", 1),
	SYM(p_cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2|cuDevicePrimaryCtxRelease", 1),
	SYM(p_cuCtxSetCurrent, "cuCtxSetCurrent", 1),
	SYM(p_cuCtxSynchronize, "cuCtxSynchronize", 1),
	SYM(p_cuStreamCreate, "cuStreamCreate", 1),
	SYM(p_cuStreamDestroy, "cuStreamDestroy_v2|cuStreamDestroy", 1),
	SYM(p_cuStreamSynchronize, "cuStreamSynchronize", 1),
	SYM(p_cuMemAlloc, "cuMemAlloc_v2", 1),
	SYM(p_cuMemFree, "cuMemFree_v2", 1),
	SYM(p_cuMemGetInfo, "cuMemGetInfo_v2", 1),
	SYM(p_cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2", 1),
	SYM(p_cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2", 1),
	SYM(p_cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2", 1),
	SYM(p_cuMemsetD32Async, "cuMemsetD32Async", 1),
	SYM(p_cuModuleLoadData, "cuModuleLoadData", 1),
	SYM(p_cuModuleUnload, "cuModuleUnload", 1),
	SYM(p_cuModuleGetFunction, "cuModuleGetFunction", 1),
	SYM(p_cuLaunchKernel, "cuLaunchKernel", 1),
};

static edd_sym edd_syms_nvrtc[] = {
	SYM(p_nvrtcVersion, "nvrtcVersion", 1),
	SYM(p_nvrtcGetNumSupportedArchs, "nvrtcGetNumSupportedArchs", 0),
	SYM(p_nvrtcGetSupportedArchs, "nvrtcGetSupportedArchs", 0),
	SYM(p_nvrtcCreateProgram, "nvrtcCreateProgram", 1),
	SYM(p_nvrtcCompileProgram, "nvrtcCompileProgram", 1),
	SYM(p_nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize", 1),
	SYM(p_nvrtcGetProgramLog, "nvrtcGetProgramLog", 1),
	SYM(p_nvrtcGetCUBINSize, "nvrtcGetCUBINSize", 0),
	SYM(p_nvrtcGetCUBIN, "nvrtcGetCUBIN", 0),
	SYM(p_nvrtcGetPTXSize, "nvrtcGetPTXSize", 1),
	SYM(p_nvrtcGetPTX, "nvrtcGetPTX", 1),
	SYM(p_nvrtcDestroyProgram, "nvrtcDestroyProgram", 1),
};

static edd_sym edd_syms_cublas[] = {
	SYM(p_cublasCreate, "cublasCreate_v2", 1),
	SYM(p_cublasDestroy, "cublasDestroy_v2", 1),
	SYM(p_cublasSetStream, "cublasSetStream_v2", 1),
	SYM(p_cublasSetMathMode, "cublasSetMathMode", 1),
	SYM(p_cublasGetProperty, "cublasGetProperty", 0),
	SYM(p_cublasSgemmStridedBatched, "cublasSgemmStridedBatched", 1),
};

// Only the version is required: a cuDNN without the legacy convolution API (or an
// older one without the _v7 queries) still loads and reports itself, and convolutions
// stay on im2col (edd_has_cudnn_conv).
static edd_sym edd_syms_cudnn[] = {
	SYM(p_cudnnGetVersion, "cudnnGetVersion", 1),
	SYM(p_cudnnCreate, "cudnnCreate", 0),
	SYM(p_cudnnDestroy, "cudnnDestroy", 0),
	SYM(p_cudnnSetStream, "cudnnSetStream", 0),
	SYM(p_cudnnCreateTensorDescriptor, "cudnnCreateTensorDescriptor", 0),
	SYM(p_cudnnSetTensor4dDescriptor, "cudnnSetTensor4dDescriptor", 0),
	SYM(p_cudnnDestroyTensorDescriptor, "cudnnDestroyTensorDescriptor", 0),
	SYM(p_cudnnCreateFilterDescriptor, "cudnnCreateFilterDescriptor", 0),
	SYM(p_cudnnSetFilter4dDescriptor, "cudnnSetFilter4dDescriptor", 0),
	SYM(p_cudnnDestroyFilterDescriptor, "cudnnDestroyFilterDescriptor", 0),
	SYM(p_cudnnCreateConvolutionDescriptor, "cudnnCreateConvolutionDescriptor", 0),
	SYM(p_cudnnSetConvolution2dDescriptor, "cudnnSetConvolution2dDescriptor", 0),
	SYM(p_cudnnSetConvolutionGroupCount, "cudnnSetConvolutionGroupCount", 0),
	SYM(p_cudnnSetConvolutionMathType, "cudnnSetConvolutionMathType", 0),
	SYM(p_cudnnDestroyConvolutionDescriptor, "cudnnDestroyConvolutionDescriptor", 0),
	SYM(p_cudnnGetConvolutionForwardAlgorithm_v7, "cudnnGetConvolutionForwardAlgorithm_v7", 0),
	SYM(p_cudnnFindConvolutionForwardAlgorithmEx, "cudnnFindConvolutionForwardAlgorithmEx", 0),
	SYM(p_cudnnGetConvolutionForwardWorkspaceSize, "cudnnGetConvolutionForwardWorkspaceSize", 0),
	SYM(p_cudnnConvolutionForward, "cudnnConvolutionForward", 0),
	SYM(p_cudnnGetConvolutionBackwardDataAlgorithm_v7, "cudnnGetConvolutionBackwardDataAlgorithm_v7", 0),
	SYM(p_cudnnFindConvolutionBackwardDataAlgorithmEx, "cudnnFindConvolutionBackwardDataAlgorithmEx", 0),
	SYM(p_cudnnGetConvolutionBackwardDataWorkspaceSize, "cudnnGetConvolutionBackwardDataWorkspaceSize", 0),
	SYM(p_cudnnConvolutionBackwardData, "cudnnConvolutionBackwardData", 0),
	SYM(p_cudnnGetConvolutionBackwardFilterAlgorithm_v7, "cudnnGetConvolutionBackwardFilterAlgorithm_v7", 0),
	SYM(p_cudnnFindConvolutionBackwardFilterAlgorithmEx, "cudnnFindConvolutionBackwardFilterAlgorithmEx", 0),
	SYM(p_cudnnGetConvolutionBackwardFilterWorkspaceSize, "cudnnGetConvolutionBackwardFilterWorkspaceSize", 0),
	SYM(p_cudnnConvolutionBackwardFilter, "cudnnConvolutionBackwardFilter", 0),
	SYM(p_cudnnConvolutionBackwardBias, "cudnnConvolutionBackwardBias", 0),
};

static edd_sym *edd_table(int lib, int *n) {
	switch (lib) {
	case 0: *n = sizeof edd_syms_cuda / sizeof edd_syms_cuda[0]; return edd_syms_cuda;
	case 1: *n = sizeof edd_syms_nvrtc / sizeof edd_syms_nvrtc[0]; return edd_syms_nvrtc;
	case 2: *n = sizeof edd_syms_cublas / sizeof edd_syms_cublas[0]; return edd_syms_cublas;
	case 3: *n = sizeof edd_syms_cudnn / sizeof edd_syms_cudnn[0]; return edd_syms_cudnn;
	}
	*n = 0;
	return NULL;
}

// edd_bind fills library lib's slots from handle h. It returns -1, or the index of the
// first required symbol none of whose names was found (nothing is bound then).
static int edd_bind(int lib, void *h) {
	int n;
	edd_sym *t = edd_table(lib, &n);
	void *found[64];
	for (int i = 0; i < n; i++) {
		found[i] = NULL;
		char buf[128];
		const char *s = t[i].names;
		while (*s && !found[i]) {
			int k = 0;
			while (*s && *s != '|' && k < 127) buf[k++] = *s++;
			buf[k] = 0;
			if (*s == '|') s++;
			found[i] = dlsym(h, buf);
		}
		if (!found[i] && t[i].required) return i;
	}
	for (int i = 0; i < n; i++) *t[i].slot = found[i];
	return -1;
}

static const char *edd_sym_names(int lib, int i) {
	int n;
	edd_sym *t = edd_table(lib, &n);
	return i >= 0 && i < n ? t[i].names : "";
}

// edd_path is the file a loaded symbol lives in, or "".
static const char *edd_path(void *sym) {
	Dl_info info;
	if (sym && dladdr(sym, &info) && info.dli_fname) return info.dli_fname;
	return "";
}

static void *edd_first_sym(int lib) {
	int n;
	edd_sym *t = edd_table(lib, &n);
	return n > 0 ? *t[0].slot : NULL;
}

#define CALL(p, ...) (p ? p(__VA_ARGS__) : EDD_NOT_LOADED)

static CUresult e_cuInit(void) { return CALL(p_cuInit, 0); }
static CUresult e_cuDriverGetVersion(int *v) { return CALL(p_cuDriverGetVersion, v); }
static CUresult e_cuDeviceGetCount(int *n) { return CALL(p_cuDeviceGetCount, n); }
static CUresult e_cuDeviceGet(CUdevice *d, int i) { return CALL(p_cuDeviceGet, d, i); }
static CUresult e_cuDeviceGetName(char *s, int n, CUdevice d) { return CALL(p_cuDeviceGetName, s, n, d); }
static CUresult e_cuDeviceGetAttribute(int *v, int a, CUdevice d) { return CALL(p_cuDeviceGetAttribute, v, a, d); }
static CUresult e_cuDeviceTotalMem(size_t *v, CUdevice d) { return CALL(p_cuDeviceTotalMem, v, d); }
static CUresult e_cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { return CALL(p_cuDevicePrimaryCtxRetain, c, d); }
static CUresult e_cuDevicePrimaryCtxRelease(CUdevice d) { return CALL(p_cuDevicePrimaryCtxRelease, d); }
static CUresult e_cuCtxSetCurrent(CUcontext c) { return CALL(p_cuCtxSetCurrent, c); }
static CUresult e_cuCtxSynchronize(void) { return p_cuCtxSynchronize ? p_cuCtxSynchronize() : EDD_NOT_LOADED; }
static CUresult e_cuStreamCreate(CUstream *s) { return CALL(p_cuStreamCreate, s, 0); }
static CUresult e_cuStreamDestroy(CUstream s) { return CALL(p_cuStreamDestroy, s); }
static CUresult e_cuStreamSynchronize(CUstream s) { return CALL(p_cuStreamSynchronize, s); }
static CUresult e_cuMemAlloc(CUdeviceptr *p, size_t n) { return CALL(p_cuMemAlloc, p, n); }
static CUresult e_cuMemFree(CUdeviceptr p) { return CALL(p_cuMemFree, p); }
static CUresult e_cuMemGetInfo(size_t *f, size_t *t) { return CALL(p_cuMemGetInfo, f, t); }
static CUresult e_cuMemcpyHtoDAsync(CUdeviceptr d, const void *s, size_t n, CUstream st) { return CALL(p_cuMemcpyHtoDAsync, d, s, n, st); }
static CUresult e_cuMemcpyDtoHAsync(void *d, CUdeviceptr s, size_t n, CUstream st) { return CALL(p_cuMemcpyDtoHAsync, d, s, n, st); }
static CUresult e_cuMemcpyDtoDAsync(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) { return CALL(p_cuMemcpyDtoDAsync, d, s, n, st); }
static CUresult e_cuMemsetD32Async(CUdeviceptr d, unsigned int v, size_t n, CUstream st) { return CALL(p_cuMemsetD32Async, d, v, n, st); }
static CUresult e_cuModuleLoadData(CUmodule *m, const void *img) { return CALL(p_cuModuleLoadData, m, img); }
static CUresult e_cuModuleUnload(CUmodule m) { return CALL(p_cuModuleUnload, m); }
static CUresult e_cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) { return CALL(p_cuModuleGetFunction, f, m, name); }

// e_launch passes the kernel's parameters as one packed buffer (the driver's
// CU_LAUNCH_PARAM_BUFFER_POINTER form), laid out by Go (launch.go); the driver copies it
// before returning.
static CUresult e_launch(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
		unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared, CUstream s,
		void *args, size_t size) {
	if (!p_cuLaunchKernel) return EDD_NOT_LOADED;
	void *extra[] = {(void *)1, args, (void *)2, &size, (void *)0};
	return p_cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shared, s, NULL, extra);
}

static nvrtcResult e_nvrtcVersion(int *ma, int *mi) { return CALL(p_nvrtcVersion, ma, mi); }
static nvrtcResult e_nvrtcGetNumSupportedArchs(int *n) { return CALL(p_nvrtcGetNumSupportedArchs, n); }
static nvrtcResult e_nvrtcGetSupportedArchs(int *a) { return CALL(p_nvrtcGetSupportedArchs, a); }
static nvrtcResult e_nvrtcCreateProgram(nvrtcProgram *p, const char *src, const char *name) {
	return CALL(p_nvrtcCreateProgram, p, src, name, 0, NULL, NULL);
}
static nvrtcResult e_nvrtcCompileProgram(nvrtcProgram p, int n, char **opts) {
	return CALL(p_nvrtcCompileProgram, p, n, (const char *const *)opts);
}
static nvrtcResult e_nvrtcGetProgramLogSize(nvrtcProgram p, size_t *n) { return CALL(p_nvrtcGetProgramLogSize, p, n); }
static nvrtcResult e_nvrtcGetProgramLog(nvrtcProgram p, char *s) { return CALL(p_nvrtcGetProgramLog, p, s); }
static nvrtcResult e_nvrtcGetCUBINSize(nvrtcProgram p, size_t *n) { return CALL(p_nvrtcGetCUBINSize, p, n); }
static nvrtcResult e_nvrtcGetCUBIN(nvrtcProgram p, char *s) { return CALL(p_nvrtcGetCUBIN, p, s); }
static nvrtcResult e_nvrtcGetPTXSize(nvrtcProgram p, size_t *n) { return CALL(p_nvrtcGetPTXSize, p, n); }
static nvrtcResult e_nvrtcGetPTX(nvrtcProgram p, char *s) { return CALL(p_nvrtcGetPTX, p, s); }
static nvrtcResult e_nvrtcDestroyProgram(nvrtcProgram *p) { return CALL(p_nvrtcDestroyProgram, p); }

static cublasStatus_t e_cublasCreate(cublasHandle_t *h) { return CALL(p_cublasCreate, h); }
static cublasStatus_t e_cublasDestroy(cublasHandle_t h) { return CALL(p_cublasDestroy, h); }
static cublasStatus_t e_cublasSetStream(cublasHandle_t h, CUstream s) { return CALL(p_cublasSetStream, h, s); }
static cublasStatus_t e_cublasSetMathMode(cublasHandle_t h, int m) { return CALL(p_cublasSetMathMode, h, m); }
static cublasStatus_t e_cublasGetProperty(int t, int *v) { return CALL(p_cublasGetProperty, t, v); }
static cublasStatus_t e_cublasSgemmStridedBatched(cublasHandle_t h, int ta, int tb, int m, int n, int k,
		float alpha, CUdeviceptr a, int lda, long long sa, CUdeviceptr b, int ldb, long long sb,
		float beta, CUdeviceptr c, int ldc, long long sc, int batch) {
	return CALL(p_cublasSgemmStridedBatched, h, ta, tb, m, n, k, &alpha,
		(const float *)(uintptr_t)a, lda, sa, (const float *)(uintptr_t)b, ldb, sb,
		&beta, (float *)(uintptr_t)c, ldc, sc, batch);
}

static size_t e_cudnnGetVersion(void) { return p_cudnnGetVersion ? p_cudnnGetVersion() : 0; }
static cudnnStatus_t e_cudnnCreate(cudnnHandle_t *h) { return CALL(p_cudnnCreate, h); }
static cudnnStatus_t e_cudnnDestroy(cudnnHandle_t h) { return CALL(p_cudnnDestroy, h); }
static cudnnStatus_t e_cudnnSetStream(cudnnHandle_t h, CUstream s) { return CALL(p_cudnnSetStream, h, s); }
static cudnnStatus_t e_cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) { return CALL(p_cudnnCreateTensorDescriptor, d); }
static cudnnStatus_t e_cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, int format, int dtype, int n, int c, int h, int w) {
	return CALL(p_cudnnSetTensor4dDescriptor, d, format, dtype, n, c, h, w);
}
static cudnnStatus_t e_cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) { return CALL(p_cudnnDestroyTensorDescriptor, d); }
static cudnnStatus_t e_cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) { return CALL(p_cudnnCreateFilterDescriptor, d); }
static cudnnStatus_t e_cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, int dtype, int format, int k, int c, int h, int w) {
	return CALL(p_cudnnSetFilter4dDescriptor, d, dtype, format, k, c, h, w);
}
static cudnnStatus_t e_cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) { return CALL(p_cudnnDestroyFilterDescriptor, d); }
static cudnnStatus_t e_cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) { return CALL(p_cudnnCreateConvolutionDescriptor, d); }
static cudnnStatus_t e_cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int ph, int pw, int sh, int sw,
		int dh, int dw, int mode, int dtype) {
	return CALL(p_cudnnSetConvolution2dDescriptor, d, ph, pw, sh, sw, dh, dw, mode, dtype);
}
static cudnnStatus_t e_cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int g) { return CALL(p_cudnnSetConvolutionGroupCount, d, g); }
static cudnnStatus_t e_cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, int m) { return CALL(p_cudnnSetConvolutionMathType, d, m); }
static cudnnStatus_t e_cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) { return CALL(p_cudnnDestroyConvolutionDescriptor, d); }

// The three directions of a convolution share one geometry: x (N, C, H, W), w (O,
// C/groups, KH, KW) and y (N, O, OH, OW). dir 0 is the forward pass (x, w -> y), 1 the
// data gradient (w, dy -> dx: x and y hold dx and dy), 2 the filter gradient (x, dy
// -> dw: w holds dw). These wrappers put the descriptors in each function's order.
static cudnnStatus_t e_cudnnConvAlgos(int dir, cudnnHandle_t h, cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd,
		cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd, int req, int *got, edd_conv_perf *perf) {
	switch (dir) {
	case 0: return CALL(p_cudnnGetConvolutionForwardAlgorithm_v7, h, xd, wd, cd, yd, req, got, perf);
	case 1: return CALL(p_cudnnGetConvolutionBackwardDataAlgorithm_v7, h, wd, yd, cd, xd, req, got, perf);
	case 2: return CALL(p_cudnnGetConvolutionBackwardFilterAlgorithm_v7, h, xd, yd, cd, wd, req, got, perf);
	}
	return EDD_NOT_LOADED;
}

static cudnnStatus_t e_cudnnConvFind(int dir, cudnnHandle_t h, cudnnTensorDescriptor_t xd, CUdeviceptr x,
		cudnnFilterDescriptor_t wd, CUdeviceptr w, cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd, CUdeviceptr y,
		int req, int *got, edd_conv_perf *perf, CUdeviceptr ws, size_t wsBytes) {
	void *xp = (void *)(uintptr_t)x, *wp = (void *)(uintptr_t)w, *yp = (void *)(uintptr_t)y, *wsp = (void *)(uintptr_t)ws;
	switch (dir) {
	case 0: return CALL(p_cudnnFindConvolutionForwardAlgorithmEx, h, xd, xp, wd, wp, cd, yd, yp, req, got, perf, wsp, wsBytes);
	case 1: return CALL(p_cudnnFindConvolutionBackwardDataAlgorithmEx, h, wd, wp, yd, yp, cd, xd, xp, req, got, perf, wsp, wsBytes);
	case 2: return CALL(p_cudnnFindConvolutionBackwardFilterAlgorithmEx, h, xd, xp, yd, yp, cd, wd, wp, req, got, perf, wsp, wsBytes);
	}
	return EDD_NOT_LOADED;
}

static cudnnStatus_t e_cudnnConvWorkspace(int dir, cudnnHandle_t h, cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd,
		cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd, int algo, size_t *bytes) {
	switch (dir) {
	case 0: return CALL(p_cudnnGetConvolutionForwardWorkspaceSize, h, xd, wd, cd, yd, algo, bytes);
	case 1: return CALL(p_cudnnGetConvolutionBackwardDataWorkspaceSize, h, wd, yd, cd, xd, algo, bytes);
	case 2: return CALL(p_cudnnGetConvolutionBackwardFilterWorkspaceSize, h, xd, yd, cd, wd, algo, bytes);
	}
	return EDD_NOT_LOADED;
}

// e_cudnnConvRun computes out = conv_dir(...) + beta·out with alpha 1 (float32
// scaling factors, as cuDNN wants for float data).
static cudnnStatus_t e_cudnnConvRun(int dir, cudnnHandle_t h, cudnnTensorDescriptor_t xd, CUdeviceptr x,
		cudnnFilterDescriptor_t wd, CUdeviceptr w, cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd, CUdeviceptr y,
		int algo, CUdeviceptr ws, size_t wsBytes, float beta) {
	float alpha = 1;
	void *xp = (void *)(uintptr_t)x, *wp = (void *)(uintptr_t)w, *yp = (void *)(uintptr_t)y, *wsp = (void *)(uintptr_t)ws;
	switch (dir) {
	case 0: return CALL(p_cudnnConvolutionForward, h, &alpha, xd, xp, wd, wp, cd, algo, wsp, wsBytes, &beta, yd, yp);
	case 1: return CALL(p_cudnnConvolutionBackwardData, h, &alpha, wd, wp, yd, yp, cd, algo, wsp, wsBytes, &beta, xd, xp);
	case 2: return CALL(p_cudnnConvolutionBackwardFilter, h, &alpha, xd, xp, yd, yp, cd, algo, wsp, wsBytes, &beta, wd, wp);
	}
	return EDD_NOT_LOADED;
}

static cudnnStatus_t e_cudnnConvolutionBackwardBias(cudnnHandle_t h, cudnnTensorDescriptor_t dyd, CUdeviceptr dy,
		cudnnTensorDescriptor_t dbd, CUdeviceptr db) {
	float alpha = 1, beta = 0;
	return CALL(p_cudnnConvolutionBackwardBias, h, &alpha, dyd, (const void *)(uintptr_t)dy, &beta, dbd, (void *)(uintptr_t)db);
}

// Which optional functions were found (Go cannot read static C variables).
static int edd_has_arch_list(void) { return p_nvrtcGetNumSupportedArchs && p_nvrtcGetSupportedArchs; }
static int edd_has_cubin(void) { return p_nvrtcGetCUBIN && p_nvrtcGetCUBINSize; }
static int edd_has_blas_property(void) { return p_cublasGetProperty != NULL; }
static int edd_has_cudnn_conv(void) {
	return p_cudnnCreate && p_cudnnDestroy && p_cudnnSetStream && p_cudnnCreateTensorDescriptor &&
		p_cudnnSetTensor4dDescriptor && p_cudnnDestroyTensorDescriptor && p_cudnnCreateFilterDescriptor &&
		p_cudnnSetFilter4dDescriptor && p_cudnnDestroyFilterDescriptor && p_cudnnCreateConvolutionDescriptor &&
		p_cudnnSetConvolution2dDescriptor && p_cudnnSetConvolutionGroupCount && p_cudnnSetConvolutionMathType &&
		p_cudnnDestroyConvolutionDescriptor &&
		p_cudnnGetConvolutionForwardAlgorithm_v7 && p_cudnnGetConvolutionForwardWorkspaceSize && p_cudnnConvolutionForward &&
		p_cudnnGetConvolutionBackwardDataAlgorithm_v7 && p_cudnnGetConvolutionBackwardDataWorkspaceSize && p_cudnnConvolutionBackwardData &&
		p_cudnnGetConvolutionBackwardFilterAlgorithm_v7 && p_cudnnGetConvolutionBackwardFilterWorkspaceSize &&
		p_cudnnConvolutionBackwardFilter;
}
static int edd_has_cudnn_find(void) {
	return p_cudnnFindConvolutionForwardAlgorithmEx && p_cudnnFindConvolutionBackwardDataAlgorithmEx &&
		p_cudnnFindConvolutionBackwardFilterAlgorithmEx;
}
static int edd_has_cudnn_bias(void) { return p_cudnnConvolutionBackwardBias != NULL; }
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// devptr is a device address (CUdeviceptr). 0 is the buffer of an empty tensor.
type devptr uint64

// at is the address off float32 elements further on.
func (p devptr) at(off int) devptr { return p + devptr(4*off) }

// Opaque driver handles, kept as C types only in this file's wrappers.
type (
	cuDevice   = C.CUdevice
	cuContext  = C.CUcontext
	cuStream   = C.CUstream
	cuModule   = C.CUmodule
	cuFunction = C.CUfunction
	blasHandle = C.cublasHandle_t
	dnnHandle  = C.cudnnHandle_t
	dnnTensor  = C.cudnnTensorDescriptor_t
	dnnFilter  = C.cudnnFilterDescriptor_t
	dnnConv    = C.cudnnConvolutionDescriptor_t
)

// libKind indexes the symbol tables of the C preamble.
type libKind int

const (
	libDriver libKind = iota
	libNVRTC
	libCUBLAS
	libCUDNN
)

func (l libKind) String() string {
	return [...]string{"driver", "nvrtc", "cublas", "cudnn"}[l]
}

// dlopenFirst opens the first candidate that the loader accepts, binds lib's symbols
// from it and returns the path it came from. tried collects why each candidate failed.
func dlopenFirst(lib libKind, candidates []string) (path string, tried []string, err error) {
	for _, c := range candidates {
		cs := C.CString(c)
		h := C.dlopen(cs, C.RTLD_NOW|C.RTLD_LOCAL)
		C.free(unsafe.Pointer(cs))
		if h == nil {
			msg := C.GoString(C.dlerror())
			tried = append(tried, msg)
			continue
		}
		if i := C.edd_bind(C.int(lib), h); i >= 0 {
			// A library of that name without the functions we need (too old, or a
			// stub): keep looking. The handle stays open; dlclose of CUDA libraries
			// is known to misbehave, and it is a few of them at most.
			tried = append(tried, fmt.Sprintf("%s: no symbol %s", c, C.GoString(C.edd_sym_names(C.int(lib), i))))
			continue
		}
		p := C.GoString(C.edd_path(C.edd_first_sym(C.int(lib))))
		if p == "" {
			p = c
		}
		return p, tried, nil
	}
	return "", tried, fmt.Errorf("%s: none of %d candidates could be loaded", lib, len(candidates))
}

// --- driver API wrappers. They take and return Go types; each status goes through check.

func cuInit() error { return check(libDriver, "cuInit", int(C.e_cuInit())) }

func cuDriverGetVersion() (int, error) {
	var v C.int
	return int(v), check(libDriver, "cuDriverGetVersion", int(C.e_cuDriverGetVersion(&v)))
}

func cuDeviceGetCount() (int, error) {
	var n C.int
	return int(n), check(libDriver, "cuDeviceGetCount", int(C.e_cuDeviceGetCount(&n)))
}

func cuDeviceGet(i int) (cuDevice, error) {
	var d C.CUdevice
	return d, check(libDriver, "cuDeviceGet", int(C.e_cuDeviceGet(&d, C.int(i))))
}

func cuDeviceGetName(d cuDevice) (string, error) {
	var buf [256]C.char
	if err := check(libDriver, "cuDeviceGetName", int(C.e_cuDeviceGetName(&buf[0], C.int(len(buf)), d))); err != nil {
		return "", err
	}
	return C.GoString(&buf[0]), nil
}

// Device attributes (CUdevice_attribute) the backend reads.
const (
	attrMaxThreadsPerBlock = 1
	attrMultiprocessors    = 16
	attrIntegrated         = 18
	attrL2CacheSize        = 38
	attrComputeMajor       = 75
	attrComputeMinor       = 76
)

func cuDeviceGetAttribute(attr int, d cuDevice) (int, error) {
	var v C.int
	return int(v), check(libDriver, "cuDeviceGetAttribute", int(C.e_cuDeviceGetAttribute(&v, C.int(attr), d)))
}

func cuDeviceTotalMem(d cuDevice) (int64, error) {
	var v C.size_t
	return int64(v), check(libDriver, "cuDeviceTotalMem", int(C.e_cuDeviceTotalMem(&v, d)))
}

func cuDevicePrimaryCtxRetain(d cuDevice) (cuContext, error) {
	var c C.CUcontext
	return c, check(libDriver, "cuDevicePrimaryCtxRetain", int(C.e_cuDevicePrimaryCtxRetain(&c, d)))
}

func cuDevicePrimaryCtxRelease(d cuDevice) error {
	return check(libDriver, "cuDevicePrimaryCtxRelease", int(C.e_cuDevicePrimaryCtxRelease(d)))
}

func cuCtxSetCurrent(c cuContext) error {
	return check(libDriver, "cuCtxSetCurrent", int(C.e_cuCtxSetCurrent(c)))
}

func cuCtxSynchronize() error {
	return check(libDriver, "cuCtxSynchronize", int(C.e_cuCtxSynchronize()))
}

func cuStreamCreate() (cuStream, error) {
	var s C.CUstream
	return s, check(libDriver, "cuStreamCreate", int(C.e_cuStreamCreate(&s)))
}

func cuStreamDestroy(s cuStream) error {
	return check(libDriver, "cuStreamDestroy", int(C.e_cuStreamDestroy(s)))
}

func cuStreamSynchronize(s cuStream) error {
	return check(libDriver, "cuStreamSynchronize", int(C.e_cuStreamSynchronize(s)))
}

func cuMemAlloc(bytes int64) (devptr, error) {
	var p C.CUdeviceptr
	return devptr(p), check(libDriver, "cuMemAlloc", int(C.e_cuMemAlloc(&p, C.size_t(bytes))))
}

func cuMemFree(p devptr) error {
	return check(libDriver, "cuMemFree", int(C.e_cuMemFree(C.CUdeviceptr(p))))
}

func cuMemGetInfo() (free, total int64, err error) {
	var f, t C.size_t
	err = check(libDriver, "cuMemGetInfo", int(C.e_cuMemGetInfo(&f, &t)))
	return int64(f), int64(t), err
}

// cuMemcpyHtoD copies from Go memory. From pageable memory the driver has staged the
// data by the time the call returns, so src may be reused at once.
func cuMemcpyHtoD(dst devptr, src []float32, s cuStream) error {
	if len(src) == 0 {
		return nil
	}
	return check(libDriver, "cuMemcpyHtoDAsync", int(C.e_cuMemcpyHtoDAsync(C.CUdeviceptr(dst), unsafe.Pointer(&src[0]), C.size_t(4*len(src)), s)))
}

// cuMemcpyDtoH copies into Go memory; a copy to pageable memory returns when it is done.
func cuMemcpyDtoH(dst []float32, src devptr, s cuStream) error {
	if len(dst) == 0 {
		return nil
	}
	return check(libDriver, "cuMemcpyDtoHAsync", int(C.e_cuMemcpyDtoHAsync(unsafe.Pointer(&dst[0]), C.CUdeviceptr(src), C.size_t(4*len(dst)), s)))
}

func cuMemcpyDtoD(dst, src devptr, elems int, s cuStream) error {
	if elems == 0 {
		return nil
	}
	return check(libDriver, "cuMemcpyDtoDAsync", int(C.e_cuMemcpyDtoDAsync(C.CUdeviceptr(dst), C.CUdeviceptr(src), C.size_t(4*elems), s)))
}

func cuMemsetD32(dst devptr, v uint32, elems int, s cuStream) error {
	if elems == 0 {
		return nil
	}
	return check(libDriver, "cuMemsetD32Async", int(C.e_cuMemsetD32Async(C.CUdeviceptr(dst), C.uint(v), C.size_t(elems), s)))
}

func cuModuleLoadData(image []byte) (cuModule, error) {
	// The image must stay put while the driver reads it, and PTX must end in NUL:
	// copy it into C memory with a NUL after it.
	c := C.CBytes(append(image[:len(image):len(image)], 0))
	defer C.free(c)
	var m C.CUmodule
	return m, check(libDriver, "cuModuleLoadData", int(C.e_cuModuleLoadData(&m, c)))
}

func cuModuleUnload(m cuModule) error {
	return check(libDriver, "cuModuleUnload", int(C.e_cuModuleUnload(m)))
}

func cuModuleGetFunction(m cuModule, name string) (cuFunction, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	var f C.CUfunction
	return f, check(libDriver, "cuModuleGetFunction("+name+")", int(C.e_cuModuleGetFunction(&f, m, cs)))
}

func cuLaunchKernel(f cuFunction, grid, block [3]uint32, shared uint32, s cuStream, args []byte) error {
	var p unsafe.Pointer
	if len(args) > 0 {
		p = unsafe.Pointer(&args[0])
	}
	rc := C.e_launch(f, C.uint(grid[0]), C.uint(grid[1]), C.uint(grid[2]),
		C.uint(block[0]), C.uint(block[1]), C.uint(block[2]), C.uint(shared), s, p, C.size_t(len(args)))
	return check(libDriver, "cuLaunchKernel", int(rc))
}

// --- NVRTC

func nvrtcVersion() (major, minor int, err error) {
	var ma, mi C.int
	err = check(libNVRTC, "nvrtcVersion", int(C.e_nvrtcVersion(&ma, &mi)))
	return int(ma), int(mi), err
}

// nvrtcSupportedArchs lists the SM versions (75, 80, ...) NVRTC can make machine code
// for; nil when this NVRTC is too old to say.
func nvrtcSupportedArchs() ([]int, error) {
	if C.edd_has_arch_list() == 0 {
		return nil, nil
	}
	var n C.int
	if err := check(libNVRTC, "nvrtcGetNumSupportedArchs", int(C.e_nvrtcGetNumSupportedArchs(&n))); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	archs := make([]C.int, n)
	if err := check(libNVRTC, "nvrtcGetSupportedArchs", int(C.e_nvrtcGetSupportedArchs(&archs[0]))); err != nil {
		return nil, err
	}
	out := make([]int, n)
	for i, a := range archs {
		out[i] = int(a)
	}
	return out, nil
}

// nvrtcCanCUBIN reports whether this NVRTC can return machine code (CUDA 11.1 on).
func nvrtcCanCUBIN() bool { return C.edd_has_cubin() != 0 }

// nvrtcCompile compiles one CUDA C source to a CUBIN (cubin true) or PTX image. The
// compiler's log comes back with a compile error.
func nvrtcCompile(src, name string, opts []string, cubin bool) ([]byte, error) {
	csrc, cname := C.CString(src), C.CString(name)
	defer C.free(unsafe.Pointer(csrc))
	defer C.free(unsafe.Pointer(cname))
	var prog C.nvrtcProgram
	if err := check(libNVRTC, "nvrtcCreateProgram", int(C.e_nvrtcCreateProgram(&prog, csrc, cname))); err != nil {
		return nil, err
	}
	defer C.e_nvrtcDestroyProgram(&prog)
	copts := make([]*C.char, len(opts)+1) // never empty, so &copts[0] exists
	for i, o := range opts {
		copts[i] = C.CString(o)
	}
	defer func() {
		for _, c := range copts {
			if c != nil {
				C.free(unsafe.Pointer(c))
			}
		}
	}()
	// copts holds C pointers only, so passing its Go memory is allowed.
	rc := int(C.e_nvrtcCompileProgram(prog, C.int(len(opts)), (**C.char)(unsafe.Pointer(&copts[0]))))
	if err := check(libNVRTC, "nvrtcCompileProgram("+name+")", rc); err != nil {
		var n C.size_t
		if C.e_nvrtcGetProgramLogSize(prog, &n) == 0 && n > 1 {
			log := make([]byte, n)
			if C.e_nvrtcGetProgramLog(prog, (*C.char)(unsafe.Pointer(&log[0]))) == 0 {
				return nil, fmt.Errorf("%w:\n%s", err, strings.TrimRight(string(log), "\x00\n"))
			}
		}
		return nil, err
	}
	var n C.size_t
	if cubin {
		if err := check(libNVRTC, "nvrtcGetCUBINSize", int(C.e_nvrtcGetCUBINSize(prog, &n))); err != nil {
			return nil, err
		}
	} else if err := check(libNVRTC, "nvrtcGetPTXSize", int(C.e_nvrtcGetPTXSize(prog, &n))); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("nvrtc: %s: empty output", name)
	}
	out := make([]byte, n)
	p := (*C.char)(unsafe.Pointer(&out[0]))
	if cubin {
		if err := check(libNVRTC, "nvrtcGetCUBIN", int(C.e_nvrtcGetCUBIN(prog, p))); err != nil {
			return nil, err
		}
		return out, nil
	}
	if err := check(libNVRTC, "nvrtcGetPTX", int(C.e_nvrtcGetPTX(prog, p))); err != nil {
		return nil, err
	}
	return []byte(strings.TrimRight(string(out), "\x00")), nil
}

// --- cuBLAS

// cuBLAS math modes (cublasMath_t).
const (
	blasDefaultMath = 0 // full float32: what PyTorch does without allow_tf32
	blasTF32Math    = 3 // float32 products on the tensor cores with TF32 inputs
)

func cublasCreate() (blasHandle, error) {
	var h C.cublasHandle_t
	return h, check(libCUBLAS, "cublasCreate", int(C.e_cublasCreate(&h)))
}

func cublasDestroy(h blasHandle) error {
	return check(libCUBLAS, "cublasDestroy", int(C.e_cublasDestroy(h)))
}

func cublasSetStream(h blasHandle, s cuStream) error {
	return check(libCUBLAS, "cublasSetStream", int(C.e_cublasSetStream(h, s)))
}

func cublasSetMathMode(h blasHandle, mode int) error {
	return check(libCUBLAS, "cublasSetMathMode", int(C.e_cublasSetMathMode(h, C.int(mode))))
}

// cublasVersion is "major.minor.patch", or "" if this cuBLAS cannot say.
func cublasVersion() string {
	if C.edd_has_blas_property() == 0 {
		return ""
	}
	var v [3]C.int
	for i := range v {
		if C.e_cublasGetProperty(C.int(i), &v[i]) != 0 {
			return ""
		}
	}
	return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2])
}

// cublasSgemmStridedBatched is the column-major product C = α·op(A)·op(B) + β·C over
// batch matrices at fixed strides (elements); gemm (matmul.go) speaks row-major.
func cublasSgemmStridedBatched(h blasHandle, transA, transB bool, m, n, k int, alpha float32,
	a devptr, lda int, sa int64, b devptr, ldb int, sb int64, beta float32, c devptr, ldc int, sc int64, batch int) error {
	op := func(t bool) C.int {
		if t {
			return 1 // CUBLAS_OP_T
		}
		return 0 // CUBLAS_OP_N
	}
	rc := C.e_cublasSgemmStridedBatched(h, op(transA), op(transB), C.int(m), C.int(n), C.int(k),
		C.float(alpha), C.CUdeviceptr(a), C.int(lda), C.longlong(sa), C.CUdeviceptr(b), C.int(ldb), C.longlong(sb),
		C.float(beta), C.CUdeviceptr(c), C.int(ldc), C.longlong(sc), C.int(batch))
	return check(libCUBLAS, "cublasSgemmStridedBatched", int(rc))
}

// --- cuDNN

// cudnnVersion is cuDNN's version number (9.19.0 is 91900), 0 if not loaded.
func cudnnVersion() int { return int(C.e_cudnnGetVersion()) }

// cudnnHasConv reports whether the loaded cuDNN has every function of the legacy
// convolution API that the backend calls; cudnnHasFind the Find…Ex searches, and
// cudnnHasBias cudnnConvolutionBackwardBias.
func cudnnHasConv() bool { return C.edd_has_cudnn_conv() != 0 }
func cudnnHasFind() bool { return C.edd_has_cudnn_find() != 0 }
func cudnnHasBias() bool { return C.edd_has_cudnn_bias() != 0 }

// cuDNN enums (cudnn_graph.h and cudnn_cnn.h; unchanged from cuDNN 7 to 9).
const (
	dnnDataFloat        = 0 // CUDNN_DATA_FLOAT
	dnnTensorNCHW       = 0 // CUDNN_TENSOR_NCHW
	dnnCrossCorrelation = 1 // CUDNN_CROSS_CORRELATION: PyTorch's convolution, no kernel flip
	dnnDefaultMath      = 0 // CUDNN_DEFAULT_MATH: TF32 tensor cores allowed for float32 (Ampere on)
	dnnTensorOpMath     = 1 // CUDNN_TENSOR_OP_MATH
	dnnFMAMath          = 3 // CUDNN_FMA_MATH: float32 FMA kernels only, no TF32
)

func cudnnCreate() (dnnHandle, error) {
	var h C.cudnnHandle_t
	return h, check(libCUDNN, "cudnnCreate", int(C.e_cudnnCreate(&h)))
}

func cudnnDestroy(h dnnHandle) error {
	return check(libCUDNN, "cudnnDestroy", int(C.e_cudnnDestroy(h)))
}

func cudnnSetStream(h dnnHandle, s cuStream) error {
	return check(libCUDNN, "cudnnSetStream", int(C.e_cudnnSetStream(h, s)))
}

// cudnnTensor4d creates an NCHW float32 tensor descriptor of dims.
func cudnnTensor4d(dims [4]int) (dnnTensor, error) {
	var d C.cudnnTensorDescriptor_t
	if err := check(libCUDNN, "cudnnCreateTensorDescriptor", int(C.e_cudnnCreateTensorDescriptor(&d))); err != nil {
		return nil, err
	}
	rc := C.e_cudnnSetTensor4dDescriptor(d, dnnTensorNCHW, dnnDataFloat, C.int(dims[0]), C.int(dims[1]), C.int(dims[2]), C.int(dims[3]))
	if err := check(libCUDNN, "cudnnSetTensor4dDescriptor", int(rc)); err != nil {
		C.e_cudnnDestroyTensorDescriptor(d)
		return nil, err
	}
	return d, nil
}

func cudnnDestroyTensor(d dnnTensor) error {
	return check(libCUDNN, "cudnnDestroyTensorDescriptor", int(C.e_cudnnDestroyTensorDescriptor(d)))
}

// cudnnFilter4d creates a float32 filter descriptor (O, C/groups, KH, KW), NCHW.
func cudnnFilter4d(dims [4]int) (dnnFilter, error) {
	var d C.cudnnFilterDescriptor_t
	if err := check(libCUDNN, "cudnnCreateFilterDescriptor", int(C.e_cudnnCreateFilterDescriptor(&d))); err != nil {
		return nil, err
	}
	rc := C.e_cudnnSetFilter4dDescriptor(d, dnnDataFloat, dnnTensorNCHW, C.int(dims[0]), C.int(dims[1]), C.int(dims[2]), C.int(dims[3]))
	if err := check(libCUDNN, "cudnnSetFilter4dDescriptor", int(rc)); err != nil {
		C.e_cudnnDestroyFilterDescriptor(d)
		return nil, err
	}
	return d, nil
}

func cudnnDestroyFilter(d dnnFilter) error {
	return check(libCUDNN, "cudnnDestroyFilterDescriptor", int(C.e_cudnnDestroyFilterDescriptor(d)))
}

// cudnnConv2d creates a cross-correlation descriptor (padding, stride, no dilation,
// float32 accumulation) for groups groups.
func cudnnConv2d(pad, stride [2]int, groups int) (dnnConv, error) {
	var d C.cudnnConvolutionDescriptor_t
	if err := check(libCUDNN, "cudnnCreateConvolutionDescriptor", int(C.e_cudnnCreateConvolutionDescriptor(&d))); err != nil {
		return nil, err
	}
	rc := C.e_cudnnSetConvolution2dDescriptor(d, C.int(pad[0]), C.int(pad[1]), C.int(stride[0]), C.int(stride[1]), 1, 1, dnnCrossCorrelation, dnnDataFloat)
	err := check(libCUDNN, "cudnnSetConvolution2dDescriptor", int(rc))
	if err == nil && groups != 1 {
		err = check(libCUDNN, "cudnnSetConvolutionGroupCount", int(C.e_cudnnSetConvolutionGroupCount(d, C.int(groups))))
	}
	if err != nil {
		C.e_cudnnDestroyConvolutionDescriptor(d)
		return nil, err
	}
	return d, nil
}

func cudnnSetConvMath(d dnnConv, math int) error {
	return check(libCUDNN, "cudnnSetConvolutionMathType", int(C.e_cudnnSetConvolutionMathType(d, C.int(math))))
}

func cudnnDestroyConv(d dnnConv) error {
	return check(libCUDNN, "cudnnDestroyConvolutionDescriptor", int(C.e_cudnnDestroyConvolutionDescriptor(d)))
}

// maxAlgos bounds the results of an algorithm query: more than any direction has
// (8 forward, 6 data, 7 filter algorithms).
const maxAlgos = 8

func convPerfs(perf *[maxAlgos]C.edd_conv_perf, n C.int) []algoPerf {
	out := make([]algoPerf, 0, int(n))
	for _, p := range perf[:min(int(n), maxAlgos)] {
		out = append(out, algoPerf{Algo: int(p.algo), Status: int(p.status), Time: float32(p.time),
			Memory: int64(p.memory), Deterministic: p.determinism == 1, Math: int(p.mathType)})
	}
	return out
}

// cudnnConvAlgos asks cuDNN's heuristics for direction dir's algorithms, best first.
func cudnnConvAlgos(dir convDir, h dnnHandle, d *convDescs) ([]algoPerf, error) {
	var perf [maxAlgos]C.edd_conv_perf
	var n C.int
	rc := C.e_cudnnConvAlgos(C.int(dir), h, d.x, d.w, d.conv, d.y, maxAlgos, &n, &perf[0])
	if err := check(libCUDNN, dir.algosCall(), int(rc)); err != nil {
		return nil, err
	}
	return convPerfs(&perf, n), nil
}

// cudnnConvFind runs direction dir's algorithms on the operands and returns them
// fastest first (it writes the direction's output operand).
func cudnnConvFind(dir convDir, h dnnHandle, d *convDescs, x, w, y devptr, ws devptr, wsBytes int64) ([]algoPerf, error) {
	var perf [maxAlgos]C.edd_conv_perf
	var n C.int
	rc := C.e_cudnnConvFind(C.int(dir), h, d.x, C.CUdeviceptr(x), d.w, C.CUdeviceptr(w), d.conv, d.y, C.CUdeviceptr(y),
		maxAlgos, &n, &perf[0], C.CUdeviceptr(ws), C.size_t(wsBytes))
	if err := check(libCUDNN, dir.findCall(), int(rc)); err != nil {
		return nil, err
	}
	return convPerfs(&perf, n), nil
}

// cudnnConvWorkspace is the workspace algorithm algo of direction dir needs, in bytes.
func cudnnConvWorkspace(dir convDir, h dnnHandle, d *convDescs, algo int) (int64, error) {
	var n C.size_t
	rc := C.e_cudnnConvWorkspace(C.int(dir), h, d.x, d.w, d.conv, d.y, C.int(algo), &n)
	return int64(n), check(libCUDNN, dir.workspaceCall(), int(rc))
}

// cudnnConvRun queues direction dir with algorithm algo on the handle's stream: the
// output operand (y, x or w by direction) becomes the result + beta·itself.
func cudnnConvRun(dir convDir, h dnnHandle, d *convDescs, x, w, y devptr, algo int, ws devptr, wsBytes int64, beta float32) error {
	rc := C.e_cudnnConvRun(C.int(dir), h, d.x, C.CUdeviceptr(x), d.w, C.CUdeviceptr(w), d.conv, d.y, C.CUdeviceptr(y),
		C.int(algo), C.CUdeviceptr(ws), C.size_t(wsBytes), C.float(beta))
	return check(libCUDNN, dir.runCall(), int(rc))
}

// cudnnBackwardBias queues db (1, O, 1, 1) = the sum of dy over N, H and W.
func cudnnBackwardBias(h dnnHandle, dyd dnnTensor, dy devptr, dbd dnnTensor, db devptr) error {
	rc := C.e_cudnnConvolutionBackwardBias(h, dyd, C.CUdeviceptr(dy), dbd, C.CUdeviceptr(db))
	return check(libCUDNN, "cudnnConvolutionBackwardBias", int(rc))
}
