package rtsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/pion/rtp"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/codec"
)

// Sentinel errors wrapped by Run's errors where they apply.
var (
	// ErrUnauthorized: the camera refused the credentials (or asked for some and none
	// were configured).
	ErrUnauthorized = errors.New("camera refused the credentials (401 Unauthorized): check username and password_file / password_env, or the user:password in url")
	// ErrNoVideo: the stream has no H.264, H.265 or MJPEG video track.
	ErrNoVideo = errors.New("stream has no H.264, H.265 or MJPEG video track: set the camera's encoder to one of them")
	// ErrReadTimeout: no video packet arrived for Config.ReadTimeout.
	ErrReadTimeout = errors.New("no video packets (camera stopped sending, network down, or UDP blocked: try transport tcp)")
	// ErrResolutionChanged: the picture size changed mid-stream; the owner restarts Run,
	// which then accepts the new size.
	ErrResolutionChanged = errors.New("resolution changed")
	// ErrServerClosed: the camera ended the session.
	ErrServerClosed = errors.New("camera closed the stream")
)

// queueLength is how many access units may wait between the RTSP client's goroutine and
// the decoder. Beyond it the newest access unit is dropped and counted, and H.264/H.265
// skip to the next random-access picture: the client's goroutine must never wait, or UDP
// packets are lost in the socket buffer and TCP stalls the camera.
const queueLength = 8

// Stats describe a camera's stream. Counters add up over every Run; the other fields
// describe the current (or last) stream.
type Stats struct {
	// Frames is the number of pictures emitted.
	Frames uint64
	// Corrupt is the number of access units dropped because they were incomplete
	// (packets lost in the middle), could not be depacketized or failed to decode.
	Corrupt uint64
	// LostPackets is the number of RTP packets that never arrived (sequence gaps).
	LostPackets uint64
	// Skipped is the number of complete access units dropped while waiting for a
	// random-access picture (at start, after loss or corruption; H.264 and H.265 only).
	Skipped uint64
	// Dropped is the number of access units dropped because decoding fell behind.
	Dropped uint64
	// OutOfOrder is the number of pictures dropped because their capture time was not
	// after the previous picture's (at the switch to NTP time, or a camera whose
	// timestamps step back).
	OutOfOrder uint64
	// Reconnects is the number of times Run reached PLAY after the first.
	Reconnects uint64
	// Codec is "h264", "h265" or "mjpeg"; "" before the first DESCRIBE.
	Codec string
	// Decoder is the FFmpeg decoder in use ("" for MJPEG).
	Decoder string
	// Width and Height of the pictures in pixels; 0 before the first.
	Width, Height int
	// FPS is the measured frame rate, in pictures emitted per second over about the
	// last second.
	FPS float64
	// Clock is the origin of the last emitted capture time.
	Clock camera.Clock
	// JitterMs is the RFC 3550 interarrival jitter of the RTP packets in milliseconds.
	// For a stream with B-frames it includes the reordering.
	JitterMs float64
	// Transport is "udp" or "tcp" once playing.
	Transport string
}

// Describe reports the stream for `edgedepth probe` (it satisfies stereo.Describer):
// codec, decoder, transport, jitter and the loss counters.
func (c *Camera) Describe() map[string]any {
	st := c.Stats()
	return map[string]any{
		"url":          Redact(c.cfg.URL),
		"codec":        st.Codec,
		"decoder":      st.Decoder,
		"transport":    st.Transport,
		"jitter_ms":    math.Round(st.JitterMs*100) / 100,
		"corrupt":      st.Corrupt,
		"lost_packets": st.LostPackets,
		"skipped":      st.Skipped,
		"dropped":      st.Dropped,
		"out_of_order": st.OutOfOrder,
		"reconnects":   st.Reconnects,
	}
}

// Camera is one RTSP camera as a camera.MonoSource. Create it with New.
type Camera struct {
	name string
	cfg  Config
	log  *slog.Logger

	running atomic.Bool
	plays   atomic.Uint64

	mu    sync.Mutex
	stats Stats
}

var _ camera.MonoSource = (*Camera)(nil)

// New checks cfg and returns a Camera called name (such as "left"); it connects to
// nothing. log may be nil.
func New(name string, cfg Config, log *slog.Logger) (*Camera, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("camera %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.WithDefaults()
	return &Camera{
		name: name,
		cfg:  cfg,
		log:  log.With("component", "camera/rtsp", "camera", name, "url", Redact(cfg.URL)),
	}, nil
}

// Name implements camera.MonoSource.
func (c *Camera) Name() string { return c.name }

// Stats returns the camera's statistics; safe for concurrent use.
func (c *Camera) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	if p := c.plays.Load(); p > 1 {
		s.Reconnects = p - 1
	}
	return s
}

