package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Library discovery. Each library is looked for under the versioned names of several
// CUDA majors, first in the directories the configuration names, then through the
// dynamic loader (LD_LIBRARY_PATH, ld.so.cache), then in the places CUDA installs
// itself on desktops, servers, containers and Jetsons. No single machine's layout is
// assumed: a Jetson keeps libcuda in the L4T driver directory and the toolkit under
// targets/aarch64-linux, a desktop under /usr/local/cuda/lib64 or the distribution's
// multiarch directory.

// LibraryInfo says where a library was found, or why not.
type LibraryInfo struct {
	Path    string // the file loaded ("" if none)
	Version string // as the library reports it, e.g. "13.0"
	Err     error  // why it could not be loaded (nil when Path is set)
}

func (l LibraryInfo) String() string {
	if l.Err != nil {
		return "not found: " + l.Err.Error()
	}
	if l.Version == "" {
		return l.Path
	}
	return l.Version + " (" + l.Path + ")"
}

// DeviceInfo describes one GPU.
type DeviceInfo struct {
	Index           int
	Name            string
	SM              int   // compute capability as major·10 + minor: 87 on Orin, 90 on H100
	MemoryBytes     int64 // total device memory
	Multiprocessors int
	Integrated      bool // shares memory with the CPU (Jetson)
}

// Info is what Probe finds: the libraries, their versions and the GPUs, for
// `edgedepth doctor` and for the reason a backend cannot open.
type Info struct {
	Driver, NVRTC, CUBLAS, CUDNN LibraryInfo
	CUDNNConv                    bool // cuDNN has the convolution API the backend uses
	DriverVersion                int  // as cuDriverGetVersion reports it: 13000 is CUDA 13.0
	Devices                      []DeviceInfo
	Jetson                       string // the L4T release line of /etc/nv_tegra_release, "" elsewhere
	Err                          error  // nil when the backend can open; wraps ErrUnavailable otherwise
}

func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "driver: %v\nnvrtc: %v\ncublas: %v\ncudnn: %v", i.Driver, i.NVRTC, i.CUBLAS, i.CUDNN)
	if i.CUDNN.Err == nil {
		if i.CUDNNConv {
			b.WriteString(", convolutions")
		} else {
			b.WriteString(", no convolution API (im2col)")
		}
	}
	b.WriteByte('\n')
	if i.Jetson != "" {
		fmt.Fprintf(&b, "jetson: %s\n", i.Jetson)
	}
	for _, d := range i.Devices {
		fmt.Fprintf(&b, "gpu %d: %s, sm_%d, %d multiprocessors, %.1f GiB", d.Index, d.Name, d.SM, d.Multiprocessors, float64(d.MemoryBytes)/(1<<30))
		if d.Integrated {
			b.WriteString(", integrated")
		}
		b.WriteByte('\n')
	}
	if i.Err != nil {
		fmt.Fprintf(&b, "unavailable: %v\n", i.Err)
	}
	return b.String()
}

// driverMajor is the CUDA major version of a cuDriverGetVersion number.
func driverMajor(v int) int { return v / 1000 }

