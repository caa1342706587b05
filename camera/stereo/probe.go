package stereo

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

// Describer is implemented by cameras that can say what they stream (codec, resolution,
// transport) and how it went (frames lost or corrupt, jitter). Keys are the camera's
// own, snake_case by convention ("codec", "frames_lost", "frames_corrupt"); the probe
// prints whatever it is given.
type Describer interface {
	Describe() map[string]any
}

// Report is what `edgedepth probe` prints: what each camera delivered and how well the
// two pair. Times are in milliseconds, rates per second.
type Report struct {
	Seconds    float64        `json:"seconds"`
	SideBySide bool           `json:"side_by_side"`
	Cameras    []CameraReport `json:"cameras"`

	Pairs          uint64  `json:"pairs"`
	PairsPerSecond float64 `json:"pairs_per_second"`
	ToleranceMs    float64 `json:"tolerance_ms"`
	PairErrorMean  float64 `json:"pair_error_mean_ms"`
	PairErrorMax   float64 `json:"pair_error_max_ms"`
	// OffsetMs is the mean of left − right capture time over recent pairs.
	OffsetMs      float64 `json:"offset_ms"`
	DriftMsPerMin float64 `json:"drift_ms_per_min"`
	DriftSeconds  float64 `json:"drift_seconds"` // how much history the drift was fitted over
	DriftValid    bool    `json:"drift_valid"`
	DriftWarning  bool    `json:"drift_warning"` // above drift_warn_ms_per_min
	UnpairedLeft  uint64  `json:"unpaired_left"`
	UnpairedRight uint64  `json:"unpaired_right"`
	OutOfOrder    uint64  `json:"out_of_order"`
	RectifyErrors uint64  `json:"rectify_errors"`
}

// CameraReport is one camera's part of a Report.
type CameraReport struct {
	Side     string  `json:"side"` // "left", "right" or "side-by-side"
	Name     string  `json:"name"`
	Width    int     `json:"width"`
	Height   int     `json:"height"`
	FPS      float64 `json:"fps"`
	Frames   uint64  `json:"frames"`
	Clock    string  `json:"clock"`
	NTP      bool    `json:"ntp"`
	Restarts uint64  `json:"restarts"`
	// LastError is why the camera last failed, if it did.
	LastError string `json:"last_error,omitempty"`
	// Details is the camera's own Describe (codec, frames lost or corrupt, ...), if it has one.
	Details map[string]any `json:"details,omitempty"`
}

// Probe runs src for d, discarding its pairs, and reports what it saw. The streams need
// not be rectified or described: without a Rectifier, Intrinsics are not required. It
// returns an error when src is misconfigured, or ctx's error (with what was seen so far)
// when ctx ends before d. Camera failures are in the report, not errors.
func Probe(ctx context.Context, src *Source, d time.Duration) (Report, error) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- src.run(pctx, func(camera.StereoFrame) {}, false) }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	// The statistics are read while the cameras still run: stopping them flushes the
	// pairer, and with it the recent pairs that the offset and drift come from.
	var st Stats
	select {
	case err := <-done: // misconfigured (or ctx ended at once)
		if err != nil {
			return Report{}, err
		}
		st = src.Stats()
	case <-timer.C:
		st = src.Stats()
	case <-ctx.Done():
		st = src.Stats()
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		return Report{}, err
	}
	return report(src, st, elapsed), ctx.Err()
}

// ProbeCameras probes two cameras with the default pairing config.
func ProbeCameras(ctx context.Context, left, right camera.MonoSource, d time.Duration) (Report, error) {
	return Probe(ctx, &Source{Left: left, Right: right}, d)
}

