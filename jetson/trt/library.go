package trt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// LibraryEnv names the environment variable with the ONNX Runtime library to load: a
// file, or a folder holding libonnxruntime.so.1; several, separated by ':', are tried
// in order.
const LibraryEnv = "EDGEDEPTH_ONNXRUNTIME_LIB"

// loaderNames are what the dynamic loader is asked for after the configured paths.
var loaderNames = []string{"libonnxruntime.so.1", "libonnxruntime.so"}

// ErrLibrary is wrapped by the error Open returns when no ONNX Runtime library loads.
var ErrLibrary = errors.New("ONNX Runtime library not available")

// libraryHelp says how to get the library; it ends every ErrLibrary error.
const libraryHelp = "edgedepth needs libonnxruntime.so.1 of ONNX Runtime 1.24 or newer (the C API of onnxruntime_go v1.27). " +
	"For the CPU provider: `make onnxruntime` fetches it from the npm package onnxruntime-node@1.24.1 into third_party/onnxruntime/<x64|arm64>/ " +
	"(by hand: `npm pack onnxruntime-node@1.24.1` and take package/bin/napi-v6/linux/<arch>/libonnxruntime.so.1 out of the tarball). " +
	"For the CUDA and TensorRT providers use an ONNX Runtime GPU build (on a Jetson one built for its JetPack), with its libonnxruntime_providers_*.so beside it. " +
	"Then set " + LibraryEnv + " to the file (or its folder), or put it on the dynamic loader's path"

// env is ONNX Runtime's environment: one per process (onnxruntime_go keeps it in
// package state). It is created by the first Open and kept until the process ends:
// unloading ONNX Runtime while its thread pools may still run is not worth the
// memory it frees.
var env struct {
	sync.Mutex
	path string // the library loaded; "" until one is
}

// candidates lists the libraries to try, in order: explicit alone when set, else the
// entries of envValue (a folder stands for its libonnxruntime.so.1), then the
// loader's names.
func candidates(explicit, envValue string) []string {
	if explicit != "" {
		return []string{explicit}
	}
	var out []string
	for _, p := range strings.Split(envValue, ":") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			p = filepath.Join(p, loaderNames[0])
		}
		out = append(out, p)
	}
	return append(out, loaderNames...)
}

// loadLibrary makes sure ONNX Runtime is loaded and its environment exists, and
// returns the library's path. Once one is loaded, asking for another explicitly is
// an error; without an explicit path the loaded one serves.
func loadLibrary(explicit string) (string, error) {
	env.Lock()
	defer env.Unlock()
	if env.path != "" {
		if explicit != "" && explicit != env.path {
			return "", fmt.Errorf("%w: %s is already loaded in this process; cannot load %s as well", ErrLibrary, env.path, explicit)
		}
		return env.path, nil
	}
	if ort.IsInitialized() {
		env.path = "(loaded elsewhere in this process)"
		return env.path, nil
	}
	var tried []string
	for _, c := range candidates(explicit, os.Getenv(LibraryEnv)) {
		ort.SetSharedLibraryPath(c)
		err := ort.InitializeEnvironment(ort.WithLogLevelError())
		if err == nil {
			env.path = c
			return c, nil
		}
		tried = append(tried, fmt.Sprintf("%s: %v", c, err))
	}
	return "", fmt.Errorf("%w: tried %s. %s", ErrLibrary, strings.Join(tried, "; "), libraryHelp)
}

// Version is the version of the loaded ONNX Runtime, "" before one is loaded.
func Version() string {
	env.Lock()
	defer env.Unlock()
	if env.path == "" {
		return ""
	}
	return ort.GetVersion()
}
