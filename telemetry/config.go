package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults of MQTTConfig, applied to zero fields.
const (
	DefaultBrokerURL        = "tcp://127.0.0.1:1883"
	DefaultKeepAlive        = 10 * time.Second
	DefaultConnectTimeout   = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultReconnectMin     = 500 * time.Millisecond
	DefaultReconnectMax     = 30 * time.Second
	DefaultShutdownTimeout  = 2 * time.Second
	DefaultEventQueueLen    = 64
	DefaultMaxPendingTopics = 32
)

// MQTTConfig configures the MQTT connection of a Publisher. The zero value connects
// to the embedded broker's default address without credentials. Field names in
// messages and the yaml tags are the keys under "mqtt:" in the daemon's config.
type MQTTConfig struct {
	// BrokerURL is the broker to connect to: tcp:// or mqtt:// (plain, default port
	// 1883), ssl://, tls://, mqtts:// (TLS, default port 8883), ws:// or wss://
	// (MQTT over WebSocket, default ports 80 and 443; include the path, often
	// "/mqtt"). Default "tcp://127.0.0.1:1883", the embedded broker.
	BrokerURL string `yaml:"broker_url"`
	// ClientID is the MQTT client identifier. It must be unique on the broker: a
	// second client with the same id disconnects the first, and the two then take
	// turns. Default "edgedepth-<robot-id>".
	ClientID string `yaml:"client_id"`
	// Username for the broker; empty sends none. Default empty.
	Username string `yaml:"username"`
	// Password for the broker; prefer PasswordFile, which keeps secrets out of the
	// config file. Default empty.
	Password string `yaml:"password"`
	// PasswordFile is a file holding the password (one trailing newline is ignored),
	// read at every connection attempt so that a rotated secret is picked up without
	// a restart. Mutually exclusive with Password. Default empty.
	PasswordFile string `yaml:"password_file"`
	// CAFile is a PEM file of CA certificates trusted for the broker's certificate,
	// instead of the system pool. Only with a TLS scheme. Default empty (system pool).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate and its private key, for
	// brokers that authenticate clients by certificate. Both or neither; only with a
	// TLS scheme. Read at every connection attempt. Default empty.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify accepts any broker certificate. For bench tests only: it
	// makes TLS useless against an active attacker. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// KeepAlive is the MQTT keep-alive interval, whole seconds, at least 1 s. It
	// bounds how long a vanished robot stays "running": the broker publishes the Last
	// Will after 1.5 × KeepAlive of silence. Default 10 s.
	KeepAlive time.Duration `yaml:"keep_alive"`
	// ConnectTimeout bounds one connection attempt: dial, TLS handshake and CONNECT.
	// Default 10 s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// WriteTimeout bounds how long one message may wait to be handed to a connection
	// that does not drain (a stalled link); after it the connection is dropped and
	// re-established. Default 10 s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// ReconnectMin is the wait after the first failed connection attempt; each
	// further failure doubles it (with ±20 % jitter, so that a fleet does not
	// reconnect in lockstep after a broker restart) up to ReconnectMax.
	// Defaults 500 ms and 30 s.
	ReconnectMin time.Duration `yaml:"reconnect_min"`
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// ShutdownTimeout bounds the clean shutdown: sending what is queued, the offline
	// status and DISCONNECT. Default 2 s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// EventQueueLen is how many events (messages on the events topic) may wait to be
	// sent, in messages; beyond it the oldest is dropped and counted. Default 64.
	EventQueueLen int `yaml:"event_queue_len"`
	// MaxPendingTopics is how many distinct non-event topics may have a message
	// waiting to be sent, in topics. Each holds only its latest message, so the
	// queue holds at most MaxPendingTopics + EventQueueLen messages; a message for a
	// new topic beyond the limit is dropped and counted. Default 32.
	MaxPendingTopics int `yaml:"max_pending_topics"`
}

// LogValue keeps the password out of logs.
func (c MQTTConfig) LogValue() slog.Value {
	pw := ""
	if c.Password != "" {
		pw = "<redacted>"
	}
	return slog.GroupValue(
		slog.String("broker_url", c.BrokerURL),
		slog.String("client_id", c.ClientID),
		slog.String("username", c.Username),
		slog.String("password", pw),
		slog.String("password_file", c.PasswordFile),
		slog.String("ca_file", c.CAFile),
		slog.String("cert_file", c.CertFile),
		slog.Bool("insecure_skip_verify", c.InsecureSkipVerify),
	)
}