func report(src *Source, st Stats, elapsed time.Duration) Report {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	p := st.Pairing
	r := Report{
		Seconds:       elapsed.Seconds(),
		SideBySide:    st.SideBySide,
		Pairs:         p.Pairs,
		ToleranceMs:   ms(p.Tolerance),
		PairErrorMean: ms(p.ErrorMean),
		PairErrorMax:  ms(p.ErrorMax),
		OffsetMs:      ms(p.OffsetRecent),
		DriftMsPerMin: p.DriftMsPerMin,
		DriftSeconds:  p.DriftSpan.Seconds(),
		DriftValid:    p.DriftValid,
		UnpairedLeft:  p.UnpairedLeft,
		UnpairedRight: p.UnpairedRight,
		OutOfOrder:    p.OutOfOrderLeft + p.OutOfOrderRight,
		RectifyErrors: st.RectifyErrors,
	}
	if elapsed > 0 {
		r.PairsPerSecond = float64(r.Pairs) / elapsed.Seconds()
	}
	warn := src.Config.Resolved().DriftWarnMsPerMin
	r.DriftWarning = p.DriftValid && (p.DriftMsPerMin > warn || p.DriftMsPerMin < -warn)
	cam := func(side string, c CameraStats, m camera.MonoSource) CameraReport {
		cr := CameraReport{
			Side: side, Name: c.Name, Width: c.Width, Height: c.Height, FPS: c.FPS,
			Frames: c.Frames, Clock: string(c.Clock), NTP: c.NTP, Restarts: c.Restarts, LastError: c.LastError,
		}
		if d, ok := m.(Describer); ok {
			cr.Details = d.Describe()
		}
		return cr
	}
	if st.SideBySide {
		r.Cameras = []CameraReport{cam("side-by-side", st.Left, src.SideBySide)}
	} else {
		r.Cameras = []CameraReport{cam("left", st.Left, src.Left), cam("right", st.Right, src.Right)}
	}
	return r
}

// Text renders the report for a person wiring cameras: one block per camera, then the
// pairing, with a hint where something is wrong.
func (r Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "probed for %.1f s\n", r.Seconds)
	for _, c := range r.Cameras {
		fmt.Fprintf(&b, "camera %s: %s\n", c.Side, c.Name)
		if c.Frames == 0 {
			b.WriteString("  no frames received\n")
		} else {
			clock := c.Clock
			if !c.NTP {
				clock += " (no NTP time from the camera: capture times include network delay)"
			}
			fmt.Fprintf(&b, "  %dx%d, %.2f fps, %d frames, clock %s\n", c.Width, c.Height, c.FPS, c.Frames, clock)
		}
		for _, k := range slices.Sorted(maps.Keys(c.Details)) {
			fmt.Fprintf(&b, "  %s: %v\n", k, c.Details[k])
		}
		if c.Restarts > 0 {
			fmt.Fprintf(&b, "  restarts: %d, last error: %s\n", c.Restarts, c.LastError)
		}
	}
	if r.SideBySide {
		fmt.Fprintf(&b, "pairs: %d (%.2f per second), split from one side-by-side stream\n", r.Pairs, r.PairsPerSecond)
	} else {
		fmt.Fprintf(&b, "pairs: %d (%.2f per second), tolerance %.1f ms\n", r.Pairs, r.PairsPerSecond, r.ToleranceMs)
		if r.Pairs > 0 {
			fmt.Fprintf(&b, "  pair error: mean %.2f ms, max %.2f ms; left − right offset %+.2f ms\n", r.PairErrorMean, r.PairErrorMax, r.OffsetMs)
		}
		switch {
		case r.DriftValid:
			fmt.Fprintf(&b, "  drift: %+.2f ms/min over %.0f s", r.DriftMsPerMin, r.DriftSeconds)
			if r.DriftWarning {
				b.WriteString(" (too much: synchronise the cameras' clocks)")
			}
			b.WriteString("\n")
		default:
			b.WriteString("  drift: not measured (probe for longer)\n")
		}
		fmt.Fprintf(&b, "  unpaired frames: left %d, right %d\n", r.UnpairedLeft, r.UnpairedRight)
		if r.OutOfOrder > 0 {
			fmt.Fprintf(&b, "  frames with capture time going back: %d\n", r.OutOfOrder)
		}
	}
	if r.RectifyErrors > 0 {
		fmt.Fprintf(&b, "rectification failed for %d pairs\n", r.RectifyErrors)
	}
	return b.String()
}
