package trainer

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"

	cam "github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/sim"
)

// Dataset is an indexed collection of training samples. Its methods are safe for
// concurrent use.
type Dataset interface {
	// Len is the number of samples.
	Len() int
	// Sample loads sample i, 0 ≤ i < Len(), un-augmented, at the dataset's training
	// resolution.
	Sample(i int) (Sample, error)
	// Info describes sample i (0 ≤ i < Len()) without loading any image: what Split needs to keep
	// validation frames out of training.
	Info(i int) SampleInfo
}

// SampleInfo describes a sample without its images.
type SampleInfo struct {
	// ID is Sample.ID.
	ID string
	// Source names the sequence or world the frames come from; frame numbers of
	// different sources are unrelated.
	Source string
	// Frame is the target's frame number; Right is true for a right-eye target.
	Frame int
	Right bool
	// First and Last are the lowest and highest frame numbers the sample reads, of
	// either eye (Frame−1 and Frame+1 here).
	First, Last int
}

// DefaultCacheFrames is how many decoded or rendered frames a dataset keeps when
// DatasetOptions.CacheFrames is 0. A sample reads three consecutive frames, so even a
// shuffled epoch re-uses about a third of its frames from a cache this size when the
// sequence is short; at 640x192 a frame (two eyes and depth) takes about 1.2 MB.
const DefaultCacheFrames = 32

// DatasetOptions configure NewSequenceDataset and NewSimDataset.
type DatasetOptions struct {
	// LeftOnly makes only the left eye a target (Len = frames − 2). By default both
	// eyes are (Len = 2·(frames − 2)), as in Monodepth2's stereo training: a right
	// target has the left eye as its other eye and a baseline of −b.
	LeftOnly bool
	// CacheFrames is how many frames (both eyes and depth, at the training
	// resolution) a least-recently-used cache keeps; 0 means DefaultCacheFrames, a
	// negative value disables the cache.
	CacheFrames int
	// Name is the source name in sample IDs and SampleInfo; "" means the sequence's
	// directory or the world's name.
	Name string
}

// StereoDataset serves the samples of one rectified stereo sequence, on disk or
// simulated. Sample i is, with m = frames − 2 valid targets (the first and last frames
// lack a neighbour) and both eyes as targets, the left eye of frame 1 + i/2 for even i
// and the right eye for odd i; with LeftOnly, the left eye of frame 1 + i.
type StereoDataset struct {
	name      string
	frames    int
	leftOnly  bool
	k         cam.Intrinsics // at the training resolution
	baselineM float64
	cache     *frameCache
}

// dsFrame is one stereo frame at the training resolution.
type dsFrame struct {
	left, right cam.Image
	depth       []float32 // nil: no truth
}

// NewSequenceDataset serves the on-disk sequence seq at width x height pixels.
func NewSequenceDataset(seq *sim.Sequence, width, height int, o DatasetOptions) (*StereoDataset, error) {
	if o.Name == "" {
		o.Name = seq.Dir()
	}
	src := seq.Intrinsics()
	load := func(i int) (dsFrame, error) {
		f, err := seq.Frame(i)
		if err != nil {
			return dsFrame{}, err
		}
		return toTrainingFrame(f, width, height), nil
	}
	return newStereoDataset(o, seq.Len(), src, seq.BaselineM(), width, height, load)
}

// NewSimDataset serves frames 0..frames−1 of world at width x height pixels, rendering
// them when first needed (rendering is expensive: keep CacheFrames at least 3 × the
// number of samples loaded at once).
func NewSimDataset(world *sim.World, frames, width, height int, o DatasetOptions) (*StereoDataset, error) {
	if o.Name == "" {
		o.Name = world.Name()
	}
	load := func(i int) (dsFrame, error) {
		return toTrainingFrame(world.Render(i), width, height), nil
	}
	return newStereoDataset(o, frames, world.Intrinsics(), world.BaselineM(), width, height, load)
}

