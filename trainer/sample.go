package trainer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	cam "github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/tensor"
)

// Pixel convention of this file (and of GridSample, sim and OpenCV): pixel (x, y) is
// centred on the integer coordinates (x, y) and covers [x−½, x+½] × [y−½, y+½]. An
// image of W pixels therefore spans [−½, W−½], and resizing it to W' pixels maps a
// coordinate u to u' = (u + ½)·W'/W − ½. Intrinsics follow the same map: fx' = fx·sx,
// cx' = (cx + ½)·sx − ½ with sx = W'/W (likewise fy, cy with sy = H'/H), so a 3-D point
// projects onto the same scene content before and after the resize.

// Sample is one training example on the host, at the training resolution: the target
// frame, its temporal neighbours and the other eye of the same instant, with the
// intrinsics and the signed baseline the loss needs. Datasets share images between
// samples (they cache frames): treat every image and slice of a Sample as read-only;
// augmentation makes copies.
type Sample struct {
	// ID names the sample in logs, e.g. "sim:street:seed=1#000042L": source, target
	// frame number, eye (L or R).
	ID string
	// Frame is the target's frame number in its sequence; Right is true when the
	// target is the right eye.
	Frame int
	Right bool
	// Target is the frame whose depth is predicted; Prev and Next are the same eye at
	// frames Frame−1 and Frame+1; Other is the other eye at Frame. All share the size
	// Intrinsics.Width x Intrinsics.Height.
	Target, Prev, Next, Other cam.Image
	// Intrinsics of all four images in pixels of the training resolution (pixel
	// centres on integers, see the top of sample.go).
	Intrinsics cam.Intrinsics
	// BaselineM is the stereo baseline in metres, signed as Batch.Baseline: the other
	// eye sits at x = +BaselineM in the target camera's frame, so it is positive for a
	// left target, negative for a right target and negated again by a flip.
	BaselineM float64
	// TruthDepth is the ground-truth z-depth of Target in metres, row-major at the
	// training resolution, 0 where unknown; nil when there is no ground truth (real
	// cameras; right-eye targets, since the simulator records the left eye's depth).
	// For validation metrics only; never fed to the loss.
	TruthDepth []float32

	// Set by augmentation (Augment.Apply). TargetAug, PrevAug and NextAug are the
	// colour-jittered copies the networks see; they are empty (nil Pix) when the
	// sample was not jittered, and the loss always compares the un-jittered images.
	TargetAug, PrevAug, NextAug cam.Image
	// Jitter holds the colour-jitter parameters that made the Aug images, nil when
	// none were applied.
	Jitter *ColorJitter
	// Flipped reports that every image (and TruthDepth) was mirrored horizontally,
	// Intrinsics.Cx mirrored and BaselineM negated.
	Flipped bool
}

// check reports a sample whose images do not agree with its intrinsics.
func (s *Sample) check(temporal, stereo bool) error {
	k := s.Intrinsics
	if err := k.Validate(); err != nil {
		return fmt.Errorf("sample %s: %w", s.ID, err)
	}
	imgs := []struct {
		name string
		m    cam.Image
		need bool
	}{
		{"target", s.Target, true},
		{"previous frame", s.Prev, temporal},
		{"next frame", s.Next, temporal},
		{"other eye", s.Other, stereo},
		{"jittered target", s.TargetAug, false},
		{"jittered previous frame", s.PrevAug, false},
		{"jittered next frame", s.NextAug, false},
	}
	for _, im := range imgs {
		if im.m.Pix == nil && !im.need {
			continue
		}
		if im.m.Pix == nil {
			return fmt.Errorf("sample %s: no %s: give one or build a batch without that signal", s.ID, im.name)
		}
		if im.m.Width != k.Width || im.m.Height != k.Height || len(im.m.Pix) != 3*k.Width*k.Height {
			return fmt.Errorf("sample %s: %s is %dx%d (%d bytes), intrinsics say %dx%d RGB",
				s.ID, im.name, im.m.Width, im.m.Height, len(im.m.Pix), k.Width, k.Height)
		}
	}
	if stereo && !(math.Abs(s.BaselineM) > 0) {
		return fmt.Errorf("sample %s: stereo baseline %g m: must be non-zero for the stereo signal", s.ID, s.BaselineM)
	}
	if s.TruthDepth != nil && len(s.TruthDepth) != k.Width*k.Height {
		return fmt.Errorf("sample %s: %d truth depths for a %dx%d image", s.ID, len(s.TruthDepth), k.Width, k.Height)
	}
	return nil
}

