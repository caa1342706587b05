package telemetry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgedepth/edgedepth/health"
)

// HealthComponent is the name under which the Publisher reports to health.Tracker.
const HealthComponent = "mqtt"

// stableSession is how long a connection must have lasted for its loss to count as
// an isolated event: the next attempt is immediate and the backoff starts over. A
// connection that keeps dropping sooner (two robots sharing a client id, a broker
// that accepts and then kicks us) backs off like a refused one.
const stableSession = 30 * time.Second

// Publisher sends messages to an MQTT broker on behalf of the whole daemon. See the
// package documentation for the queueing policy and the lifecycle.
type Publisher struct {
	cfg     MQTTConfig
	broker  *url.URL
	topics  Topics
	log     *slog.Logger
	health  *health.Tracker
	queue   *outQueue
	metrics *publisherMetrics

	connected    atomic.Bool
	running      atomic.Bool
	badTopicSeen atomic.Bool

	mu      sync.Mutex
	offline []byte         // the Last Will and shutdown payload; nil until set or Run
	subs    []subscription // append-only, so a session remembers how many it has made

	// Inbound messages: paho's router hands them to inbox without blocking and
	// Run's delivery goroutine passes them to the handlers (see Subscribe).
	inbox       chan inbound
	subsChanged chan struct{} // capacity 1: "Subscribe was called", for the live session
	receivedN   atomic.Uint64
	inDroppedN  atomic.Uint64
}

// NewPublisher checks cfg and prepares a Publisher for topics. It has no side
// effects: nothing connects, reads files or starts until Run. A nil log discards;
// a nil h uses a private tracker.
func NewPublisher(cfg MQTTConfig, topics Topics, log *slog.Logger, h *health.Tracker) (*Publisher, error) {
	robotID := topics.RobotID()
	if err := ValidateRobotID(robotID); err != nil {
		return nil, fmt.Errorf("mqtt publisher: topics %q: %w", topics.Prefix, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqtt publisher: %w", err)
	}
	cfg = cfg.withDefaults(robotID)
	broker, err := cfg.brokerURL()
	if err != nil {
		return nil, fmt.Errorf("mqtt publisher: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if h == nil {
		h = new(health.Tracker)
	}
	p := &Publisher{
		cfg:    cfg,
		broker: broker,
		topics: topics,
		log:    log.With("component", "mqtt", "broker", broker.String()),
		health: h,

		inbox:       make(chan inbound, InboxLen),
		subsChanged: make(chan struct{}, 1),
	}
	p.metrics = newPublisherMetrics(p.Connected, func() int { return p.queue.len() })
	p.metrics.collectors = append(p.metrics.collectors, p.receiveCollectors()...)
	p.queue = newOutQueue(cfg.MaxPendingTopics, cfg.EventQueueLen, p.metrics)
	return p, nil
}

// Publish queues payload for topic and returns at once: it never waits for the
// network. What happens to the message depends on the topic (see the package
// documentation): on the events topic it joins a bounded FIFO; on any other topic
// it replaces the message still waiting for that topic, if any. Messages queued
// while disconnected are sent once connected.
//
// Publish takes ownership of payload: the caller must not modify it afterwards
// (depth images are large; copying them per frame would cost more than encoding).
// qos is 0, 1 or 2; anything else is a programming error and panics. A topic that
// MQTT forbids in a PUBLISH (empty, or with a wildcard) is dropped and counted, since
// sending it would make the broker close the connection.
func (p *Publisher) Publish(topic string, payload []byte, qos byte, retained bool) {
	if qos > 2 {
		panic(fmt.Sprintf("telemetry: Publish %q with QoS %d; MQTT has QoS 0, 1 and 2", topic, qos))
	}
	if topic == "" || strings.ContainsAny(topic, "+#\x00") {
		p.metrics.dropped(kindOther)
		if p.badTopicSeen.CompareAndSwap(false, true) {
			p.log.Error("mqtt: dropping messages for an invalid topic (empty, wildcard or NUL); later ones are only counted", "topic", topic)
		}
		return
	}
	p.queue.push(message{topic: topic, payload: payload, qos: qos, retained: retained, kind: p.topics.kind(topic)})
}

// PublishJSON encodes v as JSON and publishes it like Publish. It fails only when v
// cannot be encoded.
func (p *Publisher) PublishJSON(topic string, v any, qos byte, retained bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("mqtt publish %s: encode: %w", topic, err)
	}
	p.Publish(topic, b, qos, retained)
	return nil
}

// SetOfflinePayload sets the retained status payload that says "offline": the Last
// Will, which the broker publishes when the connection vanishes, and the message
// published on a clean shutdown. It should be a Status with State "offline". Call it
// before Run; a change during Run takes effect for the Last Will at the next
// connection and for the shutdown message at once. The default is a Status with only
// state, robot_id and time set.
func (p *Publisher) SetOfflinePayload(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.offline = append([]byte(nil), b...)
}

func (p *Publisher) offlinePayload() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.offline == nil {
		p.offline = offlineStatus(p.topics.RobotID(), time.Now())
	}
	return p.offline
}

