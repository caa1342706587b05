// Package codec encodes and decodes H.264 for the camera packages through FFmpeg's
// libavcodec and libswscale.
//
// # Why cgo
//
// There is no production-quality H.264 encoder or decoder in pure Go, and the ones the
// robots need are behind FFmpeg's API anyway: libx264 on a desktop or in CI, NVENC
// (h264_nvenc) on an NVIDIA desktop GPU, the Jetson's multimedia engine through
// h264_nvmpi or h264_nvv4l2dec. Going through libavcodec lets one code path select any of
// them by name. DESIGN.md allows cgo in camera's decode path; this package is that leaf
// and nothing else in camera uses cgo.
//
// # Concepts
//
// An access unit (AU) is one coded picture: a list of NAL units without start codes, the
// shape RTP packetisers (RFC 6184) and gortsplib want. Encoders here are configured for
// live video: no B-frames, no lookahead, so each Encode returns the picture it was given.
// SPS and PPS come out of the encoder at open time (for an SDP's sprop-parameter-sets) and
// are put in front of every IDR, so a client that joins late or loses packets recovers at
// the next keyframe without having read the SDP.
//
// # Lifecycle and memory
//
// NewH264Encoder and NewH264Decoder allocate C memory; Close frees it and must be called.
// As a safety net an object that becomes unreachable without Close is freed by a GC
// cleanup, and Live counts objects whose C memory has not been freed yet, so tests can
// check that it returns to zero. Go memory is never stored in C memory: images are
// converted by swscale straight into C-allocated frames during a call, and packets are
// copied out to Go before the next call.
//
// # Concurrency
//
// An encoder or decoder must be used by one goroutine at a time. Separate objects are
// independent and may be used in parallel (one per eye, for example).
package codec

// #cgo pkg-config: libavcodec libavutil libswscale
// #include "codec.h"
import "C"
