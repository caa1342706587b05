package odom

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgedepth/edgedepth/camera"
)

// poseDiff is the largest elementwise difference of R and T.
func poseDiff(a, b Pose) float64 {
	var d float64
	for i := range 3 {
		d = max(d, math.Abs(a.T[i]-b.T[i]))
		for j := range 3 {
			d = max(d, math.Abs(a.R[i][j]-b.R[i][j]))
		}
	}
	return d
}

func vecDiff(a, b [3]float64) float64 {
	return max(math.Abs(a[0]-b[0]), math.Abs(a[1]-b[1]), math.Abs(a[2]-b[2]))
}

func randomPose(rng *rand.Rand, maxAngle, maxT float64) Pose {
	axis := [3]float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
	n := norm(axis)
	angle := maxAngle * rng.Float64()
	return FromAxisAngle([3]float64{axis[0] / n * angle, axis[1] / n * angle, axis[2] / n * angle},
		[3]float64{maxT * (2*rng.Float64() - 1), maxT * (2*rng.Float64() - 1), maxT * (2*rng.Float64() - 1)})
}

func TestRotationByHand(t *testing.T) {
	// A quarter turn about z takes x to y; then translate by (1, 2, 3).
	p := FromAxisAngle([3]float64{0, 0, math.Pi / 2}, [3]float64{1, 2, 3})
	if got := p.Apply([3]float64{1, 0, 0}); vecDiff(got, [3]float64{1, 3, 3}) > 1e-15 {
		t.Errorf("Apply(x) = %v, want (1, 3, 3)", got)
	}
	q := p.Quat()
	s := math.Sqrt(0.5)
	if want := [4]float64{0, 0, s, s}; math.Abs(q[2]-want[2]) > 1e-15 || math.Abs(q[3]-want[3]) > 1e-15 || q[0] != 0 || q[1] != 0 {
		t.Errorf("Quat = %v, want %v", q, want)
	}
	if a := p.Angle(); math.Abs(a-math.Pi/2) > 1e-15 {
		t.Errorf("Angle = %v, want pi/2", a)
	}
	if d := p.Distance(); math.Abs(d-math.Sqrt(14)) > 1e-15 {
		t.Errorf("Distance = %v, want sqrt(14)", d)
	}
	// Half turn about x: y → −y, z → −z.
	h := FromQuat([3]float64{}, [4]float64{2, 0, 0, 0}) // normalised inside
	if got := h.Apply([3]float64{1, 2, 3}); vecDiff(got, [3]float64{1, -2, -3}) > 1e-15 {
		t.Errorf("half turn: Apply = %v", got)
	}
	if aa := h.AxisAngle(); vecDiff([3]float64{math.Abs(aa[0]), aa[1], aa[2]}, [3]float64{math.Pi, 0, 0}) > 1e-15 {
		t.Errorf("half turn: AxisAngle = %v", aa)
	}
	if z := FromQuat([3]float64{}, [4]float64{}); z.IsFinite() {
		t.Error("zero quaternion gave a finite rotation")
	}
}

func TestMulInverse(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		a, b := randomPose(rng, math.Pi, 10), randomPose(rng, math.Pi, 10)
		if d := poseDiff(a.Mul(a.Inverse()), Identity()); d > 1e-13 {
			t.Fatalf("a·a⁻¹ differs from identity by %g", d)
		}
		p := [3]float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		if d := vecDiff(a.Mul(b).Apply(p), a.Apply(b.Apply(p))); d > 1e-13 {
			t.Fatalf("(a·b)(p) differs from a(b(p)) by %g", d)
		}
		if d := poseDiff(a.Mul(b).Inverse(), b.Inverse().Mul(a.Inverse())); d > 1e-13 {
			t.Fatalf("(a·b)⁻¹ differs from b⁻¹·a⁻¹ by %g", d)
		}
	}
}

// angles covers the hard cases: zero, tiny (series), moderate, near and at pi.
var angles = []float64{0, 1e-300, 1e-12, 1e-8, 1e-5, 1e-3, 0.049, 0.051, 0.5, 1, 2, 3, math.Pi - 1e-3,
	math.Pi - 1e-6, math.Pi - 1e-9, math.Pi}

func TestExpLogRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, angle := range angles {
		for range 20 {
			axis := [3]float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
			n := norm(axis)
			xi := [6]float64{3 * rng.NormFloat64(), 3 * rng.NormFloat64(), 3 * rng.NormFloat64(),
				axis[0] / n * angle, axis[1] / n * angle, axis[2] / n * angle}
			p := Exp(xi)
			if d := orthonormalityError(p.R); d > 4e-15 {
				t.Fatalf("angle %g: R not orthonormal (%g)", angle, d)
			}
			back := Log(p)
			// At exactly pi the rotation vector's sign is ambiguous: compare the poses.
			if d := poseDiff(Exp(back), p); d > 1e-13 {
				t.Fatalf("angle %g: Exp(Log(p)) differs by %g", angle, d)
			}
			if angle < math.Pi {
				var d float64
				for k := range 6 {
					d = max(d, math.Abs(back[k]-xi[k]))
				}
				if d > 1e-13 {
					t.Fatalf("angle %g: Log(Exp(xi)) = %v, want %v (diff %g)", angle, back, xi, d)
				}
			}
			if a := p.Angle(); math.Abs(a-angle) > 1e-12 {
				t.Fatalf("Angle = %v, want %v", a, angle)
			}
		}
	}
}

