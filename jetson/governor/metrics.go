package governor

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the governor to Prometheus, read at scrape time:
//
//	edgedepth_governor_duty_cycle          the trainer's duty cycle, 0..1
//	edgedepth_governor_state{state}        1 for the current state, 0 for the others
//	edgedepth_governor_changes_total       changes reported through OnChange
//	edgedepth_governor_stops_total{limit}  stops by the limit that caused them
//
// Every state and limit is exported from the start, so alerts work before the first
// stop. Register it once.
func (g *Governor) Collector() prometheus.Collector { return collector{g} }

var (
	dutyDesc = prometheus.NewDesc("edgedepth_governor_duty_cycle",
		"Fraction of wall-clock time the on-robot trainer may run (0 when stopped).", nil, nil)
	stateDesc = prometheus.NewDesc("edgedepth_governor_state",
		"1 for the training governor's current state (running, resuming, backing-off, stopped), 0 for the others.",
		[]string{"state"}, nil)
	changesDesc = prometheus.NewDesc("edgedepth_governor_changes_total",
		"Changes of the training governor's decision reported as events.", nil, nil)
	stopsDesc = prometheus.NewDesc("edgedepth_governor_stops_total",
		"Times training was stopped, by the limit that stopped it (temperature, power, latency).",
		[]string{"limit"}, nil)
)

type collector struct{ g *Governor }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dutyDesc
	ch <- stateDesc
	ch <- changesDesc
	ch <- stopsDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	d := c.g.Current()
	st := c.g.Stats()
	ch <- prometheus.MustNewConstMetric(dutyDesc, prometheus.GaugeValue, d.DutyCycle)
	for s := range numStates {
		v := 0.0
		if s == d.State {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, s.String())
	}
	ch <- prometheus.MustNewConstMetric(changesDesc, prometheus.CounterValue, float64(st.Changes))
	for _, l := range stopLimits {
		ch <- prometheus.MustNewConstMetric(stopsDesc, prometheus.CounterValue, float64(st.Stops[l]), string(l))
	}
}
