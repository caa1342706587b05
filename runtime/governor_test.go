package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/stereo"
	"github.com/edgedepth/edgedepth/jetson/governor"
	"github.com/edgedepth/edgedepth/runtime/config"
	"github.com/edgedepth/edgedepth/telemetry"
	"github.com/edgedepth/edgedepth/telemetry/mqtttest"
	"github.com/edgedepth/edgedepth/trainer"
)

// recordingLearner is a learner that records what the governor asks of it.
type recordingLearner struct {
	mu     sync.Mutex
	duty   float64
	paused bool
	calls  []string
}

func (l *recordingLearner) SetDuty(duty float64) error {
	if !(duty > 0 && duty <= 1) {
		return fmt.Errorf("duty %g out of (0, 1]", duty)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.duty = duty
	l.calls = append(l.calls, fmt.Sprintf("duty %.3f", duty))
	return nil
}

func (l *recordingLearner) Pause() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paused = true
	l.calls = append(l.calls, "pause")
}

func (l *recordingLearner) Resume() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paused = false
	l.calls = append(l.calls, "resume")
}

func (l *recordingLearner) state() (duty float64, paused bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.duty, l.paused
}

// fakeJetson is a filesystem root laid out as an Orin's: the L4T release file, one
// thermal zone (tj-thermal) and one INA3221 channel (VDD_IN), whose readings the test
// sets between samples. The governor's platform.Sampler reads them as on a board.
type fakeJetson struct {
	t    *testing.T
	root string
}

func newFakeJetson(t *testing.T) *fakeJetson {
	j := &fakeJetson{t: t, root: t.TempDir()}
	hw := "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
	j.write("etc/nv_tegra_release", "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n")
	j.write("sys/class/thermal/thermal_zone0/type", "tj-thermal\n")
	j.write(hw+"/in1_label", "VDD_IN\n")
	j.write(hw+"/in1_input", "5000\n") // mV
	j.set(40, 5)
	return j
}

func (j *fakeJetson) write(rel, content string) {
	p := filepath.Join(j.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		j.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		j.t.Fatal(err)
	}
}

// set writes the temperature in °C and the input power in W (at 5 V).
func (j *fakeJetson) set(tempC, powerW float64) {
	j.write("sys/class/thermal/thermal_zone0/temp", fmt.Sprintf("%d\n", int(tempC*1000)))
	j.write("sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1/curr1_input", fmt.Sprintf("%d\n", int(powerW/5*1000)))
}

// governorRig is a daemon with the training governor on a fake Jetson, a recording
// learner and a recorder of the events, driven sample by sample by the test.
type governorRig struct {
	t       *testing.T
	d       *Daemon
	gov     *trainingGovernor
	jetson  *fakeJetson
	learner *recordingLearner
	applied chan governor.Decision
	stop    func() // ends the follower; deferred by the test
	t0      time.Time
	n       int // samples so far

	mu     sync.Mutex
	events []telemetry.Event
}

func newGovernorRig(t *testing.T, cfg governor.Config) *governorRig {
	r := &governorRig{t: t, jetson: newFakeJetson(t), learner: &recordingLearner{}, applied: make(chan governor.Decision, 64),
		t0: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	r.d = New(config.Default(), slog.New(slog.DiscardHandler), "test") // the sim at 10 fps: a 100 ms frame period
	gov, err := newTrainingGovernor(governorOptions{
		Config: cfg, Root: r.jetson.root, FramePeriod: r.d.framePeriod(nil), Learner: r.learner,
		Log: slog.New(slog.DiscardHandler),
		Publish: func(ev telemetry.Event) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.events = append(r.events, ev)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if gov.sampler == nil {
		t.Fatal("the fake Jetson was not probed as one: no sampler")
	}
	t.Cleanup(func() { gov.Close() })
	gov.applied = func(d governor.Decision) { r.applied <- d }
	r.gov, r.d.gov = gov, gov
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		gov.follow(ctx, nil)
	}()
	r.stop = func() { cancel(); <-done }
	<-r.applied // follow's first application
	return r
}

// sample sets the board's readings, lets the depth actor report ten pairs of inference
// latency lat, and takes one governor sample a second after the previous one, as Run
// does; it waits until a change of duty cycle or state has reached the learner.
func (r *governorRig) sample(tempC, powerW float64, lat time.Duration) governor.Decision {
	r.t.Helper()
	r.jetson.set(tempC, powerW)
	for range 10 {
		r.d.observeInference(lat)
	}
	var in governor.Inputs
	r.gov.src.Sample(&in)
	prev := r.gov.g.Current()
	dec := r.gov.g.Step(r.t0.Add(time.Duration(r.n)*time.Second), in)
	r.n++
	if dec.DutyCycle != prev.DutyCycle || dec.State != prev.State {
		timeout := time.After(10 * time.Second)
		for applied := false; !applied; {
			select {
			case a := <-r.applied:
				applied = a.At.Equal(dec.At)
			case <-timeout:
				r.t.Fatalf("sample %d: decision %+v not applied to the learner", r.n, dec)
			}
		}
	}
	return dec
}

func (r *governorRig) eventLog() []telemetry.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]telemetry.Event(nil), r.events...)
}

