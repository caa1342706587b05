package sim

import "math"

// Textures are functions of the surface point, never of the viewer: the left eye, the
// right eye and every later frame see the same albedo at the same point, which is the
// brightness-constancy assumption that block matching and photometric losses rely on.
// Each texture is filtered to the pixel footprint (see octaves.at2 and coverage), so
// detail finer than a pixel fades to its mean instead of aliasing into noise that would
// differ between the two eyes.

// rgb is an albedo or a radiance, nominally in [0, 1]. Radiance maps to 8 bits by a
// plain scale (lighting.exposure): there is no camera response curve to invert.
type rgb [3]float64

func (c rgb) scale(s float64) rgb { return rgb{c[0] * s, c[1] * s, c[2] * s} }

func mix(a, b rgb, t float64) rgb {
	return rgb{a[0] + (b[0]-a[0])*t, a[1] + (b[1]-a[1])*t, a[2] + (b[2]-a[2])*t}
}

// pattern is the structured part of a material, drawn over its noise.
type pattern uint8

const (
	patPlain  pattern = iota // noise only: plaster, concrete, paint, foliage, fabric
	patBricks                // running-bond bricks with mortar joints
	patTiles                 // square tiles or paving slabs with grout joints
	patPlanks                // floorboards: long staggered boards with grain along u
	patBands                 // horizontal bands along v: siding, painted rings on poles
	patRoad                  // asphalt with lane markings; u = world x, v = world z
)

// material is a procedural albedo. Surface coordinates (u, v) are metres in the surface
// plane, taken from world coordinates so that adjacent solids continue one texture.
type material struct {
	pat          pattern
	col          rgb     // main albedo
	col2         rgb     // joints, bands, road markings
	cellU, cellV float64 // pattern cell size, metres
	line         float64 // joint width, metres
	cellVar      float64 // per-cell brightness variation, fraction of albedo
	contrast     float64 // noise amplitude, fraction of albedo
	grain        float64 // planks: how much longer the grain is along u than along v
	detail       octaves
	windows      *windowGrid // facade windows, nil for none
	road         *roadMarkings
}

// windowGrid lays windows over a facade: a regular grid above the ground floor.
type windowGrid struct {
	pitchU, pitchV float64 // window spacing, metres
	w, h           float64 // window size, metres
	offU, offV     float64 // grid origin, metres
	topV           float64 // no windows at v above this (world y is down: the ground floor)
	frameW         float64 // frame width, metres
	frame, glass   rgb
}

// roadMarkings are painted lines on the road: a dashed centre line and two edge lines.
type roadMarkings struct {
	centreX    float64 // world x of the dashed line
	edgeX      float64 // |x| of the solid edge lines
	width      float64 // line width, metres
	dash, gap  float64 // dash pattern of the centre line, metres
	dashOffset float64
}

// coverage is the fraction of a pixel of footprint fp covered by a shape whose signed
// distance is d (positive inside): a box filter of a step edge.
func coverage(d, fp float64) float64 { return clamp(d/fp+0.5, 0, 1) }

// patternWeight fades a pattern of the given cell size towards its mean when its cells
// shrink to a few pixels, before joints start to alias.
func patternWeight(cell, fp float64) float64 { return clamp(cell/fp*0.25-0.5, 0, 1) }

// surface carries what a material needs about the point being shaded.
type surface struct {
	u, v   float64 // planar surface coordinates, metres
	p      vec3    // world point, for 3-D noise on curved surfaces
	curved bool    // no seam-free (u, v): use 3-D noise
	wall   bool    // a vertical planar face (v is world y)
	fp     float64 // pixel footprint on the surface, metres
}

// albedo evaluates the material at one surface point.
func (m *material) albedo(s *surface) rgb {
	var n float64
	if s.curved {
		n = m.detail.at3(s.p, s.fp)
	} else if m.pat == patPlanks {
		// Wood grain: noise stretched along the board.
		n = m.detail.at2(s.u/m.grain, s.v, s.fp)
	} else {
		n = m.detail.at2(s.u, s.v, s.fp)
	}
	shade := 1 + m.contrast*n
	c := m.col
	switch m.pat {
	case patBricks, patTiles, patPlanks:
		c = m.jointed(s, shade)
	case patBands:
		c = m.bands(s, shade)
	case patRoad:
		c = m.roadAt(s, shade)
	default:
		c = c.scale(shade)
	}
	if m.windows != nil { // on walls only: roofs and floors have none
		c = m.windows.over(c, s, shade)
	}
	return c
}

