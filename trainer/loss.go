// Package trainer teaches the Monodepth2 networks from the robot's own stereo video:
// the self-supervised losses (this file and geometry.go), and the training loops
// built on them.
package trainer

import (
	"fmt"
	"math"
	"sort"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
)

// Loss constants of Monodepth2 (see ../shared/reference/monodepth2_ref.py).
const (
	// SmoothnessWeight weighs the edge-aware smoothness term at scale 0; scale s
	// uses SmoothnessWeight / 2^s.
	SmoothnessWeight = 1e-3
)

// Batch is one training batch on the backend. Images are (N, 3, H, W) in [0, 1].
type Batch struct {
	Target *tensor.Tensor // the frame whose depth is predicted
	Prev   *tensor.Tensor // the frame before it (nil: no temporal signal)
	Next   *tensor.Tensor // the frame after it (nil together with Prev)
	Stereo *tensor.Tensor // the other eye (nil: no stereo signal)
	// TargetAug, PrevAug and NextAug, when set, are what the networks see instead
	// of Target, Prev and Next (colour-jittered copies); the loss always compares
	// the un-jittered images, as Monodepth2 does.
	TargetAug, PrevAug, NextAug *tensor.Tensor
	// K is each item's 4x4 pinhole matrix in pixels of this resolution, row-major
	// (16 values per item).
	K []float32
	// Baseline is each item's stereo baseline in metres, signed: the stereo source
	// sits at x = +Baseline in the target camera's frame, so it is positive when the
	// target is the left eye and negative when it is the right eye (or a flipped
	// left eye). One value per item, or one for all.
	Baseline []float32
	// IdentityNoise (N, S, H, W) is added to the S un-warped (identity) errors of
	// auto-masking to break ties, S = number of sources; nil means zeros.
	IdentityNoise *tensor.Tensor
}

// Sources lists the source names of a batch in the order the losses use them:
// "m1" (previous), "p1" (next), "s" (stereo), sorted as the reference sorts them.
func (b *Batch) Sources() []string {
	var s []string
	if b.Prev != nil {
		s = append(s, "m1")
	}
	if b.Next != nil {
		s = append(s, "p1")
	}
	if b.Stereo != nil {
		s = append(s, "s")
	}
	sort.Strings(s)
	return s
}

// Outputs are the intermediate values of one loss evaluation, by the reference's
// names; Loss is the total to minimise.
type Outputs struct {
	Disp        [4]*nn.Var         // sigmoid disparity at each scale
	Depth0      *nn.Var            // depth from the scale-0 disparity, metres
	AxisAngle   map[string]*nn.Var // per temporal source, (N, 3)
	Translation map[string]*nn.Var // per temporal source, (N, 3)
	T           map[string]*nn.Var // target→source transform per source, (N, 4, 4)
	Warped      map[string]*nn.Var // each source warped into the target at scale 0
	Photo       [4]*nn.Var         // mean per-pixel minimum photometric error per scale
	Smooth      [4]*nn.Var         // edge-aware smoothness per scale (unweighted)
	Loss        *nn.Var
}

