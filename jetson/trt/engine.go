package trt

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgedepth/edgedepth/nn/onnx"
)

// Provider names an ONNX Runtime execution provider.
type Provider string

// The providers an Engine can run on.
const (
	// CPU is ONNX Runtime's own CPU provider (every build has it).
	CPU Provider = "cpu"
	// CUDA is the CUDA provider (cuDNN); needs a GPU build of ONNX Runtime.
	CUDA Provider = "cuda"
	// TensorRT is the TensorRT provider, with CUDA behind it for any node TensorRT
	// does not take; needs a GPU build of ONNX Runtime with TensorRT, as on a Jetson.
	TensorRT Provider = "tensorrt"
)

// ParseProvider reads a provider name: "cpu", "cuda", "tensorrt", or the
// configuration's spellings "onnxruntime-cpu" and "onnxruntime-cuda".
func ParseProvider(s string) (Provider, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "cpu", "onnxruntime-cpu":
		return CPU, nil
	case "cuda", "onnxruntime-cuda":
		return CUDA, nil
	case "tensorrt", "onnxruntime-tensorrt":
		return TensorRT, nil
	}
	return "", fmt.Errorf("onnxruntime: unknown provider %q (cpu, cuda or tensorrt)", s)
}

// Options configure an Engine.
type Options struct {
	// LibraryPath is the libonnxruntime.so.1 to load. Empty: the files or folders
	// in $EDGEDEPTH_ONNXRUNTIME_LIB (':'-separated), then the dynamic loader's
	// search for libonnxruntime.so.1. One library serves the whole process: the
	// first Open loads it.
	LibraryPath string
	// Provider runs the networks: CPU (default), CUDA or TensorRT.
	Provider Provider
	// Threads is the number of threads of ONNX Runtime's CPU work (the CPU
	// provider's intra-op pool, and nodes a GPU provider leaves to the CPU);
	// 0: ONNX Runtime's default, one per physical core.
	Threads int
	// DeviceID is the CUDA device of the CUDA and TensorRT providers (default 0).
	DeviceID int
	// TensorRT configures the TensorRT provider.
	TensorRT TensorRTOptions
}

// TensorRTOptions configure the TensorRT provider.
type TensorRTOptions struct {
	// FP16 lets TensorRT run layers in half precision (default false: FP32).
	FP16 bool
	// EngineCacheDir keeps built engines (and TensorRT's timing cache) on disk, so
	// that only the first Open of a network builds its engine (minutes on a
	// Jetson). Each network gets a sub-folder named after its hash: the ONNX
	// file's for plain engines, so new weights build a new engine and a stale one
	// is never used; the structure's (the graph without weights) with Refit.
	// Old sub-folders may be deleted at any time. Empty: no cache (default).
	EngineCacheDir string
	// Refit builds weight-stripped, refittable engines (TensorRT 10 or newer; ONNX
	// Runtime's trt_weight_stripped_engine_enable): a cached engine is refitted
	// with the weights of the ONNX file it is opened with, so new weights of the
	// same network (a training update, re-exported) load without a full rebuild.
	// Default false.
	Refit bool
	// MaxBatch is the largest batch the engines are built for when the model's
	// batch is symbolic and its image size fixed (the optimisation profile is
	// batch 1 … MaxBatch, tuned for 1). 0 means 1.
	MaxBatch int
	// WorkspaceBytes bounds TensorRT's scratch memory while building; 0: the
	// provider's default.
	WorkspaceBytes int64
}

// Validate checks the options.
func (o Options) Validate() error {
	switch o.Provider {
	case "", CPU, CUDA, TensorRT:
	default:
		return fmt.Errorf("onnxruntime: unknown provider %q (cpu, cuda or tensorrt)", o.Provider)
	}
	if o.Threads < 0 {
		return fmt.Errorf("onnxruntime: threads %d must be ≥ 0", o.Threads)
	}
	if o.DeviceID < 0 {
		return fmt.Errorf("onnxruntime: device id %d must be ≥ 0", o.DeviceID)
	}
	if o.TensorRT.MaxBatch < 0 || o.TensorRT.WorkspaceBytes < 0 {
		return fmt.Errorf("onnxruntime: tensorrt max batch %d and workspace %d must be ≥ 0", o.TensorRT.MaxBatch, o.TensorRT.WorkspaceBytes)
	}
	return nil
}

// Errors of an Engine.
var (
	// ErrProviderUnavailable is wrapped when the loaded ONNX Runtime has no such
	// provider, or the provider cannot start (its libraries or the GPU missing).
	ErrProviderUnavailable = errors.New("execution provider unavailable")
	// ErrClosed is returned by a run on a closed Engine.
	ErrClosed = errors.New("onnxruntime: engine closed")
	// ErrShape is wrapped when a buffer's length or an image size does not fit.
	ErrShape = errors.New("onnxruntime: shape mismatch")
)