// jointed draws cells separated by joints: bricks (every other row shifted by half a
// brick), tiles (aligned) or planks (rows shifted at random).
func (m *material) jointed(s *surface, shade float64) rgb {
	fv := s.v / m.cellV
	row := math.Floor(fv)
	fv -= row
	fu := s.u / m.cellU
	switch m.pat {
	case patBricks:
		if int64(row)&1 != 0 {
			fu += 0.5
		}
	case patPlanks:
		fu += float64(hash2(int64(row), 7, m.detail.seed)&1023) / 1024
	}
	col := math.Floor(fu)
	fu -= col
	du := fmin(fu, 1-fu) * m.cellU
	dv := fmin(fv, 1-fv) * m.cellV
	pw := patternWeight(fmin(m.cellU, m.cellV), s.fp)
	// Mean joint fraction, what a pixel sees when the cells are too small to draw.
	meanJoint := m.line/m.cellU + m.line/m.cellV
	joint := pw*coverage(m.line*0.5-fmin(du, dv), s.fp) + (1-pw)*meanJoint
	tint := 1 + pw*m.cellVar*unitHash(hash2(int64(col), int64(row), m.detail.seed^0x5bd1e995))
	return mix(m.col.scale(tint*shade), m.col2.scale(shade), joint)
}

// bands draws horizontal stripes of height cellV, alternating col and col2, each band
// slightly tinted.
func (m *material) bands(s *surface, shade float64) rgb {
	fv := s.v / m.cellV
	row := math.Floor(fv)
	fv -= row
	pw := patternWeight(m.cellV, s.fp)
	// Half of each period is col2; edges at fv = 0.25 and 0.75.
	d := (0.25 - math.Abs(fv-0.5)) * m.cellV
	in := pw*coverage(d, s.fp) + (1-pw)*0.5
	tint := 1 + pw*m.cellVar*unitHash(hash2(int64(row), 3, m.detail.seed))
	return mix(m.col.scale(tint*shade), m.col2.scale(shade), in)
}

// roadAt draws asphalt and the lane markings.
func (m *material) roadAt(s *surface, shade float64) rgb {
	r := m.road
	c := m.col.scale(shade)
	half := r.width * 0.5
	// Solid edge lines.
	paint := coverage(half-math.Abs(math.Abs(s.u)-r.edgeX), s.fp)
	// Dashed centre line: inside the line across, and inside a dash along.
	period := r.dash + r.gap
	along := math.Mod(s.v-r.dashOffset, period)
	if along < 0 {
		along += period
	}
	dashD := fmin(along, r.dash-along)
	centre := fmin(coverage(half-math.Abs(s.u-r.centreX), s.fp), coverage(dashD, s.fp))
	paint = fmax(paint, centre)
	if paint > 0 {
		// Worn paint: the asphalt noise shows through.
		c = mix(c, m.col2.scale(1+0.5*(shade-1)), paint)
	}
	return c
}

// over draws the window grid over the wall colour c.
func (g *windowGrid) over(c rgb, s *surface, shade float64) rgb {
	if !s.wall || s.v > g.topV {
		return c
	}
	fu := (s.u - g.offU) / g.pitchU
	fu = (fu - math.Floor(fu)) * g.pitchU
	fv := (s.v - g.offV) / g.pitchV
	fv = (fv - math.Floor(fv)) * g.pitchV
	// Signed distance to the window rectangle, centred in its cell; positive inside.
	d := fmin(g.w*0.5-math.Abs(fu-g.pitchU*0.5), g.h*0.5-math.Abs(fv-g.pitchV*0.5))
	if d < -s.fp {
		return c
	}
	pw := patternWeight(g.frameW*4, s.fp)
	c = mix(c, g.frame.scale(shade), coverage(d, s.fp))
	// Glass shows curtains and the room behind: textured, never a flat colour, or stereo
	// matching would have nothing to lock on to. The fine noise is reused with more contrast.
	glass := g.glass.scale(1 + 2*(shade-1))
	return mix(c, glass, pw*coverage(d-g.frameW, s.fp)+(1-pw)*coverage(d, s.fp)*0.7)
}
