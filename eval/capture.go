package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/odom"
	"github.com/edgedepth/edgedepth/telemetry"
)

// A capture is the daemon's live output recorded from MQTT (`edgedepth capture`), so
// that `edgedepth eval --live DIR` can judge it against the ground truth of the
// sequence the daemon was reading:
//
//	DIR/depth/NNNNNN.png  each depth message's payload as received (the depth PNG, see
//	                      depth.EncodePNG), named by its edgedepth:seq (6 digits or more)
//	DIR/poses.txt         each pose message as a TUM line "stamp tx ty tz qx qy qz qw"
//	                      (odom_T_camera, the message's stamp), in arrival order
//	DIR/poses_seq.txt     one line per line of poses.txt: "seq trajectory_id" of the
//	                      same message (kept apart so that TUM tools read poses.txt)
//	DIR/capture.json      CaptureInfo: broker, robot, start and end, counts; written
//	                      last, so a capture without it was killed
//
// The first message of a seq is kept: a later one with the same seq (the daemon
// restarted, and counts from 0 again) is counted as a duplicate and not written.

// CaptureInfo is the content of capture.json.
type CaptureInfo struct {
	Broker string `json:"broker"`
	Robot  string `json:"robot"`
	// DepthTopic and PoseTopic are the topics subscribed to.
	DepthTopic string    `json:"depth_topic"`
	PoseTopic  string    `json:"pose_topic"`
	Started    time.Time `json:"started"`
	Ended      time.Time `json:"ended"`
	CaptureCounts
	// Stopped says why the capture ended: "frames", "seconds" or "interrupted".
	Stopped string `json:"stopped,omitempty"`
}

// CaptureCounts count the messages of a capture.
type CaptureCounts struct {
	// DepthMessages and PoseMessages are the messages written.
	DepthMessages int `json:"depth_messages"`
	PoseMessages  int `json:"pose_messages"`
	// DepthRejected and PoseRejected are messages that did not decode (not a depth
	// PNG, not a valid pose); Duplicates are messages of a seq already written.
	DepthRejected int `json:"depth_rejected"`
	PoseRejected  int `json:"pose_rejected"`
	Duplicates    int `json:"duplicates"`
	// DroppedByClient counts messages the MQTT client dropped because writing fell
	// behind (telemetry.ReceiveStats), set by the capturing program.
	DroppedByClient uint64 `json:"dropped_by_client"`
	// FirstSeq and LastSeq are the smallest and largest depth seq written.
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
}

// ErrBadMessage is wrapped by CaptureWriter errors about a message that does not
// decode; the capture goes on without it.
var ErrBadMessage = errors.New("eval: capture: bad message")

// CaptureWriter writes a capture. Its methods are safe for concurrent use.
type CaptureWriter struct {
	dir string

	mu         sync.Mutex
	info       CaptureInfo
	poses      *os.File
	seqs       *os.File
	depthSeen  map[uint64]bool
	poseSeen   map[uint64]bool
	closed     bool
	poseBuffer bytes.Buffer
}

// CreateCapture starts a capture in dir, which must not exist or be empty. info's
// Broker, Robot and topics are kept; Started is set to now.
func CreateCapture(dir string, info CaptureInfo) (*CaptureWriter, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("eval: capture %s: the directory is not empty", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("eval: capture: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "depth"), 0o755); err != nil {
		return nil, fmt.Errorf("eval: capture: %w", err)
	}
	w := &CaptureWriter{dir: dir, depthSeen: map[uint64]bool{}, poseSeen: map[uint64]bool{}}
	var err error
	if w.poses, err = os.Create(filepath.Join(dir, "poses.txt")); err != nil {
		return nil, fmt.Errorf("eval: capture: %w", err)
	}
	if w.seqs, err = os.Create(filepath.Join(dir, "poses_seq.txt")); err != nil {
		w.poses.Close()
		return nil, fmt.Errorf("eval: capture: %w", err)
	}
	info.Started, info.CaptureCounts = time.Now().UTC(), CaptureCounts{}
	w.info = info
	return w, nil
}

// AddDepth writes a depth message's payload under its seq. It returns the seq, and an
// error wrapping ErrBadMessage for a payload that is not a depth PNG (counted).
func (w *CaptureWriter) AddDepth(payload []byte) (uint64, error) {
	_, meta, err := depth.DecodePNG(payload)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errors.New("eval: capture: closed")
	}
	if err != nil {
		w.info.DepthRejected++
		return 0, fmt.Errorf("%w: depth: %w", ErrBadMessage, err)
	}
	if w.depthSeen[meta.Seq] {
		w.info.Duplicates++
		return meta.Seq, nil
	}
	if err := writeFile(filepath.Join(w.dir, "depth", fmt.Sprintf("%06d.png", meta.Seq)), payload); err != nil {
		return meta.Seq, err
	}
	w.depthSeen[meta.Seq] = true
	if w.info.DepthMessages == 0 || meta.Seq < w.info.FirstSeq {
		w.info.FirstSeq = meta.Seq
	}
	w.info.LastSeq = max(w.info.LastSeq, meta.Seq)
	w.info.DepthMessages++
	return meta.Seq, nil
}