func newStereoDataset(o DatasetOptions, frames int, src cam.Intrinsics, baselineM float64, width, height int,
	load func(int) (dsFrame, error)) (*StereoDataset, error) {
	if frames < 3 {
		return nil, fmt.Errorf("trainer: dataset %s: %d frames: need at least 3 (a sample reads frames t−1, t, t+1)", o.Name, frames)
	}
	if width <= 0 || height <= 0 {
		return nil, fmt.Errorf("trainer: dataset %s: training size %dx%d: must be positive", o.Name, width, height)
	}
	if err := src.Validate(); err != nil {
		return nil, fmt.Errorf("trainer: dataset %s: %w", o.Name, err)
	}
	if !(baselineM > 0) {
		return nil, fmt.Errorf("trainer: dataset %s: baseline %g m: must be positive (right eye at +b along the left eye's x axis)", o.Name, baselineM)
	}
	capacity := o.CacheFrames
	if capacity == 0 {
		capacity = DefaultCacheFrames
	}
	return &StereoDataset{
		name: o.Name, frames: frames, leftOnly: o.LeftOnly,
		k:         ScaleIntrinsics(src, width, height),
		baselineM: baselineM,
		cache:     newFrameCache(capacity, load),
	}, nil
}

// toTrainingFrame resizes a stereo frame to the training resolution.
func toTrainingFrame(f cam.StereoFrame, width, height int) dsFrame {
	out := dsFrame{left: ResizeImage(f.Left, width, height), right: ResizeImage(f.Right, width, height)}
	if f.Truth != nil && f.Truth.DepthM != nil {
		out.depth = ResizeDepth(f.Truth.DepthM, f.Left.Width, f.Left.Height, width, height)
	}
	return out
}

// Len implements Dataset.
func (d *StereoDataset) Len() int {
	if d.leftOnly {
		return d.frames - 2
	}
	return 2 * (d.frames - 2)
}

// Intrinsics at the training resolution.
func (d *StereoDataset) Intrinsics() cam.Intrinsics { return d.k }

// BaselineM is the (unsigned) distance between the eyes in metres.
func (d *StereoDataset) BaselineM() float64 { return d.baselineM }

// target maps a sample index to its target frame and eye.
func (d *StereoDataset) target(i int) (frame int, right bool) {
	if d.leftOnly {
		return 1 + i, false
	}
	return 1 + i/2, i%2 == 1
}

// Info implements Dataset.
func (d *StereoDataset) Info(i int) SampleInfo {
	t, right := d.target(i)
	eye := "L"
	if right {
		eye = "R"
	}
	return SampleInfo{
		ID:     fmt.Sprintf("%s#%06d%s", d.name, t, eye),
		Source: d.name, Frame: t, Right: right, First: t - 1, Last: t + 1,
	}
}

// Sample implements Dataset.
func (d *StereoDataset) Sample(i int) (Sample, error) {
	if i < 0 || i >= d.Len() {
		return Sample{}, fmt.Errorf("trainer: dataset %s: sample %d out of range [0, %d)", d.name, i, d.Len())
	}
	info := d.Info(i)
	var f [3]dsFrame
	for k := range f {
		var err error
		if f[k], err = d.cache.get(info.Frame - 1 + k); err != nil {
			return Sample{}, fmt.Errorf("trainer: dataset %s: sample %d: %w", d.name, i, err)
		}
	}
	s := Sample{ID: info.ID, Frame: info.Frame, Right: info.Right, Intrinsics: d.k}
	if info.Right {
		s.Target, s.Prev, s.Next, s.Other = f[1].right, f[0].right, f[2].right, f[1].left
		s.BaselineM = -d.baselineM
	} else {
		s.Target, s.Prev, s.Next, s.Other = f[1].left, f[0].left, f[2].left, f[1].right
		s.BaselineM = d.baselineM
		s.TruthDepth = f[1].depth
	}
	return s, nil
}

// frameCache is a bounded LRU of loaded frames. Concurrent requests for one frame
// share a single load; failed loads are not kept.
type frameCache struct {
	load     func(int) (dsFrame, error)
	capacity int // ≤ 0: no caching

	mu      sync.Mutex
	entries map[int]*cacheEntry
	lru     list.List // of *cacheEntry, most recent first
}

