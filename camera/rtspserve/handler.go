package rtspserve

import (
	"strings"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// handler answers gortsplib's server callbacks. They run on gortsplib's connection
// goroutines, concurrently with each other and with the serve loop; a callback must
// never answer 200 OK without a stream (gortsplib panics).
type handler struct{ s *Server }

// stream answers DESCRIBE and SETUP alike. An eye's path: 503 while the streams do not
// exist yet (before the first pair, during shutdown). A path clients may publish on
// (Config.AllowPublish): 404 while nobody publishes there, 503 between the publisher's
// ANNOUNCE and RECORD. Any other path: 404.
func (h *handler) stream(path string) (*base.Response, *gortsplib.ServerStream) {
	if e, known := h.s.lookup(path); known {
		if e == nil {
			return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil
		}
		return &base.Response{StatusCode: base.StatusOK}, e.stream
	}
	if p := strings.TrimPrefix(path, "/"); h.s.isPublishPath(p) {
		st, known := h.s.publishedStream(p)
		switch {
		case !known:
			h.s.log.Debug("rtsp request for a path nobody publishes", "path", path)
			return &base.Response{StatusCode: base.StatusNotFound}, nil
		case st == nil:
			return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil
		}
		return &base.Response{StatusCode: base.StatusOK}, st
	}
	h.s.log.Warn("rtsp request for an unknown path", "path", path,
		"left", "/"+h.s.cfg.LeftPath, "right", "/"+h.s.cfg.RightPath, "allow_publish", h.s.cfg.AllowPublish)
	return &base.Response{StatusCode: base.StatusNotFound}, nil
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	res, st := h.stream(ctx.Path)
	return res, st, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup. It refuses transports the
// configuration does not offer, so that a client falls back to one it does.
func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	var offered bool
	switch ctx.Transport.Protocol {
	case gortsplib.ProtocolTCP:
		offered = h.s.cfg.offers(TransportTCP)
	case gortsplib.ProtocolUDP:
		offered = h.s.cfg.offers(TransportUDP)
	}
	if !offered {
		return &base.Response{StatusCode: base.StatusUnsupportedTransport}, nil, nil
	}
	// A publisher sets up the medias it announced: there is no stream to read.
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	res, st := h.stream(ctx.Path)
	return res, st, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	h.s.log.Info("rtsp client playing", "path", ctx.Path, "client", ctx.Conn.NetConn().RemoteAddr().String(),
		"transport", ctx.Session.Transport().Protocol.String())
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnAnnounce implements gortsplib.ServerHandlerOnAnnounce: publishing
// (Config.AllowPublish). Without AllowPublish every ANNOUNCE gets 403 Forbidden.
func (h *handler) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	return h.s.announce(ctx)
}

// OnRecord implements gortsplib.ServerHandlerOnRecord.
func (h *handler) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	return h.s.record(ctx)
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose. A publisher leaving
// ends its readers' stream.
func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	h.s.unpublish(ctx.Session)
	h.s.log.Debug("rtsp session closed", "path", ctx.Session.Path(), "reason", ctx.Error)
}

// OnStreamWriteError implements gortsplib.ServerHandlerOnStreamWriteError: a reader's
// queue is full. It runs per packet, so it only counts; the serve loop logs the count.
func (h *handler) OnStreamWriteError(*gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	h.s.writeErrors.Add(1)
}
