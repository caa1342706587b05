// Package inference runs the depth and pose networks on every stereo pair: metric depth
// of the left image (the networks learn metric scale from the calibrated stereo
// baseline), a per-pixel confidence from the other eye, and the camera's motion since
// the previous pair. Weights promoted by the learner are swapped in between two pairs,
// never during one.
package inference

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/odom"
	"github.com/edgedepth/edgedepth/trainer"
)

// Options configure an Engine.
type Options struct {
	// Width and Height are the networks' input size in pixels (multiples of 32): every
	// pair is resized to it, and depth comes out at it, with intrinsics scaled to match.
	Width, Height int
	// ConfidenceScale is the photometric error (mean absolute difference of RGB in
	// [0, 1]) at which a pixel's confidence falls to 1/e. Default 0.1.
	ConfidenceScale float64
}

// Result is the networks' output for one stereo pair, at the networks' input size.
type Result struct {
	// Depth is metric z-depth of the left image in metres, always within
	// [monodepth2.MinDepth, monodepth2.MaxDepth] (never 0, NaN or Inf).
	Depth depth.Map
	// Confidence of every depth pixel in [0, 1]: exp(−e/ConfidenceScale), where e is
	// the photometric error between the left pixel and the right image sampled where
	// the depth says the pixel appears; 0 where it falls outside the right image.
	Confidence []float32
	// Left is the left image resized to the networks' size, and K its intrinsics.
	Left camera.Image
	K    camera.Intrinsics
	// Motion is the left camera's motion since the previous pair, prev_T_cur, from the
	// pose network; nil for the first pair.
	Motion *odom.Pose
	// Version is the model store version of the weights that made this result (0 for
	// weights that came from elsewhere).
	Version int
}

// Engine runs the networks for a stream of pairs. Infer is called from one goroutine;
// Swap and Version may be called from any.
type Engine struct {
	o    Options
	nets Networks

	cur, prev []float32 // planar inputs of this pair and the previous one
	havePrev  bool
	version   int

	mu         sync.Mutex
	pending    Networks // networks to switch to before the next pair
	pendingVer int
}

// New prepares an engine on nets, whose weights are the model store's version (0:
// none). The engine owns nets from then on (Close closes them).
func New(nets Networks, version int, o Options) (*Engine, error) {
	if o.Width <= 0 || o.Height <= 0 || o.Width%32 != 0 || o.Height%32 != 0 {
		return nil, fmt.Errorf("inference: network size %dx%d: want positive multiples of 32", o.Width, o.Height)
	}
	if o.ConfidenceScale == 0 {
		o.ConfidenceScale = 0.1
	}
	if !(o.ConfidenceScale > 0) {
		return nil, fmt.Errorf("inference: confidence scale %g must be positive", o.ConfidenceScale)
	}
	n := 3 * o.Width * o.Height
	return &Engine{o: o, nets: nets, version: version, cur: make([]float32, n), prev: make([]float32, n)}, nil
}

// Swap queues new networks (new weights; made off the inference path by whoever loads
// them); the next Infer switches to them before it runs and closes the old ones, so no
// pair is computed with a mix. The previous pair's image stays: the pose of the next
// pair is still defined. The engine owns nets from then on.
func (e *Engine) Swap(nets Networks, version int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pending != nil {
		e.pending.Close() // superseded before it was used
	}
	e.pending, e.pendingVer = nets, version
}

// Version is the store version of the weights in use.
func (e *Engine) Version() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.version
}

// apply switches to queued networks.
func (e *Engine) apply() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pending == nil {
		return
	}
	e.nets.Close()
	e.nets, e.version = e.pending, e.pendingVer
	e.pending = nil
}

