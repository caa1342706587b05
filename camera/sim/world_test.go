package sim

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

func newTestWorld(t testing.TB, scene string, seed int64, width, height int) *World {
	t.Helper()
	c := DefaultConfig()
	c.Scene, c.Seed, c.Width, c.Height = scene, seed, width, height
	w, err := NewWorld(c)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func sameFrame(a, b camera.StereoFrame) error {
	switch {
	case !bytes.Equal(a.Left.Pix, b.Left.Pix):
		return fmt.Errorf("left images differ")
	case !bytes.Equal(a.Right.Pix, b.Right.Pix):
		return fmt.Errorf("right images differ")
	case !slices.Equal(a.Truth.DepthM, b.Truth.DepthM):
		return fmt.Errorf("depths differ")
	case a.Truth.Pose != b.Truth.Pose:
		return fmt.Errorf("poses differ: %v vs %v", a.Truth.Pose, b.Truth.Pose)
	case a.Seq != b.Seq || !a.CaptureTime.Equal(b.CaptureTime):
		return fmt.Errorf("seq/time differ: %d %v vs %d %v", a.Seq, a.CaptureTime, b.Seq, b.CaptureTime)
	case a.Intrinsics != b.Intrinsics || a.BaselineM != b.BaselineM:
		return fmt.Errorf("calibration differs")
	}
	return nil
}

// TestDeterminism: the same config renders the same bytes from a fresh World, from many
// goroutines at once, in any order and with any row parallelism; another seed renders
// another scene.
func TestDeterminism(t *testing.T) {
	frames := []int{0, 7, 123}
	for _, scene := range Scenes() {
		t.Run(scene, func(t *testing.T) {
			w1 := newTestWorld(t, scene, 42, 160, 120)
			w2 := newTestWorld(t, scene, 42, 160, 120)
			want := make([]camera.StereoFrame, len(frames))
			for k, i := range frames {
				want[k] = w1.Render(i)
			}
			got := make([]camera.StereoFrame, len(frames))
			var wg sync.WaitGroup
			for k := len(frames) - 1; k >= 0; k-- {
				wg.Go(func() { got[k] = w2.Render(frames[k]) })
			}
			wg.Wait()
			for k, i := range frames {
				if err := sameFrame(want[k], got[k]); err != nil {
					t.Errorf("frame %d rendered concurrently: %v", i, err)
				}
				var single camera.StereoFrame
				w2.renderInto(i, &single, 1)
				if err := sameFrame(want[k], single); err != nil {
					t.Errorf("frame %d rendered on one goroutine: %v", i, err)
				}
				if want[k].Seq != uint64(i) || !want[k].CaptureTime.Equal(SimEpoch.Add(time.Duration(i)*100*time.Millisecond)) {
					t.Errorf("frame %d: Seq %d CaptureTime %v", i, want[k].Seq, want[k].CaptureTime)
				}
			}

			other := newTestWorld(t, scene, 43, 160, 120).Render(frames[1])
			if f := fractionDiffering(want[1].Left.Pix, other.Left.Pix); f < 0.5 {
				t.Errorf("seeds 42 and 43 share %.0f%% of the pixels of frame %d: want different scenes", 100*(1-f), frames[1])
			}
		})
	}
}

func fractionDiffering(a, b []byte) float64 {
	n := 0
	for i := 0; i < len(a); i += 3 {
		if a[i] != b[i] || a[i+1] != b[i+1] || a[i+2] != b[i+2] {
			n++
		}
	}
	return float64(n) / float64(len(a)/3)
}

// TestRenderSane checks that both scenes render finite depths in the documented ranges,
// with sky only outdoors, and images that are neither blank nor saturated.
func TestRenderSane(t *testing.T) {
	tests := []struct {
		scene                string
		minSky, maxSky       float64 // fraction of pixels without depth
		minDepth, maxDepth   float64 // metres, over all frames
		minMedian, maxMedian float64 // metres, per frame
	}{
		{SceneStreet, 0.05, 0.6, 1.5, 60, 4, 30},
		{SceneRoom, 0, 0, 0.3, 12, 1, 6},
	}
	for _, tt := range tests {
		t.Run(tt.scene, func(t *testing.T) {
			w := newTestWorld(t, tt.scene, 1, 320, 240)
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, i := range []int{0, 50, 100, 150, 200, 250} {
				f := w.Render(i)
				var valid []float64
				for _, d := range f.Truth.DepthM {
					if math.IsNaN(float64(d)) || math.IsInf(float64(d), 0) || d < 0 {
						t.Fatalf("frame %d: depth %g", i, d)
					}
					if d > 0 {
						valid = append(valid, float64(d))
						lo, hi = math.Min(lo, float64(d)), math.Max(hi, float64(d))
					}
				}
				sky := 1 - float64(len(valid))/float64(len(f.Truth.DepthM))
				if sky < tt.minSky || sky > tt.maxSky {
					t.Errorf("frame %d: sky %.2f of the image, want [%g, %g]", i, sky, tt.minSky, tt.maxSky)
				}
				slices.Sort(valid)
				if med := valid[len(valid)/2]; med < tt.minMedian || med > tt.maxMedian {
					t.Errorf("frame %d: median depth %.2f m, want [%g, %g]", i, med, tt.minMedian, tt.maxMedian)
				}
				for _, img := range []camera.Image{f.Left, f.Right} {
					mean, std, sat := imageStats(img)
					if mean < 40 || mean > 215 || std < 15 || sat > 0.02 {
						t.Errorf("frame %d: grey mean %.0f std %.0f saturated %.3f: blank or over-exposed", i, mean, std, sat)
					}
				}
			}
			if lo < tt.minDepth || hi > tt.maxDepth {
				t.Errorf("depths %.2f–%.2f m, want within [%g, %g]", lo, hi, tt.minDepth, tt.maxDepth)
			}
		})
	}
}

func imageStats(m camera.Image) (mean, std, saturated float64) {
	var s, s2 float64
	n := m.Width * m.Height
	sat := 0
	for i := 0; i < len(m.Pix); i += 3 {
		g := grey(m.Pix[i:])
		s += g
		s2 += g * g
		if m.Pix[i] == 255 || m.Pix[i+1] == 255 || m.Pix[i+2] == 255 || m.Pix[i] == 0 && m.Pix[i+1] == 0 && m.Pix[i+2] == 0 {
			sat++
		}
	}
	mean = s / float64(n)
	return mean, math.Sqrt(s2/float64(n) - mean*mean), float64(sat) / float64(n)
}

func grey(p []byte) float64 { return 0.299*float64(p[0]) + 0.587*float64(p[1]) + 0.114*float64(p[2]) }

// greyAt samples image m at a real position with bilinear interpolation; ok is false
// outside the image.
func greyAt(m camera.Image, x, y float64) (float64, bool) {
	if x < 0 || y < 0 || x > float64(m.Width-1) || y > float64(m.Height-1) {
		return 0, false
	}
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, m.Width-1), min(y0+1, m.Height-1)
	fx, fy := x-float64(x0), y-float64(y0)
	at := func(x, y int) float64 { return grey(m.Pix[3*(y*m.Width+x):]) }
	top := at(x0, y0)*(1-fx) + at(x1, y0)*fx
	bot := at(x0, y1)*(1-fx) + at(x1, y1)*fx
	return top*(1-fy) + bot*fy, true
}