type cacheEntry struct {
	frame int
	ready chan struct{} // closed when f and err are set
	f     dsFrame
	err   error
	elem  *list.Element
}

func newFrameCache(capacity int, load func(int) (dsFrame, error)) *frameCache {
	return &frameCache{load: load, capacity: capacity, entries: map[int]*cacheEntry{}}
}

func (c *frameCache) get(i int) (dsFrame, error) {
	if c.capacity <= 0 {
		return c.load(i)
	}
	c.mu.Lock()
	if e, ok := c.entries[i]; ok {
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		<-e.ready
		return e.f, e.err
	}
	e := &cacheEntry{frame: i, ready: make(chan struct{})}
	e.elem = c.lru.PushFront(e)
	c.entries[i] = e
	for c.lru.Len() > c.capacity {
		old := c.lru.Back().Value.(*cacheEntry)
		c.lru.Remove(old.elem)
		delete(c.entries, old.frame) // waiters keep their pointer
	}
	c.mu.Unlock()

	e.f, e.err = c.load(i)
	close(e.ready)
	if e.err != nil {
		c.mu.Lock()
		if c.entries[i] == e {
			c.lru.Remove(e.elem)
			delete(c.entries, i)
		}
		c.mu.Unlock()
	}
	return e.f, e.err
}

// Subset is the samples Indices of Parent, in that order.
type Subset struct {
	Parent  Dataset
	Indices []int
}

// Len implements Dataset.
func (s *Subset) Len() int { return len(s.Indices) }

// Sample implements Dataset.
func (s *Subset) Sample(i int) (Sample, error) {
	if i < 0 || i >= len(s.Indices) {
		return Sample{}, fmt.Errorf("trainer: subset: sample %d out of range [0, %d)", i, len(s.Indices))
	}
	return s.Parent.Sample(s.Indices[i])
}

// Info implements Dataset.
func (s *Subset) Info(i int) SampleInfo { return s.Parent.Info(s.Indices[i]) }

// Split holds out a validation set from ds, deterministically, without leakage.
//
// Per source, the distinct target frames are taken in order and every every-th one
// (the every-th, the 2·every-th, ...) becomes a validation frame: all samples with that
// target (both eyes) go to val. A sample goes to train only when none of the frames it
// reads (First..Last) is read by any validation sample of the same source, so no image
// the validation error is measured on — target, neighbour or other eye — is ever
// trained on. With three-frame samples that drops the targets within two frames of
// each validation target: with every = 10 and both eyes, about 10% of the samples
// validate, 40% are unused and 50% train. Samples in neither set are the price of an
// honest held-out error on video whose neighbouring frames are near copies.
func Split(ds Dataset, every int) (train, val *Subset, err error) {
	if every < 2 {
		return nil, nil, fmt.Errorf("trainer: split every %d: must be at least 2 (one validation target in every frames)", every)
	}
	n := ds.Len()
	infos := make([]SampleInfo, n)
	frames := map[string][]int{} // distinct target frames per source
	seen := map[string]map[int]bool{}
	for i := range n {
		in := ds.Info(i)
		infos[i] = in
		if seen[in.Source] == nil {
			seen[in.Source] = map[int]bool{}
		}
		if !seen[in.Source][in.Frame] {
			seen[in.Source][in.Frame] = true
			frames[in.Source] = append(frames[in.Source], in.Frame)
		}
	}
	valTarget := map[string]map[int]bool{}
	for src, fs := range frames {
		sort.Ints(fs)
		valTarget[src] = map[int]bool{}
		for k := every - 1; k < len(fs); k += every {
			valTarget[src][fs[k]] = true
		}
	}
	used := map[string]map[int]bool{} // frames read by validation samples
	val = &Subset{Parent: ds}
	for i, in := range infos {
		if !valTarget[in.Source][in.Frame] {
			continue
		}
		val.Indices = append(val.Indices, i)
		if used[in.Source] == nil {
			used[in.Source] = map[int]bool{}
		}
		for f := in.First; f <= in.Last; f++ {
			used[in.Source][f] = true
		}
	}
	if len(val.Indices) == 0 {
		return nil, nil, fmt.Errorf("trainer: split every %d: no source of the %d samples has %d target frames: lower every or use longer sequences", every, n, every)
	}
	train = &Subset{Parent: ds}
	for i, in := range infos {
		leak := false
		for f := in.First; f <= in.Last && !leak; f++ {
			leak = used[in.Source][f]
		}
		if !leak {
			train.Indices = append(train.Indices, i)
		}
	}
	return train, val, nil
}

