package odom

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func transform(pts [][3]float64, a Alignment) [][3]float64 {
	out := make([][3]float64, len(pts))
	for i, p := range pts {
		out[i] = a.Apply(p)
	}
	return out
}

func checkAlignment(t *testing.T, name string, got, want Alignment, tol float64) {
	t.Helper()
	var d float64
	for i := range 3 {
		d = max(d, math.Abs(got.T[i]-want.T[i]))
		for j := range 3 {
			d = max(d, math.Abs(got.R[i][j]-want.R[i][j]))
		}
	}
	d = max(d, math.Abs(got.Scale-want.Scale))
	if d > tol {
		t.Errorf("%s: got %+v, want %+v (diff %g)", name, got, want, d)
	}
}

func TestAlignRecoversKnownTransform(t *testing.T) {
	// A tetrahedron (full rank), a square (coplanar: rank 2, where the plain SVD
	// solution may be a reflection) and random clouds.
	rng := rand.New(rand.NewPCG(7, 8))
	clouds := map[string][][3]float64{
		"tetrahedron": {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}},
		"square":      {{0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {0, 1, 0}},
		"triangle":    {{0, 0, 5}, {2, 0, 5}, {0, 3, 5}},
	}
	var cloud [][3]float64
	for range 50 {
		cloud = append(cloud, [3]float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()})
	}
	clouds["random"] = cloud
	for name, est := range clouds {
		for k := range 20 {
			p := randomPose(rng, math.Pi, 20)
			want := Alignment{R: p.R, T: p.T, Scale: 0.2 + 5*rng.Float64()}
			gt := transform(est, want)
			got, err := Align(est, gt, true)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkAlignment(t, name+" sim3", got, want, 1e-12)
			// Without scale, an exactly rigid motion comes back too.
			want.Scale = 1
			gt = transform(est, want)
			if got, err = Align(est, gt, false); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkAlignment(t, name+" se3", got, want, 1e-12)
			if k == 0 && det3(got.R) < 0 {
				t.Fatalf("%s: det R < 0", name)
			}
		}
	}
}

