package odom

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrPoseFile marks a malformed TUM or KITTI pose file; the message names the line
// and the field.
var ErrPoseFile = errors.New("odom: bad pose file")

// StampedPose is a pose with the time it holds at.
type StampedPose struct {
	Stamp time.Time
	Pose  Pose
}

// maxStampSec bounds timestamps to what time.Time.UnixNano represents (years 1685–2255).
const maxStampSec = 9_000_000_000

// maxLineBytes bounds a line of a pose file.
const maxLineBytes = 1 << 16

var tumFields = [8]string{"timestamp", "tx", "ty", "tz", "qx", "qy", "qz", "qw"}

// ReadTUM reads a trajectory in the TUM RGB-D format: one pose a line,
// "timestamp tx ty tz qx qy qz qw", separated by spaces or tabs; timestamp in Unix
// seconds, position in metres, orientation a unit quaternion; the pose is world_T_camera.
// Blank lines and lines starting with '#' are skipped. Poses are returned in file order.
//
// Timestamps with up to nine decimals are read exactly (to the nanosecond); others
// (more decimals, exponents) are rounded to the nearest nanosecond. A quaternion whose
// norm is off 1 by more than 1e-2 is an error; others are normalised. Errors wrap
// ErrPoseFile and name the line number and the field.
func ReadTUM(r io.Reader) ([]StampedPose, error) {
	var out []StampedPose
	err := scanLines(r, "tum", func(no int, f []string) error {
		if len(f) != 8 {
			return fmt.Errorf("line %d: %d fields, want 8 (timestamp tx ty tz qx qy qz qw)", no, len(f))
		}
		stamp, err := parseStamp(f[0])
		if err != nil {
			return fmt.Errorf("line %d: field 1 (timestamp) %q: %v", no, f[0], err)
		}
		var v [7]float64
		for c := range v {
			if v[c], err = parseFinite(f[c+1]); err != nil {
				return fmt.Errorf("line %d: field %d (%s) %q: %v", no, c+2, tumFields[c+1], f[c+1], err)
			}
		}
		q := [4]float64{v[3], v[4], v[5], v[6]}
		if qn := math.Sqrt(q[0]*q[0] + q[1]*q[1] + q[2]*q[2] + q[3]*q[3]); !(math.Abs(qn-1) <= 1e-2) {
			return fmt.Errorf("line %d: fields 5-8 (qx qy qz qw): quaternion norm %.6g, want 1", no, qn)
		}
		out = append(out, StampedPose{Stamp: stamp, Pose: FromQuat([3]float64{v[0], v[1], v[2]}, q)})
		return nil
	})
	return out, err
}

