package cpu_test

import (
	"testing"

	"github.com/edgedepth/edgedepth/tensor"
	"github.com/edgedepth/edgedepth/tensor/cpu"
)

// Element-wise kernels are bound by memory bandwidth: SetBytes counts the bytes each
// call reads and writes, so -bench reports GB/s to compare with the machine's.

func benchTensor(b *testing.B, be *cpu.Backend, shape ...int) *tensor.Tensor {
	b.Helper()
	data := make([]float32, tensor.Shape(shape).Len())
	for i := range data {
		data[i] = 1 + float32(i%97)/97
	}
	t, err := be.FromHost(data, shape...)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func benchBinary(b *testing.B, as, cs []int) {
	be := cpu.New(0)
	x, y := benchTensor(b, be, as...), benchTensor(b, be, cs...)
	b.SetBytes(int64(4 * (2*x.Len() + y.Len())))
	for b.Loop() {
		out, err := be.Binary(tensor.Mul, x, y)
		if err != nil {
			b.Fatal(err)
		}
		be.Free(out)
	}
}

func BenchmarkBinaryMulSameShape(b *testing.B) {
	benchBinary(b, []int{2, 64, 96, 320}, []int{2, 64, 96, 320})
}

func BenchmarkBinaryMulPerChannel(b *testing.B) {
	benchBinary(b, []int{2, 64, 96, 320}, []int{1, 64, 1, 1})
}

func BenchmarkBinaryBackwardMulPerChannel(b *testing.B) {
	be := cpu.New(0)
	x, y, dy := benchTensor(b, be, 2, 64, 96, 320), benchTensor(b, be, 1, 64, 1, 1), benchTensor(b, be, 2, 64, 96, 320)
	b.SetBytes(int64(4 * 4 * x.Len()))
	for b.Loop() {
		da, db, err := be.BinaryBackward(tensor.Mul, x, y, dy, true, true)
		if err != nil {
			b.Fatal(err)
		}
		be.Free(da)
		be.Free(db)
	}
}

func BenchmarkReduceMeanAll(b *testing.B) {
	be := cpu.New(0)
	x := benchTensor(b, be, 2, 1, 192, 640)
	b.SetBytes(int64(4 * x.Len()))
	for b.Loop() {
		out, err := be.Reduce(tensor.Mean, x)
		if err != nil {
			b.Fatal(err)
		}
		be.Free(out)
	}
}
