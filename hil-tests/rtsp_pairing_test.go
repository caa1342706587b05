package hiltests

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/rtsp"
	"github.com/edgedepth/edgedepth/camera/rtspserve"
	"github.com/edgedepth/edgedepth/camera/rtsptest"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/camera/stereo"
)

// The pairing tests serve the simulated room through our RTSP server (MJPEG: intra-only,
// so every picture decodes on its own) with one eye late, read both eyes with two real
// RTSP cameras over TCP on loopback sockets, pair them with stereo.Source, and check
// the pairs by their content: each pair's images are identified as frames of the
// simulated world, which the test renders again afterwards (World.Render is
// deterministic). Capture times alone could not catch a pairer that pairs the wrong
// pictures with consistent-looking times; the pictures can.
//
// 320x240 because rendering 640x480 takes ~60 ms a frame on two cores, which would make
// the sim skip frames while two MJPEG encoders and decoders share the box with it.
const (
	pairW, pairH = 320, 240
	// pairRunTimeout bounds a whole run, connection and warm-up included; generous for
	// a loaded two-core machine.
	pairRunTimeout = 60 * time.Second
	// pairWarmup is the start of the run excluded from the rate: the pairer needs 8
	// frame gaps of each camera (after the switch to NTP time) before it pairs at all.
	pairWarmup = time.Second
	// maxMatchMAD is the largest mean absolute difference (grey levels, 0–255) between a
	// received picture and the rendered frame it is identified as. MJPEG at quality 85
	// of this scene differs from its source by ~2–3; two consecutive world frames of the
	// finely textured room differ by ~9–20 (a pixel-level comparison of moving texture is
	// nearly uncorrelated), so the identification is not ambiguous.
	maxMatchMAD = 8.0
	// searchFrames is how many world frames either side of the one expected from a
	// pair's capture time are candidates: covers the unknown delay between t0 (taken
	// before the server starts) and the sim's first frame, and timer jitter.
	searchFrames = 5
)

// pairRun describes one pairing experiment.
type pairRun struct {
	fps       float64
	late      rtspserve.LateEye
	tolerance time.Duration // 0: stereo's default (half the measured period)
	measure   time.Duration // how long to collect pairs after the first one
	// noPairsOK lets the run end at the deadline without any pair (checked by the caller).
	noPairsOK bool
}

// seenPair is one emitted pair with what the test knows of its two frames.
type seenPair struct {
	arrived        time.Time // when emit was called
	tL, tR         time.Time // capture times of the left and right frame
	clockL, clockR camera.Clock
	left, right    camera.Image
}

// pairResult is what a run produced.
type pairResult struct {
	world *sim.World
	t0    time.Time // taken just before the server (and with it the sim) started
	pairs []seenPair
	stats stereo.Stats
}

// stampTap wraps a camera to remember the capture time and clock of each frame it
// delivers, keyed by the address of the frame's pixels: a StereoFrame carries only the
// left capture time, and without a rectifier the pairer passes the decoded images
// through untouched (the RTSP camera allocates a fresh image per picture), so the right
// image's address finds its frame. uintptr keys keep no image alive; an address reused
// after a GC is overwritten by the newer frame before the pairer can pair it.
type stampTap struct {
	camera.MonoSource
	mu   sync.Mutex
	seen map[uintptr]tapped
}

type tapped struct {
	at    time.Time
	clock camera.Clock
}

func newStampTap(m camera.MonoSource) *stampTap {
	return &stampTap{MonoSource: m, seen: make(map[uintptr]tapped)}
}

func pixAddr(m camera.Image) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(m.Pix))) }

func (c *stampTap) Run(ctx context.Context, emit func(camera.Frame)) error {
	return c.MonoSource.Run(ctx, func(f camera.Frame) {
		c.mu.Lock()
		c.seen[pixAddr(f.Image)] = tapped{f.CaptureTime, f.Clock}
		c.mu.Unlock()
		emit(f)
	})
}

