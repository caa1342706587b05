package rtsptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long Stop waits for a process to end after SIGTERM/SIGINT before it
// is killed.
const stopGrace = 5 * time.Second

// requireProgram returns the path of program, or fails the test naming the Debian
// package that installs it.
func requireProgram(t testing.TB, program, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		t.Fatalf("rtsptest: %s not found (%v): install the Debian package %s (apt-get install %s)",
			program, err, debianPackage, debianPackage)
	}
	return path
}

// process is a child process the test owns. It keeps the tail of its stderr for error
// messages and calls onLine for every line of its stdout.
type process struct {
	name   string
	cmd    *exec.Cmd
	stderr *tailBuffer
	done   chan struct{} // closed once the process has exited
	err    error         // Wait's result, valid once done is closed
}

func startProcess(name string, cmd *exec.Cmd, onLine func(string)) (*process, error) {
	p := &process{name: name, cmd: cmd, stderr: &tailBuffer{max: 8 << 10}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	cmd.Stdout = &lineWriter{onLine: onLine}
	// A process group of its own: a signal to the test's process group (^C) does not
	// reach it twice, and it cannot outlive a cleanup that kills it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("rtsptest: start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// describe says how the process ended, with its last stderr lines.
func (p *process) describe() string {
	state := "running"
	if p.exited() {
		state = fmt.Sprintf("exited (%v)", p.err)
	}
	return fmt.Sprintf("%s %s; stderr:\n%s", p.name, state, p.stderr.String())
}

// stop sends sig, waits up to stopGrace, then kills; it returns once the process is
// gone.
func (p *process) stop(sig syscall.Signal) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return
	case <-time.After(stopGrace):
	}
	p.kill()
}

// kill ends the process with SIGKILL and waits for it.
func (p *process) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// waitFor polls cond every interval until it holds, the process exits, or timeout.
func waitFor(ctx context.Context, p *process, timeout, interval time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-p.done:
			if cond() {
				return nil
			}
			return errors.New("process exited")
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v", timeout)
		case <-tick.C:
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimRight(string(b.buf), "\n")
}

// lineWriter calls onLine for each complete line written to it.
type lineWriter struct {
	mu     sync.Mutex
	onLine func(string)
	part   []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		line := string(w.part[:i])
		w.part = w.part[i+1:]
		if w.onLine != nil {
			w.onLine(line)
		}
	}
	return len(p), nil
}
