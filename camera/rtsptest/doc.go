// Package rtsptest starts the real RTSP peers that the ingest tests talk to: GStreamer's
// RTSP server (a server that is not ours), ffmpeg publishing into our camera/rtspserve,
// and our own server with its fault injection (a late eye, UDP loss). Every helper
// takes a testing.TB, stops what it started in the test's cleanup, and fails the test —
// never skips it — when a program it needs is missing, naming the Debian package.
//
// # Concepts
//
// The peers are real processes on real loopback sockets, on free ports. Waiting for
// them is polling with a deadline (a process's "listening" line, a DESCRIBE that
// answers 200), never a fixed sleep.
//
// Fault injection lives where it is real and simplest:
//
//   - A server killed mid-stream and restarted: GstServer.Kill, GstServer.Restart (same
//     port), FFmpegPublisher.Kill.
//   - One camera late: rtspserve.Config.Late (packets and capture times Delay later).
//   - UDP packet loss: rtspserve.Config.UDPLoss drops a seeded fraction of RTP datagrams
//     at the server's UDP socket. A transparent proxy would have to sit in the RTSP
//     control connection too, to rewrite the ports that SETUP negotiates in the
//     Transport header (the client tells the server where to send RTP; the server
//     sends there directly), and to parse interleaved data: much more code to get
//     wrong, for the same effect on the client — real gaps in RTP sequence numbers
//     over a real UDP socket. Its limit: loss needs our server (GStreamer's is not
//     made lossy).
//
// # Lifecycle
//
// StartGStreamer, PublishFFmpeg and StartServer return once their peer serves. Stop
// ends a peer gracefully, Kill with SIGKILL; both wait for the process. The test's
// cleanup stops whatever is still running.
//
// # Concurrency
//
// A peer's methods are safe to call from any goroutine; one goroutine per process waits
// for it to exit and is gone once Stop or Kill returns.
package rtsptest
