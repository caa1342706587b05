package sim

import "math"

// The street runs along +z without end: it is cut into segments of segmentLen metres,
// and each segment's contents are a pure function of (seed, segment index), generated
// when a frame needs them. A daemon can therefore drive forward for as long as it runs,
// and frame i renders the same wherever and whenever it is rendered.
//
// Cross-section (world x, metres; y is down, the road surface is y = 0):
//
//	|x| < 2.5      driving lanes, dashed centre line at x = 0, edge lines at |x| = 2.5
//	2.5 … 4.5      parking lanes: parked cars centred at |x| = 3.5
//	4.5 … 4.75     kerb stones, 0.15 m high
//	4.75 …         sidewalk, 0.15 m high, with poles, trees, bins, bollards
//	8 + setback …  building facades (setback 0–1.5 m), or a wall where there is a gap
const (
	segmentLen   = 12.0
	laneEdge     = 2.5
	kerbX        = 4.5
	kerbW        = 0.25
	kerbH        = 0.15
	facadeX      = 8.0
	buildingDeep = 10.0
	parkX        = 3.5
	streetCamH   = 1.5 // camera height above the road, metres
)

type street struct {
	seed  int64
	ts    float64
	speed float64
	env   environment

	// Trajectory parameters (see pose).
	swayA, swayPeriod, swayPhase float64
	lookA, lookPeriod, lookPhase float64
	pitchA, pitchPeriod, pitchPh float64
	rollA, rollPeriod, rollPhase float64
	bobA, bobPeriod, bobPhase    float64
	sidewalk, kerb               []*material // shared by every segment
}

func newStreet(cfg Config) *street {
	r := newRNG(cfg.Seed, 1)
	mm := &matMaker{r: r, ts: cfg.TextureScale}
	s := &street{seed: cfg.Seed, ts: cfg.TextureScale, speed: cfg.SpeedMPS}

	s.swayA, s.swayPeriod, s.swayPhase = r.rangef(0.15, 0.35), r.rangef(9, 14), r.rangef(0, 2*math.Pi)
	s.lookA, s.lookPeriod, s.lookPhase = deg(r.rangef(1, 2.5)), r.rangef(5, 8), r.rangef(0, 2*math.Pi)
	s.pitchA, s.pitchPeriod, s.pitchPh = deg(r.rangef(0.5, 1.5)), r.rangef(3, 6), r.rangef(0, 2*math.Pi)
	s.rollA, s.rollPeriod, s.rollPhase = deg(r.rangef(0.3, 0.8)), r.rangef(4, 7), r.rangef(0, 2*math.Pi)
	s.bobA, s.bobPeriod, s.bobPhase = r.rangef(0.01, 0.03), r.rangef(1.5, 2.5), r.rangef(0, 2*math.Pi)

	asphalt := mm.plain(mm.jitter(rgb{0.30, 0.30, 0.31}, 0.1), 1, 0.9, 1.2)
	asphalt.pat = patRoad
	asphalt.col2 = rgb{0.85, 0.85, 0.8}
	asphalt.road = &roadMarkings{
		centreX: 0, edgeX: laneEdge, width: 0.12,
		dash: 3, gap: r.rangef(5, 9), dashOffset: r.rangef(0, 10),
	}
	s.sidewalk = []*material{
		mm.jointed(patTiles, mm.jitter(rgb{0.55, 0.53, 0.5}, 0.15), rgb{0.3, 0.3, 0.3}, 0.5, 0.5, 0.015, 0.12),
		mm.jointed(patBricks, mm.jitter(rgb{0.5, 0.45, 0.42}, 0.15), rgb{0.28, 0.27, 0.26}, 0.2, 0.1, 0.008, 0.15),
	}
	s.kerb = []*material{mm.plain(mm.jitter(rgb{0.6, 0.6, 0.6}, 0.1), 0.5, 0.9, 1.0)}

	s.env = environment{
		ground:  asphalt,
		horizon: rgb{0.78, 0.82, 0.88},
		zenith:  mm.jitter(rgb{0.35, 0.52, 0.82}, 0.1),
		light: lighting{
			ambient: 0.45, sun: 0.7,
			elevation: deg(r.rangef(30, 60)), azimuth: r.rangef(0, 2*math.Pi),
			azDrift: deg(8), azPeriod: r.rangef(80, 120), phaseAz: r.rangef(0, 2*math.Pi),
			sunDrift: 0.08, sunPeriod: r.rangef(30, 50), phaseSun: r.rangef(0, 2*math.Pi),
			exposure:  245,
			fadeStart: 0.75 * cfg.FarM, fadeRange: 0.25 * cfg.FarM,
		},
	}
	return s
}

