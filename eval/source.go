package eval

import (
	"fmt"
	"math"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/odom"
)

// Frame is one stereo pair of a recorded sequence with the ground truth the sequence
// has for it.
type Frame struct {
	// StereoFrame is the pair as estimators see it: Seq is the frame's index in the
	// sequence (from 0) and Truth is nil.
	camera.StereoFrame
	// TruthDepth is the ground-truth z-depth of the left image in metres, 0 where
	// unknown; Width 0 when the frame has none (KITTI's first and last frames, say).
	TruthDepth depth.Map
	// TruthPose is world_T_camera of the left camera; read only when HasTruthPose.
	TruthPose    odom.Pose
	HasTruthPose bool
}

// Source is a recorded sequence with ground truth: the sim format, a KITTI raw drive
// with the depth benchmark's ground truth, or a KITTI odometry sequence. Frame may be
// called for any index in [0, Info().Frames), from one goroutine at a time.
type Source interface {
	Info() SourceInfo
	Frame(i int) (Frame, error)
}

// SourceInfo describes a Source in the report.
type SourceInfo struct {
	// Kind is "sim" (the sequence format of camera/sim), "kitti-raw" or
	// "kitti-odometry".
	Kind string `json:"kind"`
	// Path is the directory read (for KITTI odometry, the sequence's directory).
	Path string `json:"path"`
	// Frames is the length of the sequence.
	Frames int `json:"frames"`
	// Width and Height of the left image in pixels.
	Width  int `json:"width_px"`
	Height int `json:"height_px"`
	// FPS is the frame rate, 0 where unknown.
	FPS float64 `json:"fps,omitempty"`
	// BaselineM is the stereo baseline in metres.
	BaselineM float64 `json:"baseline_m"`
	// DepthTruth and PoseTruth say which ground truth the sequence has (for some or
	// every frame).
	DepthTruth bool `json:"depth_truth"`
	PoseTruth  bool `json:"pose_truth"`
	// Notes say how the ground truth was read (conventions, frames without truth).
	Notes []string `json:"notes,omitempty"`
}

// SimSource reads the sequence format shared by camera/sim, `edgedepth sim write` and
// `edgedepth record` (see sim.OpenSequence): depth/ in millimetres and poses.txt in
// TUM format are the ground truth, when present.
type SimSource struct {
	seq          *sim.Sequence
	depth, poses bool
}

// OpenSim opens the sequence in dir.
func OpenSim(dir string) (*SimSource, error) {
	seq, err := sim.OpenSequence(dir)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	s := &SimSource{seq: seq}
	// Whether poses.txt exists is only visible through a frame's Truth.
	f, err := seq.Frame(0)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	s.poses = f.Truth != nil && validQuat(f.Truth.Pose.Orientation)
	s.depth = f.Truth != nil && f.Truth.DepthM != nil
	return s, nil
}

func validQuat(q [4]float64) bool {
	n := q[0]*q[0] + q[1]*q[1] + q[2]*q[2] + q[3]*q[3]
	return math.Abs(n-1) < 1e-3
}

// Info implements Source.
func (s *SimSource) Info() SourceInfo {
	c := s.seq.Calib()
	info := SourceInfo{
		Kind: "sim", Path: s.seq.Dir(), Frames: s.seq.Len(), Width: c.Width, Height: c.Height,
		FPS: c.FPS, BaselineM: c.BaselineM, DepthTruth: s.depth, PoseTruth: s.poses,
	}
	if info.DepthTruth {
		info.Notes = append(info.Notes, "depth truth: depth/NNNNNN.png, millimetres (at most 65.535 m)")
	}
	if info.PoseTruth {
		info.Notes = append(info.Notes, "pose truth: poses.txt, world_T_camera of the left camera")
	}
	return info
}

// Frame implements Source.
func (s *SimSource) Frame(i int) (Frame, error) {
	sf, err := s.seq.Frame(i)
	if err != nil {
		return Frame{}, fmt.Errorf("eval: %w", err)
	}
	f := Frame{StereoFrame: sf}
	f.Truth = nil
	if t := sf.Truth; t != nil {
		if t.DepthM != nil {
			f.TruthDepth = depth.Map{Width: sf.Intrinsics.Width, Height: sf.Intrinsics.Height, M: t.DepthM}
		}
		if s.poses {
			if !validQuat(t.Pose.Orientation) {
				return Frame{}, fmt.Errorf("eval: %s: frame %d: pose quaternion %v is not of unit length", s.seq.Dir(), i, t.Pose.Orientation)
			}
			f.TruthPose, f.HasTruthPose = odom.FromCamera(t.Pose), true
		}
	}
	return f, nil
}