// TestExpSeries checks the small-angle branch against the closed form where both are
// accurate, on either side of the switch.
func TestExpSeries(t *testing.T) {
	xi := [6]float64{1, -2, 0.5, 0, 0, 0}
	for _, theta := range []float64{1e-6, 1e-4, 0.01, 0.0499, 0.0501} {
		xi[3], xi[4], xi[5] = 0.6*theta, 0, 0.8*theta
		p := Exp(xi)
		// Independent reference: the Taylor sum of the exponential of the 4×4 twist matrix.
		want := expBySeries(xi)
		if d := poseDiff(p, want); d > 1e-15 {
			t.Errorf("theta %g: Exp differs from the matrix series by %g", theta, d)
		}
	}
}

// expBySeries sums the exponential of the 4×4 twist matrix to convergence.
func expBySeries(xi [6]float64) Pose {
	var m [4][4]float64
	m[0][1], m[0][2], m[1][2] = -xi[5], xi[4], -xi[3]
	m[1][0], m[2][0], m[2][1] = xi[5], -xi[4], xi[3]
	m[0][3], m[1][3], m[2][3] = xi[0], xi[1], xi[2]
	var sum, term [4][4]float64
	for i := range 4 {
		sum[i][i], term[i][i] = 1, 1
	}
	for k := 1; k < 40; k++ {
		var next [4][4]float64
		for i := range 4 {
			for j := range 4 {
				for l := range 4 {
					next[i][j] += term[i][l] * m[l][j]
				}
				next[i][j] /= float64(k)
			}
		}
		term = next
		for i := range 4 {
			for j := range 4 {
				sum[i][j] += term[i][j]
			}
		}
	}
	var p Pose
	for i := range 3 {
		for j := range 3 {
			p.R[i][j] = sum[i][j]
		}
		p.T[i] = sum[i][3]
	}
	return p
}

func TestExpLogTiny(t *testing.T) {
	// For a tiny rotation, Log must return the rotation vector to full relative precision.
	xi := [6]float64{0.1, 0.2, 0.3, 1e-10, -2e-10, 3e-10}
	back := Log(Exp(xi))
	for k := range 6 {
		if math.Abs(back[k]-xi[k]) > 1e-15*math.Abs(xi[k]) {
			t.Errorf("component %d: %g, want %g", k, back[k], xi[k])
		}
	}
	if l := Log(Identity()); l != [6]float64{} {
		t.Errorf("Log(Identity) = %v", l)
	}
}

func TestQuatRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, angle := range angles {
		for range 20 {
			axis := [3]float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
			n := norm(axis)
			s, c := math.Sin(angle/2), math.Cos(angle/2)
			q := [4]float64{axis[0] / n * s, axis[1] / n * s, axis[2] / n * s, c}
			got := FromQuat([3]float64{}, q).Quat()
			if got[3] < 0 {
				t.Fatalf("w = %g < 0", got[3])
			}
			var d float64
			for k := range 4 {
				d = max(d, math.Abs(got[k]-q[k]))
			}
			if angle == math.Pi {
				// w = 0: q and −q are both canonical; compare the rotations.
				d = poseDiff(FromQuat([3]float64{}, got), FromQuat([3]float64{}, q))
			}
			if d > 1e-15 {
				t.Fatalf("angle %g: Quat(FromQuat(q)) = %v, want %v", angle, got, q)
			}
			// −q is the same rotation and comes back with w >= 0.
			neg := FromQuat([3]float64{}, [4]float64{-q[0], -q[1], -q[2], -q[3]}).Quat()
			if angle < math.Pi && math.Abs(neg[3]-q[3]) > 1e-15 {
				t.Fatalf("−q came back as %v", neg)
			}
			// Axis-angle agrees with the quaternion.
			aa := FromQuat([3]float64{}, q).AxisAngle()
			if d := poseDiff(FromAxisAngle(aa, [3]float64{}), FromQuat([3]float64{}, q)); d > 1e-14 {
				t.Fatalf("angle %g: AxisAngle round trip differs by %g", angle, d)
			}
		}
	}
}

func TestCameraPose(t *testing.T) {
	cp := camera.Pose{Position: [3]float64{1, 2, 3}, Orientation: [4]float64{0.1, -0.2, 0.3, -0.9}}
	p := FromCamera(cp)
	back := p.Camera()
	if back.Position != cp.Position {
		t.Errorf("position %v, want %v", back.Position, cp.Position)
	}
	n := math.Sqrt(0.01 + 0.04 + 0.09 + 0.81)
	// w < 0 in: the canonical quaternion is −q/|q|.
	for k := range 4 {
		if want := -cp.Orientation[k] / n; math.Abs(back.Orientation[k]-want) > 1e-15 {
			t.Errorf("orientation %v, want −q/|q|", back.Orientation)
			break
		}
	}
}
