package rtspserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/ntp"
	"github.com/edgedepth/edgedepth/camera/codec"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/edgedepth/edgedepth/camera"
)

// ErrSourceEnded is returned by Run when the source returned nil before Run's context
// was cancelled: there is nothing left to serve. The owner may restart the server.
var ErrSourceEnded = errors.New("source ended before the server was stopped")

// ErrImageSize is wrapped by Run's error when the source's images have a size the codec
// cannot carry.
var ErrImageSize = errors.New("image size not supported by the codec")

// Stats are counters since Run started.
type Stats struct {
	// Pairs is the number of stereo pairs encoded and sent to the streams.
	Pairs uint64
	// Dropped is the number of pairs the source produced that were dropped unencoded
	// because encoding fell behind (the newest pair is always encoded next).
	Dropped uint64
	// WriteErrors is the number of RTP packets that could not be queued to a client,
	// usually because that client reads too slowly.
	WriteErrors uint64
	// UDPDropped is the number of RTP datagrams Config.UDPLoss dropped on purpose.
	UDPDropped uint64
}

// Server serves a stereo camera.Source over RTSP, one stream per eye. Create it with
// New, start it with Run.
type Server struct {
	cfg Config
	src camera.Source
	log *slog.Logger

	started   atomic.Bool
	listening chan struct{} // closed once addr is set
	ready     chan struct{}
	addr      atomic.Pointer[net.TCPAddr]

	rtsp atomic.Pointer[gortsplib.Server] // set before it starts

	mu   sync.RWMutex
	eyes map[string]*eye         // by URL path; nil until the first pair and after shutdown
	pubs map[string]*publication // by URL path; nil unless AllowPublish, and after shutdown

	ring               atomic.Pointer[camera.Ring] // between the source and the encoder
	udpLoss            atomic.Pointer[lossyRTP]    // nil unless Config.UDPLoss
	pairs, writeErrors atomic.Uint64
}

// eye is the encoder and the RTSP stream of one camera.
type eye struct {
	name   string // "left" or "right"
	path   string
	enc    eyeEncoder
	width  int // size the encoder is set up for
	height int
	media  *description.Media
	stream *gortsplib.ServerStream

	// What the last pair put on the stream, for our own sender reports.
	ssrc            uint32 // set by the stream on every packet it writes
	lastTS          uint32
	lastNTP         time.Time
	packets, octets uint32 // RTP packets and payload bytes since start (RFC 3550 wraps them)
	sentSinceReport bool
	lastSR          time.Time // when sendReport last ran

	// late queues the pictures of the eye Config.Late makes late; nil for an eye on time.
	late *lateQueue
}

// senderReportPeriod is how often Run sends RTCP sender reports of its own, on top of
// gortsplib's (one with a reader's first packet, then every 10 s, not configurable). A
// gortsplib v5 client ignores a sender report that arrives before the first RTP packet
// of its stream, which over UDP (RTCP on its own socket) is a race it often loses, and
// then has no NTP time for 10 s. One report a second costs ~50 bytes/s per client.
const senderReportPeriod = time.Second

// New checks cfg and returns a Server for src; it starts nothing. log may be nil. src
// may be nil only with cfg.AllowPublish: a server for published streams alone, on any
// path.
func New(cfg Config, src camera.Source, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rtspserve: %w", err)
	}
	if src == nil && !cfg.AllowPublish {
		return nil, fmt.Errorf("rtspserve: %w: no source (and AllowPublish is off: nothing to serve)", ErrConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg:       cfg.WithDefaults(),
		src:       src,
		log:       log.With("component", "rtspserve"),
		listening: make(chan struct{}),
		ready:     make(chan struct{}),
	}, nil
}

// Ready is closed once both streams can be played: after Run has started listening and
// encoded the first pair (the SDP needs the image size and the H.264 parameter sets).
// Until then clients get 503 Service Unavailable. A Server without a source is Ready
// once it listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address RTSP listens on (with the real port when Config.Addr asked for
// port 0), or nil before Run has started listening.
func (s *Server) Addr() net.Addr {
	if a := s.addr.Load(); a != nil {
		return a
	}
	return nil
}