// usable marks the left pixels where a photometric comparison is meaningful: depth
// known and smooth around the pixel (interpolating across a depth edge mixes two
// surfaces), textured (not a flat patch, where any shift would agree) and not
// occluded in the right image. Occlusion comes from the ground truth: the pixel is
// hidden if a pixel to its right lands left of it in the right image.
func usable(f camera.StereoFrame) []bool {
	k, w, h := f.Intrinsics, f.Left.Width, f.Left.Height
	d := f.Truth.DepthM
	ok := make([]bool, w*h)
	for y := 1; y < h-1; y++ {
		minProj := math.Inf(1)
		for x := w - 2; x >= 1; x-- {
			z := float64(d[y*w+x])
			if z <= 0 {
				continue
			}
			xr := float64(x) - k.Fx*f.BaselineM/z
			occluded := minProj < xr-0.5
			minProj = math.Min(minProj, xr)
			if occluded || xr < 1 {
				continue
			}
			lo, hi := z, z
			gMin, gMax := 255.0, 0.0
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					n := float64(d[(y+dy)*w+x+dx])
					lo, hi = math.Min(lo, n), math.Max(hi, n)
					g := grey(f.Left.Pix[3*((y+dy)*w+x+dx):])
					gMin, gMax = math.Min(gMin, g), math.Max(gMax, g)
				}
			}
			ok[y*w+x] = lo > 0 && hi/lo < 1.03 && gMax-gMin >= 4
		}
	}
	return ok
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}

