package telemetry

import (
	"errors"
	"strings"
	"testing"
)

func TestNewTopics(t *testing.T) {
	tp, err := NewTopics("rover-7")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ got, want string }{
		{tp.Prefix, "edgedepth/rover-7/"},
		{tp.Status(), "edgedepth/rover-7/status"},
		{tp.Depth(), "edgedepth/rover-7/depth"},
		{tp.DepthPreview(), "edgedepth/rover-7/depth/preview"},
		{tp.Pose(), "edgedepth/rover-7/pose"},
		{tp.Events(), "edgedepth/rover-7/events"},
		{tp.Cmd("snapshot"), "edgedepth/rover-7/cmd/snapshot"},
		{tp.Cmd("#"), "edgedepth/rover-7/cmd/#"},
		{tp.RobotID(), "rover-7"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}

	// The default robot id is the host name, which must always give usable topics
	// (or a clear error): whatever this machine is called, no wildcard may leak in.
	def, err := NewTopics("")
	if err != nil {
		t.Fatalf("default robot id: %v", err)
	}
	if err := ValidateRobotID(def.RobotID()); err != nil {
		t.Errorf("default robot id %q: %v", def.RobotID(), err)
	}
}

func TestValidateRobotID(t *testing.T) {
	for _, tc := range []struct {
		id      string
		wantErr string // substring; "" means valid
	}{
		{"rover-7", ""},
		{"jetson.local", ""},
		{"ロボット", ""},
		{"ROBOT_01", ""},
		{"", "empty"},
		{"a/b", "'/'"},
		{"a+b", "wildcard"},
		{"a#", "wildcard"},
		{"has space", "whitespace"},
		{"tab\tbed", "whitespace"},
		{"nul\x00", "control"},
		{"$SYS", "'$'"},
		{"\xff\xfe", "UTF-8"},
		{strings.Repeat("x", MaxRobotIDLen), ""},
		{strings.Repeat("x", MaxRobotIDLen+1), "at most"},
	} {
		err := ValidateRobotID(tc.id)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateRobotID(%q) = %v, want nil", tc.id, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalidRobotID) {
			t.Errorf("ValidateRobotID(%q) = %v, want an ErrInvalidRobotID mentioning %q", tc.id, err, tc.wantErr)
		}
		if _, err := NewTopics(tc.id); tc.id != "" && err == nil {
			t.Errorf("NewTopics(%q) accepted an invalid id", tc.id)
		}
	}
}

func TestSanitizeRobotID(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"rover-7", "rover-7"},
		{"Rover 7", "Rover-7"},
		{"a/b+c#d", "a-b-c-d"},
		{"  padded\n", "padded"},
		{"$weird", "weird"},
		{"# $000000", "000000"}, // found by FuzzSanitizeRobotID
		{"///", ""},
		{"bad\xffutf8", "badutf8"},
		{strings.Repeat("é", 40), strings.Repeat("é", 32)}, // 2 bytes each, cut at 64 bytes
	} {
		if got := SanitizeRobotID(tc.host); got != tc.want {
			t.Errorf("SanitizeRobotID(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

// FuzzSanitizeRobotID: whatever the host is called, the result is either a valid
// robot id or empty (which NewTopics reports as an error).
func FuzzSanitizeRobotID(f *testing.F) {
	for _, s := range []string{"rover-7", "a/b", "$x", " ", "\x00", "ロボット", strings.Repeat("é", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		id := SanitizeRobotID(host)
		if id == "" {
			return
		}
		if err := ValidateRobotID(id); err != nil {
			t.Fatalf("SanitizeRobotID(%q) = %q, which is invalid: %v", host, id, err)
		}
	})
}

func TestTopicsKind(t *testing.T) {
	tp := Topics{Prefix: "edgedepth/r1/"}
	for _, tc := range []struct{ topic, want string }{
		{tp.Status(), "status"},
		{tp.Depth(), "depth"},
		{tp.DepthPreview(), "depth_preview"},
		{tp.Pose(), "pose"},
		{tp.Events(), "events"},
		{tp.Cmd("rollback"), "cmd"},
		{tp.Cmd("rollback/reply"), "cmd"},
		{"edgedepth/r2/status", "other"},
		{"edgedepth/r1/depth/raw", "other"},
		{"elsewhere", "other"},
	} {
		if got := tp.Kind(tc.topic); got != tc.want {
			t.Errorf("Kind(%q) = %q, want %q", tc.topic, got, tc.want)
		}
	}
}
