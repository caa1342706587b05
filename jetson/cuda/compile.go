package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Kernels are CUDA C source held in the binary, compiled by NVRTC for the GPU found
// when a family of kernels is first used, and kept on disk so that later runs load the
// machine code directly. A cached file is named by a hash of everything that shapes
// the code: the source, the target architecture, the driver and NVRTC versions and the
// compiler options. A new build with changed kernels, another GPU, or an upgraded CUDA
// therefore never loads stale code; old files are simply not read again.

// family is a set of kernels compiled into one module from one source.
type family struct {
	name string // also the module's file name in NVRTC's messages
	src  string // CUDA C, without the common prelude
}

// compileTarget is what NVRTC is asked to produce for a GPU.
type compileTarget struct {
	arch  string // --gpu-architecture value: "sm_90" (machine code) or "compute_90" (PTX)
	cubin bool   // machine code (true) or PTX for the driver to compile (false)
}

// chooseTarget picks the target for a GPU of SM version sm given the SM versions
// NVRTC can produce machine code for (nil: unknown, an NVRTC older than 11.2).
// Machine code for the GPU itself when NVRTC knows it; otherwise PTX for the newest
// architecture NVRTC knows that the GPU can run, which the driver compiles on load
// (a GPU newer than the NVRTC).
func chooseTarget(sm int, supported []int, canCUBIN bool) (compileTarget, error) {
	if len(supported) == 0 {
		if canCUBIN {
			return compileTarget{arch: fmt.Sprintf("sm_%d", sm), cubin: true}, nil
		}
		return compileTarget{arch: fmt.Sprintf("compute_%d", sm)}, nil
	}
	if slices.Contains(supported, sm) && canCUBIN {
		return compileTarget{arch: fmt.Sprintf("sm_%d", sm), cubin: true}, nil
	}
	best := 0
	for _, a := range supported {
		if a <= sm && a > best {
			best = a
		}
	}
	if best == 0 {
		return compileTarget{}, fmt.Errorf("%w: GPU sm_%d is older than every architecture this NVRTC supports (%v)", ErrUnavailable, sm, supported)
	}
	return compileTarget{arch: fmt.Sprintf("compute_%d", best)}, nil
}

// compileOptions are NVRTC's options for a target. No fast-math: the kernels must
// agree with the CPU backend to float32 precision, and division, square roots and
// denormals keep IEEE semantics.
func compileOptions(t compileTarget) []string {
	return []string{"--gpu-architecture=" + t.arch}
}

// cacheKey names a compiled module: every input that changes the machine code.
func cacheKey(src string, t compileTarget, driverVersion int, nvrtcVersion string, opts []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "edgedepth cuda module v1\x00%s\x00%v\x00%d\x00%s\x00%s\x00", t.arch, t.cubin, driverVersion, nvrtcVersion, strings.Join(opts, "\x01"))
	h.Write([]byte(src))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// cacheFile is where family's module with key is kept in dir.
func cacheFile(dir, familyName, key string, t compileTarget) string {
	ext := ".ptx"
	if t.cubin {
		ext = ".cubin"
	}
	return filepath.Join(dir, familyName+"-"+t.arch+"-"+key+ext)
}

// DefaultCacheDir is where compiled kernels are kept unless Options.CacheDir says
// otherwise: the user's cache directory (XDG_CACHE_HOME or ~/.cache) under
// edgedepth/cuda, or "" (no disk cache) where there is none.
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "edgedepth", "cuda")
}

// writeCache stores a compiled image; failures leave the cache without it and the
// backend working (a read-only home, a full disk).
func writeCache(path string, image []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, werr := f.Write(image)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(f.Name())
		return werr
	}
	// Rename is atomic: a concurrent reader sees the whole file or none.
	return os.Rename(f.Name(), path)
}

// function returns kernel name of family, compiling and loading the family on first
// use (owner only).
func (b *Backend) function(f *family, name string) (cuFunction, error) {
	key := f.name + "/" + name
	if fn, ok := b.funcs[key]; ok {
		return fn, nil
	}
	m, err := b.module(f)
	if err != nil {
		return nil, err
	}
	fn, err := cuModuleGetFunction(m, name)
	if err != nil {
		return nil, err
	}
	b.funcs[key] = fn
	return fn, nil
}

// module compiles (or loads from the cache) and loads family f (owner only).
func (b *Backend) module(f *family) (cuModule, error) {
	if m, ok := b.modules[f.name]; ok {
		return m, nil
	}
	src := kernelPrelude + f.src
	opts := compileOptions(b.target)
	var path string
	if b.opts.CacheDir != "" {
		path = cacheFile(b.opts.CacheDir, f.name, cacheKey(src, b.target, b.driverVersion, b.nvrtcVersion, opts), b.target)
		if image, err := os.ReadFile(path); err == nil && len(image) > 0 {
			if m, err := cuModuleLoadData(image); err == nil {
				b.modules[f.name] = m
				b.stats.cacheHits++
				return m, nil
			}
			// A damaged file: compile afresh and overwrite it.
		}
	}
	image, err := nvrtcCompile(src, f.name+".cu", opts, b.target.cubin)
	if err != nil {
		return nil, fmt.Errorf("compile %s kernels for %s: %w", f.name, b.target.arch, err)
	}
	b.stats.compiles++
	m, err := cuModuleLoadData(image)
	if err != nil {
		return nil, fmt.Errorf("load %s kernels for %s: %w", f.name, b.target.arch, err)
	}
	b.modules[f.name] = m
	if path != "" {
		if err := writeCache(path, image); err != nil {
			b.stats.cacheErr = err
		}
	}
	return m, nil
}