// URL returns the rtsp:// URL of eye ("left" or "right"; anything else is a programming
// error and panics). An unspecified listen address (0.0.0.0, ::) is given as the
// loopback address. Before Run listens it is built from Config.Addr.
func (s *Server) URL(eye string) string {
	path, ok := s.cfg.eyePath(eye)
	if !ok {
		panic(fmt.Sprintf("rtspserve: URL(%q): eye must be \"left\" or \"right\"", eye))
	}
	host, port, _ := net.SplitHostPort(s.cfg.Addr)
	if a := s.addr.Load(); a != nil {
		host, port = a.IP.String(), fmt.Sprint(a.Port)
		if a.IP.IsUnspecified() {
			host = "127.0.0.1"
			if a.IP.To4() == nil {
				host = "::1"
			}
		}
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return "rtsp://" + net.JoinHostPort(host, port) + "/" + path
}

// Stats returns the counters; safe to call at any time.
func (s *Server) Stats() Stats {
	st := Stats{Pairs: s.pairs.Load(), WriteErrors: s.writeErrors.Load()}
	if r := s.ring.Load(); r != nil {
		st.Dropped = r.Dropped()
	}
	if l := s.udpLoss.Load(); l != nil {
		st.UDPDropped = l.dropped.Load()
	}
	return st
}

// Run listens, runs the source and serves its pairs until ctx is cancelled, then closes
// every client session, the listeners and the encoders, and waits for every goroutine it
// started. It returns nil on cancellation, an error if listening fails, the source fails
// or ends (ErrSourceEnded), or an image cannot be encoded (such as a size RTP/MJPEG cannot
// carry). Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("rtspserve: Run called twice: create a new Server")
	}
	srv, err := s.startRTSP()
	if err != nil {
		return err
	}
	s.addr.Store(srv.NetListener().Addr().(*net.TCPAddr))
	close(s.listening)
	srcName := "none"
	if s.src != nil {
		srcName = s.src.Name()
	}
	s.log.Info("rtsp server listening", "left", s.URL("left"), "right", s.URL("right"),
		"codec", s.cfg.Codec, "transports", s.cfg.Transports, "source", srcName,
		"allow_publish", s.cfg.AllowPublish)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// One slot: when encoding falls behind, Push replaces the waiting pair with the newer
	// one and counts the drop, so the source never waits and latency stays one pair.
	ring := camera.NewRing(1)
	s.ring.Store(ring)
	var wg sync.WaitGroup
	var srcErr, srvErr error
	if s.src != nil {
		wg.Go(func() {
			err := s.src.Run(ctx, ring.Push)
			if ctx.Err() != nil {
				return // cancellation is not an error, whatever the source says about it
			}
			if err == nil {
				err = ErrSourceEnded
			}
			srcErr = fmt.Errorf("rtspserve: source %q: %w", s.src.Name(), err)
			cancel()
		})
	}
	wg.Go(func() {
		err := srv.Wait()
		if ctx.Err() != nil {
			return
		}
		srvErr = fmt.Errorf("rtspserve: rtsp server stopped: %w", err)
		cancel()
	})

	var serveErr error
	if s.src != nil {
		serveErr = s.serve(ctx, srv, ring)
	} else {
		close(s.ready) // published streams only: nothing to wait for
		<-ctx.Done()
	}

	// Shutdown in reverse order of start-up: streams (their readers and publishers are
	// disconnected), the RTSP server (connections, listeners), then the goroutines above.
	cancel()
	s.closeStreams()
	s.closePublications()
	srv.Close()
	wg.Wait()
	if err := errors.Join(serveErr, srcErr, srvErr); err != nil {
		return err
	}
	s.log.Info("rtsp server stopped", "pairs", s.pairs.Load(), "dropped", ring.Dropped())
	return nil
}

// startRTSP starts the gortsplib server, with the UDP transport when configured.
func (s *Server) startRTSP() (*gortsplib.Server, error) {
	if s.cfg.AllowPublish {
		s.mu.Lock()
		s.pubs = map[string]*publication{}
		s.mu.Unlock()
	}
	srv := &gortsplib.Server{
		Handler:     &handler{s: s},
		RTSPAddress: s.cfg.Addr,
		// A JPEG or IDR can be a hundred packets; let a reader absorb a few of them.
		WriteQueueSize: 1024,
	}
	var udp *udpPair
	if s.cfg.offers(TransportUDP) {
		host, _, _ := splitHostPort(s.cfg.Addr)
		var err error
		udp, err = bindUDPPair(host, s.cfg.UDPRTPPort)
		if err != nil {
			return nil, fmt.Errorf("rtspserve: udp transport: %w", err)
		}
		srv.UDPRTPAddress, srv.UDPRTCPAddress = udp.rtpAddr, udp.rtcpAddr
		srv.ListenPacket = udp.listenPacket
		if s.cfg.UDPLoss.Fraction > 0 {
			udp.loss = newLossyRTP(s.cfg.UDPLoss)
			s.udpLoss.Store(udp.loss)
		}
	}
	// Before Start: the handler's ANNOUNCE needs it, and Start's goroutines see it.
	s.rtsp.Store(srv)
	err := srv.Start()
	if udp != nil {
		_ = udp.closeUnused() // gortsplib owns the sockets it took, even on failure
	}
	if err != nil {
		return nil, fmt.Errorf("rtspserve: listen on %s: %w", s.cfg.Addr, err)
	}
	return srv, nil
}