// take returns (and forgets) the stamp of the frame whose image is m.
func (c *stampTap) take(m camera.Image) (tapped, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := pixAddr(m)
	v, ok := c.seen[k]
	delete(c.seen, k)
	return v, ok
}

// serveWorld serves the simulated room at fps through our RTSP server, MJPEG, with late
// making one eye late. t0 is taken just before the server (and with it the sim's clock)
// starts: world frame k is captured about t0 + k/fps.
func serveWorld(t *testing.T, fps float64, late rtspserve.LateEye) (*sim.World, time.Time, *rtsptest.Server) {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.Scene, cfg.Width, cfg.Height, cfg.FPS = sim.SceneRoom, pairW, pairH, fps
	world, err := sim.NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	srv := rtsptest.StartServer(t, rtspserve.Config{Codec: rtspserve.CodecMJPEG, FPS: fps, Late: late}, sim.NewSource(world))
	return world, t0, srv
}

// rtspCams returns RTSP cameras (TCP) on the server's two eyes.
func rtspCams(t *testing.T, srv *rtsptest.Server) (left, right *rtsp.Camera) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var cams [2]*rtsp.Camera
	for i, eye := range []string{"left", "right"} {
		cam, err := rtsp.New(eye, rtsp.Config{URL: srv.URL(eye), Transport: rtsp.TransportTCP}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		cams[i] = cam
	}
	return cams[0], cams[1]
}

