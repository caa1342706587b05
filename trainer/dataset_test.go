package trainer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	cam "github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/sim"
)

// synthFrame is frame i of a fake rig: every left pixel is (i, 0, x), every right
// pixel (i, 255, x), depth i+1 metres on the left half.
func synthFrame(i, w, h int) dsFrame {
	f := dsFrame{left: cam.NewImage(w, h), right: cam.NewImage(w, h), depth: make([]float32, w*h)}
	for y := range h {
		for x := range w {
			p := 3 * (y*w + x)
			copy(f.left.Pix[p:], []byte{byte(i), 0, byte(x)})
			copy(f.right.Pix[p:], []byte{byte(i), 255, byte(x)})
			if x < w/2 {
				f.depth[y*w+x] = float32(i + 1)
			}
		}
	}
	return f
}

// synthDataset is a StereoDataset over synthFrame frames, counting loads.
func synthDataset(t testing.TB, name string, frames, w, h int, o DatasetOptions, loads *atomic.Int64, fail func(int) error) *StereoDataset {
	t.Helper()
	o.Name = name
	k := cam.Intrinsics{Fx: float64(w), Fy: float64(w), Cx: float64(w-1) / 2, Cy: float64(h-1) / 2, Width: w, Height: h}
	ds, err := newStereoDataset(o, frames, k, 0.1, w, h, func(i int) (dsFrame, error) {
		if loads != nil {
			loads.Add(1)
		}
		if fail != nil {
			if err := fail(i); err != nil {
				return dsFrame{}, err
			}
		}
		return synthFrame(i, w, h), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// checkEyes checks that sample i of ds uses frames t−1, t, t+1 of the target's eye and
// the other eye at t, given the frames at the training resolution.
func checkEyes(t *testing.T, ds Dataset, frame func(int) dsFrame, baseline float64, leftOnly bool) {
	t.Helper()
	for i := range ds.Len() {
		s, err := ds.Sample(i)
		if err != nil {
			t.Fatal(err)
		}
		wantT, wantRight := 1+i/2, i%2 == 1
		if leftOnly {
			wantT, wantRight = 1+i, false
		}
		if s.Frame != wantT || s.Right != wantRight {
			t.Fatalf("sample %d: frame %d right %v, want %d %v", i, s.Frame, s.Right, wantT, wantRight)
		}
		prev, cur, next := frame(wantT-1), frame(wantT), frame(wantT+1)
		eye := func(f dsFrame, right bool) cam.Image {
			if right {
				return f.right
			}
			return f.left
		}
		for _, c := range []struct {
			name      string
			got, want cam.Image
		}{
			{"target", s.Target, eye(cur, wantRight)},
			{"prev", s.Prev, eye(prev, wantRight)},
			{"next", s.Next, eye(next, wantRight)},
			{"other eye", s.Other, eye(cur, !wantRight)},
		} {
			if c.got.Width != c.want.Width || !bytes.Equal(c.got.Pix, c.want.Pix) {
				t.Fatalf("sample %d (%s): %s is not the expected frame", i, s.ID, c.name)
			}
		}
		wantB := baseline
		if wantRight {
			wantB = -baseline
		}
		if s.BaselineM != wantB {
			t.Fatalf("sample %d (%s): baseline %v, want %v", i, s.ID, s.BaselineM, wantB)
		}
		if wantRight && s.TruthDepth != nil {
			t.Fatalf("sample %d: right target with the left eye's truth depth", i)
		}
		if !wantRight && cur.depth != nil && !slices.Equal(s.TruthDepth, cur.depth) {
			t.Fatalf("sample %d: truth depth is not frame %d's", i, wantT)
		}
		if info := ds.Info(i); info.ID != s.ID || info.Frame != s.Frame || info.Right != s.Right || info.First != wantT-1 || info.Last != wantT+1 {
			t.Fatalf("sample %d: info %+v disagrees with the sample", i, info)
		}
	}
}

func TestDatasetBothEyes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		leftOnly bool
		frames   int
		wantLen  int
	}{
		{"both eyes", false, 7, 10},
		{"left only", true, 7, 5},
		{"three frames", false, 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := synthDataset(t, "fake", tc.frames, 6, 4, DatasetOptions{LeftOnly: tc.leftOnly}, nil, nil)
			if ds.Len() != tc.wantLen {
				t.Fatalf("Len %d, want %d", ds.Len(), tc.wantLen)
			}
			checkEyes(t, ds, func(i int) dsFrame { return synthFrame(i, 6, 4) }, 0.1, tc.leftOnly)
			if _, err := ds.Sample(ds.Len()); err == nil {
				t.Fatal("sample past the end accepted")
			}
		})
	}
	if _, err := newStereoDataset(DatasetOptions{Name: "short"}, 2, cam.Intrinsics{Fx: 1, Fy: 1, Width: 4, Height: 4}, 0.1, 4, 4, nil); err == nil || !strings.Contains(err.Error(), "at least 3") {
		t.Fatalf("two frames: %v", err)
	}
}

