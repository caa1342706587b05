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
// With Config.AllowPublish, clients (ffmpeg -f rtsp, cameras that push) may ANNOUNCE and
// RECORD on any other path (on every path when the server has no source); readers of
// that path get the publisher's RTP packets as they came, whatever the codec, with NTP
// times from the publisher's sender reports once it has sent one. A path nobody
// publishes on answers 404, one announced but not yet recording 503; a publisher that
// leaves ends its readers' sessions; a new publisher replaces the old one. There is no
// authentication: see the field's security note.
//
// Two fault injections serve the ingest tests: Config.Late makes one eye a camera that
// runs late (its packets, and unless TransportOnly its capture times, Delay later), and
// Config.UDPLoss drops a seeded fraction of the RTP datagrams leaving the UDP socket.
//
// # Lifecycle
//
// New checks the Config and starts nothing. Run listens, runs the source, creates the
// streams when the first pair arrives (Ready is closed then; clients get 503 before) and
// serves until its context is cancelled (a server without a source is Ready once it
// listens); then it closes the client sessions and publishers, the server
// and the encoders and waits for all its goroutines before returning nil. It returns an
// error if the source fails or ends, or if an image cannot be encoded.
//
// # Concurrency
//
// The source runs on its own goroutine and hands pairs to a one-slot ring: when encoding
// falls behind, the waiting pair is replaced by the newer one and counted (Stats.Dropped,
// logged once a second), so the source never waits. One goroutine encodes (the two eyes in
// parallel) and writes; gortsplib's goroutines send to each client from per-client queues,
// so a slow client cannot slow the others or the encoder. The late eye is written by a
// goroutine of its own that holds its pictures until they are due; serve waits for it
// before the streams close. A publisher's packets are relayed on gortsplib's goroutine
// for that session. Addr, URL, Ready and Stats are safe to call from any goroutine.
package rtspserve
