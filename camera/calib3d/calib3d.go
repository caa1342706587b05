package calib3d

/*
#cgo !windows pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include <stdlib.h>
#include "calib3d.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"gocv.io/x/gocv"
)

// Error codes of an *Error that are not OpenCV's. OpenCV's own codes (cv::Error::Code,
// for example -215 "assertion failed") are 0 or negative.
const (
	CodeStdException = C.EDCV_ERR_STD      // a C++ std::exception, such as bad_alloc
	CodeUnknown      = C.EDCV_ERR_UNKNOWN  // a C++ throw of something else
	CodeBadArgument  = C.EDCV_ERR_ARGUMENT // the shim rejected its arguments
)

// ErrClosed is returned by methods of an object after Close.
var ErrClosed = errors.New("calib3d: object is closed")

// Error is a failure reported by OpenCV or by the shim around it.
type Error struct {
	// Op is the shim operation, such as "sgbm compute".
	Op string
	// Code is OpenCV's cv::Error::Code (negative) or one of the Code* constants.
	Code int
	// Message is OpenCV's message, with the C++ function that raised it.
	Message string
}

func (e *Error) Error() string {
	switch e.Code {
	case CodeBadArgument:
		return fmt.Sprintf("calib3d: %s: %s", e.Op, e.Message)
	case CodeStdException, CodeUnknown:
		return fmt.Sprintf("calib3d: %s: C++ exception: %s", e.Op, e.Message)
	}
	return fmt.Sprintf("calib3d: %s: OpenCV error %d: %s", e.Op, e.Code, e.Message)
}

// statusError converts a shim status to a Go error (nil on success) and frees its
// message. It is the only place C statuses become Go errors.
func statusError(op string, st C.EdcvStatus) error {
	if st.code == C.EDCV_OK && st.msg == nil {
		return nil
	}
	msg := "(no message)"
	if st.msg != nil {
		msg = C.GoString(st.msg)
		C.free(unsafe.Pointer(st.msg))
	}
	code := int(st.code)
	if code == C.EDCV_OK {
		code = CodeUnknown // a message without a code; should not happen
	}
	return &Error{Op: op, Code: code, Message: msg}
}

// live counts C++ objects created by this package and not yet freed.
var live atomic.Int64

// LiveObjects reports how many objects owned by this package (matchers, ...) are
// allocated; it returns to its earlier value once they are all closed.
func LiveObjects() int64 { return live.Load() }

// Version returns the version of the OpenCV library linked at run time, such as "4.6.0".
func Version() string {
	p := C.edcv_version()
	if p == nil {
		return "unknown"
	}
	defer C.free(unsafe.Pointer(p))
	return C.GoString(p)
}

// SetNumThreads sets the number of threads OpenCV uses inside one call, for the whole
// process (cv::setNumThreads): 0 runs sequentially, a negative value restores OpenCV's
// default (one per CPU). On a shared robot computer, capping it keeps a matcher from
// starving the rest of the pipeline.
func SetNumThreads(n int) error {
	return statusError("set threads", C.edcv_set_num_threads(C.int(n)))
}

// NumThreads reports the size of OpenCV's worker pool.
func NumThreads() int { return int(C.edcv_get_num_threads()) }

// matPtr returns the cv::Mat* behind a gocv Mat, or an error for a closed Mat (a nil
// pointer would crash inside OpenCV before any exception could be thrown).
func matPtr(op, name string, m *gocv.Mat) (C.EdcvMat, error) {
	p := unsafe.Pointer(m.Ptr())
	if p == nil {
		return nil, &Error{Op: op, Code: CodeBadArgument, Message: name + " Mat is closed or was never created"}
	}
	return C.EdcvMat(p), nil
}

// throwForTest makes the C++ side throw one kind of exception inside its guard
// (0: cv::Exception, 1: std::exception, 2: a non-exception, 3: an argument error).
// It exists for the tests, which cannot use cgo themselves.
func throwForTest(kind int) error {
	return statusError("test", C.edcv_throw_for_test(C.int(kind)))
}
