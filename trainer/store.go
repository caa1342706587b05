package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgedepth/edgedepth/internal/atomicfile"
	"github.com/edgedepth/edgedepth/nn"
)

// State is where a model version stands.
type State string

const (
	// StateBase is the model everything starts from (imported or trained offline).
	// It is never overwritten or pruned.
	StateBase State = "base"
	// StateCandidate is a version written by training, not (or no longer) in use.
	StateCandidate State = "candidate"
	// StateActive is the version inference uses (at most one; the base is active
	// without changing its state until another version is promoted).
	StateActive State = "active"
	// StateRejected is a candidate the guard found worse than the active version.
	StateRejected State = "rejected"
)

// Version describes one saved model.
type Version struct {
	Version int    `json:"version"`
	File    string `json:"file"` // safetensors file inside the store
	Parent  int    `json:"parent,omitempty"`
	Steps   int    `json:"steps"` // training steps since the base
	// ChannelScale is the model variant (monodepth2.Options); 0 means 1, the
	// released networks.
	ChannelScale float64 `json:"channel_scale,omitempty"`
	// ValidationError is the held-out photometric error when the version was
	// judged; nil before.
	ValidationError *float64  `json:"validation_error,omitempty"`
	Created         time.Time `json:"created"`
	State           State     `json:"state"`
	Note            string    `json:"note,omitempty"`
}

// storeManifest is manifest.json of a store.
type storeManifest struct {
	Format   int       `json:"format"`
	Active   int       `json:"active"` // version in use; 0: none
	Versions []Version `json:"versions"`
}

const (
	storeFormat      = 1
	manifestName     = "manifest.json"
	versionFilePrefx = "v"
)

var versionFile = regexp.MustCompile(`^v(\d{6})\.safetensors$`)

// Store is a directory of versioned models: one safetensors file per version and
// manifest.json describing them. Every write is temp file → fsync → rename → fsync
// of the directory, model file first and manifest second, so that after a crash at
// any instant the manifest names only complete files; OpenStore removes what a crash
// left behind. Safe for concurrent use.
type Store struct {
	Dir string
	// Keep is how many versions besides the base and the active one are kept;
	// older ones are deleted when a new one is added. 0 keeps everything.
	Keep int

	mu  sync.Mutex
	man storeManifest
}

// OpenStore opens (creating if needed) the store in dir.
func OpenStore(dir string, keep int) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("model store: %w", err)
	}
	s, err := ReadStore(dir)
	if err != nil {
		return nil, err
	}
	s.Keep = keep
	if err := s.removeLeftovers(); err != nil {
		return nil, err
	}
	return s, nil
}

// ReadStore reads the store in dir without changing anything (no directory is
// created, no leftover removed): for looking, as `edgedepth doctor` does. A store
// read this way must not be written to while a daemon may write the same directory.
func ReadStore(dir string) (*Store, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("model store: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("model store: %s is not a directory", dir)
	}
	s := &Store{Dir: dir, man: storeManifest{Format: storeFormat}}
	raw, err := os.ReadFile(filepath.Join(dir, manifestName))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("model store: %w", err)
	default:
		if err := json.Unmarshal(raw, &s.man); err != nil {
			return nil, fmt.Errorf("model store %s: %s is damaged (%v): restore it from a backup or move the directory away", dir, manifestName, err)
		}
		if s.man.Format != storeFormat {
			return nil, fmt.Errorf("model store %s: format %d, this edgedepth reads format %d", dir, s.man.Format, storeFormat)
		}
	}
	for _, v := range s.man.Versions {
		if _, err := os.Stat(filepath.Join(dir, v.File)); err != nil {
			return nil, fmt.Errorf("model store %s: version %d: %w", dir, v.Version, err)
		}
	}
	return s, nil
}

// removeLeftovers deletes temp files and model files the manifest does not name:
// what a crash between the two writes of Add leaves.
func (s *Store) removeLeftovers() error {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return fmt.Errorf("model store: %w", err)
	}
	named := map[string]bool{}
	for _, v := range s.man.Versions {
		named[v.File] = true
	}
	for _, e := range entries {
		n := e.Name()
		if (versionFile.MatchString(n) && !named[n]) || atomicfile.IsTemp(n) {
			if err := os.Remove(filepath.Join(s.Dir, n)); err != nil {
				return fmt.Errorf("model store: remove leftover %s: %w", n, err)
			}
		}
	}
	return nil
}

