package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/edgedepth/edgedepth/tensor"
)

func init() {
	tensor.Register("cuda", func() (tensor.Backend, error) {
		b, err := Open(DefaultOptions())
		if err != nil {
			return nil, err // not a nil *Backend inside a non-nil interface
		}
		return b, nil
	})
}

// Options configure a backend.
type Options struct {
	// Device is the GPU's index (default 0).
	Device int
	// LibraryDirs are searched for the CUDA libraries before the dynamic loader and the
	// usual install locations (default: EDGEDEPTH_CUDA_LIBRARY_PATH, colon-separated).
	LibraryDirs []string
	// CacheDir keeps compiled kernels between runs; "" keeps none (default:
	// DefaultCacheDir(), or EDGEDEPTH_CUDA_CACHE_DIR; "off" there disables it).
	CacheDir string
	// TF32 lets cuBLAS and cuDNN multiply float32 matrices and convolve on the tensor
	// cores with TF32 inputs (10-bit mantissas): several times faster, about 1e-3
	// relative error. Default off (or EDGEDEPTH_CUDA_TF32=1), for parity with the CPU
	// backend and PyTorch's default.
	TF32 bool
	// PoolBytes is how much freed device memory is kept for reuse, in bytes (default:
	// a quarter of the GPU's memory).
	PoolBytes int64
	// SyncEveryLaunch waits for every kernel to finish, so that a failing kernel's error
	// names it instead of a later call (debugging; default off, or EDGEDEPTH_CUDA_SYNC=1).
	SyncEveryLaunch bool
	// Conv selects how convolutions run: "auto" uses cuDNN for batches above 1 when it
	// loads and has the convolution API, and im2col + cuBLAS at batch 1 (where cuDNN's
	// per-call cost makes it slower) or without cuDNN; "cudnn" uses cuDNN wherever it can, and
	// makes Open fail without a usable cuDNN; "im2col" never uses cuDNN (default
	// "auto", or EDGEDEPTH_CUDA_CONV).
	Conv string
	// ConvSearch is how cuDNN's algorithm is chosen, once per shape and direction:
	// "heuristic" asks cuDNN's heuristics, "find" times every algorithm on the first
	// call (default "heuristic", or EDGEDEPTH_CUDA_CONV_SEARCH).
	ConvSearch string
	// ConvWorkspaceBytes bounds the workspace of one cuDNN call, in bytes (default:
	// 1 GiB, at most a sixteenth of the GPU's memory).
	ConvWorkspaceBytes int64
}

// DefaultOptions are the options of the registered "cuda" backend: the defaults above
// with the EDGEDEPTH_CUDA_* environment applied.
func DefaultOptions() Options {
	o := Options{CacheDir: DefaultCacheDir()}
	if v := os.Getenv("EDGEDEPTH_CUDA_LIBRARY_PATH"); v != "" {
		for _, d := range filepath.SplitList(v) {
			if d != "" {
				o.LibraryDirs = append(o.LibraryDirs, d)
			}
		}
	}
	switch v := os.Getenv("EDGEDEPTH_CUDA_CACHE_DIR"); v {
	case "":
	case "off":
		o.CacheDir = ""
	default:
		o.CacheDir = v
	}
	o.SyncEveryLaunch = os.Getenv("EDGEDEPTH_CUDA_SYNC") == "1"
	o.TF32 = os.Getenv("EDGEDEPTH_CUDA_TF32") == "1"
	o.Conv = os.Getenv("EDGEDEPTH_CUDA_CONV")
	o.ConvSearch = os.Getenv("EDGEDEPTH_CUDA_CONV_SEARCH")
	return o
}

// validate checks the options that name a choice, naming the field and its variable.
func (o Options) validate() error {
	return errors.Join(validConv(o.Conv), validSearch(o.ConvSearch))
}

