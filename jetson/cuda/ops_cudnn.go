package cuda

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Convolutions through cuDNN's legacy convolution API, where the loaded cuDNN (8 or 9)
// has it: forward, data and filter gradients, and the bias gradient. Everything else
// about a convolution (checks, output allocation, the bias of the forward pass) stays
// in ops_conv.go, whose im2col + cuBLAS path remains the fallback.
//
// A plan per shape (convKey) holds the descriptors, made on first use and kept until
// Close, and for each direction the algorithm chosen for it, its math type and
// workspace. The choice is made once per shape and direction:
//
//   - "heuristic" (the default): cudnnGet…Algorithm_v7, cuDNN's heuristics, best
//     first. No trial runs, so the first step costs microseconds per shape, never
//     tens of milliseconds of timing runs; the algorithm depends on the shape and the
//     cuDNN version alone, not on timing noise; and no search workspace is needed.
//   - "find": cudnnFind…AlgorithmEx times every algorithm on the operands of the
//     first call (PyTorch's benchmark mode) and the fastest is kept. Measured on an
//     H100 (cuDNN 9.14, float32): the Monodepth2 training step 117 ms against 126
//     with the heuristics, for 1.5 GiB more device memory held (the search's 1 GiB
//     workspace and larger chosen workspaces). Worth it for long training runs;
//     not the default.
//
// The first algorithm whose status is success and whose workspace fits
// Options.ConvWorkspaceBytes wins (pickAlgo). Workspaces come from the device memory
// pool and go back to it once the call is queued, as im2col's column matrices do.
//
// TF32: without Options.TF32 every descriptor asks for CUDNN_FMA_MATH (float32 FMA
// kernels only) and tensor-core algorithms are refused; with it, CUDNN_DEFAULT_MATH,
// and each algorithm runs with the math type cuDNN reported for it. This follows
// cuBLAS's math mode, set in setup.
//
// Under Options.Conv "auto" (the default) convolutions of batch 1 (inference) run on
// im2col + cuBLAS and larger batches (training) on cuDNN: measured on an H100 with
// cuDNN 9.14, cuDNN's legacy API costs 20–35 µs more a call, which at batch 1 makes it
// the slower (116 µs against 54 µs for a 3×3 512-channel convolution at 6×20 pixels;
// batch-1 depth+pose 7.4 ms against 5.6 ms), while at batch 12 it makes the training
// step 1.4× faster (126 against 189 ms). The rule is by batch, not by timing, so that
// the same shape always runs the same code. "cudnn" uses cuDNN wherever it can.
//
// Fallback: a shape cuDNN cannot describe (more than 2³¹−1 elements in an operand,
// descriptors refused as a bad parameter or not supported), a direction with no
// usable algorithm, or a call answered CUDNN_STATUS_NOT_SUPPORTED, runs on im2col,
// and the plan remembers it. Every other cuDNN error is returned, naming the call.

// Values of Options.Conv and EDGEDEPTH_CUDA_CONV.
const (
	ConvAuto   = "auto"   // cuDNN for batches above 1 when it loads and has the convolution API, else im2col
	ConvCUDNN  = "cudnn"  // cuDNN, or Open fails
	ConvIm2col = "im2col" // im2col + cuBLAS only
)

// Values of Options.ConvSearch and EDGEDEPTH_CUDA_CONV_SEARCH.
const (
	SearchHeuristic = "heuristic" // cuDNN's heuristics (default)
	SearchFind      = "find"      // time every algorithm on the first call of a shape
)

// defaultConvWorkspace is the largest cuDNN workspace of one call, unless
// Options.ConvWorkspaceBytes says otherwise: 1 GiB, at most 1/16 of the GPU's memory.
func defaultConvWorkspace(deviceBytes int64) int64 {
	return min(1<<30, max(deviceBytes/16, 16<<20))
}

// convDir is a direction of a convolution: which operand is computed from which.
type convDir int

