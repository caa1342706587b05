package cpu

import "math"

// Single-precision exponentials for the element-wise ops. Go's math package works in
// float64 and is exact to the last bit, which costs about 15 ns an element: the ELUs of
// the depth decoder alone then take longer than its convolutions. These are accurate to
// about 2 ulp of float32 (relative error below 3e-7, tested against math.Exp), which
// is what a float32 backend can use.

const (
	log2e  = 1.44269504088896341
	ln2Hi  = 0.693145751953125        // ln 2 rounded to 17 bits: n·ln2Hi is exact in float32 for |n| < 128
	ln2Lo  = 1.428606765330187045e-06 // ln 2 − ln2Hi
	expMax = 88.72283905206835        // ln(MaxFloat32): above, e^x overflows
	expMin = -103.97207708            // below, e^x is 0 even as a denormal
)

// expf is e^x in float32.
func expf(x float32) float32 {
	switch {
	case x != x: // NaN
		return x
	case x > expMax:
		return float32(math.Inf(1))
	case x < expMin:
		return 0
	}
	// e^x = 2^n · e^r with n = round(x·log2 e) and |r| ≤ ln2/2, r computed in two
	// parts so that it keeps its precision.
	n := float32(math.Floor(float64(x*log2e) + 0.5))
	r := (x - n*ln2Hi) - n*ln2Lo
	// Taylor polynomial of e^r to degree 7: its error on |r| ≤ 0.347 is below 1e-9.
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040)))))))
	return ldexpf(p, int(n))
}

// ldexpf is p·2^n for p in [0.7, 1.42] and the n expf produces (−150…128).
func ldexpf(p float32, n int) float32 {
	if n < -125 || n > 127 {
		// Denormal or near-overflow results: split the scaling in two steps.
		return float32(math.Ldexp(float64(p), n))
	}
	return p * math.Float32frombits(uint32(n+127)<<23)
}

// expm1f is e^x − 1 in float32 with full relative precision near 0, where e^x − 1
// would cancel.
func expm1f(x float32) float32 {
	if x > -0.5 && x < 0.5 {
		// Taylor series: the first omitted term, x^10/10!, is below 3e-10 here.
		return x * (1 + x*(1.0/2+x*(1.0/6+x*(1.0/24+x*(1.0/120+x*(1.0/720+x*(1.0/5040+x*(1.0/40320+x*(1.0/362880)))))))))
	}
	return expf(x) - 1
}