// versionString turns a cuDriverGetVersion number into "13.0".
func versionString(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

// Library names by CUDA major, newest first. A library's major must not be newer than
// the driver's: CUDA 13's NVRTC emits code and cuBLAS links a runtime that a 12.x
// driver rejects.
var (
	nvrtcNames  = []versioned{{13, "libnvrtc.so.13"}, {12, "libnvrtc.so.12"}, {11, "libnvrtc.so.11.2"}, {0, "libnvrtc.so"}}
	cublasNames = []versioned{{13, "libcublas.so.13"}, {12, "libcublas.so.12"}, {11, "libcublas.so.11"}, {0, "libcublas.so"}}
	cudnnNames  = []versioned{{9, "libcudnn.so.9"}, {8, "libcudnn.so.8"}, {0, "libcudnn.so"}}
	driverNames = []versioned{{0, "libcuda.so.1"}, {0, "libcuda.so"}}
)

// versioned is a library file name and the CUDA major it belongs to (0: unversioned,
// tried last).
type versioned struct {
	major int
	name  string
}

// namesFor orders names for a driver of major driverMajor (0: unknown): the majors the
// driver can run, newest first, then the unversioned name, then newer majors (which
// may still work through CUDA's forward-compatibility package).
func namesFor(names []versioned, maxMajor int) []string {
	var ok, newer, bare []string
	for _, n := range names {
		switch {
		case n.major == 0:
			bare = append(bare, n.name)
		case maxMajor == 0 || n.major <= maxMajor:
			ok = append(ok, n.name)
		default:
			newer = append(newer, n.name)
		}
	}
	return slices.Concat(ok, bare, newer)
}

// defaultLibraryDirs are the places CUDA's libraries live on the platforms edgedepth
// runs on, for goarch ("amd64", "arm64"). versionedRoots are the /usr/local/cuda-X.Y
// installations present, newest first.
func defaultLibraryDirs(goarch string, versionedRoots []string) []string {
	triple, multiarch := "x86_64-linux", "x86_64-linux-gnu"
	if goarch == "arm64" {
		triple, multiarch = "aarch64-linux", "aarch64-linux-gnu"
	}
	roots := append([]string{"/usr/local/cuda"}, versionedRoots...)
	var dirs []string
	if goarch == "arm64" {
		// Jetson: the L4T driver (libcuda) and, on JetPack 6, its nvidia directory.
		dirs = append(dirs, "/usr/lib/aarch64-linux-gnu/tegra", "/usr/lib/aarch64-linux-gnu/nvidia")
	}
	for _, r := range roots {
		dirs = append(dirs, r+"/lib64", r+"/targets/"+triple+"/lib")
		if goarch == "arm64" {
			dirs = append(dirs, r+"/targets/sbsa-linux/lib") // Arm servers
		}
	}
	dirs = append(dirs,
		"/usr/local/nvidia/lib64", // containers with the NVIDIA runtime
		"/usr/lib/"+multiarch, "/lib/"+multiarch, "/usr/lib64",
	)
	if goarch == "amd64" {
		dirs = append(dirs, "/usr/lib/wsl/lib") // WSL2's driver
	}
	return dirs
}

// installedCUDARoots lists /usr/local/cuda-X.Y directories, newest first.
func installedCUDARoots() []string {
	roots, _ := filepath.Glob("/usr/local/cuda-*")
	slices.SortFunc(roots, func(a, b string) int { return compareVersions(b, a) })
	return roots
}

// compareVersions orders "…cuda-12.6" before "…cuda-12.10" by the numbers in the names.
func compareVersions(a, b string) int {
	na, nb := numbers(a), numbers(b)
	for i := 0; i < min(len(na), len(nb)); i++ {
		if na[i] != nb[i] {
			return na[i] - nb[i]
		}
	}
	return len(na) - len(nb)
}

func numbers(s string) []int {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// candidates is the order in which files are tried: every name in the configured
// directories, then for each name in turn the loader's own search followed by the
// default directories. Names come first in the outer loop so that a newer major found
// anywhere beats an older one found earlier on the path.
func candidates(names, configured, defaults []string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, d := range configured {
		for _, n := range names {
			add(filepath.Join(d, n))
		}
	}
	for _, n := range names {
		add(n) // a bare name: the dynamic loader searches
		for _, d := range defaults {
			add(filepath.Join(d, n))
		}
	}
	return out
}

// loaded is the process-wide state of the libraries: dlopen and the function pointers
// it fills are global, so each library is bound once, by the first search that finds
// it, and later searches reuse it.
var loaded struct {
	mu                           sync.Mutex
	driver, nvrtc, cublas, cudnn LibraryInfo
	driverVersion                int
}

// loadLibraries finds and binds the libraries not bound yet, searching dirs first.
func loadLibraries(dirs []string) Info {
	loaded.mu.Lock()
	defer loaded.mu.Unlock()
	defaults := defaultLibraryDirs(runtime.GOARCH, installedCUDARoots())
	find := func(li *LibraryInfo, lib libKind, names []string) bool {
		if li.Path != "" {
			return true
		}
		path, tried, err := dlopenFirst(lib, candidates(names, dirs, defaults))
		if err != nil {
			li.Err = &notFound{name: names[0], dirs: len(dirs) + len(defaults), first: firstTried(tried, err)}
			return false
		}
		*li = LibraryInfo{Path: path}
		return true
	}
	if find(&loaded.driver, libDriver, namesFor(driverNames, 0)) && loaded.driverVersion == 0 {
		// cuInit must come first; cuDriverGetVersion works without it but a stub
		// library (a container without a GPU) fails cuInit with a clear code.
		if v, err := cuDriverGetVersion(); err == nil {
			loaded.driverVersion = v
			loaded.driver.Version = versionString(v)
		}
	}
	maj := driverMajor(loaded.driverVersion)
	if find(&loaded.nvrtc, libNVRTC, namesFor(nvrtcNames, maj)) && loaded.nvrtc.Version == "" {
		if ma, mi, err := nvrtcVersion(); err == nil {
			loaded.nvrtc.Version = fmt.Sprintf("%d.%d", ma, mi)
		}
	}
	if find(&loaded.cublas, libCUBLAS, namesFor(cublasNames, maj)) && loaded.cublas.Version == "" {
		loaded.cublas.Version = cublasVersion()
	}
	if find(&loaded.cudnn, libCUDNN, namesFor(cudnnNames, 0)) && loaded.cudnn.Version == "" {
		if v := cudnnVersion(); v > 0 {
			// cuDNN 9 numbers its versions major·10000 + minor·100 + patch, cuDNN 8
			// major·1000 + minor·100 + patch.
			if v >= 90000 {
				loaded.cudnn.Version = fmt.Sprintf("%d.%d.%d", v/10000, v%10000/100, v%100)
			} else {
				loaded.cudnn.Version = fmt.Sprintf("%d.%d.%d", v/1000, v%1000/100, v%100)
			}
		}
	}
	return Info{Driver: loaded.driver, NVRTC: loaded.nvrtc, CUBLAS: loaded.cublas, CUDNN: loaded.cudnn,
		CUDNNConv: loaded.cudnn.Path != "" && cudnnHasConv(), DriverVersion: loaded.driverVersion}
}

// firstTried is the loader's message for the first candidate, the one most likely to
// be the expected file: one line instead of one per file tried.
func firstTried(tried []string, err error) string {
	if len(tried) == 0 {
		return err.Error()
	}
	return tried[0]
}

// notFound is a library none of whose candidates loaded. It wraps ErrUnavailable.
type notFound struct {
	name  string // the preferred file name
	dirs  int    // directories searched besides the loader's path
	first string // the loader's message for the first candidate
}

func (e *notFound) Error() string {
	return fmt.Sprintf("%s not found by the dynamic loader or in %d directories (%s)", e.name, e.dirs, e.first)
}

func (e *notFound) Is(target error) bool { return target == ErrUnavailable }

// Probe finds the CUDA libraries and GPUs with the default options. It never panics
// and needs no GPU: what is missing is in the result's fields.
func Probe() Info { return probe(DefaultOptions()) }

func probe(o Options) Info {
	info := loadLibraries(o.LibraryDirs)
	info.Jetson = jetsonRelease("/etc/nv_tegra_release")
	if info.Driver.Err != nil {
		info.Err = noDriver{info.Driver.Err}
		return info
	}
	if err := cuInit(); err != nil {
		info.Err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		return info
	}
	n, err := cuDeviceGetCount()
	if err != nil {
		info.Err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		return info
	}
	for i := 0; i < n; i++ {
		d, err := describeDevice(i)
		if err != nil {
			info.Err = err
			return info
		}
		info.Devices = append(info.Devices, d)
	}
	switch {
	case n == 0:
		info.Err = fmt.Errorf("%w: no GPU", ErrUnavailable)
	case info.NVRTC.Err != nil:
		info.Err = fmt.Errorf("no NVRTC (needed to compile kernels): %w", info.NVRTC.Err)
	case info.CUBLAS.Err != nil:
		info.Err = fmt.Errorf("no cuBLAS: %w", info.CUBLAS.Err)
	}
	return info
}

// describeDevice reads GPU i's name and attributes (cuInit must have succeeded).
func describeDevice(i int) (DeviceInfo, error) {
	dev, err := cuDeviceGet(i)
	if err != nil {
		return DeviceInfo{}, err
	}
	d := DeviceInfo{Index: i}
	if d.Name, err = cuDeviceGetName(dev); err != nil {
		return d, err
	}
	attr := func(a int) int {
		if err != nil {
			return 0
		}
		var v int
		v, err = cuDeviceGetAttribute(a, dev)
		return v
	}
	d.SM = attr(attrComputeMajor)*10 + attr(attrComputeMinor)
	d.Multiprocessors = attr(attrMultiprocessors)
	d.Integrated = attr(attrIntegrated) != 0
	if err != nil {
		return d, err
	}
	d.MemoryBytes, err = cuDeviceTotalMem(dev)
	return d, err
}

// jetsonRelease is the first line of L4T's release file without its comment mark,
// e.g. "R36 (release), REVISION: 4.0, …"; "" where the file does not exist.
func jetsonRelease(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
}

// ErrNoDriver is wrapped by the errors of Open and Probe on a machine without the CUDA
// driver (no NVIDIA GPU, or CI); such errors wrap ErrUnavailable too.
var ErrNoDriver = errors.New("no CUDA driver: libcuda.so.1 not found")

// noDriver is Probe's error without libcuda: ErrNoDriver, then why the loader refused.
type noDriver struct{ why error }

func (e noDriver) Error() string {
	var nf *notFound
	if errors.As(e.why, &nf) {
		return fmt.Sprintf("%v (searched the dynamic loader's path and %d directories: %s)", ErrNoDriver, nf.dirs, nf.first)
	}
	return fmt.Sprintf("%v: %v", ErrNoDriver, e.why)
}

func (e noDriver) Unwrap() []error { return []error{ErrNoDriver, e.why} }