// ScaleIntrinsics returns k for the image resized to width x height pixels (pixel
// centres on integers): fx·sx, fy·sy, (cx+½)·sx−½, (cy+½)·sy−½.
func ScaleIntrinsics(k cam.Intrinsics, width, height int) cam.Intrinsics {
	sx := float64(width) / float64(k.Width)
	sy := float64(height) / float64(k.Height)
	return cam.Intrinsics{
		Fx: k.Fx * sx, Fy: k.Fy * sy,
		Cx: (k.Cx+0.5)*sx - 0.5, Cy: (k.Cy+0.5)*sy - 0.5,
		Width: width, Height: height,
	}
}

// resizeTap is one output pixel's weights over consecutive input pixels.
type resizeTap struct {
	first int
	w     []float32
}

// resizeTaps gives the 1-D weights that take src pixels to dst pixels: exact area
// averaging (each output pixel is the mean of the input area it covers, with
// fractional coverage at its ends) when shrinking, bilinear interpolation at
// u = (j+½)·src/dst − ½ when enlarging, the identity when equal.
func resizeTaps(src, dst int) []resizeTap {
	taps := make([]resizeTap, dst)
	scale := float64(src) / float64(dst) // input pixels per output pixel
	for j := range taps {
		if dst <= src {
			a, b := float64(j)*scale, float64(j+1)*scale
			i0, i1 := int(math.Floor(a)), min(int(math.Ceil(b)), src)
			var ws []float32
			first := -1
			var sum float64
			for i := i0; i < i1; i++ {
				ov := math.Min(b, float64(i+1)) - math.Max(a, float64(i))
				if ov <= 1e-9 {
					continue
				}
				if first < 0 {
					first = i
				}
				// Keep the run contiguous: a skipped sliver can only be at an end.
				for len(ws) < i-first {
					ws = append(ws, 0)
				}
				ws = append(ws, float32(ov))
				sum += ov
			}
			for k := range ws {
				ws[k] = float32(float64(ws[k]) / sum)
			}
			taps[j] = resizeTap{first: first, w: ws}
			continue
		}
		u := (float64(j)+0.5)*scale - 0.5
		u = math.Max(0, math.Min(u, float64(src-1)))
		i0 := int(math.Floor(u))
		f := u - float64(i0)
		if i0 >= src-1 || f == 0 {
			taps[j] = resizeTap{first: i0, w: []float32{1}}
			continue
		}
		taps[j] = resizeTap{first: i0, w: []float32{float32(1 - f), float32(f)}}
	}
	return taps
}

// ResizeImage resizes m to width x height: area averaging when shrinking (no
// aliasing), bilinear when enlarging, each axis on its own (pixel centres on
// integers). It returns m itself when the size is already right, else a new image.
func ResizeImage(m cam.Image, width, height int) cam.Image {
	if m.Width == width && m.Height == height {
		return m
	}
	xt, yt := resizeTaps(m.Width, width), resizeTaps(m.Height, height)
	// Horizontal pass into float rows, then vertical pass with rounding.
	tmp := make([]float32, m.Height*width*3)
	for y := range m.Height {
		src := m.Pix[3*y*m.Width : 3*(y+1)*m.Width]
		dst := tmp[3*y*width : 3*(y+1)*width]
		for x, t := range xt {
			var r, g, b float32
			for k, w := range t.w {
				p := src[3*(t.first+k):]
				r += w * float32(p[0])
				g += w * float32(p[1])
				b += w * float32(p[2])
			}
			dst[3*x], dst[3*x+1], dst[3*x+2] = r, g, b
		}
	}
	out := cam.NewImage(width, height)
	acc := make([]float32, 3*width)
	for y, t := range yt {
		clear(acc)
		for k, w := range t.w {
			row := tmp[3*(t.first+k)*width : 3*(t.first+k+1)*width]
			for i, v := range row {
				acc[i] += w * v
			}
		}
		dst := out.Pix[3*y*width : 3*(y+1)*width]
		for i, v := range acc {
			dst[i] = byte(min(255, max(0, v+0.5)))
		}
	}
	return out
}

