package rtspserve

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// Codec names for Config.Codec.
const (
	CodecH264  = "h264"
	CodecMJPEG = "mjpeg"
)

// Transport names for Config.Transports.
const (
	TransportTCP = "tcp"
	TransportUDP = "udp"
)

// Config configures a Server. The zero value of a field selects its default.
type Config struct {
	// Addr is the TCP address RTSP listens on, host:port. Default "127.0.0.1:8554" (this
	// host only); ":8554" serves every interface; port 0 picks a free port, which
	// Server.Addr reports once Ready is closed.
	Addr string `yaml:"addr"`
	// Codec is "h264" (default; through camera/codec, the encoder named by Encoder) or
	// "mjpeg" (RFC 2435, pure Go, intra-only, sizes in multiples of 8 up to 2040 px).
	Codec string `yaml:"codec"`
	// JPEGQuality is the JPEG quality of Codec "mjpeg", 1 (worst) to 100. Default 85.
	JPEGQuality int `yaml:"jpeg_quality"`
	// BitrateKbps is the H.264 target bitrate of each eye in kbit/s. Default
	// 0.1 bit per pixel per frame at FPS (about 920 kbit/s for 640x480 at 30 fps).
	BitrateKbps int `yaml:"bitrate_kbps"`
	// FPS is the source's nominal frame rate in frames per second, used by the H.264
	// rate control and the default GOP; RTP timestamps come from the capture times, not
	// from this. Default 30.
	FPS float64 `yaml:"fps"`
	// GOP is the H.264 distance between IDR pictures in frames: how long a client that
	// joins waits for its first picture. Default one second of frames.
	GOP int `yaml:"gop"`
	// Encoder is the FFmpeg H.264 encoder. Default "libx264"; see codec.EncoderConfig.
	Encoder string `yaml:"encoder"`
	// LeftPath and RightPath are the URL paths of the two eyes, without the leading
	// slash: rtsp://Addr/LeftPath. Default "left" and "right".
	LeftPath  string `yaml:"left_path"`
	RightPath string `yaml:"right_path"`
	// Transports lists the RTP transports offered to clients: "tcp" (RTP interleaved in
	// the RTSP connection) and "udp" (RTP and RTCP datagrams). A client asking for one not
	// listed gets 461 Unsupported Transport. Default both.
	Transports []string `yaml:"transports"`
	// UDPRTPPort is the even UDP port the UDP transport sends RTP from; RTCP uses the
	// next port. Default 0: a free pair is picked when Run starts (set a fixed pair when a
	// firewall sits between the server and its clients).
	UDPRTPPort int `yaml:"udp_rtp_port"`

	// AllowPublish lets RTSP clients ANNOUNCE and RECORD a stream on any path that is not
	// one of the eyes' (every path when the Server has no source), rtsp://Addr/cam1 for
	// example; readers then DESCRIBE, SETUP and PLAY that path and get the publisher's RTP
	// packets as they came (any codec gortsplib can describe: H.264, H.265, MJPEG, ...).
	// This is how ffmpeg, or a camera that pushes, feeds the ingest under test. Default
	// false.
	//
	// Security: there is no authentication. Anyone who can reach Addr can publish, and
	// replace what is published on a path (a new publisher ends the previous one, so that a
	// restarted ffmpeg need not wait for its dead session to time out). Keep Addr on the
	// loopback interface, or on a trusted network, when this is on.
	AllowPublish bool `yaml:"allow_publish"`

	// Late makes one eye behave like a camera that runs late: fault injection for the
	// pairing tests. The zero value makes no eye late.
	Late LateEye `yaml:"late"`

	// UDPLoss drops a fraction of the RTP datagrams sent over the UDP transport: fault
	// injection for the ingest tests. The zero value drops nothing.
	UDPLoss UDPLoss `yaml:"udp_loss"`
}

// LateEye makes one eye a camera that is Delay late. Its packets are written Delay after
// the pair was encoded, and, unless TransportOnly, its capture times are Delay later
// too: RTP timestamps (on the 90 kHz clock) and RTCP sender reports both move by Delay,
// consistently, as they would for a camera whose shutter fires Delay after the other's.
// The simulated world cannot be rendered at another instant, so the late eye's picture
// stamped T is the one the other eye shows at T-Delay: a client pairing by capture time
// pairs pictures Delay apart in the source, and sees the eyes' streams offset by Delay.
// With TransportOnly the capture times stay true and only delivery is late (a slow
// network path or a deep camera buffer): the eyes keep equal RTP timestamps, and a
// client pairs the same source pair, if it waits long enough.
type LateEye struct {
	// Eye is "left" or "right"; empty when no eye is late.
	Eye string `yaml:"eye"`
	// Delay is how late, at most 10 s. Default 0 (not late).
	Delay time.Duration `yaml:"delay"`
	// TransportOnly delays the packets but keeps the capture times true. Default false.
	TransportOnly bool `yaml:"transport_only"`
}