// List returns every version, oldest first.
func (s *Store) List() []Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Version(nil), s.man.Versions...)
}

// Get returns one version's description.
func (s *Store) Get(version int) (Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.index(version)
	if i < 0 {
		return Version{}, fmt.Errorf("model store: no version %d (have %s)", version, s.have())
	}
	return s.man.Versions[i], nil
}

// Base returns the base version, if there is one.
func (s *Store) Base() (Version, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.man.Versions {
		if v.State == StateBase {
			return v, true
		}
	}
	return Version{}, false
}

// Active returns the version in use, if there is one.
func (s *Store) Active() (Version, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.index(s.man.Active); i >= 0 {
		return s.man.Versions[i], true
	}
	return Version{}, false
}

// Add saves a new version with the next number. v's Version, File and Created are
// filled in; a version with State base is refused when the store has one (the base
// is never replaced), and the first base becomes active.
func (s *Store) Add(ts []nn.NamedTensor, v Version) (Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v.State == "" {
		v.State = StateCandidate
	}
	if v.State == StateActive {
		return Version{}, errors.New("model store: add a version as a candidate, then SetActive")
	}
	if v.State == StateBase {
		for _, o := range s.man.Versions {
			if o.State == StateBase {
				return Version{}, fmt.Errorf("model store %s already has a base model (version %d); it is never replaced: use another store directory", s.Dir, o.Version)
			}
		}
	}
	next := 1
	for _, o := range s.man.Versions {
		next = max(next, o.Version+1)
	}
	v.Version = next
	v.File = fmt.Sprintf("%s%06d.safetensors", versionFilePrefx, next)
	v.Created = time.Now().UTC().Truncate(time.Millisecond)
	meta := map[string]string{
		"edgedepth.version": strconv.Itoa(v.Version),
		"edgedepth.parent":  strconv.Itoa(v.Parent),
		"edgedepth.steps":   strconv.Itoa(v.Steps),
		"edgedepth.created": v.Created.Format(time.RFC3339Nano),
		"edgedepth.note":    v.Note,
	}
	if err := nn.SaveSafetensorsFile(filepath.Join(s.Dir, v.File), ts, meta); err != nil {
		return Version{}, fmt.Errorf("model store: %w", err)
	}
	man := s.man
	man.Versions = append(append([]Version(nil), s.man.Versions...), v)
	if v.State == StateBase && man.Active == 0 {
		man.Active = v.Version
	}
	man, drop := s.prune(man)
	if err := s.writeManifest(man); err != nil {
		os.Remove(filepath.Join(s.Dir, v.File))
		return Version{}, err
	}
	s.man = man
	for _, f := range drop {
		// The manifest no longer names them; a failure here leaves a leftover
		// that the next OpenStore removes.
		os.Remove(filepath.Join(s.Dir, f))
	}
	return v, nil
}

// prune drops the oldest versions beyond Keep, never the base or the active one,
// and returns the files to delete once the manifest no longer names them.
func (s *Store) prune(man storeManifest) (storeManifest, []string) {
	if s.Keep <= 0 {
		return man, nil
	}
	var others []int
	for i, v := range man.Versions {
		if v.State != StateBase && v.Version != man.Active {
			others = append(others, i)
		}
	}
	if len(others) <= s.Keep {
		return man, nil
	}
	dropIdx := map[int]bool{}
	for _, i := range others[:len(others)-s.Keep] {
		dropIdx[i] = true
	}
	var kept []Version
	var files []string
	for i, v := range man.Versions {
		if dropIdx[i] {
			files = append(files, v.File)
			continue
		}
		kept = append(kept, v)
	}
	man.Versions = kept
	return man, files
}

// SetActive makes version the one in use: a candidate (or rejected one, on an
// operator's request) becomes active, the previous active candidate goes back to
// candidate. Any version can be restored this way, the base included.
func (s *Store) SetActive(version int) error {
	return s.update(func(man *storeManifest) error {
		i := s.indexIn(man, version)
		if i < 0 {
			return fmt.Errorf("model store: no version %d (have %s)", version, s.have())
		}
		if j := s.indexIn(man, man.Active); j >= 0 && man.Versions[j].State == StateActive {
			man.Versions[j].State = StateCandidate
		}
		if man.Versions[i].State != StateBase {
			man.Versions[i].State = StateActive
		}
		man.Active = version
		return nil
	})
}