const (
	dirForward        convDir = iota // x, w → y
	dirBackwardData                  // w, dy → dx
	dirBackwardFilter                // x, dy → dw
)

func (d convDir) String() string {
	return [...]string{"forward", "backward data", "backward filter"}[d]
}

// The names of the cuDNN functions of each direction, for errors.
func (d convDir) algosCall() string {
	return [...]string{"cudnnGetConvolutionForwardAlgorithm_v7", "cudnnGetConvolutionBackwardDataAlgorithm_v7", "cudnnGetConvolutionBackwardFilterAlgorithm_v7"}[d]
}

func (d convDir) findCall() string {
	return [...]string{"cudnnFindConvolutionForwardAlgorithmEx", "cudnnFindConvolutionBackwardDataAlgorithmEx", "cudnnFindConvolutionBackwardFilterAlgorithmEx"}[d]
}

func (d convDir) workspaceCall() string {
	return [...]string{"cudnnGetConvolutionForwardWorkspaceSize", "cudnnGetConvolutionBackwardDataWorkspaceSize", "cudnnGetConvolutionBackwardFilterWorkspaceSize"}[d]
}

func (d convDir) runCall() string {
	return [...]string{"cudnnConvolutionForward", "cudnnConvolutionBackwardData", "cudnnConvolutionBackwardFilter"}[d]
}

// algoNames are cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t by direction.
var algoNames = [3][]string{
	{"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"},
	{"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"},
	{"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED", "FFT_TILING"},
}

func algoName(d convDir, algo int) string {
	if algo >= 0 && algo < len(algoNames[d]) {
		return algoNames[d][algo]
	}
	return fmt.Sprintf("algo %d", algo)
}

// algoPerf is one entry of cuDNN's list of algorithms for a problem.
type algoPerf struct {
	Algo          int
	Status        int     // 0 when the algorithm can run this problem
	Time          float32 // milliseconds measured by Find; negative from the heuristics
	Memory        int64   // workspace bytes
	Deterministic bool
	Math          int // cudnnMathType_t the algorithm runs with
}

// choiceState says what is known of a direction of a plan.
type choiceState uint8

const (
	choiceUnknown     choiceState = iota // not asked yet
	choiceReady                          // algo, math and workspace hold
	choiceUnsupported                    // cuDNN cannot: im2col runs it
)

// algoChoice is the algorithm a direction of a plan runs with.
type algoChoice struct {
	state     choiceState
	algo      int
	math      int   // cudnnMathType_t set on the descriptor before each call
	workspace int64 // bytes
	why       string
}

// pickAlgo takes the first usable entry of perfs (cuDNN lists them best first): status
// success, a workspace within limit and, without TF32, no tensor-core math. Without
// TF32 the algorithm runs with CUDNN_FMA_MATH whatever math the entry names.
func pickAlgo(perfs []algoPerf, tf32 bool, limit int64) (algoChoice, bool) {
	for _, p := range perfs {
		if p.Status != 0 || p.Memory > limit || p.Memory < 0 {
			continue
		}
		math := p.Math
		if !tf32 {
			if p.Math == dnnTensorOpMath || p.Math == 2 { // CUDNN_TENSOR_OP_MATH(_ALLOW_CONVERSION)
				continue
			}
			math = dnnFMAMath
		}
		return algoChoice{state: choiceReady, algo: p.Algo, math: math, workspace: p.Memory}, true
	}
	return algoChoice{}, false
}

// convKey identifies a convolution's shape: a plan per key.
type convKey struct {
	n, c, h, w     int
	o, kh, kw      int
	sh, sw, ph, pw int
	groups         int
}

func (g *convGeom) key() convKey {
	return convKey{g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.groups}
}

