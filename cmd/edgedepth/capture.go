package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgedepth/edgedepth/eval"
	"github.com/edgedepth/edgedepth/telemetry"
)

const captureUsage = `Usage: edgedepth capture --robot ID --out DIR [--broker URL] [--seconds N] [--frames N] [--config FILE]

Records what a running edgedepth publishes over MQTT, for 'edgedepth eval --live DIR':
it subscribes to edgedepth/<robot>/depth and edgedepth/<robot>/pose and writes

  DIR/depth/NNNNNN.png   every depth message as received (16-bit PNG, millimetres,
                         metadata inside), named by its sequence number
  DIR/poses.txt          every pose, TUM format (stamp tx ty tz qx qy qz qw; metres)
  DIR/poses_seq.txt      the sequence number and trajectory id of each poses.txt line
  DIR/capture.json       broker, robot, start and end, message counts (written last)

It stops after --frames depth messages, after --seconds, or on Ctrl-C, and keeps what
it captured. DIR must be new or empty. Start it before the daemon so that it sees the
first frames: 'eval --live' matches output n to frame n of the sequence, which holds
for a daemon that plays the sequence back (source.kind: sequence, without loop: each
pair's seq is its frame number). The broker's TLS and credentials come from the
configuration's mqtt.* keys (--config FILE, or EDGEDEPTH_MQTT_* variables, as for the
daemon); --broker overrides mqtt.broker_url. Example:

  edgedepth sim write --out seq --frames 300          # or a recording with ground truth
  edgedepth capture --robot r1 --out cap --frames 300 &
  EDGEDEPTH_ROBOT_ID=r1 EDGEDEPTH_SOURCE_KIND=sequence EDGEDEPTH_SOURCE_SEQUENCE_DIR=seq edgedepth run
                                                      # Ctrl-C once the capture ended
  edgedepth eval --data seq --estimator sgbm --live cap --out eval-out
`

// captureQueue bounds the messages waiting to be written; beyond it they are dropped
// and counted (paho's network goroutine must never wait for the disk).
const captureQueue = 256

type capturedMessage struct {
	depth   bool
	payload []byte
}