// UDPLoss drops RTP datagrams where they leave the server's UDP socket, after gortsplib
// has numbered them: the client sees real gaps in RTP sequence numbers over a real UDP
// socket, as behind a lossy link. RTCP is never dropped (sender reports carry the capture
// time; a test wants loss of pictures, not of the clock). Loss applies to every stream
// sent over UDP, published ones included; TCP is lossless by nature and untouched.
type UDPLoss struct {
	// Fraction of RTP datagrams dropped, 0 (none, default) to 1 (all).
	Fraction float64 `yaml:"fraction"`
	// Seed of the pseudo-random choice of datagrams, for repeatable runs. Which
	// datagrams are dropped still depends on how the clients' sends interleave.
	Seed uint64 `yaml:"seed"`
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid rtspserve config")

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8554"
	}
	if c.Codec == "" {
		c.Codec = CodecH264
	}
	if c.JPEGQuality == 0 {
		c.JPEGQuality = 85
	}
	if c.FPS == 0 {
		c.FPS = 30
	}
	if c.Encoder == "" {
		c.Encoder = "libx264"
	}
	if c.LeftPath == "" {
		c.LeftPath = "left"
	}
	if c.RightPath == "" {
		c.RightPath = "right"
	}
	if len(c.Transports) == 0 {
		c.Transports = []string{TransportTCP, TransportUDP}
	}
	return c
}

var pathPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$`)

// Validate reports the first field of c (after defaults) that cannot work, by name.
func (c Config) Validate() error {
	c = c.WithDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	if _, _, err := splitHostPort(c.Addr); err != nil {
		return bad("Addr %q: %v (want host:port, such as 127.0.0.1:8554)", c.Addr, err)
	}
	switch c.Codec {
	case CodecH264, CodecMJPEG:
	default:
		return bad("Codec %q: want %q or %q", c.Codec, CodecH264, CodecMJPEG)
	}
	if c.JPEGQuality < 1 || c.JPEGQuality > 100 {
		return bad("JPEGQuality %d: want 1 to 100", c.JPEGQuality)
	}
	if c.BitrateKbps < 0 {
		return bad("BitrateKbps %d: want > 0 (or 0 for the default)", c.BitrateKbps)
	}
	if !(c.FPS > 0 && c.FPS <= 1000) {
		return bad("FPS %g: want (0, 1000]", c.FPS)
	}
	if c.GOP < 0 {
		return bad("GOP %d: want > 0 (or 0 for the default)", c.GOP)
	}
	for _, p := range []struct{ key, val string }{{"LeftPath", c.LeftPath}, {"RightPath", c.RightPath}} {
		if !pathPattern.MatchString(p.val) {
			return bad("%s %q: want URL path segments of letters, digits and ._~- without a leading slash", p.key, p.val)
		}
	}
	if c.LeftPath == c.RightPath {
		return bad("LeftPath and RightPath are both %q: the eyes need different paths", c.LeftPath)
	}
	for _, t := range c.Transports {
		if t != TransportTCP && t != TransportUDP {
			return bad("Transports %q: %q is not %q or %q", c.Transports, t, TransportTCP, TransportUDP)
		}
	}
	if c.Late.Eye != "" || c.Late.Delay != 0 {
		if _, ok := c.eyePath(c.Late.Eye); !ok {
			return bad("Late.Eye %q: want \"left\" or \"right\"", c.Late.Eye)
		}
		if c.Late.Delay <= 0 || c.Late.Delay > maxLateDelay {
			return bad("Late.Delay %v: want (0, %v]", c.Late.Delay, maxLateDelay)
		}
	}
	if !(c.UDPLoss.Fraction >= 0 && c.UDPLoss.Fraction <= 1) {
		return bad("UDPLoss.Fraction %g: want 0 to 1", c.UDPLoss.Fraction)
	}
	if c.UDPLoss.Fraction > 0 && !c.offers(TransportUDP) {
		return bad("UDPLoss.Fraction %g: Transports %q offer no UDP to lose packets from", c.UDPLoss.Fraction, c.Transports)
	}
	if c.UDPRTPPort < 0 || c.UDPRTPPort > 65534 || c.UDPRTPPort%2 != 0 {
		return bad("UDPRTPPort %d: want an even port below 65535 (RTCP takes the next one), or 0 to pick one", c.UDPRTPPort)
	}
	return nil
}

func (c Config) offers(transport string) bool { return slices.Contains(c.Transports, transport) }

// eyePath returns the configured path of "left" or "right".
func (c Config) eyePath(eye string) (string, bool) {
	switch eye {
	case "left":
		return c.LeftPath, true
	case "right":
		return c.RightPath, true
	}
	return "", false
}

func splitHostPort(addr string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", p)
	}
	return host, port, nil
}
