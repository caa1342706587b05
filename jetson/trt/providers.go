package trt

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	ort "github.com/yalue/onnxruntime_go"
)

// The CUDA and TensorRT code paths below were written from ONNX Runtime's
// documentation of its provider options and have not run here: the development and
// CI machines have no ONNX Runtime GPU build and no TensorRT (see the README). What
// differs between providers is confined to this file; the rest of the engine runs
// the same code for each, and is tested with the CPU provider.

// sessionOptions are the session options of one network on o's provider. key is the
// hash that names the network's TensorRT engine cache folder; dims are the input
// dimensions exported (0: symbolic).
func sessionOptions(o Options, network, input, key string, dims [4]int) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: session options: %w", err)
	}
	fail := func(err error) (*ort.SessionOptions, error) {
		so.Destroy()
		return nil, err
	}
	if o.Threads > 0 {
		if err := so.SetIntraOpNumThreads(o.Threads); err != nil {
			return fail(fmt.Errorf("onnxruntime: threads: %w", err))
		}
	}
	// The two networks run one after the other; parallelism is inside the ops.
	if err := so.SetInterOpNumThreads(1); err != nil {
		return fail(fmt.Errorf("onnxruntime: threads: %w", err))
	}
	switch o.Provider {
	case CPU, "":
	case CUDA:
		if err := appendCUDA(so, o); err != nil {
			return fail(err)
		}
	case TensorRT:
		if err := appendTensorRT(so, o, network, input, key, dims); err != nil {
			return fail(err)
		}
		// Nodes TensorRT does not take run on CUDA rather than on the CPU.
		if err := appendCUDA(so, o); err != nil {
			return fail(err)
		}
	}
	return so, nil
}

func appendCUDA(so *ort.SessionOptions, o Options) error {
	opts, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return providerError(CUDA, fmt.Errorf("onnxruntime: cuda provider options: %w", err))
	}
	defer opts.Destroy()
	if err := opts.Update(map[string]string{"device_id": strconv.Itoa(o.DeviceID)}); err != nil {
		return providerError(CUDA, fmt.Errorf("onnxruntime: cuda provider options: %w", err))
	}
	if err := so.AppendExecutionProviderCUDA(opts); err != nil {
		return providerError(CUDA, fmt.Errorf("onnxruntime: cuda provider: %w", err))
	}
	return nil
}

// tensorRTOptions are the TensorRT provider's options (the keys of ONNX Runtime's
// OrtTensorRTProviderOptionsV2) for one network.
func tensorRTOptions(o Options, network, input, key string, dims [4]int) map[string]string {
	t := o.TensorRT
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	m := map[string]string{
		"device_id":                         strconv.Itoa(o.DeviceID),
		"trt_fp16_enable":                   flag(t.FP16),
		"trt_weight_stripped_engine_enable": flag(t.Refit),
	}
	if t.WorkspaceBytes > 0 {
		m["trt_max_workspace_size"] = strconv.FormatInt(t.WorkspaceBytes, 10)
	}
	if t.EngineCacheDir != "" {
		precision := "fp32"
		if t.FP16 {
			precision = "fp16"
		}
		kind := "engine"
		if t.Refit {
			kind = "refit"
		}
		dir := filepath.Join(t.EngineCacheDir, fmt.Sprintf("%s-%s-%s-%s", network, key[:min(16, len(key))], precision, kind))
		m["trt_engine_cache_enable"] = "1"
		m["trt_engine_cache_path"] = dir
		m["trt_timing_cache_enable"] = "1"
		m["trt_timing_cache_path"] = t.EngineCacheDir
	}
	// A fixed image size with a symbolic batch: one profile, batch 1 … MaxBatch.
	if dims[0] == 0 && dims[2] > 0 && dims[3] > 0 {
		maxBatch := max(1, t.MaxBatch)
		shape := func(n int) string { return fmt.Sprintf("%s:%dx%dx%dx%d", input, n, dims[1], dims[2], dims[3]) }
		m["trt_profile_min_shapes"] = shape(1)
		m["trt_profile_opt_shapes"] = shape(1)
		m["trt_profile_max_shapes"] = shape(maxBatch)
	}
	return m
}

func appendTensorRT(so *ort.SessionOptions, o Options, network, input, key string, dims [4]int) error {
	m := tensorRTOptions(o, network, input, key, dims)
	opts, err := ort.NewTensorRTProviderOptions()
	if err != nil {
		return providerError(TensorRT, fmt.Errorf("onnxruntime: tensorrt provider options: %w", err))
	}
	defer opts.Destroy()
	if err := opts.Update(m); err != nil {
		return providerError(TensorRT, fmt.Errorf("onnxruntime: tensorrt provider options (%v): %w", m, err))
	}
	if err := so.AppendExecutionProviderTensorRT(opts); err != nil {
		return providerError(TensorRT, fmt.Errorf("onnxruntime: tensorrt provider: %w", err))
	}
	if dir := m["trt_engine_cache_path"]; dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("onnxruntime: tensorrt engine cache: %w", err)
		}
	}
	return nil
}

// providerError marks err, from setting up a GPU provider, as the provider being
// unavailable (wrapping ErrProviderUnavailable) and says what it needs.
func providerError(p Provider, err error) error {
	needs := "an ONNX Runtime GPU build (libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so beside libonnxruntime.so.1), CUDA, cuDNN and an NVIDIA GPU"
	if p == TensorRT {
		needs = "an ONNX Runtime GPU build with TensorRT (libonnxruntime_providers_tensorrt.so, _cuda.so and _shared.so beside libonnxruntime.so.1), TensorRT (10 or newer for Refit), CUDA, cuDNN and an NVIDIA GPU, as JetPack provides on a Jetson"
	}
	return fmt.Errorf("%w: %s: %w; the %s provider needs %s (the CPU-only library that `make onnxruntime` fetches has no GPU provider: use the cpu provider with it)",
		ErrProviderUnavailable, p, err, p, needs)
}

// CheckProvider loads ONNX Runtime (library as Options.LibraryPath) and checks that it
// has provider p, without a model: what `edgedepth doctor` reports. For TensorRT it
// checks only that the provider is built in; whether TensorRT's own libraries load
// shows when a session is made.
func CheckProvider(library string, p Provider) error {
	if _, err := loadLibrary(library); err != nil {
		return err
	}
	so, err := sessionOptions(Options{Provider: p}, "check", "image", "check", [4]int{})
	if err != nil {
		return err
	}
	so.Destroy()
	return nil
}
