package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgedepth/edgedepth/telemetry"
	"github.com/edgedepth/edgedepth/telemetry/command"
)

const cmdUsage = `Usage: edgedepth cmd NAME [key=value ...] [--args JSON] [--broker URL] [--robot ID] [--key FILE] [--timeout 10s]

Sends the command NAME to a running edgedepth over MQTT and prints its reply as JSON.
Exit status 0 when the command succeeded, 1 when it failed or no reply came in time.

Arguments are key=value pairs; a value that is valid JSON (3, true, null, [1,2],
"text") is taken as JSON, anything else as a string: version=3 sends {"version":3}.
--args gives a JSON object; key=value pairs are added to it.

With --key (the robot's command key file, a copy of <data_dir>/cmd.key) the command
is signed; the robot then also checks its time, so both clocks must be right to
within a few seconds. Examples:

  edgedepth cmd status --robot r1
  edgedepth cmd model/rollback version=3 --robot r1 --key ~/.edgedepth/r1.key

`

// cmdCmd implements `edgedepth cmd`.
func cmdCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgedepth cmd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", telemetry.DefaultBrokerURL, "MQTT broker `URL`")
	robot := fs.String("robot", "", "robot `id` (default: this machine's host name, as the daemon's default)")
	keyFile := fs.String("key", "", "command key `file`; without it the command is sent unsigned")
	argsJSON := fs.String("args", "", "command arguments as a JSON `object`")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the reply")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), cmdUsage)
		fs.PrintDefaults()
	}
	// Flags may come before, between and after the positional arguments.
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(positional) == 0 {
		fmt.Fprintln(stderr, "edgedepth cmd: missing the command NAME")
		fs.Usage()
		return errUsage
	}
	name := positional[0]
	if err := command.ValidateName(name); err != nil {
		return fmt.Errorf("cmd: %w", err)
	}
	if *timeout <= 0 {
		return fmt.Errorf("cmd: --timeout %v: must be positive", *timeout)
	}
	cmdArgs, err := commandArgs(*argsJSON, positional[1:])
	if err != nil {
		return fmt.Errorf("cmd: %w", err)
	}
	topics, err := telemetry.NewTopics(*robot)
	if err != nil {
		return fmt.Errorf("cmd: --robot: %w", err)
	}
	var key []byte
	if *keyFile != "" {
		if key, err = command.LoadKey(*keyFile); err != nil {
			return fmt.Errorf("cmd: --key: %w", err)
		}
	}

	id := "cli-" + randomHex(8)
	topic := topics.Cmd(name)
	// A reply topic of our own: the daemon's outgoing queue keeps only the latest
	// reply per topic, and another operator's command may be answered on the shared one.
	replyTo := topic + "/reply/" + id
	payload, err := command.EncodeRequest(key, topic, command.Request{
		ID: id, Time: time.Now().UTC().Format(time.RFC3339Nano), Args: cmdArgs, ReplyTo: replyTo,
	})
	if err != nil {
		return fmt.Errorf("cmd: %w", err)
	}

	deadline := time.Now().Add(*timeout)
	opts := mqtt.NewClientOptions().AddBroker(*broker).
		SetClientID("edgedepth-cmd-" + randomHex(6)).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).
		SetConnectTimeout(*timeout).SetConnectRetry(false)
	client := mqtt.NewClient(opts)
	if tok := client.Connect(); !tok.WaitTimeout(*timeout) || tok.Error() != nil {
		if tok.Error() == nil {
			return fmt.Errorf("cmd: broker %s did not answer within %v", *broker, *timeout)
		}
		return fmt.Errorf("cmd: cannot connect to broker %s: %w", *broker, tok.Error())
	}
	defer client.Disconnect(100)

	replies := make(chan []byte, 4)
	// Subscribe before publishing, or a quick reply could come before we listen.
	sub := client.Subscribe(replyTo, command.ReplyQoS, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case replies <- m.Payload():
		default:
		}
	})
	if err := waitToken(sub, deadline, "subscribe to "+replyTo); err != nil {
		return err
	}
	if st, ok := sub.(*mqtt.SubscribeToken); ok && st.Result()[replyTo] == 0x80 {
		return fmt.Errorf("cmd: broker %s refused the subscription to %s: check its ACL", *broker, replyTo)
	}
	if err := waitToken(client.Publish(topic, 1, false, payload), deadline, "publish on "+topic); err != nil {
		return err
	}

	wait := time.NewTimer(time.Until(deadline))
	defer wait.Stop()
	for {
		select {
		case b := <-replies:
			var r command.Reply
			if err := json.Unmarshal(b, &r); err != nil || r.ID != id {
				fmt.Fprintf(stderr, "edgedepth cmd: ignoring an unexpected message on %s\n", replyTo)
				continue
			}
			var pretty bytes.Buffer
			if json.Indent(&pretty, b, "", "  ") != nil {
				pretty.Write(b)
			}
			fmt.Fprintln(stdout, pretty.String())
			if !r.OK {
				if r.Error == nil {
					return fmt.Errorf("%s: failed without an error", name)
				}
				return fmt.Errorf("%s: %s: %s", name, r.Error.Code, r.Error.Message)
			}
			return nil
		case <-wait.C:
			return fmt.Errorf("no reply from %s within %v: is the daemon running and connected to %s?",
				strings.TrimSuffix(topics.Prefix, "/"), *timeout, *broker)
		}
	}
}

// commandArgs merges --args and key=value pairs into one JSON object.
func commandArgs(argsJSON string, pairs []string) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if argsJSON != "" {
		if err := json.Unmarshal([]byte(argsJSON), &obj); err != nil {
			return nil, fmt.Errorf("--args: not a JSON object: %w", err)
		}
	}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q: want key=value", p)
		}
		if json.Valid([]byte(v)) && v != "" {
			obj[k] = json.RawMessage(v)
		} else {
			s, _ := json.Marshal(v)
			obj[k] = s
		}
	}
	if len(obj) == 0 {
		return nil, nil
	}
	return json.Marshal(obj)
}

func waitToken(tok mqtt.Token, deadline time.Time, what string) error {
	if !tok.WaitTimeout(time.Until(deadline)) {
		return fmt.Errorf("cmd: %s: no answer from the broker in time", what)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("cmd: %s: %w", what, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics on a broken system source)
	return hex.EncodeToString(b)
}
