package calib

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/camera/calib3d"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/depth/sgbm"
)

// TestRectifyingRotationsMatchOpenCV checks the Go rectifying rotations the estimator
// optimises through against cv::stereoRectify itself, on rigs rotated by a few degrees
// about every axis and with a baseline off the x axis.
func TestRectifyingRotationsMatchOpenCV(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for k := range 20 {
		s := syntheticRig()
		s.D1, s.D2 = make([]float64, 5), make([]float64, 5)
		s.R = rodrigues([3]float64{0.05 * (rng.Float64() - 0.5), 0.05 * (rng.Float64() - 0.5), 0.05 * (rng.Float64() - 0.5)})
		s.T = [3]float64{-0.12, 0.01 * (rng.Float64() - 0.5), 0.01 * (rng.Float64() - 0.5)}
		r, err := NewRectifier(s, s.Size, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := r.Rectification()
		_ = r.Close()
		r1, r2 := rectifyingRotations(s.R, s.T)
		for i := range 9 {
			if math.Abs(r1[i]-want.R1[i]) > 1e-9 || math.Abs(r2[i]-want.R2[i]) > 1e-9 {
				t.Fatalf("rig %d: R1 %v R2 %v, OpenCV gives R1 %v R2 %v", k, r1, r2, want.R1, want.R2)
			}
		}
	}
}

func TestRotationVectorRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for k := range 200 {
		axis := [3]float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		n := norm3(axis)
		// Small angles, ordinary ones, and half turns where the formula changes.
		angle := []float64{1e-10, 1e-5, 0.3, 2, math.Pi - 1e-6, math.Pi}[k%6]
		v := [3]float64{axis[0] / n * angle, axis[1] / n * angle, axis[2] / n * angle}
		got := rotationVector(rodrigues(v))
		back := rodrigues(got)
		want := rodrigues(v)
		for i := range 9 {
			if math.Abs(back[i]-want[i]) > 1e-7 {
				t.Fatalf("angle %g: rotation vector %v gives %v back, want the matrix of %v", angle, v, got, v)
			}
		}
	}
}

// rotateView renders what a camera with intrinsics k sees after turning by rot about
// its optical centre, from what it saw before: a ray r_new = rot·r_old, so the new
// pixel u shows the old image at K·rotᵀ·K⁻¹·u (the pure-rotation homography),
// sampled bilinearly; pixels from outside the old image are black.
func rotateView(img camera.Image, k camera.Intrinsics, rot [9]float64) camera.Image {
	out := camera.NewImage(img.Width, img.Height)
	rt := transpose3(rot)
	for v := range img.Height {
		for u := range img.Width {
			ray := mulVec3(rt, [3]float64{(float64(u) - k.Cx) / k.Fx, (float64(v) - k.Cy) / k.Fy, 1})
			x, y := k.Fx*ray[0]/ray[2]+k.Cx, k.Fy*ray[1]/ray[2]+k.Cy
			x0, y0 := math.Floor(x), math.Floor(y)
			if x0 < 0 || y0 < 0 || int(x0)+1 >= img.Width || int(y0)+1 >= img.Height {
				continue
			}
			fx, fy := x-x0, y-y0
			i := 3 * (int(y0)*img.Width + int(x0))
			s := 3 * img.Width
			for c := range 3 {
				p := (1-fx)*(1-fy)*float64(img.Pix[i+c]) + fx*(1-fy)*float64(img.Pix[i+3+c]) +
					(1-fx)*fy*float64(img.Pix[i+s+c]) + fx*fy*float64(img.Pix[i+s+3+c])
				out.Pix[3*(v*img.Width+u)+c] = byte(math.Round(p))
			}
		}
	}
	return out
}

// nominalSim is the calibration of the simulator's perfectly rectified rig.
func nominalSim(w *sim.World) Stereo {
	k := w.Intrinsics()
	km := [9]float64{k.Fx, 0, k.Cx, 0, k.Fy, k.Cy, 0, 0, 1}
	return Stereo{
		Size: ImageSize{k.Width, k.Height},
		K1:   km, K2: km,
		D1: make([]float64, 5), D2: make([]float64, 5),
		R: [9]float64{1, 0, 0, 0, 1, 0, 0, 0, 1},
		T: [3]float64{-w.BaselineM(), 0, 0},
	}
}

