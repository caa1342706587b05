package inference

import (
	"fmt"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/eval"
	"github.com/edgedepth/edgedepth/odom"
	"github.com/edgedepth/edgedepth/trainer"
)

// TrackingInput is the odometry's input for the pair f with depth m at the frame's
// size (SGBM's): image and depth scaled down to width pixels at most (0: as they are).
func TrackingInput(f camera.StereoFrame, m depth.Map, width int) odom.Input {
	left, k, dep := f.Left, f.Intrinsics, m.M
	if width > 0 && width < f.Left.Width {
		h := max(8, (f.Left.Height*width+f.Left.Width/2)/f.Left.Width)
		left = trainer.ResizeImage(f.Left, width, h)
		k = trainer.ScaleIntrinsics(f.Intrinsics, width, h)
		dep = trainer.ResizeDepth(m.M, m.Width, m.Height, width, h)
	}
	return odom.Input{Seq: f.Seq, Stamp: f.CaptureTime, Image: odom.GrayImage(left), DepthM: dep, K: k}
}

// TrackingInput is the odometry's input for the networks' result r on pair f: the
// network-size image and the depth where its confidence reaches minConfidence (the
// other pixels unknown), scaled down to width pixels at most (0: as they are), and the
// pose network's motion.
func (r Result) TrackingInput(f camera.StereoFrame, minConfidence float32, width int) odom.Input {
	td := r.Depth
	if r.Confidence != nil && minConfidence > 0 {
		td.M = make([]float32, len(r.Depth.M))
		for i, z := range r.Depth.M {
			if r.Confidence[i] >= minConfidence {
				td.M[i] = z
			}
		}
	}
	in := TrackingInput(camera.StereoFrame{Seq: f.Seq, CaptureTime: f.CaptureTime, Left: r.Left, Intrinsics: r.K}, td, width)
	in.Motion = r.Motion
	return in
}

// Trajectory turns tracker estimates into one continuous world trajectory for
// evaluation: a trajectory that restarts (a jump) continues from the last pose before
// it, as if the camera had not moved across the break, and the restarts are counted.
type Trajectory struct {
	origin, last odom.Pose
	started      bool
	Resets       int // restarts after the first pair
}

// Add returns the world pose of an estimate.
func (t *Trajectory) Add(e odom.Estimate) odom.Pose {
	if !t.started {
		t.origin, t.started = odom.Identity(), true
	} else if e.Reset {
		t.origin = t.last
		t.Resets++
	}
	t.last = t.origin.Mul(e.Pose)
	return t.last
}

// NetworkPredictor evaluates the networks as the daemon runs them: depth from the
// depth network, the pose from the pose network refined by the odometry on the
// confident depth pixels. It implements eval.Predictor.
type NetworkPredictor struct {
	Label         string
	Engine        *Engine
	Tracker       *odom.Tracker
	MinConfidence float32 // odometry's depth pixels must reach it (the daemon's 0.9)
	TrackWidth    int     // odometry's image width at most (the daemon's 320)
	traj          Trajectory
}

// Name implements eval.Predictor.
func (p *NetworkPredictor) Name() string { return p.Label }

// Predict implements eval.Predictor.
func (p *NetworkPredictor) Predict(f camera.StereoFrame) (eval.Prediction, error) {
	r, err := p.Engine.Infer(f)
	if err != nil {
		return eval.Prediction{}, err
	}
	out := eval.Prediction{Depth: r.Depth}
	if p.Tracker == nil {
		return out, nil
	}
	e, err := p.Tracker.Track(r.TrackingInput(f, p.MinConfidence, p.TrackWidth))
	if err != nil {
		return eval.Prediction{}, fmt.Errorf("odometry: %w", err)
	}
	out.Pose, out.HasPose = p.traj.Add(e), true
	return out, nil
}

// Notes implements eval.Noter.
func (p *NetworkPredictor) Notes() []string {
	return []string{fmt.Sprintf("trajectory restarted %d times (continued from the last pose)", p.traj.Resets)}
}

// Close implements eval.Predictor.
func (p *NetworkPredictor) Close() error { return p.Engine.Close() }

// DepthOdometryPredictor evaluates a depth estimator without networks (SGBM) with the
// photometric odometry on its depth, at a width of TrackWidth pixels at most, as the
// daemon tracks SGBM depth. It implements eval.Predictor.
type DepthOdometryPredictor struct {
	Estimator  depth.Estimator
	Tracker    *odom.Tracker
	TrackWidth int
	traj       Trajectory
}

// Name implements eval.Predictor.
func (p *DepthOdometryPredictor) Name() string { return p.Estimator.Name() }

// Predict implements eval.Predictor.
func (p *DepthOdometryPredictor) Predict(f camera.StereoFrame) (eval.Prediction, error) {
	m, err := p.Estimator.Estimate(f)
	if err != nil {
		return eval.Prediction{}, err
	}
	out := eval.Prediction{Depth: m}
	if p.Tracker == nil {
		return out, nil
	}
	e, err := p.Tracker.Track(TrackingInput(f, m, p.TrackWidth))
	if err != nil {
		return eval.Prediction{}, fmt.Errorf("odometry: %w", err)
	}
	out.Pose, out.HasPose = p.traj.Add(e), true
	return out, nil
}

// Notes implements eval.Noter.
func (p *DepthOdometryPredictor) Notes() []string {
	return []string{fmt.Sprintf("trajectory restarted %d times (continued from the last pose)", p.traj.Resets)}
}

// Close implements eval.Predictor.
func (p *DepthOdometryPredictor) Close() error { return p.Estimator.Close() }
