package cpu

import (
	"math/rand/v2"
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
)

// convBenchShape is one convolution of Monodepth2 (ResNet-18 encoder and depth decoder)
// at 192×640, batch 2. testdata/conv_bench.py times the same list in PyTorch; keep the
// two in step.
type convBenchShape struct {
	name   string
	x, w   []int
	stride int
	pad    int
	bias   bool
	needX  bool // false where the input is the image, which needs no gradient
}

var convBenchShapes = []convBenchShape{
	{"enc_conv1_7x7s2_3-64_192x640", []int{2, 3, 192, 640}, []int{64, 3, 7, 7}, 2, 3, false, false},
	{"enc_layer1_3x3_64-64_48x160", []int{2, 64, 48, 160}, []int{64, 64, 3, 3}, 1, 1, false, true},
	{"enc_layer2_3x3s2_64-128_48x160", []int{2, 64, 48, 160}, []int{128, 64, 3, 3}, 2, 1, false, true},
	{"enc_layer2_down_1x1s2_64-128_48x160", []int{2, 64, 48, 160}, []int{128, 64, 1, 1}, 2, 0, false, true},
	{"enc_layer3_3x3_256-256_12x40", []int{2, 256, 12, 40}, []int{256, 256, 3, 3}, 1, 1, false, true},
	{"enc_layer4_3x3_512-512_6x20", []int{2, 512, 6, 20}, []int{512, 512, 3, 3}, 1, 1, false, true},
	// The decoder pads by reflection (Pad2D) and then convolves without padding.
	{"dec_upconv1_1_3x3_96-32_96x320", []int{2, 96, 98, 322}, []int{32, 96, 3, 3}, 1, 0, true, true},
	{"dec_upconv0_1_3x3_16-16_192x640", []int{2, 16, 194, 642}, []int{16, 16, 3, 3}, 1, 0, true, true},
	{"dec_dispconv0_3x3_16-1_192x640", []int{2, 16, 194, 642}, []int{1, 16, 3, 3}, 1, 0, true, true},
}

// BenchmarkConv2D times the forward pass, and the forward and backward passes, of
// Monodepth2's typical convolutions. Compare with
//
//	go test ./tensor/cpu/ -run '^$' -bench Conv2D -benchtime 3x
//	/usr/bin/python3 tensor/cpu/testdata/conv_bench.py
//
// (both use GOMAXPROCS / all cores unless told otherwise; ms/op is per call).
func BenchmarkConv2D(b *testing.B) {
	be := New(0)
	b.Logf("OpenBLAS kernels %s, %d threads", blasSetup(), be.Threads())
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(shape ...int) *tensor.Tensor {
		v := make([]float32, tensor.Shape(shape).Len())
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		t, err := be.FromHost(v, shape...)
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	for _, c := range convBenchShapes {
		x, w := rnd(c.x...), rnd(c.w...)
		var bias *tensor.Tensor
		if c.bias {
			bias = rnd(c.w[0])
		}
		p := tensor.Conv2DParams{Stride: [2]int{c.stride, c.stride}, Padding: [2]int{c.pad, c.pad}}
		y, err := be.Conv2D(x, w, bias, p)
		if err != nil {
			b.Fatal(err)
		}
		dy := rnd(y.Shape...)
		flops := 2 * float64(y.Len()) * float64(c.w[1]*c.w[2]*c.w[3])
		report := func(b *testing.B, passes float64) {
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/op")
			b.ReportMetric(passes*flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		}
		b.Run(c.name+"/fwd", func(b *testing.B) {
			for b.Loop() {
				y, err := be.Conv2D(x, w, bias, p)
				if err != nil {
					b.Fatal(err)
				}
				be.Free(y)
			}
			report(b, 1)
		})
		b.Run(c.name+"/fwdbwd", func(b *testing.B) {
			passes := 2.0 // forward and dW
			if c.needX {
				passes = 3
			}
			for b.Loop() {
				y, err := be.Conv2D(x, w, bias, p)
				if err != nil {
					b.Fatal(err)
				}
				dx, dw, db, err := be.Conv2DBackward(x, w, dy, p, c.needX, c.bias)
				if err != nil {
					b.Fatal(err)
				}
				for _, t := range []*tensor.Tensor{y, dx, dw, db} {
					if t != nil {
						be.Free(t)
					}
				}
			}
			report(b, passes)
		})
	}
}