// rectifiedTruth resamples the simulator's depth (the z of the nominal left camera,
// intrinsics k) into the left image rectified with rect: the rectified left camera is
// the nominal one turned by R1, so a rectified pixel's ray is R1ᵀ·ray in the nominal
// camera, and its z in the rectified frame is the nominal z divided by that ray's z
// (the ray normalised to z = 1 in the rectified frame). Nearest-neighbour sampling: a
// depth edge must not be blended into a depth no surface has. 0 where the ray leaves
// the nominal image or hits nothing.
func rectifiedTruth(truth []float32, k camera.Intrinsics, rect Rectification) depth.Map {
	out := depth.NewMap(k.Width, k.Height)
	fx, fy, cx, cy := rect.P1[0], rect.P1[5], rect.P1[2], rect.P1[6]
	rt := transpose3(rect.R1)
	for v := range k.Height {
		for u := range k.Width {
			ray := mulVec3(rt, [3]float64{(float64(u) - cx) / fx, (float64(v) - cy) / fy, 1})
			x := int(math.Round(k.Fx*ray[0]/ray[2] + k.Cx))
			y := int(math.Round(k.Fy*ray[1]/ray[2] + k.Cy))
			if x < 0 || y < 0 || x >= k.Width || y >= k.Height {
				continue
			}
			out.M[v*k.Width+u] = float32(float64(truth[y*k.Width+x]) / ray[2])
		}
	}
	return out
}

// sgbmTextureThreshold is the RMS gradient below which a pixel is too flat to judge a
// block matcher on, as in the sgbm package's simulator test.
const sgbmTextureThreshold = 2

