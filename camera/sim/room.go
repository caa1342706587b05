package sim

import (
	"math"
	"slices"
)

// A room is a closed box centred on the world origin in x and z, floor at y = 0, ceiling
// at y = -height (y is down). Furniture stands along the walls, no deeper than
// wallBand metres, and a table may stand in the middle; the rig loops on an ellipse that
// keeps pathMargin metres from every wall, so it never passes through furniture.
const (
	wallBand   = 0.8
	pathMargin = 1.4
	roomCamH   = 1.25 // camera height above the floor, metres
)

type room struct {
	w, d, h float64 // width (x), depth (z), height, metres
	speed   float64
	env     environment
	objects []solid

	// Trajectory: ellipse with semi-axes a (x), b (z); the view turns inwards by bias.
	a, b, start, dir, bias        float64 // start: path length at t = 0, metres
	lookA, lookPeriod, lookPhase  float64
	pitchA, pitchPeriod, pitchPh  float64
	rollA, rollPeriod, rollPhase  float64
	bobA, bobPeriod, bobPhase     float64
	height0, height1, heightPhase float64
	// arc[k] is the path length from angle 0 to angle 2πk/arcSteps.
	arc []float64
}

// arcSteps samples the ellipse's arc length; between samples the angle is interpolated
// linearly, a speed error far below a millimetre a second.
const arcSteps = 2048

// measureArc tabulates the arc length of the ellipse, so that the rig can walk it at a
// constant speed (a constant angular rate would change speed by the axis ratio).
func (rm *room) measureArc() {
	rm.arc = make([]float64, arcSteps+1)
	prevX, prevZ := rm.a, 0.0
	for k := 1; k <= arcSteps; k++ {
		s, c := math.Sincos(2 * math.Pi * float64(k) / arcSteps)
		x, z := rm.a*c, rm.b*s
		rm.arc[k] = rm.arc[k-1] + math.Hypot(x-prevX, z-prevZ)
		prevX, prevZ = x, z
	}
}

// angleAt is the ellipse angle at path length s from angle 0 (any s >= 0, looping).
func (rm *room) angleAt(s float64) float64 {
	perimeter := rm.arc[arcSteps]
	laps := math.Floor(s / perimeter)
	s -= laps * perimeter
	k, _ := slices.BinarySearch(rm.arc, s)
	k = min(max(k, 1), arcSteps)
	f := (s - rm.arc[k-1]) / (rm.arc[k] - rm.arc[k-1])
	return 2 * math.Pi * (laps + (float64(k-1)+f)/arcSteps)
}

// Wall and furniture colours.
var (
	wallPalette = []rgb{
		{0.8, 0.78, 0.72}, {0.7, 0.75, 0.8}, {0.75, 0.7, 0.6}, {0.6, 0.68, 0.6}, {0.82, 0.7, 0.65},
	}
	woodPalette = []rgb{
		{0.55, 0.38, 0.22}, {0.7, 0.55, 0.38}, {0.4, 0.28, 0.18}, {0.75, 0.65, 0.5},
	}
	paintPalette = []rgb{
		{0.85, 0.85, 0.82}, {0.2, 0.2, 0.22}, {0.6, 0.2, 0.15}, {0.2, 0.35, 0.55},
		{0.4, 0.5, 0.3}, {0.7, 0.6, 0.3},
	}
)

