package cuda

import (
	"errors"
	"fmt"
)

// Status codes become Go errors here and only here: every wrapper in driver.go passes
// its library, the call's name and the code to check.

// ErrUnavailable is wrapped by every error of Open and Probe that means "no usable
// CUDA here" (no driver, no GPU, a library missing), as opposed to a failure of a
// CUDA that is present.
var ErrUnavailable = errors.New("cuda unavailable")

// ErrOutOfMemory is matched (errors.Is) by an Error for a failed device allocation.
var ErrOutOfMemory = errors.New("out of device memory")

// ErrClosed is returned by the ops of a closed backend.
var ErrClosed = errors.New("cuda backend closed")

// codeNotLoaded is what a wrapper returns when its function was not found in its
// library (EDD_NOT_LOADED in the C preamble).
const codeNotLoaded = -10000

// Error is a failed CUDA, NVRTC, cuBLAS or cuDNN call.
type Error struct {
	Lib  string // "driver", "nvrtc", "cublas", "cudnn"
	Call string // the function, e.g. "cuMemAlloc"
	Code int    // the status code
	Name string // the code's name, e.g. "CUDA_ERROR_OUT_OF_MEMORY"
}

func (e *Error) Error() string {
	return fmt.Sprintf("cuda: %s: %s (%s %d)", e.Call, e.Name, e.Lib, e.Code)
}

// Is lets errors.Is match the package's sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrOutOfMemory:
		return e.Lib == "driver" && e.Code == 2 || e.Lib == "cublas" && e.Code == 3 || e.Lib == "nvrtc" && e.Code == 1 ||
			e.Lib == "cudnn" && (e.Code == 2 || e.Code == 4004) // cuDNN 8's ALLOC_FAILED, 9's DEVICE_ALLOCATION_FAILED
	case ErrUnavailable:
		// No device, no driver loaded, a driver older than the libraries, or a stub.
		return e.Code == codeNotLoaded || e.Lib == "driver" && (e.Code == 100 || e.Code == 34 || e.Code == 35 || e.Code == 803 || e.Code == 804)
	}
	return false
}

// check turns the status code of call in lib into nil (success, 0 in every library)
// or an *Error naming the call.
func check(lib libKind, call string, code int) error {
	if code == 0 {
		return nil
	}
	return &Error{Lib: lib.String(), Call: call, Code: code, Name: statusName(lib, code)}
}

// statusName is the symbolic name of a status code of lib, or a placeholder for a code
// this package does not know (a newer library).
func statusName(lib libKind, code int) string {
	if code == codeNotLoaded {
		return "function not loaded"
	}
	var names map[int]string
	switch lib {
	case libDriver:
		names = cuResultNames
	case libNVRTC:
		names = nvrtcResultNames
	case libCUBLAS:
		names = cublasStatusNames
	case libCUDNN:
		names = cudnnStatusNames
	}
	if n, ok := names[code]; ok {
		return n
	}
	if lib == libCUDNN && code >= 1000 {
		// A newer cuDNN 9 sub-code: its category is in the thousands.
		if n, ok := names[code/1000*1000]; ok {
			return n + " (sub-code)"
		}
	}
	return fmt.Sprintf("unknown %s status", lib)
}

// notSupported reports whether err is cuDNN saying that it has no algorithm for a
// problem (cuDNN 8's CUDNN_STATUS_NOT_SUPPORTED, cuDNN 9's 3000–3999): the one kind of
// cuDNN failure on which the backend falls back to its own convolution.
func notSupported(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Lib != "cudnn" {
		return false
	}
	return e.Code == 9 || e.Code >= 3000 && e.Code < 4000
}

// cuResultNames are the CUresult codes of the driver API (cuda.h) worth naming.
var cuResultNames = map[int]string{
	1:   "CUDA_ERROR_INVALID_VALUE",
	2:   "CUDA_ERROR_OUT_OF_MEMORY",
	3:   "CUDA_ERROR_NOT_INITIALIZED",
	4:   "CUDA_ERROR_DEINITIALIZED",
	34:  "CUDA_ERROR_STUB_LIBRARY",
	35:  "CUDA_ERROR_INSUFFICIENT_DRIVER",
	46:  "CUDA_ERROR_DEVICE_UNAVAILABLE",
	100: "CUDA_ERROR_NO_DEVICE",
	101: "CUDA_ERROR_INVALID_DEVICE",
	200: "CUDA_ERROR_INVALID_IMAGE",
	201: "CUDA_ERROR_INVALID_CONTEXT",
	209: "CUDA_ERROR_NO_BINARY_FOR_GPU",
	218: "CUDA_ERROR_INVALID_PTX",
	222: "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
	300: "CUDA_ERROR_INVALID_SOURCE",
	400: "CUDA_ERROR_INVALID_HANDLE",
	500: "CUDA_ERROR_NOT_FOUND",
	600: "CUDA_ERROR_NOT_READY",
	700: "CUDA_ERROR_ILLEGAL_ADDRESS",
	701: "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
	702: "CUDA_ERROR_LAUNCH_TIMEOUT",
	715: "CUDA_ERROR_ILLEGAL_INSTRUCTION",
	716: "CUDA_ERROR_MISALIGNED_ADDRESS",
	719: "CUDA_ERROR_LAUNCH_FAILED",
	801: "CUDA_ERROR_NOT_SUPPORTED",
	803: "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
	804: "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
	999: "CUDA_ERROR_UNKNOWN",
}