func (c *Camera) update(f func(*Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

// runError is an error of Run: it names the camera and its URL, and scrubs the password
// from the text of whatever it wraps (a library may quote the URL).
type runError struct {
	msg string
	err error
}

func (e *runError) Error() string { return e.msg }
func (e *runError) Unwrap() error { return e.err }

func (c *Camera) fail(password string, err error) error {
	msg := fmt.Sprintf("camera %s (%s): %v", c.name, Redact(c.cfg.URL), err)
	if password != "" {
		msg = strings.ReplaceAll(msg, password, redactedPassword)
	}
	return &runError{msg: msg, err: err}
}

// Run connects, plays the camera's video track and calls emit for every decoded picture
// from Run's goroutine, until ctx is cancelled (it returns nil) or the stream fails (it
// returns an error naming the camera and the reason). It closes the connection and waits
// for every goroutine it started before returning. Run may be called again after it
// returned, to reconnect; not twice at once.
func (c *Camera) Run(ctx context.Context, emit func(camera.Frame)) error {
	if !c.running.CompareAndSwap(false, true) {
		panic("camera/rtsp: Run called while already running") // a programming error
	}
	defer c.running.Store(false)
	password, err := c.run(ctx, emit)
	if ctx.Err() != nil {
		return nil // cancellation is not an error, whatever the client says about it
	}
	return c.fail(password, err)
}

// run does Run's work and returns the password it used, for scrubbing error texts.
func (c *Camera) run(ctx context.Context, emit func(camera.Frame)) (password string, err error) {
	u, err := url.Parse(c.cfg.URL)
	if err != nil {
		return "", fmt.Errorf("url: %s", describeURLError(err))
	}
	user, password, err := c.cfg.credentials(u)
	if err != nil {
		return "", err
	}
	tlsConfig, err := c.cfg.tlsConfig(u)
	if err != nil {
		return password, err
	}
	u.User = nil
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	bu := (*base.URL)(u)

	client := &gortsplib.Client{
		Scheme:                u.Scheme,
		Host:                  u.Host,
		ReadTimeout:           c.cfg.ReadTimeout,
		InitialUDPReadTimeout: c.cfg.UDPFallbackTimeout,
		TLSConfig:             tlsConfig,
		OnTransportSwitch: func(err error) {
			c.log.Warn("switching RTP transport to TCP", "reason", err)
			c.update(func(s *Stats) { s.Transport = TransportTCP })
		},
		// Loss is counted from sequence gaps by the depacketizer, which also knows
		// which access unit it broke; gortsplib's default would log every gap.
		OnPacketsLost: func(uint64) {},
		OnDecodeError: func(err error) {
			c.update(func(s *Stats) { s.Corrupt++ })
			c.log.Debug("rtp/rtcp decode error", "err", err)
		},
	}
	switch c.cfg.Transport {
	case TransportUDP:
		p := gortsplib.ProtocolUDP
		client.Protocol = &p
	case TransportTCP:
		p := gortsplib.ProtocolTCP
		client.Protocol = &p
	}
	if err := client.Start(); err != nil {
		return password, fmt.Errorf("start: %w", err)
	}
	// The client's calls block for up to ReadTimeout; closing it is the only way to
	// cancel them, so a watcher closes it when ctx ends. It is joined before returning.
	var wg sync.WaitGroup
	stopWatch := make(chan struct{})
	wg.Go(func() {
		select {
		case <-ctx.Done():
			client.Close()
		case <-stopWatch:
		}
	})
	defer func() {
		close(stopWatch)
		client.Close() // first, so that no callback runs after this
		wg.Wait()
	}()

	desc, _, err := client.Describe(bu)
	if err != nil {
		return password, fmt.Errorf("describe: %w", mapRTSPError(err))
	}
	medi, forma, err := pickTrack(desc)
	if err != nil {
		return password, fmt.Errorf("describe: %w", err)
	}
	dp, err := newDepacketizer(forma)
	if err != nil {
		return password, fmt.Errorf("describe: %w", err)
	}
	var dec *codec.Decoder
	if dp.codec != CodecMJPEG {
		dec, err = codec.NewDecoder(dp.codec, c.cfg.Decoder)
		if err != nil {
			return password, fmt.Errorf("decoder (decoder: %q): %w", c.cfg.Decoder, err)
		}
		defer dec.Close() // only Run's goroutine uses it, and it is done with it by then
	}
	c.update(func(s *Stats) {
		s.Codec, s.Width, s.Height, s.FPS, s.Decoder = dp.codec, 0, 0, 0, ""
		if dec != nil {
			s.Decoder = dec.Name()
		}
	})

	if _, err := client.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return password, fmt.Errorf("setup: %w", mapRTSPError(err))
	}

	queue := make(chan accessUnit, queueLength)
	var lastPacket atomic.Int64 // unix nanoseconds of the newest packet, for the watchdog
	var wantKey atomic.Bool     // set by the decoder after an error: skip to a keyframe
	jitter := jitterEstimator{rate: float64(forma.ClockRate())}
	client.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		// This runs on the client's reader goroutine: no blocking, no decoding here.
		now := time.Now()
		lastPacket.Store(now.UnixNano())
		ntp, hasNTP := client.PacketNTP(medi, pkt) // on every packet: see DEPENDENCIES.md
		if wantKey.Swap(false) {
			dp.requireKey()
		}
		au, ok, res := dp.push(pkt, now)
		jitter.update(dp.pts, now)
		if !ok {
			if res != (pushResult{}) {
				c.update(func(s *Stats) {
					s.LostPackets += res.lost
					s.Corrupt += res.corrupt
					s.Skipped += res.skipped
					s.JitterMs = jitter.ms()
				})
			}
			return
		}
		au.ntp, au.hasNTP = ntp, hasNTP
		dropped := false
		select {
		case queue <- au:
		default:
			dropped = true
			dp.requireKey() // the next access units would reference the dropped one
		}
		c.update(func(s *Stats) {
			s.LostPackets += res.lost
			s.Corrupt += res.corrupt
			s.Skipped += res.skipped
			s.JitterMs = jitter.ms()
			if dropped {
				s.Dropped++
			}
		})
	})

	if _, err := client.Play(nil); err != nil {
		return password, fmt.Errorf("play: %w", mapRTSPError(err))
	}
	c.plays.Add(1)
	transport := TransportTCP
	if tr := client.Transport(); tr != nil && tr.Session != nil && tr.Session.Protocol != gortsplib.ProtocolTCP {
		transport = TransportUDP // unicast or multicast
	}
	c.update(func(s *Stats) { s.Transport = transport })
	c.log.Info("camera playing", "codec", dp.codec, "transport", transport)

	clientDone := make(chan error, 1)
	wg.Go(func() { clientDone <- client.Wait() })

	return password, c.decodeLoop(ctx, emit, decodeDeps{
		queue: queue, clientDone: clientDone, lastPacket: &lastPacket, wantKey: &wantKey,
		dec: dec, codec: dp.codec, rate: float64(forma.ClockRate()),
	})
}