// Connected reports whether the Publisher holds an established connection now.
func (p *Publisher) Connected() bool { return p.connected.Load() }

// Stats returns the counters since NewPublisher.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{
		Published:       p.metrics.published.Load(),
		Coalesced:       p.metrics.coalescedN.Load(),
		Dropped:         p.metrics.droppedN.Load(),
		Reconnects:      p.metrics.reconnects.Load(),
		ConnectFailures: p.metrics.connectFailures.Load(),
		Pending:         p.queue.len(),
	}
}

// Run connects to the broker, keeps the connection up and sends the queue, until ctx
// is cancelled. A failed or lost connection is retried with capped exponential
// backoff and reported as the health warning HealthComponent; it is never an error.
// On cancellation Run sends pending events and the retained offline status (within
// ShutdownTimeout), disconnects cleanly, clears its health warning and returns nil.
// Run may be called once.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("mqtt publisher: Run called twice")
	}
	// Until the first connection the robot cannot report anything: that is degraded,
	// and says so if the first attempt hangs (an unreachable broker takes
	// ConnectTimeout to fail).
	p.health.Set(HealthComponent, fmt.Sprintf("connecting to broker %s", p.broker))
	// A stopped publisher is not a degraded one: whoever stopped it knows why.
	defer p.health.Clear(HealthComponent)

	var wg sync.WaitGroup
	wg.Go(func() { p.reportDrops(ctx) })
	wg.Go(func() { p.deliver(ctx) })
	defer wg.Wait()
	defer p.health.Clear(SubscribeHealthComponent)

	bo := backoff{min: p.cfg.ReconnectMin, max: p.cfg.ReconnectMax}
	var lastReason string
	established := 0
	wait := time.Duration(0)
	for {
		if wait > 0 && !sleepCtx(ctx, wait) {
			break
		}
		sess, err := p.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			p.metrics.connectFailures.Add(1)
			wait = bo.next()
			reason := describeConnectError(p.broker.String(), p.cfg, err)
			p.health.Set(HealthComponent, reason)
			if reason != lastReason {
				p.log.Warn("mqtt: cannot connect; retrying with backoff", "reason", reason, "error", err, "retry_in", wait.Round(time.Millisecond))
				lastReason = reason
			} else {
				p.log.Debug("mqtt: connection attempt failed", "error", err, "retry_in", wait.Round(time.Millisecond))
			}
			continue
		}

		if established > 0 {
			p.metrics.reconnects.Add(1)
		}
		established++
		lastReason = ""
		p.connected.Store(true)
		p.health.Clear(HealthComponent)
		p.log.Info("mqtt: connected", "client_id", p.cfg.ClientID, "reconnects", established-1)
		p.queue.requeueRetained()

		start := time.Now()
		err = p.serve(ctx, sess)
		p.connected.Store(false)
		if ctx.Err() != nil {
			p.shutdown(sess)
			return nil
		}
		// Whatever went wrong, this client is done: make sure its goroutines and socket
		// are too. paho warns against reusing a client after Disconnect, so the next
		// attempt builds a new one.
		sess.client.Disconnect(0)
		reason := describeLostError(p.broker.String(), p.cfg.ClientID, err)
		p.health.Set(HealthComponent, reason)
		p.log.Warn("mqtt: connection lost; reconnecting", "reason", reason, "error", err, "after", time.Since(start).Round(time.Millisecond))
		if time.Since(start) >= stableSession {
			bo.reset()
			wait = 0
		} else {
			wait = bo.next()
		}
	}

	// Cancelled while not connected: nothing can be said to the broker. If a Last
	// Will was armed, the broker has already published it.
	for _, m := range p.queue.close() {
		p.metrics.dropped(m.kind)
	}
	return nil
}

