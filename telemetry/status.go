package telemetry

import (
	"encoding/json"
	"time"

	"github.com/edgedepth/edgedepth/health"
)

// State is the robot's overall state as published on the status topic.
type State string

// The states a robot goes through. A consumer that meets a state it does not know
// should treat it like "degraded".
const (
	// StateStarting: the daemon is up but not yet producing depth (cameras opening,
	// networks loading).
	StateStarting State = "starting"
	// StateRunning: depth is flowing and nothing is degraded.
	StateRunning State = "running"
	// StateDegraded: depth may be flowing, but at least one part reports a problem;
	// Status.Warnings says which and why.
	StateDegraded State = "degraded"
	// StateOffline: the daemon stopped cleanly, or its connection vanished and the
	// broker published the Last Will. Every other field may be stale.
	StateOffline State = "offline"
)

// Status is the JSON payload of the retained topic edgedepth/<robot-id>/status. It is
// published when the state changes and periodically (about once a second) while
// running; the Last Will and a clean shutdown publish it with State "offline".
//
// Fields are added over time, never renamed or repurposed; consumers must ignore
// fields they do not know. Zero counters and empty strings are still present in the
// JSON so that a consumer can tell "zero" from "this version does not report it"
// by the version field alone.
type Status struct {
	// State is "starting", "running", "degraded" or "offline".
	State State `json:"state"`
	// Version is the edgedepth version string of the publishing daemon.
	Version string `json:"version"`
	// RobotID is the <robot-id> level of the topic, repeated so that a payload stands
	// on its own once it leaves MQTT (logs, databases).
	RobotID string `json:"robot_id"`
	// Backend is the compute backend in use: "cuda" or "cpu".
	Backend string `json:"backend"`
	// Estimator names the depth estimator and model version in use, free text
	// (for example "monodepth2-stereo v12").
	Estimator string `json:"estimator"`
	// FPS is the rate of depth frames published, in frames per second, averaged over
	// the last few seconds.
	FPS float64 `json:"fps"`
	// LatencyMs is the time from capture of a stereo pair to publication of its
	// depth, in milliseconds, averaged like FPS.
	LatencyMs float64 `json:"latency_ms"`
	// FramesIn counts stereo pairs received from the cameras since start.
	FramesIn uint64 `json:"frames_in"`
	// FramesDropped counts stereo pairs dropped since start (queues full, pairing
	// failed, frames too late).
	FramesDropped uint64 `json:"frames_dropped"`
	// FramesPublished counts depth frames handed to MQTT since start.
	FramesPublished uint64 `json:"frames_published"`
	// Warnings lists every degraded part and why, sorted by component; an empty
	// array (never null) when healthy.
	Warnings []health.Warning `json:"warnings"`
	// Time is when this status was produced, RFC 3339 with nanoseconds, in UTC where
	// the producer sets it so.
	Time time.Time `json:"time"`
	// UptimeS is the time since the daemon started, in seconds.
	UptimeS float64 `json:"uptime_s"`
	// Training is the continual learner's state ("enabled": false, "state": "off"
	// when learning is off). The running daemon always sends it; it is absent from the
	// offline status and from versions before continual learning.
	Training *TrainingStatus `json:"training,omitempty"`
	// ModelVersion is the model store version the depth and pose networks run
	// (absent when depth comes from SGBM).
	ModelVersion int `json:"model_version,omitempty"`
	// Odom is the visual odometry's state; absent when odometry is off.
	Odom *OdomStatus `json:"odom,omitempty"`
	// SGBMAgreement compares the network's depth with SGBM's on the pairs where both
	// ran (depth.compare_sgbm_every); absent when the comparison is off.
	SGBMAgreement *SGBMAgreement `json:"sgbm_agreement,omitempty"`
}

// OdomStatus is the visual odometry's part of the status message.
type OdomStatus struct {
	// TrajectoryID counts trajectories since start; a reset starts a new one.
	TrajectoryID uint64 `json:"trajectory_id"`
	// DistanceM is the current trajectory's path length in metres.
	DistanceM float64 `json:"distance_m"`
	// Source of the last pose ("network", "network+photometric", "photometric").
	Source string `json:"source"`
	// Poses, Keyframes and Resets count since start; LastReset says why the last
	// trajectory began.
	Poses     uint64 `json:"poses"`
	Keyframes uint64 `json:"keyframes"`
	Resets    uint64 `json:"resets"`
	LastReset string `json:"last_reset"`
}