// TestGovernorFollowsATrace replays a simulated day in the life of a Jetson through the
// daemon's wiring (thermal zone and power rail files read by the platform sampler, the
// depth actor's latency report, the governor, the learner, the events): the trainer
// reaches its duty cycle, backs off as the SoC warms, stops at the hard limit, stays
// stopped for the operator who paused it while the governor would resume, resumes when
// cool and the operator agrees, halves for an inference latency spike and for power over
// budget. Every change is an event and every state reaches the metrics.
func TestGovernorFollowsATrace(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tc := config.Default().Training
	tc.Duty = 0.5
	gc := tc.GovernorConfig()
	gc.PowerBudgetW = 10
	if gc.MaxDutyCycle != 0.5 {
		t.Fatalf("max_duty_cycle %g, want training.duty 0.5", gc.MaxDutyCycle)
	}
	r := newGovernorRig(t, gc)
	defer r.stop()
	const cool, fast, slow = 50.0, 20 * time.Millisecond, 95 * time.Millisecond // the latency limit: 80 ms of 100
	if duty, paused := r.learner.state(); duty != gc.MinDutyCycle || paused {
		t.Fatalf("at start: learner duty %g paused %v, want the minimum %g, running", duty, paused, gc.MinDutyCycle)
	}
	var reportable []governor.Decision // state or limit changes: each must be an event
	last := r.gov.g.Current()
	step := func(tempC, powerW float64, lat time.Duration) governor.Decision {
		t.Helper()
		d := r.sample(tempC, powerW, lat)
		if d.State != last.State || d.Limit != last.Limit {
			reportable = append(reportable, d)
		}
		last = d
		return d
	}

	// Cool, quiet: the duty cycle climbs to training.duty.
	var d governor.Decision
	for range 30 {
		d = step(cool, 5, fast)
	}
	if duty, paused := r.learner.state(); d.State != governor.Running || duty != 0.5 || paused {
		t.Fatalf("cool: %+v, learner duty %g paused %v; want running at 0.5", d, duty, paused)
	}

	// The SoC warms up to 80 °C: the duty cycle comes down before the hard limit.
	minWarm := 1.0
	for c := 66.0; c <= 80; c++ {
		d = step(c, 6, fast)
		duty, _ := r.learner.state()
		minWarm = min(minWarm, duty)
	}
	if duty, paused := r.learner.state(); d.State != governor.BackingOff || d.Limit != governor.LimitTemperature || duty >= 0.3 || paused {
		t.Fatalf("at 80 °C: %+v, learner duty %g paused %v; want backing off for temperature below 0.3", d, duty, paused)
	}

	// A spike to 86 °C: stopped at once.
	d = step(86, 6, fast)
	if _, paused := r.learner.state(); d.State != governor.Stopped || d.Limit != governor.LimitTemperature || !paused {
		t.Fatalf("at 86 °C: %+v, learner paused %v; want stopped for temperature", d, paused)
	}
	// An operator pauses too, and resumes while it is still hot: the stop holds.
	r.d.pauseLearner()
	if why := r.gov.operatorResume(); why == "" {
		t.Fatal("operator resume during a thermal stop: want the governor's reason for holding")
	}
	if _, paused := r.learner.state(); !paused {
		t.Fatal("an operator's resume overrode the thermal stop")
	}
	r.d.pauseLearner() // and pauses again
	for range 5 {
		d = step(80, 6, fast)
	}
	if d.State != governor.Stopped {
		t.Fatalf("at 80 °C after a stop: %+v, want still stopped (resume at %g °C)", d, gc.ResumeC)
	}

	// Cool again: the governor resumes, but the operator's pause wins.
	for d.State == governor.Stopped {
		d = step(60, 5, fast)
		if r.n > 200 {
			t.Fatalf("never resumed: %+v", d)
		}
	}
	if duty, paused := r.learner.state(); d.State != governor.Resuming || !paused || duty != gc.MinDutyCycle {
		t.Fatalf("after cooling: %+v, learner duty %g paused %v; want resuming at %g with the learner still paused for the operator",
			d, duty, paused, gc.MinDutyCycle)
	}
	for range 3 {
		step(60, 5, fast)
	}
	if _, paused := r.learner.state(); !paused {
		t.Fatal("the governor resumed a learner the operator paused")
	}
	if st := r.d.budgetStatus(); !st.OperatorPaused || st.State != "resuming" {
		t.Fatalf("budget status %+v", st)
	}
	if why := r.gov.operatorResume(); why != "" {
		t.Fatalf("operator resume when cool: held (%s)", why)
	}
	if _, paused := r.learner.state(); paused {
		t.Fatal("the operator's resume did not resume the learner")
	}
	for range 10 {
		d = step(60, 5, fast)
	}
	before, _ := r.learner.state()

	// An inference latency spike halves the duty cycle in the same sample.
	d = step(60, 5, slow)
	if duty, _ := r.learner.state(); d.Limit != governor.LimitLatency || duty > before/2+1e-9 {
		t.Fatalf("latency spike: %+v, learner duty %g (before %g); want halved for latency", d, duty, before)
	}
	// Latency that stays over the limit stops training at the minimum.
	for d.State != governor.Stopped {
		d = step(60, 5, slow)
		if r.n > 400 {
			t.Fatalf("never stopped for latency: %+v", d)
		}
	}
	if _, paused := r.learner.state(); d.Limit != governor.LimitLatency || !paused {
		t.Fatalf("latency stop: %+v, learner paused %v", d, paused)
	}
	for d.State == governor.Stopped {
		d = step(60, 5, fast)
		if r.n > 600 {
			t.Fatalf("never resumed after the latency stop: %+v", d)
		}
	}
	if _, paused := r.learner.state(); paused {
		t.Fatalf("after the latency stop cleared: %+v, learner still paused", d)
	}

	// Power over the 10 W budget halves the duty cycle.
	for range 20 {
		d = step(60, 5, fast)
	}
	before, _ = r.learner.state()
	for range 5 {
		d = step(60, 14, fast)
	}
	if duty, _ := r.learner.state(); d.Limit != governor.LimitPower || duty >= before {
		t.Fatalf("over the power budget: %+v, learner duty %g (before %g)", d, duty, before)
	}

	// Every change was an event, with the decision's fields; the metrics count them.
	events := r.eventLog()
	st := r.gov.g.Stats()
	if uint64(len(events)) != st.Changes {
		t.Errorf("%d events for %d reported changes", len(events), st.Changes)
	}
	at := map[int64]telemetry.Event{}
	for _, e := range events {
		if e.Kind != "training_budget" {
			t.Errorf("event kind %q", e.Kind)
		}
		for _, k := range []string{"duty_cycle", "state", "reason"} {
			if _, ok := e.Fields[k]; !ok {
				t.Errorf("event %q lacks %s", e.Message, k)
			}
		}
		at[e.Time.UnixNano()] = e
	}
	for _, dec := range reportable {
		e, ok := at[dec.At.UnixNano()]
		if !ok {
			t.Errorf("no event for the change to %s (%s) at %s", dec.State, dec.Limit, dec.At)
			continue
		}
		if e.Fields["state"] != dec.State.String() || string(dec.Limit) != fieldString(e.Fields["limit"]) {
			t.Errorf("event %v for decision %+v", e.Fields, dec)
		}
	}
	var sawOperator bool
	for _, e := range events {
		sawOperator = sawOperator || e.Fields["operator_paused"] == true
	}
	if !sawOperator {
		t.Error("no event said the operator's pause held the learner")
	}
	if st.Stops[governor.LimitTemperature] != 1 || st.Stops[governor.LimitLatency] != 1 {
		t.Errorf("stops %v, want one for temperature and one for latency", st.Stops)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.gov.g.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"edgedepth_governor_duty_cycle", "edgedepth_governor_state", "edgedepth_governor_changes_total", "edgedepth_governor_stops_total"} {
		if !names[n] {
			t.Errorf("metrics lack %s", n)
		}
	}
	t.Logf("%d samples, %d events, stops %v; learner calls: %s", r.n, len(events), st.Stops, strings.Join(r.learner.calls, ", "))
}

