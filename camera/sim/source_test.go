package sim

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

var (
	_ camera.Source = (*Source)(nil)
	_ camera.Source = (*Playback)(nil)
)

// collect runs src until it has emitted n frames, cancels it and returns the frames and
// Run's result. Run must return after the cancel; the package's goleak check makes sure
// nothing it started survives.
func collect(t *testing.T, src camera.Source, n int) ([]camera.StereoFrame, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var frames []camera.StereoFrame
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(f camera.StereoFrame) {
			frames = append(frames, f)
			if len(frames) == n {
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		return frames, err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no %d frames within 30 s", src.Name(), n)
		return nil, nil
	}
}

// TestSourcePacing: the live source emits frames at FPS (never faster: frame k waits for
// its slot k periods after the start), numbers them from 0, fills Truth, and returns nil
// on cancel.
func TestSourcePacing(t *testing.T) {
	c := DefaultConfig()
	c.Width, c.Height, c.FPS = 32, 24, 40
	w, err := NewWorld(c)
	if err != nil {
		t.Fatal(err)
	}
	src := NewSource(w)
	const n = 12
	start := time.Now()
	frames, err := collect(t, src, n)
	if err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if len(frames) != n {
		t.Fatalf("%d frames after cancel at %d", len(frames), n)
	}
	for i, f := range frames {
		if (i > 0 && f.Seq <= frames[i-1].Seq) || f.Truth == nil || f.Left.Width != 32 || f.BaselineM != w.BaselineM() {
			t.Fatalf("frame %d: seq %d truth %v width %d baseline %g", i, f.Seq, f.Truth != nil, f.Left.Width, f.BaselineM)
		}
		// Seq is the world's frame number: rendering it again gives the same picture.
		if !bytes.Equal(f.Left.Pix, w.Render(int(f.Seq)).Left.Pix) {
			t.Fatalf("frame %d (seq %d) is not the world's frame %d", i, f.Seq, f.Seq)
		}
		if f.CaptureTime.Before(start) {
			t.Fatalf("frame %d: capture time %v before Run started", i, f.CaptureTime)
		}
	}
	period := time.Second / 40
	// Slots are fixed from Run's start, which is after start: the last frame cannot be
	// emitted before its slot, whatever the scheduler does. The first frame may be late
	// (it is rendered after the start), so the span from it proves nothing.
	if elapsed, min := frames[n-1].CaptureTime.Sub(start), time.Duration(n-1)*period; elapsed < min {
		t.Errorf("frame %d emitted %v after the start, before its slot at %v: faster than %g fps", n-1, elapsed, min, c.FPS)
	}
	// The upper bound only catches a source that does not pace sensibly at all.
	span := frames[n-1].CaptureTime.Sub(frames[0].CaptureTime)
	if max := time.Duration(n-1)*period*5 + 2*time.Second; span > max {
		t.Errorf("%d frames in %v: far slower than %g fps", n, span, c.FPS)
	}
	// Skipped frames advance the world: frame k shows the world at its slot, and Seq
	// says which frame that is (checked above).
	t.Logf("%d frames in %v (%d skipped)", n, span, src.Skipped())
}

func TestSourceCancelledBeforeStart(t *testing.T) {
	w := newTestWorld(t, SceneRoom, 1, 32, 24)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	emitted := 0
	if err := NewSource(w).Run(ctx, func(camera.StereoFrame) { emitted++ }); err != nil || emitted != 0 {
		t.Fatalf("Run on a cancelled context: %v after %d frames, want nil after 0", err, emitted)
	}
}

func TestPlayback(t *testing.T) {
	dir, _ := writeTestSequence(t, SceneStreet, 3)
	s, err := OpenSequence(dir)
	if err != nil {
		t.Fatal(err)
	}

	// Frames whose slot passes while the machine is busy are skipped, not delayed: the
	// checks count emitted plus skipped frames.
	t.Run("once", func(t *testing.T) {
		p := s.Source(false, 50)
		frames, err := collect(t, p, 100)
		if !errors.Is(err, ErrEndOfSequence) || len(frames)+int(p.Skipped()) != 3 {
			t.Fatalf("%d frames (%d skipped) then %v, want 3 then ErrEndOfSequence", len(frames), p.Skipped(), err)
		}
	})
	t.Run("loop", func(t *testing.T) {
		frames, err := collect(t, s.Source(true, 50), 7)
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
		var recorded [3][]byte
		for i := range recorded {
			f, err := s.Frame(i)
			if err != nil {
				t.Fatal(err)
			}
			recorded[i] = f.Left.Pix
		}
		for i, f := range frames {
			if (i > 0 && f.Seq <= frames[i-1].Seq) || f.Truth == nil {
				t.Fatalf("frame %d: seq %d truth %v", i, f.Seq, f.Truth != nil)
			}
			if !bytes.Equal(f.Left.Pix, recorded[f.Seq%3]) {
				t.Fatalf("frame %d (seq %d) is not recorded frame %d", i, f.Seq, f.Seq%3)
			}
		}
	})
}
