package trainer_test

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/trainer"
)

func weights(v float32) []nn.NamedTensor {
	d := make([]float32, 1000)
	for i := range d {
		d[i] = v
	}
	return []nn.NamedTensor{{Name: "w", Shape: []int{10, 100}, Data: d}, {Name: "b", Shape: []int{1}, Data: []float32{v}}}
}

func TestStoreVersionsPruneAndRestore(t *testing.T) {
	dir := t.TempDir()
	s, err := trainer.OpenStore(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Add(weights(0), trainer.Version{State: trainer.StateBase, Note: "imported"})
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := s.Active(); !ok || a.Version != base.Version {
		t.Fatalf("the first base is not active: %+v %v", a, ok)
	}
	if _, err := s.Add(weights(9), trainer.Version{State: trainer.StateBase}); err == nil || !strings.Contains(err.Error(), "never replaced") {
		t.Fatalf("a second base: %v, want a refusal", err)
	}
	var last trainer.Version
	for i := 1; i <= 4; i++ {
		if last, err = s.Add(weights(float32(i)), trainer.Version{Parent: base.Version, Steps: 100 * i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Judge(last.Version, 0.12, false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetActive(last.Version); err != nil {
		t.Fatal(err)
	}
	got := s.List()
	var nums []int
	for _, v := range got {
		nums = append(nums, v.Version)
	}
	// Keep 2 besides base and active: base 1, candidates 4, and the active 5.
	if len(got) != 3 || nums[0] != 1 || nums[1] != 4 || nums[2] != 5 {
		t.Fatalf("versions after pruning %v, want [1 4 5]", nums)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if len(files) != 3 {
		t.Errorf("%d model files on disk, want 3: %v", len(files), files)
	}

	// Reopen: everything survives; restore the base.
	s2, err := trainer.OpenStore(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := s2.Active(); a.Version != last.Version || a.State != trainer.StateActive || a.ValidationError == nil || *a.ValidationError != 0.12 {
		t.Errorf("active after reopening: %+v", a)
	}
	if err := s2.SetActive(base.Version); err != nil {
		t.Fatal(err)
	}
	ts, v, err := s2.Load(base.Version)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != trainer.StateBase || ts[0].Data[0] != 0 {
		t.Errorf("restored base: state %s, value %v", v.State, ts[0].Data[0])
	}
	if v, _ := s2.Get(last.Version); v.State != trainer.StateCandidate {
		t.Errorf("the previously active version is %s, want candidate", v.State)
	}
	if _, _, err := s2.Load(99); err == nil || !strings.Contains(err.Error(), "no version 99") {
		t.Errorf("loading a missing version: %v", err)
	}
}

// TestStoreSurvivesKill9 kills a process that adds versions (4 MB each) in a loop at
// random instants, 50 times, and checks after each kill that the store opens, that
// every version it names (the active one included) loads completely, and that no
// temporary file survives.
func TestStoreSurvivesKill9(t *testing.T) {
	if os.Getenv("EDGEDEPTH_STORE_WRITER") != "" {
		storeWriter(os.Getenv("EDGEDEPTH_STORE_WRITER"))
		return
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 50; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStoreSurvivesKill9$")
		cmd.Env = append(os.Environ(), "EDGEDEPTH_STORE_WRITER="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(30+r.IntN(120)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		s, err := trainer.OpenStore(dir, 3)
		if err != nil {
			t.Fatalf("round %d: store does not open after kill -9: %v", round, err)
		}
		for _, v := range s.List() {
			if _, _, err := s.Load(v.Version); err != nil {
				t.Fatalf("round %d: version %d does not load after kill -9: %v", round, v.Version, err)
			}
		}
		if a, ok := s.Active(); ok {
			ts, _, err := s.Load(a.Version)
			if err != nil || len(ts) == 0 {
				t.Fatalf("round %d: active version %d: %v", round, a.Version, err)
			}
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), "tmp") {
				t.Errorf("round %d: leftover %s survived OpenStore", round, e.Name())
			}
		}
	}
	s, _ := trainer.OpenStore(dir, 3)
	vs := s.List()
	t.Logf("after 50 kills: %d versions kept, newest %d", len(vs), vs[len(vs)-1].Version)
	if len(s.List()) < 2 {
		t.Errorf("the writer never got a version in: %d versions", len(s.List()))
	}
}

func storeWriter(dir string) {
	s, err := trainer.OpenStore(dir, 3)
	if err != nil {
		os.Exit(3)
	}
	if _, ok := s.Base(); !ok {
		s.Add(weights(0), trainer.Version{State: trainer.StateBase})
	}
	big := make([]float32, 1<<20) // 4 MB per version: kills land mid-write
	for i := 0; ; i++ {
		v, err := s.Add(append(weights(float32(i)), nn.NamedTensor{Name: "big", Shape: []int{len(big)}, Data: big}), trainer.Version{Steps: i})
		if err != nil {
			os.Exit(4)
		}
		if i%2 == 0 {
			s.SetActive(v.Version)
		}
	}
}
