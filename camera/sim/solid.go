package sim

import "math"

// solidKind names the few shapes the world is built from. Boxes are axis-aligned and
// cylinders vertical: a street and a room are mostly that, and it keeps ray tests cheap.
type solidKind uint8

const (
	solidBox      solidKind = iota // axis-aligned box lo..hi
	solidCylinder                  // vertical cylinder: axis at (c.x, c.z), y from lo.y to hi.y, radius r
	solidSphere                    // centre c, radius r
)

// solid is one textured object. lo and hi bound it for every kind (they are the box
// itself for solidBox) and drive the screen-space culling in render.go.
type solid struct {
	kind   solidKind
	lo, hi vec3
	c      vec3
	r      float64
	mat    *material
}

func box(lo, hi vec3, m *material) solid {
	return solid{kind: solidBox, lo: lo, hi: hi, mat: m}
}

// cylinder stands on the plane y = bottom (world y is down) and rises height metres.
func cylinder(x, z, radius, bottom, height float64, m *material) solid {
	return solid{
		kind: solidCylinder,
		lo:   vec3{x - radius, bottom - height, z - radius},
		hi:   vec3{x + radius, bottom, z + radius},
		c:    vec3{x, 0, z}, r: radius, mat: m,
	}
}

func sphere(c vec3, radius float64, m *material) solid {
	d := vec3{radius, radius, radius}
	return solid{kind: solidSphere, lo: c.sub(d), hi: c.add(d), c: c, r: radius, mat: m}
}

// Faces of a hit, for the normal and the texture coordinates.
const (
	faceNegX int8 = iota // normal -x
	facePosX
	faceNegY
	facePosY
	faceNegZ
	facePosZ
	faceCurved // cylinder side or sphere: normal from the centre
)

// tMin keeps hits just in front of the ray origin (camera) out: nothing real is closer
// than a millimetre, and it guards the divisions below.
const tMin = 1e-3

// hit is the nearest intersection found so far along a ray.
type hit struct {
	t    float64 // ray parameter; with camera-z of the direction = 1 it is z-depth
	face int8
	s    *solid // nil: the environment (ground plane or room shell)
}

// intersect tests ray o + t·d (inv = 1/d per component) against s and records the hit in
// h when it is nearer than h.t.
func (s *solid) intersect(o, d, inv vec3, h *hit) {
	switch s.kind {
	case solidBox:
		s.intersectBox(o, inv, h)
	case solidCylinder:
		s.intersectCylinder(o, d, h)
	case solidSphere:
		s.intersectSphere(o, d, h)
	}
}

// intersectBox is the slab test; the entry face is the slab that was entered last.
func (s *solid) intersectBox(o, inv vec3, h *hit) {
	t0x, t1x := (s.lo.x-o.x)*inv.x, (s.hi.x-o.x)*inv.x
	fx := faceNegX
	if t0x > t1x {
		t0x, t1x = t1x, t0x
		fx = facePosX
	}
	t0y, t1y := (s.lo.y-o.y)*inv.y, (s.hi.y-o.y)*inv.y
	fy := faceNegY
	if t0y > t1y {
		t0y, t1y = t1y, t0y
		fy = facePosY
	}
	t0z, t1z := (s.lo.z-o.z)*inv.z, (s.hi.z-o.z)*inv.z
	fz := faceNegZ
	if t0z > t1z {
		t0z, t1z = t1z, t0z
		fz = facePosZ
	}
	tn, face := t0x, fx
	if t0y > tn {
		tn, face = t0y, fy
	}
	if t0z > tn {
		tn, face = t0z, fz
	}
	tf := fmin(t1x, fmin(t1y, t1z))
	// NaN from 0·inf (a ray in a face's plane) fails these comparisons: a miss.
	if tn <= tf && tn > tMin && tn < h.t {
		h.t, h.face, h.s = tn, face, s
	}
}

func (s *solid) intersectCylinder(o, d vec3, h *hit) {
	ox, oz := o.x-s.c.x, o.z-s.c.z
	a := d.x*d.x + d.z*d.z
	if a > 1e-12 {
		b := ox*d.x + oz*d.z
		c := ox*ox + oz*oz - s.r*s.r
		disc := b*b - a*c
		if disc >= 0 {
			t := (-b - math.Sqrt(disc)) / a
			if t > tMin && t < h.t {
				if y := o.y + t*d.y; y >= s.lo.y && y <= s.hi.y {
					h.t, h.face, h.s = t, faceCurved, s
					return
				}
			}
		}
	}
	// Caps: the top one (y = lo.y, seen from above) or the bottom one.
	if d.y == 0 {
		return
	}
	capY, face := s.lo.y, faceNegY
	if d.y < 0 {
		capY, face = s.hi.y, facePosY
	}
	t := (capY - o.y) / d.y
	if t > tMin && t < h.t {
		x, z := ox+t*d.x, oz+t*d.z
		if x*x+z*z <= s.r*s.r {
			h.t, h.face, h.s = t, face, s
		}
	}
}

func (s *solid) intersectSphere(o, d vec3, h *hit) {
	oc := o.sub(s.c)
	a := d.dot(d)
	b := oc.dot(d)
	c := oc.dot(oc) - s.r*s.r
	disc := b*b - a*c
	if disc < 0 {
		return
	}
	t := (-b - math.Sqrt(disc)) / a
	if t > tMin && t < h.t {
		h.t, h.face, h.s = t, faceCurved, s
	}
}

// normal is the outward unit normal of s at point p on face f.
func (s *solid) normal(p vec3, f int8) vec3 {
	if f != faceCurved {
		return faceNormal(f)
	}
	if s.kind == solidCylinder {
		return vec3{(p.x - s.c.x) / s.r, 0, (p.z - s.c.z) / s.r}
	}
	return p.sub(s.c).scale(1 / s.r)
}

func faceNormal(f int8) vec3 {
	switch f {
	case faceNegX:
		return vec3{-1, 0, 0}
	case facePosX:
		return vec3{1, 0, 0}
	case faceNegY:
		return vec3{0, -1, 0}
	case facePosY:
		return vec3{0, 1, 0}
	case faceNegZ:
		return vec3{0, 0, -1}
	default:
		return vec3{0, 0, 1}
	}
}

// faceUV maps a world point on a planar face to surface coordinates: the two world axes
// in the face's plane, chosen so that v runs down walls (world y) and along floors (z).
func faceUV(p vec3, f int8) (u, v float64) {
	switch f {
	case faceNegX, facePosX:
		return p.z, p.y
	case faceNegY, facePosY:
		return p.x, p.z
	default:
		return p.x, p.y
	}
}
