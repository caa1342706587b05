package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/inference"
	"github.com/edgedepth/edgedepth/odom"
	"github.com/edgedepth/edgedepth/telemetry"
	"github.com/edgedepth/edgedepth/telemetry/command"
)

// OdomFrameID is the frame id of pose messages: the camera at the start of the
// current trajectory.
const OdomFrameID = "odom"

// healthOdom is the health component of the visual odometry.
const healthOdom = "odom"

// odomStats are the odometry's counters for the status message.
type odomStats struct {
	mu        sync.Mutex
	poses     uint64
	keyframes uint64
	resets    uint64
	lastReset string
	source    string
	distanceM float64
}

// newTracker builds the odometry of the configuration; nil when it is off.
func (d *Daemon) newTracker() *odom.Tracker {
	if !d.cfg.Odom.Enabled {
		return nil
	}
	return odom.NewTracker(d.cfg.Odom.TrackerConfig())
}

// track adds the pair to the trajectory and publishes its pose, tracking at
// odom.width pixels at most.
func (d *Daemon) track(f camera.StereoFrame, r depthResult) {
	var in odom.Input
	if r.track != nil {
		in = *r.track
	} else {
		in = inference.TrackingInput(f, r.depth, d.cfg.Odom.Width)
	}
	est, err := d.tracker.Track(in)
	if err != nil {
		d.health.Set(healthOdom, fmt.Sprintf("pair %d: %v (no pose)", f.Seq, err))
		return
	}
	msg := poseMessage(f, est)
	if err := msg.Check(); err != nil {
		// Never publish NaN or Inf: restart the trajectory instead.
		d.tracker.RequestReset("the estimate was not finite")
		d.health.Set(healthOdom, fmt.Sprintf("pair %d: %v (pose dropped, trajectory restarts)", f.Seq, err))
		return
	}
	d.health.Clear(healthOdom)
	s := &d.odomStats
	s.mu.Lock()
	s.poses++
	if est.Keyframe {
		s.keyframes++
	}
	if est.Reset {
		s.resets++
		s.lastReset = est.ResetReason
	}
	s.source, s.distanceM = est.Source, est.DistanceM
	s.mu.Unlock()
	if est.Reset {
		d.log.Info("new trajectory", "component", "odom", "trajectory_id", est.TrajectoryID, "reason", est.ResetReason, "seq", f.Seq)
	}
	if d.publisher != nil {
		b, _ := json.Marshal(msg)
		d.publisher.Publish(d.topics.Pose(), b, 1, false)
	}
}

// poseMessage turns a tracker estimate into the pose topic's payload.
func poseMessage(f camera.StereoFrame, e odom.Estimate) telemetry.PoseMessage {
	q := e.Pose.Quat()
	m := telemetry.PoseMessage{
		Stamp: f.CaptureTime.UTC(), Seq: f.Seq, FrameID: OdomFrameID, ChildFrameID: FrameID,
		Position:    telemetry.Vector3{X: e.Pose.T[0], Y: e.Pose.T[1], Z: e.Pose.T[2]},
		Orientation: telemetry.Quaternion{X: q[0], Y: q[1], Z: q[2], W: q[3]},
		Source:      e.Source, Keyframe: e.Keyframe, Reset: e.Reset, ResetReason: e.ResetReason,
		TrajectoryID: e.TrajectoryID, DistanceM: e.DistanceM,
	}
	for i := range 6 {
		for j := range 6 {
			m.Covariance[6*i+j] = e.Covariance[i][j]
		}
	}
	return m
}

// odomStatus is the odometry's part of the status message.
func (d *Daemon) odomStatus() *telemetry.OdomStatus {
	if d.tracker == nil {
		return nil
	}
	s := &d.odomStats
	s.mu.Lock()
	defer s.mu.Unlock()
	return &telemetry.OdomStatus{
		TrajectoryID: d.tracker.TrajectoryID(), DistanceM: round(s.distanceM, 1e3), Source: s.source,
		Poses: s.poses, Keyframes: s.keyframes, Resets: s.resets, LastReset: s.lastReset,
	}
}

// PoseReset is the reply of pose/reset.
type PoseReset struct {
	// TrajectoryID is the id of the trajectory the next pose message starts.
	TrajectoryID uint64 `json:"trajectory_id"`
}

// poseReset is the pose/reset command: the next pair starts a new trajectory at the
// identity (its pose message has reset: true and the returned trajectory id).
func (d *Daemon) poseReset(_ context.Context, raw json.RawMessage) (any, error) {
	var a struct {
		Reason string `json:"reason"`
	}
	if err := command.DecodeArgs(raw, &a); err != nil {
		return nil, err
	}
	if d.tracker == nil {
		return nil, command.InvalidArgs("odometry is off on this robot (odom.enabled: false)")
	}
	reason := "pose/reset command"
	if a.Reason != "" {
		reason += ": " + a.Reason
	}
	id := d.tracker.RequestReset(reason)
	d.log.Info("pose reset by an operator", "component", "odom", "next_trajectory_id", id)
	return PoseReset{TrajectoryID: id}, nil
}
