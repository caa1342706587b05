package sim

import (
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

// SimEpoch is the capture time of frame 0 of every World: frame i is captured at
// SimEpoch + i/FPS. A fixed epoch keeps rendered sequences byte-identical run to run.
var SimEpoch = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)

// World is a simulated scene with a stereo rig moving through it. It is immutable after
// NewWorld: every method is safe for concurrent use, and frame i is the same bytes
// whenever, wherever and in whatever order it is rendered.
type World struct {
	cfg    Config // resolved
	k      camera.Intrinsics
	fx, fy float64
	scene  scene
}

// NewWorld validates cfg and builds the world it describes.
func NewWorld(cfg Config) (*World, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.Resolved()
	fx, fy, cx, cy := cfg.Intrinsics()
	w := &World{
		cfg: cfg,
		k:   camera.Intrinsics{Fx: fx, Fy: fy, Cx: cx, Cy: cy, Width: cfg.Width, Height: cfg.Height},
		fx:  fx, fy: fy,
	}
	switch cfg.Scene {
	case SceneStreet:
		w.scene = newStreet(cfg)
	case SceneRoom:
		w.scene = newRoom(cfg)
	default:
		// Validate accepted a scene this switch does not know: a programmer error.
		panic(fmt.Sprintf("sim: scene %q has no generator", cfg.Scene))
	}
	return w, nil
}

// Config returns the world's configuration with every default resolved.
func (w *World) Config() Config { return w.cfg }

// Intrinsics of both (rectified) eyes.
func (w *World) Intrinsics() camera.Intrinsics { return w.k }

// BaselineM is the distance between the eyes in metres.
func (w *World) BaselineM() float64 { return w.cfg.BaselineM }

// Name identifies the world, e.g. "sim:street:seed=1".
func (w *World) Name() string { return fmt.Sprintf("sim:%s:seed=%d", w.cfg.Scene, w.cfg.Seed) }

func (w *World) simTime(i int) float64 { return float64(i) / w.cfg.FPS }

// CaptureTime is SimEpoch + i/FPS, rounded to the nanosecond.
func (w *World) CaptureTime(i int) time.Time {
	return SimEpoch.Add(time.Duration(math.Round(float64(i) * 1e9 / w.cfg.FPS)))
}

// PoseAt is the pose of the left camera in the world at frame i (world_T_camera, camera
// axes x right, y down, z forward). The world frame is gravity-aligned with y down; see
// the package documentation.
func (w *World) PoseAt(i int) camera.Pose {
	p, q := w.scene.pose(w.simTime(i))
	return camera.Pose{Position: [3]float64{p.x, p.y, p.z}, Orientation: [4]float64{q.x, q.y, q.z, q.w}}
}

// Render renders frame i (i >= 0), spreading rows over up to GOMAXPROCS goroutines.
// The frame owns freshly allocated buffers.
func (w *World) Render(i int) camera.StereoFrame {
	var f camera.StereoFrame
	w.RenderInto(i, &f)
	return f
}

// RenderInto renders frame i into f, reusing f's image and depth buffers when they have
// the right size (a frame handed to a consumer must not be rendered into again).
func (w *World) RenderInto(i int, f *camera.StereoFrame) {
	w.renderInto(i, f, runtime.GOMAXPROCS(0))
}

func (w *World) renderInto(i int, f *camera.StereoFrame, workers int) {
	if i < 0 {
		panic(fmt.Sprintf("sim: render frame %d: frame numbers start at 0", i))
	}
	width, height := w.cfg.Width, w.cfg.Height
	reuse := func(m camera.Image) camera.Image {
		if m.Width == width && m.Height == height && len(m.Pix) == 3*width*height {
			return m
		}
		return camera.NewImage(width, height)
	}
	f.Left, f.Right = reuse(f.Left), reuse(f.Right)
	if f.Truth == nil {
		f.Truth = &camera.GroundTruth{}
	}
	if len(f.Truth.DepthM) != width*height {
		f.Truth.DepthM = make([]float32, width*height)
	}
	w.render(i, f.Left.Pix, f.Right.Pix, f.Truth.DepthM, workers)
	f.Truth.Pose = w.PoseAt(i)
	f.Seq = uint64(i)
	f.CaptureTime = w.CaptureTime(i)
	f.Intrinsics = w.k
	f.BaselineM = w.cfg.BaselineM
}
