package command

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/edgedepth/edgedepth/telemetry"
)

// Defaults of Config, applied to zero fields.
const (
	DefaultWindow          = 30 * time.Second
	DefaultTimeout         = 10 * time.Second
	DefaultMaxConcurrent   = 4
	DefaultMaxRequestBytes = 64 << 10
	DefaultMaxRemembered   = 4096
)

// ReplyQoS is the QoS of replies; requests are subscribed with it too. At least once:
// a lost reply leaves an operator guessing, a duplicate carries the same id.
const ReplyQoS = 1

// Handler carries out one command. args is the request's args object ("{}" when the
// request had none); decode it with DecodeArgs, which names a wrong field. The
// result is encoded as JSON into the reply. Return an error wrapping ErrInvalidArgs
// for bad arguments and ErrBusy for "not now"; any other error is a failure, and its
// text is sent to the operator.
//
// ctx ends at the command's timeout and at shutdown. A handler that waits for
// something (a camera frame, the end of a training step) must wait on ctx too: the
// operator gets a "timeout" reply at the deadline regardless, but the handler keeps
// its concurrency slot until it returns.
type Handler func(ctx context.Context, args json.RawMessage) (result any, err error)

// ErrInvalidArgs, wrapped by a Handler's error, makes the reply "invalid_args".
var ErrInvalidArgs = errors.New("invalid args")

// ErrBusy, wrapped by a Handler's error, makes the reply "busy": the robot cannot do
// it now (a calibration already running, say), and may later.
var ErrBusy = errors.New("busy")

// InvalidArgs returns an error wrapping ErrInvalidArgs; the message should name the
// field: InvalidArgs("version: %d does not exist", v).
func InvalidArgs(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgs, fmt.Sprintf(format, a...))
}