func (k convKey) String() string {
	return fmt.Sprintf("x(%d,%d,%d,%d) w(%d,%d,%d,%d) s%dx%d p%dx%d g%d",
		k.n, k.c, k.h, k.w, k.o, k.c/max(k.groups, 1), k.kh, k.kw, k.sh, k.sw, k.ph, k.pw, k.groups)
}

// dnnDims are the dimensions of cuDNN's descriptors for g: x (N, C, H, W), the filter
// (O, C/groups, KH, KW), y (N, O, OH, OW), and the bias (1, O, 1, 1).
func (g *convGeom) dnnDims() (x, w, y, bias [4]int) {
	return [4]int{g.n, g.c, g.h, g.w}, [4]int{g.o, g.cg, g.kh, g.kw}, [4]int{g.n, g.o, g.oh, g.ow}, [4]int{1, g.o, 1, 1}
}

// dnnFits reports why cuDNN's 4-d descriptors cannot describe g ("" when they can):
// their sizes and strides are C ints, and an empty operand is no problem for cuDNN
// but needs none either.
func (g *convGeom) dnnFits() string {
	x, w, y, _ := g.dnnDims()
	for _, d := range [][4]int{x, w, y} {
		n := int64(1)
		for _, v := range d {
			if v <= 0 {
				return "empty operand"
			}
			n *= int64(v)
		}
		if n > math.MaxInt32 {
			return fmt.Sprintf("an operand of %d elements (cuDNN's 4-d descriptors take 2³¹−1)", n)
		}
	}
	return ""
}

// convDescs are the descriptors of a plan.
type convDescs struct {
	x, y, bias dnnTensor
	w          dnnFilter
	conv       dnnConv
}

// convPlan is what the backend knows of one convolution shape.
type convPlan struct {
	key   convKey
	d     convDescs
	dirs  [3]algoChoice
	why   string // non-empty: cuDNN cannot describe the shape, every direction runs on im2col
	calls [3]int // cuDNN calls made
	math  int    // the math type set on d.conv, -1 before the first
}

// setMath sets the descriptor's math type unless it has it already: cuDNN may rebuild
// what it derived from a descriptor that changed, so an unchanged one is left alone.
func (p *convPlan) setMath(m int) error {
	if p.math == m {
		return nil
	}
	if err := cudnnSetConvMath(p.d.conv, m); err != nil {
		p.math = -1
		return err
	}
	p.math = m
	return nil
}

// dnnState is the backend's cuDNN, owned by the owner goroutine.
type dnnState struct {
	handle    dnnHandle
	version   string
	search    string
	tf32      bool
	wsLimit   int64
	batched   bool // only batches above 1 run on cuDNN (Conv "auto")
	find      bool // the Find…Ex functions are there
	bias      bool // cudnnConvolutionBackwardBias is there
	plans     map[convKey]*convPlan
	fallbacks [3]int // calls that ran on im2col instead
}

// validConv and validSearch check Options.Conv and Options.ConvSearch; "" is the default.
func validConv(v string) error {
	switch v {
	case "", ConvAuto, ConvCUDNN, ConvIm2col:
		return nil
	}
	return fmt.Errorf("cuda: Options.Conv (EDGEDEPTH_CUDA_CONV) %q: want %s, %s or %s", v, ConvAuto, ConvCUDNN, ConvIm2col)
}

func validSearch(v string) error {
	switch v {
	case "", SearchHeuristic, SearchFind:
		return nil
	}
	return fmt.Errorf("cuda: Options.ConvSearch (EDGEDEPTH_CUDA_CONV_SEARCH) %q: want %s or %s", v, SearchHeuristic, SearchFind)
}

// cudnnUsable says why convolutions cannot use the cuDNN that info describes ("" when
// they can).
func cudnnUsable(lib LibraryInfo) string {
	switch {
	case lib.Err != nil:
		return lib.Err.Error()
	case !cudnnHasConv():
		return "cuDNN " + lib.Version + " (" + lib.Path + ") lacks the convolution API"
	}
	return ""
}