func fieldString(v any) string {
	s, _ := v.(string)
	return s
}

// TestOperatorDutyIsACeiling: training/set duty caps the governor's duty cycle; the
// governor never raises the learner above it.
func TestOperatorDutyIsACeiling(t *testing.T) {
	tc := config.Default().Training
	tc.Duty = 0.5
	r := newGovernorRig(t, tc.GovernorConfig())
	defer r.stop()
	if err := r.d.setLearnerDuty(0.2); err != nil {
		t.Fatal(err)
	}
	if err := r.d.setLearnerDuty(0); err == nil {
		t.Error("duty 0 accepted")
	}
	var d governor.Decision
	for range 30 {
		d = r.sample(50, 5, 10*time.Millisecond)
	}
	if duty, _ := r.learner.state(); d.DutyCycle != 0.5 || duty != 0.2 {
		t.Fatalf("governor %+v, learner duty %g; want 0.5 and 0.2", d, duty)
	}
	if st := r.d.budgetStatus(); st.OperatorDuty != 0.2 || st.DutyCycle != 0.5 {
		t.Errorf("budget status %+v", st)
	}
	// The reason carries the board's reading, through the platform sampler.
	if !strings.Contains(d.Reason, "temperature 50.0") {
		t.Errorf("reason %q does not show the board's temperature", d.Reason)
	}
}

