package eval

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/odom"
)

// LivePredictor replays a capture of the daemon's output (see CreateCapture) as a
// Predictor, matching it to the sequence's frames by seq: the output with seq n is the
// daemon's estimate for frame n. That holds when the daemon's source numbers its pairs
// by the evaluated sequence's frame numbers from its first frame and the daemon was not
// restarted meanwhile: the live simulated rig (source.kind sim) gives seq k to frame k of
// its world, so a `sim write` sequence of the same world (scene, seed, size, fps, ...)
// is its ground truth; a playback of a sequence on disk (sim.Sequence.Source, without
// looping) gives seq k to the sequence's frame k. Frames the daemon skipped (it fell
// behind real time) or dropped have no output: a frame without a depth message and
// without a pose is missing (ErrNoOutput). Stamps are not compared: the daemon stamps
// pairs with its own clock.
//
// Poses: the daemon's pose messages are odom_T_camera, with odom the camera at the start
// of the current trajectory; a reset starts a new trajectory at the identity. Only the
// trajectory with the most poses is used (the others are counted in the notes), since
// the poses of two trajectories are in different worlds.
//
// Time per frame in the report is the time to read the capture, not the daemon's.
type LivePredictor struct {
	dir   string
	info  CaptureInfo
	depth map[uint64]string // seq → depth PNG
	poses map[uint64]odom.Pose

	frames, noDepth, noPose, missing int
	sizeMismatch                     int
	notes                            []string
}

// OpenLive opens the capture in dir.
func OpenLive(dir string) (*LivePredictor, error) {
	l := &LivePredictor{dir: dir, depth: map[uint64]string{}, poses: map[uint64]odom.Pose{}}
	info, err := readCaptureInfo(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		l.notes = append(l.notes, "capture.json is missing: the capture was killed before it ended")
	case err != nil:
		return nil, err
	default:
		l.info = info
		l.notes = append(l.notes, fmt.Sprintf("capture of robot %s from %s, %s to %s: %d depth and %d pose messages, %d rejected, %d duplicates, %d dropped by the client",
			info.Robot, info.Broker, info.Started.Format(time.RFC3339), info.Ended.Format(time.RFC3339),
			info.DepthMessages, info.PoseMessages, info.DepthRejected+info.PoseRejected, info.Duplicates, info.DroppedByClient))
	}

	entries, err := os.ReadDir(filepath.Join(dir, "depth"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("eval: live: %w", err)
	}
	for _, e := range entries {
		stem, ok := strings.CutSuffix(e.Name(), ".png")
		if !ok || e.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(stem, 10, 64)
		if err != nil {
			continue // not a depth message (a temporary file, a note)
		}
		l.depth[seq] = filepath.Join(dir, "depth", e.Name())
	}

	if err := l.readPoses(); err != nil {
		return nil, err
	}
	if len(l.depth) == 0 && len(l.poses) == 0 {
		return nil, fmt.Errorf("eval: live %s: no depth images and no poses: is it a capture (edgedepth capture --out)?", dir)
	}
	return l, nil
}

// readPoses reads poses.txt with poses_seq.txt and keeps the longest trajectory.
func (l *LivePredictor) readPoses() error {
	f, err := os.Open(filepath.Join(l.dir, "poses.txt"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("eval: live: %w", err)
	}
	defer f.Close()
	poses, err := odom.ReadTUM(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("eval: live %s: poses.txt: %w", l.dir, err)
	}
	if len(poses) == 0 {
		return nil
	}
	seqs, trajs, err := readPoseSeqs(filepath.Join(l.dir, "poses_seq.txt"))
	if err != nil {
		return err
	}
	if len(seqs) != len(poses) {
		return fmt.Errorf("eval: live %s: poses.txt has %d poses, poses_seq.txt %d lines", l.dir, len(poses), len(seqs))
	}
	count := map[uint64]int{}
	best := trajs[0]
	for _, t := range trajs {
		count[t]++
		if count[t] > count[best] || (count[t] == count[best] && t < best) {
			best = t
		}
	}
	for i, p := range poses {
		if trajs[i] != best {
			continue
		}
		if _, dup := l.poses[seqs[i]]; !dup {
			l.poses[seqs[i]] = p.Pose
		}
	}
	if len(count) > 1 {
		l.notes = append(l.notes, fmt.Sprintf("the poses hold %d trajectories (the daemon reset its odometry); only trajectory %d, with %d of %d poses, is evaluated",
			len(count), best, count[best], len(poses)))
	}
	return nil
}

// Name implements Predictor.
func (l *LivePredictor) Name() string { return "live" }

// Predict implements Predictor: the captured output for frame f.Seq.
func (l *LivePredictor) Predict(f camera.StereoFrame) (Prediction, error) {
	l.frames++
	var p Prediction
	path, hasDepth := l.depth[f.Seq]
	pose, hasPose := l.poses[f.Seq]
	if !hasDepth && !hasPose {
		l.missing++
		return p, fmt.Errorf("live: seq %d: %w", f.Seq, ErrNoOutput)
	}
	if hasDepth {
		b, err := os.ReadFile(path)
		if err != nil {
			return p, fmt.Errorf("live: %w", err)
		}
		m, _, err := depth.DecodePNG(b)
		if err != nil {
			return p, fmt.Errorf("live: %s: %w", path, err)
		}
		if m.Width != f.Intrinsics.Width || m.Height != f.Intrinsics.Height {
			l.sizeMismatch++
		}
		p.Depth = m
	} else {
		l.noDepth++
	}
	if hasPose {
		p.Pose, p.HasPose = pose, true
	} else {
		l.noPose++
	}
	return p, nil
}

// Notes implements Noter: how the capture matched the frames.
func (l *LivePredictor) Notes() []string {
	notes := append([]string(nil), l.notes...)
	notes = append(notes, fmt.Sprintf("matched by seq = frame index: %d frames, %d without any output (missing), %d with a pose but no depth, %d with depth but no pose",
		l.frames, l.missing, l.noDepth, l.noPose))
	if l.sizeMismatch > 0 {
		notes = append(notes, fmt.Sprintf("%d depth images differ in size from the frames and were resampled (nearest neighbour)", l.sizeMismatch))
	}
	notes = append(notes, "depth is as published: 16-bit millimetres, clipped to the daemon's depth.min_depth_m..max_depth_m; time per frame is reading the capture")
	return notes
}

// Close implements Predictor.
func (l *LivePredictor) Close() error { return nil }