// session is one connection: a paho client used for exactly one connection.
type session struct {
	client     mqtt.Client
	lost       chan error // receives the reason once paho notices the connection is gone
	subscribed int        // how many of Publisher.subs this session has subscribed to
}

// connect makes one connection attempt, bounded by ConnectTimeout. Files named in the
// config (password, CA, client certificate) are read here, so that fixing them on the
// robot takes effect at the next attempt without a restart.
func (p *Publisher) connect(ctx context.Context) (*session, error) {
	cfg := p.cfg
	opts := mqtt.NewClientOptions()
	opts.AddBroker(p.broker.String())
	opts.SetClientID(cfg.ClientID)
	opts.SetProtocolVersion(4) // MQTT 3.1.1; without this paho silently retries 3.1 after a refusal
	opts.SetCleanSession(true) // our queue, not the broker's session, carries messages across outages
	// Our own loop reconnects: paho's auto-reconnect reports QoS 0 publishes as done
	// while it holds them and would hide the health state from us.
	opts.SetAutoReconnect(false)
	opts.SetConnectRetry(false)
	opts.SetKeepAlive(cfg.KeepAlive)
	opts.SetPingTimeout(max(time.Second, cfg.KeepAlive/2))
	opts.SetConnectTimeout(cfg.ConnectTimeout)
	opts.SetWriteTimeout(cfg.WriteTimeout)
	// Incoming messages (commands, later) must be handed off, never handled on paho's
	// network goroutine: a slow handler there stalls keep-alive pings.
	opts.SetOrderMatters(false)
	opts.SetBinaryWill(p.topics.Status(), p.offlinePayload(), 1, true)

	tc, err := cfg.ApplyAuth(opts)
	if err != nil {
		return nil, err
	}

	// paho dials without a context, so a stop request would wait out ConnectTimeout
	// against an unresponsive broker. We dial TCP and TLS ourselves and close the
	// connection if ctx ends before the MQTT handshake completes. (WebSocket URLs
	// keep paho's dialer and wait.)
	var dialed net.Conn
	var dialMu sync.Mutex
	if !strings.HasPrefix(p.broker.Scheme, "ws") {
		opts.SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			nd := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
			var conn net.Conn
			var err error
			if tc != nil {
				conn, err = (&tls.Dialer{NetDialer: nd, Config: tc}).DialContext(ctx, "tcp", u.Host)
			} else {
				conn, err = nd.DialContext(ctx, "tcp", u.Host)
			}
			if err != nil {
				return nil, err
			}
			dialMu.Lock()
			dialed = conn
			dialMu.Unlock()
			if err := ctx.Err(); err != nil { // cancelled before dialed was set
				_ = conn.Close()
				return nil, err
			}
			return conn, nil
		})
	}
	stopAbort := context.AfterFunc(ctx, func() {
		dialMu.Lock()
		defer dialMu.Unlock()
		if dialed != nil {
			_ = dialed.Close()
		}
	})

	sess := &session{lost: make(chan error, 1)}
	opts.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		select {
		case sess.lost <- err:
		default:
		}
	})
	sess.client = mqtt.NewClient(opts)
	tok := sess.client.Connect()
	<-tok.Done()
	// From here on a cancelled ctx means "shut down cleanly", which needs the
	// connection: stop the abort. If it already fired, the handshake failed or the
	// connection will be reported lost, and Run sees ctx.Err() either way.
	stopAbort()
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return sess, nil
}

// serve subscribes to the registered filters, then sends the queue over sess until
// the connection is lost (the reason is returned) or ctx is cancelled (ctx.Err() is
// returned). Filters registered meanwhile are subscribed between two batches.
func (p *Publisher) serve(ctx context.Context, sess *session) error {
	if err := p.subscribeNew(ctx, sess); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := p.queue.take()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case err := <-sess.lost:
				return err
			case <-p.queue.ready:
				continue
			case <-p.subsChanged:
				if err := p.subscribeNew(ctx, sess); err != nil {
					return err
				}
				continue
			}
		}
		if err := p.send(ctx, sess, batch); err != nil {
			return err
		}
	}
}