// concat joins datasets end to end.
type concat struct {
	parts []Dataset
	start []int // index of each part's first sample
	n     int
}

// Concat joins datasets end to end: the samples of ds[0], then those of ds[1], ...
// They must share one training resolution to be batched together.
func Concat(ds ...Dataset) Dataset {
	c := &concat{parts: ds}
	for _, d := range ds {
		c.start = append(c.start, c.n)
		c.n += d.Len()
	}
	return c
}

func (c *concat) Len() int { return c.n }

func (c *concat) locate(i int) (Dataset, int) {
	p := sort.Search(len(c.start), func(k int) bool { return c.start[k] > i }) - 1
	return c.parts[p], i - c.start[p]
}

func (c *concat) Sample(i int) (Sample, error) {
	if i < 0 || i >= c.n {
		return Sample{}, fmt.Errorf("trainer: concatenated dataset: sample %d out of range [0, %d)", i, c.n)
	}
	d, j := c.locate(i)
	return d.Sample(j)
}

func (c *concat) Info(i int) SampleInfo {
	d, j := c.locate(i)
	return d.Info(j)
}

// ErrLoaderDone is what Loader.Next returns once Run has delivered every epoch asked
// for.
var ErrLoaderDone = errors.New("trainer: loader delivered all its epochs")

// LoaderOptions configure a Loader.
type LoaderOptions struct {
	// BatchSize is the number of samples a batch, at least 1.
	BatchSize int
	// Seed seeds the shuffling, augmentation and identity noise: a Loader with the
	// same dataset and options delivers the same batches.
	Seed uint64
	// Epochs to deliver; 0 means until cancelled.
	Epochs int
	// Prefetch is how many finished batches may wait for the consumer; 0 means 2.
	Prefetch int
	// Workers is how many goroutines load the samples of a batch at once (PNG
	// decoding is single-threaded; rendering already uses every core), and augment
	// and convert them when Batch.Workers is 0; 0 means 1.
	Workers int
	// DropLast skips an epoch's last batch when it would be smaller than BatchSize
	// (Monodepth2 does); by default it is delivered short.
	DropLast bool
	// Sequential keeps the dataset's order instead of shuffling each epoch
	// (validation).
	Sequential bool
	// Batch says how samples become a batch (signals, augmentation).
	Batch BatchOptions
}

// Loader prepares batches of a dataset on a background goroutine, ahead of the
// training loop: its owner runs Run on a goroutine of its own and waits for it; the
// training loop calls Next, then HostBatch.Upload on the goroutine owning the backend.
// Each epoch visits every sample exactly once (in a fresh shuffled order unless
// Sequential). Backpressure: Run blocks when Prefetch batches are waiting.
type Loader struct {
	ds      Dataset
	o       LoaderOptions
	out     chan *HostBatch
	started atomic.Bool
	err     error // set by Run before it closes out
}

