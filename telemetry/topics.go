package telemetry

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TopicRoot is the first level of every edgedepth topic. Consumers subscribe to
// "edgedepth/+/status" to see every robot on a broker.
const TopicRoot = "edgedepth"

// MaxRobotIDLen bounds a robot id in bytes. It keeps topics and the default client id
// ("edgedepth-<robot-id>") short enough for every broker we know of, and catches a
// config value that is obviously not an id (a pasted certificate, say).
const MaxRobotIDLen = 64

// ErrInvalidRobotID is wrapped by every robot id validation error.
var ErrInvalidRobotID = errors.New("invalid robot id")

// Topics names the MQTT topics of one robot. Every topic is Prefix followed by a fixed
// suffix, so a consumer can subscribe to Prefix+"#" for everything one robot says.
//
// The zero value is not useful; build it with NewTopics.
type Topics struct {
	// Prefix is "edgedepth/<robot-id>/", with the trailing slash.
	Prefix string
}

// NewTopics returns the topics of the robot robotID. An empty robotID means "this
// machine": the host name, sanitised for MQTT (see SanitizeRobotID). An explicit
// robotID is validated, not rewritten: a robot id typed into a config file that is not
// a valid MQTT topic level is a mistake the operator should hear about.
func NewTopics(robotID string) (Topics, error) {
	if robotID == "" {
		host, err := os.Hostname()
		if err != nil {
			return Topics{}, fmt.Errorf("robot id: no robot id configured and the host name is unknown (%v): set robot_id", err)
		}
		robotID = SanitizeRobotID(host)
		if err := ValidateRobotID(robotID); err != nil {
			return Topics{}, fmt.Errorf("robot id from host name %q: %w: set robot_id", host, err)
		}
	} else if err := ValidateRobotID(robotID); err != nil {
		return Topics{}, err
	}
	return Topics{Prefix: TopicRoot + "/" + robotID + "/"}, nil
}

// ValidateRobotID reports why id cannot be used as a robot id, or nil. A robot id is
// one MQTT topic level: 1 to MaxRobotIDLen bytes of printable UTF-8 without
// whitespace and without the MQTT separators and wildcards '/', '+' and '#'.
func ValidateRobotID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidRobotID)
	case len(id) > MaxRobotIDLen:
		return fmt.Errorf("%w %.20q...: %d bytes, at most %d", ErrInvalidRobotID, id, len(id), MaxRobotIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w %q: not valid UTF-8", ErrInvalidRobotID, id)
	case strings.HasPrefix(id, "$"):
		// Not strictly needed below "edgedepth/", but brokers reserve "$" topics and a
		// consumer that builds "$..." filters from ids would be surprised.
		return fmt.Errorf("%w %q: must not start with '$'", ErrInvalidRobotID, id)
	}
	for _, r := range id {
		switch {
		case r == '/':
			return fmt.Errorf("%w %q: contains '/', which would split it into two topic levels", ErrInvalidRobotID, id)
		case r == '+' || r == '#':
			return fmt.Errorf("%w %q: contains the MQTT wildcard %q", ErrInvalidRobotID, id, r)
		case unicode.IsSpace(r) || !unicode.IsPrint(r):
			return fmt.Errorf("%w %q: contains whitespace or a control character", ErrInvalidRobotID, id)
		}
	}
	return nil
}

// SanitizeRobotID turns a host name into a robot id: characters ValidateRobotID
// refuses become '-', a leading '$' is dropped and the result is cut to MaxRobotIDLen
// bytes. It returns "" when nothing usable is left, which ValidateRobotID refuses.
func SanitizeRobotID(host string) string {
	host = strings.TrimSpace(strings.ToValidUTF8(host, ""))
	var b strings.Builder
	for _, r := range host {
		if r == '/' || r == '+' || r == '#' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			r = '-'
		}
		if b.Len()+utf8.RuneLen(r) > MaxRobotIDLen {
			break
		}
		b.WriteRune(r)
	}
	// Trimmed after the replacement: "# $x" must not become "$x".
	return strings.TrimRight(strings.TrimLeft(b.String(), "-$"), "-")
}

// RobotID returns the robot id in Prefix ("" if Prefix does not have the
// "edgedepth/<robot-id>/" shape).
func (t Topics) RobotID() string {
	rest, ok := strings.CutPrefix(t.Prefix, TopicRoot+"/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// Status is the retained state of the robot (JSON Status). The Last Will sets it to
// offline when the robot vanishes.
func (t Topics) Status() string { return t.Prefix + "status" }

// Depth carries the metric depth image.
func (t Topics) Depth() string { return t.Prefix + "depth" }

// DepthPreview carries a coloured JPEG rendering of the depth image for people.
func (t Topics) DepthPreview() string { return t.Prefix + "depth/preview" }

// DepthConfidence carries the confidence of the network depth image: an 8-bit grey
// PNG, 0–255 for 0–1, with the depth message's metadata.
func (t Topics) DepthConfidence() string { return t.Prefix + "depth/confidence" }

// DepthSGBM carries SGBM's depth when it runs as a comparison beside the network
// (depth.compare_sgbm_every), in the depth payload format.
func (t Topics) DepthSGBM() string { return t.Prefix + "depth/sgbm" }

// Pose carries the camera pose (JSON PoseMessage, QoS 1).
func (t Topics) Pose() string { return t.Prefix + "pose" }

// Events carries notable happenings (JSON Event), in order.
func (t Topics) Events() string { return t.Prefix + "events" }

// Cmd is the topic of the command name: "cmd/<name>". Cmd("#") is the filter that
// matches every command.
func (t Topics) Cmd(name string) string { return t.Prefix + "cmd/" + name }

// Kind classifies topic into one of a small fixed set of kinds, used as a metric
// label (a label per topic would grow without bound) and to choose the queueing
// policy: "status", "depth", "depth_preview", "pose", "events", "cmd" or "other".
func (t Topics) Kind(topic string) string { return t.kind(topic).String() }

func (t Topics) kind(topic string) topicKind {
	rest, ok := strings.CutPrefix(topic, t.Prefix)
	if !ok || t.Prefix == "" {
		return kindOther
	}
	switch rest {
	case "status":
		return kindStatus
	case "depth":
		return kindDepth
	case "depth/preview":
		return kindDepthPreview
	case "pose":
		return kindPose
	case "events":
		return kindEvents
	}
	if strings.HasPrefix(rest, "cmd/") {
		return kindCmd
	}
	return kindOther
}

// topicKind is Kind as a small integer so that hot paths index arrays instead of
// hashing label strings.
type topicKind uint8

const (
	kindStatus topicKind = iota
	kindDepth
	kindDepthPreview
	kindPose
	kindEvents
	kindCmd
	kindOther
	numKinds
)

var kindNames = [numKinds]string{"status", "depth", "depth_preview", "pose", "events", "cmd", "other"}

func (k topicKind) String() string { return kindNames[k] }

// ordered reports whether messages of the kind are queued in order, every one (events
// and poses), rather than latest-wins.
func (k topicKind) ordered() bool { return k == kindEvents || k == kindPose }