// withDefaults returns c with zero fields set to their defaults.
func (c MQTTConfig) withDefaults(robotID string) MQTTConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.BrokerURL == "" {
		c.BrokerURL = DefaultBrokerURL
	}
	if c.ClientID == "" {
		c.ClientID = "edgedepth-" + robotID
	}
	def(&c.KeepAlive, DefaultKeepAlive)
	def(&c.ConnectTimeout, DefaultConnectTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.ReconnectMin, DefaultReconnectMin)
	def(&c.ReconnectMax, DefaultReconnectMax)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
	if c.EventQueueLen == 0 {
		c.EventQueueLen = DefaultEventQueueLen
	}
	if c.MaxPendingTopics == 0 {
		c.MaxPendingTopics = DefaultMaxPendingTopics
	}
	return c
}

// Validate reports the first configuration mistake, naming its key. Zero fields are
// valid: they take their defaults.
func (c MQTTConfig) Validate() error {
	_, err := c.brokerURL()
	if err != nil {
		return err
	}
	switch {
	case c.Password != "" && c.PasswordFile != "":
		return errors.New("mqtt.password and mqtt.password_file are both set: keep one")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("mqtt.cert_file and mqtt.key_file go together: set both or neither")
	case c.KeepAlive < 0 || (c.KeepAlive > 0 && c.KeepAlive < time.Second):
		return fmt.Errorf("mqtt.keep_alive %v: must be at least 1s (MQTT counts it in whole seconds)", c.KeepAlive)
	case c.KeepAlive > 65535*time.Second:
		return fmt.Errorf("mqtt.keep_alive %v: MQTT allows at most 65535s", c.KeepAlive)
	case c.ConnectTimeout < 0:
		return fmt.Errorf("mqtt.connect_timeout %v: must not be negative", c.ConnectTimeout)
	case c.WriteTimeout < 0:
		return fmt.Errorf("mqtt.write_timeout %v: must not be negative", c.WriteTimeout)
	case c.ReconnectMin < 0:
		return fmt.Errorf("mqtt.reconnect_min %v: must not be negative", c.ReconnectMin)
	case c.ReconnectMax < 0:
		return fmt.Errorf("mqtt.reconnect_max %v: must not be negative", c.ReconnectMax)
	case c.ReconnectMin > 0 && c.ReconnectMax > 0 && c.ReconnectMin > c.ReconnectMax:
		return fmt.Errorf("mqtt.reconnect_min %v is above mqtt.reconnect_max %v", c.ReconnectMin, c.ReconnectMax)
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("mqtt.shutdown_timeout %v: must not be negative", c.ShutdownTimeout)
	case c.EventQueueLen < 0:
		return fmt.Errorf("mqtt.event_queue_len %d: must not be negative", c.EventQueueLen)
	case c.MaxPendingTopics < 0:
		return fmt.Errorf("mqtt.max_pending_topics %d: must not be negative", c.MaxPendingTopics)
	case strings.ContainsAny(c.ClientID, "\x00"):
		return errors.New("mqtt.client_id contains a NUL byte")
	}
	return nil
}

// brokerURL parses BrokerURL (or the default), checks its scheme against the TLS
// settings and fills in the scheme's default port.
func (c MQTTConfig) brokerURL() (*url.URL, error) {
	raw := c.BrokerURL
	if raw == "" {
		raw = DefaultBrokerURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("mqtt.broker_url %q: %w", raw, err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("mqtt.broker_url %q: no host (want for example tcp://192.168.1.10:1883)", raw)
	}
	var port string
	secure := false
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
		port = "1883"
	case "ssl", "tls", "mqtts", "tcps":
		port, secure = "8883", true
	case "ws":
		port = "80"
	case "wss":
		port, secure = "443", true
	default:
		return nil, fmt.Errorf("mqtt.broker_url %q: unknown scheme %q (want tcp, mqtt, ssl, tls, mqtts, ws or wss)", raw, u.Scheme)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	if !secure && (c.CAFile != "" || c.CertFile != "" || c.InsecureSkipVerify) {
		return nil, fmt.Errorf("mqtt.broker_url %q is not TLS but TLS settings (ca_file, cert_file or insecure_skip_verify) are set: use ssl:// (or mqtts://, wss://) or remove them", raw)
	}
	if u.User != nil {
		// paho would take credentials from the URL silently; one place for them is
		// easier to audit, and the URL ends up in logs.
		return nil, fmt.Errorf("mqtt.broker_url: credentials in the URL are not supported: use mqtt.username and mqtt.password_file")
	}
	return u, nil
}

func isTLSScheme(scheme string) bool {
	switch scheme {
	case "ssl", "tls", "mqtts", "tcps", "wss":
		return true
	}
	return false
}