type decodeDeps struct {
	queue      <-chan accessUnit
	clientDone <-chan error
	lastPacket *atomic.Int64
	wantKey    *atomic.Bool
	dec        *codec.Decoder // nil for MJPEG
	codec      string
	rate       float64
}

// decodeLoop decodes access units and emits pictures until ctx ends or the stream fails.
func (c *Camera) decodeLoop(ctx context.Context, emit func(camera.Frame), d decodeDeps) error {
	clock := captureClock{rate: d.rate}
	// Pictures come out of the decoder in display order, possibly later than their
	// access unit went in: pending keeps each access unit's times by PTS until then.
	pending := make(map[int64]accessUnit)
	var (
		width, height int
		seq           uint64
		fpsStart      time.Time
		fpsFrames     int
		lastLog       = time.Now()
		logged        Stats
	)
	// The watchdog fires ReadTimeout after the newest packet; in auto mode the first
	// packets may take the UDP fallback delay on top.
	timeout := c.cfg.ReadTimeout
	first := timeout
	if c.cfg.Transport == TransportAuto {
		first += c.cfg.UDPFallbackTimeout
	}
	start := time.Now()
	watchdog := time.NewTimer(first)
	defer watchdog.Stop()

	for {
		var au accessUnit
		select {
		case <-ctx.Done():
			return nil
		case err := <-d.clientDone:
			if err = mapRTSPError(err); errors.Is(err, ErrReadTimeout) {
				return err
			}
			return fmt.Errorf("%w: %w", ErrServerClosed, err)
		case <-watchdog.C:
			last := d.lastPacket.Load()
			deadline := start.Add(first)
			if last != 0 {
				deadline = time.Unix(0, last).Add(timeout)
			}
			if wait := time.Until(deadline); wait > 0 {
				watchdog.Reset(wait)
				continue
			}
			return fmt.Errorf("%w for %v (read_timeout)", ErrReadTimeout, timeout)
		case au = <-d.queue:
		}

		var pics []codec.Picture
		if d.dec == nil {
			img, err := decodeJPEG(au.jpeg)
			if err != nil {
				c.update(func(s *Stats) { s.Corrupt++ })
				continue
			}
			pics = []codec.Picture{{Image: img, PTS: au.pts}}
		} else {
			pending[au.pts] = au
			var err error
			pics, err = d.dec.DecodeTimed(au.nalus, au.pts)
			if err != nil {
				c.update(func(s *Stats) { s.Corrupt++ })
				d.wantKey.Store(true)
				// Pictures completed before the error are still good.
			}
			if len(pending) > 64 {
				// A decoder never gives back some PTS (dropped pictures): forget the
				// oldest so that the map stays small.
				for pts := range pending {
					if pts < au.pts-int64(d.rate) {
						delete(pending, pts)
					}
				}
			}
		}

		for _, pic := range pics {
			meta := au
			if d.dec != nil {
				m, ok := pending[pic.PTS]
				if !ok {
					c.update(func(s *Stats) { s.Corrupt++ })
					continue // the decoder invented a time: we cannot date this picture
				}
				meta = m
				delete(pending, pic.PTS)
			}
			if width == 0 {
				width, height = pic.Image.Width, pic.Image.Height
				c.update(func(s *Stats) { s.Width, s.Height = width, height })
				c.log.Info("first picture", "width", width, "height", height)
			} else if pic.Image.Width != width || pic.Image.Height != height {
				return fmt.Errorf("%w from %dx%d to %dx%d (restart the camera to accept the new size; calibration must match it)",
					ErrResolutionChanged, width, height, pic.Image.Width, pic.Image.Height)
			}
			t, clk, event, ok := clock.capture(pic.PTS, meta.recv, meta.ntp, meta.hasNTP)
			switch event {
			case clockSwitchedToNTP:
				c.log.Info("capture time from the camera's RTCP sender reports (NTP) from now on")
			case clockNTPRefused:
				c.log.Warn("camera's NTP time is far behind our receive time: keeping receive time (synchronise the camera's clock)",
					"ntp", meta.ntp, "receive_estimate", t)
			}
			if !ok {
				c.update(func(s *Stats) { s.OutOfOrder++ })
				continue
			}
			// FPS: frame intervals over windows of at least a second.
			now := time.Now()
			var fps float64
			if fpsStart.IsZero() {
				fpsStart = now
			} else {
				fpsFrames++
			}
			if el := now.Sub(fpsStart); el >= time.Second {
				fps = float64(fpsFrames) / el.Seconds()
				fpsStart, fpsFrames = now, 0
			}
			c.update(func(s *Stats) {
				s.Frames++
				s.Clock = clk
				if fps > 0 {
					s.FPS = fps
				}
			})
			emit(camera.Frame{Seq: seq, CaptureTime: t, Clock: clk, Image: pic.Image})
			seq++
		}

		// Problems on the hot path are logged as counts, once a second at most.
		if now := time.Now(); now.Sub(lastLog) >= time.Second {
			lastLog = now
			s := c.Stats()
			if s.LostPackets > logged.LostPackets || s.Corrupt > logged.Corrupt || s.Dropped > logged.Dropped {
				c.log.Warn("stream damaged", "lost_packets", s.LostPackets-logged.LostPackets,
					"corrupt", s.Corrupt-logged.Corrupt, "dropped", s.Dropped-logged.Dropped,
					"skipped", s.Skipped-logged.Skipped, "jitter_ms", s.JitterMs)
			}
			logged = s
		}
	}
}