func deg(d float64) float64 { return d * math.Pi / 180 }

func (s *street) environment() *environment { return &s.env }

// pose drives forward along +z at the configured speed, swaying laterally; the camera
// looks where the rig is heading (as a vehicle does) plus a small look-around, with a
// little pitch, roll and bounce.
func (s *street) pose(t float64) (vec3, quat) {
	w := 2 * math.Pi / s.swayPeriod
	x := s.swayA * math.Sin(w*t+s.swayPhase)
	vx := s.swayA * w * math.Cos(w*t+s.swayPhase)
	y := -streetCamH + s.bobA*math.Sin(2*math.Pi*t/s.bobPeriod+s.bobPhase)
	z := s.speed * t
	heading := math.Atan2(vx, s.speed)
	yaw := heading + s.lookA*math.Sin(2*math.Pi*t/s.lookPeriod+s.lookPhase)
	pitch := s.pitchA * math.Sin(2*math.Pi*t/s.pitchPeriod+s.pitchPh)
	roll := s.rollA * math.Sin(2*math.Pi*t/s.rollPeriod+s.rollPhase)
	return vec3{x, y, z}, yawPitchRoll(yaw, pitch, roll)
}

// solids appends every segment from just behind p to far metres ahead.
func (s *street) solids(p vec3, far float64, dst []solid) []solid {
	first := int64(math.Floor((p.z - 4) / segmentLen))
	last := int64(math.Floor((p.z + far) / segmentLen))
	for k := first; k <= last; k++ {
		dst = s.segment(k, dst)
	}
	return dst
}

// segment generates segment k (z from k·segmentLen) on both sides of the road.
func (s *street) segment(k int64, dst []solid) []solid {
	z0 := float64(k) * segmentLen
	z1 := z0 + segmentLen
	r := newRNG(s.seed, 2, k)
	mm := &matMaker{r: r, ts: s.ts}
	for _, side := range []float64{-1, 1} {
		// Kerb and sidewalk: long boxes, continuous across segments (textures come from
		// world coordinates, so no seam shows).
		// The paving changes every four segments (48 m).
		walk := s.sidewalk[(k>>2)&1]
		dst = append(dst,
			sideBox(side, kerbX, kerbX+kerbW, -kerbH, 0, z0, z1, s.kerb[0]),
			sideBox(side, kerbX+kerbW, facadeX+buildingDeep, -kerbH, 0, z0, z1, walk),
		)
		dst = s.buildings(mm, side, z0, z1, dst)
		dst = s.furniture(mm, side, z0, z1, dst)
		if r.chance(0.55) {
			dst = parkedCar(mm, side, r.rangef(z0+0.3, z1-4.9), dst)
		}
	}
	return dst
}

// sideBox is a box spanning |x| from a to b on one side of the road.
func sideBox(side, a, b, y0, y1, z0, z1 float64, m *material) solid {
	if side < 0 {
		a, b = -b, -a
	}
	return box(vec3{a, y0, z0}, vec3{b, y1, z1}, m)
}

// Facade colours: brick, render, stone, painted.
var facadePalette = []rgb{
	{0.55, 0.28, 0.2}, {0.7, 0.62, 0.5}, {0.6, 0.6, 0.58}, {0.78, 0.74, 0.66},
	{0.45, 0.5, 0.55}, {0.65, 0.45, 0.35}, {0.5, 0.55, 0.45},
}