// DecodeArgs decodes args into v strictly: an unknown field or a value of the wrong
// type is an error wrapping ErrInvalidArgs that names the field. No arguments at all
// (empty or null) leave v as it is, so a handler fills v with its defaults first.
func DecodeArgs(args json.RawMessage, v any) error {
	if t := bytes.TrimSpace(args); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return InvalidArgs("%s: want a JSON %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		// "json: unknown field \"x\"" already names the field.
		return InvalidArgs("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "number"
	case goKind == "bool":
		return "boolean"
	case goKind == "slice" || goKind == "array":
		return "array"
	case goKind == "struct" || goKind == "map":
		return "object"
	}
	return goKind
}

// Transport is what the Dispatcher needs of an MQTT connection; *telemetry.Publisher
// has it.
type Transport interface {
	Subscribe(filter string, qos byte, handler func(topic string, payload []byte))
	Publish(topic string, payload []byte, qos byte, retained bool)
}

// Config configures a Dispatcher. Zero fields take the defaults.
type Config struct {
	// Key is the HMAC-SHA256 key commands must be signed with (see Signature).
	// Empty means commands are not authenticated, which needs AllowUnsigned.
	Key []byte
	// AllowUnsigned must be true to run without Key: an explicit choice, for a robot
	// whose broker is reachable only by trusted clients (the embedded broker on
	// 127.0.0.1). Default false.
	AllowUnsigned bool
	// Window is how far a signed request's time may be from the robot's clock, either
	// way. It bounds how long a captured request could be replayed, so the robot
	// remembers ids for 2 × Window. Robots without a real-time clock need NTP before
	// they accept signed commands. Default 30 s.
	Window time.Duration
	// Timeout is how long a command may run before the operator gets a "timeout"
	// reply, unless registered WithTimeout. Default 10 s.
	Timeout time.Duration
	// MaxConcurrent is how many commands may run at once, in commands; more are
	// answered "busy". A command that ran past its timeout counts until it returns.
	// Default 4.
	MaxConcurrent int
	// MaxRequestBytes bounds a request payload, in bytes; larger ones are
	// "malformed". Default 64 KiB.
	MaxRequestBytes int
	// MaxRemembered bounds how many request ids are remembered for replay
	// protection, in ids. When it is reached, new requests are answered "busy" until
	// old ids expire: forgetting an id early would let it be replayed. Default 4096.
	MaxRemembered int
	// Log receives every rejection with its detailed reason (rate-limited), and
	// every command run. Nil discards.
	Log *slog.Logger
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxRemembered <= 0 {
		c.MaxRemembered = DefaultMaxRemembered
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Option modifies one registered command.
type Option func(*registered)

// WithTimeout sets the command's timeout instead of Config.Timeout: longer for a
// calibration that collects frames for a minute, shorter for status.
func WithTimeout(d time.Duration) Option {
	return func(r *registered) { r.timeout = d }
}

type registered struct {
	h       Handler
	timeout time.Duration
}

// Dispatcher receives command requests on edgedepth/<robot-id>/cmd/#, checks them,
// runs their handlers and publishes the replies. See the package documentation.
type Dispatcher struct {
	cfg    Config
	t      Transport
	topics telemetry.Topics
	log    *slog.Logger
	slots  chan struct{} // a token per running handler

	mu       sync.Mutex
	commands map[string]registered
	started  bool
	closed   bool
	runCtx   context.Context
	wg       sync.WaitGroup
	replay   replayCache
	rejected logLimiter
	counts   map[Code]uint64
	okCount  uint64
}

// NewDispatcher prepares a Dispatcher for the robot of topics, receiving and replying
// through t. It starts nothing (Run does). It fails when cfg has no key and does not
// allow unsigned commands.
func NewDispatcher(cfg Config, t Transport, topics telemetry.Topics) (*Dispatcher, error) {
	if len(cfg.Key) == 0 && !cfg.AllowUnsigned {
		return nil, errors.New("command dispatcher: no key: set a command key, or allow unsigned commands explicitly")
	}
	if len(cfg.Key) > 0 && len(cfg.Key) < MinKeySize {
		return nil, fmt.Errorf("command dispatcher: key of %d bytes, want at least %d", len(cfg.Key), MinKeySize)
	}
	if topics.RobotID() == "" {
		return nil, fmt.Errorf("command dispatcher: topics %q: no robot id", topics.Prefix)
	}
	cfg = cfg.withDefaults()
	return &Dispatcher{
		cfg:      cfg,
		t:        t,
		topics:   topics,
		log:      cfg.Log.With("component", "command"),
		slots:    make(chan struct{}, cfg.MaxConcurrent),
		commands: make(map[string]registered),
		replay:   replayCache{max: cfg.MaxRemembered, seen: make(map[string]*seenEntry)},
		counts:   make(map[Code]uint64),
	}, nil
}

// Register makes h answer the command name (see ValidateName). It may be called
// before or during Run. An invalid or duplicate name, or a nil h, is a programming
// error and panics.
func (d *Dispatcher) Register(name string, h Handler, opts ...Option) {
	if err := ValidateName(name); err != nil || h == nil {
		panic(fmt.Sprintf("command: Register(%q): invalid name (%v) or nil handler", name, err))
	}
	r := registered{h: h, timeout: d.cfg.Timeout}
	for _, o := range opts {
		o(&r)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.commands[name]; dup {
		panic(fmt.Sprintf("command: Register(%q) twice", name))
	}
	d.commands[name] = r
}

// Stats returns how many requests ended with each error code, and how many
// succeeded, since NewDispatcher.
func (d *Dispatcher) Stats() (ok uint64, failed map[Code]uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	failed = make(map[Code]uint64, len(d.counts))
	for c, n := range d.counts {
		failed[c] = n
	}
	return d.okCount, failed
}

// Run subscribes to the robot's command topics and serves requests until ctx is
// cancelled; then it waits for the running handlers (their ctx is cancelled too)
// and returns nil. Requests arriving after that are ignored. Run may be called once.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.started {
		d.mu.Unlock()
		return errors.New("command dispatcher: Run called twice")
	}
	d.started, d.runCtx = true, ctx
	d.mu.Unlock()

	if len(d.cfg.Key) == 0 {
		d.log.Warn("commands are NOT authenticated (no command key): anyone who can publish to the broker can steer this robot",
			"topics", d.topics.Cmd("#"))
	} else {
		d.log.Info("commands require a signature", "topics", d.topics.Cmd("#"), "window", d.cfg.Window)
	}
	d.t.Subscribe(d.topics.Cmd("#"), ReplyQoS, d.receive)

	<-ctx.Done()
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.wg.Wait()
	return nil
}

// receive handles one message on cmd/#. It runs on the transport's delivery
// goroutine: everything here is cheap (parsing, one HMAC, map look-ups); handlers run
// on goroutines of their own.
func (d *Dispatcher) receive(topic string, payload []byte) {
	name, ok := strings.CutPrefix(topic, d.topics.Cmd(""))
	if !ok {
		return
	}
	for level := range strings.SplitSeq(name, "/") {
		if level == "reply" {
			return // a reply (ours or another client's), not a request
		}
	}
	now := d.cfg.Now()
	d.mu.Lock()
	ctx, closed := d.runCtx, d.closed
	d.mu.Unlock()
	if ctx == nil || closed {
		d.log.Debug("command ignored: dispatcher not running", "topic", topic)
		return
	}

	req := inFlight{topic: topic, name: name, replyTo: topic + "/reply", received: now}
	if len(payload) > d.cfg.MaxRequestBytes {
		d.reject(req, CodeMalformed, fmt.Sprintf("request larger than %d bytes", d.cfg.MaxRequestBytes),
			"request too large", "bytes", len(payload))
		return
	}
	if err := ValidateName(name); err != nil {
		d.reject(req, CodeUnknownCommand, "no such command", "invalid command name", "error", err)
		return
	}
	r, err := ParseRequest(payload)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), ErrMalformed.Error()+": ")
		d.reject(req, CodeMalformed, msg, "malformed request", "error", err)
		return
	}
	req.id = r.ID
	if r.ReplyTo != "" {
		// Honoured before authentication so that a client with the wrong key hears
		// "unauthorized" instead of waiting for its timeout. The worst an
		// unauthenticated sender gets is one small error reply on a topic it names,
		// which it could publish itself.
		req.replyTo = r.ReplyTo
	}

	if len(d.cfg.Key) > 0 {
		if !Verify(d.cfg.Key, topic, r) {
			why := "signature does not match (wrong key, or request altered)"
			if r.Sig == "" {
				why = "unsigned request"
			}
			d.reject(req, CodeUnauthorized, "not authorised", why)
			return
		}
		t, _ := time.Parse(time.RFC3339Nano, r.Time) // checked by ParseRequest
		if skew := t.Sub(now); skew > d.cfg.Window || skew < -d.cfg.Window {
			d.reject(req, CodeExpired, "request time outside the accepted window: check the clocks of the robot and the client",
				"request time outside the window", "request_time", r.Time, "robot_time", now.UTC().Format(time.RFC3339Nano),
				"skew", skew.Round(time.Millisecond), "window", d.cfg.Window)
			return
		}
	}

	sum := sha256.Sum256(payload)
	d.mu.Lock()
	verdict, cached := d.replay.admit(r.ID, sum, now, 2*d.cfg.Window)
	cmd, known := d.commands[name]
	d.mu.Unlock()
	switch verdict {
	case replayDuplicate:
		// The same request again: a QoS 1 redelivery or a client's retry. It ran (or
		// runs) once; the reply goes out again, unchanged, when there is one.
		if cached != nil {
			d.t.Publish(req.replyTo, cached, ReplyQoS, false)
		}
		d.log.Info("duplicate request: not run again", "command", name, "id", r.ID, "reply_resent", cached != nil)
		return
	case replayReused:
		d.reject(req, CodeReplayed, "request id already used", "id reused by a different request")
		return
	case replayFull:
		d.reject(req, CodeBusy, "too many recent requests; try again shortly",
			"replay memory full", "remembered", d.cfg.MaxRemembered)
		return
	}
	if !known {
		d.finish(req, d.rejectReply(req, CodeUnknownCommand, "no such command", "unknown command"))
		return
	}
	select {
	case d.slots <- struct{}{}:
	default:
		// Never ran: forget the id so that the operator may retry the same request.
		d.mu.Lock()
		d.replay.forget(r.ID)
		d.mu.Unlock()
		d.reject(req, CodeBusy, fmt.Sprintf("%d commands already running; try again shortly", d.cfg.MaxConcurrent),
			"concurrency limit", "max_concurrent", d.cfg.MaxConcurrent)
		return
	}

	args := r.Args
	if len(args) == 0 || bytes.Equal(args, []byte("null")) {
		args = json.RawMessage("{}")
	}
	d.mu.Lock()
	if d.closed { // Run returned between the check above and now
		d.mu.Unlock()
		<-d.slots
		return
	}
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		d.run(ctx, req, cmd, args)
	}()
}

