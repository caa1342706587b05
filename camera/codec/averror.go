package codec

// #include "codec.h"
import "C"

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Sentinel errors; the errors returned wrap them where they apply.
var (
	// ErrNotFound: the FFmpeg build has no encoder or decoder of that name.
	ErrNotFound = errors.New("codec not found in this FFmpeg build")
	// ErrClosed: the encoder or decoder was used after Close.
	ErrClosed = errors.New("codec closed")
	// ErrConfig: an EncoderConfig or an image does not fit.
	ErrConfig = errors.New("invalid codec configuration")
)

// avError turns a libav status code into a Go error naming the operation. It is the only
// place C status codes become Go errors. Codes >= 0 mean success and give nil.
func avError(op string, code C.int) error {
	if code >= 0 {
		return nil
	}
	var buf [C.AV_ERROR_MAX_STRING_SIZE]C.char
	msg := fmt.Sprintf("libav error %d", int(code))
	if C.av_strerror(code, &buf[0], C.size_t(len(buf))) == 0 {
		msg = C.GoString(&buf[0])
	}
	return &AVError{Op: op, Code: int(code), Msg: msg}
}

// AVError is a failure reported by libavcodec or libswscale.
type AVError struct {
	Op   string // what we were doing, such as "avcodec_open2 libx264"
	Code int    // the negative AVERROR code
	Msg  string // av_strerror's text
}

func (e *AVError) Error() string { return fmt.Sprintf("%s: %s", e.Op, e.Msg) }

// live counts encoders and decoders whose C memory has not been freed yet.
var live atomic.Int64

// Live returns the number of encoders and decoders whose C memory is still allocated:
// those not yet closed (and not yet reclaimed by the GC safety net). Tests check that it
// returns to zero.
func Live() int64 { return live.Load() }

// goBytesPtr returns a pointer to b's first byte for passing to C for the length of a call
// (allowed by the cgo rules: the memory holds no Go pointers and C keeps no reference).
func goBytesPtr(b []byte) *C.uint8_t { return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))) }