// ResizeDepth resizes a row-major depth map (metres, 0 = unknown) of w x h values to
// width x height by nearest neighbour: averaging depths across an object's edge would
// invent surfaces that do not exist, and would mix "unknown" into valid depths. It
// returns d itself when the size is already right.
func ResizeDepth(d []float32, w, h, width, height int) []float32 {
	if w == width && h == height {
		return d
	}
	nearest := func(src, dst int) []int {
		idx := make([]int, dst)
		scale := float64(src) / float64(dst)
		for j := range idx {
			idx[j] = min(src-1, int((float64(j)+0.5)*scale))
		}
		return idx
	}
	xs, ys := nearest(w, width), nearest(h, height)
	out := make([]float32, width*height)
	for y, sy := range ys {
		for x, sx := range xs {
			out[y*width+x] = d[sy*w+sx]
		}
	}
	return out
}

// Signals chooses the self-supervision signals of a batch. The zero value uses both.
type Signals int

const (
	// SignalsBoth: temporal neighbours and the other eye (Monodepth2's "MS" training,
	// the default with a stereo rig).
	SignalsBoth Signals = iota
	// SignalsTemporal: the previous and next frames only ("M").
	SignalsTemporal
	// SignalsStereo: the other eye only ("S").
	SignalsStereo
)

// UseTemporal reports whether batches carry the previous and next frames.
func (s Signals) UseTemporal() bool { return s == SignalsBoth || s == SignalsTemporal }

// UseStereo reports whether batches carry the other eye.
func (s Signals) UseStereo() bool { return s == SignalsBoth || s == SignalsStereo }

// String names the signals as Monodepth2's model names do: "MS", "M", "S".
func (s Signals) String() string {
	switch s {
	case SignalsBoth:
		return "MS"
	case SignalsTemporal:
		return "M"
	case SignalsStereo:
		return "S"
	}
	return fmt.Sprintf("Signals(%d)", int(s))
}

// BatchOptions says how samples become a batch.
type BatchOptions struct {
	// Signals: temporal, stereo or both (the zero value).
	Signals Signals
	// Augment, when not nil, flips and colour-jitters each sample (see Augment);
	// nil leaves the samples as they are (validation).
	Augment *Augment
	// Workers is how many goroutines augment and convert items at once; 0 means 1.
	// The random draws are made in item order first, so the batch does not depend
	// on it.
	Workers int
}

// IdentityNoiseStd is the standard deviation of the noise added to the identity
// (un-warped) photometric errors before the per-pixel minimum, as Monodepth2 does, so
// that ties between a static source and its reprojection break at random.
const IdentityNoiseStd = 1e-5

// HostBatch is a batch in host memory, laid out as the backend tensors of Batch: images
// (N, 3, H, W) float32 in [0, 1]. Building it (augmentation, conversion, noise) is the
// CPU work a Loader does in the background; Upload is the cheap part that must run on
// the goroutine owning the backend.
type HostBatch struct {
	N, H, W int
	// Target, Prev, Next, Stereo are (N, 3, H, W); Prev and Next are nil without the
	// temporal signal, Stereo nil without the stereo signal.
	Target, Prev, Next, Stereo []float32
	// TargetAug, PrevAug, NextAug are the network inputs, (N, 3, H, W); nil when no
	// item was colour-jittered (items that were not hold their plain images).
	TargetAug, PrevAug, NextAug []float32
	// K holds 16 values per item (row-major 4x4 pinhole matrix in pixels).
	K []float32
	// Baseline is each item's signed stereo baseline in metres (see Batch.Baseline).
	Baseline []float32
	// Sources is the number of loss sources S (2 temporal + 1 stereo, as used).
	Sources int
	// IdentityNoise is (N, S, H, W) of IdentityNoiseStd·N(0, 1); nil for none.
	IdentityNoise []float32
	// Truth is (N, H, W) ground-truth depth in metres of each target (as augmented),
	// 0 where unknown; nil when no item has any.
	Truth []float32
	// IDs are the samples' IDs; Flipped says which items were mirrored.
	IDs     []string
	Flipped []bool
	// Indices are the dataset indices of the items and Epoch the epoch (from 0) when
	// the batch came from a Loader; nil and 0 otherwise.
	Indices []int
	Epoch   int
}