// inFlight is what the Dispatcher knows of one request while handling it.
type inFlight struct {
	topic, name, id, replyTo string
	received                 time.Time
}

type outcome struct {
	result any
	err    error
}

// run runs cmd in a goroutine of its own and replies with its outcome, or with
// "timeout" at the deadline if it has not returned by then. The handler goroutine
// holds the concurrency slot until it returns, however late.
func (d *Dispatcher) run(parent context.Context, req inFlight, cmd registered, args json.RawMessage) {
	ctx, cancel := context.WithTimeout(parent, cmd.timeout)
	defer cancel()
	done := make(chan outcome, 1)
	d.wg.Add(1) // safe: the caller's Add is not yet matched by Done
	go func() {
		defer d.wg.Done()
		defer func() { <-d.slots }()
		start := time.Now()
		var o outcome
		func() {
			defer func() {
				if p := recover(); p != nil {
					// A bug in one command must not take the robot's depth with it.
					d.log.Error("command handler panicked", "command", req.name, "id", req.id, "panic", p, "stack", string(debug.Stack()))
					o = outcome{err: errors.New("internal error (see the robot's log)")}
				}
			}()
			o.result, o.err = cmd.h(ctx, args)
		}()
		if ctx.Err() != nil && time.Since(start) >= cmd.timeout {
			d.log.Warn("command finished after its timeout; its outcome was not sent", "command", req.name, "id", req.id,
				"took", time.Since(start).Round(time.Millisecond), "error", o.err)
		}
		done <- o
	}()

	var reply Reply
	select {
	case o := <-done:
		reply = d.outcomeReply(req, o)
	case <-ctx.Done():
		if parent.Err() != nil {
			reply = d.rejectReply(req, CodeBusy, "robot shutting down", "shutdown during the command")
		} else {
			reply = d.rejectReply(req, CodeTimeout, fmt.Sprintf("no result within %v", cmd.timeout),
				"command timed out; it may still complete", "timeout", cmd.timeout)
		}
	}
	d.finish(req, reply)
}