// TestFramePeriod: configured where the configuration states it, measured by the
// stereo pairing for RTSP, else from the pairs' arrival.
func TestFramePeriod(t *testing.T) {
	sc := config.Default().Source
	sc.Sim.FPS = 20
	if p := sourceFramePeriod(sc, nil, nil, nil)(); p != 50*time.Millisecond {
		t.Errorf("sim at 20 fps: %s", p)
	}
	sc.Kind = "rtsp"
	sc.RTSP.Pairing.FramePeriod = 40 * time.Millisecond
	if p := sourceFramePeriod(sc, nil, nil, nil)(); p != 40*time.Millisecond {
		t.Errorf("rtsp configured: %s", p)
	}
	sc.RTSP.Pairing.FramePeriod = 0
	src := &statsSource{st: stereo.Stats{Pairing: stereo.PairStats{PeriodLeft: 33 * time.Millisecond, PeriodRight: 34 * time.Millisecond}}}
	if p := sourceFramePeriod(sc, src, nil, nil)(); p != 34*time.Millisecond {
		t.Errorf("rtsp measured: %s, want the slower camera's 34ms", p)
	}
	src.st = stereo.Stats{SideBySide: true, Left: stereo.CameraStats{FPS: 25}}
	if p := sourceFramePeriod(sc, src, nil, nil)(); p != 40*time.Millisecond {
		t.Errorf("side by side at 25 fps: %s", p)
	}

	sc.Kind = "sequence"
	var n uint64
	now := time.Unix(0, 0)
	period := sourceFramePeriod(sc, nil, func() uint64 { return n }, func() time.Time { return now })
	if p := period(); p != 0 {
		t.Errorf("before any pair: %s, want 0 (unknown)", p)
	}
	for range 20 {
		n += 15 // 15 fps
		now = now.Add(time.Second)
		period()
	}
	n++ // a stalled camera: one pair in a second says nothing
	now = now.Add(time.Second)
	if p := period(); p < 66*time.Millisecond || p > 67*time.Millisecond {
		t.Errorf("15 pairs a second: %s, want 66.7ms", p)
	}
}

type statsSource struct{ st stereo.Stats }

