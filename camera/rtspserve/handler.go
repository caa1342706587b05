package rtspserve

import (
	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// handler answers gortsplib's server callbacks. They run on gortsplib's connection
// goroutines, concurrently with each other and with the serve loop; a callback must
// never answer 200 OK without a stream (gortsplib panics).
type handler struct{ s *Server }

// stream answers DESCRIBE and SETUP alike: 404 for a path that is no eye, 503 while the
// streams do not exist yet (before the first pair, during shutdown).
func (h *handler) stream(path string) (*base.Response, *gortsplib.ServerStream) {
	e, known := h.s.lookup(path)
	if !known {
		h.s.log.Warn("rtsp request for an unknown path", "path", path,
			"left", "/"+h.s.cfg.LeftPath, "right", "/"+h.s.cfg.RightPath)
		return &base.Response{StatusCode: base.StatusNotFound}, nil
	}
	if e == nil {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, e.stream
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
	res, st := h.stream(ctx.Path)
	return res, st, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	h.s.log.Info("rtsp client playing", "path", ctx.Path, "client", ctx.Conn.NetConn().RemoteAddr().String(),
		"transport", ctx.Session.Transport().Protocol.String())
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	h.s.log.Debug("rtsp session closed", "path", ctx.Session.Path(), "reason", ctx.Error)
}

// OnStreamWriteError implements gortsplib.ServerHandlerOnStreamWriteError: a reader's
// queue is full. It runs per packet, so it only counts; the serve loop logs the count.
func (h *handler) OnStreamWriteError(*gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	h.s.writeErrors.Add(1)
}