// SGBMAgreement is how far the network's depth is from SGBM's over the pixels both
// estimate, on the last compared pair.
type SGBMAgreement struct {
	Seq uint64 `json:"seq"`
	// AbsRel is mean |network − sgbm| / sgbm; Delta1 the fraction within a factor
	// 1.25; Pixels the number compared.
	AbsRel float64 `json:"abs_rel"`
	Delta1 float64 `json:"delta1"`
	Pixels int     `json:"pixels"`
}

// TrainingStatus is the continual learner's part of the status message.
type TrainingStatus struct {
	// Enabled reports whether learning is configured on (training.enabled).
	Enabled bool `json:"enabled"`
	// State is "off" (not enabled), "stopped" (not running: starting, or restarting
	// after a failure), "waiting" (for enough samples from the stream), "learning" or
	// "paused".
	State string `json:"state"`
	// Steps counts optimisation steps since start; SkippedSteps those skipped for a
	// NaN or Inf loss or gradient (weights untouched).
	Steps        int `json:"steps"`
	SkippedSteps int `json:"skipped_steps"`
	// Loss is the self-supervised loss of the last step.
	Loss float64 `json:"loss"`
	// Promotions and Rollbacks count the guard's decisions since start.
	Promotions int `json:"promotions"`
	Rollbacks  int `json:"rollbacks"`
	// ActiveVersion is the model store version of the weights in force (0: not saved,
	// or random weights).
	ActiveVersion int `json:"active_version"`
	// Duty is the measured fraction of time spent computing while learning; LR the
	// learning rate in force.
	Duty float64 `json:"duty"`
	LR   float64 `json:"lr"`
	// Samples is the number of training samples held (replay buffer) and
	// ValidationSamples those held out for the guard.
	Samples           int `json:"samples"`
	ValidationSamples int `json:"validation_samples"`
	// FramesDropped counts stereo pairs the learner was offered while busy and
	// dropped (inference never waits for it).
	FramesDropped uint64 `json:"frames_dropped"`
	// Budget is the training budget governor's decision; absent when the governor is
	// off (training.governor.enabled: false).
	Budget *TrainingBudget `json:"budget,omitempty"`
}

// TrainingBudget is the training budget governor's part of the status message: how much
// of the time the learner may compute, and why.
type TrainingBudget struct {
	// DutyCycle is the fraction of time the governor allows (0 when stopped).
	DutyCycle float64 `json:"duty_cycle"`
	// State is "running" (at the maximum), "resuming" (growing towards it),
	// "backing-off" (a limit holds it down) or "stopped" (training must not run).
	State string `json:"state"`
	// Limit is what holds the duty cycle down: "temperature", "power", "latency";
	// absent when none does.
	Limit string `json:"limit,omitempty"`
	// Reason says it in words, with the values behind it.
	Reason string `json:"reason"`
	// OperatorPaused: an operator paused training (training/pause); the governor
	// never resumes it, training/resume does.
	OperatorPaused bool `json:"operator_paused,omitempty"`
	// OperatorDuty is the ceiling an operator set with training/set duty (absent:
	// none); the learner runs at the lower of it and DutyCycle.
	OperatorDuty float64 `json:"operator_duty,omitempty"`
}

// MarshalJSON writes Warnings as [] when there are none: "no warnings" must not
// read as "warnings unknown".
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status // no methods: avoids recursing into MarshalJSON
	if s.Warnings == nil {
		s.Warnings = []health.Warning{}
	}
	return json.Marshal(plain(s))
}

// Event is the JSON payload of edgedepth/<robot-id>/events: one notable happening
// (a camera lost or back, a model promoted or rolled back, a command executed).
// Events are not retained; a consumer that was away misses them.
type Event struct {
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Kind is a stable snake_case identifier a program can switch on, for example
	// "camera_lost", "model_promoted".
	Kind string `json:"kind"`
	// Message says what happened, for people.
	Message string `json:"message"`
	// Fields holds details specific to Kind (ids, values); omitted when empty.
	Fields map[string]any `json:"fields,omitempty"`
}

// offlineStatus is the payload used for the Last Will and the clean-shutdown message
// when the owner did not set one with SetOfflinePayload.
func offlineStatus(robotID string, now time.Time) []byte {
	b, err := json.Marshal(Status{State: StateOffline, RobotID: robotID, Time: now.UTC()})
	if err != nil {
		// Status has only plain fields; failing to encode it is a programming error.
		panic("telemetry: encoding the offline status: " + err.Error())
	}
	return b
}