func (s *statsSource) Name() string                                        { return "stats" }
func (s *statsSource) Run(context.Context, func(camera.StereoFrame)) error { return nil }
func (s *statsSource) Stats() stereo.Stats                                 { return s.st }

// TestDaemonGovernsTraining runs the whole daemon on the simulated rig with training
// and the governor on, publishing to a real mosquitto, with a latency limit no
// inference can meet (latency_fraction 0.001 of the 100 ms frame period): the governor
// stops training for latency, which arrives as a training_budget event, pauses the
// real learner (status: training paused, budget stopped) and shows on /metrics.
func TestDaemonGovernsTraining(t *testing.T) {
	mosq := mqtttest.StartMosquitto(t, mqtttest.Options{})
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	cfg := config.Default()
	cfg.RobotID = "governed"
	cfg.DataDir = t.TempDir()
	cfg.Source.Sim.Width, cfg.Source.Sim.Height, cfg.Source.Sim.FPS = 128, 96, 10
	cfg.MQTT.Embedded.Enabled = false
	cfg.MQTT.BrokerURL = mosq.URL()
	cfg.MQTT.StatusInterval = 100 * time.Millisecond
	cfg.HTTP.Addr = freeAddr(t)
	cfg.Commands.Enabled = false
	cfg.Odom.Enabled = false
	cfg.Training = tinyTraining()
	cfg.Training.Governor.LatencyFraction = 0.001
	cfg.Training.Governor.Period = 50 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	msgs, stop := subscribeStatusEvents(t, mosq.URL(), "governed")
	defer stop()

	d := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	var stopEvent *telemetry.Event
	var last telemetry.Status
	deadline := time.After(60 * time.Second)
	paused := func() bool {
		tr := last.Training
		return tr != nil && tr.State == "paused" && tr.Budget != nil && tr.Budget.State == "stopped"
	}
	for stopEvent == nil || !paused() {
		select {
		case m := <-msgs:
			if strings.HasSuffix(m.Topic(), "/events") {
				var e telemetry.Event
				if err := json.Unmarshal(m.Payload(), &e); err != nil {
					t.Fatalf("event %s: %v", m.Payload(), err)
				}
				if e.Kind == "training_budget" && e.Fields["state"] == "stopped" {
					stopEvent = &e
				}
				continue
			}
			if err := json.Unmarshal(m.Payload(), &last); err != nil {
				t.Fatalf("status %s: %v", m.Payload(), err)
			}
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-deadline:
			t.Fatalf("within 60 s: stop event %v, last training status %+v budget %+v", stopEvent, last.Training, last.Training.Budget)
		}
	}
	t.Logf("event: %s", stopEvent.Message)
	if stopEvent.Fields["limit"] != "latency" || stopEvent.Fields["duty_cycle"] != 0.0 {
		t.Errorf("stop event fields %v", stopEvent.Fields)
	}
	if b := last.Training.Budget; b.Limit != "latency" || b.DutyCycle != 0 || b.Reason == "" {
		t.Errorf("status budget %+v", b)
	}
	resp, err := http.Get("http://" + cfg.HTTP.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`edgedepth_governor_stops_total{limit="latency"} 1`, `edgedepth_governor_state{state="stopped"} 1`, "edgedepth_governor_duty_cycle 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The operator's commands, through their handlers, on the real learner: a pause is
	// recorded; a resume lifts it but the governor's stop holds; a duty is a ceiling.
	if _, err := d.trainingPause(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if b := d.budgetStatus(); !b.OperatorPaused {
		t.Errorf("after training/pause: %+v", b)
	}
	reply, err := d.trainingResume(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := reply.(trainer.ContinualStatus); st.State != "paused" || d.budgetStatus().OperatorPaused {
		t.Errorf("training/resume during a governor stop: learner %q, budget %+v; want paused by the governor alone", st.State, d.budgetStatus())
	}
	if _, err := d.trainingSet(ctx, json.RawMessage(`{"duty":0.2}`)); err != nil {
		t.Fatal(err)
	}
	if b := d.budgetStatus(); b.OperatorDuty != 0.2 {
		t.Errorf("after training/set duty 0.2: %+v", b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(cfg.ShutdownTimeout + 5*time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