// NewLoader checks the options; nothing runs until Run.
func NewLoader(ds Dataset, o LoaderOptions) (*Loader, error) {
	if ds.Len() == 0 {
		return nil, errors.New("trainer: loader: the dataset is empty")
	}
	if o.BatchSize < 1 {
		return nil, fmt.Errorf("trainer: loader: batch size %d: must be at least 1", o.BatchSize)
	}
	if o.DropLast && ds.Len() < o.BatchSize {
		return nil, fmt.Errorf("trainer: loader: %d samples make no full batch of %d: lower the batch size or keep the last batch", ds.Len(), o.BatchSize)
	}
	if o.Epochs < 0 || o.Prefetch < 0 || o.Workers < 0 || o.Batch.Workers < 0 {
		return nil, fmt.Errorf("trainer: loader: epochs %d, prefetch %d, workers %d, batch workers %d: must not be negative",
			o.Epochs, o.Prefetch, o.Workers, o.Batch.Workers)
	}
	if o.Batch.Augment != nil {
		if err := o.Batch.Augment.Validate(); err != nil {
			return nil, err
		}
	}
	if o.Prefetch == 0 {
		o.Prefetch = 2
	}
	if o.Workers == 0 {
		o.Workers = 1
	}
	if o.Batch.Workers == 0 {
		o.Batch.Workers = o.Workers
	}
	return &Loader{ds: ds, o: o, out: make(chan *HostBatch, o.Prefetch)}, nil
}

// Run prepares batches until the epochs are done (returning nil), ctx is cancelled
// (nil) or a sample fails to load or convert (that error). Every goroutine it starts
// has ended when it returns. Call it once.
func (l *Loader) Run(ctx context.Context) (err error) {
	if !l.started.CompareAndSwap(false, true) {
		return errors.New("trainer: loader: Run called twice: make a new Loader")
	}
	defer func() {
		switch {
		case err != nil:
			l.err = err
		case ctx.Err() != nil:
			l.err = fmt.Errorf("trainer: loader stopped: %w", context.Cause(ctx))
		default:
			l.err = ErrLoaderDone
		}
		close(l.out)
	}()
	r := rand.New(rand.NewPCG(l.o.Seed, 0x10ade7))
	n := l.ds.Len()
	order := make([]int, n)
	for epoch := 0; l.o.Epochs == 0 || epoch < l.o.Epochs; epoch++ {
		for i := range order {
			order[i] = i
		}
		if !l.o.Sequential {
			r.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		for lo := 0; lo < n; lo += l.o.BatchSize {
			hi := min(lo+l.o.BatchSize, n)
			if l.o.DropLast && hi-lo < l.o.BatchSize {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			idx := append([]int(nil), order[lo:hi]...)
			samples, err := l.load(ctx, idx)
			if err != nil || samples == nil {
				return err
			}
			hb, err := NewHostBatch(samples, l.o.Batch, r)
			if err != nil {
				return fmt.Errorf("trainer: loader: epoch %d: %w", epoch, err)
			}
			hb.Indices, hb.Epoch = idx, epoch
			select {
			case l.out <- hb:
			case <-ctx.Done():
				return nil
			}
		}
	}
	return nil
}

// load reads the samples idx on up to Workers goroutines; nil, nil when ctx was
// cancelled meanwhile.
func (l *Loader) load(ctx context.Context, idx []int) ([]Sample, error) {
	samples := make([]Sample, len(idx))
	errs := make([]error, len(idx))
	var next atomic.Int64
	work := func() {
		for ctx.Err() == nil {
			k := int(next.Add(1) - 1)
			if k >= len(idx) {
				return
			}
			samples[k], errs[k] = l.ds.Sample(idx[k])
		}
	}
	if w := min(l.o.Workers, len(idx)); w <= 1 {
		work()
	} else {
		var wg sync.WaitGroup
		for range w {
			wg.Go(work)
		}
		wg.Wait()
	}
	if ctx.Err() != nil {
		return nil, nil
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("trainer: loader: %w", err)
	}
	return samples, nil
}

// Next returns the next batch, waiting for it when none is ready. After Run has
// returned and every prepared batch was taken it returns ErrLoaderDone (all epochs
// delivered), Run's error, or an error wrapping the cancellation cause; it returns
// ctx.Err() when its own ctx ends first.
func (l *Loader) Next(ctx context.Context) (*HostBatch, error) {
	select {
	case hb, ok := <-l.out:
		if !ok {
			return nil, l.err
		}
		return hb, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