// send publishes batch and waits until each message is confirmed: QoS 0 written to
// the connection, QoS 1 and 2 acknowledged. Only one batch is in flight at a time,
// so on a slow link new messages wait in our queue, where newer states replace older
// ones, instead of piling up in paho's buffers and the socket. Messages not
// confirmed when the connection fails go back to the queue.
func (p *Publisher) send(ctx context.Context, sess *session, batch []message) error {
	tokens := make([]mqtt.Token, len(batch))
	for i, m := range batch {
		tokens[i] = sess.client.Publish(m.topic, m.qos, m.retained, m.payload)
	}
	for i, tok := range tokens {
		var failure error
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				failure = fmt.Errorf("publish on %s: %w", batch[i].topic, err)
			}
		case err := <-sess.lost:
			failure = err
		case <-ctx.Done():
			failure = ctx.Err()
		}
		if failure != nil {
			p.requeueUnconfirmed(batch[i:], tokens[i:])
			return failure
		}
		p.confirmed(batch[i])
	}
	return nil
}

// requeueUnconfirmed puts back the messages whose tokens have not completed
// successfully, and counts those that have.
func (p *Publisher) requeueUnconfirmed(batch []message, tokens []mqtt.Token) {
	var again []message
	for i, tok := range tokens {
		select {
		case <-tok.Done():
			if tok.Error() == nil {
				p.confirmed(batch[i])
				continue
			}
		default:
		}
		again = append(again, batch[i])
	}
	p.queue.requeue(again)
}

func (p *Publisher) confirmed(m message) {
	p.metrics.sent(m)
	p.queue.sent(m)
}

// shutdown ends a live session cleanly: pending events, then the retained offline
// status, then DISCONNECT, all within ShutdownTimeout. Pending depth, previews and
// poses are dropped: they describe a robot that is about to stop, and on a slow link
// they would delay the one message that matters now. A clean DISCONNECT makes the
// broker discard the Last Will, which is why the offline status is sent explicitly.
func (p *Publisher) shutdown(sess *session) {
	deadline := time.NewTimer(p.cfg.ShutdownTimeout)
	defer deadline.Stop()

	var final []message
	for _, m := range p.queue.close() {
		switch {
		case m.kind.ordered():
			final = append(final, m)
		case m.topic == p.topics.Status():
			p.metrics.coalesced(m.kind) // superseded by the offline status
		default:
			p.metrics.dropped(m.kind)
		}
	}
	final = append(final, message{
		topic: p.topics.Status(), payload: p.offlinePayload(), qos: 1, retained: true, kind: kindStatus,
	})

	sent := 0
	tokens := make([]mqtt.Token, 0, len(final))
	for _, m := range final {
		tokens = append(tokens, sess.client.Publish(m.topic, m.qos, m.retained, m.payload))
	}
wait:
	for i, tok := range tokens {
		select {
		case <-tok.Done():
			if tok.Error() != nil {
				break wait
			}
			p.metrics.sent(final[i])
			sent++
		case <-sess.lost:
			break wait
		case <-deadline.C:
			break wait
		}
	}
	for _, m := range final[sent:] {
		p.metrics.dropped(m.kind)
	}
	if sent < len(final) {
		p.log.Warn("mqtt: shutdown could not send everything; the broker will publish the Last Will when it notices", "unsent", len(final)-sent)
	}
	// The quiesce lets the DISCONNECT reach the broker; it is in milliseconds.
	sess.client.Disconnect(250)
	p.log.Info("mqtt: disconnected", "published", p.metrics.published.Load())
}

// reportDrops logs, at most once a second, how many messages were dropped, outgoing
// and received: a per-message log line would flood the journal exactly when the link
// is poor.
func (p *Publisher) reportDrops(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last, lastIn := p.metrics.droppedN.Load(), p.inDroppedN.Load()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := p.metrics.droppedN.Load()
			if now > last {
				p.log.Warn("mqtt: dropped messages (queue full)", "dropped", now-last, "dropped_total", now, "connected", p.Connected())
			}
			last = now
			in := p.inDroppedN.Load()
			if in > lastIn {
				p.log.Warn("mqtt: dropped received messages (handlers too slow)", "dropped", in-lastIn, "dropped_total", in, "inbox", InboxLen)
			}
			lastIn = in
		}
	}
}

