// Package rtsp reads one RTSP camera as a camera.MonoSource: it connects with gortsplib,
// plays the camera's video track (H.264, H.265 or Motion-JPEG), depacketizes and decodes
// it (libavcodec through camera/codec for H.264/H.265, image/jpeg for MJPEG) and emits
// dated RGB frames. Pairing two cameras into stereo frames happens elsewhere.
//
// # Concepts
//
// Transport: RTP over UDP (lowest latency), interleaved in the RTSP TCP connection (no
// loss, passes NAT), or "auto": UDP, switching to TCP when the server refuses UDP or no
// packet arrives within Config.UDPFallbackTimeout.
//
// Access units: the packets of one picture are reassembled into an access unit. A gap in
// RTP sequence numbers is counted (Stats.LostPackets), the picture it broke is dropped
// (Stats.Corrupt), and H.264/H.265 then skip to the next random-access picture
// (Stats.Skipped): pictures that reference a lost one would decode into smeared garbage.
// Random-access pictures get the SDP's parameter sets (VPS/SPS/PPS) when the stream does
// not carry them in-band, as ffmpeg publishers do not.
//
// Capture time: RTP timestamps are unwrapped into a 64-bit PTS. Until the camera's first
// RTCP sender report, and for cameras that never send one, a frame's capture time is the
// receive time of the first frame plus the PTS elapsed since (camera.ClockReceive): it
// follows the camera's own frame spacing, not the network's jitter, but is late by the
// network and encoder delay of the first frame. Once a sender report maps RTP time to the
// camera's NTP clock, frames carry that time (camera.ClockNTP), which two cameras with
// synchronised clocks share. Capture times only grow: a frame that would step back (at the
// switch to NTP, by the network delay) is dropped and counted (Stats.OutOfOrder); a camera
// clock more than a second off ours, either way, is ignored with a warning. With B-frames the decoder
// returns pictures in display order, each with the PTS of its own access unit.
//
// Credentials come from the URL or from Username with PasswordFile / PasswordEnv, and are
// never logged: URLs in logs and errors go through Redact. rtsps:// uses TLS, verified
// against the system roots or Config.TLSCAFile unless Config.TLSInsecureSkipVerify.
//
// # Lifecycle
//
// New checks the Config and connects to nothing. Run connects, describes, sets up and
// plays, emits frames, and returns nil when its context is cancelled or an error naming the
// camera, its redacted URL and the reason when the stream fails: connection refused,
// ErrUnauthorized, ErrNoVideo, ErrReadTimeout (no packet for Config.ReadTimeout),
// ErrServerClosed, ErrResolutionChanged. Before returning it closes the connection and the
// decoder and waits for every goroutine it started. The owner restarts Run (with backoff)
// after an error; Stats counters carry over, Stats.Reconnects counts the restarts.
//
// # Concurrency
//
// gortsplib delivers a track's packets on one goroutine of its own; there only
// depacketizing happens, and complete access units go through a queue of 8 to Run's
// goroutine, which decodes them and calls emit. When decoding falls behind, the newest
// access unit is dropped and counted (Stats.Dropped) rather than blocking the network
// goroutine (which would overflow the UDP socket buffer or stall the camera over TCP).
// emit runs on Run's goroutine and must not block for long. Stats and Name are safe for
// concurrent use; Run must not be called twice at once.
package rtsp