// Infer runs the networks on one rectified pair.
func (e *Engine) Infer(f camera.StereoFrame) (Result, error) {
	e.apply()
	if f.Left.Width == 0 || f.Left.Height == 0 || f.Intrinsics.Fx <= 0 {
		return Result{}, errors.New("inference: pair without an image or intrinsics")
	}
	w, h := e.o.Width, e.o.Height
	left := trainer.ResizeImage(f.Left, w, h)
	k := trainer.ScaleIntrinsics(f.Intrinsics, w, h)
	PutPlanar(e.cur, left)
	out := Result{Left: left, K: k, Version: e.Version(), Depth: depth.Map{Width: w, Height: h, M: make([]float32, w*h)}}
	if err := e.nets.Depth(e.cur, out.Depth.M); err != nil {
		return Result{}, err
	}
	for i, v := range out.Depth.M {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return Result{}, fmt.Errorf("inference: the depth network gave a non-finite value at pixel %d: the weights are damaged", i)
		}
	}
	if e.havePrev {
		a, t, err := e.nets.Pose(e.prev, e.cur)
		if err != nil {
			return Result{}, err
		}
		// The network's transform for the pair [prev, cur] maps points of prev into
		// cur (trainer.TransformFromParams inverts it for a source before the
		// target): cur_T_prev. The motion is its inverse.
		m := odom.FromAxisAngle([3]float64{float64(a[0]), float64(a[1]), float64(a[2])},
			[3]float64{float64(t[0]), float64(t[1]), float64(t[2])}).Inverse()
		if m.IsFinite() {
			out.Motion = &m
		}
	}
	e.cur, e.prev, e.havePrev = e.prev, e.cur, true

	if f.Right.Width != 0 && f.BaselineM > 0 {
		right := trainer.ResizeImage(f.Right, w, h)
		out.Confidence = StereoConfidence(left, right, out.Depth, k.Fx*f.BaselineM, e.o.ConfidenceScale)
	}
	return out, nil
}

// Close closes the networks (and any still queued).
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pending != nil {
		e.pending.Close()
		e.pending = nil
	}
	if e.nets == nil {
		return nil
	}
	err := e.nets.Close()
	e.nets = nil
	return err
}

// PutPlanar writes packed RGB m as planar (3, H, W) floats in [0, 1] into dst, the
// layout the networks take.
func PutPlanar(dst []float32, m camera.Image) {
	hw := m.Width * m.Height
	r, g, b := dst[:hw], dst[hw:2*hw], dst[2*hw:3*hw]
	for p := range hw {
		q := m.Pix[3*p : 3*p+3]
		r[p], g[p], b[p] = float32(q[0])/255, float32(q[1])/255, float32(q[2])/255
	}
}

// StereoConfidence scores every depth pixel of the left image by how well the right
// image agrees: the pixel at column x and depth z appears in the right image at
// x − fB/z (fB: focal length in pixels times baseline in metres), sampled linearly;
// the mean absolute RGB difference e gives exp(−e/scale), read from a table in steps
// of 1/16 grey level. A pixel whose match falls outside the right image gets 0. Rows
// are spread over GOMAXPROCS goroutines.
func StereoConfidence(left, right camera.Image, d depth.Map, fB, scale float64) []float32 {
	w, h := d.Width, d.Height
	conf := make([]float32, w*h)
	// e is the sum of three absolute differences of 0–255 levels: 0–765.
	const steps = 16
	lut := make([]float32, 765*steps+2)
	for i := range lut {
		lut[i] = float32(math.Exp(-float64(i) / steps / (255 * 3 * scale)))
	}
	rows := func(y0, y1 int) {
		for y := y0; y < y1; y++ {
			row := 3 * y * w
			for x := range w {
				z := d.M[y*w+x]
				if z <= 0 {
					continue
				}
				xr := float32(x) - float32(fB)/z
				if !(xr >= 0 && xr <= float32(w-1)) {
					continue
				}
				x0 := int(xr)
				fr := xr - float32(x0)
				x1 := min(x0+1, w-1)
				l, a, b := left.Pix[row+3*x:], right.Pix[row+3*x0:], right.Pix[row+3*x1:]
				var e float32
				for c := range 3 {
					diff := float32(l[c]) - ((1-fr)*float32(a[c]) + fr*float32(b[c]))
					if diff < 0 {
						diff = -diff
					}
					e += diff
				}
				conf[y*w+x] = lut[int(e*steps+0.5)]
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), h)
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() { rows(k*h/workers, (k+1)*h/workers) })
	}
	wg.Wait()
	return conf
}