// setupCUDNN creates the cuDNN handle on the owner goroutine and binds it to the
// backend's stream (called by setup when convolutions are to use cuDNN).
func (b *Backend) setupCUDNN(version string) error {
	h, err := cudnnCreate()
	if err != nil {
		return err
	}
	if err := cudnnSetStream(h, b.stream); err != nil {
		_ = cudnnDestroy(h)
		return err
	}
	search := b.opts.ConvSearch
	if search == "" || search == SearchFind && !cudnnHasFind() {
		search = SearchHeuristic
	}
	ws := b.opts.ConvWorkspaceBytes
	if ws <= 0 {
		ws = defaultConvWorkspace(b.dev.MemoryBytes)
	}
	b.dnn = &dnnState{handle: h, version: version, search: search, tf32: b.opts.TF32, wsLimit: ws,
		batched: b.opts.Conv != ConvCUDNN,
		find:    cudnnHasFind(), bias: cudnnHasBias(), plans: map[convKey]*convPlan{}}
	return nil
}

// closeCUDNN destroys the plans' descriptors and the handle (owner, Close).
func (b *Backend) closeCUDNN() error {
	if b.dnn == nil {
		return nil
	}
	var errs []error
	for _, p := range b.dnn.plans {
		errs = append(errs, p.d.destroy())
	}
	errs = append(errs, cudnnDestroy(b.dnn.handle))
	b.dnn = nil
	return errors.Join(errs...)
}

func (d *convDescs) destroy() error {
	var errs []error
	for _, t := range []dnnTensor{d.x, d.y, d.bias} {
		if t != nil {
			errs = append(errs, cudnnDestroyTensor(t))
		}
	}
	if d.w != nil {
		errs = append(errs, cudnnDestroyFilter(d.w))
	}
	if d.conv != nil {
		errs = append(errs, cudnnDestroyConv(d.conv))
	}
	*d = convDescs{}
	return errors.Join(errs...)
}

// plan returns g's plan, making its descriptors on first use (owner). A plan whose
// why is set runs on im2col.
func (s *dnnState) plan(g *convGeom) (*convPlan, error) {
	k := g.key()
	if p, ok := s.plans[k]; ok {
		return p, nil
	}
	p := &convPlan{key: k, math: -1}
	s.plans[k] = p
	if p.why = g.dnnFits(); p.why != "" {
		return p, nil
	}
	xd, wd, yd, bd := g.dnnDims()
	var err error
	if p.d.x, err = cudnnTensor4d(xd); err == nil {
		if p.d.y, err = cudnnTensor4d(yd); err == nil {
			if p.d.bias, err = cudnnTensor4d(bd); err == nil {
				if p.d.w, err = cudnnFilter4d(wd); err == nil {
					p.d.conv, err = cudnnConv2d([2]int{g.ph, g.pw}, [2]int{g.sh, g.sw}, g.groups)
				}
			}
		}
	}
	if err != nil {
		derr := p.d.destroy()
		if describeRefused(err) && derr == nil {
			p.why = err.Error()
			return p, nil
		}
		delete(s.plans, k)
		return nil, errors.Join(err, derr)
	}
	return p, nil
}

// describeRefused reports an error of a descriptor call that means "not this shape":
// a bad parameter or not supported, in cuDNN 8's or 9's numbering.
func describeRefused(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Lib != "cudnn" {
		return false
	}
	return notSupported(err) || e.Code == 3 || e.Code >= 2000 && e.Code < 3000
}