// pix255 maps a byte to float32 in [0, 1].
var pix255 = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return
}()

// putPlanar writes packed RGB m as planar (3, H, W) floats in [0, 1] into dst.
func putPlanar(dst []float32, m cam.Image) {
	hw := m.Width * m.Height
	r, g, b := dst[:hw], dst[hw:2*hw], dst[2*hw:3*hw]
	for p := range hw {
		q := m.Pix[3*p : 3*p+3]
		r[p], g[p], b[p] = pix255[q[0]], pix255[q[1]], pix255[q[2]]
	}
}

// NewHostBatch augments samples (when o.Augment is set) and converts them to a
// HostBatch. All samples must share one size. r supplies, in this order, every item's
// augmentation draws and then the identity noise; a nil r is allowed only without
// augmentation and gives no identity noise (deterministic validation batches).
func NewHostBatch(samples []Sample, o BatchOptions, r *rand.Rand) (*HostBatch, error) {
	if len(samples) == 0 {
		return nil, errors.New("trainer: batch of no samples: give at least one")
	}
	if o.Signals < SignalsBoth || o.Signals > SignalsStereo {
		return nil, fmt.Errorf("trainer: batch signals %v: use SignalsBoth, SignalsTemporal or SignalsStereo", o.Signals)
	}
	if o.Workers < 0 {
		return nil, fmt.Errorf("trainer: batch workers %d: must not be negative", o.Workers)
	}
	if o.Augment != nil {
		if r == nil {
			return nil, errors.New("trainer: batch augmentation needs a random source: pass rand.New(rand.NewPCG(seed, 0))")
		}
		if err := o.Augment.Validate(); err != nil {
			return nil, err
		}
	}
	temporal, stereo := o.Signals.UseTemporal(), o.Signals.UseStereo()
	n := len(samples)
	w, h := samples[0].Intrinsics.Width, samples[0].Intrinsics.Height
	for i := range samples {
		s := &samples[i]
		if err := s.check(temporal, stereo); err != nil {
			return nil, fmt.Errorf("trainer: batch item %d: %w", i, err)
		}
		if s.Intrinsics.Width != w || s.Intrinsics.Height != h {
			return nil, fmt.Errorf("trainer: batch item %d (%s) is %dx%d, item 0 is %dx%d: resize every dataset to one training resolution",
				i, s.ID, s.Intrinsics.Width, s.Intrinsics.Height, w, h)
		}
	}
	// Every random draw first, in item order, so that the result does not depend on
	// how the pixel work below is spread over goroutines.
	draws := make([]augDraw, n)
	jittered, truth := false, false
	for i, s := range samples {
		if o.Augment != nil {
			draws[i] = o.Augment.draw(r)
		}
		jittered = jittered || draws[i].jitter != nil || s.TargetAug.Pix != nil
		truth = truth || s.TruthDepth != nil
	}
	hw, img := h*w, 3*h*w
	hb := &HostBatch{N: n, H: h, W: w, IDs: make([]string, n), Flipped: make([]bool, n),
		K: make([]float32, 16*n), Baseline: make([]float32, n)}
	if temporal {
		hb.Sources += 2
	}
	if stereo {
		hb.Sources++
	}
	if r != nil {
		hb.IdentityNoise = make([]float32, n*hb.Sources*hw)
		for i := range hb.IdentityNoise {
			hb.IdentityNoise[i] = float32(r.NormFloat64() * IdentityNoiseStd)
		}
	}
	alloc := func(use bool) []float32 {
		if !use {
			return nil
		}
		return make([]float32, n*img)
	}
	hb.Target = alloc(true)
	hb.Prev, hb.Next = alloc(temporal), alloc(temporal)
	hb.Stereo = alloc(stereo)
	hb.TargetAug = alloc(jittered)
	hb.PrevAug, hb.NextAug = alloc(jittered && temporal), alloc(jittered && temporal)
	if truth {
		hb.Truth = make([]float32, n*hw)
	}
	orPlain := func(aug, plain cam.Image) cam.Image {
		if aug.Pix != nil {
			return aug
		}
		return plain
	}
	item := func(i int) {
		s := draws[i].apply(samples[i])
		at := func(v []float32) []float32 { return v[i*img : (i+1)*img] }
		putPlanar(at(hb.Target), s.Target)
		if temporal {
			putPlanar(at(hb.Prev), s.Prev)
			putPlanar(at(hb.Next), s.Next)
		}
		if stereo {
			putPlanar(at(hb.Stereo), s.Other)
		}
		if jittered {
			putPlanar(at(hb.TargetAug), orPlain(s.TargetAug, s.Target))
			if temporal {
				putPlanar(at(hb.PrevAug), orPlain(s.PrevAug, s.Prev))
				putPlanar(at(hb.NextAug), orPlain(s.NextAug, s.Next))
			}
		}
		k := s.Intrinsics
		copy(hb.K[16*i:], []float32{
			float32(k.Fx), 0, float32(k.Cx), 0,
			0, float32(k.Fy), float32(k.Cy), 0,
			0, 0, 1, 0,
			0, 0, 0, 1})
		hb.Baseline[i] = float32(s.BaselineM)
		if s.TruthDepth != nil {
			copy(hb.Truth[i*hw:(i+1)*hw], s.TruthDepth)
		}
		hb.IDs[i], hb.Flipped[i] = s.ID, s.Flipped
	}
	if workers := min(max(o.Workers, 1), n); workers == 1 {
		for i := range n {
			item(i)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
					item(i)
				}
			})
		}
		wg.Wait()
	}
	return hb, nil
}

