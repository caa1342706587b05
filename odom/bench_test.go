package odom

import (
	"testing"

	"github.com/edgedepth/edgedepth/camera/sim"
)

// BenchmarkTrack320x96 times one pair of the tracker with refinement at 320x96 (the
// daemon's odom.width), with the true motion as the network's guess: frame
// preparation (grey pyramid, gradients, points) and the Gauss-Newton refinement.
func BenchmarkTrack320x96(b *testing.B) {
	w := simWorld(b, sim.SceneStreet, 3)
	const n = 20
	ins := make([]Input, n)
	var prev Pose
	for i := range n {
		f := w.Render(i)
		gt := FromCamera(f.Truth.Pose)
		ins[i] = Input{Seq: f.Seq, Stamp: f.CaptureTime, Image: GrayImage(f.Left), DepthM: f.Truth.DepthM, K: f.Intrinsics}
		if i > 0 {
			m := prev.Inverse().Mul(gt)
			ins[i].Motion = &m
		}
		prev = gt
	}
	tr := NewTracker(TrackerConfig{Refine: true})
	b.ResetTimer()
	for i := range b.N {
		in := ins[i%n]
		if i%n == 0 {
			tr = NewTracker(TrackerConfig{Refine: true})
		}
		if _, err := tr.Track(in); err != nil {
			b.Fatal(err)
		}
	}
}
