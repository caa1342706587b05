package odom

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestReadTUM(t *testing.T) {
	in := "# timestamp tx ty tz qx qy qz qw\n" +
		"\n" +
		"1735689600.100000000 1 2 3 0 0 0 1\n" +
		"  1305031102.175304\t-0.5 0 1e-3 0 0 0.7071068 0.7071068  \n" +
		"-1.5 0 0 0 1 0 0 0\n" +
		"1.5e9 0 0 0 0 0 0 -1\n"
	got, err := ReadTUM(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	wantStamps := []time.Time{
		time.Unix(1735689600, 100000000), time.Unix(1305031102, 175304000),
		time.Unix(-1, -500000000), time.Unix(1500000000, 0),
	}
	if len(got) != len(wantStamps) {
		t.Fatalf("%d poses, want %d", len(got), len(wantStamps))
	}
	for i, w := range wantStamps {
		if !got[i].Stamp.Equal(w) {
			t.Errorf("pose %d: stamp %v, want %v", i, got[i].Stamp, w)
		}
	}
	if got[0].Pose.T != [3]float64{1, 2, 3} || poseDiff(got[0].Pose, Pose{R: Identity().R, T: [3]float64{1, 2, 3}}) != 0 {
		t.Errorf("pose 0: %+v", got[0].Pose)
	}
	// 90° about z, quaternion rounded to 7 decimals and normalised.
	if p := got[1].Pose.Apply([3]float64{1, 0, 0}); vecDiff(p, [3]float64{-0.5, 1, 1e-3}) > 1e-7 {
		t.Errorf("pose 1 maps x to %v", p)
	}
}

func TestReadTUMErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1 2 3\n", "line 1: 3 fields, want 8"},
		{"# c\n\n1 0 0 0 0 0 0 1 9\n", "line 3: 9 fields"},
		{"abc 0 0 0 0 0 0 1\n", "line 1: field 1 (timestamp) \"abc\""},
		{"1e300 0 0 0 0 0 0 1\n", "field 1 (timestamp)"},
		{"1 0 0 0 0 0 0 1\n2 0 x 0 0 0 0 1\n", "line 2: field 3 (ty) \"x\": not a finite number"},
		{"1 0 0 NaN 0 0 0 1\n", "field 4 (tz)"},
		{"1 0 0 0 inf 0 0 1\n", "field 5 (qx)"},
		{"1 0 0 0 0 0 0 1e999\n", "field 8 (qw)"},
		{"1 0 0 0 0 0 0 0\n", "line 1: fields 5-8 (qx qy qz qw): quaternion norm 0"},
		{"1 0 0 0 0 0 0 1.1\n", "quaternion norm 1.1"},
		{"1 " + strings.Repeat("0", 70000) + "\n", "line 1: longer than"},
	}
	for _, tc := range tests {
		_, err := ReadTUM(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrPoseFile) {
			t.Errorf("%.40q: error %v, want one containing %q and wrapping ErrPoseFile", tc.in, err, tc.want)
		}
	}
}

func TestTUMRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	poses := []StampedPose{
		{Stamp: time.Unix(0, 0), Pose: Identity()},
		{Stamp: time.Unix(1735689600, 1), Pose: randomPose(rng, math.Pi, 100)},
		{Stamp: time.Unix(-5, -999999999), Pose: randomPose(rng, 1, 1e-7)},
		{Stamp: time.Unix(maxStampSec, 999999999), Pose: FromAxisAngle([3]float64{math.Pi, 0, 0}, [3]float64{1e300, -1e-300, 0})},
	}
	for range 50 {
		poses = append(poses, StampedPose{Stamp: time.Unix(0, rng.Int64N(4e18)-2e18), Pose: randomPose(rng, math.Pi, 50)})
	}
	var buf bytes.Buffer
	if err := WriteTUM(&buf, poses); err != nil {
		t.Fatal(err)
	}
	if line, _, _ := strings.Cut(buf.String(), "\n"); !strings.HasPrefix(line, "0.000000000 0 0 0 0 0 0 1") {
		t.Errorf("first line %q", line)
	}
	back, err := ReadTUM(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(poses) {
		t.Fatalf("%d poses back, want %d", len(back), len(poses))
	}
	for i := range poses {
		if !back[i].Stamp.Equal(poses[i].Stamp) {
			t.Errorf("pose %d: stamp %v, want %v", i, back[i].Stamp, poses[i].Stamp)
		}
		if back[i].Pose.T != poses[i].Pose.T {
			t.Errorf("pose %d: position %v, want %v exactly", i, back[i].Pose.T, poses[i].Pose.T)
		}
		if d := poseDiff(Pose{R: back[i].Pose.R}, Pose{R: poses[i].Pose.R}); d > 1e-15 {
			t.Errorf("pose %d: rotation off by %g", i, d)
		}
	}

	// Stamps that UnixNano cannot hold, and non-finite poses, are refused.
	for _, bad := range []StampedPose{
		{Stamp: time.Time{}, Pose: Identity()},
		{Stamp: time.Unix(0, 0), Pose: Pose{R: Identity().R, T: [3]float64{math.Inf(1), 0, 0}}},
	} {
		if err := WriteTUM(&bytes.Buffer{}, []StampedPose{bad}); err == nil {
			t.Errorf("WriteTUM(%v): no error", bad)
		}
	}
}

func TestReadKITTIPoses(t *testing.T) {
	in := "1 0 0 0.5 0 1 0 -1 0 0 1 2\n" +
		"\n" +
		"0.000000e+00 -1.000000e+00 0.000000e+00 1.0e+01 1.000000e+00 0.000000e+00 0.000000e+00 0 0 0 1 0\n"
	got, err := ReadKITTIPoses(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Pose{
		{R: Identity().R, T: [3]float64{0.5, -1, 2}},
		{R: [3][3]float64{{0, -1, 0}, {1, 0, 0}, {0, 0, 1}}, T: [3]float64{10, 0, 0}},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestReadKITTIPosesErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1 0 0 0 0 1 0 0 0 0 1\n", "line 1: 11 fields, want 12"},
		{"1 0 0 0 0 1 0 0 0 0 1 0\n1 0 0 0 0 1 0 y 0 0 1 0\n", "line 2: field 8 (ty) \"y\": not a finite number"},
		{"1 0 0 0 0 1 0 0 0 0 NaN 0\n", "field 11 (r22)"},
		{"2 0 0 0 0 1 0 0 0 0 1 0\n", "line 1: fields r00..r22: not a rotation (max"},
		{"-1 0 0 0 0 1 0 0 0 0 1 0\n", "not a rotation (determinant -1)"},
	}
	for _, tc := range tests {
		_, err := ReadKITTIPoses(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrPoseFile) {
			t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.want)
		}
	}
}

func TestKITTIRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	var poses []Pose
	for range 50 {
		poses = append(poses, randomPose(rng, math.Pi, 1000))
	}
	var buf bytes.Buffer
	if err := WriteKITTIPoses(&buf, poses); err != nil {
		t.Fatal(err)
	}
	back, err := ReadKITTIPoses(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range poses {
		if back[i] != poses[i] {
			t.Fatalf("pose %d: %+v, want %+v exactly", i, back[i], poses[i])
		}
	}
	if err := WriteKITTIPoses(&buf, []Pose{{R: Identity().R, T: [3]float64{math.NaN(), 0, 0}}}); err == nil {
		t.Error("WriteKITTIPoses wrote a NaN")
	}
}