// rectifiedDepthError rectifies the raw pairs with s, runs SGBM with default
// parameters, and returns the mean over the pairs of the median absolute relative
// error against the simulator's truth, on visible, textured pixels within SGBM's
// search and depth ranges (the mask of the sgbm package's simulator test).
func rectifiedDepthError(t *testing.T, s Stereo, k camera.Intrinsics, pairs []FramePair, truths [][]float32) float64 {
	t.Helper()
	r, err := NewRectifier(s, s.Size, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := sgbm.DefaultParams()
	e, err := sgbm.New(p)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var sum float64
	for i, pr := range pairs {
		l, rt, err := r.Rectify(pr.Left, pr.Right)
		if err != nil {
			t.Fatal(err)
		}
		f := camera.StereoFrame{Left: l, Right: rt, Intrinsics: r.Intrinsics(), BaselineM: r.BaselineM()}
		got, err := e.Estimate(f)
		if err != nil {
			t.Fatal(err)
		}
		truth := rectifiedTruth(truths[i], k, r.Rectification())
		vis := depth.NonOccluded(truth, f.Intrinsics.Fx, f.BaselineM)
		tex := depth.Textured(l, sgbmTextureThreshold)
		fb := f.Intrinsics.Fx * f.BaselineM
		mask := make([]bool, len(vis))
		for j := range mask {
			z := float64(truth.M[j])
			d := fb / z
			mask[j] = z > 0 && vis[j] && tex[j] && j%truth.Width >= p.MinDisparity+p.NumDisparities &&
				z >= p.MinDepthM && z <= p.MaxDepthM &&
				d >= float64(p.MinDisparity) && d < float64(p.MinDisparity+p.NumDisparities)
		}
		m, err := depth.Compare(got, truth, mask, depth.DefaultCompareOptions())
		if err != nil {
			t.Fatal(err)
		}
		sum += m.MedianAbsRel
	}
	return sum / float64(len(pairs))
}

// Bounds of the recalibration test (the "Must hold"), stated here once.
const (
	// perturbedMinMedianPx: a 0.5° knock must show as at least this much median
	// vertical disparity when rectified with the old calibration.
	perturbedMinMedianPx = 1.0
	// recalibratedMaxMedianPx: after recalibration the median vertical disparity of the
	// same frames must be below this.
	recalibratedMaxMedianPx = 0.3
	// recalibratedMaxDeltaErrDeg: the estimated correction must match the true knock
	// to within this angle (the angle of δR_est·δR_trueᵀ).
	recalibratedMaxDeltaErrDeg = 0.05
	// depthSlack: after recalibration, SGBM's median abs rel error may exceed the
	// unperturbed rig's by at most this much (absolute; the images of the recalibrated
	// rig are resampled twice, the unperturbed ones once).
	depthSlack = 0.01
	// unperturbedMaxDeltaDeg: with no knock, the "correction" must stay below this.
	unperturbedMaxDeltaDeg = 0.02
)

// TestRecalibrateSimulatedKnock is the recalibration test: the simulator's perfectly
// rectified rigs with the right camera turned by 0.5° (about x, and about a mixed axis
// with a yaw component) — raw right images made by warping the rendered ones with the
// rotation's homography — lose row alignment and depth accuracy under the nominal
// calibration; EstimateRotation over 10 frames brings both back within the bounds
// above. With no knock the calibration must stay put.
func TestRecalibrateSimulatedKnock(t *testing.T) {
	if testing.Short() {
		t.Skip("renders and matches 20 simulator frames per scene")
	}
	before := calib3d.LiveObjects()
	deg := math.Pi / 180
	mixed := [3]float64{1, 0.5, -1}
	mn := norm3(mixed)
	cases := []struct {
		name  string
		delta [3]float64 // the knock, as a rotation vector in radians
	}{
		{"none", [3]float64{}},
		{"pitch0.5deg", [3]float64{0.5 * deg, 0, 0}},
		{"mixed0.5deg", [3]float64{0.5 * deg * mixed[0] / mn, 0.5 * deg * mixed[1] / mn, 0.5 * deg * mixed[2] / mn}},
	}
	for _, scene := range sim.Scenes() {
		t.Run(scene, func(t *testing.T) {
			cfg := sim.DefaultConfig()
			cfg.Scene = scene
			w, err := sim.NewWorld(cfg)
			if err != nil {
				t.Fatal(err)
			}
			k := w.Intrinsics()
			nominal := nominalSim(w)
			var frames []camera.StereoFrame
			for i := range 10 {
				frames = append(frames, w.Render(8*i))
			}
			// Depth is judged on three frames spread over the ten.
			depthIdx := []int{0, 4, 8}
			truths := make([][]float32, len(depthIdx))
			cleanPairs := make([]FramePair, len(depthIdx))
			for j, i := range depthIdx {
				truths[j] = frames[i].Truth.DepthM
				cleanPairs[j] = FramePair{frames[i].Left, frames[i].Right}
			}
			cleanDepth := rectifiedDepthError(t, nominal, k, cleanPairs, truths)
			t.Logf("unperturbed: SGBM median abs rel %.4f", cleanDepth)

			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					knock := rodrigues(c.delta)
					raw := make([]FramePair, len(frames))
					for i, f := range frames {
						raw[i] = FramePair{f.Left, rotateView(f.Right, k, knock)}
					}
					res, err := EstimateRotation(nominal, nominal.Size, raw)
					if err != nil {
						t.Fatal(err)
					}
					errDeg := norm3(rotationVector(mul3(rodrigues(res.Delta), transpose3(knock)))) / deg
					t.Logf("knock %.3f°, estimated %.3f° (%v rad), error %.4f°; %d inliers of %d matches",
						norm3(c.delta)/deg, res.DeltaDeg, res.Delta, errDeg, res.Inliers, res.Matches)
					t.Logf("vertical disparity before: %v; after: %v; better %v", res.Before, res.After, res.Better)

					depthPairs := make([]FramePair, len(depthIdx))
					for j, i := range depthIdx {
						depthPairs[j] = raw[i]
					}
					if c.delta == ([3]float64{}) {
						if res.DeltaDeg >= unperturbedMaxDeltaDeg {
							t.Errorf("no knock, but a correction of %.4f°, want < %g°", res.DeltaDeg, unperturbedMaxDeltaDeg)
						}
						if res.Better && res.Before.Median-res.After.Median > 0.05 {
							t.Errorf("no knock, but the median vertical disparity improves from %.3f to %.3f px",
								res.Before.Median, res.After.Median)
						}
						return
					}
					knockedDepth := rectifiedDepthError(t, nominal, k, depthPairs, truths)
					fixedDepth := rectifiedDepthError(t, res.Corrected, k, depthPairs, truths)
					t.Logf("SGBM median abs rel: unperturbed %.4f, knocked %.4f, recalibrated %.4f",
						cleanDepth, knockedDepth, fixedDepth)

					if res.Before.Median <= perturbedMinMedianPx {
						t.Errorf("knocked rig: median vertical disparity %.3f px, want > %g", res.Before.Median, perturbedMinMedianPx)
					}
					if knockedDepth <= cleanDepth+depthSlack {
						t.Errorf("knocked rig: depth error %.4f, want worse than the unperturbed %.4f + %g",
							knockedDepth, cleanDepth, depthSlack)
					}
					if !res.Better {
						t.Errorf("recalibration not reported better: before %v, after %v", res.Before, res.After)
					}
					if res.After.Median >= recalibratedMaxMedianPx {
						t.Errorf("recalibrated: median vertical disparity %.3f px, want < %g", res.After.Median, recalibratedMaxMedianPx)
					}
					if errDeg >= recalibratedMaxDeltaErrDeg {
						t.Errorf("recalibrated rotation is %.4f° off the knock, want < %g°", errDeg, recalibratedMaxDeltaErrDeg)
					}
					if fixedDepth > cleanDepth+depthSlack {
						t.Errorf("recalibrated: depth error %.4f, want within %g of the unperturbed %.4f",
							fixedDepth, depthSlack, cleanDepth)
					}
					// An independent measurement of the applied calibration, as the
					// command reports it.
					vd, err := rectifiedDisparity(res.Corrected, raw)
					if err != nil {
						t.Fatal(err)
					}
					if vd.Median >= recalibratedMaxMedianPx {
						t.Errorf("rectified with the corrected calibration: %v", vd)
					}
				})
			}
		})
	}
	if got := calib3d.LiveObjects(); got != before {
		t.Errorf("calib3d objects alive: %d, was %d", got, before)
	}
}

