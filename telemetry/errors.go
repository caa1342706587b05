package telemetry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// configError is a problem with a file the config names (password, CA, certificate):
// its message already says which key to fix.
type configError struct {
	msg string
	err error
}

func (e *configError) Error() string { return e.msg }
func (e *configError) Unwrap() error { return e.err }

// describeConnectError turns a failed connection attempt into the health message: what
// happened, in the operator's terms, and which setting to look at. The message must
// not vary between identical failures (no counters, no times), because the health
// tracker keeps the first time it saw a message.
func describeConnectError(broker string, cfg MQTTConfig, err error) string {
	var (
		cfgErr   *configError
		dnsErr   *net.DNSError
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invalid  x509.CertificateInvalidError
		alert    tls.AlertError
		recErr   tls.RecordHeaderError
		netErr   net.Error
		opErr    *net.OpError
		credHint = "check mqtt.username/password"
	)
	switch {
	case cfg.Username == "":
		credHint = "the broker wants credentials: set mqtt.username and mqtt.password_file"
	case cfg.PasswordFile != "":
		credHint = "check mqtt.username and the password in mqtt.password_file " + cfg.PasswordFile
	}
	switch {
	case errors.As(err, &cfgErr):
		return fmt.Sprintf("broker %s: %s", broker, cfgErr.msg)
	case errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return fmt.Sprintf("broker %s refused the credentials (not authorised): %s", broker, credHint)
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return fmt.Sprintf("broker %s refused the credentials (bad user name or password): %s", broker, credHint)
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return fmt.Sprintf("broker %s rejected the client id %q: set another mqtt.client_id", broker, cfg.ClientID)
	case errors.Is(err, packets.ErrorRefusedServerUnavailable):
		return fmt.Sprintf("broker %s answered \"server unavailable\": it is overloaded or shutting down", broker)
	case errors.Is(err, packets.ErrorRefusedBadProtocolVersion):
		return fmt.Sprintf("broker %s does not accept MQTT 3.1.1", broker)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("broker %s refused the TCP connection: is a broker running there? check mqtt.broker_url", broker)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("broker %s: cannot resolve host %q (%s): check mqtt.broker_url and DNS", broker, dnsErr.Name, dnsErr.Err)
	case errors.As(err, &unknown):
		return fmt.Sprintf("broker %s: its TLS certificate is signed by an unknown authority: set mqtt.ca_file to the CA that signed it", broker)
	case errors.As(err, &hostErr):
		return fmt.Sprintf("broker %s: its TLS certificate is not valid for this host name (%v): use a host name the certificate lists in mqtt.broker_url", broker, hostErr)
	case errors.As(err, &invalid):
		// Robots often boot without a real-time clock battery or network time, and
		// then every certificate looks "not yet valid".
		return fmt.Sprintf("broker %s: its TLS certificate is invalid (%v); check the robot's clock too", broker, invalid)
	case errors.As(err, &alert), errors.As(err, &opErr) && opErr.Op == "remote error":
		// Go reports a TLS alert from the peer as a net.OpError "remote error".
		return fmt.Sprintf("broker %s rejected the TLS handshake (%v): check mqtt.cert_file/key_file and that the broker trusts the CA that signed them", broker, rootCause(err))
	case errors.As(err, &recErr):
		return fmt.Sprintf("broker %s does not speak TLS on that port: use tcp:// or the broker's TLS port", broker)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return fmt.Sprintf("broker %s closed the connection before the MQTT handshake completed (%v): wrong port, TLS mismatch (ssl:// or tcp://), or a firewall?", broker, rootCause(err))
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("broker %s did not answer within mqtt.connect_timeout (%v): host down, network unreachable or firewalled?", broker, cfg.ConnectTimeout)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("broker %s is unreachable (%v): check the robot's network", broker, rootCause(err))
	}
	return fmt.Sprintf("broker %s: cannot connect: %v", broker, err)
}

// describeLostError turns the loss of an established connection into the health
// message shown while reconnecting.
func describeLostError(broker, clientID string, err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Sprintf("broker %s closed the connection; reconnecting (broker restarting, or another client took over client id %q?)", broker, clientID)
	case err != nil && strings.Contains(err.Error(), "pingresp not received"):
		return fmt.Sprintf("broker %s stopped answering keep-alive pings; reconnecting", broker)
	}
	return fmt.Sprintf("lost the connection to broker %s (%v); reconnecting", broker, rootCause(err))
}

// rootCause is the innermost wrapped error, which carries the system's own words
// without the layers of "network Error : dial tcp ...: connect: " prefixes. Of an
// error that wraps several, it follows the last: paho wraps its generic
// "network Error" first and the actual cause second.
func rootCause(err error) error {
	for {
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next := u.Unwrap()
			if next == nil {
				return err
			}
			err = next
		case interface{ Unwrap() []error }:
			errs := u.Unwrap()
			if len(errs) == 0 {
				return err
			}
			err = errs[len(errs)-1]
		default:
			return err
		}
	}
}
