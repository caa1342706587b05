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
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/runtime/config"
	"github.com/edgedepth/edgedepth/telemetry"
	"github.com/edgedepth/edgedepth/telemetry/mqtttest"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

// tinyTraining is a training section that learns within seconds on the CPU: the
// smallest network variant at 64x64, a guard every 3 steps on 4 held-out samples.
func tinyTraining() config.Training {
	t := config.Default().Training
	t.Enabled = true
	t.Width, t.Height, t.Batch, t.ChannelScale = 64, 64, 2, 0.125
	t.RecentSamples, t.ReservoirSamples, t.ValidationSamples, t.ValidationEvery = 16, 32, 4, 2
	t.GuardEvery, t.SampleInterval, t.Duty = 3, 0, 0.5
	return t
}

// TestDaemonLearnsOnTheSim runs the whole daemon in-process on the simulated rig with
// continual learning on, publishing to a real mosquitto: the status message reports
// the learner's steps (and, first, that it learns from scratch), the guard's decisions
// arrive as events, /metrics has the learner's counters, and after a clean stop the
// model store holds the judged versions and the shutdown checkpoint.
func TestDaemonLearnsOnTheSim(t *testing.T) {
	mosq := mqtttest.StartMosquitto(t, mqtttest.Options{})
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	cfg := config.Default()
	cfg.RobotID = "learner"
	cfg.DataDir = t.TempDir()
	cfg.Source.Sim.Width, cfg.Source.Sim.Height, cfg.Source.Sim.FPS = 256, 192, 10
	cfg.MQTT.Embedded.Enabled = false
	cfg.MQTT.BrokerURL = mosq.URL()
	cfg.MQTT.StatusInterval = 250 * time.Millisecond
	cfg.HTTP.Addr = freeAddr(t)
	cfg.Commands.Enabled = false
	cfg.Training = tinyTraining()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	msgs, stop := subscribeStatusEvents(t, mosq.URL(), "learner")
	defer stop()

	d := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	var fromScratch bool
	var last telemetry.Status
	var event *telemetry.Event
	deadline := time.After(90 * time.Second)
	for event == nil || last.Training == nil || last.Training.Steps < 6 || last.Training.Promotions+last.Training.Rollbacks == 0 {
		select {
		case m := <-msgs:
			if strings.HasSuffix(m.Topic(), "/events") {
				var e telemetry.Event
				if err := json.Unmarshal(m.Payload(), &e); err != nil {
					t.Fatalf("event %s: %v", m.Payload(), err)
				}
				if e.Kind == "model_promoted" || e.Kind == "model_rolled_back" {
					event = &e
				}
				continue
			}
			if err := json.Unmarshal(m.Payload(), &last); err != nil {
				t.Fatalf("status %s: %v", m.Payload(), err)
			}
			for _, w := range last.Warnings {
				fromScratch = fromScratch || (w.Component == healthModel && strings.Contains(w.Message, "no trained model: learning from scratch"))
			}
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-deadline:
			t.Fatalf("within 90 s: last status %+v training %+v, guard event %v; health %+v", last, last.Training, event, d.Health().Warnings())
		}
	}
	tr := last.Training
	t.Logf("status training: %+v", *tr)
	t.Logf("event: %s %s %v", event.Kind, event.Message, event.Fields)
	if !tr.Enabled || tr.Samples == 0 || tr.ValidationSamples == 0 || tr.LR != 1e-4 || !(tr.Duty > 0 && tr.Duty <= 1) {
		t.Errorf("training status %+v", *tr)
	}
	if !fromScratch {
		t.Error("no status said the learner starts from scratch")
	}
	for _, k := range []string{"version", "previous_version", "error_before", "error_after", "saved"} {
		if _, ok := event.Fields[k]; !ok {
			t.Errorf("the %s event lacks field %q: %v", event.Kind, k, event.Fields)
		}
	}
	resp, err := http.Get("http://" + cfg.HTTP.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"edgedepth_training_steps_total", "edgedepth_training_promotions_total", "edgedepth_training_duty_ratio", "edgedepth_training_frames_dropped_total"} {
		if !strings.Contains(string(body), "\n"+name+" ") {
			t.Errorf("/metrics lacks %s", name)
		}
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
	store, err := trainer.OpenStore(cfg.DataDir+"/models", 0)
	if err != nil {
		t.Fatal(err)
	}
	vs := store.List()
	judged := 0
	for _, v := range vs {
		if v.ValidationError != nil {
			judged++
		}
	}
	if judged == 0 || len(vs) == 0 {
		t.Errorf("model store after the run: %+v", vs)
	}
	if v, ok := trainer.LatestShutdownCheckpoint(store); !ok && store.List()[len(vs)-1].ValidationError == nil {
		t.Errorf("no shutdown checkpoint: newest %+v", vs[len(vs)-1])
	} else if ok {
		t.Logf("shutdown checkpoint: version %d, %d steps", v.Version, v.Steps)
	}
}

// TestLearnerStartsFromTheRightModel: an empty store means learning from scratch, a
// damaged active file means the previous good version, each with a health warning that
// says so; a healthy store starts from its active version without one.
func TestLearnerStartsFromTheRightModel(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Training = tinyTraining()
	newDaemon := func() *Daemon {
		d := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
		d.robotID = "unit"
		return d
	}
	modelWarning := func(d *Daemon) string {
		for _, w := range d.Health().Warnings() {
			if w.Component == healthModel {
				return w.Message
			}
		}
		return ""
	}

	d := newDaemon()
	l, err := d.newLearner()
	if err != nil {
		t.Fatal(err)
	}
	if w := modelWarning(d); !strings.HasPrefix(w, "no trained model: learning from scratch") || l.Status().ActiveVersion != 0 {
		t.Fatalf("empty store: warning %q, active %d", w, l.Status().ActiveVersion)
	}

	// A base and two judged versions, the newest active.
	store, err := trainer.OpenStore(filepath.Join(cfg.DataDir, "models"), 0)
	if err != nil {
		t.Fatal(err)
	}
	b := cpu.New(1)
	m, _ := monodepth2.NewWithOptions(b, monodepth2.Options{ChannelScale: 0.25})
	m.Init(b, 3)
	base, _ := trainer.Checkpoint(b, m, store, trainer.Version{State: trainer.StateBase})
	good, _ := trainer.Checkpoint(b, m, store, trainer.Version{Parent: base.Version})
	store.Judge(good.Version, 0.02, false)
	active, _ := trainer.Checkpoint(b, m, store, trainer.Version{Parent: good.Version})
	store.Judge(active.Version, 0.01, false)
	if err := store.SetActive(active.Version); err != nil {
		t.Fatal(err)
	}
	d = newDaemon()
	if l, err = d.newLearner(); err != nil {
		t.Fatal(err)
	}
	if w := modelWarning(d); w != "" || l.Status().ActiveVersion != active.Version {
		t.Fatalf("healthy store: warning %q, active %d; want none and %d", w, l.Status().ActiveVersion, active.Version)
	}

	if err := os.WriteFile(filepath.Join(store.Dir, active.File), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	d = newDaemon()
	if l, err = d.newLearner(); err != nil {
		t.Fatal(err)
	}
	w := modelWarning(d)
	if !strings.Contains(w, "active model is damaged") || !strings.Contains(w, fmt.Sprintf("version %d", active.Version)) ||
		!strings.Contains(w, fmt.Sprintf("using version %d", good.Version)) || l.Status().ActiveVersion != good.Version {
		t.Fatalf("damaged active file: warning %q, active %d; want a warning naming both and version %d", w, l.Status().ActiveVersion, good.Version)
	}
	t.Logf("warning: %s", w)
}

// subscribeStatusEvents delivers the status and events messages of robot on the
// broker at url (a full channel drops: the tests read fast enough, and a lost status
// is replaced by the next). Defer stop before a goroutine-leak check runs.
func subscribeStatusEvents(t *testing.T, url, robot string) (msgs <-chan mqtt.Message, stop func()) {
	t.Helper()
	ch := make(chan mqtt.Message, 1024)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(robot + "-test"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	stop = func() { sub.Disconnect(100) }
	if tok := sub.Subscribe("edgedepth/"+robot+"/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		if strings.HasSuffix(m.Topic(), "/status") || strings.HasSuffix(m.Topic(), "/events") {
			select {
			case ch <- m:
			default:
			}
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		stop()
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return ch, stop
}