// choose returns direction dir's algorithm for plan p, choosing it on the first call
// (owner). x, w and y are the operands of this call (Find runs on them and writes the
// direction's output).
func (b *Backend) choose(p *convPlan, dir convDir, x, w, y devptr) (*algoChoice, error) {
	s := b.dnn
	c := &p.dirs[dir]
	if c.state != choiceUnknown {
		return c, nil
	}
	queryMath := dnnFMAMath
	if s.tf32 {
		queryMath = dnnDefaultMath
	}
	if err := p.setMath(queryMath); err != nil {
		return nil, err
	}
	var perfs []algoPerf
	var err error
	if s.search == SearchFind && s.find {
		perfs, err = b.findAlgos(p, dir, x, w, y)
	} else {
		perfs, err = cudnnConvAlgos(dir, s.handle, &p.d)
	}
	if notSupported(err) {
		*c = algoChoice{state: choiceUnsupported, why: err.Error()}
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	choice, ok := pickAlgo(perfs, s.tf32, s.wsLimit)
	if !ok {
		*c = algoChoice{state: choiceUnsupported, why: fmt.Sprintf("no usable algorithm among %d", len(perfs))}
		return c, nil
	}
	// The workspace as the execution's own query gives it, with the math it runs in.
	if err := p.setMath(choice.math); err != nil {
		return nil, err
	}
	ws, err := cudnnConvWorkspace(dir, s.handle, &p.d, choice.algo)
	if notSupported(err) {
		*c = algoChoice{state: choiceUnsupported, why: err.Error()}
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	choice.workspace = max(choice.workspace, ws)
	*c = choice
	return c, nil
}

// findAlgos times direction dir's algorithms with a workspace of the configured
// limit (less if the pool cannot give that much).
func (b *Backend) findAlgos(p *convPlan, dir convDir, x, w, y devptr) ([]algoPerf, error) {
	s := b.dnn
	size := s.wsLimit
	for {
		bl, err := b.pool.get(size)
		if errors.Is(err, ErrOutOfMemory) && size > 16<<20 {
			size /= 4
			continue
		}
		if err != nil {
			return nil, err
		}
		perfs, err := cudnnConvFind(dir, s.handle, &p.d, x, w, y, bl.ptr, size)
		return perfs, errors.Join(err, b.pool.put(bl))
	}
}

// dnnRun queues direction dir of g with cuDNN (owner): out = conv + beta·out, where out
// is y, x or w by direction. ran is false when cuDNN cannot run this shape and
// direction, or leaves batch 1 to im2col (Conv "auto"), and the caller must use im2col.
func (b *Backend) dnnRun(g *convGeom, dir convDir, x, w, y devptr, beta float32) (ran bool, err error) {
	s := b.dnn
	if s.batched && g.n == 1 {
		return false, nil
	}
	p, err := s.plan(g)
	if err != nil || p.why != "" {
		s.fallbacks[dir]++
		return false, err
	}
	c, err := b.choose(p, dir, x, w, y)
	if err != nil || c.state != choiceReady {
		s.fallbacks[dir]++
		return false, err
	}
	if err := b.dnnExec(p, dir, c, x, w, y, beta); err != nil {
		if !notSupported(err) {
			return false, err
		}
		*c = algoChoice{state: choiceUnsupported, why: err.Error()}
		s.fallbacks[dir]++
		return false, nil
	}
	p.calls[dir]++
	return true, nil
}

// dnnReady reports whether direction dir of g will run on cuDNN, choosing its
// algorithm now if it has none yet (owner).
func (b *Backend) dnnReady(g *convGeom, dir convDir, x, w, y devptr) (bool, error) {
	p, err := b.dnn.plan(g)
	if err != nil || p.why != "" {
		return false, err
	}
	c, err := b.choose(p, dir, x, w, y)
	return err == nil && c.state == choiceReady, err
}

// dnnExec queues one call with its workspace from the pool.
func (b *Backend) dnnExec(p *convPlan, dir convDir, c *algoChoice, x, w, y devptr, beta float32) error {
	if err := p.setMath(c.math); err != nil {
		return err
	}
	var ws devptr
	if c.workspace > 0 {
		bl, err := b.pool.get(c.workspace)
		if err != nil {
			return err
		}
		ws = bl.ptr
		// Queued work that reads the workspace runs before anything queued later can
		// reuse the block: all of it is on the one stream.
		defer func() { _ = b.pool.put(bl) }()
	}
	return cudnnConvRun(dir, b.dnn.handle, &p.d, x, w, y, c.algo, ws, c.workspace, beta)
}

// dnnBiasGrad queues db = the sum of dy over N, H and W with cuDNN (owner); false when
// it cannot (no such function, or a shape it cannot describe).
func (b *Backend) dnnBiasGrad(g *convGeom, dy, db devptr) (bool, error) {
	s := b.dnn
	if !s.bias {
		return false, nil
	}
	p, err := s.plan(g)
	if err != nil || p.why != "" {
		return false, err
	}
	if err := cudnnBackwardBias(s.handle, p.d.y, dy, p.d.bias, db); err != nil {
		if notSupported(err) {
			s.bias = false
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// ConvImpl says how this backend computes convolutions: "cudnn 9.19.0 (heuristic)",
// "cudnn 9.19.0 (heuristic), im2col at batch 1" (Conv "auto"), or "im2col", with
// the reason cuDNN is not used where it was wanted.
func (b *Backend) ConvImpl() string { return b.convImpl }

// convSummary lists the plans made so far with their algorithms, for logs (any
// goroutine; runs on the owner).
func (b *Backend) convSummary() string {
	var out string
	_ = b.run(func() error {
		if b.dnn == nil {
			out = b.convImpl
			return nil
		}
		var lines []string
		for _, p := range b.dnn.plans {
			line := p.key.String() + ":"
			if p.why != "" {
				line += " im2col (" + p.why + ")"
			}
			for d, c := range p.dirs {
				switch c.state {
				case choiceReady:
					line += fmt.Sprintf(" %s=%s/%s/%dMiB×%d", convDir(d), algoName(convDir(d), c.algo), mathName(c.math), c.workspace>>20, p.calls[d])
				case choiceUnsupported:
					line += fmt.Sprintf(" %s=im2col(%s)", convDir(d), c.why)
				}
			}
			lines = append(lines, line)
		}
		slices.Sort(lines)
		out = fmt.Sprintf("%s: %d shapes, im2col fallbacks fwd/data/filter %v\n%s", b.convImpl, len(lines), b.dnn.fallbacks, strings.Join(lines, "\n"))
		return nil
	})
	return out
}

func mathName(m int) string {
	switch m {
	case dnnDefaultMath:
		return "default"
	case dnnTensorOpMath:
		return "tensor-op"
	case 2:
		return "tensor-op-conv"
	case dnnFMAMath:
		return "fma"
	}
	return fmt.Sprintf("math %d", m)
}

// dnnGrads computes dw and, with needX, dx with cuDNN (owner). ran is false when either
// direction cannot run on cuDNN for this shape: im2col then computes both, as it
// computes them together.
func (b *Backend) dnnGrads(g *convGeom, xp, wp, dyp, dxp, dwp devptr, needX bool) (ran bool, err error) {
	dirs := []convDir{dirBackwardFilter}
	if needX {
		dirs = append(dirs, dirBackwardData)
	}
	// x, w, y of each direction: the filter gradient writes into w's place, the data
	// gradient into x's.
	operands := func(d convDir) (devptr, devptr, devptr) {
		if d == dirBackwardFilter {
			return xp, dwp, dyp
		}
		return dxp, wp, dyp
	}
	for _, d := range dirs {
		x, w, y := operands(d)
		ok, err := b.dnnReady(g, d, x, w, y)
		if err != nil || !ok {
			for _, d := range dirs {
				b.dnn.fallbacks[d]++
			}
			return false, err
		}
	}
	for _, d := range dirs {
		x, w, y := operands(d)
		if ran, err := b.dnnRun(g, d, x, w, y, 0); !ran || err != nil {
			return false, err
		}
	}
	return true, nil
}