// TestStereoConsistency proves depth, baseline and intrinsics agree: a textured,
// non-occluded left pixel at depth Z has the same colour as the right image at
// x - fx·B/Z on the same row. A wrong baseline (10% off) must do clearly worse, or the
// test would not be testing anything.
func TestStereoConsistency(t *testing.T) {
	for _, scene := range Scenes() {
		t.Run(scene, func(t *testing.T) {
			w := newTestWorld(t, scene, 5, 640, 480)
			for _, i := range []int{0, 37} {
				f := w.Render(i)
				ok := usable(f)
				residual := func(scale float64) (float64, int) {
					var diffs []float64
					for p, u := range ok {
						if !u {
							continue
						}
						x, y := p%f.Left.Width, p/f.Left.Width
						xr := float64(x) - scale*f.Intrinsics.Fx*f.BaselineM/float64(f.Truth.DepthM[p])
						r, in := greyAt(f.Right, xr, float64(y))
						if !in {
							continue
						}
						diffs = append(diffs, math.Abs(grey(f.Left.Pix[3*p:])-r))
					}
					return median(diffs), len(diffs)
				}
				got, n := residual(1)
				wrong, _ := residual(1.1)
				t.Logf("frame %d: %d pixels, median |left - right| %.2f grey levels (baseline +10%%: %.2f)", i, n, got, wrong)
				if n < len(ok)/3 {
					t.Errorf("frame %d: only %d of %d pixels usable", i, n, len(ok))
				}
				if got > 2 {
					t.Errorf("frame %d: median photometric residual %.2f grey levels, want <= 2", i, got)
				}
				if wrong < 4*got {
					t.Errorf("frame %d: a 10%% baseline error gives %.2f, barely above %.2f: the check has no power", i, wrong, got)
				}
			}
		})
	}
}

// TestPoseConsistency proves poses and depth agree with the rendering over time: a left
// pixel of frame i, lifted with its depth and moved by the poses, lands where frame i+2
// shows the same colour and the depth predicted by the motion. A pose 5 cm off must do
// clearly worse.
func TestPoseConsistency(t *testing.T) {
	for _, scene := range Scenes() {
		t.Run(scene, func(t *testing.T) {
			w := newTestWorld(t, scene, 9, 640, 480)
			a, b := w.Render(20), w.Render(22)
			k := a.Intrinsics
			qa, qb := poseQuat(a.Truth.Pose), poseQuat(b.Truth.Pose)
			ra, rb := qa.matrix(), qb.matrix()
			rbT := rb.transpose()
			ta := vec3{a.Truth.Pose.Position[0], a.Truth.Pose.Position[1], a.Truth.Pose.Position[2]}
			tb := vec3{b.Truth.Pose.Position[0], b.Truth.Pose.Position[1], b.Truth.Pose.Position[2]}
			ok := usable(a)
			residual := func(offset vec3) (photo, depthRel float64, n int) {
				var diffs, drel []float64
				for p, u := range ok {
					if !u {
						continue
					}
					x, y := float64(p%k.Width), float64(p/k.Width)
					z := float64(a.Truth.DepthM[p])
					pc := vec3{(x - k.Cx) / k.Fx * z, (y - k.Cy) / k.Fy * z, z}
					pw := ra.apply(pc).add(ta)
					q := rbT.apply(pw.sub(tb.add(offset)))
					if q.z <= 0.1 {
						continue
					}
					u2, v2 := k.Fx*q.x/q.z+k.Cx, k.Fy*q.y/q.z+k.Cy
					g, in := greyAt(b.Left, u2, v2)
					if !in {
						continue
					}
					// Skip points hidden in frame b: its depth there is nearer.
					zb := float64(b.Truth.DepthM[int(math.Round(v2))*k.Width+int(math.Round(u2))])
					if zb <= 0 || zb < q.z*0.97 {
						continue
					}
					diffs = append(diffs, math.Abs(grey(a.Left.Pix[3*p:])-g))
					drel = append(drel, math.Abs(zb-q.z)/q.z)
				}
				return median(diffs), median(drel), len(diffs)
			}
			photo, drel, n := residual(vec3{})
			wrongPhoto, _, _ := residual(vec3{0.05, 0, 0})
			t.Logf("%d pixels: median photometric %.2f (pose 5 cm off: %.2f), median depth error %.4f", n, photo, wrongPhoto, drel)
			if n < len(ok)/4 {
				t.Errorf("only %d pixels comparable", n)
			}
			if photo > 3 || drel > 0.01 {
				t.Errorf("median photometric residual %.2f grey levels (want <= 3), depth %.4f (want <= 0.01)", photo, drel)
			}
			if wrongPhoto < 1.5*photo+1 {
				t.Errorf("a 5 cm pose error gives %.2f, barely above %.2f: the check has no power", wrongPhoto, photo)
			}
		})
	}
}

