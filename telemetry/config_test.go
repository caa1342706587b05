package telemetry

import (
	"strings"
	"testing"
	"time"
)

func TestMQTTConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     MQTTConfig
		wantErr string // substring; "" means valid
	}{
		{"zero value", MQTTConfig{}, ""},
		{"tls with CA", MQTTConfig{BrokerURL: "ssl://broker:8883", CAFile: "/ca.pem"}, ""},
		{"mqtts with client cert", MQTTConfig{BrokerURL: "mqtts://broker", CertFile: "c", KeyFile: "k"}, ""},
		{"websocket", MQTTConfig{BrokerURL: "ws://broker:9001/mqtt"}, ""},
		{"bad scheme", MQTTConfig{BrokerURL: "http://broker"}, "unknown scheme"},
		{"no host", MQTTConfig{BrokerURL: "tcp://:1883"}, "no host"},
		{"no scheme", MQTTConfig{BrokerURL: "broker:1883"}, "mqtt.broker_url"},
		{"CA on plain tcp", MQTTConfig{BrokerURL: "tcp://broker", CAFile: "/ca.pem"}, "not TLS"},
		{"creds in URL", MQTTConfig{BrokerURL: "tcp://u:secret@broker"}, "credentials in the URL"},
		{"both passwords", MQTTConfig{Password: "a", PasswordFile: "/p"}, "both set"},
		{"cert without key", MQTTConfig{BrokerURL: "ssl://b", CertFile: "c"}, "go together"},
		{"keepalive below 1s", MQTTConfig{KeepAlive: 500 * time.Millisecond}, "mqtt.keep_alive"},
		{"negative timeout", MQTTConfig{ConnectTimeout: -1}, "mqtt.connect_timeout"},
		{"backoff inverted", MQTTConfig{ReconnectMin: time.Minute, ReconnectMax: time.Second}, "mqtt.reconnect_min"},
		{"negative queue", MQTTConfig{EventQueueLen: -1}, "mqtt.event_queue_len"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestBrokerURLDefaultPorts(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "tcp://127.0.0.1:1883"},
		{"tcp://broker", "tcp://broker:1883"},
		{"MQTT://broker", "mqtt://broker:1883"},
		{"ssl://broker", "ssl://broker:8883"},
		{"mqtts://broker:9999", "mqtts://broker:9999"},
		{"wss://broker/mqtt", "wss://broker:443/mqtt"},
		{"tcp://[::1]", "tcp://[::1]:1883"},
	} {
		u, err := MQTTConfig{BrokerURL: tc.in}.brokerURL()
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if u.String() != tc.want {
			t.Errorf("%q → %q, want %q", tc.in, u, tc.want)
		}
	}
}

func TestNewPublisherRejects(t *testing.T) {
	if _, err := NewPublisher(MQTTConfig{}, Topics{}, nil, nil); err == nil {
		t.Error("NewPublisher accepted empty topics")
	}
	tp, _ := NewTopics("r1")
	if _, err := NewPublisher(MQTTConfig{BrokerURL: "udp://x"}, tp, nil, nil); err == nil || !strings.Contains(err.Error(), "mqtt.broker_url") {
		t.Errorf("NewPublisher with a bad URL: %v", err)
	}
}
