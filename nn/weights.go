package nn

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/edgedepth/edgedepth/tensor"
)

// NamedTensor is a float32 tensor on the host together with its parameter name. It is
// the neutral form between weight files (.pth, safetensors) and the networks: readers
// produce it, writers take it, and the network code maps names to its parameters.
// Data is dense and row-major and holds exactly Shape.Len() values.
type NamedTensor struct {
	Name  string
	Shape tensor.Shape
	Data  []float32
}

// Monodepth2IgnoredParams are the name patterns (path.Match syntax, where * does not
// cross a '/', so it does cross the dots of parameter names) of entries that released
// Monodepth2 checkpoints hold but the networks never use: the ImageNet classifier of
// torchvision's ResNet and BatchNorm's num_batches_tracked counter (only read when
// momentum is None, which Monodepth2 never sets). ReadPth puts int64 counters into
// extras, but checkpoints written after a .float() conversion (as the reference script
// does) carry them as float32 tensors, so they can appear among the tensors too.
var Monodepth2IgnoredParams = []string{"fc.*", "*.fc.*", "*num_batches_tracked"}

// ParamMismatchError says how the tensors of a weight file differ from the parameters a
// network expects. Each list is sorted.
type ParamMismatchError struct {
	File       string
	Missing    []string // wanted by the network, absent from the file
	Unexpected []string // in the file, unknown to the network (and not ignored)
	Misshaped  []ShapeMismatch
	Duplicate  []string // names that occur more than once in the file
	BadLength  []string // tensors whose data length does not match their shape
}

// ShapeMismatch is one parameter whose shape in the file differs from the network's.
type ShapeMismatch struct {
	Name       string
	File, Want tensor.Shape
}

// maxListed bounds each list in the error text: a checkpoint of the wrong network can
// differ in hundreds of names, and a wall of names hides the useful first few.
const maxListed = 10

func (e *ParamMismatchError) Error() string {
	var b strings.Builder
	n := len(e.Missing) + len(e.Unexpected) + len(e.Misshaped) + len(e.Duplicate) + len(e.BadLength)
	fmt.Fprintf(&b, "%s: %d parameter(s) do not fit the network (is this the right file for this network?)", e.File, n)
	list := func(what string, names []string) {
		if len(names) == 0 {
			return
		}
		shown := names
		if len(shown) > maxListed {
			shown = shown[:maxListed]
		}
		fmt.Fprintf(&b, "; %d %s: %s", len(names), what, strings.Join(shown, ", "))
		if len(names) > len(shown) {
			fmt.Fprintf(&b, " and %d more", len(names)-len(shown))
		}
	}
	list("missing from the file", e.Missing)
	list("unexpected in the file", e.Unexpected)
	shapes := make([]string, len(e.Misshaped))
	for i, m := range e.Misshaped {
		shapes[i] = fmt.Sprintf("%s is %v in the file, the network wants %v", m.Name, m.File, m.Want)
	}
	list("with the wrong shape", shapes)
	list("duplicated", e.Duplicate)
	list("with data that does not match their shape", e.BadLength)
	return b.String()
}