// buildings fills one side of a segment with one to three buildings or gaps (a wall).
func (s *street) buildings(mm *matMaker, side, z0, z1 float64, dst []solid) []solid {
	r := mm.r
	n := 1 + r.intn(3)
	cuts := []float64{z0}
	for i := 1; i < n; i++ {
		cuts = append(cuts, z0+segmentLen*float64(i)/float64(n)+r.rangef(-1, 1))
	}
	cuts = append(cuts, z1)
	for i := 0; i < n; i++ {
		a, b := cuts[i], cuts[i+1]
		col := mm.jitter(facadePalette[r.intn(len(facadePalette))], 0.12)
		if r.chance(0.12) {
			// A gap between buildings, closed by a garden wall taller than the camera.
			wall := mm.jointed(patBricks, col, rgb{0.3, 0.3, 0.3}, 0.24, 0.075, 0.01, 0.15)
			dst = append(dst, sideBox(side, facadeX+1, facadeX+1.4, -r.rangef(1.8, 2.4), -kerbH, a, b, wall))
			continue
		}
		floors := 2 + r.intn(5)
		floorH := r.rangef(2.9, 3.4)
		height := float64(floors)*floorH + r.rangef(0.3, 1.2)
		setback := 0.0
		if r.chance(0.5) {
			setback = r.rangef(0.2, 1.5)
		}
		var m *material
		switch r.intn(4) {
		case 0:
			m = mm.jointed(patBricks, col, mm.jitter(rgb{0.7, 0.68, 0.64}, 0.1), r.rangef(0.22, 0.26), r.rangef(0.065, 0.08), 0.01, 0.18)
		case 1:
			c := r.rangef(0.6, 1.2)
			m = mm.jointed(patTiles, col, col.scale(0.6), c, c*r.rangef(0.5, 1), 0.02, 0.1)
		case 2:
			m = mm.bands(col, col.scale(0.8), r.rangef(0.15, 0.3))
		default:
			m = mm.plain(col, r.rangef(0.6, 1.2), 0.88, 1.3)
		}
		pitchU := r.rangef(2.2, 3.5)
		m.windows = &windowGrid{
			pitchU: pitchU, pitchV: floorH,
			w: pitchU * r.rangef(0.4, 0.6), h: floorH * r.rangef(0.45, 0.6),
			offU: r.rangef(0, pitchU), offV: -height + r.rangef(0, 0.5),
			topV:   -floorH, // the ground floor has no windows
			frameW: r.rangef(0.05, 0.1),
			frame:  mm.jitter(rgb{0.85, 0.85, 0.82}, 0.15),
			glass:  mm.jitter(rgb{0.18, 0.22, 0.28}, 0.3),
		}
		near := facadeX + setback
		dst = append(dst, sideBox(side, near, near+buildingDeep, -height, -kerbH, a, b, m))
	}
	return dst
}

