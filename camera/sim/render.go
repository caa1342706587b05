package sim

import (
	"math"
	"sync"
	"sync/atomic"
)

// Rendering is ray casting: one ray through the centre of every pixel, the nearest
// surface wins, shaded by its material and the light. There are no secondary rays
// (shadows, reflections): nothing depends on where the viewer stands, which keeps the two
// eyes photometrically consistent.
//
// Culling: before a frame, every solid's bounding box is projected into each eye, giving
// a screen rectangle; a pixel only tests the solids whose rectangle covers it, found
// through per-row lists for spans of 32 columns. A street frame holds ~150 solids, a
// pixel typically tests a handful.

// eyeView is one eye's camera for one frame.
type eyeView struct {
	origin vec3
	// The ray of pixel (x, y) is d0 + x·dx + y·dy (world), the camera ray
	// ((x-cx)/fx, (y-cy)/fy, 1) rotated: its camera-z component is 1, so a hit's ray
	// parameter t is its z-depth.
	d0, dx, dy vec3
	rects      []screenRect // per solid
}

// screenRect is a solid's inclusive pixel bounds; empty (x0 > x1) when off screen.
type screenRect struct{ x0, x1, y0, y1 int32 }

// frameJob holds everything to render one stereo frame; rows are rendered in parallel
// and only read it.
type frameJob struct {
	w      *World
	env    *environment
	solids []solid
	eyes   [2]eyeView
	light  vec3 // unit direction towards the light
	sun    float64
	far    float64
	out    [2][]byte // RGB, left and right
	depth  []float32 // left z-depth, or nil
	// scratch is one rowScratch per worker, kept across frames with the job.
	scratch []rowScratch
}

// jobPool recycles the per-frame slices (solids, rectangles) across frames.
var jobPool = sync.Pool{New: func() any { return new(frameJob) }}

// render draws frame i into the two images and the left depth (which may be nil),
// using up to workers goroutines.
func (w *World) render(i int, left, right []byte, depth []float32, workers int) {
	t := w.simTime(i)
	pos, q := w.scene.pose(t)
	rot := q.matrix()

	j := jobPool.Get().(*frameJob)
	defer func() {
		// Keep the scratch slices, drop the references to this frame's buffers.
		j.w, j.env, j.out, j.depth = nil, nil, [2][]byte{}, nil
		jobPool.Put(j)
	}()
	j.w, j.env = w, w.scene.environment()
	j.solids = w.scene.solids(pos, w.cfg.FarM, j.solids[:0])
	j.light, j.sun = j.env.light.at(t)
	j.far = w.cfg.FarM
	j.out = [2][]byte{left, right}
	j.depth = depth
	for e := range j.eyes {
		origin := pos
		if e == 1 {
			// The right eye sits BaselineM along the left camera's x axis.
			origin = pos.addScaled(rot.col(0), w.cfg.BaselineM)
		}
		j.eyes[e] = w.eyeView(origin, &rot, j.solids, j.eyes[e].rects[:0])
	}

	rows := 2 * w.cfg.Height
	const chunk = 4 // rows per work item: small enough to balance, big enough to amortise
	items := (rows + chunk - 1) / chunk
	workers = max(1, min(workers, items))
	for len(j.scratch) < workers {
		j.scratch = append(j.scratch, rowScratch{})
	}
	var next atomic.Int64
	work := func(sc *rowScratch) {
		for {
			it := int(next.Add(1) - 1)
			if it >= items {
				return
			}
			for r := it * chunk; r < min(rows, (it+1)*chunk); r++ {
				j.renderRow(r/w.cfg.Height, r%w.cfg.Height, sc)
			}
		}
	}
	// The calling goroutine works too; helpers are waited for before returning.
	var wg sync.WaitGroup
	for k := 1; k < workers; k++ {
		wg.Go(func() { work(&j.scratch[k]) })
	}
	work(&j.scratch[0])
	wg.Wait()
}