// AddPose appends a pose message to poses.txt and poses_seq.txt. It returns the seq,
// and an error wrapping ErrBadMessage for a payload telemetry.ParsePoseMessage refuses
// (counted).
func (w *CaptureWriter) AddPose(payload []byte) (uint64, error) {
	msg, err := telemetry.ParsePoseMessage(payload)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errors.New("eval: capture: closed")
	}
	if err != nil {
		w.info.PoseRejected++
		return 0, fmt.Errorf("%w: pose: %w", ErrBadMessage, err)
	}
	if w.poseSeen[msg.Seq] {
		w.info.Duplicates++
		return msg.Seq, nil
	}
	q := msg.Orientation
	p := odom.FromQuat([3]float64{msg.Position.X, msg.Position.Y, msg.Position.Z}, [4]float64{q.X, q.Y, q.Z, q.W})
	w.poseBuffer.Reset()
	if err := odom.WriteTUM(&w.poseBuffer, []odom.StampedPose{{Stamp: msg.Stamp, Pose: p}}); err != nil {
		w.info.PoseRejected++
		return msg.Seq, fmt.Errorf("%w: pose: %w", ErrBadMessage, err)
	}
	if _, err := w.poses.Write(w.poseBuffer.Bytes()); err != nil {
		return msg.Seq, fmt.Errorf("eval: capture: %w", err)
	}
	if _, err := fmt.Fprintf(w.seqs, "%d %d\n", msg.Seq, msg.TrajectoryID); err != nil {
		return msg.Seq, fmt.Errorf("eval: capture: %w", err)
	}
	w.poseSeen[msg.Seq] = true
	w.info.PoseMessages++
	return msg.Seq, nil
}

// Counts returns the counts so far.
func (w *CaptureWriter) Counts() CaptureCounts {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.info.CaptureCounts
}

// Close ends the capture: it syncs the pose files and writes capture.json with the
// end time, the reason stopped and the client's drop count. Later Adds fail.
func (w *CaptureWriter) Close(stopped string, droppedByClient uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var errs []error
	for _, f := range []*os.File{w.poses, w.seqs} {
		errs = append(errs, f.Sync(), f.Close())
	}
	w.info.Ended, w.info.Stopped, w.info.DroppedByClient = time.Now().UTC(), stopped, droppedByClient
	b, err := json.MarshalIndent(w.info, "", "  ")
	if err == nil {
		err = writeFile(filepath.Join(w.dir, "capture.json"), append(b, '\n'))
	}
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("eval: capture %s: %w", w.dir, err)
	}
	return nil
}

// Info returns capture.json's content as it stands (Ended is zero before Close).
func (w *CaptureWriter) Info() CaptureInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.info
}

// readCaptureInfo reads capture.json; the error wraps fs.ErrNotExist when there is none.
func readCaptureInfo(dir string) (CaptureInfo, error) {
	var info CaptureInfo
	b, err := os.ReadFile(filepath.Join(dir, "capture.json"))
	if err != nil {
		return info, fmt.Errorf("eval: live %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("eval: live %s: capture.json: %w", dir, err)
	}
	return info, nil
}

// readPoseSeqs reads poses_seq.txt: "seq trajectory_id" a line.
func readPoseSeqs(path string) (seqs, trajs []uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("eval: live: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for no := 1; sc.Scan(); no++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, nil, fmt.Errorf("eval: live: %s: line %d: want \"seq trajectory_id\"", path, no)
		}
		s, err1 := strconv.ParseUint(fields[0], 10, 64)
		t, err2 := strconv.ParseUint(fields[1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("eval: live: %s: line %d: want two unsigned integers", path, no)
		}
		seqs, trajs = append(seqs, s), append(trajs, t)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("eval: live: %s: %w", path, err)
	}
	return seqs, trajs, nil
}
