package command

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SignatureVersion starts every signed message (see Signature). A future change of
// the signed form gets a new version, so old and new can never be confused.
const SignatureVersion = "edgedepth-cmd-v1"

// Limits of the request fields. They are generous for people and tools, and small
// enough that nothing an attacker sends makes us allocate much.
const (
	MaxIDLen      = 64  // bytes of Request.ID
	MaxNameLen    = 128 // bytes of a command name
	MaxReplyToLen = 256 // bytes of Request.ReplyTo
)

// Code is the machine-readable reason a command was not carried out. The codes say
// what to do, never why a check failed in detail: that goes to the robot's log.
type Code string

// The error codes of a Reply.
const (
	// CodeUnauthorized: no signature, a bad one, or a signature over other fields
	// (wrong key, tampered request). Never says which.
	CodeUnauthorized Code = "unauthorized"
	// CodeExpired: the request's time is outside the window around the robot's clock
	// (too old or in the future). Check both clocks.
	CodeExpired Code = "expired"
	// CodeReplayed: the id was already used by a different request within the window.
	CodeReplayed Code = "replayed"
	// CodeMalformed: not a request: bad JSON, a missing or invalid field (the message
	// names it), or larger than the limit.
	CodeMalformed Code = "malformed"
	// CodeUnknownCommand: no command by that name on this robot.
	CodeUnknownCommand Code = "unknown_command"
	// CodeInvalidArgs: the command exists but its args are wrong (the message names
	// the field).
	CodeInvalidArgs Code = "invalid_args"
	// CodeBusy: the robot runs as many commands as it may at once, or remembers as
	// many ids as it may; try again later.
	CodeBusy Code = "busy"
	// CodeTimeout: the command did not finish within its time limit. It may still
	// complete later; its outcome is then only logged.
	CodeTimeout Code = "timeout"
	// CodeFailed: the command ran and failed; the message says why.
	CodeFailed Code = "failed"
)

// Request is a command request as it travels on edgedepth/<robot-id>/cmd/<name>. The
// command name is the topic, not a field.
type Request struct {
	// ID identifies the request: 1 to MaxIDLen bytes of [A-Za-z0-9._:-]. It is
	// echoed in the reply, and a robot runs each id at most once.
	ID string `json:"id"`
	// Time is when the request was made, RFC 3339 (clients send UTC with a "Z").
	// With a key it must be within the robot's window (default ±30 s).
	Time string `json:"time"`
	// Args are the command's arguments, a JSON object; absent means none.
	Args json.RawMessage `json:"args,omitempty"`
	// ReplyTo is the topic for the reply; empty means cmd/<name>/reply.
	ReplyTo string `json:"reply_to,omitempty"`
	// Sig is the lowercase hex HMAC-SHA256 of the request (see Signature); empty
	// when unsigned.
	Sig string `json:"sig,omitempty"`
}