func TestAlignByHand(t *testing.T) {
	// gt = 2·Rz(90°)·est + (1, 0, 0): x → 2y + (1, 0, 0).
	est := [][3]float64{{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	gt := [][3]float64{{1, 0, 0}, {1, 2, 0}, {-1, 0, 0}, {1, 0, 2}}
	got, err := Align(est, gt, true)
	if err != nil {
		t.Fatal(err)
	}
	want := Alignment{R: [3][3]float64{{0, -1, 0}, {1, 0, 0}, {0, 0, 1}}, T: [3]float64{1, 0, 0}, Scale: 2}
	checkAlignment(t, "by hand", got, want, 1e-14)

	// Without scale, the rigid fit of a scaled copy keeps the centroids together:
	// T = μgt − R·μest.
	got, err = Align(est, gt, false)
	if err != nil {
		t.Fatal(err)
	}
	want.Scale = 1
	want.T = [3]float64{0.5 - (-0.25), 0.5 - 0.25, 0.5 - 0.25} // μgt = (0.5, 0.5, 0.5), R·μest = (−0.25, 0.25, 0.25)
	checkAlignment(t, "by hand, rigid", got, want, 1e-14)
}

func TestAlignReflection(t *testing.T) {
	// gt is the mirror image of est (z → −z): the best fit without the sign correction
	// would be the reflection. Align must return a proper rotation that is a minimum
	// among nearby rotations.
	est := [][3]float64{{0, 0, 0}, {1, 0, 0}, {0, 2, 0}, {0, 0, 3}, {1, 1, 1}}
	gt := make([][3]float64, len(est))
	for i, p := range est {
		gt[i] = [3]float64{p[0], p[1], -p[2]}
	}
	for _, withScale := range []bool{false, true} {
		a, err := Align(est, gt, withScale)
		if err != nil {
			t.Fatal(err)
		}
		if d := det3(a.R); math.Abs(d-1) > 1e-12 {
			t.Fatalf("det R = %g, want 1", d)
		}
		cost := func(a Alignment) float64 {
			var c float64
			for i := range est {
				e := sub(a.Apply(est[i]), gt[i])
				c += dot(e, e)
			}
			return c
		}
		best := cost(a)
		rng := rand.New(rand.NewPCG(9, 10))
		for range 500 {
			b := a
			b.R = matMul(randomPose(rng, 0.05, 0).R, a.R)
			if withScale {
				b.Scale *= 1 + 0.05*(2*rng.Float64()-1)
			}
			// Best translation for b: centroid difference.
			var mx, my [3]float64
			for i := range est {
				mx, my = add(mx, est[i]), add(my, gt[i])
			}
			r := matVec(b.R, mx)
			for k := range 3 {
				b.T[k] = (my[k] - b.Scale*r[k]) / float64(len(est))
			}
			if c := cost(b); c < best-1e-12 {
				t.Fatalf("withScale %v: a nearby rotation fits better: %g < %g", withScale, c, best)
			}
		}
	}
}

func TestAlignCollinear(t *testing.T) {
	// A straight line: the rotation about it is free; Align takes the smallest rotation
	// and the aligned points are exact.
	est := [][3]float64{{0, 0, 0}, {1, 0, 0}, {2, 0, 0}, {3.5, 0, 0}}
	for _, dir := range [][3]float64{{0, 1, 0}, {1, 0, 0}, {-1, 0, 0}, {0.6, 0, 0.8}, {-0.6, 0, -0.8}} {
		gt := make([][3]float64, len(est))
		for i, p := range est {
			gt[i] = [3]float64{5 + 2*p[0]*dir[0], -1 + 2*p[0]*dir[1], 2 + 2*p[0]*dir[2]}
		}
		a, err := Align(est, gt, true)
		if err != nil {
			t.Fatalf("dir %v: %v", dir, err)
		}
		for i := range est {
			if d := vecDiff(a.Apply(est[i]), gt[i]); d > 1e-13 {
				t.Errorf("dir %v: point %d off by %g", dir, i, d)
			}
		}
		if math.Abs(a.Scale-2) > 1e-14 {
			t.Errorf("dir %v: scale %g, want 2", dir, a.Scale)
		}
		want := math.Acos(max(-1, min(1, dir[0])))
		if got := (Pose{R: a.R}).Angle(); math.Abs(got-want) > 1e-7 {
			t.Errorf("dir %v: rotation angle %g, want the least, %g", dir, got, want)
		}
		if d := orthonormalityError(a.R); d > 1e-14 || det3(a.R) < 0 {
			t.Errorf("dir %v: R is not a rotation", dir)
		}
	}
}

func TestAlignErrors(t *testing.T) {
	tests := []struct {
		name    string
		est, gt [][3]float64
		is      error
	}{
		{"lengths differ", [][3]float64{{0, 0, 0}, {1, 0, 0}, {0, 1, 0}}, [][3]float64{{0, 0, 0}}, nil},
		{"two points", [][3]float64{{0, 0, 0}, {1, 0, 0}}, [][3]float64{{0, 0, 0}, {1, 0, 0}}, ErrTooFewPoints},
		{"none", nil, nil, ErrTooFewPoints},
		{"est coincide", [][3]float64{{1, 2, 3}, {1, 2, 3}, {1, 2, 3}}, [][3]float64{{0, 0, 0}, {1, 0, 0}, {0, 1, 0}}, ErrDegenerate},
		{"gt coincide", [][3]float64{{0, 0, 0}, {1, 0, 0}, {0, 1, 0}}, [][3]float64{{0.1, 0.1, 0.1}, {0.1, 0.1, 0.1}, {0.1, 0.1, 0.1}}, ErrDegenerate},
		{"uncorrelated", [][3]float64{{-1, 0, 0}, {0, 0, 0}, {1, 0, 0}}, [][3]float64{{1, 0, 0}, {-2, 0, 0}, {1, 0, 0}}, ErrDegenerate},
		{"nan", [][3]float64{{0, 0, 0}, {1, 0, 0}, {0, math.NaN(), 0}}, [][3]float64{{0, 0, 0}, {1, 0, 0}, {0, 1, 0}}, nil},
		{"inf", [][3]float64{{0, 0, 0}, {1, 0, 0}, {0, 1, 0}}, [][3]float64{{0, 0, 0}, {1, 0, 0}, {0, math.Inf(1), 0}}, nil},
	}
	for _, tc := range tests {
		_, err := Align(tc.est, tc.gt, true)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.is)
		}
	}
}