func newRoom(cfg Config) *room {
	r := newRNG(cfg.Seed, 3)
	mm := &matMaker{r: r, ts: cfg.TextureScale}
	rm := &room{w: r.rangef(5, 7), d: r.rangef(6, 8.5), h: r.rangef(2.5, 3.1), speed: cfg.SpeedMPS}

	rm.a, rm.b = rm.w/2-pathMargin, rm.d/2-pathMargin
	// A rounder ellipse turns less sharply at the ends of its long axis (radius of
	// curvature short²/long): keep the axes within 1.25 of each other.
	rm.a, rm.b = math.Min(rm.a, 1.25*rm.b), math.Min(rm.b, 1.25*rm.a)
	rm.measureArc()
	rm.start = r.rangef(0, rm.arc[arcSteps])
	rm.dir = 1
	if r.chance(0.5) {
		rm.dir = -1
	}
	rm.bias = deg(r.rangef(20, 35))
	rm.lookA, rm.lookPeriod, rm.lookPhase = deg(r.rangef(4, 8)), r.rangef(7, 11), r.rangef(0, 2*math.Pi)
	rm.pitchA, rm.pitchPeriod, rm.pitchPh = deg(r.rangef(2, 5)), r.rangef(5, 9), r.rangef(0, 2*math.Pi)
	rm.rollA, rm.rollPeriod, rm.rollPhase = deg(r.rangef(0.5, 1.5)), r.rangef(4, 7), r.rangef(0, 2*math.Pi)
	rm.bobA, rm.bobPeriod, rm.bobPhase = r.rangef(0.01, 0.02), r.rangef(1.2, 2), r.rangef(0, 2*math.Pi)
	rm.height0, rm.height1, rm.heightPhase = roomCamH, r.rangef(0.05, 0.15), r.rangef(0, 2*math.Pi)

	lo := vec3{-rm.w / 2, -rm.h, -rm.d / 2}
	hi := vec3{rm.w / 2, 0, rm.d / 2}
	wall1 := mm.jitter(wallPalette[r.intn(len(wallPalette))], 0.08)
	wall2 := mm.jitter(wallPalette[r.intn(len(wallPalette))], 0.08)
	walls := [2]*material{mm.plain(wall1, 0.6, 0.88, 1.3), nil}
	switch r.intn(3) {
	case 0:
		walls[1] = mm.bands(wall2, wall2.scale(0.8), r.rangef(0.1, 0.25))
	case 1:
		walls[1] = mm.jointed(patBricks, mm.jitter(rgb{0.6, 0.32, 0.24}, 0.15), rgb{0.7, 0.68, 0.62}, 0.24, 0.075, 0.01, 0.18)
	default:
		walls[1] = mm.plain(wall2, 0.5, 0.9, 1.5)
	}
	var floor *material
	if r.chance(0.5) {
		floor = mm.jointed(patPlanks, mm.jitter(woodPalette[r.intn(len(woodPalette))], 0.1), rgb{0.15, 0.1, 0.07}, r.rangef(1.2, 2.4), r.rangef(0.12, 0.2), 0.006, 0.2)
	} else {
		c := r.rangef(0.3, 0.6)
		floor = mm.jointed(patTiles, mm.jitter(rgb{0.65, 0.62, 0.58}, 0.2), rgb{0.35, 0.33, 0.3}, c, c, 0.006, 0.15)
	}
	ceiling := mm.jointed(patTiles, mm.jitter(rgb{0.85, 0.85, 0.83}, 0.05), rgb{0.55, 0.55, 0.55}, 0.6, 0.6, 0.02, 0.06)
	rm.env = environment{
		shell: true, shellLo: lo, shellHi: hi,
		// Exit faces: -x, +x walls; -y ceiling (up), +y floor; -z, +z walls.
		shellMat: [6]*material{walls[0], walls[0], ceiling, floor, walls[1], walls[1]},
		light: lighting{
			ambient: 0.55, sun: 0.5,
			elevation: deg(r.rangef(35, 60)), azimuth: r.rangef(0, 2*math.Pi),
			azDrift: deg(6), azPeriod: r.rangef(80, 120), phaseAz: r.rangef(0, 2*math.Pi),
			sunDrift: 0.06, sunPeriod: r.rangef(30, 50), phaseSun: r.rangef(0, 2*math.Pi),
			exposure:  240,
			fadeStart: math.Inf(1),
		},
	}
	rm.furnish(mm)
	return rm
}

func (rm *room) environment() *environment { return &rm.env }

// solids returns the whole room: a few dozen solids, culled per frame on screen.
func (rm *room) solids(_ vec3, _ float64, dst []solid) []solid { return append(dst, rm.objects...) }

// pose loops on the ellipse at the configured speed, looking along the path turned
// inwards by bias, with a slow look-around, pitch, roll and changes of height.
func (rm *room) pose(t float64) (vec3, quat) {
	// Mirroring the angle (dir = -1) walks the other way at the same speed: the ellipse
	// is symmetric about its x axis.
	th := rm.dir * rm.angleAt(rm.start+rm.speed*t)
	s, c := math.Sincos(th)
	x, z := rm.a*c, rm.b*s
	tx, tz := -rm.dir*rm.a*s, rm.dir*rm.b*c // direction of travel
	heading := math.Atan2(tx, tz)
	// Turn towards the centre: positive yaw turns right, towards the camera's right
	// vector (cos h, 0, -sin h), so the sign follows the side the centre is on.
	right := vec3{math.Cos(heading), 0, -math.Sin(heading)}
	inward := rm.bias
	if right.dot(vec3{-x, 0, -z}) < 0 {
		inward = -inward
	}
	yaw := heading + inward + rm.lookA*math.Sin(2*math.Pi*t/rm.lookPeriod+rm.lookPhase)
	pitch := rm.pitchA * math.Sin(2*math.Pi*t/rm.pitchPeriod+rm.pitchPh)
	roll := rm.rollA * math.Sin(2*math.Pi*t/rm.rollPeriod+rm.rollPhase)
	y := -rm.height0 - rm.height1*math.Sin(th*2+rm.heightPhase) + rm.bobA*math.Sin(2*math.Pi*t/rm.bobPeriod+rm.bobPhase)
	return vec3{x, y, z}, yawPitchRoll(yaw, pitch, roll)
}

