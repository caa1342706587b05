package odom

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

// Sources of a pose estimate (telemetry.PoseMessage.Source).
const (
	SourceNetwork            = "network"             // the pose network alone
	SourceNetworkPhotometric = "network+photometric" // the network's motion, refined
	SourcePhotometric        = "photometric"         // refinement from a constant-velocity guess
)

// TrackerConfig tunes a Tracker. Zero fields take the defaults named.
type TrackerConfig struct {
	// Refine turns on the photometric refinement of every motion against the
	// keyframe's depth. Without it the pose network's motions are chained as they are.
	Refine bool
	// Refinement tunes the Gauss-Newton alignment.
	Refinement RefineOptions
	// KeyframeDistanceM and KeyframeAngleDeg: a pair that moved further than this from
	// the keyframe becomes the next keyframe. Defaults 0.5 m and 5°.
	KeyframeDistanceM, KeyframeAngleDeg float64
	// MinOverlap is the least fraction of the keyframe's points still in view; below
	// it the pair becomes the next keyframe. Default 0.7.
	MinOverlap float64
	// MaxGap is the longest time between two pairs that the trajectory bridges;
	// after a longer gap (a reconnect, a dropped stretch) it starts anew. Default 1 s.
	MaxGap time.Duration
	// MaxSpeedMPS and MaxTurnDegPerS bound a plausible motion between two pairs; a
	// faster one is a jump that restarts the trajectory. Defaults 10 m/s and 180°/s.
	MaxSpeedMPS, MaxTurnDegPerS float64
	// MaxRMS is the largest photometric residual (grey levels in [0, 1]) of a
	// refinement that is trusted; above it the network's motion is kept (or, without
	// a network, the trajectory restarts). Default 0.15.
	MaxRMS float64
	// StepSigmaM and StepSigmaDeg are the standard deviations assumed for a motion
	// that was not refined (the pose network's): metres per metre moved plus 1 cm,
	// and degrees. Defaults 0.1 and 0.5.
	StepSigmaM, StepSigmaDeg float64
}

func (c TrackerConfig) withDefaults() TrackerConfig {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.KeyframeDistanceM, 0.5)
	def(&c.KeyframeAngleDeg, 5)
	def(&c.MinOverlap, 0.7)
	def(&c.MaxSpeedMPS, 10)
	def(&c.MaxTurnDegPerS, 180)
	def(&c.MaxRMS, 0.15)
	def(&c.StepSigmaM, 0.1)
	def(&c.StepSigmaDeg, 0.5)
	if c.MaxGap <= 0 {
		c.MaxGap = time.Second
	}
	return c
}

// Input is one pair for the tracker: the left image and its metric depth at one size,
// their intrinsics, and the pose network's motion since the previous pair (nil
// without a network, or when it has no previous pair).
type Input struct {
	Seq    uint64
	Stamp  time.Time
	Image  Image
	DepthM []float32
	K      camera.Intrinsics
	Motion *Pose // prev_T_cur
}

// Estimate is the tracker's answer for one pair.
type Estimate struct {
	// Pose is odom_T_camera: the camera in the frame of the current trajectory's first
	// pair.
	Pose Pose
	// Covariance of Pose over (x, y, z, rx, ry, rz), m² and rad², in the odometry
	// frame's axes: the steps' covariances propagated along the chain.
	Covariance [6][6]float64
	Source     string
	Keyframe   bool
	// Reset is set on the first pair of a trajectory, with the reason.
	Reset        bool
	ResetReason  string
	TrajectoryID uint64
	// DistanceM is the path length of the trajectory so far.
	DistanceM float64
	// RMS is the refinement's photometric residual (0 when not refined).
	RMS float64
}

// Tracker chains per-pair motions into a trajectory against keyframes. Track is called
// from one goroutine; RequestReset from any.
type Tracker struct {
	cfg TrackerConfig

	mu           sync.Mutex
	resetReason  string
	trajectoryID uint64

	started   bool
	lastStamp time.Time
	kf        *Frame        // keyframe with depth
	odomTkf   Pose          // keyframe in the odometry frame
	covKf     [6][6]float64 // keyframe pose covariance, in the keyframe's body frame
	kfTprev   Pose          // previous pair relative to the keyframe
	// prevStepCov is the covariance of kfTprev (body frame of the previous pair).
	prevStepCov [6][6]float64
	// freshKeyframe: the next pair is the first after a new keyframe.
	freshKeyframe bool
	velocity      Pose // last motion prev_T_cur, for the constant-velocity guess
	distance      float64
}

