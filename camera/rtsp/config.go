package rtsp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Transport names for Config.Transport.
const (
	TransportAuto = "auto"
	TransportUDP  = "udp"
	TransportTCP  = "tcp"
)

// Defaults of the Config fields whose zero value selects one.
const (
	DefaultReadTimeout        = 5 * time.Second
	DefaultUDPFallbackTimeout = 3 * time.Second
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid rtsp camera config")

// Config configures one RTSP camera. The zero value of a field selects its default; URL is
// required. Keys are the YAML keys of the camera's section.
type Config struct {
	// URL of the stream: rtsp://host[:port]/path, or rtsps:// for RTSP over TLS (port 322
	// by default). It may carry credentials (rtsp://user:password@host/path), but a
	// password in a config file is readable by whoever reads the file: prefer Username
	// with PasswordFile or PasswordEnv. Required.
	URL string `yaml:"url"`
	// Transport of the RTP packets: "udp" (lowest latency, but lost packets are lost),
	// "tcp" (interleaved in the RTSP connection: no loss, works through NAT and
	// firewalls, delays on a bad link) or "auto": UDP, falling back to TCP when the
	// server refuses UDP or no packet arrives within UDPFallbackTimeout. Default "auto".
	Transport string `yaml:"transport"`
	// UDPFallbackTimeout is how long "auto" waits for the first UDP packet before it
	// switches to TCP, as a duration ("3s"). Default 3 s.
	UDPFallbackTimeout time.Duration `yaml:"udp_fallback_timeout"`
	// Decoder is the FFmpeg decoder for H.264 or H.265 streams. Default "": FFmpeg's
	// software decoder for the stream's codec. A Jetson's hardware decoder is
	// "h264_nvv4l2dec" / "hevc_nvv4l2dec" (or "h264_nvmpi" / "hevc_nvmpi", depending on the
	// FFmpeg build); an NVIDIA desktop GPU's is "h264_cuvid" / "hevc_cuvid". It must
	// decode the stream's codec. Ignored for MJPEG streams (decoded in Go).
	Decoder string `yaml:"decoder"`
	// Username for RTSP authentication (basic or digest, as the camera asks). Default ""
	// (the URL's user, if any). Set it together with PasswordFile or PasswordEnv.
	Username string `yaml:"username"`
	// PasswordFile is a file whose content (trailing newline removed) is the password,
	// read at every connection so that a rotated password is picked up. Default "".
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv is the name of an environment variable holding the password. Default "".
	PasswordEnv string `yaml:"password_env"`
	// ReadTimeout is how long the camera may send no video packet, and how long the
	// server may take to answer a request, before Run gives up with an error, as a
	// duration ("5s"). Default 5 s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// TLSCAFile is a PEM file of the certificate authorities an rtsps:// server's
	// certificate must chain to. Default "": the system's roots.
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLSInsecureSkipVerify accepts any certificate from an rtsps:// server, as many
	// cameras have self-signed ones. The stream is still encrypted but anyone on the path
	// can impersonate the camera: prefer TLSCAFile with the camera's certificate.
	// Default false.
	TLSInsecureSkipVerify bool `yaml:"tls_insecure_skip_verify"`
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Transport == "" {
		c.Transport = TransportAuto
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.UDPFallbackTimeout == 0 {
		c.UDPFallbackTimeout = DefaultUDPFallbackTimeout
	}
	return c
}

// Validate reports the first field of c (after defaults) that cannot work, naming its
// YAML key. It reads no file and no environment: a missing password file is reported by
// Run, when the password is needed (it may appear later, such as a mounted secret).
func (c Config) Validate() error {
	c = c.WithDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	if c.URL == "" {
		return bad("url is required (rtsp://host:port/path)")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		// url.Error repeats the URL, password included: say what is wrong without it.
		return bad("url %q does not parse: %s", Redact(c.URL), describeURLError(err))
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return bad("url %q: scheme %q, want rtsp or rtsps", Redact(c.URL), u.Scheme)
	}
	if u.Hostname() == "" {
		return bad("url %q has no host", Redact(c.URL))
	}
	switch c.Transport {
	case TransportAuto, TransportUDP, TransportTCP:
	default:
		return bad("transport %q: want %q, %q or %q", c.Transport, TransportAuto, TransportUDP, TransportTCP)
	}
	if c.UDPFallbackTimeout < 0 {
		return bad("udp_fallback_timeout %v must be positive (0 selects %v)", c.UDPFallbackTimeout, DefaultUDPFallbackTimeout)
	}
	if c.ReadTimeout < 0 {
		return bad("read_timeout %v must be positive (0 selects %v)", c.ReadTimeout, DefaultReadTimeout)
	}
	if c.PasswordFile != "" && c.PasswordEnv != "" {
		return bad("password_file and password_env are both set: choose one")
	}
	_, urlHasPassword := u.User.Password()
	if urlHasPassword && (c.PasswordFile != "" || c.PasswordEnv != "") {
		return bad("url carries a password and password_file or password_env is set too: choose one")
	}
	if (c.PasswordFile != "" || c.PasswordEnv != "") && c.Username == "" && u.User.Username() == "" {
		return bad("username is required with password_file or password_env")
	}
	if c.PasswordEnv != "" && !envName.MatchString(c.PasswordEnv) {
		return bad("password_env %q is not an environment variable name (letters, digits, _)", c.PasswordEnv)
	}
	if u.Scheme != "rtsps" && (c.TLSCAFile != "" || c.TLSInsecureSkipVerify) {
		return bad("tls_ca_file and tls_insecure_skip_verify apply to rtsps:// URLs only; url is %s://", u.Scheme)
	}
	return nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// describeURLError returns url.Parse's reason without the URL it repeats.
func describeURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return "malformed"
}

// redactedPassword replaces passwords in everything this package logs or returns.
const redactedPassword = "xxxxx"

// userinfo matches the userinfo of a URL that does not parse, to redact it anyway.
var userinfo = regexp.MustCompile(`//[^/@]*@`)

// Redact returns rawURL with its password, if any, replaced by "xxxxx", for logs and
// error messages. The user name stays (it helps to tell which account failed). A string
// that does not parse as a URL loses its whole userinfo.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return userinfo.ReplaceAllString(rawURL, "//"+redactedPassword+"@")
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), redactedPassword)
	}
	return u.String()
}

// credentials returns the user and password to connect with: the URL's, or Username with
// the password from PasswordFile or PasswordEnv.
func (c Config) credentials(u *url.URL) (user, password string, err error) {
	user = u.User.Username()
	password, _ = u.User.Password()
	if c.Username != "" {
		user = c.Username
	}
	switch {
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", "", fmt.Errorf("password_file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	case c.PasswordEnv != "":
		v, ok := os.LookupEnv(c.PasswordEnv)
		if !ok {
			return "", "", fmt.Errorf("password_env: environment variable %s is not set", c.PasswordEnv)
		}
		password = v
	}
	return user, password, nil
}

// tlsConfig returns the TLS settings for an rtsps:// URL (nil for rtsp://).
func (c Config) tlsConfig(u *url.URL) (*tls.Config, error) {
	if u.Scheme != "rtsps" {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: u.Hostname(), InsecureSkipVerify: c.TLSInsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca_file %s: no PEM certificate in it", c.TLSCAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