// furniture places poles, trees, bins, bollards and bushes on one sidewalk of a segment.
func (s *street) furniture(mm *matMaker, side, z0, z1 float64, dst []solid) []solid {
	r := mm.r
	if r.chance(0.7) { // lamp post or sign pole
		metal := mm.bands(mm.jitter(rgb{0.35, 0.38, 0.4}, 0.2), mm.jitter(rgb{0.7, 0.7, 0.65}, 0.2), r.rangef(0.3, 0.8))
		h := r.rangef(3.5, 6)
		z := r.rangef(z0+0.5, z1-0.5)
		dst = append(dst, cylinder(side*r.rangef(5.0, 5.3), z, r.rangef(0.06, 0.11), -kerbH, h, metal))
		if r.chance(0.5) {
			lamp := mm.plain(mm.jitter(rgb{0.8, 0.8, 0.7}, 0.1), 0.3, 0.85, 0.8)
			dst = append(dst, sphere(vec3{side * 5.15, -kerbH - h - 0.15, z}, 0.25, lamp))
		}
	}
	if r.chance(0.45) { // tree: trunk and crown
		bark := mm.plain(mm.jitter(rgb{0.35, 0.27, 0.2}, 0.15), 0.3, 0.9, 1.5)
		leaves := mm.plain(mm.jitter(rgb{0.25, 0.42, 0.18}, 0.2), 0.5, 0.92, 1.6)
		x, z := side*r.rangef(5.8, 6.6), r.rangef(z0+2, z1-2)
		th, cr := r.rangef(2.8, 3.6), r.rangef(1.0, 1.6)
		dst = append(dst,
			cylinder(x, z, r.rangef(0.12, 0.2), -kerbH, th+cr*0.5, bark),
			sphere(vec3{x, -kerbH - th - cr*0.6, z}, cr, leaves))
	}
	if r.chance(0.4) { // bin
		bin := mm.bands(mm.jitter(rgb{0.2, 0.35, 0.25}, 0.3), mm.jitter(rgb{0.5, 0.5, 0.45}, 0.2), r.rangef(0.15, 0.3))
		dst = append(dst, cylinder(side*r.rangef(5.0, 7.2), r.rangef(z0+0.5, z1-0.5), r.rangef(0.25, 0.35), -kerbH, r.rangef(0.9, 1.1), bin))
	}
	if r.chance(0.35) { // electrical cabinet or bollard block
		cab := mm.plain(mm.jitter(rgb{0.55, 0.55, 0.5}, 0.2), 0.4, 0.9, 1.4)
		x, z := side*r.rangef(5.2, 7.2), r.rangef(z0+1, z1-1)
		wx, wz, h := r.rangef(0.3, 0.7), r.rangef(0.3, 1.0), r.rangef(0.6, 1.4)
		dst = append(dst, box(vec3{x - wx/2, -kerbH - h, z - wz/2}, vec3{x + wx/2, -kerbH, z + wz/2}, cab))
	}
	if r.chance(0.3) { // bush
		bush := mm.plain(mm.jitter(rgb{0.22, 0.38, 0.16}, 0.25), 0.4, 0.92, 1.6)
		rad := r.rangef(0.4, 0.7)
		dst = append(dst, sphere(vec3{side * r.rangef(6.2, 7.3), -kerbH - rad*0.6, r.rangef(z0+1, z1-1)}, rad, bush))
	}
	return dst
}

// Car paint colours.
var carPalette = []rgb{
	{0.7, 0.1, 0.1}, {0.1, 0.2, 0.5}, {0.8, 0.8, 0.78}, {0.15, 0.15, 0.15},
	{0.5, 0.5, 0.52}, {0.2, 0.4, 0.25}, {0.75, 0.6, 0.2},
}

// parkedCar is a car as boxes: body, cabin and four wheels, starting at z and about 4.5 m
// long. The paint is textured (dirt, scratches) so that stereo can match it.
func parkedCar(mm *matMaker, side, z float64, dst []solid) []solid {
	r := mm.r
	length := r.rangef(3.9, 4.6)
	width := r.rangef(1.7, 1.9)
	cx := side * parkX
	paint := mm.plain(mm.jitter(carPalette[r.intn(len(carPalette))], 0.1), 0.6, 0.85, 0.7)
	glass := mm.plain(mm.jitter(rgb{0.15, 0.18, 0.22}, 0.2), 0.4, 0.9, 1.8)
	tyre := mm.plain(rgb{0.1, 0.1, 0.1}, 0.2, 0.9, 1.5)
	bodyTop := -r.rangef(0.9, 1.05)
	roof := bodyTop - r.rangef(0.4, 0.55)
	dst = append(dst,
		box(vec3{cx - width/2, bodyTop, z}, vec3{cx + width/2, -0.28, z + length}, paint),
		box(vec3{cx - width/2 + 0.08, roof, z + length*0.25}, vec3{cx + width/2 - 0.08, bodyTop, z + length*0.8}, glass),
	)
	for _, wz := range []float64{z + 0.45, z + length - 1.05} {
		for _, wx := range []float64{cx - width/2 + 0.05, cx + width/2 - 0.27} {
			dst = append(dst, box(vec3{wx, -0.62, wz}, vec3{wx + 0.22, 0, wz + 0.6}, tyre))
		}
	}
	return dst
}