// Judge records a candidate's validation error and, if rejected, its state.
func (s *Store) Judge(version int, validationError float64, rejected bool) error {
	return s.update(func(man *storeManifest) error {
		i := s.indexIn(man, version)
		if i < 0 {
			return fmt.Errorf("model store: no version %d (have %s)", version, s.have())
		}
		man.Versions[i].ValidationError = &validationError
		if rejected && man.Versions[i].State == StateCandidate {
			man.Versions[i].State = StateRejected
		}
		return nil
	})
}

// Load reads a version's tensors.
func (s *Store) Load(version int) ([]nn.NamedTensor, Version, error) {
	v, err := s.Get(version)
	if err != nil {
		return nil, Version{}, err
	}
	ts, _, err := nn.LoadSafetensorsFile(filepath.Join(s.Dir, v.File))
	if err != nil {
		return nil, Version{}, fmt.Errorf("model store: version %d: %w", version, err)
	}
	return ts, v, nil
}

// ErrNoUsableVersion is returned (wrapped) by LoadActive when no version could be
// loaded.
var ErrNoUsableVersion = errors.New("model store: no version could be loaded")

// LoadActive loads the version in use. When its file is damaged or missing it falls
// back, newest first, to the judged candidates (those with a validation error that
// the guard did not reject: versions that were once good), then to the base, so that
// one bad file costs the robot its latest weights, not its model. failed lists, in
// order, why each version tried before the one returned could not be loaded (nil
// when the active version loaded). The manifest is not changed: the damaged version
// stays active until the operator or the learner activates another, and every start
// says so. With no active version, LoadActive starts at the fallbacks; an empty store
// or one where nothing loads returns an error wrapping ErrNoUsableVersion.
func (s *Store) LoadActive() (ts []nn.NamedTensor, v Version, failed []error, err error) {
	s.mu.Lock()
	var order []int
	if s.index(s.man.Active) >= 0 {
		order = append(order, s.man.Active)
	}
	var base []int
	for i := len(s.man.Versions) - 1; i >= 0; i-- {
		o := s.man.Versions[i]
		switch {
		case o.Version == s.man.Active:
		case o.State == StateBase:
			base = append(base, o.Version)
		case o.State == StateRejected || o.ValidationError == nil:
		default:
			order = append(order, o.Version)
		}
	}
	order = append(order, base...)
	s.mu.Unlock()
	if len(order) == 0 {
		return nil, Version{}, nil, fmt.Errorf("model store %s holds no usable version: %w", s.Dir, ErrNoUsableVersion)
	}
	for _, n := range order {
		ts, v, err := s.Load(n)
		if err == nil {
			return ts, v, failed, nil
		}
		failed = append(failed, err)
	}
	return nil, Version{}, failed, fmt.Errorf("model store %s: %w: %w", s.Dir, ErrNoUsableVersion, errors.Join(failed...))
}

func (s *Store) update(change func(*storeManifest) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	man := s.man
	man.Versions = append([]Version(nil), s.man.Versions...)
	if err := change(&man); err != nil {
		return err
	}
	if err := s.writeManifest(man); err != nil {
		return err
	}
	s.man = man
	return nil
}

func (s *Store) writeManifest(man storeManifest) error {
	sort.Slice(man.Versions, func(i, j int) bool { return man.Versions[i].Version < man.Versions[j].Version })
	raw, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(s.Dir, manifestName), 0o644, append(raw, '\n')); err != nil {
		return fmt.Errorf("model store: %w", err)
	}
	return nil
}

func (s *Store) index(version int) int { return s.indexIn(&s.man, version) }

func (s *Store) indexIn(man *storeManifest, version int) int {
	for i, v := range man.Versions {
		if v.Version == version {
			return i
		}
	}
	return -1
}

func (s *Store) have() string {
	if len(s.man.Versions) == 0 {
		return "none"
	}
	var n []string
	for _, v := range s.man.Versions {
		n = append(n, strconv.Itoa(v.Version))
	}
	return strings.Join(n, ", ")
}
