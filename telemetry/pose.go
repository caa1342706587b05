package telemetry

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// PoseMessage is the payload of the `pose` topic (QoS 1, not retained): the pose of the
// rectified left camera (ChildFrameID) in the odometry frame (FrameID), one message per
// stereo pair. The odometry frame is the camera pose at the start of the current
// trajectory, in OpenCV camera axes (x right, y down, z forward); a Reset starts a new
// trajectory (TrajectoryID grows by one) at the identity.
type PoseMessage struct {
	// Stamp is the capture time of the pair (RFC 3339 with nanoseconds, UTC).
	Stamp time.Time `json:"stamp"`
	// Seq is the pair's sequence number, as in the depth message.
	Seq          uint64 `json:"seq"`
	FrameID      string `json:"frame_id"`       // "odom"
	ChildFrameID string `json:"child_frame_id"` // "camera_left"
	// Position in metres, Orientation a unit quaternion (x, y, z, w): odom_T_camera.
	Position    Vector3    `json:"position"`
	Orientation Quaternion `json:"orientation"`
	// Covariance of the pose's last step, 6x6 row-major over (x, y, z, rx, ry, rz) in
	// m² and rad², in the camera frame of the previous pair, as ROS's
	// PoseWithCovariance orders it.
	Covariance [36]float64 `json:"covariance"`
	// Source says how the step was found: "network" (pose network only),
	// "network+photometric" (refined against the predicted depth) or "photometric"
	// (refinement alone, without a pose network).
	Source string `json:"source"`
	// Keyframe is true when this pair became the reference for the following ones.
	Keyframe bool `json:"keyframe"`
	// Reset is true on the first pose of a new trajectory: after a start, a jump in
	// the stream (reconnect, dropped stretch) or a pose/reset command.
	Reset        bool   `json:"reset"`
	ResetReason  string `json:"reset_reason,omitempty"`
	TrajectoryID uint64 `json:"trajectory_id"`
	// DistanceM is the path length of the current trajectory so far, metres.
	DistanceM float64 `json:"distance_m"`
}

// Vector3 is a point or translation in metres.
type Vector3 struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	Z float64 `json:"z"`
}

// Quaternion is a rotation, Hamilton convention, scalar last.
type Quaternion struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	Z float64 `json:"z"`
	W float64 `json:"w"`
}

// Check reports the first field a consumer could not use: a non-finite number, a
// quaternion that is not of unit length, or missing frame ids. The daemon checks every
// message before publishing, so that NaN or Inf never reaches MQTT.
func (p *PoseMessage) Check() error {
	finite := func(name string, vs ...float64) error {
		for _, v := range vs {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("pose message: %s is not finite", name)
			}
		}
		return nil
	}
	if err := finite("position", p.Position.X, p.Position.Y, p.Position.Z); err != nil {
		return err
	}
	q := p.Orientation
	if err := finite("orientation", q.X, q.Y, q.Z, q.W); err != nil {
		return err
	}
	if n := q.X*q.X + q.Y*q.Y + q.Z*q.Z + q.W*q.W; math.Abs(n-1) > 1e-6 {
		return fmt.Errorf("pose message: orientation has norm² %g, want 1", n)
	}
	if err := finite("covariance", p.Covariance[:]...); err != nil {
		return err
	}
	if err := finite("distance_m", p.DistanceM); err != nil {
		return err
	}
	if p.FrameID == "" || p.ChildFrameID == "" {
		return fmt.Errorf("pose message: frame_id and child_frame_id must be set")
	}
	return nil
}

// ParsePoseMessage decodes and checks a pose payload.
func ParsePoseMessage(b []byte) (PoseMessage, error) {
	var p PoseMessage
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("pose message: %w", err)
	}
	return p, p.Check()
}