// NewTracker returns a tracker whose first pair starts trajectory 1.
func NewTracker(cfg TrackerConfig) *Tracker {
	return &Tracker{cfg: cfg.withDefaults()}
}

// RequestReset makes the next pair start a new trajectory at the identity (the
// pose/reset command) and returns that trajectory's id.
func (t *Tracker) RequestReset(reason string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.resetReason == "" {
		t.resetReason = reason
	}
	return t.trajectoryID + 1
}

// TrajectoryID is the id of the current trajectory (0 before the first pair).
func (t *Tracker) TrajectoryID() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.trajectoryID
}

// Track adds one pair to the trajectory.
func (t *Tracker) Track(in Input) (Estimate, error) {
	cur, err := NewFrame(in.Image, in.DepthM, in.K, t.cfg.Refinement)
	if err != nil {
		return Estimate{}, err
	}
	t.mu.Lock()
	reason := t.resetReason
	t.resetReason = ""
	t.mu.Unlock()
	dt := in.Stamp.Sub(t.lastStamp)
	switch {
	case reason != "":
	case !t.started:
		reason = "start"
	case dt > t.cfg.MaxGap:
		reason = fmt.Sprintf("gap of %.2f s in the stream (more than %.2f s)", dt.Seconds(), t.cfg.MaxGap.Seconds())
	case dt <= 0:
		reason = fmt.Sprintf("capture time went back by %.3f s", -dt.Seconds())
	}
	if reason != "" {
		return t.restart(in, cur, reason), nil
	}

	// The guess: the network's motion, else constant velocity.
	src := SourcePhotometric
	step := t.velocity
	if in.Motion != nil && in.Motion.IsFinite() {
		step, src = *in.Motion, SourceNetwork
	}
	kfTcur := t.kfTprev.Mul(step)
	var stepCov [6][6]float64
	var rms float64
	overlap := 1.0
	refined := false
	if t.cfg.Refine {
		res, err := Refine(t.kf, cur, kfTcur.Inverse(), t.cfg.Refinement)
		if src == SourcePhotometric && (t.freshKeyframe || err != nil || res.RMS > t.cfg.MaxRMS) {
			// A constant-velocity guess that is wrong converges to a wrong motion that
			// becomes the next guess. So on the first pair after each keyframe (and
			// whenever the guess failed) also try "no motion since the previous pair"
			// and keep the better fit: a runaway velocity is caught within a keyframe.
			alt, altErr := Refine(t.kf, cur, t.kfTprev.Inverse(), t.cfg.Refinement)
			if altErr == nil && (err != nil || alt.RMS < res.RMS) {
				res, err = alt, nil
			}
		}
		switch {
		case err == nil && res.RMS <= t.cfg.MaxRMS && res.CurTRef.IsFinite():
			kfTcur = res.CurTRef.Inverse()
			// The refinement's covariance is of a left perturbation of cur_T_kf, which
			// is a right perturbation of kf_T_cur: the body frame of this pair.
			stepCov, rms, overlap, refined = res.Covariance, res.RMS, res.Overlap, true
			if src == SourceNetwork {
				src = SourceNetworkPhotometric
			}
		case src == SourcePhotometric:
			why := fmt.Sprintf("residual %.3f above %.3f", res.RMS, t.cfg.MaxRMS)
			if err != nil {
				why = err.Error()
			}
			return t.restart(in, cur, "lost tracking: "+why), nil
		}
	}
	motion := t.kfTprev.Inverse().Mul(kfTcur)
	secs := dt.Seconds()
	if v := motion.Distance() / secs; v > t.cfg.MaxSpeedMPS {
		return t.restart(in, cur, fmt.Sprintf("jump of %.2f m in %.3f s (faster than %.0f m/s)", motion.Distance(), secs, t.cfg.MaxSpeedMPS)), nil
	}
	if w := motion.Angle() * 180 / math.Pi / secs; w > t.cfg.MaxTurnDegPerS {
		return t.restart(in, cur, fmt.Sprintf("turn of %.1f° in %.3f s (faster than %.0f°/s)", motion.Angle()*180/math.Pi, secs, t.cfg.MaxTurnDegPerS)), nil
	}
	if !refined {
		// The keyframe-relative covariance of an unrefined chain: the previous pair's
		// plus this step's.
		stepCov = addCov(transportCov(t.prevStepCov, motion), t.assumedCov(motion))
	}
	t.lastStamp = in.Stamp
	t.velocity = motion
	t.distance += motion.Distance()
	t.kfTprev = kfTcur
	t.prevStepCov = stepCov
	t.freshKeyframe = false

	// Body-frame covariance of this pair: the keyframe's, carried to here, plus the
	// keyframe-relative one.
	cov := addCov(transportCov(t.covKf, kfTcur), stepCov)
	est := Estimate{
		Pose: t.odomTkf.Mul(kfTcur), Source: src, TrajectoryID: t.TrajectoryID(),
		DistanceM: t.distance, RMS: rms,
	}
	est.Covariance = rotateCov(cov, est.Pose.R)
	if kfTcur.Distance() > t.cfg.KeyframeDistanceM || kfTcur.Angle()*180/math.Pi > t.cfg.KeyframeAngleDeg || overlap < t.cfg.MinOverlap || !t.cfg.Refine {
		t.kf, t.odomTkf, t.covKf, t.kfTprev = cur, est.Pose, cov, Identity()
		t.prevStepCov = [6][6]float64{}
		t.freshKeyframe = true
		est.Keyframe = true
	}
	return est, nil
}

