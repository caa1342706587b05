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
	"sync"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/odom"
	"github.com/edgedepth/edgedepth/tensor"
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
// Swap and ResetMotion may be called from any.
type Engine struct {
	b tensor.Backend
	m *monodepth2.Model
	o Options

	prev    *tensor.Tensor // previous left image at the networks' size, on the backend
	host    []float32      // planar input scratch
	version int

	mu         sync.Mutex
	pending    []nn.NamedTensor // weights to load before the next pair
	pendingVer int
}

// New prepares an engine for model m on backend b; m's batch norm is put in inference
// mode. version is the store version m's weights came from (0: none).
func New(b tensor.Backend, m *monodepth2.Model, version int, o Options) (*Engine, error) {
	if o.Width <= 0 || o.Height <= 0 || o.Width%32 != 0 || o.Height%32 != 0 {
		return nil, fmt.Errorf("inference: network size %dx%d: want positive multiples of 32", o.Width, o.Height)
	}
	if o.ConfidenceScale == 0 {
		o.ConfidenceScale = 0.1
	}
	if !(o.ConfidenceScale > 0) {
		return nil, fmt.Errorf("inference: confidence scale %g must be positive", o.ConfidenceScale)
	}
	m.SetBatchNormTraining(false)
	return &Engine{b: b, m: m, o: o, version: version, host: make([]float32, 3*o.Width*o.Height)}, nil
}

// Swap queues new weights (a full set for the model, as the model store holds them);
// the next Infer loads them before it runs, so no pair is computed with a mix. The
// previous pair's image stays: the pose of the next pair is still defined.
func (e *Engine) Swap(ts []nn.NamedTensor, version int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending, e.pendingVer = ts, version
}

// Version is the store version of the weights in use.
func (e *Engine) Version() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.version
}

// Options are the engine's options with defaults filled in.
func (e *Engine) Options() Options { return e.o }

// apply loads queued weights.
func (e *Engine) apply() error {
	e.mu.Lock()
	ts, ver := e.pending, e.pendingVer
	e.pending = nil
	e.mu.Unlock()
	if ts == nil {
		return nil
	}
	if err := e.m.Params.Load(e.b, fmt.Sprintf("model version %d", ver), "", ts, nil); err != nil {
		return fmt.Errorf("inference: swapping in version %d: %w (the previous weights stay)", ver, err)
	}
	e.mu.Lock()
	e.version = ver
	e.mu.Unlock()
	return nil
}

// Infer runs the networks on one rectified pair.
func (e *Engine) Infer(f camera.StereoFrame) (Result, error) {
	if err := e.apply(); err != nil {
		return Result{}, err
	}
	if f.Left.Width == 0 || f.Left.Height == 0 || f.Intrinsics.Fx <= 0 {
		return Result{}, errors.New("inference: pair without an image or intrinsics")
	}
	w, h := e.o.Width, e.o.Height
	left := trainer.ResizeImage(f.Left, w, h)
	k := trainer.ScaleIntrinsics(f.Intrinsics, w, h)
	PutPlanar(e.host, left)
	cur, err := e.b.FromHost(e.host, 1, 3, h, w)
	if err != nil {
		return Result{}, fmt.Errorf("inference: upload: %w", err)
	}
	t := nn.NewTape(e.b)
	defer t.Release()
	var prev *tensor.Tensor
	if e.prev != nil {
		prev = e.prev
	}
	disp, aa, tr, err := trainer.Predict(t, e.m, cur, prev)
	if err != nil {
		e.b.Free(cur)
		return Result{}, fmt.Errorf("inference: %w", err)
	}
	dep := monodepth2.DispToDepth(t, disp)
	if err := t.Err(); err != nil {
		e.b.Free(cur)
		return Result{}, fmt.Errorf("inference: %w", err)
	}
	out := Result{Left: left, K: k, Version: e.Version()}
	d, err := e.b.ToHost(dep.Value)
	if err != nil {
		e.b.Free(cur)
		return Result{}, fmt.Errorf("inference: download depth: %w", err)
	}
	for i, v := range d {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			e.b.Free(cur)
			return Result{}, fmt.Errorf("inference: the depth network gave a non-finite value at pixel %d: the weights are damaged", i)
		}
	}
	out.Depth = depth.Map{Width: w, Height: h, M: d}
	if aa != nil {
		a, err1 := e.b.ToHost(aa.Value)
		tt, err2 := e.b.ToHost(tr.Value)
		if err := errors.Join(err1, err2); err != nil {
			e.b.Free(cur)
			return Result{}, fmt.Errorf("inference: download pose: %w", err)
		}
		// The network's transform for the pair [prev, cur] maps points of prev into
		// cur (trainer.TransformFromParams inverts it for a source before the
		// target): cur_T_prev. The motion is its inverse.
		m := odom.FromAxisAngle([3]float64{float64(a[0]), float64(a[1]), float64(a[2])},
			[3]float64{float64(tt[0]), float64(tt[1]), float64(tt[2])}).Inverse()
		if m.IsFinite() {
			out.Motion = &m
		}
	}
	if e.prev != nil {
		e.b.Free(e.prev)
	}
	e.prev = cur

	if f.Right.Width != 0 && f.BaselineM > 0 {
		right := trainer.ResizeImage(f.Right, w, h)
		out.Confidence = StereoConfidence(left, right, out.Depth, k.Fx*f.BaselineM, e.o.ConfidenceScale)
	}
	return out, nil
}

// Close frees the engine's tensors (not the model's).
func (e *Engine) Close() error {
	if e.prev != nil {
		e.b.Free(e.prev)
		e.prev = nil
	}
	return nil
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
// the mean absolute RGB difference e gives exp(−e/scale). A pixel whose match falls
// outside the right image gets 0.
func StereoConfidence(left, right camera.Image, d depth.Map, fB, scale float64) []float32 {
	w, h := d.Width, d.Height
	conf := make([]float32, w*h)
	inv := float32(1 / (255 * 3 * scale))
	for y := range h {
		row := 3 * y * w
		for x := range w {
			z := d.M[y*w+x]
			if z <= 0 {
				continue
			}
			xr := float64(x) - fB/float64(z)
			if xr < 0 || xr > float64(w-1) {
				continue
			}
			x0 := int(xr)
			fr := float32(xr - float64(x0))
			x1 := min(x0+1, w-1)
			var e float32
			for c := range 3 {
				r := (1-fr)*float32(right.Pix[row+3*x0+c]) + fr*float32(right.Pix[row+3*x1+c])
				e += float32(math.Abs(float64(float32(left.Pix[row+3*x+c]) - r)))
			}
			conf[y*w+x] = float32(math.Exp(float64(-e * inv)))
		}
	}
	return conf
}
