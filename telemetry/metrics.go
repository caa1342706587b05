package telemetry

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// PublisherStats are the Publisher's counters since NewPublisher.
type PublisherStats struct {
	// Published counts messages the broker took: for QoS 0 written to the
	// connection, for QoS 1 and 2 acknowledged by the broker.
	Published uint64
	// Coalesced counts messages replaced by a newer message on the same topic before
	// they were sent (the latest-wins policy at work, normal on a slow link).
	Coalesced uint64
	// Dropped counts messages discarded unsent: the oldest events when the event
	// queue was full, messages for new topics when MaxPendingTopics were pending,
	// and whatever was still queued when the shutdown ran out of time.
	Dropped uint64
	// Reconnects counts connections established after the first one.
	Reconnects uint64
	// ConnectFailures counts failed connection attempts.
	ConnectFailures uint64
	// Pending is the number of messages waiting to be sent now.
	Pending int
}

// publisherMetrics keeps every counter twice over: plain atomics for Stats, and
// Prometheus counters by topic kind for /metrics. The children for each kind are
// resolved once, so the hot path indexes an array instead of hashing label values.
type publisherMetrics struct {
	published, coalescedN, droppedN, reconnects, connectFailures atomic.Uint64

	publishedBy, bytesBy, coalescedBy, droppedBy [numKinds]prometheus.Counter

	collectors []prometheus.Collector
}

func newPublisherMetrics(connected func() bool, pending func() int) *publisherMetrics {
	m := &publisherMetrics{}
	vec := func(name, help string, by *[numKinds]prometheus.Counter) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgedepth", Subsystem: "mqtt", Name: name, Help: help,
		}, []string{"kind"})
		for k := range numKinds {
			// Every kind is exported from the start at zero, so that rate() and
			// alerts work before the first message of a kind.
			by[k] = v.WithLabelValues(k.String())
		}
		return v
	}
	reconnects := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "edgedepth", Subsystem: "mqtt", Name: "reconnects_total",
		Help: "Connections to the MQTT broker established after the first one.",
	}, func() float64 { return float64(m.reconnects.Load()) })
	failures := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "edgedepth", Subsystem: "mqtt", Name: "connect_failures_total",
		Help: "Failed connection attempts to the MQTT broker.",
	}, func() float64 { return float64(m.connectFailures.Load()) })
	connectedG := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "edgedepth", Subsystem: "mqtt", Name: "connected",
		Help: "1 while connected to the MQTT broker, else 0.",
	}, func() float64 {
		if connected() {
			return 1
		}
		return 0
	})
	pendingG := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "edgedepth", Subsystem: "mqtt", Name: "queued_messages",
		Help: "Messages waiting in the outgoing queue.",
	}, func() float64 { return float64(pending()) })
	m.collectors = []prometheus.Collector{
		vec("messages_published_total", "Messages taken by the MQTT broker (QoS 0: written; QoS 1-2: acknowledged), by topic kind.", &m.publishedBy),
		vec("published_bytes_total", "Payload bytes of published messages, by topic kind.", &m.bytesBy),
		vec("messages_coalesced_total", "Messages replaced by a newer one on the same topic before being sent, by topic kind.", &m.coalescedBy),
		vec("messages_dropped_total", "Messages discarded unsent (queue full or shutdown), by topic kind.", &m.droppedBy),
		reconnects, failures, connectedG, pendingG,
	}
	return m
}

func (m *publisherMetrics) coalesced(k topicKind) {
	m.coalescedN.Add(1)
	m.coalescedBy[k].Inc()
}

func (m *publisherMetrics) dropped(k topicKind) {
	m.droppedN.Add(1)
	m.droppedBy[k].Inc()
}

func (m *publisherMetrics) sent(msg message) {
	m.published.Add(1)
	m.publishedBy[msg.kind].Inc()
	m.bytesBy[msg.kind].Add(float64(len(msg.payload)))
}

// Describe implements prometheus.Collector, so that the owner can register the
// Publisher on its registry: reg.MustRegister(pub).
func (p *Publisher) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range p.metrics.collectors {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (p *Publisher) Collect(ch chan<- prometheus.Metric) {
	for _, c := range p.metrics.collectors {
		c.Collect(ch)
	}
}