// InboxLen bounds the received messages waiting for their handlers, in messages.
// Beyond it new ones are dropped and counted: paho's router must never wait for us,
// since it also carries the acknowledgements and keep-alive answers of the connection.
const InboxLen = 64

// SubscribeHealthComponent is the health.Tracker component under which the Publisher
// reports a subscription the broker refused (usually an ACL that does not grant it).
const SubscribeHealthComponent = "mqtt_subscribe"

// subscription is one Subscribe call.
type subscription struct {
	filter  string
	qos     byte
	handler func(topic string, payload []byte)
}

// inbound is a received message on its way to its handler.
type inbound struct {
	handler func(topic string, payload []byte)
	topic   string
	payload []byte
}

// ReceiveStats are the counters of received messages since NewPublisher.
type ReceiveStats struct {
	// Received counts messages handed to the inbox for a handler.
	Received uint64
	// Dropped counts messages discarded because InboxLen messages were already
	// waiting for their handlers.
	Dropped uint64
}

// Subscribe registers handler for the messages matching the MQTT topic filter
// (wildcards allowed), requested with QoS qos. It may be called before Run or during
// it; the subscription is made at every connection, because sessions are clean: the
// broker forgets them when the connection ends, and whatever was published to the
// filter while we were away is lost. A reconnection is the only gap.
//
// handler is called from one goroutine owned by Run, one message at a time, in the
// order received; it must return quickly (hand long work to a goroutine of its own),
// since messages wait for it in a bounded inbox (InboxLen) and are dropped and
// counted (ReceiveStats, the log once a second) when it is full. A slow handler never
// delays paho's keep-alive. handler owns payload.
//
// Each filter may be registered once (paho keeps one handler per filter); an empty
// or duplicate filter, a nil handler or a QoS above 2 is a programming error and
// panics. A filter the broker refuses is logged and reported as the health warning
// SubscribeHealthComponent; the connection stays up for publishing.
func (p *Publisher) Subscribe(filter string, qos byte, handler func(topic string, payload []byte)) {
	if qos > 2 || filter == "" || handler == nil || strings.ContainsRune(filter, 0) {
		panic(fmt.Sprintf("telemetry: Subscribe(%q, QoS %d, handler nil %v): need a non-empty filter, QoS 0-2 and a handler", filter, qos, handler == nil))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.subs {
		if s.filter == filter {
			panic(fmt.Sprintf("telemetry: Subscribe(%q) twice; paho keeps one handler per filter", filter))
		}
	}
	p.subs = append(p.subs, subscription{filter: filter, qos: qos, handler: handler})
	select {
	case p.subsChanged <- struct{}{}:
	default: // a wake-up is already pending; it covers this subscription too
	}
}

// ReceiveStats returns the counters of received messages since NewPublisher.
func (p *Publisher) ReceiveStats() ReceiveStats {
	return ReceiveStats{Received: p.receivedN.Load(), Dropped: p.inDroppedN.Load()}
}

// subscribeNew subscribes sess to the filters registered since its last call, and
// waits for the broker's answer (bounded by WriteTimeout, like a publish). A refused
// filter is reported but keeps the connection; a failure to get an answer at all is
// returned, and costs the connection, as a stalled publish would.
func (p *Publisher) subscribeNew(ctx context.Context, sess *session) error {
	p.mu.Lock()
	pending := append([]subscription(nil), p.subs[sess.subscribed:]...)
	p.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	timeout := time.NewTimer(p.cfg.WriteTimeout)
	defer timeout.Stop()
	var refused []string
	for _, s := range pending {
		h := s.handler
		tok := sess.client.Subscribe(s.filter, s.qos, func(_ mqtt.Client, m mqtt.Message) {
			p.receive(h, m.Topic(), m.Payload())
		})
		select {
		case <-tok.Done():
		case err := <-sess.lost:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("subscribe %s: no SUBACK within %v", s.filter, p.cfg.WriteTimeout)
		}
		if err := tok.Error(); err != nil {
			return fmt.Errorf("subscribe %s: %w", s.filter, err)
		}
		// 0x80 in the SUBACK is the broker's "no": in practice an ACL.
		if st, ok := tok.(*mqtt.SubscribeToken); ok && st.Result()[s.filter] == 0x80 {
			refused = append(refused, s.filter)
			continue
		}
		p.log.Debug("mqtt: subscribed", "filter", s.filter, "qos", s.qos)
	}
	sess.subscribed += len(pending)
	if len(refused) > 0 {
		msg := fmt.Sprintf("broker %s refused the subscription to %s: check the broker's ACL for client %s (user %q)",
			p.broker, strings.Join(refused, ", "), p.cfg.ClientID, p.cfg.Username)
		p.health.Set(SubscribeHealthComponent, msg)
		p.log.Error("mqtt: subscription refused; commands or other inputs on it will not arrive", "filters", refused, "reason", msg)
	} else if sess.subscribed == len(pending) {
		// Every filter of this session is in place (the first call of a session
		// covers them all): a refusal reported for an earlier session is over.
		p.health.Clear(SubscribeHealthComponent)
	}
	return nil
}

// receive runs on paho's router goroutine: it must never block.
func (p *Publisher) receive(h func(string, []byte), topic string, payload []byte) {
	select {
	case p.inbox <- inbound{handler: h, topic: topic, payload: payload}:
		p.receivedN.Add(1)
	default:
		p.inDroppedN.Add(1)
	}
}

// deliver hands received messages to their handlers until ctx is cancelled. Messages
// still in the inbox then are not delivered: their handlers belong to parts that are
// shutting down too.
func (p *Publisher) deliver(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-p.inbox:
			m.handler(m.topic, m.payload)
		}
	}
}

