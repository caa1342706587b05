// Package telemetry moves the daemon's results to the outside world: MQTT publishing
// with a Last Will, the embedded MQTT broker of the zero-setup default, and the local
// HTTP endpoints (Prometheus metrics, health, status, a live viewer). It knows
// nothing of tensors, cameras or depth: it carries bytes and JSON.
//
// # Concepts
//
// Topics. Everything a robot says lives under edgedepth/<robot-id>/ (Topics). The
// robot id defaults to the host name, made safe for MQTT (SanitizeRobotID); an id set
// in the config is validated instead (ValidateRobotID).
//
//	topic                        payload                                   QoS  retained
//	edgedepth/<id>/status        JSON Status; Last Will: state "offline"   1    yes
//	edgedepth/<id>/depth         16-bit PNG, millimetres, with metadata    0    no
//	edgedepth/<id>/depth/preview coloured JPEG for people                  0    no
//	edgedepth/<id>/pose          JSON pose (stamp, frame ids, position,    0    no
//	                             quaternion)
//	edgedepth/<id>/events        JSON Event, one per happening             1    no
//	edgedepth/<id>/cmd/<name>    signed commands (telemetry/command);      1    no
//	                             replies on cmd/<name>/reply
//
// The payloads of depth and pose are produced by other packages; this one only
// routes them. The QoS and retained columns are the daemon's choices, passed to
// Publish by its caller.
//
// Publisher. One MQTT connection (paho, MQTT 3.1.1) for the whole daemon. Callers
// hand it messages with Publish, which never blocks; a single sender goroutine (Run)
// moves them to the broker. Between them sits a bounded queue with a policy per topic
// kind, because a robot's uplink is often slower than its camera:
//
//   - latest wins (status, depth, depth/preview, pose, anything else): each topic
//     holds only its newest unsent message. A newer one replaces it in place and the
//     old one counts as coalesced. A consumer wants the current depth, not a backlog.
//   - FIFO (events): events are facts and their order matters; they queue up to
//     MQTTConfig.EventQueueLen and the oldest is dropped beyond that.
//
// Only one batch is in flight at a time and each message is confirmed before the next
// batch (QoS 0: written to the connection; QoS 1-2: acknowledged), so on a slow link
// messages wait in the queue, where they coalesce, instead of in paho's buffers and the
// socket, where they would only grow stale. Messages queued while disconnected are
// sent after the next connection; the last retained message of each topic is sent
// again after every reconnection, because meanwhile the broker may have published
// the Last Will over our status, or restarted and forgotten it.
//
// Connection state is health state: while the Publisher is not connected, the
// health.Tracker holds a warning under HealthComponent ("mqtt") naming the broker,
// the reason and what to change (for example "broker tcp://127.0.0.1:1883 refused
// the credentials (not authorised): check mqtt.username/password"). A refused or lost
// connection is retried with capped exponential backoff and jitter; it is never fatal.
//
// Last Will. Every connection registers a retained "offline" status as its Last Will,
// which the broker publishes when the connection vanishes without a DISCONNECT
// (power loss, Wi-Fi out of range, crash); the broker notices a silent loss after
// 1.5 × MQTTConfig.KeepAlive. A clean shutdown sends DISCONNECT, which cancels the
// will, so the Publisher publishes the same offline status explicitly first.
//
// Broker. The embedded broker (mochi-mqtt) lets a robot work with no infrastructure:
// it listens on 127.0.0.1:1883, keeps retained messages in memory and accepts every
// client, which is why it should stay on the loopback interface.
//
// HTTPServer. /metrics, /healthz, /status, /preview.jpg and a one-page viewer, on
// localhost by default, without authentication.
//
// # Lifecycle
//
// Construct with NewPublisher (no side effects: nothing is read, dialled or started),
// register the Publisher on a Prometheus registry if wanted (it is a
// prometheus.Collector), set the offline payload with SetOfflinePayload, then call
// Run(ctx) once. Publish may be called before Run (messages wait for the
// connection), during Run, and after (they are dropped and counted). Cancelling ctx
// makes Run send pending events and the offline status, disconnect, and return nil
// within MQTTConfig.ShutdownTimeout (plus, at worst, one WriteTimeout if the link is
// stalled). Stop the Publisher after the parts that publish through it, and the
// embedded Broker after the Publisher, so that "offline" reaches subscribers.
//
// Broker.Run and HTTPServer.Run listen at once, fail at once if they cannot (with an
// error that says which setting to change), serve until ctx is cancelled, close every
// connection they own, and return nil. Ready and ListenAddr give the bound address
// (port 0 is supported, for tests).
//
// # Concurrency
//
// Publish, PublishJSON, SetOfflinePayload, Connected and Stats are safe from any
// goroutine; Publish holds a mutex only for a map update. Run owns the paho client:
// each connection attempt uses a fresh client (paho warns against reusing one after
// Disconnect) and every goroutine Run starts has returned when it returns. paho's
// own goroutines never call back into our code except through non-blocking channel
// sends, so a slow consumer cannot stall the keep-alive. HTTPServer's Preview and
// Status functions are called from request goroutines and must be safe for that.
//
// Test support for real brokers (mosquitto started by the test, a proxy that breaks
// connections, a throwaway PKI) lives in the mqtttest sub-package.
package telemetry
