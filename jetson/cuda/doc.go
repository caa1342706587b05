// Package cuda is the tensor.Backend for NVIDIA GPUs, registered as "cuda": desktop and
// server cards and Jetsons alike, through our own cgo code and CUDA C kernels.
//
// # Concepts
//
// Nothing of CUDA is needed to build: driver.go declares the few types and functions
// of the driver API, NVRTC, cuBLAS and cuDNN it uses, and loads the libraries with
// dlopen when a backend opens. Library discovery (libs.go) tries the versioned names
// of several CUDA majors (none newer than the driver first) in the configured
// directories, through the dynamic loader, and in the places CUDA installs itself on
// x86-64 machines, Arm servers and Jetsons. Probe reports what it found, with versions,
// GPUs and the L4T release, for `edgedepth doctor`.
//
// Kernels are CUDA C held in the binary as Go strings (kernels*.go), some generated
// from tables (the element-wise ops), grouped in families. A family is compiled by
// NVRTC the first time one of its kernels runs, for the GPU found (machine code for
// its SM version, or PTX for the newest architecture NVRTC knows when the GPU is
// newer), and the result is kept on disk under a name hashed from the source, the
// architecture, the driver and NVRTC versions and the options (compile.go), so later
// runs skip the compiler.
//
// Matrix products go through cuBLAS (column-major; gemm in ops_matmul.go translates).
// Convolutions go through cuDNN's convolution API where cuDNN 8 or 9 loads and has it
// (ops_cudnn.go: descriptors and an algorithm per shape and direction, chosen once by
// cuDNN's heuristics or, with ConvSearch "find", by timing; workspaces from the pool),
// and otherwise, or for a shape cuDNN does not support, through im2col + cuBLAS
// (ops_conv.go). Under Options.Conv "auto" batch-1 convolutions (inference) take
// im2col, where cuDNN's per-call cost makes it slower, and training batches cuDNN;
// EDGEDEPTH_CUDA_CONV=cudnn|im2col forces one for comparison and tests; ConvImpl says
// which runs. TF32 is off unless Options.TF32 asks for it, in cuBLAS and cuDNN alike
// (without it cuDNN runs FMA kernels only), so results agree with the CPU backend to
// float32 precision; every op passes tensor/backendtest with the CPU's tolerances.
// Sums accumulate in double, as the CPU backend's do.
//
// Every status code of every library becomes an *Error naming the call, in one
// function (check, status.go). A machine without CUDA gets errors wrapping
// ErrUnavailable (and ErrNoDriver without libcuda), never a panic.
//
// # Lifecycle
//
// Open finds the libraries, picks the GPU and starts the owner goroutine, which
// retains the device's primary context and creates one stream, one cuBLAS handle and,
// when convolutions use cuDNN, one cuDNN handle, both bound to the stream.
// Ops allocate their outputs from a pool of device blocks by size class; Free returns
// a tensor's block at once (freeing again does nothing), and a tensor dropped without
// Free returns it when the garbage collector finds it (runtime.AddCleanup), the
// safety net. Live counts the buffers handed out and not yet returned; tests check it
// comes back to where it started. Close waits for the GPU, gives every block back to
// the driver, unloads the modules, destroys cuDNN's descriptors, the handles and the
// stream, and releases the context; tensors of a closed backend must not be used, and
// its ops return ErrClosed.
//
// # Concurrency
//
// A CUDA context is current per OS thread. One goroutine, locked to its thread for
// its whole life, owns the context, the stream, the cuBLAS and cuDNN handles, cuDNN's
// plans, the pool and the compiled modules, and runs every CUDA call: the methods of Backend validate their
// operands on the caller's goroutine, then hand a closure to the owner and wait for
// it. So a Backend may be used from several goroutines at once; their ops run one
// after the other, in the order the owner receives them. All kernels run on the one
// stream, in the order they were queued: a block freed by one op and reused by the
// next cannot be overwritten before the kernels reading it have run, and nothing
// needs to wait for the GPU except ToHost (and Sync). Errors of a kernel that fails
// while running surface at the next synchronisation; Options.SyncEveryLaunch (or
// EDGEDEPTH_CUDA_SYNC=1) pins them to the kernel that caused them.
package cuda
