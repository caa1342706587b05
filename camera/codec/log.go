package codec

// #include "codec.h"
import "C"

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

var (
	avLogger   atomic.Pointer[slog.Logger]
	avLogSetup sync.Mutex
)

// SetLogger routes libav's log (libavcodec, libswscale and the libraries they wrap, such
// as libx264's banner on every encoder open) to log instead of stderr: errors and
// warnings at their level, information at Debug. libav has one log for the whole process,
// so this is process-wide; call it once at start-up. nil restores stderr.
func SetLogger(log *slog.Logger) {
	avLogSetup.Lock()
	defer avLogSetup.Unlock()
	if log == nil {
		C.ed_log_to_stderr()
		avLogger.Store(nil)
		return
	}
	avLogger.Store(log.With("component", "libav"))
	C.ed_log_to_go()
}

// edgedepthLibavLog receives libav's log lines, possibly on threads libav started.
//
//export edgedepthLibavLog
func edgedepthLibavLog(level C.int, line *C.char) {
	log := avLogger.Load()
	if log == nil {
		return
	}
	msg := strings.TrimSpace(C.GoString(line))
	if msg == "" {
		return
	}
	var l slog.Level
	switch {
	case level <= C.AV_LOG_ERROR:
		l = slog.LevelError
	case level <= C.AV_LOG_WARNING:
		l = slog.LevelWarn
	default:
		l = slog.LevelDebug // libx264's banner and statistics: noise to an operator
	}
	log.Log(context.Background(), l, msg)
}