// runPairing serves the room at r.fps with r.late and collects pairs for r.measure after
// the first one (or until the deadline with r.noPairsOK).
func runPairing(t *testing.T, r pairRun) pairResult {
	t.Helper()
	world, t0, srv := serveWorld(t, r.fps, r.late)
	left, right := rtspCams(t, srv)
	taps := [2]*stampTap{newStampTap(left), newStampTap(right)}
	src := &stereo.Source{
		Left: taps[0], Right: taps[1],
		// The sim's pictures are already rectified: its geometry travels with the pairs.
		Intrinsics: world.Intrinsics(), BaselineM: world.BaselineM(),
		Config: stereo.Config{PairTolerance: r.tolerance},
		Log:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}

	deadline := pairRunTimeout
	if r.noPairsOK {
		// Both cameras connect and the pairer learns the period within a few seconds;
		// a run that may see no pair must end on its own, after measure has passed.
		deadline = 10*time.Second + r.measure
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var pairs []seenPair
	var missing int
	var st stereo.Stats
	snapped := false
	runErr := src.Run(ctx, func(sf camera.StereoFrame) {
		// emit is called from Run's goroutine only: no lock needed for pairs.
		p := seenPair{arrived: time.Now(), tL: sf.CaptureTime, left: sf.Left, right: sf.Right}
		l, okL := taps[0].take(sf.Left)
		rr, okR := taps[1].take(sf.Right)
		if !okL || !okR || !l.at.Equal(sf.CaptureTime) {
			missing++
			return
		}
		p.tR, p.clockL, p.clockR = rr.at, l.clock, rr.clock
		pairs = append(pairs, p)
		if p.arrived.Sub(pairs[0].arrived) >= r.measure && !snapped {
			// Snapshot the statistics while the cameras run: when Run stops, the
			// cameras go down and the pairer's recent-pairs window (offset, drift) is
			// flushed.
			st, snapped = src.Stats(), true
			cancel()
		}
	})
	if runErr != nil {
		t.Fatalf("stereo source: %v", runErr)
	}
	if !snapped {
		st = src.Stats()
	}
	if missing > 0 {
		t.Fatalf("%d pairs whose images were not frames the cameras delivered (test bookkeeping broken, or the pairer copies images)", missing)
	}
	if len(pairs) == 0 && !r.noPairsOK {
		t.Fatalf("no pair within %v; stats %+v", deadline, st)
	}
	if len(pairs) > 0 && pairs[len(pairs)-1].arrived.Sub(pairs[0].arrived) < r.measure && !r.noPairsOK {
		t.Fatalf("pairs stopped: %d pairs over %v, wanted %v of them; stats %+v",
			len(pairs), pairs[len(pairs)-1].arrived.Sub(pairs[0].arrived), r.measure, st)
	}
	return pairResult{world: world, t0: t0, pairs: pairs, stats: st}
}

// testWriter sends slog lines to a test's or benchmark's log.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// mad is the mean absolute difference of two images of the same size, per byte.
func mad(a, b camera.Image) float64 {
	var s int
	for i := range a.Pix {
		d := int(a.Pix[i]) - int(b.Pix[i])
		if d < 0 {
			d = -d
		}
		s += d
	}
	return float64(s) / float64(len(a.Pix))
}

// worldCache renders world frames once each.
type worldCache struct {
	w      *sim.World
	frames map[int]camera.StereoFrame
}

func (c *worldCache) frame(k int) camera.StereoFrame {
	if f, ok := c.frames[k]; ok {
		return f
	}
	f := c.w.Render(k)
	c.frames[k] = f
	return f
}

// identify returns the world frame k whose eye image (pick) is closest to img among the
// frames around the one expected at capture time at, and the distances to k-1, k, k+1
// (NaN for k-1 < 0).
func (c *worldCache) identify(img camera.Image, at, t0 time.Time, pick func(camera.StereoFrame) camera.Image) (k int, d [3]float64) {
	period := time.Duration(math.Round(1e9 / c.w.Config().FPS))
	expected := int(math.Round(float64(at.Sub(t0)) / float64(period)))
	best, bestD := -1, math.Inf(1)
	for j := max(0, expected-searchFrames); j <= expected+searchFrames; j++ {
		if dj := mad(img, pick(c.frame(j))); dj < bestD {
			best, bestD = j, dj
		}
	}
	return best, c.around(img, best, pick)
}

// around returns img's distances to the pick of frames k-1, k, k+1.
func (c *worldCache) around(img camera.Image, k int, pick func(camera.StereoFrame) camera.Image) [3]float64 {
	d := [3]float64{math.NaN(), 0, 0}
	for i, j := range []int{k - 1, k, k + 1} {
		if j >= 0 {
			d[i] = mad(img, pick(c.frame(j)))
		}
	}
	return d
}

func leftOf(f camera.StereoFrame) camera.Image  { return f.Left }
func rightOf(f camera.StereoFrame) camera.Image { return f.Right }

// contentOffsets identifies every pair's left picture as world frame k and returns, per
// pair, which frame its right picture is: 0 when it is frame k's right image (closer to
// it than to k±1's, as a pixel comparison judges after MJPEG), otherwise the offset of
// the closest candidate. It fails the test when a left picture is no world frame near
// its capture time.
func contentOffsets(t *testing.T, res pairResult) []int {
	t.Helper()
	c := &worldCache{w: res.world, frames: map[int]camera.StereoFrame{}}
	offs := make([]int, len(res.pairs))
	logged := 0
	for i, p := range res.pairs {
		k, dl := c.identify(p.left, p.tL, res.t0, leftOf)
		if dl[1] > maxMatchMAD {
			t.Fatalf("pair %d: left picture matches no world frame near its capture time (best: frame %d at MAD %.1f)", i, k, dl[1])
		}
		dr := c.around(p.right, k, rightOf)
		if dr[1] < dr[2] && (math.IsNaN(dr[0]) || dr[1] < dr[0]) {
			continue // frame k's right image: offset 0
		}
		kr, _ := c.identify(p.right, p.tL, res.t0, rightOf)
		offs[i] = kr - k
		if offs[i] == 0 { // closest of the window yet not closer than a neighbour: say so
			offs[i] = math.MaxInt
		}
		if logged++; logged > 5 {
			continue // the histogram or the failures say the rest
		}
		t.Logf("pair %d: left is world frame %d (MAD %.1f; k±1 %.1f/%.1f); right MAD to frames k-1/k/k+1: %.1f/%.1f/%.1f, best k%+d; tL-tR %v, clocks %s/%s",
			i, k, dl[1], dl[0], dl[2], dr[0], dr[1], dr[2], kr-k, p.tL.Sub(p.tR), p.clockL, p.clockR)
	}
	return offs
}

// checkTimes asserts that no pair's capture times are further apart than tol and
// returns the largest |tL − tR|.
func checkTimes(t *testing.T, pairs []seenPair, tol time.Duration) time.Duration {
	t.Helper()
	var worst time.Duration
	for i, p := range pairs {
		d := p.tL.Sub(p.tR).Abs()
		worst = max(worst, d)
		if d > tol {
			t.Errorf("pair %d: |tL − tR| = %v exceeds the tolerance %v (clocks %s/%s)", i, d, tol, p.clockL, p.clockR)
		}
	}
	return worst
}

// checkRate asserts that pairs arrived at no less than 80 % of fps after the warm-up.
func checkRate(t *testing.T, pairs []seenPair, fps float64) float64 {
	t.Helper()
	from := pairs[0].arrived.Add(pairWarmup)
	n, last := 0, from
	for _, p := range pairs {
		if p.arrived.After(from) {
			n++
			last = p.arrived
		}
	}
	span := last.Sub(from).Seconds()
	rate := float64(n) / span
	if span <= 0 || rate < 0.8*fps {
		t.Errorf("%d pairs in %.2f s after the warm-up = %.2f pairs/s, want at least %.1f (80 %% of %g fps)", n, span, rate, 0.8*fps, fps)
	}
	return rate
}

// clocks summarises the pairs' capture clocks ("ntp/ntp": 57, ...).
func clocks(pairs []seenPair) string {
	n := map[string]int{}
	for _, p := range pairs {
		n[string(p.clockL)+"/"+string(p.clockR)]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf("%s: %d ", k, n[k])
	}
	return s
}

// TestPairingRightEyeTransportLate: the right camera's packets arrive 100 ms late but its
// capture times (RTCP sender reports) are true, as behind a slow network path or a deep
// camera buffer. The right frames reach the pairer a frame period after their left
// partners, which must wait for them: every pair must still hold the two pictures of
// one world frame, and pairs must flow at the stream's rate.
func TestPairingRightEyeTransportLate(t *testing.T) {
	const fps = 10
	res := runPairing(t, pairRun{
		fps:     fps,
		late:    rtspserve.LateEye{Eye: "right", Delay: 100 * time.Millisecond, TransportOnly: true},
		measure: 8 * time.Second,
	})
	t.Logf("%d pairs; clocks %s; pairing %+v", len(res.pairs), clocks(res.pairs), res.stats.Pairing)

	// Both eyes' capture times come from the same instant (the server stamps the pair
	// once): a pair of the same picture differs by RTP rounding only.
	worst := checkTimes(t, res.pairs, 5*time.Millisecond)
	rate := checkRate(t, res.pairs, fps)
	if e := res.stats.Pairing.ErrorMean; e > 5*time.Millisecond {
		t.Errorf("mean pair error %v, want under 5ms for cameras whose capture times agree", e)
	}
	for i, off := range contentOffsets(t, res) {
		if off != 0 {
			t.Errorf("pair %d: right picture is not the left picture's world frame (offset %d)", i, off)
		}
	}
	// Pairs made but not emitted are the burst of the first matching (the frames
	// buffered while the period was learned) overflowing the source's 2-pair queue.
	t.Logf("rate %.2f pairs/s, worst |tL − tR| %v, unpaired left/right %d/%d, pairs dropped before emit %d",
		rate, worst, res.stats.Pairing.UnpairedLeft, res.stats.Pairing.UnpairedRight, res.stats.DroppedPairs)
}

// TestPairingRightEyeCaptureLate: the right camera exposes 100 ms after the left one
// (its RTP timestamps and sender reports say so), and a pair tolerance of 150 ms accepts
// that. Pairs must keep flowing, none may be further apart than the tolerance, and the
// source's statistics must report the offset as it is: left − right ≈ −100 ms, with no
// drift (the offset is constant).
//
// The stream runs at 4 fps (250 ms period) because the offset must be unambiguous:
// pairing takes each frame's nearest partner in time, and at 10 fps a camera 100 ms
// late is exactly one period behind, i.e. in phase with the other, so its nearest
// partner is 0 ms away and the 100 ms never shows (TestPairingCaptureLateDefaultTolerance
// covers that case). At 4 fps the candidates are −100 ms and +150 ms away.
//
// The sim cannot render the world 100 ms later, so the late eye's picture stamped T is
// world frame k's right image where k is the left eye's frame at T − 100 ms: pairing by
// time pairs left k with right k, which the content check confirms.
func TestPairingRightEyeCaptureLate(t *testing.T) {
	const fps = 4
	const delay = 100 * time.Millisecond
	tol := 150 * time.Millisecond
	res := runPairing(t, pairRun{
		fps:       fps,
		late:      rtspserve.LateEye{Eye: "right", Delay: delay},
		tolerance: tol,
		// The drift fit needs 5 s of pairs (and 10 of them) before it is valid.
		measure: 8 * time.Second,
	})
	p := res.stats.Pairing
	t.Logf("%d pairs; clocks %s; pairing %+v", len(res.pairs), clocks(res.pairs), p)

	worst := checkTimes(t, res.pairs, tol)
	rate := checkRate(t, res.pairs, fps)
	if p.Tolerance != tol {
		t.Errorf("tolerance in force %v, configured %v", p.Tolerance, tol)
	}
	// left − right: the right eye's capture times are later, so the offset is negative.
	if d := p.OffsetRecent + delay; d.Abs() > 20*time.Millisecond {
		t.Errorf("reported left − right offset %v, want −%v ± 20ms", p.OffsetRecent, delay)
	}
	if p.ErrorMean < 80*time.Millisecond || p.ErrorMean > 120*time.Millisecond {
		t.Errorf("mean pair error %v, want about %v", p.ErrorMean, delay)
	}
	// A constant offset is no drift: the fit must be valid after 8 s and below the
	// warning threshold (the capture times of both eyes come from one clock, moved by
	// exactly 100 ms, so the slope is ~0).
	if !p.DriftValid {
		t.Errorf("drift not valid after %v of pairs (span %v)", 8*time.Second, p.DriftSpan)
	} else if math.Abs(p.DriftMsPerMin) > stereo.DefaultDriftWarnMsPerMin {
		t.Errorf("drift %.2f ms/min for a constant offset, want under %g", p.DriftMsPerMin, stereo.DefaultDriftWarnMsPerMin)
	}
	for i, off := range contentOffsets(t, res) {
		if off != 0 {
			t.Errorf("pair %d: right picture is not the left picture's world frame (offset %d)", i, off)
		}
	}
	t.Logf("rate %.2f pairs/s, worst |tL − tR| %v, offset %v, drift %.3f ms/min over %v",
		rate, worst, p.OffsetRecent, p.DriftMsPerMin, p.DriftSpan)
}

// TestPairingCaptureLateDefaultTolerance: the capture-late right eye of
// TestPairingRightEyeCaptureLate at 10 fps with the default tolerance (half the measured
// period, 50 ms). The invariant is that no pair is ever emitted whose capture times
// differ by more than the tolerance in force; whether pairs flow depends on the phase.
// At 10 fps the 100 ms delay is exactly one period, so each left frame has a right
// partner stamped about 0 ms away (showing the previous world frame, which is what a
// camera that exposes a period later sees): pairs are expected to flow, and the test
// logs what it saw.
func TestPairingCaptureLateDefaultTolerance(t *testing.T) {
	const fps = 10
	res := runPairing(t, pairRun{
		fps:       fps,
		late:      rtspserve.LateEye{Eye: "right", Delay: 100 * time.Millisecond},
		measure:   4 * time.Second,
		noPairsOK: true,
	})
	p := res.stats.Pairing
	if p.Tolerance <= 0 {
		t.Fatalf("the pairer never learned the frame period: pairing %+v", p)
	}
	if p.Tolerance > 60*time.Millisecond {
		t.Errorf("default tolerance %v, want half the 100ms period", p.Tolerance)
	}
	worst := checkTimes(t, res.pairs, p.Tolerance)
	if p.ErrorMax > p.Tolerance {
		t.Errorf("stats report a pair error of %v, above the tolerance %v", p.ErrorMax, p.Tolerance)
	}
	t.Logf("%d pairs (stats: %d) under tolerance %v; clocks %s; worst |tL − tR| %v; offset %v; unpaired left/right %d/%d",
		len(res.pairs), p.Pairs, p.Tolerance, clocks(res.pairs), worst, p.OffsetRecent, p.UnpairedLeft, p.UnpairedRight)
	if len(res.pairs) > 0 {
		hist := map[int]int{}
		for _, off := range contentOffsets(t, res) {
			hist[off]++
		}
		t.Logf("right picture's world frame relative to the left's: %v", hist)
	}
}

// TestProbeReportsCaptureLateOffset: `edgedepth probe` on the capture-late rig of
// TestPairingRightEyeCaptureLate (4 fps, right eye 100 ms late, tolerance 150 ms) must
// report what a person wiring cameras needs to see: both cameras on NTP time, pairs
// flowing, the −100 ms left − right offset, and a drift that was measured (the probe
// runs past the 5 s the fit needs) and is ~0.
func TestProbeReportsCaptureLateOffset(t *testing.T) {
	const fps = 4
	const delay = 100 * time.Millisecond
	_, _, srv := serveWorld(t, fps, rtspserve.LateEye{Eye: "right", Delay: delay})
	left, right := rtspCams(t, srv)
	src := &stereo.Source{Left: left, Right: right, Config: stereo.Config{PairTolerance: 150 * time.Millisecond}}
	// 10 s: ~1 s to connect, ~2.5 s for the period (8 gaps at 4 fps), then > 5 s of
	// pairs for the drift fit.
	rep, err := stereo.Probe(context.Background(), src, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("probe report:\n%s", rep.Text())
	if rep.Pairs == 0 {
		t.Fatalf("probe saw no pairs")
	}
	for _, c := range rep.Cameras {
		if !c.NTP {
			t.Errorf("camera %s: no NTP time reported, though the server sends sender reports", c.Side)
		}
		if c.FPS < 0.8*fps || c.FPS > 1.2*fps {
			t.Errorf("camera %s: %.2f fps, want about %d", c.Side, c.FPS, fps)
		}
	}
	if rep.ToleranceMs != 150 {
		t.Errorf("tolerance %.1f ms, configured 150", rep.ToleranceMs)
	}
	if rep.PairErrorMax > rep.ToleranceMs {
		t.Errorf("pair error max %.1f ms above the tolerance %.1f ms", rep.PairErrorMax, rep.ToleranceMs)
	}
	if math.Abs(rep.OffsetMs+100) > 20 {
		t.Errorf("reported left − right offset %.2f ms, want −100 ± 20 ms", rep.OffsetMs)
	}
	if !rep.DriftValid {
		t.Errorf("drift not measured after a %.1f s probe (fitted over %.1f s)", rep.Seconds, rep.DriftSeconds)
	} else if rep.DriftWarning {
		t.Errorf("drift warning (%.2f ms/min) for a constant offset", rep.DriftMsPerMin)
	}
}