// Loss evaluates Monodepth2's self-supervised loss of model m on batch b, recording
// on tape t so that t.Backward(out.Loss) yields every parameter's gradient. It fails
// on the first error (Err of the tape).
func Loss(t *nn.Tape, m *monodepth2.Model, b *Batch) (*Outputs, error) {
	if b.Target == nil || len(b.Target.Shape) != 4 {
		return nil, fmt.Errorf("loss: target image must be (N, 3, H, W), got %v", b.Target)
	}
	n, h, w := b.Target.Shape[0], b.Target.Shape[2], b.Target.Shape[3]
	if (b.Prev == nil) != (b.Next == nil) {
		return nil, fmt.Errorf("loss: temporal sources need both the previous and the next frame")
	}
	sources := b.Sources()
	if len(sources) == 0 {
		return nil, fmt.Errorf("loss: no source image: give the previous and next frames, the other eye, or both")
	}
	if len(b.K) != 16*n {
		return nil, fmt.Errorf("loss: K holds %d values, want 16 per batch item (%d)", len(b.K), 16*n)
	}
	if len(b.Baseline) != n && len(b.Baseline) != 1 && b.Stereo != nil {
		return nil, fmt.Errorf("loss: %d baselines for %d batch items: give one per item or one for all", len(b.Baseline), n)
	}
	out := &Outputs{AxisAngle: map[string]*nn.Var{}, Translation: map[string]*nn.Var{}, T: map[string]*nn.Var{}, Warped: map[string]*nn.Var{}}
	tgt := t.Const(b.Target)
	netIn := func(orig, aug *tensor.Tensor) *nn.Var {
		if aug != nil {
			return t.Const(aug)
		}
		return t.Const(orig)
	}
	tgtNet := netIn(b.Target, b.TargetAug)
	feats := m.Encoder.Forward(t, tgtNet)
	out.Disp = m.Depth.Forward(t, feats)

	src := map[string]*nn.Var{}
	for _, name := range sources {
		switch name {
		case "m1", "p1":
			img := t.Const(b.Prev)
			// A source before the target: the pair is [source, target] and the
			// predicted transform is inverted.
			pair := []*nn.Var{netIn(b.Prev, b.PrevAug), tgtNet}
			if name == "p1" {
				img = t.Const(b.Next)
				pair = []*nn.Var{tgtNet, netIn(b.Next, b.NextAug)}
			}
			aa, tr := m.Pose.Forward(t, m.PoseEncoder.Forward(t, t.Concat(1, pair...)))
			out.AxisAngle[name], out.Translation[name] = aa, tr
			out.T[name] = TransformFromParams(t, aa, tr, name == "m1")
			src[name] = img
		case "s":
			src[name] = t.Const(b.Stereo)
			out.T[name] = stereoTransform(t, n, b.Baseline)
		}
	}
	geo := newCamera(t, b.K, n, h, w)

	// Offsets of the minimum's candidates: noise on the identity errors, none on
	// the reprojections.
	var offset *nn.Var
	if b.IdentityNoise != nil {
		offset = t.Concat(1, t.Const(b.IdentityNoise), t.Full(0, n, len(sources), h, w))
	}
	cands := make([]*nn.Var, 0, 2*len(sources))
	for _, name := range sources {
		cands = append(cands, src[name])
	}
	var total *nn.Var
	for _, s := range monodepth2.Scales {
		disp := out.Disp[s]
		up := disp
		if s > 0 {
			up = t.ResizeBilinear(disp, h, w)
		}
		depth := monodepth2.DispToDepth(t, up)
		if s == 0 {
			out.Depth0 = depth
		}
		c := append(make([]*nn.Var, 0, 2*len(sources)), cands...)
		for _, name := range sources {
			warped := geo.warp(t, src[name], depth, out.T[name])
			if s == 0 {
				out.Warped[name] = warped
			}
			c = append(c, warped)
		}
		out.Photo[s] = t.Mean(t.PhotometricMin(tgt, c, offset))
		norm := t.Div(disp, t.Affine(t.Mean(disp, 2, 3), 1, 1e-7))
		out.Smooth[s] = Smoothness(t, norm, downsample(t, tgt, s))
		term := t.Add(out.Photo[s], t.Affine(out.Smooth[s], float32(SmoothnessWeight/math.Pow(2, float64(s))), 0))
		if total == nil {
			total = term
		} else {
			total = t.Add(total, term)
		}
	}
	out.Loss = t.Affine(total, 1/float32(len(monodepth2.Scales)), 0)
	if err := t.Err(); err != nil {
		return nil, fmt.Errorf("loss: %w", err)
	}
	return out, nil
}

// Smoothness is the edge-aware smoothness of a disparity given the image at the same
// resolution: mean |∂x d|·exp(−mean_c|∂x I|) + mean |∂y d|·exp(−mean_c|∂y I|).
func Smoothness(t *nn.Tape, disp, img *nn.Var) *nn.Var {
	term := func(axis int) *nn.Var {
		size := 0
		if disp != nil {
			size = disp.Shape()[axis]
		}
		dd := t.Unary(tensor.Abs, t.Sub(t.Slice(disp, axis, 0, size-1), t.Slice(disp, axis, 1, size)))
		di := t.Mean(t.Unary(tensor.Abs, t.Sub(t.Slice(img, axis, 0, size-1), t.Slice(img, axis, 1, size))), 1)
		return t.Mean(t.Mul(dd, t.Unary(tensor.Exp, t.Affine(di, -1, 0))))
	}
	return t.Add(term(3), term(2))
}

// downsample halves img s times by 2x2 averaging.
func downsample(t *nn.Tape, img *nn.Var, s int) *nn.Var {
	for i := 0; i < s; i++ {
		img = t.AvgPool2D(img, tensor.Pool2DParams{Kernel: [2]int{2, 2}})
	}
	return img
}

// Free releases the batch's tensors.
func (b *Batch) Free(be tensor.Backend) {
	for _, t := range []*tensor.Tensor{b.Target, b.Prev, b.Next, b.Stereo, b.TargetAug, b.PrevAug, b.NextAug, b.IdentityNoise} {
		if t != nil {
			be.Free(t)
		}
	}
}