func poseQuat(p camera.Pose) quat {
	return quat{p.Orientation[0], p.Orientation[1], p.Orientation[2], p.Orientation[3]}
}

// angleBetween is the rotation angle from a to b in radians.
func angleBetween(a, b quat) float64 {
	d := math.Abs(a.x*b.x + a.y*b.y + a.z*b.z + a.w*b.w)
	return 2 * math.Acos(math.Min(1, d))
}

// TestTrajectory checks the rig moves at its speed without jumps, turns, and keeps clear
// of every solid (a camera inside a box renders nonsense).
func TestTrajectory(t *testing.T) {
	for _, scene := range Scenes() {
		for _, seed := range []int64{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/seed%d", scene, seed), func(t *testing.T) {
				w := newTestWorld(t, scene, seed, 64, 48)
				cfg := w.Config()
				step := cfg.SpeedMPS / cfg.FPS
				n := int(60 * cfg.FPS) // a minute: more than a loop of the room
				var prev, prev2 vec3
				var prevQ quat
				first := poseQuat(w.PoseAt(0))
				maxTurn, maxStep, minStep, maxAcc, maxRotStep, maxRotAcc := 0.0, 0.0, math.Inf(1), 0.0, 0.0, 0.0
				prevRot := math.NaN()
				for i := 0; i < n; i++ {
					p := w.PoseAt(i)
					pos := vec3{p.Position[0], p.Position[1], p.Position[2]}
					q := poseQuat(p)
					if qn := math.Sqrt(q.x*q.x + q.y*q.y + q.z*q.z + q.w*q.w); math.Abs(qn-1) > 1e-9 {
						t.Fatalf("frame %d: |q| = %v", i, qn)
					}
					if i > 0 {
						s := pos.sub(prev).norm()
						maxStep, minStep = math.Max(maxStep, s), math.Min(minStep, s)
						rot := angleBetween(prevQ, q)
						maxRotStep = math.Max(maxRotStep, rot)
						if !math.IsNaN(prevRot) {
							maxRotAcc = math.Max(maxRotAcc, math.Abs(rot-prevRot))
						}
						prevRot = rot
					}
					if i > 1 {
						maxAcc = math.Max(maxAcc, pos.sub(prev.scale(2)).add(prev2).norm())
					}
					maxTurn = math.Max(maxTurn, angleBetween(first, q))
					if d := clearance(w, pos); d < 0.4 {
						t.Fatalf("frame %d: camera at %v is %.2f m from a solid", i, pos, d)
					}
					prev2, prev, prevQ = prev, pos, q
				}
				// Steps include the sway and bounce on top of the forward speed.
				if minStep < 0.8*step || maxStep > 1.3*step {
					t.Errorf("steps %.4f–%.4f m, want about %.4f (speed %g m/s at %g fps)", minStep, maxStep, step, cfg.SpeedMPS, cfg.FPS)
				}
				if maxAcc > 0.2*step {
					t.Errorf("second difference of position up to %.4f m: the path jumps", maxAcc)
				}
				// A robot turns at up to ~60°/s; faster, or a sudden change of turn rate,
				// would be a jump.
				if maxRotStep > deg(60)/cfg.FPS || maxRotAcc > deg(0.5) {
					t.Errorf("rotation between frames up to %.2f°, changing by up to %.2f° frame to frame: the view jumps",
						maxRotStep*180/math.Pi, maxRotAcc*180/math.Pi)
				}
				if maxTurn < deg(2) {
					t.Errorf("the view turns at most %.2f° in a minute: want rotation", maxTurn*180/math.Pi)
				}
				if scene == SceneStreet {
					if z := w.PoseAt(n).Position[2]; math.Abs(z-cfg.SpeedMPS*60) > 1e-6 {
						t.Errorf("after 60 s the rig is at z = %.3f, want %.3f", z, cfg.SpeedMPS*60)
					}
				}
			})
		}
	}
}

