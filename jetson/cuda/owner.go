package cuda

import (
	"runtime"
	"sync"
)

// owner is the one goroutine that talks to CUDA for a backend. A CUDA context is
// current per OS thread, and cuBLAS handles and the stream are only safe on one thread
// at a time; Go moves goroutines between threads freely. So a goroutine locked to its
// thread makes the context current once and runs every call, handed to it as a
// closure over an unbuffered channel. The thread is never unlocked: when the goroutine
// ends, the thread ends with it, and so does its CUDA state.
type owner struct {
	work chan func()
	done chan struct{} // closed when the goroutine has returned

	mu     sync.RWMutex // held for reading while a call is handed over, for writing by stop
	closed bool
}

// startOwner starts the goroutine and runs setup on it first; the goroutine exits and
// startOwner returns setup's error if it fails.
func startOwner(setup func() error) (*owner, error) {
	o := &owner{work: make(chan func()), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer close(o.done)
		if err := setup(); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for f := range o.work {
			f()
		}
	}()
	if err := <-ready; err != nil {
		<-o.done
		return nil, err
	}
	return o, nil
}

// do runs f on the owner goroutine and returns its error, or ErrClosed after stop.
func (o *owner) do(f func() error) error {
	errc := make(chan error, 1)
	o.mu.RLock()
	if o.closed {
		o.mu.RUnlock()
		return ErrClosed
	}
	o.work <- func() { errc <- f() }
	o.mu.RUnlock()
	return <-errc
}

// stop runs teardown as the owner's last call, ends the goroutine and waits for it.
// Later calls of do return ErrClosed; stop itself may be called again (it then does
// nothing and returns nil).
func (o *owner) stop(teardown func() error) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	errc := make(chan error, 1)
	o.work <- func() { errc <- teardown() }
	err := <-errc
	o.closed = true
	close(o.work)
	o.mu.Unlock()
	<-o.done
	return err
}
