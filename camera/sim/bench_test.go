package sim

import (
	"path/filepath"
	"testing"

	"github.com/edgedepth/edgedepth/camera"
)

// benchmarkRender renders consecutive frames of both scenes into reused buffers and
// reports stereo frames (both eyes and the depth) per second.
func benchmarkRender(b *testing.B, width, height int) {
	for _, scene := range Scenes() {
		b.Run(scene, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Scene, cfg.Width, cfg.Height = scene, width, height
			w, err := NewWorld(cfg)
			if err != nil {
				b.Fatal(err)
			}
			var f camera.StereoFrame
			w.RenderInto(0, &f)
			b.ReportAllocs()
			cpu0, cpuOK := processCPU()
			i := 0
			for b.Loop() {
				w.RenderInto(i, &f)
				i++
			}
			if cpu1, ok := processCPU(); ok && cpuOK {
				b.ReportMetric(float64(cpu1-cpu0)/1e6/float64(i), "cpu-ms/frame")
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(float64(2*width*height*i)/b.Elapsed().Seconds()/1e6, "Mrays/s")
		})
	}
}

func BenchmarkRender640x192(b *testing.B)  { benchmarkRender(b, 640, 192) }
func BenchmarkRender640x480(b *testing.B)  { benchmarkRender(b, 640, 480) }
func BenchmarkRender1280x720(b *testing.B) { benchmarkRender(b, 1280, 720) }

// BenchmarkWriteSequence measures rendering plus PNG encoding to disk.
func BenchmarkWriteSequence(b *testing.B) {
	w, err := NewWorld(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	const frames = 8
	n := 0
	for b.Loop() {
		if err := WriteSequence(b.Context(), filepath.Join(b.TempDir(), "seq"), w, frames, nil); err != nil {
			b.Fatal(err)
		}
		n += frames
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "frames/s")
}
