package rtspserve

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
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
