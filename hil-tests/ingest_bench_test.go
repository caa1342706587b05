package hiltests

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/calib"
	"github.com/edgedepth/edgedepth/camera/rtsp"
	"github.com/edgedepth/edgedepth/camera/rtsptest"
	"github.com/edgedepth/edgedepth/camera/stereo"
)

// The ingest benchmarks measure what a stereo pair costs this process at 1280x720 H.264,
// 30 fps: RTSP client, depacketizing, libavcodec decoding and conversion to RGB, pairing
// and rectification (stereo.Source with a calib.Rectifier). One iteration is one pair.
//
// The two streams come from GStreamer's RTSP server (two independent live pipelines,
// x264 ultrafast, no B-frames, an IDR a second), which runs in a process of its own:
// this process's CPU time is then the ingest alone. (Publishing with ffmpeg into our
// rtspserve would work too, but rtspserve runs in this process and its relaying would
// be counted as ingest.) BenchmarkFFmpegDecodeSameStreams decodes the same streams with
// the ffmpeg command-line tool for the side-by-side figure:
//
//	go test -run '^$' -bench 'Ingest|FFmpegDecode' -benchtime=60x ./hil-tests
//
// CPU time is the process's user + system time (getrusage), so it counts every
// thread: the decoder's own threads and the Go runtime, GC included.
const (
	benchW, benchH, benchFPS = 1280, 720, 30
	// benchBaselineM is the rig's baseline in metres.
	benchBaselineM = 0.12
	// benchWarmupPairs are discarded before measuring, once both cameras have switched
	// to the server's NTP time (a switch flushes the pairing).
	benchWarmupPairs = 30
	// benchNTPWait caps how long the warm-up waits for NTP time: GStreamer sends its
	// first sender report a few seconds after PLAY. Without it the benchmark measures
	// on receive time and says so.
	benchNTPWait = 20 * time.Second
	// benchPairTimeout is the longest wait for any one pair before the benchmark fails.
	benchPairTimeout = 30 * time.Second
)

// benchStreams starts GStreamer serving two 1280x720 H.264 streams at 30 fps, paths
// "left" and "right", and returns their URLs. It fails the benchmark clearly when
// GStreamer (Debian's python3-gi and gst-rtsp-server) is missing.
func benchStreams(b *testing.B) (left, right string) {
	b.Helper()
	gst := rtsptest.StartGStreamer(b, rtsptest.GstOptions{
		Codec: rtsptest.CodecH264, Width: benchW, Height: benchH, FPS: benchFPS,
		// smpte scrolls (at a different speed per path): every picture changes, so the
		// P-frames carry real motion rather than the ball pattern's empty background.
		Pattern: "smpte",
	})
	return gst.URL("left"), gst.URL("right")
}

// benchCalibration is a plausible calibrated rig at 1280x720: fx = fy = 1000 px, the
// principal points a few pixels off centre, a little barrel distortion, the right camera
// 0.12 m to the right and turned by a fraction of a degree, so that rectification is a
// real remap of every pixel rather than a copy.
func benchCalibration() calib.Stereo {
	k := func(cx, cy float64) [9]float64 { return [9]float64{1000, 0, cx, 0, 1000, cy, 0, 0, 1} }
	// Rotation of 0.3° about y and 0.1° about x (small-angle exact enough for a fixture:
	// built as Ry·Rx so it stays orthonormal).
	ay, ax := 0.3*math.Pi/180, 0.1*math.Pi/180
	ry := [9]float64{math.Cos(ay), 0, math.Sin(ay), 0, 1, 0, -math.Sin(ay), 0, math.Cos(ay)}
	rx := [9]float64{1, 0, 0, 0, math.Cos(ax), -math.Sin(ax), 0, math.Sin(ax), math.Cos(ax)}
	var r [9]float64
	for i := range 3 {
		for j := range 3 {
			for m := range 3 {
				r[3*i+j] += ry[3*i+m] * rx[3*m+j]
			}
		}
	}
	return calib.Stereo{
		Size: calib.ImageSize{Width: benchW, Height: benchH},
		K1:   k(642.5, 361), K2: k(636, 357.5),
		D1: []float64{-0.08, 0.02, 0.0005, -0.0003, 0},
		D2: []float64{-0.07, 0.015, -0.0004, 0.0002, 0},
		R:  r,
		T:  [3]float64{-benchBaselineM, 0.001, 0.0005},
	}
}

// ingestRig is a running stereo.Source over two RTSP cameras with a rectifier. pairs
// receives a token per emitted pair.
type ingestRig struct {
	src         *stereo.Source
	left, right *rtsp.Camera
	pairs       chan struct{}
	overflow    atomic.Uint64 // tokens not delivered because the benchmark fell behind
}