// eyeView sets up the rays of one eye and the screen rectangles of the solids.
func (w *World) eyeView(origin vec3, rot *mat3, solids []solid, rects []screenRect) eyeView {
	cx, cy := w.k.Cx, w.k.Cy
	ex, ey, ez := rot.col(0), rot.col(1), rot.col(2)
	v := eyeView{
		origin: origin,
		dx:     ex.scale(1 / w.fx),
		dy:     ey.scale(1 / w.fy),
	}
	v.d0 = ez.addScaled(ex, -cx/w.fx).addScaled(ey, -cy/w.fy)
	inv := rot.transpose()
	for k := range solids {
		rects = append(rects, w.project(&solids[k], origin, &inv))
	}
	v.rects = rects
	return v
}

// nearZ is the near plane for projecting bounds, metres.
const nearZ = 0.01

// project bounds the screen footprint of a solid's bounding box seen from origin; inv
// rotates world directions into the camera frame. Corners behind the near plane are
// replaced by the points where the box's edges cross it, so a box the camera is next to
// still gets a tight, correct rectangle.
func (w *World) project(s *solid, origin vec3, inv *mat3) screenRect {
	var pts [8]vec3
	for c := range 8 {
		p := vec3{s.lo.x, s.lo.y, s.lo.z}
		if c&1 != 0 {
			p.x = s.hi.x
		}
		if c&2 != 0 {
			p.y = s.hi.y
		}
		if c&4 != 0 {
			p.z = s.hi.z
		}
		pts[c] = inv.apply(p.sub(origin))
	}
	minU, maxU := math.Inf(1), math.Inf(-1)
	minV, maxV := math.Inf(1), math.Inf(-1)
	add := func(p vec3) {
		u := w.fx*p.x/p.z + w.k.Cx
		v := w.fy*p.y/p.z + w.k.Cy
		minU, maxU = fmin(minU, u), fmax(maxU, u)
		minV, maxV = fmin(minV, v), fmax(maxV, v)
	}
	front := 0
	for _, p := range pts {
		if p.z > nearZ {
			add(p)
			front++
		}
	}
	empty := screenRect{x0: 1, x1: 0, y0: 1, y1: 0}
	if front == 0 {
		return empty
	}
	if front < 8 {
		// The 12 edges join corners that differ in one bit.
		for a := range 8 {
			for _, bit := range []int{1, 2, 4} {
				b := a | bit
				if b == a {
					continue
				}
				pa, pb := pts[a], pts[b]
				if (pa.z > nearZ) != (pb.z > nearZ) {
					f := (nearZ - pa.z) / (pb.z - pa.z)
					add(pa.add(pb.sub(pa).scale(f)))
				}
			}
		}
	}
	// One pixel of slack for rounding; clip to the image.
	x0 := fmax(math.Floor(minU)-1, 0)
	x1 := fmin(math.Ceil(maxU)+1, float64(w.cfg.Width-1))
	y0 := fmax(math.Floor(minV)-1, 0)
	y1 := fmin(math.Ceil(maxV)+1, float64(w.cfg.Height-1))
	if x0 > x1 || y0 > y1 {
		return empty
	}
	return screenRect{int32(x0), int32(x1), int32(y0), int32(y1)}
}

// spanW is the width in pixels of the column spans that candidate lists are kept for.
const spanW = 32

// rowScratch is a worker's reusable memory: for each span of spanW columns of the
// current row, the solids whose screen rectangle reaches into it.
type rowScratch struct {
	spans [][]int32
}