// Reply answers a Request on its reply topic.
type Reply struct {
	ID     string          `json:"id"`
	OK     bool            `json:"ok"`
	Error  *ReplyError     `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Time   string          `json:"time"` // when the reply was made, RFC 3339 UTC
}

// ReplyError is the error of a failed Reply.
type ReplyError struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// ErrMalformed is wrapped by every error of ParseRequest and ValidateName.
var ErrMalformed = errors.New("malformed command request")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// ParseRequest decodes and checks the syntax of a request payload: JSON object,
// no unknown fields, id, time and reply_to well formed, args an object if present,
// sig hex if present. The error names the field and wraps ErrMalformed. It does not
// verify the signature or the time window (the Dispatcher does).
//
// Unknown fields are refused so that a reply, or anything else that is not a
// request, published on a command topic is never taken for one.
func ParseRequest(payload []byte) (Request, error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, malformed("not a JSON request object: %v", err)
	}
	if dec.More() {
		return Request{}, malformed("data after the JSON object")
	}
	if err := checkID(r.ID); err != nil {
		return Request{}, err
	}
	if r.Time == "" {
		return Request{}, malformed("time: missing")
	}
	if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil || len(r.Time) > 40 {
		return Request{}, malformed("time: %.40q is not an RFC 3339 time such as 2025-01-02T15:04:05Z", r.Time)
	}
	if len(r.Args) > 0 && r.Args[0] != '{' && !bytes.Equal(r.Args, []byte("null")) {
		return Request{}, malformed("args: not a JSON object")
	}
	if r.ReplyTo != "" {
		if err := checkReplyTo(r.ReplyTo); err != nil {
			return Request{}, err
		}
	}
	if r.Sig != "" {
		if len(r.Sig) != 2*sha256.Size || strings.ToLower(r.Sig) != r.Sig {
			return Request{}, malformed("sig: not %d lowercase hex digits", 2*sha256.Size)
		}
		if _, err := hex.DecodeString(r.Sig); err != nil {
			return Request{}, malformed("sig: not %d lowercase hex digits", 2*sha256.Size)
		}
	}
	return r, nil
}

func checkID(id string) error {
	if id == "" {
		return malformed("id: missing")
	}
	if len(id) > MaxIDLen {
		return malformed("id: longer than %d bytes", MaxIDLen)
	}
	for _, c := range []byte(id) {
		if !isIDByte(c) {
			return malformed("id: only letters, digits and . _ : - are allowed")
		}
	}
	return nil
}

func isIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:-", c) >= 0
}

// checkReplyTo accepts a topic we may publish to: no wildcards, no '$' topics (the
// broker's own), printable UTF-8 without whitespace (which also keeps the newline
// separators of the signed form unambiguous).
func checkReplyTo(t string) error {
	switch {
	case len(t) > MaxReplyToLen:
		return malformed("reply_to: longer than %d bytes", MaxReplyToLen)
	case !utf8.ValidString(t):
		return malformed("reply_to: not UTF-8")
	case strings.HasPrefix(t, "$"):
		return malformed("reply_to: '$' topics belong to the broker")
	case strings.ContainsAny(t, "+#"):
		return malformed("reply_to: a topic, not a filter: no '+' or '#'")
	}
	for _, r := range t {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return malformed("reply_to: whitespace or control character")
		}
	}
	return nil
}

// ValidateName reports whether name can be a command name: one or more topic
// levels of [a-z0-9_-] separated by '/', none of them "reply" (a level "reply" marks
// a reply topic, which the robot also receives on cmd/# and must not take for a
// command), at most MaxNameLen bytes. Examples: "status", "model/rollback".
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return malformed("command name: 1 to %d bytes", MaxNameLen)
	}
	for level := range strings.SplitSeq(name, "/") {
		if level == "" {
			return malformed("command name %q: empty topic level", name)
		}
		if level == "reply" {
			return malformed("command name %q: the level \"reply\" is reserved for replies", name)
		}
		for _, c := range []byte(level) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return malformed("command name %q: only a-z 0-9 _ - and '/' between levels", name)
			}
		}
	}
	return nil
}

// Signature returns the hex HMAC-SHA256 of a request under key:
//
//	HMAC-SHA256(key, "edgedepth-cmd-v1" LF topic LF id LF time LF reply_to LF args)
//
// where LF is one byte 0x0A; topic is the full command topic as the robot receives
// it ("edgedepth/<robot-id>/cmd/<name>"), so a signature is valid for one robot and
// one command; id, time and reply_to are the fields' strings exactly as sent (empty
// when absent); and args is the args value exactly as its bytes appear in the
// payload, from its first byte to its last (empty when absent).
//
// Why this form: signing the whole payload would need the signature outside it (an
// envelope) or a canonical JSON encoding, and canonical JSON is where signature
// schemes break (number forms, escapes, key order, duplicate keys). Here the only
// JSON in the signed string is the args value, taken as raw bytes: the signer signs
// the bytes it sends and the verifier checks the bytes it received and will execute,
// with no re-encoding on either side. The other fields are validated before
// verification to contain no LF, so the fields cannot be shifted against each other;
// args comes last and is not delimited.
func Signature(key []byte, topic string, r Request) string {
	m := hmac.New(sha256.New, key)
	for _, s := range []string{SignatureVersion, topic, r.ID, r.Time, r.ReplyTo} {
		m.Write([]byte(s))
		m.Write([]byte{'\n'})
	}
	m.Write(r.Args)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether r carries a valid signature under key for topic. The
// comparison takes constant time.
func Verify(key []byte, topic string, r Request) bool {
	if r.Sig == "" {
		return false
	}
	got, err := hex.DecodeString(r.Sig)
	if err != nil {
		return false
	}
	want, _ := hex.DecodeString(Signature(key, topic, r))
	return hmac.Equal(got, want)
}

// EncodeRequest returns the payload of r for topic, signed with key when key is not
// empty (r.Sig is ignored). r.Args are compacted first; the bytes signed are the
// bytes sent. It checks r as ParseRequest will.
func EncodeRequest(key []byte, topic string, r Request) ([]byte, error) {
	if len(r.Args) > 0 {
		var c bytes.Buffer
		if err := json.Compact(&c, r.Args); err != nil {
			return nil, fmt.Errorf("args: %w", err)
		}
		r.Args = c.Bytes()
	}
	r.Sig = ""
	if len(key) > 0 {
		r.Sig = Signature(key, topic, r)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// json.Marshal would rewrite '<', '>' and '&' inside args as \u003c...: the args
	// sent would no longer be the args signed.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	payload := bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
	back, err := ParseRequest(payload)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(back.Args, r.Args) {
		// Cannot happen with encoding/json as it is; if it ever re-encodes RawMessage,
		// fail here rather than send requests the robot will refuse.
		return nil, errors.New("command: encoder changed the args bytes")
	}
	return payload, nil
}