// cmdCapture implements `edgedepth capture`.
func cmdCapture(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("edgedepth capture", stderr, captureUsage)
	cfgPath := configFlag(fs)
	broker := fs.String("broker", "", "MQTT broker `URL` (default: mqtt.broker_url of the configuration, tcp://127.0.0.1:1883)")
	robot := fs.String("robot", "", "robot `id` whose output to capture (default: this machine's host name, as the daemon's default)")
	out := fs.String("out", "", "capture `directory` to create (required; must not exist or be empty)")
	seconds := fs.Float64("seconds", 0, "stop after this many `seconds` (0: no limit)")
	frames := fs.Int("frames", 0, "stop after this many depth messages (0: no limit)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	usageErr := func(msg string) error {
		fmt.Fprintln(stderr, "edgedepth capture:", msg)
		fs.Usage()
		return errUsage
	}
	switch {
	case *out == "":
		return usageErr("--out is required")
	case *seconds < 0:
		return usageErr(fmt.Sprintf("--seconds %g must not be negative", *seconds))
	case *frames < 0:
		return usageErr(fmt.Sprintf("--frames %d must not be negative", *frames))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	mc := cfg.MQTT.MQTTConfig
	if *broker != "" {
		mc.BrokerURL = *broker
	}
	if mc.BrokerURL == "" {
		mc.BrokerURL = telemetry.DefaultBrokerURL
	}
	if mc.ConnectTimeout == 0 {
		mc.ConnectTimeout = telemetry.DefaultConnectTimeout
	}
	if err := mc.Validate(); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	topics, err := telemetry.NewTopics(*robot)
	if err != nil {
		return fmt.Errorf("capture: --robot: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return capture(ctx, captureOptions{
		mqtt: mc, topics: topics, out: *out, frames: *frames,
		duration: time.Duration(*seconds * float64(time.Second)),
	}, stdout, stderr)
}

type captureOptions struct {
	mqtt     telemetry.MQTTConfig
	topics   telemetry.Topics
	out      string
	frames   int
	duration time.Duration
}

// capture subscribes, writes messages until a limit or ctx ends, and closes the
// capture. It prints "subscribed to ..." on stderr once the broker confirmed both
// subscriptions, and a progress line once a second.
func capture(ctx context.Context, o captureOptions, stdout, stderr io.Writer) error {
	w, err := eval.CreateCapture(o.out, eval.CaptureInfo{
		Broker: o.mqtt.BrokerURL, Robot: o.topics.RobotID(),
		DepthTopic: o.topics.Depth(), PoseTopic: o.topics.Pose(),
	})
	if err != nil {
		return fmt.Errorf("capture: --out: %w", err)
	}

	msgs := make(chan capturedMessage, captureQueue)
	var dropped atomic.Uint64
	subscribed := make(chan error, 1)
	opts, err := captureClientOptions(o.mqtt)
	if err != nil {
		w.Close("failed", 0)
		return fmt.Errorf("capture: %w", err)
	}
	filters := map[string]byte{o.topics.Depth(): 1, o.topics.Pose(): 1}
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		// Sessions are clean: subscribe again after every (re)connection.
		tok := c.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) {
			select {
			case msgs <- capturedMessage{depth: m.Topic() == o.topics.Depth(), payload: m.Payload()}:
			default:
				dropped.Add(1)
			}
		})
		go func() {
			var err error
			if !tok.WaitTimeout(o.mqtt.ConnectTimeout) {
				err = fmt.Errorf("broker %s did not confirm the subscriptions within %v", o.mqtt.BrokerURL, o.mqtt.ConnectTimeout)
			} else {
				err = tok.Error()
			}
			if st, ok := tok.(*mqtt.SubscribeToken); ok && err == nil {
				for f, code := range st.Result() {
					if code == 0x80 {
						err = fmt.Errorf("broker %s refused the subscription to %s: check its ACL", o.mqtt.BrokerURL, f)
					}
				}
			}
			select {
			case subscribed <- err:
			default:
			}
		}()
	})
	client := mqtt.NewClient(opts)
	tok := client.Connect()
	if !tok.WaitTimeout(o.mqtt.ConnectTimeout+time.Second) || tok.Error() != nil {
		w.Close("failed", 0)
		if tok.Error() == nil {
			return fmt.Errorf("capture: broker %s did not answer within %v", o.mqtt.BrokerURL, o.mqtt.ConnectTimeout)
		}
		return fmt.Errorf("capture: cannot connect to broker %s: %w", o.mqtt.BrokerURL, tok.Error())
	}
	defer client.Disconnect(250)

	select {
	case err := <-subscribed:
		if err != nil {
			w.Close("failed", 0)
			return fmt.Errorf("capture: %w", err)
		}
	case <-ctx.Done():
		return w.Close("interrupted", 0)
	}
	fmt.Fprintf(stderr, "capture: subscribed to %s and %s on %s, writing to %s (Ctrl-C stops and keeps what was captured)\n",
		o.topics.Depth(), o.topics.Pose(), o.mqtt.BrokerURL, o.out)

	start := time.Now()
	var deadline <-chan time.Time
	if o.duration > 0 {
		t := time.NewTimer(o.duration)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stopped := "interrupted"
	var badLogged bool
loop:
	for {
		select {
		case m := <-msgs:
			var err error
			if m.depth {
				_, err = w.AddDepth(m.payload)
			} else {
				_, err = w.AddPose(m.payload)
			}
			if errors.Is(err, eval.ErrBadMessage) {
				if !badLogged { // later ones are only counted
					fmt.Fprintf(stderr, "capture: skipping a malformed message (later ones are only counted): %v\n", err)
					badLogged = true
				}
			} else if err != nil {
				w.Close("failed", dropped.Load())
				return fmt.Errorf("capture: %w", err)
			}
			if o.frames > 0 && w.Counts().DepthMessages >= o.frames {
				stopped = "frames"
				break loop
			}
		case <-deadline:
			stopped = "seconds"
			break loop
		case <-tick.C:
			c := w.Counts()
			fmt.Fprintf(stderr, "%5.1f s: %d depth, %d poses, %d rejected, %d duplicates, %d dropped\n",
				time.Since(start).Seconds(), c.DepthMessages, c.PoseMessages, c.DepthRejected+c.PoseRejected, c.Duplicates, dropped.Load())
		case <-ctx.Done():
			break loop
		}
	}
	if err := w.Close(stopped, dropped.Load()); err != nil {
		return err
	}
	c := w.Info()
	fmt.Fprintf(stdout, "captured %d depth images and %d poses in %.1f s to %s (%s); %d rejected, %d duplicates, %d dropped\n",
		c.DepthMessages, c.PoseMessages, c.Ended.Sub(c.Started).Seconds(), o.out, stopped,
		c.DepthRejected+c.PoseRejected, c.Duplicates, c.DroppedByClient)
	return nil
}

// captureClientOptions builds the paho options of a capture from the daemon's MQTT
// configuration (broker, credentials, TLS files; checked by MQTTConfig.Validate). The
// capture needs a client of its own rather than telemetry.Publisher, whose Last Will
// and shutdown publish a retained "offline" status under its robot id.
func captureClientOptions(c telemetry.MQTTConfig) (*mqtt.ClientOptions, error) {
	opts := mqtt.NewClientOptions().AddBroker(c.BrokerURL).
		SetClientID("edgedepth-capture-" + randomHex(6)).
		SetProtocolVersion(4).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectRetry(false).
		SetConnectTimeout(c.ConnectTimeout).SetOrderMatters(true) // in order; the handler never blocks
	if c.KeepAlive > 0 {
		opts.SetKeepAlive(c.KeepAlive)
	}
	if _, err := c.ApplyAuth(opts); err != nil {
		return nil, err
	}
	return opts, nil
}