// Backend runs tensor ops on one NVIDIA GPU. Its methods may be called from any
// goroutine, also concurrently: they hand their work to the owner goroutine, which
// runs it in order (see doc.go).
type Backend struct {
	opts Options
	own  *owner
	dev  DeviceInfo

	// Owned by the owner goroutine after Open.
	device        cuDevice
	ctx           cuContext
	stream        cuStream
	blas          blasHandle
	target        compileTarget
	driverVersion int
	nvrtcVersion  string
	modules       map[string]cuModule
	funcs         map[string]cuFunction
	pool          *pool
	dnn           *dnnState // nil: convolutions run on im2col
	stats         struct {
		compiles, cacheHits int
		cacheErr            error
	}

	// convImpl is ConvImpl's answer; dnnWhy why cuDNN cannot serve convolutions ("" if
	// it can), both settled before the owner starts.
	convImpl, dnnWhy, dnnVersion string

	closed atomic.Bool
}

var _ tensor.Backend = (*Backend)(nil)

// Open finds the CUDA libraries, opens GPU opts.Device and starts the owner goroutine.
// Without a usable CUDA it returns an error wrapping ErrUnavailable (and ErrNoDriver
// where libcuda itself is missing); it never panics.
func Open(opts Options) (*Backend, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	info := probe(opts)
	if info.Err != nil {
		return nil, info.Err
	}
	if opts.Device < 0 || opts.Device >= len(info.Devices) {
		return nil, fmt.Errorf("%w: no GPU %d (%d found)", ErrUnavailable, opts.Device, len(info.Devices))
	}
	b := &Backend{
		opts:          opts,
		dev:           info.Devices[opts.Device],
		driverVersion: info.DriverVersion,
		nvrtcVersion:  info.NVRTC.Version,
		modules:       map[string]cuModule{},
		funcs:         map[string]cuFunction{},
		convImpl:      ConvIm2col,
		dnnWhy:        cudnnUsable(info.CUDNN),
		dnnVersion:    info.CUDNN.Version,
	}
	if opts.Conv == ConvCUDNN && b.dnnWhy != "" {
		return nil, fmt.Errorf("cuda: Options.Conv (EDGEDEPTH_CUDA_CONV) is %s, but cuDNN cannot serve: %s", ConvCUDNN, b.dnnWhy)
	}
	supported, err := nvrtcSupportedArchs()
	if err != nil {
		return nil, err
	}
	if b.target, err = chooseTarget(b.dev.SM, supported, nvrtcCanCUBIN()); err != nil {
		return nil, err
	}
	poolBytes := opts.PoolBytes
	if poolBytes <= 0 {
		poolBytes = b.dev.MemoryBytes / 4
	}
	b.pool = newPool(poolBytes)
	b.own, err = startOwner(b.setup)
	if err != nil {
		return nil, fmt.Errorf("cuda: open GPU %d (%s): %w", b.dev.Index, b.dev.Name, err)
	}
	return b, nil
}