// serve encodes pairs from ring and writes them to the streams until ctx ends.
func (s *Server) serve(ctx context.Context, srv *gortsplib.Server, ring *camera.Ring) (err error) {
	eyes := [2]*eye{{name: "left", path: s.cfg.LeftPath}, {name: "right", path: s.cfg.RightPath}}
	defer func() {
		for _, e := range eyes {
			if e.enc != nil {
				e.enc.close()
			}
		}
	}()

	// The late eye's pictures wait in a queue drained by a goroutine of their own, which
	// ends (and is waited for) before serve returns and the streams close. A write error
	// there ends serve through ctx.
	ctx, cancel := context.WithCancel(ctx)
	var lateWG sync.WaitGroup
	defer func() {
		cancel()
		lateWG.Wait()
		for _, e := range eyes {
			if e.late != nil {
				err = errors.Join(err, e.late.err)
			}
		}
	}()
	if s.cfg.Late.Delay > 0 {
		for _, e := range eyes {
			if e.name == s.cfg.Late.Eye {
				e.late = newLateQueue()
				lateWG.Go(func() { e.late.run(ctx, cancel, e) })
			}
		}
	}
	for _, e := range eyes {
		enc, err := s.newEncoder()
		if err != nil {
			return fmt.Errorf("rtspserve: %s: %w", e.name, err)
		}
		e.enc = enc
	}

	var (
		first     time.Time
		lastTicks int64 = -1
		// RFC 3550 wants a random first timestamp; both eyes share it so that equal
		// timestamps mean the same pair.
		base         = rand.Uint32()
		lastReport   = time.Now()
		reported     uint64
		reportedErrs uint64
		published    bool
	)
	for {
		f, err := ring.Pop(ctx)
		if err != nil {
			return nil
		}

		capture := f.CaptureTime
		if capture.IsZero() {
			capture = time.Now()
		}
		if first.IsZero() {
			first = capture
		}
		// RTP time is capture time since the first pair on the 90 kHz video clock; it
		// must grow, so a capture time that does not is moved one tick on.
		ticks := codec.DurationToTicks(capture.Sub(first))
		if ticks <= lastTicks {
			ticks = lastTicks + 1
		}
		lastTicks = ticks

		imgs := [2]camera.Image{f.Left, f.Right}
		for i, e := range eyes {
			if imgs[i].Width != e.width || imgs[i].Height != e.height {
				if err := s.resize(e, imgs[i]); err != nil {
					return err
				}
			}
		}
		if !published {
			if err := s.publish(srv, eyes); err != nil {
				return err
			}
			published = true
		}

		// The eyes are independent: encode them in parallel (the right one on a helper
		// goroutine joined before going on).
		var res [2]encoded
		var wg sync.WaitGroup
		wg.Go(func() { res[1] = encodeEye(eyes[1], imgs[1], ticks) })
		res[0] = encodeEye(eyes[0], imgs[0], ticks)
		wg.Wait()

		for i, e := range eyes {
			if res[i].err != nil {
				return fmt.Errorf("rtspserve: %s: pair %d: %w", e.name, f.Seq, res[i].err)
			}
			if e.enc.descChanged() {
				e.stream.ReloadDesc()
			}
			if !res[i].ok {
				continue
			}
			pic := picture{
				pkts:     res[i].pkts,
				ts:       base + uint32(res[i].ticks),
				captured: first.Add(codec.TicksToDuration(res[i].ticks)),
			}
			if e.late != nil {
				if !e.late.push(ctx, pic, s.cfg.Late) {
					return nil
				}
				continue
			}
			if err := e.write(pic); err != nil {
				return err
			}
		}
		s.pairs.Add(1)

		// Problems on the hot path are logged as counts, at most once a second.
		if now := time.Now(); now.Sub(lastReport) >= time.Second {
			lastReport = now
			if d := ring.Dropped(); d > reported {
				s.log.Warn("encoding falls behind the source: pairs dropped", "dropped", d-reported, "dropped_total", d)
				reported = d
			}
			if w := s.writeErrors.Load(); w > reportedErrs {
				s.log.Warn("RTP packets not queued to slow clients", "packets", w-reportedErrs, "packets_total", w)
				reportedErrs = w
			}
		}
	}
}

// picture is one eye's encoded picture, stamped, ready to be written.
type picture struct {
	pkts     []*rtp.Packet
	ts       uint32    // RTP timestamp of every packet
	captured time.Time // capture time, the NTP time of ts
}

