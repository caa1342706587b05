// Package rtspserve serves a stereo camera.Source over RTSP as two streams, one per eye,
// so that the real RTSP ingest path (and ffmpeg, VLC, GStreamer) can be tested end to end
// against the simulated rig, or a local camera can be re-served to other machines.
//
// # Concepts
//
// Each eye is a separate RTSP path (rtsp://127.0.0.1:8554/left and /right by default)
// with one video track, H.264 (RFC 6184, packetization mode 1) or Motion-JPEG (RFC 2435).
// Every pair is encoded once, whatever the number of clients, and both eyes' packets of a
// pair carry the same RTP timestamp: the pair's CaptureTime minus the first pair's, on the
// 90 kHz clock, plus a random offset shared by the two streams. A client pairs the eyes by
// equal RTP timestamps. RTCP sender reports map those timestamps to the capture time
// (gortsplib sends the first one with a reader's first packet, then one every 10 s), so
// a client's PacketNTP gives CaptureTime.
//
// H.264 streams put SPS and PPS in the SDP and in front of every IDR. MJPEG is intra-only
// and needs no cgo but cannot carry sizes that are not multiples of 8 or above 2040 px.
//
// # Lifecycle
//
// New checks the Config and starts nothing. Run listens, runs the source, creates the
// streams when the first pair arrives (Ready is closed then; clients get 503 before) and
// serves until its context is cancelled; then it closes the client sessions, the server
// and the encoders and waits for all its goroutines before returning nil. It returns an
// error if the source fails or ends, or if an image cannot be encoded.
//
// # Concurrency
//
// The source runs on its own goroutine and hands pairs to a one-slot ring: when encoding
// falls behind, the waiting pair is replaced by the newer one and counted (Stats.Dropped,
// logged once a second), so the source never waits. One goroutine encodes (the two eyes in
// parallel) and writes; gortsplib's goroutines send to each client from per-client queues,
// so a slow client cannot slow the others or the encoder. Addr, URL, Ready and Stats are
// safe to call from any goroutine.
package rtspserve
