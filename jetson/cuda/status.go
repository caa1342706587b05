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

// Error is a failed CUDA, NVRTC or cuBLAS call.
type Error struct {
	Lib  string // "driver", "nvrtc", "cublas"
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
		return e.Lib == "driver" && e.Code == 2 || e.Lib == "cublas" && e.Code == 3 || e.Lib == "nvrtc" && e.Code == 1
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
	}
	if n, ok := names[code]; ok {
		return n
	}
	return fmt.Sprintf("unknown %s status", lib)
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