// pickTrack returns the first video track the camera can be read from, preferring H.265,
// then H.264, then MJPEG (the order of bandwidth efficiency).
func pickTrack(desc *description.Session) (*description.Media, format.Format, error) {
	if desc == nil {
		return nil, nil, ErrNoVideo
	}
	var h265 *format.H265
	if m := desc.FindFormat(&h265); m != nil {
		return m, h265, nil
	}
	var h264 *format.H264
	if m := desc.FindFormat(&h264); m != nil {
		return m, h264, nil
	}
	var mjpeg *format.MJPEG
	if m := desc.FindFormat(&mjpeg); m != nil {
		return m, mjpeg, nil
	}
	var codecs []string
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			codecs = append(codecs, fmt.Sprintf("%s %s", m.Type, f.Codec()))
		}
	}
	return nil, nil, fmt.Errorf("%w (the stream has: %s)", ErrNoVideo, strings.Join(codecs, ", "))
}

// mapRTSPError wraps the sentinel that says what to do about an RTSP failure.
func mapRTSPError(err error) error {
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) {
		switch bad.Code {
		case base.StatusUnauthorized:
			return fmt.Errorf("%w: %w", ErrUnauthorized, err)
		case base.StatusNotFound:
			return fmt.Errorf("%w (check the path in url: cameras name their streams differently)", err)
		}
	}
	var tcpTimeout liberrors.ErrClientTCPTimeout
	var udpTimeout liberrors.ErrClientUDPTimeout
	if errors.As(err, &tcpTimeout) || errors.As(err, &udpTimeout) {
		return fmt.Errorf("%w: %w", ErrReadTimeout, err)
	}
	return err
}
