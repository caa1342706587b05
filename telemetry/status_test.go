package telemetry

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/health"
)

func TestStatusJSON(t *testing.T) {
	at := time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		s    Status
		want string
	}{
		{
			name: "healthy: warnings is an empty array",
			s: Status{State: StateRunning, Version: "0.3.0", RobotID: "rover-7", Backend: "cuda",
				Estimator: "monodepth2-stereo v12", FPS: 14.8, LatencyMs: 61.5, FramesIn: 9000,
				FramesDropped: 12, FramesPublished: 8980, Time: at, UptimeS: 612.5},
			want: `{"state":"running","version":"0.3.0","robot_id":"rover-7","backend":"cuda","estimator":"monodepth2-stereo v12","fps":14.8,"latency_ms":61.5,"frames_in":9000,"frames_dropped":12,"frames_published":8980,"warnings":[],"time":"2026-11-26T08:15:00Z","uptime_s":612.5}`,
		},
		{
			name: "degraded",
			s: Status{State: StateDegraded, RobotID: "rover-7", Time: at,
				Warnings: []health.Warning{{Component: "mqtt", Message: "broker gone", Since: at}}},
			want: `{"state":"degraded","version":"","robot_id":"rover-7","backend":"","estimator":"","fps":0,"latency_ms":0,"frames_in":0,"frames_dropped":0,"frames_published":0,"warnings":[{"component":"mqtt","message":"broker gone","since":"2026-11-26T08:15:00Z"}],"time":"2026-11-26T08:15:00Z","uptime_s":0}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
			var back Status
			if err := json.Unmarshal(b, &back); err != nil || back.State != tc.s.State || !back.Time.Equal(tc.s.Time) {
				t.Errorf("round trip: %+v, %v", back, err)
			}
		})
	}
}

func TestEventJSON(t *testing.T) {
	at := time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC)
	b, _ := json.Marshal(Event{Time: at, Kind: "camera_lost", Message: "left camera: no frames for 2s"})
	if want := `{"time":"2026-11-26T08:15:00Z","kind":"camera_lost","message":"left camera: no frames for 2s"}`; string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(Event{Time: at, Kind: "model_promoted", Message: "m", Fields: map[string]any{"version": 13}})
	if !strings.Contains(string(b), `"fields":{"version":13}`) {
		t.Errorf("fields missing: %s", b)
	}
}

func TestOfflineStatus(t *testing.T) {
	var s Status
	if err := json.Unmarshal(offlineStatus("rover-7", time.Now()), &s); err != nil {
		t.Fatal(err)
	}
	if s.State != StateOffline || s.RobotID != "rover-7" || s.Time.IsZero() {
		t.Errorf("offline status = %+v", s)
	}
}
