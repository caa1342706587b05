package rtspserve

import (
	"context"
	"time"

	"github.com/edgedepth/edgedepth/camera/codec"
	"github.com/pion/rtp"
)

// maxLateDelay bounds Config.Late.Delay: the late queue holds Delay's worth of pictures.
const maxLateDelay = 10 * time.Second

// lateQueueSize is how many pictures the late eye can have in flight: 10 s at 100 fps.
// A faster source blocks the encoder for a moment rather than losing pictures: the late
// eye is a test fixture, and a fixture that drops what it was asked to delay would
// corrupt the test.
const lateQueueSize = 1024

// lateQueue delays the pictures of the late eye (Config.Late).
type lateQueue struct {
	pics chan latePicture
	err  error // why run stopped early; read after run has returned
}

type latePicture struct {
	picture
	due time.Time // when to write it
}

func newLateQueue() *lateQueue {
	return &lateQueue{pics: make(chan latePicture, lateQueueSize)}
}

// push queues pic to be written cfg.Delay from now and, unless cfg.TransportOnly, moves
// its capture time (RTP timestamp and NTP time alike) by cfg.Delay. It returns false when
// ctx ended first.
func (q *lateQueue) push(ctx context.Context, pic picture, cfg LateEye) bool {
	if !cfg.TransportOnly {
		pic.ts += uint32(codec.DurationToTicks(cfg.Delay))
		pic.captured = pic.captured.Add(cfg.Delay)
	}
	// The encoders reuse their buffers for the next picture, which is encoded before
	// this one is written: the delayed packets need payloads of their own.
	pkts := make([]*rtp.Packet, len(pic.pkts))
	for i, p := range pic.pkts {
		c := *p
		c.Payload = append([]byte(nil), p.Payload...)
		c.CSRC = append([]uint32(nil), p.CSRC...)
		c.Extensions = append([]rtp.Extension(nil), p.Extensions...)
		pkts[i] = &c
	}
	pic.pkts = pkts
	select {
	case q.pics <- latePicture{picture: pic, due: time.Now().Add(cfg.Delay)}:
		return true
	case <-ctx.Done():
		return false
	}
}

// run writes the queued pictures to e's stream when they are due, in order, until ctx
// ends. On a write error it records it and cancels the server's serve loop through
// stop.
func (q *lateQueue) run(ctx context.Context, stop context.CancelFunc, e *eye) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		var pic latePicture
		select {
		case pic = <-q.pics:
		case <-ctx.Done():
			return
		}
		if wait := time.Until(pic.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		if err := e.write(pic.picture); err != nil {
			q.err = err
			stop()
			return
		}
	}
}