func TestAssociateByTime(t *testing.T) {
	at := func(ms ...int) []StampedPose {
		out := make([]StampedPose, len(ms))
		for i, m := range ms {
			out[i] = StampedPose{Stamp: time.Unix(100, int64(m)*1e6), Pose: Identity()}
		}
		return out
	}
	tests := []struct {
		name    string
		est, gt []StampedPose
		maxDiff time.Duration
		want    [][2]int
	}{
		{"exact", at(0, 100, 200), at(0, 100, 200), 0, [][2]int{{0, 0}, {1, 1}, {2, 2}}},
		// gt 105 is nearest to both 100 and 108; 108 gets it (3 ms), 100 falls back to
		// 90 (10 ms).
		{"each used once", at(100, 108), at(90, 105), 20 * time.Millisecond, [][2]int{{0, 0}, {1, 1}}},
		// A tie (5 ms each): the lower est index wins.
		{"tie", at(100, 110), at(105), 20 * time.Millisecond, [][2]int{{0, 0}}},
		{"closest first", at(100, 104), at(103), 10 * time.Millisecond, [][2]int{{1, 0}}},
		{"too far", at(0, 100), at(50), 20 * time.Millisecond, nil},
		{"boundary matches", at(0), at(20), 20 * time.Millisecond, [][2]int{{0, 0}}},
		{"unsorted input, sorted by est stamp", at(300, 100, 200), at(201, 99, 302), 5 * time.Millisecond,
			[][2]int{{1, 1}, {2, 0}, {0, 2}}},
		{"rates differ", at(0, 33, 66, 100), at(0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100), 5 * time.Millisecond,
			[][2]int{{0, 0}, {1, 3}, {2, 7}, {3, 10}}},
		{"empty", nil, at(0), time.Second, nil},
		{"negative", at(0), at(0), -1, nil},
	}
	for _, tc := range tests {
		got := AssociateByTime(tc.est, tc.gt, tc.maxDiff)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
}

// tumSeeds are inputs from the test tables.
var tumSeeds = []string{
	"# timestamp tx ty tz qx qy qz qw\n1735689600.100000000 1 2 3 0 0 0 1\n",
	"1305031102.175304\t-0.5 0 1e-3 0 0 0.7071068 0.7071068\n-1.5 0 0 0 1 0 0 0\n",
	"1.5e9 0 0 0 0 0 0 -1\n", "abc 0 0 0 0 0 0 1\n", "1 0 0 0 0 0 0 0\n", "",
}

func FuzzReadTUM(f *testing.F) {
	for _, s := range tumSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		poses, err := ReadTUM(strings.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteTUM(&buf, poses); err != nil {
			t.Fatalf("read %d poses but cannot write them: %v", len(poses), err)
		}
		back, err := ReadTUM(&buf)
		if err != nil {
			t.Fatalf("cannot read what WriteTUM wrote: %v\n%s", err, buf.String())
		}
		if len(back) != len(poses) {
			t.Fatalf("%d poses back, want %d", len(back), len(poses))
		}
		for i := range poses {
			if !back[i].Stamp.Equal(poses[i].Stamp) || back[i].Pose.T != poses[i].Pose.T {
				t.Fatalf("pose %d: %v, want %v", i, back[i], poses[i])
			}
			if d := poseDiff(back[i].Pose, poses[i].Pose); d > 1e-15 {
				t.Fatalf("pose %d: rotation off by %g", i, d)
			}
		}
	})
}

func FuzzReadKITTIPoses(f *testing.F) {
	for _, s := range []string{
		"1 0 0 0.5 0 1 0 -1 0 0 1 2\n\n0 -1 0 1e1 1 0 0 0 0 0 1 0\n",
		"1 0 0 0 0 1 0 0 0 0 1\n", "2 0 0 0 0 1 0 0 0 0 1 0\n", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		poses, err := ReadKITTIPoses(strings.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteKITTIPoses(&buf, poses); err != nil {
			t.Fatalf("read %d poses but cannot write them: %v", len(poses), err)
		}
		back, err := ReadKITTIPoses(&buf)
		if err != nil {
			t.Fatalf("cannot read what WriteKITTIPoses wrote: %v", err)
		}
		if len(back) != len(poses) {
			t.Fatalf("%d poses back, want %d", len(back), len(poses))
		}
		for i := range poses {
			if back[i] != poses[i] {
				t.Fatalf("pose %d: %+v, want %+v exactly", i, back[i], poses[i])
			}
		}
	})
}