// restart begins a new trajectory at the identity with cur as its keyframe.
func (t *Tracker) restart(in Input, cur *Frame, reason string) Estimate {
	t.mu.Lock()
	t.trajectoryID++
	id := t.trajectoryID
	t.mu.Unlock()
	t.started = true
	t.lastStamp = in.Stamp
	t.kf, t.odomTkf, t.kfTprev, t.velocity = cur, Identity(), Identity(), Identity()
	t.covKf, t.prevStepCov = [6][6]float64{}, [6][6]float64{}
	t.distance = 0
	t.freshKeyframe = true
	src := SourceNetwork
	if t.cfg.Refine {
		src = SourcePhotometric
	}
	return Estimate{Pose: Identity(), Source: src, Keyframe: true, Reset: true, ResetReason: reason, TrajectoryID: id}
}

// assumedCov is the covariance assumed for an unrefined motion m.
func (t *Tracker) assumedCov(m Pose) [6][6]float64 {
	var c [6][6]float64
	st := t.cfg.StepSigmaM*m.Distance() + 0.01
	sr := t.cfg.StepSigmaDeg * math.Pi / 180
	for i := range 3 {
		c[i][i] = st * st
		c[3+i][3+i] = sr * sr
	}
	return c
}

// transportCov carries a body-frame covariance of a_T_b across the motion b_T_c to
// the body frame of c: Ad(c_T_b)·Σ·Ad(c_T_b)ᵀ, with Ad of (R, t) =
// [[R, [t]×R], [0, R]] for perturbations ordered (translation, rotation).
func transportCov(c [6][6]float64, bTc Pose) [6][6]float64 {
	inv := bTc.Inverse()
	var ad [6][6]float64
	tx := [3][3]float64{
		{0, -inv.T[2], inv.T[1]},
		{inv.T[2], 0, -inv.T[0]},
		{-inv.T[1], inv.T[0], 0},
	}
	txR := matMul(tx, inv.R)
	for i := range 3 {
		for j := range 3 {
			ad[i][j] = inv.R[i][j]
			ad[i][3+j] = txR[i][j]
			ad[3+i][3+j] = inv.R[i][j]
		}
	}
	return sandwich(ad, c)
}

// rotateCov expresses a body-frame covariance in the axes of the frame R rotates into.
func rotateCov(c [6][6]float64, r [3][3]float64) [6][6]float64 {
	var m [6][6]float64
	for i := range 3 {
		for j := range 3 {
			m[i][j] = r[i][j]
			m[3+i][3+j] = r[i][j]
		}
	}
	return sandwich(m, c)
}

// sandwich returns a·c·aᵀ.
func sandwich(a, c [6][6]float64) [6][6]float64 {
	var ac, out [6][6]float64
	for i := range 6 {
		for j := range 6 {
			for k := range 6 {
				ac[i][j] += a[i][k] * c[k][j]
			}
		}
	}
	for i := range 6 {
		for j := range 6 {
			for k := range 6 {
				out[i][j] += ac[i][k] * a[j][k]
			}
		}
	}
	return out
}

func addCov(a, b [6][6]float64) [6][6]float64 {
	for i := range 6 {
		for j := range 6 {
			a[i][j] += b[i][j]
		}
	}
	return a
}
