package rtspserve

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/pion/rtp"
)

// These tests publish with a gortsplib client, to reach states ffmpeg passes through too
// fast to look at (announced, not recording) and to send known packets. The tests with
// the real ffmpeg publishing H.264, H.265 and MJPEG are in camera/rtsptest.

// startPublishOnly runs a server with no source, publishing allowed.
func startPublishOnly(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{Addr: "127.0.0.1:0", AllowPublish: true}, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready after 20 s")
	}
	return s
}

func pathURL(s *Server, path string) string { return "rtsp://" + s.Addr().String() + "/" + path }

// describeStatus sends DESCRIBE and returns the status code.
func describeStatus(t *testing.T, rawURL string) base.StatusCode {
	t.Helper()
	u, err := base.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, res, err := c.Describe(u)
	if res != nil {
		return res.StatusCode
	}
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) {
		return bad.Code
	}
	t.Fatalf("DESCRIBE %s: %v", rawURL, err)
	return 0
}

// announce connects a publisher client and sends ANNOUNCE and SETUP, not RECORD.
func announce(t *testing.T, rawURL string) (*gortsplib.Client, *description.Media) {
	t.Helper()
	u, err := base.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	medi := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.MJPEG{}}}
	desc := &description.Session{Medias: []*description.Media{medi}}
	tcp := gortsplib.ProtocolTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if _, err := c.Announce(u, desc); err != nil {
		t.Fatalf("ANNOUNCE: %v", err)
	}
	if err := c.SetupAll(u, desc.Medias); err != nil {
		t.Fatalf("SETUP: %v", err)
	}
	return c, medi
}

func TestPublishLifecycle(t *testing.T) {
	checkLeaks(t)
	s := startPublishOnly(t)
	url := pathURL(s, "cam1")

	if got := describeStatus(t, url); got != base.StatusNotFound {
		t.Errorf("nobody publishing: DESCRIBE %d, want 404", got)
	}
	if got := describeStatus(t, s.URL("left")); got != base.StatusNotFound {
		t.Errorf("no source: DESCRIBE /left %d, want 404", got)
	}
	pub, medi := announce(t, url)
	if got := describeStatus(t, url); got != base.StatusServiceUnavailable {
		t.Errorf("announced, not recording: DESCRIBE %d, want 503", got)
	}
	if _, err := pub.Record(); err != nil {
		t.Fatalf("RECORD: %v", err)
	}

	// A reader gets the publisher's packets as they were sent.
	u, _ := base.ParseURL(url)
	tcp := gortsplib.ProtocolTCP
	rd := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp}
	if err := rd.Start(); err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	desc, _, err := rd.Describe(u)
	if err != nil {
		t.Fatalf("DESCRIBE while recording: %v", err)
	}
	if err := rd.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	got := make(chan *rtp.Packet, 100)
	rd.OnPacketRTPAny(func(_ *description.Media, _ format.Format, pkt *rtp.Packet) {
		select {
		case got <- pkt:
		default:
		}
	})
	if _, err := rd.Play(nil); err != nil {
		t.Fatal(err)
	}
	sent := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 26, SequenceNumber: 1234, Timestamp: 5678, Marker: true},
		Payload: []byte("not really a JPEG, relayed as it is")}
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond) // a reader may miss packets sent before its PLAY
	defer tick.Stop()
wait:
	for {
		select {
		case pkt := <-got:
			if pkt.SequenceNumber != sent.SequenceNumber || pkt.Timestamp != sent.Timestamp || string(pkt.Payload) != string(sent.Payload) {
				t.Errorf("reader got seq %d ts %d %q, want seq %d ts %d %q", pkt.SequenceNumber, pkt.Timestamp, pkt.Payload,
					sent.SequenceNumber, sent.Timestamp, sent.Payload)
			}
			break wait
		case <-tick.C:
			if err := pub.WritePacketRTP(medi, sent); err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatal("no packet relayed after 10 s")
		}
	}

	// A second publisher replaces the first, whose readers are disconnected.
	readerEnded := make(chan error, 1)
	go func() { readerEnded <- rd.Wait() }()
	pub2, _ := announce(t, url)
	select {
	case <-readerEnded:
	case <-time.After(10 * time.Second):
		t.Fatal("reader still playing 10 s after its publisher was replaced")
	}
	if _, err := pub2.Record(); err != nil {
		t.Fatalf("second publisher RECORD: %v", err)
	}
	if got := describeStatus(t, url); got != base.StatusOK {
		t.Errorf("second publisher recording: DESCRIBE %d, want 200", got)
	}
	pub2.Close()
	// The server sees the TCP connection close a moment later: poll, with a deadline.
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for end := time.Now().Add(10 * time.Second); ; <-poll.C {
		got := describeStatus(t, url)
		if got == base.StatusNotFound {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("publisher gone: DESCRIBE %d after 10 s, want 404", got)
		}
	}
}

func TestPublishRefusedWithoutAllowPublish(t *testing.T) {
	checkLeaks(t)
	s := start(t, Config{Codec: CodecMJPEG}, newTestSource(64, 48, framePer))
	u, _ := base.ParseURL(pathURL(s.Server, "cam1"))
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{&format.MJPEG{}}}}}
	if _, err := c.Announce(u, desc); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("ANNOUNCE without AllowPublish: %v, want 403 Forbidden", err)
	}
}