func TestDatasetSequence(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Width, cfg.Height, cfg.Seed = 64, 48, 3
	world, err := sim.NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := sim.WriteSequence(context.Background(), dir, world, 5, nil); err != nil {
		t.Fatal(err)
	}
	seq, err := sim.OpenSequence(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		w, h   int
		o      DatasetOptions
		cached bool
	}{
		{"native size", 64, 48, DatasetOptions{}, true},
		{"halved, no cache", 32, 24, DatasetOptions{CacheFrames: -1}, false},
		{"left only", 64, 48, DatasetOptions{LeftOnly: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := NewSequenceDataset(seq, tc.w, tc.h, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if want := ScaleIntrinsics(seq.Intrinsics(), tc.w, tc.h); ds.Intrinsics() != want {
				t.Fatalf("intrinsics %+v, want %+v", ds.Intrinsics(), want)
			}
			frame := func(i int) dsFrame {
				f, err := seq.Frame(i)
				if err != nil {
					t.Fatal(err)
				}
				return toTrainingFrame(f, tc.w, tc.h)
			}
			checkEyes(t, ds, frame, seq.BaselineM(), tc.o.LeftOnly)
			s, _ := ds.Sample(0)
			if s.TruthDepth == nil || len(s.TruthDepth) != tc.w*tc.h || !strings.HasPrefix(s.ID, dir) {
				t.Fatalf("left sample: %d truth depths for %dx%d, ID %q", len(s.TruthDepth), tc.w, tc.h, s.ID)
			}
		})
	}
}

func TestDatasetSimWorld(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Width, cfg.Height = 160, 96
	world, err := sim.NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := NewSimDataset(world, 5, 80, 48, DatasetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 6 {
		t.Fatalf("Len %d, want 2·(5−2)", ds.Len())
	}
	frames := map[int]dsFrame{}
	for i := range 5 {
		frames[i] = toTrainingFrame(world.Render(i), 80, 48)
	}
	checkEyes(t, ds, func(i int) dsFrame { return frames[i] }, world.BaselineM(), false)
	s, err := ds.Sample(2) // left eye of frame 2
	if err != nil {
		t.Fatal(err)
	}
	valid := 0
	for _, d := range s.TruthDepth {
		if d < 0 || d > float32(world.Config().FarM) {
			t.Fatalf("truth depth %v m outside [0, far]", d)
		}
		if d > 0 {
			valid++
		}
	}
	if valid < len(s.TruthDepth)/2 {
		t.Fatalf("only %d of %d pixels have truth depth", valid, len(s.TruthDepth))
	}
	k := s.Intrinsics
	if k.Width != 80 || k.Height != 48 || k.Fx != world.Intrinsics().Fx/2 || k.Cx != 39.5 {
		t.Fatalf("intrinsics %+v for 80x48 from %+v", k, world.Intrinsics())
	}
	// The samples make a valid batch of every kind.
	for _, sig := range []Signals{SignalsBoth, SignalsTemporal, SignalsStereo} {
		all := []Sample{}
		for i := range ds.Len() {
			s, _ := ds.Sample(i)
			all = append(all, s)
		}
		a := DefaultAugment()
		hb, err := NewHostBatch(all, BatchOptions{Signals: sig, Augment: &a}, newSampleRand(1))
		if err != nil {
			t.Fatal(err)
		}
		if hb.N != 6 || hb.Truth == nil {
			t.Fatalf("%v: batch of %d, truth %v", sig, hb.N, hb.Truth != nil)
		}
	}
}

func TestDatasetCache(t *testing.T) {
	t.Run("shared loads", func(t *testing.T) {
		var loads atomic.Int64
		ds := synthDataset(t, "c", 12, 4, 3, DatasetOptions{}, &loads, nil)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for i := range ds.Len() {
					if _, err := ds.Sample(i); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if got := loads.Load(); got != 12 {
			t.Fatalf("%d frame loads for 12 frames read by 8 goroutines, want 12", got)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		var loads atomic.Int64
		ds := synthDataset(t, "c", 12, 4, 3, DatasetOptions{CacheFrames: 3}, &loads, nil)
		for i := range ds.Len() {
			ds.Sample(i)
		}
		n := loads.Load()
		ds.Sample(0) // frames 0..2 were evicted by the later ones
		if loads.Load() != n+3 {
			t.Fatalf("%d loads after re-reading sample 0, want %d", loads.Load(), n+3)
		}
		if l := ds.cache.lru.Len(); l > 3 || len(ds.cache.entries) != l {
			t.Fatalf("cache holds %d frames (%d entries), capacity 3", l, len(ds.cache.entries))
		}
	})
	t.Run("errors not kept", func(t *testing.T) {
		var loads atomic.Int64
		failing := atomic.Bool{}
		failing.Store(true)
		ds := synthDataset(t, "c", 5, 4, 3, DatasetOptions{}, &loads, func(i int) error {
			if i == 2 && failing.Load() {
				return errors.New("disk on fire")
			}
			return nil
		})
		if _, err := ds.Sample(2); err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("error %v", err)
		}
		failing.Store(false)
		if _, err := ds.Sample(2); err != nil {
			t.Fatalf("after the fault cleared: %v", err)
		}
	})
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ds        Dataset
		every     int
		wantVal   []string // target frames held out, as "source#frame"
		wantTrain int
	}{
		// 21 frames: targets 1..19; every 7th target (7, 14) validates and reads
		// frames 6–8 and 13–15; training keeps the targets whose frames t−1..t+1 avoid
		// those: 1–4, 10, 11, 17–19 (nine).
		{"both eyes", synthDataset(t, "a", 21, 4, 3, DatasetOptions{}, nil, nil), 7,
			[]string{"a#7", "a#14"}, 2 * 9},
		{"left only", synthDataset(t, "a", 21, 4, 3, DatasetOptions{LeftOnly: true}, nil, nil), 7,
			[]string{"a#7", "a#14"}, 9},
		// Per source: a (targets 1–8, both eyes) holds out 4 and 8 and trains on 1;
		// b (targets 1–10, left only) holds out 4 and 8 and trains on 1.
		{"two sources", Concat(synthDataset(t, "a", 10, 4, 3, DatasetOptions{}, nil, nil), synthDataset(t, "b", 12, 4, 3, DatasetOptions{LeftOnly: true}, nil, nil)), 4,
			[]string{"a#4", "a#8", "b#4", "b#8"}, 2 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			train, val, err := Split(tc.ds, tc.every)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			valUsed := map[string]bool{}
			for i := range val.Len() {
				in := val.Info(i)
				key := fmt.Sprintf("%s#%d", in.Source, in.Frame)
				if len(got) == 0 || got[len(got)-1] != key {
					got = append(got, key)
				}
				for f := in.First; f <= in.Last; f++ {
					valUsed[fmt.Sprintf("%s#%d", in.Source, f)] = true
				}
			}
			if !slices.Equal(got, tc.wantVal) {
				t.Fatalf("validation targets %v, want %v", got, tc.wantVal)
			}
			inTrain := map[int]bool{}
			for i := range train.Len() {
				in := train.Info(i)
				inTrain[train.Indices[i]] = true
				for f := in.First; f <= in.Last; f++ {
					if valUsed[fmt.Sprintf("%s#%d", in.Source, f)] {
						t.Fatalf("training sample %s reads frame %d, which validation reads", in.ID, f)
					}
				}
			}
			for _, i := range val.Indices {
				if inTrain[i] {
					t.Fatalf("sample %d in both sets", i)
				}
			}
			// Every sample that leaks nothing trains: nothing is dropped needlessly.
			for i := range tc.ds.Len() {
				in := tc.ds.Info(i)
				leaks := false
				for f := in.First; f <= in.Last; f++ {
					leaks = leaks || valUsed[fmt.Sprintf("%s#%d", in.Source, f)]
				}
				if !leaks && !inTrain[i] {
					t.Fatalf("sample %s reads no validation frame but was left out of training", in.ID)
				}
			}
			if train.Len() != tc.wantTrain {
				t.Errorf("%d training samples, want %d", train.Len(), tc.wantTrain)
			}
			s, err := val.Sample(0)
			if err != nil || s.ID != val.Info(0).ID {
				t.Fatalf("validation sample 0: %v, ID %q", err, s.ID)
			}
		})
	}
	for _, tc := range []struct {
		every int
		want  string
	}{{1, "at least 2"}, {30, "lower every"}} {
		if _, _, err := Split(synthDataset(t, "a", 10, 4, 3, DatasetOptions{}, nil, nil), tc.every); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("every %d: error %v, want one saying %q", tc.every, err, tc.want)
		}
	}
}

func newSampleRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }

// drainLoader takes batches from l until it reports an error.
func drainLoader(t *testing.T, l *Loader) ([]*HostBatch, error) {
	t.Helper()
	var out []*HostBatch
	for {
		hb, err := l.Next(context.Background())
		if err != nil {
			return out, err
		}
		out = append(out, hb)
	}
}

// runLoader runs l on a goroutine and returns a function that waits for Run's result.
func runLoader(ctx context.Context, l *Loader) func() error {
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return func() error { return <-done }
}

func TestLoaderEpochs(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a := DefaultAugment()
	for _, tc := range []struct {
		name        string
		o           LoaderOptions
		wantBatches int // per epoch
		wantLast    int // size of an epoch's last batch
	}{
		{"shuffled, short last batch", LoaderOptions{BatchSize: 4, Seed: 1, Epochs: 3, Batch: BatchOptions{Augment: &a}}, 5, 2},
		{"two workers", LoaderOptions{BatchSize: 5, Seed: 2, Epochs: 2, Workers: 2, Prefetch: 1}, 4, 3},
		{"drop last", LoaderOptions{BatchSize: 4, Seed: 3, Epochs: 2, DropLast: true}, 4, 4},
		{"sequential", LoaderOptions{BatchSize: 6, Epochs: 1, Sequential: true, Batch: BatchOptions{Signals: SignalsStereo}}, 3, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := synthDataset(t, "l", 11, 6, 4, DatasetOptions{}, nil, nil) // 18 samples
			l, err := NewLoader(ds, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			wait := runLoader(context.Background(), l)
			batches, err := drainLoader(t, l)
			if !errors.Is(err, ErrLoaderDone) {
				t.Fatalf("after the last epoch Next said %v, want ErrLoaderDone", err)
			}
			if err := wait(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(batches) != tc.wantBatches*tc.o.Epochs {
				t.Fatalf("%d batches, want %d a epoch for %d epochs", len(batches), tc.wantBatches, tc.o.Epochs)
			}
			var orders [][]int
			for e := range tc.o.Epochs {
				var order []int
				for k, hb := range batches[e*tc.wantBatches : (e+1)*tc.wantBatches] {
					if hb.Epoch != e {
						t.Fatalf("batch %d of epoch %d says epoch %d", k, e, hb.Epoch)
					}
					want := tc.o.BatchSize
					if k == tc.wantBatches-1 {
						want = tc.wantLast
					}
					if hb.N != want || len(hb.Indices) != want || len(hb.IDs) != want {
						t.Fatalf("epoch %d batch %d: %d items (%d indices), want %d", e, k, hb.N, len(hb.Indices), want)
					}
					for n, i := range hb.Indices {
						if hb.IDs[n] != ds.Info(i).ID {
							t.Fatalf("item %d is %s, its index %d is %s", n, hb.IDs[n], i, ds.Info(i).ID)
						}
					}
					order = append(order, hb.Indices...)
				}
				seen := map[int]int{}
				for _, i := range order {
					seen[i]++
				}
				wantDistinct := ds.Len()
				if tc.o.DropLast {
					wantDistinct = tc.wantBatches * tc.o.BatchSize
				}
				if len(seen) != wantDistinct || len(order) != wantDistinct {
					t.Fatalf("epoch %d delivered %d items, %d distinct, want %d once each", e, len(order), len(seen), wantDistinct)
				}
				orders = append(orders, order)
			}
			if tc.o.Sequential {
				if !slices.IsSorted(orders[0]) {
					t.Fatalf("sequential order %v", orders[0])
				}
			} else if slices.Equal(orders[0], orders[1]) {
				t.Fatal("two epochs in the same order: not reshuffled")
			}
			// The same seed gives the same batches.
			l2, _ := NewLoader(ds, tc.o)
			wait2 := runLoader(context.Background(), l2)
			again, _ := drainLoader(t, l2)
			wait2()
			for k := range again {
				if !slices.Equal(again[k].Indices, batches[k].Indices) || !slices.Equal(again[k].TargetAug, batches[k].TargetAug) ||
					!slices.Equal(again[k].IdentityNoise, batches[k].IdentityNoise) || !slices.Equal(again[k].Flipped, batches[k].Flipped) {
					t.Fatalf("batch %d differs between two loaders with seed %d", k, tc.o.Seed)
				}
			}
		})
	}
}

func TestLoaderCancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ds := synthDataset(t, "l", 40, 6, 4, DatasetOptions{}, nil, nil)
	for _, workers := range []int{1, 3} {
		l, err := NewLoader(ds, LoaderOptions{BatchSize: 2, Prefetch: 1, Workers: workers, Seed: 9})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		wait := runLoader(ctx, l)
		if _, err := l.Next(ctx); err != nil { // running, and now blocked on a full buffer
			t.Fatal(err)
		}
		cancel()
		if err := wait(); err != nil {
			t.Fatalf("Run after cancel: %v, want nil", err)
		}
		_, err = drainLoader(t, l) // drains what was ready, then reports the stop
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Next after cancel: %v, want an error wrapping context.Canceled", err)
		}
		if err := l.Run(context.Background()); err == nil {
			t.Fatal("second Run accepted")
		}
	}
	// Next gives up when its own context ends.
	l, _ := NewLoader(ds, LoaderOptions{BatchSize: 2})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context and no Run: %v", err)
	}
}

func TestLoaderError(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ds := synthDataset(t, "l", 10, 6, 4, DatasetOptions{}, nil, func(i int) error {
		if i == 7 {
			return errors.New("frame 7 is corrupt")
		}
		return nil
	})
	l, err := NewLoader(ds, LoaderOptions{BatchSize: 3, Epochs: 1, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	wait := runLoader(context.Background(), l)
	_, nerr := drainLoader(t, l)
	rerr := wait()
	if rerr == nil || !strings.Contains(rerr.Error(), "frame 7 is corrupt") || !errors.Is(nerr, rerr) && nerr != rerr {
		t.Fatalf("Run %v, Next %v: want both to report frame 7", rerr, nerr)
	}
	for _, o := range []LoaderOptions{{BatchSize: 0}, {BatchSize: 100, DropLast: true}, {BatchSize: 1, Workers: -1}, {BatchSize: 1, Batch: BatchOptions{Augment: &Augment{JitterProb: -1}}}} {
		if _, err := NewLoader(ds, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}