// Upload copies the batch to backend b. Call it on the goroutine that owns b; on error
// nothing stays allocated.
func (hb *HostBatch) Upload(b tensor.Backend) (*Batch, error) {
	out := &Batch{
		K:        append([]float32(nil), hb.K...),
		Baseline: append([]float32(nil), hb.Baseline...),
	}
	var made []*tensor.Tensor
	put := func(dst **tensor.Tensor, v []float32, c int) error {
		if v == nil {
			return nil
		}
		t, err := b.FromHost(v, hb.N, c, hb.H, hb.W)
		if err != nil {
			return fmt.Errorf("trainer: upload batch: %w", err)
		}
		made = append(made, t)
		*dst = t
		return nil
	}
	for _, p := range []struct {
		dst **tensor.Tensor
		v   []float32
		c   int
	}{
		{&out.Target, hb.Target, 3}, {&out.Prev, hb.Prev, 3}, {&out.Next, hb.Next, 3},
		{&out.Stereo, hb.Stereo, 3}, {&out.TargetAug, hb.TargetAug, 3},
		{&out.PrevAug, hb.PrevAug, 3}, {&out.NextAug, hb.NextAug, 3},
		{&out.IdentityNoise, hb.IdentityNoise, hb.Sources},
	} {
		if err := put(p.dst, p.v, p.c); err != nil {
			for _, t := range made {
				b.Free(t)
			}
			return nil, err
		}
	}
	return out, nil
}

// MakeBatch builds a batch of samples on backend b: NewHostBatch then Upload, on the
// calling goroutine (a Loader does the first half in the background).
func MakeBatch(b tensor.Backend, samples []Sample, o BatchOptions, r *rand.Rand) (*Batch, error) {
	hb, err := NewHostBatch(samples, o, r)
	if err != nil {
		return nil, err
	}
	return hb.Upload(b)
}