func (p *Publisher) receiveCollectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "edgedepth", Subsystem: "mqtt", Name: "messages_received_total",
			Help: "Messages received on subscribed topics and queued for their handlers.",
		}, func() float64 { return float64(p.receivedN.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "edgedepth", Subsystem: "mqtt", Name: "received_dropped_total",
			Help: "Received messages dropped because their handlers were too slow (inbox full).",
		}, func() float64 { return float64(p.inDroppedN.Load()) }),
	}
}

// backoff yields capped exponential waits with ±20 % jitter.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return min(b.max, time.Duration(float64(b.cur)*(0.8+0.4*rand.Float64())))
}

func (b *backoff) reset() { b.cur = 0 }

// sleepCtx waits d and reports whether ctx is still alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// readPasswordFile returns the password in path, without the trailing newline that
// editors and `echo` add.
func readPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &configError{fmt.Sprintf("cannot read mqtt.password_file: %v", err), err}
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", &configError{fmt.Sprintf("mqtt.password_file %s is empty", path), nil}
	}
	return pw, nil
}

// tlsConfig builds the client TLS configuration from the files named in c.
// ApplyAuth sets the credentials (mqtt.username, password or password_file) and, for a
// TLS broker URL, the TLS configuration (ca_file, cert_file, key_file,
// insecure_skip_verify) on opts, for any client of the configured broker. It returns
// the TLS configuration (nil for a plain URL).
func (c MQTTConfig) ApplyAuth(opts *mqtt.ClientOptions) (*tls.Config, error) {
	if c.Username != "" {
		opts.SetUsername(c.Username)
	}
	switch {
	case c.Password != "":
		opts.SetPassword(c.Password)
	case c.PasswordFile != "":
		pw, err := readPasswordFile(c.PasswordFile)
		if err != nil {
			return nil, err
		}
		opts.SetPassword(pw)
	}
	scheme, _, _ := strings.Cut(c.BrokerURL, "://")
	if !isTLSScheme(strings.ToLower(scheme)) {
		return nil, nil
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	opts.SetTLSConfig(tc)
	return tc, nil
}

func (c MQTTConfig) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // opt-in, documented as bench-only
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, &configError{fmt.Sprintf("cannot read mqtt.ca_file: %v", err), err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &configError{fmt.Sprintf("mqtt.ca_file %s holds no PEM certificate", c.CAFile), nil}
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, &configError{fmt.Sprintf("cannot load the client certificate mqtt.cert_file %s / mqtt.key_file %s: %v", c.CertFile, c.KeyFile, err), err}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