// CheckParams compares the tensors read from file with the parameter shapes a network
// wants and returns a *ParamMismatchError naming every missing, unexpected, mis-shaped
// or duplicated name (sorted, the first ten of each kind listed), or nil when they fit.
// Names in got that match one of the ignore patterns (path.Match syntax, e.g. "fc.*" or
// Monodepth2IgnoredParams...) are not reported as unexpected; a wanted name is never
// ignored. file is only used in the message.
func CheckParams(file string, got []NamedTensor, want map[string]tensor.Shape, ignore ...string) error {
	for _, p := range ignore {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("CheckParams: bad ignore pattern %q: %w", p, err)
		}
	}
	e := &ParamMismatchError{File: file}
	seen := make(map[string]bool, len(got))
	for _, t := range got {
		if seen[t.Name] {
			e.Duplicate = append(e.Duplicate, t.Name)
			continue
		}
		seen[t.Name] = true
		if t.Shape.Len() != len(t.Data) {
			e.BadLength = append(e.BadLength, fmt.Sprintf("%s (%d values for shape %v)", t.Name, len(t.Data), t.Shape))
		}
		w, ok := want[t.Name]
		switch {
		case ok && !w.Equal(t.Shape):
			e.Misshaped = append(e.Misshaped, ShapeMismatch{Name: t.Name, File: t.Shape.Clone(), Want: w.Clone()})
		case !ok && !matchAny(ignore, t.Name):
			e.Unexpected = append(e.Unexpected, t.Name)
		}
	}
	for name := range want {
		if !seen[name] {
			e.Missing = append(e.Missing, name)
		}
	}
	if len(e.Missing)+len(e.Unexpected)+len(e.Misshaped)+len(e.Duplicate)+len(e.BadLength) == 0 {
		return nil
	}
	sort.Strings(e.Missing)
	sort.Strings(e.Unexpected)
	sort.Strings(e.Duplicate)
	sort.Strings(e.BadLength)
	sort.Slice(e.Misshaped, func(i, j int) bool { return e.Misshaped[i].Name < e.Misshaped[j].Name })
	return e
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Monodepth2Checkpoint is a Monodepth2 model folder as released by its authors (and as
// written by its trainer): four PyTorch state dicts, with the training resolution and
// the stereo flag stored in encoder.pth. Names are those of the files, unchecked.
type Monodepth2Checkpoint struct {
	Encoder, Depth, PoseEncoder, Pose []NamedTensor
	// Height and Width are the input resolution the model was trained at.
	Height, Width int
	// UseStereo is true for models trained with stereo pairs (stereo and mono+stereo).
	UseStereo bool
}

// Monodepth2Files are the files of a Monodepth2 model folder, in the order of the
// Monodepth2Checkpoint fields.
var Monodepth2Files = [4]string{"encoder.pth", "depth.pth", "pose_encoder.pth", "pose.pth"}

// ReadMonodepth2Dir reads a Monodepth2 model folder (encoder.pth, depth.pth,
// pose_encoder.pth, pose.pth). Parameter names are not validated here: the networks do
// that with CheckParams. A model trained on stereo pairs only has no pose network, and
// Monodepth2 saves none: when encoder.pth says use_stereo and both pose files are
// absent, PoseEncoder and Pose are nil. Any other missing file is an error.
func ReadMonodepth2Dir(dir string) (*Monodepth2Checkpoint, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("read Monodepth2 model folder: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("read Monodepth2 model folder %s: not a directory (give the folder that holds encoder.pth, depth.pth, pose_encoder.pth and pose.pth)", dir)
	}
	var parts [4][]NamedTensor
	var encExtras map[string]any
	var absent []string
	for i, name := range Monodepth2Files {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			absent = append(absent, name)
			continue
		}
		ts, extras, err := ReadPth(p)
		if err != nil {
			return nil, err
		}
		parts[i] = ts
		if i == 0 {
			encExtras = extras
		}
	}
	ck := &Monodepth2Checkpoint{Encoder: parts[0], Depth: parts[1], PoseEncoder: parts[2], Pose: parts[3]}
	if len(absent) > 0 && (absent[0] == "encoder.pth" || absent[0] == "depth.pth") {
		return nil, monodepth2Missing(dir, absent)
	}
	var err error
	if ck.Height, err = extraInt(encExtras, "height"); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "encoder.pth"), err)
	}
	if ck.Width, err = extraInt(encExtras, "width"); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "encoder.pth"), err)
	}
	// use_stereo is optional: a Monodepth2 encoder.pth always has height and width, but
	// a folder written by another trainer may omit the flag; mono is the safe reading.
	if v, ok := encExtras["use_stereo"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return nil, fmt.Errorf("%s: use_stereo is a %T (%v), want a bool", filepath.Join(dir, "encoder.pth"), v, v)
		}
		ck.UseStereo = b
	}
	if len(absent) > 0 && !(ck.UseStereo && len(absent) == 2) {
		return nil, monodepth2Missing(dir, absent)
	}
	return ck, nil
}

func monodepth2Missing(dir string, absent []string) error {
	return fmt.Errorf("%s: no %s: a Monodepth2 model folder holds encoder.pth, depth.pth, pose_encoder.pth and pose.pth "+
		"(a stereo-only model may lack the two pose files); point to the folder that holds them",
		dir, strings.Join(absent, ", "))
}

// extraInt reads a Python int stored next to the tensors (height, width).
func extraInt(extras map[string]any, key string) (int, error) {
	v, ok := extras[key]
	if !ok {
		return 0, fmt.Errorf("no %q entry: a Monodepth2 encoder.pth stores the training resolution as height and width next to the weights", key)
	}
	switch n := v.(type) {
	case int:
		if n <= 0 || n > math.MaxInt32 {
			return 0, fmt.Errorf("%s is %d, want a positive image size", key, n)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s is a %T (%v), want an int", key, v, v)
}