// startIngest starts the rig on the two URLs, rectifying with benchCalibration unless
// raw (then the pairs pass through as decoded); the benchmark's cleanup stops it.
func startIngest(b *testing.B, leftURL, rightURL string, raw bool) *ingestRig {
	b.Helper()
	rect, err := calib.NewRectifier(benchCalibration(), calib.ImageSize{Width: benchW, Height: benchH}, calib.Options{})
	if err != nil {
		b.Fatalf("rectifier: %v", err)
	}
	var rectifier camera.Rectifier = rect
	if raw {
		rectifier = nil
	}
	log := slog.New(slog.NewTextHandler(testWriter{b}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	left, err := rtsp.New("left", rtsp.Config{URL: leftURL, Transport: rtsp.TransportTCP}, log)
	if err != nil {
		b.Fatal(err)
	}
	right, err := rtsp.New("right", rtsp.Config{URL: rightURL, Transport: rtsp.TransportTCP}, log)
	if err != nil {
		b.Fatal(err)
	}
	rig := &ingestRig{
		src: &stereo.Source{Left: left, Right: right, Rectifier: rectifier, Log: log,
			// Used only when raw: the unrectified streams described as they are.
			Intrinsics: camera.Intrinsics{Fx: 1000, Fy: 1000, Cx: 639.5, Cy: 359.5, Width: benchW, Height: benchH},
			BaselineM:  benchBaselineM},
		left: left, right: right,
		pairs: make(chan struct{}, 4096),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- rig.src.Run(ctx, func(camera.StereoFrame) {
			// emit must not block: the pair itself is dropped (its images go to the GC,
			// as a consumer's would once used), only the count matters.
			select {
			case rig.pairs <- struct{}{}:
			default:
				rig.overflow.Add(1)
			}
		})
	}()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("stereo source: %v", err)
		}
		rect.Close()
	})
	return rig
}

// next waits for one pair, failing the benchmark after benchPairTimeout.
func (r *ingestRig) next(b *testing.B) {
	select {
	case <-r.pairs:
	case <-time.After(benchPairTimeout):
		b.Fatalf("no stereo pair for %v; stats %+v", benchPairTimeout, r.src.Stats())
	}
}

// warmUp waits until both cameras are on NTP time (or benchNTPWait passed), then
// discards benchWarmupPairs pairs: decoders initialised, pairing's period known, buffers
// grown to their steady size.
func (r *ingestRig) warmUp(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(benchNTPWait)
	for r.left.Stats().Clock != camera.ClockNTP || r.right.Stats().Clock != camera.ClockNTP {
		if time.Now().After(deadline) {
			b.Logf("cameras not on NTP time after %v (left %q, right %q): measuring on receive time",
				benchNTPWait, r.left.Stats().Clock, r.right.Stats().Clock)
			break
		}
		select {
		case <-r.pairs: // keep the channel drained while waiting
		case <-time.After(100 * time.Millisecond):
		}
	}
	for range benchWarmupPairs {
		r.next(b)
	}
}

// cpuTime is this process's user + system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngestPair1280x720H264: decode + pair + rectify per stereo pair at 1280x720
// H.264 from two RTSP cameras. Reports this process's CPU time per pair (cpu-ms/pair)
// and the pair rate achieved (pairs/s; at most the streams' 30 fps, lower when the
// machine cannot keep up, which the CPU figure is independent of).
func BenchmarkIngestPair1280x720H264(b *testing.B) { benchmarkIngestPair(b, false) }

// BenchmarkIngestPair1280x720H264NoRectify is BenchmarkIngestPair1280x720H264 without
// the rectifier: the difference of the two is what rectification costs per pair.
func BenchmarkIngestPair1280x720H264NoRectify(b *testing.B) { benchmarkIngestPair(b, true) }

func benchmarkIngestPair(b *testing.B, raw bool) {
	left, right := benchStreams(b)
	rig := startIngest(b, left, right, raw)
	rig.warmUp(b)
	st0 := rig.src.Stats()
	b.ResetTimer()
	cpu0, wall0 := cpuTime(b), time.Now()
	for range b.N {
		rig.next(b)
	}
	cpu, wall := cpuTime(b)-cpu0, time.Since(wall0)
	b.StopTimer()
	st := rig.src.Stats()
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/pair")
	b.ReportMetric(float64(b.N)/wall.Seconds(), "pairs/s")
	b.Logf("N=%d: cpu %v over %v wall; frames left/right %d/%d, unpaired %d/%d, pairs dropped before rectification %d, rectify errors %d, clocks %s/%s",
		b.N, cpu, wall, st.Left.Frames-st0.Left.Frames, st.Right.Frames-st0.Right.Frames,
		st.Pairing.UnpairedLeft-st0.Pairing.UnpairedLeft, st.Pairing.UnpairedRight-st0.Pairing.UnpairedRight,
		st.DroppedPairs-st0.DroppedPairs, st.RectifyErrors, st.Left.Clock, st.Right.Clock)
	if st.RectifyErrors > 0 {
		b.Errorf("%d pairs failed to rectify", st.RectifyErrors)
	}
}

