package trainer_test

import (
	"testing"
	"time"

	cam "github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/trainer"
)

// smallWorld is a simulated rig rendering w x h frames at 10 fps.
func smallWorld(t testing.TB, scene string, seed int64, w, h int) *sim.World {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.Scene, cfg.Seed, cfg.Width, cfg.Height = scene, seed, w, h
	world, err := sim.NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return world
}

// frameCache renders each frame of a world once.
type frameCache struct {
	w      *sim.World
	frames map[int]cam.StereoFrame
}

func (c *frameCache) get(i int) cam.StereoFrame {
	if c.frames == nil {
		c.frames = map[int]cam.StereoFrame{}
	}
	f, ok := c.frames[i]
	if !ok {
		f = c.w.Render(i)
		c.frames[i] = f
	}
	return f
}

func TestSamplerSkipsAStaticRig(t *testing.T) {
	world := smallWorld(t, sim.SceneStreet, 1, 128, 64)
	s, err := trainer.NewSampler(trainer.SamplerConfig{Width: 64, Height: 32, Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	still := world.Render(5)
	for i := range 20 {
		f := still
		f.Seq, f.CaptureTime = uint64(i), world.CaptureTime(i) // time passes, the rig does not move
		got, _, err := s.Push(f)
		if err != nil || got != nil {
			t.Fatalf("static frame %d: %d samples, %v", i, len(got), err)
		}
	}
	st := s.Stats()
	// Frame 0 starts a triplet; the next 9 are too close to it; then the 1 s gap
	// restarts the triplet (frame 11), and so on.
	if st.Triplets != 0 || st.Static < 15 || st.Frames != 20 {
		t.Errorf("stats %+v: want no triplet and the frames counted as static", st)
	}
}

func TestSamplerMakesStereoSamplesFromAMovingRig(t *testing.T) {
	world := smallWorld(t, sim.SceneStreet, 1, 128, 64)
	s, err := trainer.NewSampler(trainer.SamplerConfig{Width: 64, Height: 32, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var triplets [][]trainer.Sample
	for i := range 25 {
		got, validation, err := s.Push(world.Render(i))
		if err != nil {
			t.Fatal(err)
		}
		if validation {
			t.Errorf("frame %d: a held-out triplet before the 10th", i)
		}
		if got != nil {
			triplets = append(triplets, got)
		}
	}
	// 10 fps, one triplet a second: frames 0-2, 10-12, 20-22.
	if len(triplets) != 3 || s.Stats().Resting != 16 || s.Stats().Static != 0 {
		t.Fatalf("%d triplets, stats %+v; want 3 (frames 0-2, 10-12, 20-22) and 16 frames resting", len(triplets), s.Stats())
	}
	l, r := triplets[1][0], triplets[1][1]
	k := trainer.ScaleIntrinsics(world.Intrinsics(), 64, 32)
	if l.ID != "live#000011L" || r.ID != "live#000011R" || l.Frame != 11 || l.Right || !r.Right {
		t.Errorf("ids %q %q frame %d right %v %v", l.ID, r.ID, l.Frame, l.Right, r.Right)
	}
	if l.Intrinsics != k || l.BaselineM != world.BaselineM() || r.BaselineM != -world.BaselineM() {
		t.Errorf("intrinsics %+v baseline %g / %g; want %+v and ±%g", l.Intrinsics, l.BaselineM, r.BaselineM, k, world.BaselineM())
	}
	f10, f11, f12 := world.Render(10), world.Render(11), world.Render(12)
	resized := func(m cam.Image) string { return string(trainer.ResizeImage(m, 64, 32).Pix) }
	for _, c := range []struct {
		name string
		got  cam.Image
		want cam.Image
	}{
		{"left target", l.Target, f11.Left}, {"left prev", l.Prev, f10.Left}, {"left next", l.Next, f12.Left},
		{"left other", l.Other, f11.Right}, {"right target", r.Target, f11.Right}, {"right prev", r.Prev, f10.Right},
		{"right next", r.Next, f12.Right}, {"right other", r.Other, f11.Left},
	} {
		if c.got.Width != 64 || c.got.Height != 32 || string(c.got.Pix) != resized(c.want) {
			t.Errorf("%s is not the resized frame", c.name)
		}
	}
	if len(l.TruthDepth) != 64*32 || r.TruthDepth != nil {
		t.Errorf("truth: left %d values, right %v; want the left's at the training size and none for the right", len(l.TruthDepth), r.TruthDepth != nil)
	}
}

func TestSamplerRestartsAfterAGapAndRejectsBadFrames(t *testing.T) {
	world := smallWorld(t, sim.SceneRoom, 1, 128, 64)
	s, _ := trainer.NewSampler(trainer.SamplerConfig{Width: 64, Height: 32, Interval: -1})
	for _, i := range []int{0, 1, 30, 31} { // 2.9 s between 1 and 30
		if got, _, err := s.Push(world.Render(i)); err != nil || got != nil {
			t.Fatalf("frame %d: %d samples, %v", i, len(got), err)
		}
	}
	if got, _, _ := s.Push(world.Render(32)); len(got) != 2 || got[0].Frame != 31 {
		t.Fatalf("frames 30-32 made %d samples", len(got))
	}
	if s.Stats().Gaps != 1 {
		t.Errorf("stats %+v: want one gap", s.Stats())
	}
	bad := world.Render(40)
	bad.Right = cam.NewImage(10, 10)
	if _, _, err := s.Push(bad); err == nil {
		t.Error("a frame whose right image does not match its intrinsics was accepted")
	}
	bad = world.Render(41)
	bad.BaselineM = 0
	if _, _, err := s.Push(bad); err == nil {
		t.Error("a frame without a baseline was accepted")
	}
	for _, c := range []trainer.SamplerConfig{{Width: 60, Height: 32}, {Width: 64, Height: 32, ValidationEvery: 1}} {
		if _, err := trainer.NewSampler(c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

// TestHeldOutSamplesAreNeverTrainedOn feeds a stream through a learner and checks
// that the held-out samples share no image with the training samples and that no
// batch trained on contains one.
func TestHeldOutSamplesAreNeverTrainedOn(t *testing.T) {
	world := smallWorld(t, sim.SceneStreet, 1, 64, 64)
	c, _ := newTinyLearner(t, trainer.ContinualConfig{
		Sampler:    trainer.SamplerConfig{Width: 64, Height: 64, Interval: -1, ValidationEvery: 3},
		GuardEvery: 1000, BatchSize: 2,
	})
	var trained []string
	trainer.SetContinualHooks(c, nil, func(ids []string) { trained = append(trained, ids...) })
	for i := range 60 {
		if _, err := c.AddFrame(world.Render(i)); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if ran, err := c.TrainStep(t.Context()); err != nil || !ran {
			t.Fatalf("step: %v %v", ran, err)
		}
	}
	replay, val := trainer.ContinualBuffers(c)
	held := map[string]bool{}
	heldPix := map[*byte]bool{}
	for _, s := range val.All() {
		held[s.ID] = true
		for _, m := range []cam.Image{s.Target, s.Prev, s.Next, s.Other} {
			heldPix[&m.Pix[0]] = true
		}
	}
	if len(held) != 12 { // 20 triplets, every 3rd held out: 6 triplets, 12 samples
		t.Fatalf("%d held-out samples, want 12", len(held))
	}
	for _, s := range replay.All() {
		if held[s.ID] {
			t.Errorf("sample %s is both held out and in the replay buffer", s.ID)
		}
		for _, m := range []cam.Image{s.Target, s.Prev, s.Next, s.Other} {
			if heldPix[&m.Pix[0]] {
				t.Errorf("training sample %s shares an image with a held-out sample", s.ID)
			}
		}
	}
	for _, id := range trained {
		if held[id] {
			t.Errorf("held-out sample %s was trained on", id)
		}
	}
	if len(trained) != 6 {
		t.Errorf("%d samples trained on in 3 steps of 2", len(trained))
	}
	if _, err := c.AddFrame(cam.StereoFrame{}); err == nil || c.Status().FramesRejected != 1 {
		t.Errorf("an empty frame: %v, rejected %d", err, c.Status().FramesRejected)
	}
}