func (d *Dispatcher) outcomeReply(req inFlight, o outcome) Reply {
	elapsed := d.cfg.Now().Sub(req.received).Round(time.Millisecond)
	switch {
	case o.err == nil:
		res, err := json.Marshal(o.result)
		if err != nil {
			return d.rejectReply(req, CodeFailed, "result could not be encoded", "encode result", "error", err)
		}
		d.log.Info("command done", "command", req.name, "id", req.id, "took", elapsed)
		d.mu.Lock()
		d.okCount++
		d.mu.Unlock()
		return Reply{ID: req.id, OK: true, Result: res, Time: d.stamp()}
	case errors.Is(o.err, ErrInvalidArgs):
		msg := strings.TrimPrefix(o.err.Error(), ErrInvalidArgs.Error()+": ")
		return d.rejectReply(req, CodeInvalidArgs, msg, "invalid args", "error", o.err)
	case errors.Is(o.err, ErrBusy):
		return d.rejectReply(req, CodeBusy, o.err.Error(), "command busy", "error", o.err)
	default:
		return d.rejectReply(req, CodeFailed, o.err.Error(), "command failed", "error", o.err, "took", elapsed)
	}
}

// reject answers req with an error reply that is not remembered for its id (the
// request never got that far).
func (d *Dispatcher) reject(req inFlight, code Code, public, why string, details ...any) {
	d.send(req, d.rejectReply(req, code, public, why, details...))
}

// rejectReply logs why req fails, with details the reply does not carry, and returns
// the reply, which carries only code and public.
func (d *Dispatcher) rejectReply(req inFlight, code Code, public, why string, details ...any) Reply {
	d.mu.Lock()
	d.counts[code]++
	logIt, suppressed := d.rejected.allow(d.cfg.Now())
	d.mu.Unlock()
	if logIt {
		attrs := append([]any{"code", code, "command", req.name, "id", req.id, "reply_to", req.replyTo}, details...)
		if suppressed > 0 {
			attrs = append(attrs, "not_logged_before", suppressed)
		}
		d.log.Warn("command rejected: "+why, attrs...)
	}
	return Reply{ID: req.id, Error: &ReplyError{Code: code, Message: public}, Time: d.stamp()}
}

// finish publishes the reply and remembers it for the id, for a duplicate request.
func (d *Dispatcher) finish(req inFlight, reply Reply) {
	b := d.send(req, reply)
	d.mu.Lock()
	d.replay.done(req.id, b)
	d.mu.Unlock()
}

func (d *Dispatcher) send(req inFlight, reply Reply) []byte {
	b, err := json.Marshal(reply)
	if err != nil { // only Result could fail, and it is raw JSON checked by Marshal before
		d.log.Error("command reply not encoded", "command", req.name, "id", req.id, "error", err)
		return nil
	}
	d.t.Publish(req.replyTo, b, ReplyQoS, false)
	return b
}

func (d *Dispatcher) stamp() string { return d.cfg.Now().UTC().Format(time.RFC3339Nano) }

// logLimiter lets through at most rejectLogBurst rejection logs a second: a flood of
// garbage on the command topic must not flood the journal. The count of suppressed
// lines is reported with the next line let through.
type logLimiter struct {
	second     time.Time
	n          int
	suppressed int
}

const rejectLogBurst = 10

func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	if now.Sub(l.second) >= time.Second || now.Before(l.second) {
		l.second, l.n = now, 0
	}
	if l.n >= rejectLogBurst {
		l.suppressed++
		return false, 0
	}
	l.n++
	s := l.suppressed
	l.suppressed = 0
	return true, s
}