// nvrtcResultNames are the nvrtcResult codes (nvrtc.h).
var nvrtcResultNames = map[int]string{
	1:  "NVRTC_ERROR_OUT_OF_MEMORY",
	2:  "NVRTC_ERROR_PROGRAM_CREATION_FAILURE",
	3:  "NVRTC_ERROR_INVALID_INPUT",
	4:  "NVRTC_ERROR_INVALID_PROGRAM",
	5:  "NVRTC_ERROR_INVALID_OPTION",
	6:  "NVRTC_ERROR_COMPILATION",
	7:  "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE",
	11: "NVRTC_ERROR_INTERNAL_ERROR",
}

// cublasStatusNames are the cublasStatus_t codes (cublas_api.h).
var cublasStatusNames = map[int]string{
	1:  "CUBLAS_STATUS_NOT_INITIALIZED",
	3:  "CUBLAS_STATUS_ALLOC_FAILED",
	7:  "CUBLAS_STATUS_INVALID_VALUE",
	8:  "CUBLAS_STATUS_ARCH_MISMATCH",
	11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR",
	15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

// cudnnStatusNames are the cudnnStatus_t codes of cuDNN 8 (1–14) and cuDNN 9, which
// renumbered them by category (1xxx initialisation and versions, 2xxx bad parameters,
// 3xxx not supported, 4xxx internal errors, 5xxx execution failures): the two ranges
// do not overlap, so one table serves either library.
var cudnnStatusNames = map[int]string{
	1:  "CUDNN_STATUS_NOT_INITIALIZED",
	2:  "CUDNN_STATUS_ALLOC_FAILED",
	3:  "CUDNN_STATUS_BAD_PARAM",
	4:  "CUDNN_STATUS_INTERNAL_ERROR",
	5:  "CUDNN_STATUS_INVALID_VALUE",
	6:  "CUDNN_STATUS_ARCH_MISMATCH",
	7:  "CUDNN_STATUS_MAPPING_ERROR",
	8:  "CUDNN_STATUS_EXECUTION_FAILED",
	9:  "CUDNN_STATUS_NOT_SUPPORTED",
	10: "CUDNN_STATUS_LICENSE_ERROR",
	11: "CUDNN_STATUS_RUNTIME_PREREQUISITE_MISSING",
	12: "CUDNN_STATUS_RUNTIME_IN_PROGRESS",
	13: "CUDNN_STATUS_RUNTIME_FP_OVERFLOW",
	14: "CUDNN_STATUS_VERSION_MISMATCH",

	1001: "CUDNN_STATUS_NOT_INITIALIZED",
	1002: "CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH",
	1003: "CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH",
	1004: "CUDNN_STATUS_DEPRECATED",
	1005: "CUDNN_STATUS_LICENSE_ERROR",
	1006: "CUDNN_STATUS_RUNTIME_IN_PROGRESS",
	1007: "CUDNN_STATUS_RUNTIME_FP_OVERFLOW",
	1008: "CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED",
	2000: "CUDNN_STATUS_BAD_PARAM",
	2001: "CUDNN_STATUS_INVALID_VALUE",
	2002: "CUDNN_STATUS_BAD_PARAM_NULL_POINTER",
	2003: "CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER",
	2004: "CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED",
	2005: "CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND",
	2006: "CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT",
	2007: "CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH",
	2008: "CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH",
	2009: "CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES",
	2010: "CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE",
	2011: "CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH",
	2012: "CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE",
	3000: "CUDNN_STATUS_NOT_SUPPORTED",
	3001: "CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN",
	3002: "CUDNN_STATUS_NOT_SUPPORTED_SHAPE",
	3003: "CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE",
	3004: "CUDNN_STATUS_NOT_SUPPORTED_LAYOUT",
	3005: "CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER",
	3006: "CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART",
	3007: "CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH",
	3008: "CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING",
	3009: "CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE",
	3010: "CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT",
	3011: "CUDNN_STATUS_NOT_SUPPORTED_PADDING",
	3012: "CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM",
	3013: "CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API",
	3014: "CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE",
	4000: "CUDNN_STATUS_INTERNAL_ERROR",
	4001: "CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED",
	4002: "CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE",
	4003: "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED",
	4004: "CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED",
	4005: "CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM",
	4006: "CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED",
	5000: "CUDNN_STATUS_EXECUTION_FAILED",
	5001: "CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER",
	5002: "CUDNN_STATUS_EXECUTION_FAILED_CUBLAS",
	5003: "CUDNN_STATUS_EXECUTION_FAILED_CUDART",
	5004: "CUDNN_STATUS_EXECUTION_FAILED_CURAND",
}