// BenchmarkFFmpegDecodeSameStreams is the reference for BenchmarkIngestPair1280x720H264:
// the ffmpeg command-line tool reads the same two streams (same GStreamer server and
// options) over TCP and decodes them to the null muxer, b.N frames of each. Reported:
// ffmpeg's CPU time per pair (cpu-ms/pair) from the child's rusage, with its start-up
// (connecting, probing the streams) taken out by running it twice, for warm-up frames
// only and for warm-up + b.N frames, and subtracting; and its pair rate.
//
// ffmpeg only decodes: it converts to no RGB, pairs nothing and rectifies nothing, so
// the ratio of the two cpu-ms/pair is the cost of the whole ingest over bare decoding.
func BenchmarkFFmpegDecodeSameStreams(b *testing.B) {
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		b.Fatalf("ffmpeg not found (%v): install the Debian package ffmpeg", err)
	}
	left, right := benchStreams(b)
	run := func(frames int) (cpu, wall time.Duration) {
		b.Helper()
		// Per pair: a picture of each stream (output stream 0 is input 0's video).
		n := strconv.Itoa(frames)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+time.Duration(frames)*time.Second/benchFPS*4)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-nostdin", "-v", "error",
			"-rtsp_transport", "tcp", "-i", left, "-rtsp_transport", "tcp", "-i", right,
			"-map", "0:v", "-map", "1:v", "-frames:v:0", n, "-frames:v:1", n,
			// passthrough: every output frame is a decoded picture, never a duplicate
			// made to fill a timestamp gap (which would count as a frame for free).
			"-fps_mode", "passthrough", "-f", "null", "-")
		start := time.Now()
		out, err := cmd.CombinedOutput()
		wall = time.Since(start)
		if err != nil {
			b.Fatalf("ffmpeg decoding %d frames of %s and %s: %v\n%s", frames, left, right, err, out)
		}
		if len(out) > 0 {
			b.Logf("ffmpeg says: %s", out)
		}
		return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), wall
	}
	// The same number of warm-up pairs as ours, so that both measure steady state.
	cpuW, wallW := run(benchWarmupPairs)
	b.ResetTimer()
	cpuT, wallT := run(benchWarmupPairs + b.N)
	b.StopTimer()
	cpu, wall := cpuT-cpuW, wallT-wallW
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/pair")
	if wall > 0 {
		b.ReportMetric(float64(b.N)/wall.Seconds(), "pairs/s")
	}
	b.ReportMetric(float64(cpuW)/float64(time.Millisecond), "startup-cpu-ms")
	b.Logf("N=%d: ffmpeg cpu %v for %d warm-up frames a stream (%v wall), %v for %d (%v wall)",
		b.N, cpuW, benchWarmupPairs, wallW, cpuT, benchWarmupPairs+b.N, wallT)
}

// BenchmarkIngestMemory10kPairs: the heap stays steady while pairs flow. Meaningful only
// with many pairs, -benchtime=10000x (about 6 minutes at 30 fps: give go test a
// -timeout above that). It samples the live heap (after a GC) every 500 pairs and fits a
// line through the samples: heap-slope-KB/1k-pairs is the growth rate (a leak of one
// 1280x720 RGB image per 1000 pairs would show as ~2,700), robust to the ±10 MB that
// the pairs in flight at the moment of any one sample add. heap-growth-MB is last minus
// first sample, for reference.
func BenchmarkIngestMemory10kPairs(b *testing.B) {
	left, right := benchStreams(b)
	rig := startIngest(b, left, right, false)
	rig.warmUp(b)
	heap := func() float64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc)
	}
	const every = 500
	var xs, ys []float64 // pairs done, heap bytes
	b.ResetTimer()
	for i := range b.N {
		if i%every == 0 {
			b.StopTimer()
			xs, ys = append(xs, float64(i)), append(ys, heap())
			b.StartTimer()
		}
		rig.next(b)
	}
	b.StopTimer()
	xs, ys = append(xs, float64(b.N)), append(ys, heap())
	// Least-squares slope of heap over pairs.
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx, my = mx/float64(len(xs)), my/float64(len(xs))
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	slope := 0.0
	if sxx > 0 {
		slope = sxy / sxx // bytes per pair
	}
	first, last := ys[0], ys[len(ys)-1]
	b.ReportMetric(slope, "heap-slope-KB/1k-pairs") // bytes/pair = KB per 1000 pairs
	b.ReportMetric((last-first)/1e6, "heap-growth-MB")
	b.ReportMetric(last/1e6, "heap-MB")
	mb := make([]string, len(ys))
	for i, y := range ys {
		mb[i] = fmt.Sprintf("%.0f", y/1e6)
	}
	b.Logf("N=%d: live heap every %d pairs (MB): %s; slope %.0f bytes/pair; pairing %+v",
		b.N, every, strings.Join(mb, " "), slope, rig.src.Stats().Pairing)
}