// setup runs first on the owner goroutine: the device's primary context (the one the
// CUDA runtime inside cuBLAS also uses), one stream for all work, and the cuBLAS
// handle bound to it. On failure it undoes what it did.
func (b *Backend) setup() (err error) {
	var undo []func() error
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				_ = undo[i]()
			}
		}
	}()
	if b.device, err = cuDeviceGet(b.dev.Index); err != nil {
		return err
	}
	if b.ctx, err = cuDevicePrimaryCtxRetain(b.device); err != nil {
		return err
	}
	undo = append(undo, func() error { return cuDevicePrimaryCtxRelease(b.device) })
	if err = cuCtxSetCurrent(b.ctx); err != nil {
		return err
	}
	if b.stream, err = cuStreamCreate(); err != nil {
		return err
	}
	undo = append(undo, func() error { return cuStreamDestroy(b.stream) })
	if b.blas, err = cublasCreate(); err != nil {
		return err
	}
	undo = append(undo, func() error { return cublasDestroy(b.blas) })
	if err = cublasSetStream(b.blas, b.stream); err != nil {
		return err
	}
	mode := blasDefaultMath
	if b.opts.TF32 {
		mode = blasTF32Math
	}
	if err = cublasSetMathMode(b.blas, mode); err != nil {
		return err
	}
	if b.opts.Conv == ConvIm2col {
		return nil
	}
	if b.dnnWhy == "" {
		// The cuDNN handle belongs to this goroutine's thread and context, and runs on
		// the one stream like everything else.
		if err = b.setupCUDNN(b.dnnVersion); err != nil {
			if b.opts.Conv == ConvCUDNN {
				return err
			}
			b.dnnWhy, err = err.Error(), nil
		} else {
			undo = append(undo, b.closeCUDNN)
			b.convImpl = fmt.Sprintf("cudnn %s (%s)", b.dnnVersion, b.dnn.search)
			if b.dnn.batched {
				b.convImpl += ", im2col at batch 1"
			}
			return nil
		}
	}
	b.convImpl = ConvIm2col + " (cuDNN not used: " + b.dnnWhy + ")"
	return nil
}

// Name implements tensor.Backend.
func (b *Backend) Name() string { return "cuda" }

// Device describes the GPU the backend runs on.
func (b *Backend) Device() DeviceInfo { return b.dev }

// Target is the architecture kernels are compiled for ("sm_90", or "compute_XY" when
// the driver compiles PTX for a GPU newer than NVRTC).
func (b *Backend) Target() string { return b.target.arch }

// Close implements tensor.Backend: it waits for queued work, gives all device memory
// back (tensors of this backend become invalid), and ends the owner goroutine.
// Closing again does nothing.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	return b.own.stop(func() error {
		errs := []error{cuStreamSynchronize(b.stream), b.pool.releaseAll()}
		for _, m := range b.modules {
			errs = append(errs, cuModuleUnload(m))
		}
		b.modules, b.funcs = nil, nil
		errs = append(errs, b.closeCUDNN(), cublasDestroy(b.blas), cuStreamDestroy(b.stream), cuDevicePrimaryCtxRelease(b.device))
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("cuda: close: %w", err)
		}
		return nil
	})
}

// run hands f to the owner goroutine and waits for it. f must not call run.
func (b *Backend) run(f func() error) error {
	if b.closed.Load() {
		return ErrClosed
	}
	return b.own.do(f)
}

// Sync waits until the GPU has finished all queued work, and reports a kernel's
// failure that happened asynchronously.
func (b *Backend) Sync() error {
	return b.run(func() error { return cuStreamSynchronize(b.stream) })
}

// CompileStats reports how many kernel families were compiled by NVRTC and how many
// were loaded from the disk cache, and the last error writing the cache (nil if none).
func (b *Backend) CompileStats() (compiled, cached int, cacheErr error) {
	_ = b.run(func() error {
		compiled, cached, cacheErr = b.stats.compiles, b.stats.cacheHits, b.stats.cacheErr
		return nil
	})
	return compiled, cached, cacheErr
}

// ptr is the device address of a tensor of this backend. A tensor of another backend,
// or one used after Free, is a programmer error.
func (b *Backend) ptr(t *tensor.Tensor) devptr {
	bf, ok := t.Buffer.(*buffer)
	if !ok || bf.b != b {
		panic(fmt.Sprintf("cuda: tensor %v was not made by this CUDA backend", t))
	}
	if bf.freed.Load() {
		panic(fmt.Sprintf("cuda: tensor %v used after Free", t))
	}
	return bf.ptr
}

// notImplemented is the error of an op this backend does not have yet: callers may
// fall back to another backend on it (tensor.ErrNotImplemented), and only on it.
func notImplemented(op string) error {
	return fmt.Errorf("%s: %w (cuda)", op, tensor.ErrNotImplemented)
}
