package telemetry

import (
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

func TestDescribeConnectError(t *testing.T) {
	const broker = "tcp://10.0.0.5:1883"
	netErr := func(err error) error {
		// The shape paho returns for a failed dial.
		return fmt.Errorf("%w : %w", packets.ErrorNetworkError, &net.OpError{Op: "dial", Net: "tcp", Err: err})
	}
	for _, tc := range []struct {
		name string
		cfg  MQTTConfig
		err  error
		want string
	}{
		{"not authorised", MQTTConfig{Username: "robot"}, packets.ErrorRefusedNotAuthorised,
			"broker tcp://10.0.0.5:1883 refused the credentials (not authorised): check mqtt.username/password"},
		{"not authorised, no user", MQTTConfig{}, packets.ErrorRefusedNotAuthorised,
			"set mqtt.username and mqtt.password_file"},
		{"bad password from file", MQTTConfig{Username: "robot", PasswordFile: "/etc/edgedepth/mqtt.pw"}, packets.ErrorRefusedBadUsernameOrPassword,
			"(bad user name or password): check mqtt.username and the password in mqtt.password_file /etc/edgedepth/mqtt.pw"},
		{"id rejected", MQTTConfig{ClientID: "edgedepth-r1"}, packets.ErrorRefusedIDRejected, `client id "edgedepth-r1"`},
		{"unavailable", MQTTConfig{}, packets.ErrorRefusedServerUnavailable, "server unavailable"},
		{"refused", MQTTConfig{}, netErr(os.NewSyscallError("connect", syscall.ECONNREFUSED)),
			"refused the TCP connection: is a broker running there?"},
		{"dns", MQTTConfig{}, netErr(&net.DNSError{Name: "broker.lan", Err: "no such host"}), `cannot resolve host "broker.lan"`},
		{"timeout", MQTTConfig{ConnectTimeout: 10e9}, netErr(os.ErrDeadlineExceeded), "did not answer within mqtt.connect_timeout (10s)"},
		{"unknown CA", MQTTConfig{}, netErr(x509.UnknownAuthorityError{}), "set mqtt.ca_file"},
		{"client certificate refused", MQTTConfig{}, fmt.Errorf("%w : %w", packets.ErrorNetworkError, &net.OpError{Op: "remote error", Err: fmt.Errorf("tls: certificate required")}),
			"rejected the TLS handshake (tls: certificate required): check mqtt.cert_file/key_file"},
		{"eof in handshake", MQTTConfig{}, fmt.Errorf("%w : %w", packets.ErrorNetworkError, io.EOF), "closed the connection before the MQTT handshake completed (EOF)"},
		{"password file", MQTTConfig{}, &configError{"cannot read mqtt.password_file: open /x: no such file", nil}, "cannot read mqtt.password_file"},
		{"other", MQTTConfig{}, fmt.Errorf("something new"), "broker tcp://10.0.0.5:1883: cannot connect: something new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := describeConnectError(broker, tc.cfg, tc.err)
			if !strings.Contains(got, tc.want) {
				t.Errorf("got  %q\nwant it to contain %q", got, tc.want)
			}
		})
	}
}

func TestDescribeLostError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{io.EOF, `another client took over client id "edgedepth-r1"`},
		{fmt.Errorf("pingresp not received, disconnecting"), "stopped answering keep-alive pings"},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, "lost the connection to broker b (connection reset by peer); reconnecting"},
	} {
		if got := describeLostError("b", "edgedepth-r1", tc.err); !strings.Contains(got, tc.want) {
			t.Errorf("%v: got %q, want it to contain %q", tc.err, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 100e6, max: 1e9}
	prev := b.next()
	if prev < 80e6 || prev > 120e6 {
		t.Fatalf("first wait %v, want 100ms ±20%%", prev)
	}
	for range 20 {
		d := b.next()
		if d > b.max {
			t.Fatalf("wait %v above the cap %v", d, b.max)
		}
	}
	if d := b.next(); d < 800e6 {
		t.Errorf("capped wait %v, want near 1s", d)
	}
	b.reset()
	if d := b.next(); d > 120e6 {
		t.Errorf("after reset: %v", d)
	}
}