// liveSessions counts ONNX Runtime sessions not yet destroyed.
var liveSessions atomic.Int64

// LiveSessions is the number of ONNX Runtime sessions open in this process (two per
// open Engine): 0 once every Engine is closed.
func LiveSessions() int { return int(liveSessions.Load()) }

// Engine runs an exported depth network and pose network (see nn/onnx) on ONNX
// Runtime. Depth and Pose may be called from several goroutines at once; Close
// waits for the runs in flight.
type Engine struct {
	info    Info
	mu      sync.RWMutex
	s       *sessions // nil once closed
	cleanup runtime.Cleanup
}

// Info describes an open Engine.
type Info struct {
	Library  string   // the ONNX Runtime library loaded
	Version  string   // its version
	Provider Provider // the provider the sessions were created for
	Dir      string   // the export directory
	// Depth and Pose are the graphs' input shapes as exported (from the
	// manifest; symbolic dimensions are 0), when the directory has one.
	Depth, Pose [4]int
	// Manifest is the export's manifest; zero when the directory has none.
	Manifest onnx.Manifest
}

type sessions struct {
	depth, pose *ort.DynamicAdvancedSession
}

func (s *sessions) destroy() error {
	var errs []error
	for _, x := range []*ort.DynamicAdvancedSession{s.depth, s.pose} {
		if x != nil {
			errs = append(errs, x.Destroy())
			liveSessions.Add(-1)
		}
	}
	s.depth, s.pose = nil, nil
	return errors.Join(errs...)
}

// Open loads ONNX Runtime (once per process) and creates sessions for the exported
// networks in dir: onnx.DepthFile and onnx.PoseFile, described by onnx.ManifestFile
// (the output of `edgedepth export onnx`). Without a manifest the files are used as
// they are (inputs and outputs must have the nn/onnx names), image sizes are not
// checked before a run and Refit falls back to per-file engines.
func Open(dir string, o Options) (*Engine, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Provider == "" {
		o.Provider = CPU
	}
	info := Info{Provider: o.Provider, Dir: dir}
	man, err := onnx.ReadManifest(dir)
	switch {
	case err == nil:
		info.Manifest = man
		info.Depth = fixedDims(man.Depth)
		info.Pose = fixedDims(man.Pose)
	case errors.Is(err, os.ErrNotExist):
	default:
		return nil, fmt.Errorf("onnxruntime: %w", err)
	}
	lib, err := loadLibrary(o.LibraryPath)
	if err != nil {
		return nil, err
	}
	info.Library, info.Version = lib, ort.GetVersion()

	s := &sessions{}
	for _, n := range []struct {
		name, file string
		in         string
		out        []string
		dims       [4]int
		net        onnx.Network
		session    **ort.DynamicAdvancedSession
	}{
		{"depth", onnx.DepthFile, onnx.DepthInput, []string{onnx.DepthDisparity, onnx.DepthDepth}, info.Depth, man.Depth, &s.depth},
		{"pose", onnx.PoseFile, onnx.PoseInput, []string{onnx.PoseAxisAngle, onnx.PoseTranslation}, info.Pose, man.Pose, &s.pose},
	} {
		path := filepath.Join(dir, n.file)
		sum, err := fileSHA256(path)
		if err != nil {
			s.destroy()
			return nil, fmt.Errorf("onnxruntime: %s network: %w", n.name, err)
		}
		if n.net.SHA256 != "" && n.net.SHA256 != sum {
			s.destroy()
			return nil, fmt.Errorf("onnxruntime: %s does not match %s (SHA-256 %s, the manifest says %s): export again", path, onnx.ManifestFile, sum[:12], n.net.SHA256[:min(12, len(n.net.SHA256))])
		}
		key := sum
		if o.TensorRT.Refit && n.net.StructureSHA256 != "" {
			key = n.net.StructureSHA256
		}
		so, err := sessionOptions(o, n.name, n.in, key, n.dims)
		if err != nil {
			s.destroy()
			return nil, err
		}
		sess, err := ort.NewDynamicAdvancedSession(path, []string{n.in}, n.out, so)
		so.Destroy()
		if err != nil {
			s.destroy()
			return nil, fmt.Errorf("onnxruntime: %s network %s on the %s provider: %w", n.name, path, o.Provider, err)
		}
		liveSessions.Add(1)
		*n.session = sess
	}
	e := &Engine{info: info, s: s}
	// Safety net: sessions of an Engine dropped without Close are released when it
	// is collected.
	e.cleanup = runtime.AddCleanup(e, func(s *sessions) { s.destroy() }, s)
	return e, nil
}