// TestEstimateRotationTooFewMatches: featureless images give a clear error, not a
// calibration.
func TestEstimateRotationTooFewMatches(t *testing.T) {
	s := syntheticRig()
	img := camera.NewImage(s.Size.Width, s.Size.Height)
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	pairs := []FramePair{{img, img}, {img, img}}
	_, err := EstimateRotation(s, s.Size, pairs)
	if !errors.Is(err, ErrTooFewMatches) {
		t.Fatalf("blank images: error %v, want ErrTooFewMatches", err)
	}
	if !strings.Contains(err.Error(), "0 feature matches in 2 pairs") {
		t.Errorf("error %q does not say how many matches were found", err)
	}
	if _, err := VerticalDisparity(pairs); !errors.Is(err, ErrTooFewMatches) {
		t.Errorf("VerticalDisparity on blank images: %v, want ErrTooFewMatches", err)
	}
	if _, err := EstimateRotation(s, ImageSize{320, 240}, pairs); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("wrong size: %v, want ErrSizeMismatch", err)
	}
}

func TestSaveWithBackup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stereo.yml")
	old := syntheticRig()
	bak, err := SaveWithBackup(path, old)
	if err != nil {
		t.Fatal(err)
	}
	if bak != "" {
		t.Errorf("first save made backup %q of a file that did not exist", bak)
	}
	oldBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}

	corrected := old.rotateRight([3]float64{0.001, -0.002, 0.003})
	var baks []string
	for range 2 { // twice within a second: the second backup needs another name
		bak, err = SaveWithBackup(path, corrected)
		if err != nil {
			t.Fatal(err)
		}
		baks = append(baks, bak)
	}
	if baks[0] == baks[1] {
		t.Fatalf("two backups named %q", baks[0])
	}
	for _, b := range baks {
		if !strings.HasPrefix(b, path+".") || !strings.HasSuffix(b, ".bak") {
			t.Errorf("backup name %q, want %s.YYYYMMDD-HHMMSS.bak", b, path)
		}
	}
	got, err := os.ReadFile(baks[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, oldBytes) {
		t.Errorf("backup differs from the old file")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want the old file's 0600", st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseOpenCVYAML(path, data)
	if err != nil {
		t.Fatal(err)
	}
	if back.R != corrected.R || back.T != corrected.T || back.K1 != corrected.K1 {
		t.Errorf("read back %+v, want %+v", back, corrected)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 3 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want the file and two backups (no temporary files)", names)
	}

	// An invalid calibration changes nothing.
	bad := corrected
	bad.T = [3]float64{}
	if _, err := SaveWithBackup(path, bad); err == nil {
		t.Fatal("saved a calibration with a zero baseline")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Error("a rejected save changed the file")
	}
}

// TestVerticalDisparityMeasuresShift checks the measurement itself: a simulator pair
// (perfectly rectified) whose right image is shifted down by a known fraction of a
// pixel must show that shift as its vertical disparity.
func TestVerticalDisparityMeasuresShift(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Scene = sim.SceneRoom
	w, err := sim.NewWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := w.Render(0)
	for _, shift := range []float64{0, 0.4, 1.5} {
		right := camera.NewImage(f.Right.Width, f.Right.Height)
		// right'(x, y) = right(x, y − shift), bilinear: content moves down by shift.
		y0 := int(math.Floor(shift))
		a := shift - float64(y0)
		for y := range right.Height {
			ya, yb := y-y0, y-y0-1
			if yb < 0 || ya >= right.Height {
				continue
			}
			for i := range 3 * right.Width {
				v := (1-a)*float64(f.Right.Pix[3*ya*right.Width+i]) + a*float64(f.Right.Pix[3*yb*right.Width+i])
				right.Pix[3*y*right.Width+i] = byte(math.Round(v))
			}
		}
		st, err := VerticalDisparity([]FramePair{{f.Left, right}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("shift %.1f px: %v", shift, st)
		if math.Abs(st.Median-shift) > 0.1 {
			t.Errorf("shift %.1f px measured as a median of %.3f px", shift, st.Median)
		}
		if st.Matches < 500 {
			t.Errorf("shift %.1f px: only %d matches", shift, st.Matches)
		}
	}
}