// furnish places furniture along the four walls, pictures on them, lamps on the ceiling
// and maybe a table in the middle.
func (rm *room) furnish(mm *matMaker) {
	r := mm.r
	hx, hz := rm.w/2, rm.d/2
	// Each wall as an origin corner, a unit direction along it and an inward normal.
	type wall struct {
		ox, oz, ux, uz, nx, nz, length float64
	}
	walls := []wall{
		{-hx, -hz, 1, 0, 0, 1, rm.w}, // far wall z = -hz
		{hx, -hz, 0, 1, -1, 0, rm.d}, // x = +hx
		{hx, hz, -1, 0, 0, -1, rm.w}, // z = +hz
		{-hx, hz, 0, -1, 1, 0, rm.d}, // x = -hx
	}
	// rect is an axis-aligned footprint from wall coordinates (along s0..s1, depth 0..dep).
	rect := func(wl wall, s0, s1, dep float64) (x0, z0, x1, z1 float64) {
		ax, az := wl.ox+wl.ux*s0, wl.oz+wl.uz*s0
		bx, bz := wl.ox+wl.ux*s1+wl.nx*dep, wl.oz+wl.uz*s1+wl.nz*dep
		return math.Min(ax, bx), math.Min(az, bz), math.Max(ax, bx), math.Max(az, bz)
	}
	for _, wl := range walls {
		pos := r.rangef(0.05, 0.5)
		for pos < wl.length-0.6 {
			size := math.Min(r.rangef(0.6, 2.0), wl.length-0.05-pos)
			if r.chance(0.25) { // leave a gap, maybe with a picture or a door
				rm.onWall(mm, wl.ox+wl.ux*(pos+size/2), wl.oz+wl.uz*(pos+size/2), wl.nx, wl.nz, size)
				pos += size + r.rangef(0.1, 0.6)
				continue
			}
			dep := r.rangef(0.35, wallBand)
			height := r.rangef(0.4, 2.2)
			x0, z0, x1, z1 := rect(wl, pos, pos+size, dep)
			rm.objects = append(rm.objects, box(vec3{x0, -height, z0}, vec3{x1, 0, z1}, rm.furnitureMat(mm)))
			if height < 1.2 && r.chance(0.6) { // something on top: a box, a vase, a ball
				cx, cz := (x0+x1)/2+r.rangef(-0.15, 0.15), (z0+z1)/2+r.rangef(-0.1, 0.1)
				item := mm.plain(mm.jitter(paintPalette[r.intn(len(paintPalette))], 0.2), 0.2, 0.9, 1.4)
				switch r.intn(3) {
				case 0:
					s := r.rangef(0.1, 0.2)
					rm.objects = append(rm.objects, box(vec3{cx - s, -height - 2*s, cz - s}, vec3{cx + s, -height, cz + s}, item))
				case 1:
					rm.objects = append(rm.objects, cylinder(cx, cz, r.rangef(0.06, 0.12), -height, r.rangef(0.2, 0.4), item))
				default:
					rad := r.rangef(0.08, 0.15)
					rm.objects = append(rm.objects, sphere(vec3{cx, -height - rad, cz}, rad, item))
				}
			}
			pos += size + r.rangef(0.05, 0.5)
		}
	}
	// A floor lamp in one corner and a ball on the floor near a wall.
	cx, cz := (hx-0.35)*sign(r.float()-0.5), (hz-0.35)*sign(r.float()-0.5)
	pole := mm.bands(rgb{0.3, 0.3, 0.32}, rgb{0.6, 0.6, 0.6}, 0.2)
	shade := mm.plain(mm.jitter(rgb{0.85, 0.8, 0.65}, 0.1), 0.2, 0.9, 1.2)
	lampH := r.rangef(1.4, 1.8)
	rm.objects = append(rm.objects,
		cylinder(cx, cz, 0.025, 0, lampH, pole),
		sphere(vec3{cx, -lampH - 0.15, cz}, 0.2, shade))
	ball := mm.plain(mm.jitter(paintPalette[r.intn(len(paintPalette))], 0.2), 0.15, 0.9, 1.8)
	rad := r.rangef(0.12, 0.25)
	rm.objects = append(rm.objects, sphere(vec3{r.rangef(-hx+0.6, hx-0.6), -rad, (hz - wallBand/2) * sign(r.float()-0.5)}, rad, ball))
	// Ceiling lights: thin panels, textured like everything else.
	panel := mm.plain(rgb{0.92, 0.92, 0.9}, 0.15, 0.85, 0.6)
	for i := 0; i < 2; i++ {
		px, pz := r.rangef(-hx+1, hx-1), r.rangef(-hz+1, hz-1)
		rm.objects = append(rm.objects, box(vec3{px - 0.3, -rm.h, pz - 0.6}, vec3{px + 0.3, -rm.h + 0.04, pz + 0.6}, panel))
	}
	// A table in the middle, inside the loop with at least 0.6 m to spare from the path
	// (checked at the table's corner, the point nearest the ellipse).
	ex, ez := r.rangef(0.3, 0.6), r.rangef(0.4, 0.9)
	for i := 0; i < 8 && sq((ex+0.6)/rm.a)+sq((ez+0.6)/rm.b) > 1; i++ {
		ex, ez = ex*0.85, ez*0.85
	}
	if ex > 0.2 && ez > 0.2 && sq((ex+0.6)/rm.a)+sq((ez+0.6)/rm.b) <= 1 {
		top := rm.furnitureMat(mm)
		th := r.rangef(0.7, 0.78)
		rm.objects = append(rm.objects, box(vec3{-ex, -th, -ez}, vec3{ex, -th + 0.04, ez}, top))
		for _, lx := range []float64{-ex + 0.03, ex - 0.08} {
			for _, lz := range []float64{-ez + 0.03, ez - 0.08} {
				rm.objects = append(rm.objects, box(vec3{lx, -th + 0.04, lz}, vec3{lx + 0.05, 0, lz + 0.05}, top))
			}
		}
	}
}

