package rtspserve

import (
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// publication is a stream a client publishes (Config.AllowPublish), re-served to readers.
type publication struct {
	path      string // without the leading slash
	publisher *gortsplib.ServerSession
	stream    *gortsplib.ServerStream // the announced description, shared with readers
	recording bool                    // RECORD accepted: readers may play; guarded by Server.mu
}

// isPublishPath reports whether clients may publish on path (without the leading slash).
func (s *Server) isPublishPath(path string) bool {
	if !s.cfg.AllowPublish || !pathPattern.MatchString(path) {
		return false
	}
	return s.src == nil || (path != s.cfg.LeftPath && path != s.cfg.RightPath)
}

// announce makes ctx.Session the publisher of ctx.Path. A publisher already there is
// replaced: its readers are disconnected and its session closed, so a publisher that
// restarts (ffmpeg after a crash) does not wait for its dead session to time out.
func (s *Server) announce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	path := strings.TrimPrefix(ctx.Path, "/")
	if !s.isPublishPath(path) {
		s.log.Warn("rtsp publish refused", "path", ctx.Path, "allow_publish", s.cfg.AllowPublish,
			"client", ctx.Conn.NetConn().RemoteAddr().String())
		return &base.Response{StatusCode: base.StatusForbidden}, nil
	}
	srv := s.rtsp.Load()
	if srv == nil {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil
	}
	st := &gortsplib.ServerStream{Server: srv, Desc: ctx.Description}
	if err := st.Initialize(); err != nil {
		s.log.Warn("rtsp publish refused: unusable description", "path", ctx.Path, "err", err)
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	pub := &publication{path: path, publisher: ctx.Session, stream: st}

	s.mu.Lock()
	if s.pubs == nil { // the server is shutting down
		s.mu.Unlock()
		st.Close()
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil
	}
	old := s.pubs[path]
	s.pubs[path] = pub
	s.mu.Unlock()

	if old != nil {
		s.log.Info("rtsp publisher replaced", "path", ctx.Path)
		old.stream.Close()
		old.publisher.Close()
	}
	s.log.Info("rtsp client announced", "path", ctx.Path, "client", ctx.Conn.NetConn().RemoteAddr().String(),
		"formats", formatNames(ctx.Description))
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// record starts relaying the publisher's packets to the readers of its path.
func (s *Server) record(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	path := strings.TrimPrefix(ctx.Path, "/")
	s.mu.Lock()
	pub := s.pubs[path]
	if pub == nil || pub.publisher != ctx.Session {
		s.mu.Unlock() // replaced between ANNOUNCE and RECORD
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil
	}
	pub.recording = true
	s.mu.Unlock()

	sess := ctx.Session
	// The callback runs on the session's reader goroutine, per packet. The packet is
	// written as it came (payload, sequence number, timestamp); the readers' SSRC and
	// sender reports are the stream's own. The publisher's sender reports, when they
	// have come, give each packet's NTP time, so readers get the publisher's capture
	// times; before the first one, receive time stands in.
	sess.OnPacketRTPAny(func(medi *description.Media, _ format.Format, pkt *rtp.Packet) {
		ntp, ok := sess.PacketNTP(medi, pkt)
		if !ok {
			ntp = time.Now()
		}
		// An error means the stream was closed (publisher replaced or server closing):
		// the session is being closed too, nothing to report.
		_ = pub.stream.WritePacketRTPWithNTP(medi, pkt, ntp)
	})
	s.log.Info("rtsp client publishing", "path", ctx.Path, "transport", sess.Transport().Protocol.String())
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// unpublish ends sess's publication, if it has one: its readers are disconnected.
func (s *Server) unpublish(sess *gortsplib.ServerSession) {
	path := strings.TrimPrefix(sess.Path(), "/")
	s.mu.Lock()
	pub := s.pubs[path]
	if pub == nil || pub.publisher != sess {
		s.mu.Unlock()
		return
	}
	delete(s.pubs, path)
	s.mu.Unlock()
	pub.stream.Close()
	s.log.Info("rtsp publisher left", "path", "/"+path)
}

// closePublications disconnects every publisher and reader of a published path and
// refuses publishers from now on.
func (s *Server) closePublications() {
	s.mu.Lock()
	pubs := s.pubs
	s.pubs = nil
	s.mu.Unlock()
	for _, p := range pubs {
		p.stream.Close()
		p.publisher.Close()
	}
}

// publishedStream returns the stream readers of path (without the leading slash) play:
// known is false when nothing was announced there; st is nil while the publisher has
// announced but not started recording.
func (s *Server) publishedStream(path string) (st *gortsplib.ServerStream, known bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	pub := s.pubs[path]
	if pub == nil {
		return nil, false
	}
	if !pub.recording {
		return nil, true
	}
	return pub.stream, true
}

func formatNames(d *description.Session) []string {
	var names []string
	for _, m := range d.Medias {
		for _, f := range m.Formats {
			names = append(names, f.Codec())
		}
	}
	return names
}
