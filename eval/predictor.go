package eval

import (
	"errors"
	"fmt"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/odom"
)

// Prediction is what an estimator produced for one stereo pair.
type Prediction struct {
	// Depth is the metric depth of the left image at the frame's size; 0 = no estimate.
	// A map of another size is resampled to the frame's size (nearest neighbour); an
	// empty map (Width 0) means the estimator gives no depth.
	Depth depth.Map
	// Pose is world_T_camera of the left camera in the estimator's own world (its
	// first frame is its origin). Only read when HasPose is true.
	Pose    odom.Pose
	HasPose bool
}

// Predictor is an estimator under evaluation: the SGBM matcher, a network, or the
// daemon's recorded output. Run calls Predict once per frame, in sequence order, from
// one goroutine, and Close once at the end.
type Predictor interface {
	// Name identifies the estimator in the report and the plots ("sgbm", "model", ...).
	// Names within one evaluation must be distinct.
	Name() string
	// Predict estimates depth (and, if the estimator tracks it, the pose) of the pair
	// f. f carries no ground truth (f.Truth is nil). The returned depth map belongs
	// to the caller (Evaluate keeps a few for the figures): do not reuse its memory. An
	// error wrapping ErrNoOutput counts the frame as missing; any other error ends the
	// evaluation.
	Predict(f camera.StereoFrame) (Prediction, error)
	Close() error
}

// ErrNoOutput is wrapped by Predict errors meaning "this estimator has nothing for this
// frame" (the daemon published no depth for it, say): the frame is counted as missing
// in the report, not silently dropped, and the evaluation goes on.
var ErrNoOutput = errors.New("eval: no output for this frame")

// Noter is implemented by predictors that have remarks for the report (how a
// recording was matched, what was left out). Run calls Notes after the last frame.
type Noter interface {
	Notes() []string
}

// FromEstimator makes a depth-only Predictor of a depth.Estimator (the SGBM matcher,
// for example). Close closes the estimator.
func FromEstimator(e depth.Estimator) Predictor { return estimatorPredictor{e} }

type estimatorPredictor struct{ e depth.Estimator }

func (p estimatorPredictor) Name() string { return p.e.Name() }

func (p estimatorPredictor) Predict(f camera.StereoFrame) (Prediction, error) {
	m, err := p.e.Estimate(f)
	if err != nil {
		return Prediction{}, fmt.Errorf("%s: %w", p.e.Name(), err)
	}
	return Prediction{Depth: m}, nil
}

func (p estimatorPredictor) Close() error { return p.e.Close() }

// Named gives a Predictor another name in the report (two configurations of one
// estimator side by side, say).
func Named(name string, p Predictor) Predictor { return named{Predictor: p, name: name} }

type named struct {
	Predictor
	name string
}

func (n named) Name() string { return n.name }

// Notes passes the wrapped predictor's notes on.
func (n named) Notes() []string {
	if nt, ok := n.Predictor.(Noter); ok {
		return nt.Notes()
	}
	return nil
}
