// Package stereo joins two cameras into one stereo source: it pairs the frames of two
// free-running cameras by capture time (Pairer), splits side-by-side frames
// (SplitSideBySide, SideBySide), supervises both cameras and rectifies the pairs
// (Source), and measures what a pair of cameras delivers (Probe). It works against the
// camera interfaces only (camera.MonoSource, camera.Rectifier) and is pure Go.
//
// # Concepts
//
// Pairing matches each left frame with the right frame nearest in capture time, if they
// are at most the tolerance apart (Config.PairTolerance; by default half the frame
// period, configured or measured). Frames that find no partner are discarded and counted
// per side. The pairing error is |tL − tR| of a pair; the offset is tL − tR; the drift is
// the least-squares trend of the offset over Config.DriftWindow, in ms per minute, with
// the frame-period jumps that happen when the pairing moves to the next partner taken
// out. Drift above Config.DriftWarnMsPerMin is a health warning ("camera pairing"): the
// cameras' clocks or rates disagree and should be synchronised.
//
// A pair's CaptureTime is the left frame's: depth and pose are of the left camera.
//
// # Lifecycle
//
// Source.Run starts one goroutine per camera and returns nil, with both joined, when its
// context ends. A camera that fails, or sends nothing for Config.StallTimeout, is
// restarted after 0.5 s, then 1, 2, up to 4 s; the backoff resets once it has
// delivered frames for a minute. Its health component ("camera left", "camera right" or
// "camera side-by-side") names the camera and the reason while it is down and clears on
// its first frame back. While a camera is down, pairing pauses; buffers are flushed when
// it returns so that no pair spans an outage.
//
// # Concurrency
//
// The cameras' goroutines pair under the Pairer's lock (cheap: no pixels are touched)
// and push pairs into a two-pair drop-oldest ring; Run's own goroutine rectifies them and
// calls emit, in order. A slow rectifier or consumer costs dropped pairs (counted in
// Stats.DroppedPairs), never a stalled camera. Stats may be read from any goroutine.
package stereo
