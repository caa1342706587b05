package trt

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/edgedepth/edgedepth/nn"
	"github.com/edgedepth/edgedepth/nn/onnx"
	"github.com/edgedepth/edgedepth/tensor/cpu"
	"github.com/edgedepth/edgedepth/trainer"
)

// BenchmarkORT times batch-1 depth+pose inference of the full-width Monodepth2
// networks on ONNX Runtime's CPU provider and on our own CPU backend (tensor/cpu,
// trainer.Predict, as `edgedepth bench` times it), with the same number of threads
// (GOMAXPROCS), at 192x640 and 96x320, in one run:
//
//	go test -run '^$' -bench ORT ./jetson/trt
//
// Each size is exported with fixed dimensions, as `edgedepth export onnx` does.
func BenchmarkORT(b *testing.B) {
	// Untimed runs first (b.Loop starts the clock at its first call): ONNX
	// Runtime's first runs grow its memory arena and wake its thread pool.
	const warmup = 3
	threads := runtime.GOMAXPROCS(0)
	be := cpu.New(threads)
	m := randomModel(b, be, 1, 1)
	for _, hw := range [][2]int{{192, 640}, {96, 320}} {
		h, w := hw[0], hw[1]
		target, prev := randomImages(1, h, w, 1), randomImages(1, h, w, 2)
		b.Run(fmt.Sprintf("%dx%d/onnxruntime-cpu-%dthreads", h, w, threads), func(b *testing.B) {
			dir := b.TempDir()
			if _, err := onnx.WriteDir(dir, be, m, onnx.Options{Batch: 1, Height: h, Width: w}, "benchmark"); err != nil {
				b.Fatal(err)
			}
			e := open(b, dir, threads)
			pair := stackPairs(prev, target, 1, h, w)
			disp, depth, aa, tr := make([]float32, h*w), make([]float32, h*w), make([]float32, 3), make([]float32, 3)
			infer := func() {
				if err := e.Depth(target, 1, h, w, disp, depth); err != nil {
					b.Fatal(err)
				}
				if err := e.Pose(pair, 1, h, w, aa, tr); err != nil {
					b.Fatal(err)
				}
			}
			for range warmup {
				infer()
			}
			for b.Loop() {
				infer()
			}
		})
		b.Run(fmt.Sprintf("%dx%d/tensor-cpu-%dthreads", h, w, threads), func(b *testing.B) {
			tgt, err := be.FromHost(target, 1, 3, h, w)
			if err != nil {
				b.Fatal(err)
			}
			defer be.Free(tgt)
			pv, err := be.FromHost(prev, 1, 3, h, w)
			if err != nil {
				b.Fatal(err)
			}
			defer be.Free(pv)
			infer := func() {
				t := nn.NewTape(be)
				if _, _, _, err := trainer.Predict(t, m, tgt, pv); err != nil {
					b.Fatal(err)
				}
				t.Release()
			}
			for range warmup {
				infer()
			}
			for b.Loop() {
				infer()
			}
		})
	}
}