// clearance is the distance from p to the nearest solid's bounding box.
func clearance(w *World, p vec3) float64 {
	d := math.Inf(1)
	for _, s := range w.scene.solids(p, 20, nil) {
		dx := math.Max(0, math.Max(s.lo.x-p.x, p.x-s.hi.x))
		dy := math.Max(0, math.Max(s.lo.y-p.y, p.y-s.hi.y))
		dz := math.Max(0, math.Max(s.lo.z-p.z, p.z-s.hi.z))
		d = math.Min(d, math.Sqrt(dx*dx+dy*dy+dz*dz))
	}
	if e := w.scene.environment(); e.shell {
		for _, v := range []float64{p.x - e.shellLo.x, e.shellHi.x - p.x, p.y - e.shellLo.y, e.shellHi.y - p.y, p.z - e.shellLo.z, e.shellHi.z - p.z} {
			d = math.Min(d, v)
		}
	} else {
		d = math.Min(d, -p.y)
	}
	return d
}

// TestStreetIsEndless renders far down the road: an hour of driving still has a street.
func TestStreetIsEndless(t *testing.T) {
	w := newTestWorld(t, SceneStreet, 1, 160, 120)
	i := int(3600 * w.Config().FPS)
	f := w.Render(i)
	valid := 0
	for _, d := range f.Truth.DepthM {
		if d > 0 {
			valid++
		}
	}
	if frac := float64(valid) / float64(len(f.Truth.DepthM)); frac < 0.4 {
		t.Fatalf("frame %d (z = %.0f m): only %.0f%% of the image is scene", i, f.Truth.Pose.Position[2], 100*frac)
	}
}

func TestRenderIntoReusesBuffers(t *testing.T) {
	w := newTestWorld(t, SceneRoom, 1, 64, 48)
	var f camera.StereoFrame
	w.RenderInto(0, &f)
	left, depth := &f.Left.Pix[0], &f.Truth.DepthM[0]
	w.RenderInto(1, &f)
	if &f.Left.Pix[0] != left || &f.Truth.DepthM[0] != depth {
		t.Fatal("RenderInto reallocated buffers of the right size")
	}
	if f.Seq != 1 {
		t.Fatalf("Seq = %d, want 1", f.Seq)
	}
}

// TestConfigExtremes renders at the edges of every range: nothing may panic, depths
// stay finite and within the far clip.
func TestConfigExtremes(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"narrow fov", func(c *Config) { c.HFOVDeg = 10 }},
		{"wide fov", func(c *Config) { c.HFOVDeg = 160 }},
		{"fine textures", func(c *Config) { c.TextureScale = 0.25 }},
		{"coarse textures", func(c *Config) { c.TextureScale = 4 }},
		{"wide baseline", func(c *Config) { c.BaselineM = 2 }},
		{"near far clip", func(c *Config) { c.FarM = 1 }},
		{"fast", func(c *Config) { c.SpeedMPS, c.FPS = 30, 0.1 }},
		{"tall image", func(c *Config) { c.Width, c.Height = 16, 200 }},
	}
	for _, scene := range Scenes() {
		for _, tt := range tests {
			t.Run(scene+"/"+tt.name, func(t *testing.T) {
				c := DefaultConfig()
				c.Scene, c.Width, c.Height = scene, 64, 48
				tt.mutate(&c)
				w, err := NewWorld(c)
				if err != nil {
					t.Fatal(err)
				}
				for _, i := range []int{0, 1, 100} {
					f := w.Render(i)
					for _, d := range f.Truth.DepthM {
						if !(d >= 0 && float64(d) < w.Config().FarM) {
							t.Fatalf("frame %d: depth %g outside [0, %g)", i, d, w.Config().FarM)
						}
					}
				}
			})
		}
	}
}
