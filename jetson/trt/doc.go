// Package trt runs the exported depth and pose networks (nn/onnx, `edgedepth export
// onnx`) on ONNX Runtime through cgo (github.com/yalue/onnxruntime_go): with the
// TensorRT execution provider on a Jetson, the CUDA provider on other NVIDIA GPUs,
// the CPU provider anywhere else and in CI, so that the same code runs everywhere.
// TensorRT cannot train: the weights the robot learns reach it by export.
//
// # Concepts
//
// An Engine holds two ONNX Runtime sessions, one per network, created for one
// Provider. Depth and Pose take and fill float32 host buffers in the layout of the
// exported graphs (NCHW RGB in [0, 1]; normalisation and the disparity-to-depth
// mapping are inside the graphs). ONNX Runtime itself is one shared library,
// libonnxruntime.so.1, loaded with dlopen on the first Open from Options.LibraryPath,
// $EDGEDEPTH_ONNXRUNTIME_LIB or the dynamic loader's path, so the binary builds and
// starts without it; a missing library or provider is an error that says how to get
// it (ErrLibrary, ErrProviderUnavailable).
//
// The TensorRT provider builds an engine per network on first use (minutes on a
// Jetson); TensorRTOptions.EngineCacheDir keeps them on disk, keyed by the ONNX
// file's hash so that new weights never meet a stale engine, or, with Refit, by the
// graph's structure: weight-stripped engines refitted with the new file's weights
// instead of rebuilt.
//
// # Lifecycle
//
// Open loads the library (once per process: ONNX Runtime has one environment per
// process, and it stays loaded until the process ends) and creates the sessions;
// Close destroys them. An Engine dropped without Close has its sessions destroyed
// when it is collected; LiveSessions counts the sessions open, for tests.
//
// # Concurrency
//
// Depth and Pose may be called from several goroutines at once (ONNX Runtime's
// sessions allow concurrent runs; each call wraps its own buffers). Close waits for
// the calls in flight; calls after it return ErrClosed.
//
// # What has run where
//
// The CPU provider is tested here against our own forward pass and against
// PyTorch's exporter. The CUDA and TensorRT providers are written from ONNX
// Runtime's documentation and have not run: no GPU build of ONNX Runtime and no
// TensorRT exist on the development and CI machines (see the README).
package trt