// write sends pic to the eye's readers, then a sender report of our own when the last
// one is senderReportPeriod old. Only one goroutine writes an eye: the serve loop, or
// the late queue's for the late eye.
func (e *eye) write(pic picture) error {
	for _, pkt := range pic.pkts {
		pkt.Timestamp = pic.ts
		if err := e.stream.WritePacketRTPWithNTP(e.media, pkt, pic.captured); err != nil {
			return fmt.Errorf("rtspserve: %s: write RTP: %w", e.name, err)
		}
		e.ssrc = pkt.SSRC
		e.packets++
		e.octets += uint32(len(pkt.Payload))
	}
	e.lastTS, e.lastNTP, e.sentSinceReport = pic.ts, pic.captured, true
	if now := time.Now(); now.Sub(e.lastSR) >= senderReportPeriod {
		e.lastSR = now
		if err := e.sendReport(); err != nil {
			return fmt.Errorf("rtspserve: %s: write RTCP: %w", e.name, err)
		}
	}
	return nil
}

// sendReport sends an RTCP sender report mapping the last pair's RTP timestamp to its
// capture time, exactly (no extrapolation), to every reader of the stream.
func (e *eye) sendReport() error {
	if !e.sentSinceReport {
		return nil
	}
	e.sentSinceReport = false
	return e.stream.WritePacketRTCP(e.media, &rtcp.SenderReport{
		SSRC:        e.ssrc,
		NTPTime:     ntp.Encode(e.lastNTP),
		RTPTime:     e.lastTS,
		PacketCount: e.packets,
		OctetCount:  e.octets,
	})
}

type encoded struct {
	pkts  []*rtp.Packet
	ticks int64
	ok    bool
	err   error
}

func encodeEye(e *eye, img camera.Image, ticks int64) encoded {
	pkts, picTicks, ok, err := e.enc.encode(img, ticks)
	return encoded{pkts: pkts, ticks: picTicks, ok: ok, err: err}
}

func (s *Server) newEncoder() (eyeEncoder, error) {
	if s.cfg.Codec == CodecMJPEG {
		return newMJPEGEncoder(s.cfg.JPEGQuality)
	}
	return newH264Encoder(s.cfg)
}

// resize sets e's encoder up for img's size: at the first pair, and whenever the source
// changes resolution (the stream and its clients stay; an H.264 stream gets new parameter
// sets, in the SDP and before the next IDR).
func (s *Server) resize(e *eye, img camera.Image) error {
	if img.Width <= 0 || img.Height <= 0 || len(img.Pix) != 3*img.Width*img.Height {
		return fmt.Errorf("rtspserve: %s: image %dx%d with %d bytes is not packed RGB", e.name, img.Width, img.Height, len(img.Pix))
	}
	if err := e.enc.resize(img.Width, img.Height); err != nil {
		return fmt.Errorf("rtspserve: %s: %w", e.name, err)
	}
	if e.width != 0 {
		s.log.Info("source changed resolution", "eye", e.name,
			"from", fmt.Sprintf("%dx%d", e.width, e.height), "to", fmt.Sprintf("%dx%d", img.Width, img.Height))
	}
	e.width, e.height = img.Width, img.Height
	return nil
}

// publish creates the two streams and makes them visible to clients.
func (s *Server) publish(srv *gortsplib.Server, eyes [2]*eye) error {
	for i, e := range eyes {
		e.media = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{e.enc.format()}}
		e.stream = &gortsplib.ServerStream{
			Server: srv,
			Desc:   &description.Session{Title: "edgedepth " + e.name, Medias: []*description.Media{e.media}},
		}
		if err := e.stream.Initialize(); err != nil {
			for _, prev := range eyes[:i] {
				prev.stream.Close()
			}
			return fmt.Errorf("rtspserve: %s: stream: %w", e.name, err)
		}
		e.enc.descChanged() // the stream was just made from the current format
	}
	s.mu.Lock()
	s.eyes = map[string]*eye{eyes[0].path: eyes[0], eyes[1].path: eyes[1]}
	s.mu.Unlock()
	close(s.ready)
	s.log.Info("rtsp streams ready", "width", eyes[0].width, "height", eyes[0].height)
	return nil
}

// closeStreams hides the streams from new clients and disconnects their readers.
func (s *Server) closeStreams() {
	s.mu.Lock()
	eyes := s.eyes
	s.eyes = nil
	s.mu.Unlock()
	for _, e := range eyes {
		e.stream.Close()
	}
}

// lookup finds the eye served at an RTSP request path ("/left").
func (s *Server) lookup(path string) (e *eye, known bool) {
	p := strings.TrimPrefix(path, "/")
	if s.src == nil || (p != s.cfg.LeftPath && p != s.cfg.RightPath) {
		return nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.eyes[p], true
}
