// Package command is the robot's command channel: operators' requests arrive over
// MQTT, are authenticated, checked against replay, run with a time limit, and
// answered.
//
// # Concepts
//
// Request. A command is published to edgedepth/<robot-id>/cmd/<name> (QoS 1), where
// name is one or more lowercase levels ("status", "model/rollback"; see
// ValidateName). The payload is a JSON object (Request), at most 64 KiB:
//
//	{"id": "op-1736", "time": "2025-01-02T15:04:05Z", "args": {"version": 3},
//	 "reply_to": "edgedepth/r1/cmd/model/rollback/reply/op-1736", "sig": "9f0c…"}
//
// id (1-64 bytes of [A-Za-z0-9._:-]) and time (RFC 3339) are required; args (an
// object), reply_to (a topic) and sig are optional; any other field makes the request
// malformed, so that nothing but a request is ever taken for one.
//
// Reply. One JSON object (Reply) on reply_to, or on cmd/<name>/reply, QoS 1, not
// retained:
//
//	{"id": "op-1736", "ok": true, "result": {...}, "time": "2025-01-02T15:04:05.2Z"}
//	{"id": "op-1736", "ok": false, "error": {"code": "invalid_args", "message": "version: ..."}, "time": "..."}
//
// The codes are unauthorized, expired, replayed, malformed, unknown_command,
// invalid_args, busy, timeout and failed (see Code). Messages for malformed and
// invalid_args name the field; the security codes say nothing about what exactly was
// wrong: the robot logs that, with details, for whoever reads its journal. A client
// should use a reply_to of its own (as `edgedepth cmd` does: .../reply/<id>): the
// shared cmd/<name>/reply topic keeps only the latest unsent reply in the daemon's
// outgoing queue, so two operators' replies could coalesce on a slow link.
//
// Signature. With a key configured, a request must carry sig, the lowercase hex
//
//	HMAC-SHA256(key, "edgedepth-cmd-v1\n" + topic + "\n" + id + "\n" + time + "\n" + reply_to + "\n" + args)
//
// where topic is the full command topic, the strings are the fields exactly as
// sent ("" when absent) and args is the raw bytes of the args value exactly as they
// appear in the payload. Signature documents why this form and not canonical JSON;
// EncodeRequest produces signed payloads and Verify checks them (constant time).
// Binding the topic makes a signature valid for one robot and one command; binding
// reply_to keeps a captured request from sending its result elsewhere.
//
// Checks, in order; the first that fails answers the request and nothing runs:
// size (malformed), command name syntax (unknown_command), syntax (malformed),
// signature (unauthorized), time within ±Window of the robot's clock (expired),
// id (replayed, or silently a duplicate), command registered (unknown_command),
// a free slot (busy); then the handler, whose error becomes invalid_args, busy or
// failed, and whose time limit, timeout. Without a key (Config.AllowUnsigned, the
// zero-setup default on a localhost broker) the signature and time checks are
// skipped and the Dispatcher says so in the log at start.
//
// Ids. Every accepted id is remembered for 2 × Window (bounded by MaxRemembered).
// The same request again (same bytes: a QoS 1 redelivery, a client's retry) is not
// run again: the first reply is sent again, or, while the command still runs, the
// duplicate is dropped and the first reply answers both. A different request with a
// used id is refused as replayed. A request refused as busy for want of a slot is
// forgotten, so the same request may be retried.
//
// Keys. LoadOrCreateKey makes a 32-byte random key on first run (hex, mode 0600,
// created atomically) and LoadKey refuses key files that other users can read. The
// key is a shared secret: the operator's copy must be guarded like the robot's. TLS
// and broker ACLs (who may publish to edgedepth/+/cmd/#) remain the first line of
// defence; the signature is the second, and the only one on an open broker.
//
// # Lifecycle
//
// NewDispatcher (no side effects), Register the commands, then Run(ctx), which
// subscribes to cmd/# on the Transport (a *telemetry.Publisher) and serves until ctx
// is cancelled, then waits for running handlers. Stop it before the Publisher, so
// that the last replies can still be sent.
//
// # Concurrency
//
// Requests are checked on the Transport's delivery goroutine (cheap: parsing, one
// HMAC, map look-ups); each accepted command runs on goroutines of its own, at most
// Config.MaxConcurrent at once, so a command waiting for a camera that is gone or a
// training step that is running never holds up the others or the MQTT connection,
// and its operator gets "timeout" at the deadline instead of silence. Register and
// Stats are safe from any goroutine.
package command