// renderRow casts the rays of row y of eye e.
func (j *frameJob) renderRow(e, y int, sc *rowScratch) {
	v := &j.eyes[e]
	width := j.w.cfg.Width
	nSpans := (width + spanW - 1) / spanW
	if len(sc.spans) != nSpans {
		sc.spans = make([][]int32, nSpans)
	}
	for s := range sc.spans {
		sc.spans[s] = sc.spans[s][:0]
	}
	for k, r := range v.rects {
		if int32(y) >= r.y0 && int32(y) <= r.y1 && r.x0 <= r.x1 {
			for s := r.x0 / spanW; s <= r.x1/spanW; s++ {
				sc.spans[s] = append(sc.spans[s], int32(k))
			}
		}
	}
	out := j.out[e][3*y*width : 3*(y+1)*width]
	var depth []float32
	if e == 0 && j.depth != nil {
		depth = j.depth[y*width : (y+1)*width]
	}
	rowD := v.d0.addScaled(v.dy, float64(y))
	for x := range width {
		d := rowD.addScaled(v.dx, float64(x))
		inv := vec3{1 / d.x, 1 / d.y, 1 / d.z}
		h := hit{t: j.far}
		j.env.hitEnvironment(v.origin, d, &h)
		xi := int32(x)
		for _, k := range sc.spans[x/spanW] {
			if r := &v.rects[k]; xi < r.x0 || xi > r.x1 {
				continue
			}
			j.solids[k].intersect(v.origin, d, inv, &h)
		}
		var c rgb
		z := float32(0)
		if h.t >= j.far {
			c = j.env.sky(d)
		} else {
			c = j.shade(v, d, &h)
			z = float32(h.t)
		}
		out[3*x] = toByte(c[0], j.env.light.exposure)
		out[3*x+1] = toByte(c[1], j.env.light.exposure)
		out[3*x+2] = toByte(c[2], j.env.light.exposure)
		if depth != nil {
			depth[x] = z
		}
	}
}

// shade returns the radiance of the surface hit by ray d.
func (j *frameJob) shade(v *eyeView, d vec3, h *hit) rgb {
	p := v.origin.addScaled(d, h.t)
	var n vec3
	var m *material
	if h.s == nil {
		n, m = j.env.envNormal(h.face), j.env.envMaterial(h.face)
	} else {
		n, m = h.s.normal(p, h.face), h.s.mat
	}
	s := surface{p: p, curved: h.face == faceCurved}
	if !s.curved {
		s.u, s.v = faceUV(p, h.face)
		s.wall = h.face != faceNegY && h.face != facePosY
	}
	s.fp = footprint(h.t, d, n, v.dx, v.dy)
	c := m.albedo(&s)
	light := j.env.light.ambient + j.sun*fmax(0, n.dot(j.light))
	c = c.scale(light)
	if l := &j.env.light; h.t > l.fadeStart {
		// Aerial haze over the last stretch before the far clip, so the street does not
		// end in a hard line: the horizon colour is the sky's at the horizon.
		c = mix(c, j.env.horizon, smoothstep(l.fadeStart, l.fadeStart+l.fadeRange, h.t))
	}
	return c
}

// footprint is the size of a pixel on the surface with normal n hit at ray parameter t,
// from ray differentials: moving one pixel right (left), the hit point moves by
// t·(e - d·(n·e)/(n·d)) for the per-pixel ray step e. The horizontal footprint is what
// stereo correspondence samples across, so it is never under-filtered; the vertical one,
// stretched on surfaces seen at grazing angles, enters through the geometric mean,
// trading a little vertical aliasing for detail on the road ahead.
func footprint(t float64, d, n, ex, ey vec3) float64 {
	nd := n.dot(d)
	if math.Abs(nd) < 1e-6 {
		return 1e3
	}
	a := ex.sub(d.scale(n.dot(ex) / nd))
	b := ey.sub(d.scale(n.dot(ey) / nd))
	// max(|a|, sqrt(|a|·|b|)) with one square root fewer.
	a2, b2 := a.dot(a), b.dot(b)
	return t * math.Sqrt(fmax(a2, math.Sqrt(a2*b2)))
}

func toByte(v, exposure float64) byte {
	x := v*exposure + 0.5
	if x <= 0 {
		return 0
	}
	if x >= 255 {
		return 255
	}
	return byte(x)
}