// fixedDims are a network's input dimensions from the manifest, 0 where symbolic.
func fixedDims(n onnx.Network) [4]int {
	var d [4]int
	if len(n.Inputs) == 1 && len(n.Inputs[0].Shape) == 4 {
		for i, x := range n.Inputs[0].Shape {
			d[i] = int(x.Value)
		}
	}
	return d
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Info describes the engine.
func (e *Engine) Info() Info { return e.info }

// Close destroys the sessions, after the runs in flight. Closing twice does nothing.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.s == nil {
		return nil
	}
	e.cleanup.Stop()
	err := e.s.destroy()
	e.s = nil
	if err != nil {
		return fmt.Errorf("onnxruntime: close: %w", err)
	}
	return nil
}

// Depth runs the depth network on images (n×3×h×w RGB in [0, 1], row-major) and
// writes the disparity and the depth in metres (n×1×h×w each) into disparity and
// depth, which must have n·h·w elements.
func (e *Engine) Depth(images []float32, n, h, w int, disparity, depth []float32) error {
	if err := e.check("depth", e.info.Depth, 3, images, n, h, w); err != nil {
		return err
	}
	px := n * h * w
	if len(disparity) != px || len(depth) != px {
		return fmt.Errorf("%w: depth outputs of %d and %d values for %d×1×%d×%d", ErrShape, len(disparity), len(depth), n, h, w)
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.s == nil {
		return ErrClosed
	}
	img, out := ort.NewShape(int64(n), 3, int64(h), int64(w)), ort.NewShape(int64(n), 1, int64(h), int64(w))
	return run(e.s.depth, "depth", []buffer{{images, img}}, []buffer{{disparity, out}, {depth, out}})
}

// Pose runs the pose network on pairs (n×6×h×w: two RGB images in [0, 1] stacked
// along channels, as nn/onnx.PoseInput describes) and writes the axis-angle
// rotation and the translation (n×3 each) into axisAngle and translation.
func (e *Engine) Pose(pairs []float32, n, h, w int, axisAngle, translation []float32) error {
	if err := e.check("pose", e.info.Pose, 6, pairs, n, h, w); err != nil {
		return err
	}
	if len(axisAngle) != 3*n || len(translation) != 3*n {
		return fmt.Errorf("%w: pose outputs of %d and %d values for batch %d (want %d each)", ErrShape, len(axisAngle), len(translation), n, 3*n)
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.s == nil {
		return ErrClosed
	}
	in, out := ort.NewShape(int64(n), 6, int64(h), int64(w)), ort.NewShape(int64(n), 3)
	return run(e.s.pose, "pose", []buffer{{pairs, in}}, []buffer{{axisAngle, out}, {translation, out}})
}

// check validates an input buffer against its size and the exported shape.
func (e *Engine) check(network string, fixed [4]int, channels int, x []float32, n, h, w int) error {
	if n < 1 || h < 1 || w < 1 {
		return fmt.Errorf("%w: %s input %d×%d×%d×%d", ErrShape, network, n, channels, h, w)
	}
	if len(x) != n*channels*h*w {
		return fmt.Errorf("%w: %s input of %d values for %d×%d×%d×%d", ErrShape, network, len(x), n, channels, h, w)
	}
	for i, v := range [4]int{n, channels, h, w} {
		if fixed[i] != 0 && fixed[i] != v {
			return fmt.Errorf("%w: the %s network was exported for %d×%d×%d×%d (0: any), got %d×%d×%d×%d",
				ErrShape, network, fixed[0], fixed[1], fixed[2], fixed[3], n, channels, h, w)
		}
	}
	return nil
}

// buffer is host memory handed to ONNX Runtime for one run.
type buffer struct {
	data  []float32
	shape ort.Shape
}

// run wraps the buffers as tensors (no copy), runs the session and releases the
// tensors. The buffers are pinned while ONNX Runtime holds pointers to them.
func run(s *ort.DynamicAdvancedSession, network string, ins, outs []buffer) error {
	var pin runtime.Pinner
	defer pin.Unpin()
	var values []ort.Value
	defer func() {
		for _, v := range values {
			v.Destroy()
		}
	}()
	wrap := func(bs []buffer) ([]ort.Value, error) {
		vs := make([]ort.Value, len(bs))
		for i, b := range bs {
			pin.Pin(&b.data[0])
			t, err := ort.NewTensor(b.shape, b.data)
			if err != nil {
				return nil, fmt.Errorf("onnxruntime: %s: %w", network, err)
			}
			values = append(values, t)
			vs[i] = t
		}
		return vs, nil
	}
	in, err := wrap(ins)
	if err != nil {
		return err
	}
	out, err := wrap(outs)
	if err != nil {
		return err
	}
	if err := s.Run(in, out); err != nil {
		return fmt.Errorf("onnxruntime: %s: %w", network, err)
	}
	return nil
}