func sq(v float64) float64 { return v * v }

// onWall hangs a picture or places a door at (x, z) on a wall with inward normal (nx, nz).
func (rm *room) onWall(mm *matMaker, x, z, nx, nz, width float64) {
	r := mm.r
	var w, h, yTop float64
	var m *material
	if r.chance(0.3) && width > 0.95 {
		w, h, yTop = 0.9, 2.05, -2.05
		m = mm.jointed(patPlanks, mm.jitter(woodPalette[r.intn(len(woodPalette))], 0.1), rgb{0.2, 0.15, 0.1}, 2.1, 0.15, 0.004, 0.15)
	} else {
		w, h = math.Min(width*0.8, r.rangef(0.4, 1.2)), r.rangef(0.35, 0.9)
		yTop = -r.rangef(1.3, 1.9) - h/2
		m = mm.plain(mm.jitter(paintPalette[r.intn(len(paintPalette))], 0.3), r.rangef(0.1, 0.4), 0.92, 2.2)
	}
	const thick = 0.03
	// Along the wall is the axis where the normal is zero.
	x0, x1, z0, z1 := x-w/2, x+w/2, z-w/2, z+w/2
	if nx != 0 {
		x0, x1 = math.Min(x, x+nx*thick), math.Max(x, x+nx*thick)
	} else {
		z0, z1 = math.Min(z, z+nz*thick), math.Max(z, z+nz*thick)
	}
	rm.objects = append(rm.objects, box(vec3{x0, yTop, z0}, vec3{x1, yTop + h, z1}, m))
}

// furnitureMat picks wood, paint or fabric.
func (rm *room) furnitureMat(mm *matMaker) *material {
	r := mm.r
	switch r.intn(3) {
	case 0:
		return mm.jointed(patPlanks, mm.jitter(woodPalette[r.intn(len(woodPalette))], 0.1), rgb{0.2, 0.14, 0.1}, r.rangef(0.8, 2), r.rangef(0.1, 0.2), 0.004, 0.15)
	case 1:
		return mm.plain(mm.jitter(paintPalette[r.intn(len(paintPalette))], 0.15), r.rangef(0.3, 0.5), 0.88, 1.2)
	default: // fabric
		return mm.plain(mm.jitter(paintPalette[r.intn(len(paintPalette))], 0.2), 0.2, 0.93, 1.6)
	}
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}