// WriteTUM writes poses in the TUM RGB-D format that ReadTUM reads, one line each:
// the stamp as Unix seconds with nine decimals written from integer nanoseconds (so it
// reads back exactly), the position and the unit quaternion (w >= 0) in the shortest
// form that reads back to the same float64. Stamps must lie within ±9e9 s of the Unix
// epoch and poses must be finite.
func WriteTUM(w io.Writer, poses []StampedPose) error {
	bw := bufio.NewWriter(w)
	buf := make([]byte, 0, 256)
	for i, p := range poses {
		if sec := p.Stamp.Unix(); sec > maxStampSec || sec < -maxStampSec {
			return fmt.Errorf("odom: write tum: pose %d: stamp %v is outside the years 1685–2255", i, p.Stamp)
		}
		if !p.Pose.IsFinite() {
			return fmt.Errorf("odom: write tum: pose %d is not finite", i)
		}
		q := p.Pose.Quat()
		buf = appendStamp(buf[:0], p.Stamp)
		for _, v := range [7]float64{p.Pose.T[0], p.Pose.T[1], p.Pose.T[2], q[0], q[1], q[2], q[3]} {
			buf = append(buf, ' ')
			buf = strconv.AppendFloat(buf, v, 'g', -1, 64)
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return fmt.Errorf("odom: write tum: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("odom: write tum: %w", err)
	}
	return nil
}

var kittiFields = [12]string{"r00", "r01", "r02", "tx", "r10", "r11", "r12", "ty", "r20", "r21", "r22", "tz"}

// ReadKITTIPoses reads poses in the KITTI odometry format: one pose a line, the 3×4
// matrix [R|T] row-major as 12 numbers separated by spaces (world_T_camera, metres).
// Blank lines and lines starting with '#' are skipped. R must be a rotation to within
// 1e-3 (|RᵀR − I| elementwise, det > 0); it is kept as written, not re-orthonormalised.
// Errors wrap ErrPoseFile and name the line number and the field.
func ReadKITTIPoses(r io.Reader) ([]Pose, error) {
	var out []Pose
	err := scanLines(r, "kitti", func(no int, f []string) error {
		if len(f) != 12 {
			return fmt.Errorf("line %d: %d fields, want 12 (3x4 matrix, row-major)", no, len(f))
		}
		var p Pose
		for c := range 12 {
			v, err := parseFinite(f[c])
			if err != nil {
				return fmt.Errorf("line %d: field %d (%s) %q: %v", no, c+1, kittiFields[c], f[c], err)
			}
			if c%4 == 3 {
				p.T[c/4] = v
			} else {
				p.R[c/4][c%4] = v
			}
		}
		if dev := orthonormalityError(p.R); !(dev <= 1e-3) {
			return fmt.Errorf("line %d: fields r00..r22: not a rotation (max |RᵀR−I| = %.3g)", no, dev)
		}
		if det3(p.R) <= 0 {
			return fmt.Errorf("line %d: fields r00..r22: not a rotation (determinant %.3g)", no, det3(p.R))
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// WriteKITTIPoses writes poses in the KITTI odometry format that ReadKITTIPoses reads,
// each number in the shortest form that reads back to the same float64.
func WriteKITTIPoses(w io.Writer, poses []Pose) error {
	bw := bufio.NewWriter(w)
	buf := make([]byte, 0, 320)
	for i, p := range poses {
		if !p.IsFinite() {
			return fmt.Errorf("odom: write kitti: pose %d is not finite", i)
		}
		buf = buf[:0]
		for r := range 3 {
			for c := range 4 {
				if r+c > 0 {
					buf = append(buf, ' ')
				}
				v := p.T[r]
				if c < 3 {
					v = p.R[r][c]
				}
				buf = strconv.AppendFloat(buf, v, 'g', -1, 64)
			}
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return fmt.Errorf("odom: write kitti: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("odom: write kitti: %w", err)
	}
	return nil
}

// AssociateByTime pairs estimated and ground-truth poses by timestamp as TUM's
// associate.py does: among all pairs whose stamps differ by at most maxDiff, the
// closest pairs are taken first (ties by est index, then gt index), each pose is used
// at most once, and the result [estIndex, gtIndex] is ordered by the estimated stamp
// (then index). The inputs need not be sorted. (associate.py compares with a strict <;
// here a difference of exactly maxDiff still matches, so maxDiff 0 pairs equal stamps.)
// The work grows with the number of candidate pairs, so keep maxDiff near half the
// frame interval, as associate.py's users do.
func AssociateByTime(est, gt []StampedPose, maxDiff time.Duration) (pairs [][2]int) {
	if maxDiff < 0 || len(est) == 0 || len(gt) == 0 {
		return nil
	}
	type cand struct {
		diff time.Duration
		i, j int
	}
	// Sort gt by stamp to find each est stamp's window by binary search.
	order := make([]int, len(gt))
	for j := range order {
		order[j] = j
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(gt[a].Stamp.Compare(gt[b].Stamp), cmp.Compare(a, b))
	})
	var cands []cand
	for i, e := range est {
		lo := e.Stamp.Add(-maxDiff)
		k, _ := slices.BinarySearchFunc(order, lo, func(j int, t time.Time) int {
			if gt[j].Stamp.Before(t) {
				return -1
			}
			return 1
		})
		for ; k < len(order); k++ {
			j := order[k]
			d := gt[j].Stamp.Sub(e.Stamp)
			if d > maxDiff {
				break
			}
			cands = append(cands, cand{diff: max(d, -d), i: i, j: j})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		return cmp.Or(cmp.Compare(a.diff, b.diff), cmp.Compare(a.i, b.i), cmp.Compare(a.j, b.j))
	})
	usedE, usedG := make([]bool, len(est)), make([]bool, len(gt))
	for _, c := range cands {
		if usedE[c.i] || usedG[c.j] {
			continue
		}
		usedE[c.i], usedG[c.j] = true, true
		pairs = append(pairs, [2]int{c.i, c.j})
	}
	slices.SortFunc(pairs, func(a, b [2]int) int {
		return cmp.Or(est[a[0]].Stamp.Compare(est[b[0]].Stamp), cmp.Compare(a[0], b[0]))
	})
	return pairs
}

// scanLines calls line for every line that is not blank or a '#' comment, with its
// 1-based number and fields, and wraps its errors with the format's name.
func scanLines(r io.Reader, format string, line func(no int, f []string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes)
	no := 0
	for sc.Scan() {
		no++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if err := line(no, strings.Fields(text)); err != nil {
			return fmt.Errorf("odom: read %s: %w: %w", format, ErrPoseFile, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("odom: read %s: %w: line %d: longer than %d bytes", format, ErrPoseFile, no+1, maxLineBytes)
		}
		return fmt.Errorf("odom: read %s: %w", format, err)
	}
	return nil
}

// parseStamp reads Unix seconds: exactly when written with up to nine decimals,
// otherwise as a float rounded to the nanosecond.
func parseStamp(s string) (time.Time, error) {
	whole, frac, _ := strings.Cut(s, ".")
	digits := strings.TrimPrefix(whole, "-")
	if digits != "" && len(frac) <= 9 && allDigits(digits) && allDigits(frac) {
		sec, err := strconv.ParseInt(whole, 10, 64)
		if err == nil && sec <= maxStampSec && sec >= -maxStampSec {
			var ns int64
			if frac != "" {
				ns, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
			}
			if strings.HasPrefix(whole, "-") {
				ns = -ns
			}
			return time.Unix(sec, ns).UTC(), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(math.Abs(f) <= maxStampSec) {
		return time.Time{}, errors.New("want Unix seconds like 1735689600.100000000 within ±9e9")
	}
	return time.Unix(0, int64(math.Round(f*1e9))).UTC(), nil
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// appendStamp writes t as decimal Unix seconds with nine decimals, from integer
// nanoseconds (the format of camera/sim's sequences).
func appendStamp(b []byte, t time.Time) []byte {
	ns := t.UnixNano()
	if ns < 0 {
		b = append(b, '-')
		ns = -ns
	}
	b = strconv.AppendInt(b, ns/1e9, 10)
	b = append(b, '.')
	frac := strconv.FormatInt(ns%1e9, 10)
	for range 9 - len(frac) {
		b = append(b, '0')
	}
	return append(b, frac...)
}

func parseFinite(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, errors.New("not a finite number")
	}
	return v, nil
}

// orthonormalityError is max |RᵀR − I| over the elements.
func orthonormalityError(r [3][3]float64) float64 {
	rtr := matMul(transpose(r), r)
	var worst float64
	for i := range 3 {
		for j := range 3 {
			want := 0.0
			if i == j {
				want = 1
			}
			worst = max(worst, math.Abs(rtr[i][j]-want))
		}
	}
	return worst
}

func det3(r [3][3]float64) float64 {
	return dot(r[0], cross(r[1], r[2]))
}
