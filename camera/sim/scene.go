package sim

import "math"

// scene is one kind of world: its layout, its lighting and the rig's trajectory through it.
// Implementations are immutable after construction and safe for concurrent use.
type scene interface {
	// pose is the left camera's position and orientation (world_T_camera) at sim time t.
	pose(t float64) (vec3, quat)
	// solids appends the solids that may be visible from p within far metres.
	solids(p vec3, far float64, dst []solid) []solid
	// environment is what a ray meets when it misses every solid.
	environment() *environment
}

// environment is the unbounded part of a world: a ground plane under an open sky (street)
// or the inside of a closed box (room), plus the lighting.
type environment struct {
	// ground, if not nil, is the plane y = 0 with this material.
	ground *material
	// shell, if set, is the inside of the box shellLo..shellHi, one material per face
	// (indexed by the face constants: the face a ray leaves through).
	shell            bool
	shellLo, shellHi vec3
	shellMat         [6]*material
	// Sky colours (radiance) at the horizon and the zenith.
	horizon, zenith rgb

	light lighting
}

// lighting is ambient plus one directional light (Lambertian), drifting slowly with time
// so that a long run is not photometrically frozen, while two frames a few tenths of a
// second apart, and the two eyes of one frame, see the same light.
type lighting struct {
	ambient   float64 // radiance factor on every surface
	sun       float64 // factor of the directional light on a surface facing it
	elevation float64 // radians above the horizon
	azimuth   float64 // radians, 0 = towards +z, positive towards +x
	// Drift: the light's azimuth swings by azDrift radians over azPeriod seconds and its
	// intensity by ±sunDrift (fraction) over sunPeriod seconds.
	azDrift, azPeriod    float64
	sunDrift, sunPeriod  float64
	phaseAz, phaseSun    float64
	exposure             float64 // radiance to 8-bit scale, 255 = white
	fadeStart, fadeRange float64 // street: surfaces fade to the horizon colour beyond fadeStart
}

// at returns the unit direction towards the light (world) and the light's intensity at
// sim time t.
func (l *lighting) at(t float64) (vec3, float64) {
	az := l.azimuth + l.azDrift*math.Sin(2*math.Pi*t/l.azPeriod+l.phaseAz)
	sun := l.sun * (1 + l.sunDrift*math.Sin(2*math.Pi*t/l.sunPeriod+l.phaseSun))
	ce, se := math.Cos(l.elevation), math.Sin(l.elevation)
	// World y is down, so "up towards the light" is -y.
	return vec3{ce * math.Sin(az), -se, ce * math.Cos(az)}, sun
}

// sky is the radiance of the open sky in direction d: a smooth gradient with no texture,
// as a real sky gives a stereo matcher nothing to match (its truth depth is 0).
func (e *environment) sky(d vec3) rgb {
	up := -d.y / d.norm()
	if up <= 0 {
		return e.horizon
	}
	return mix(e.horizon, e.zenith, math.Sqrt(up))
}

// hitEnvironment records in h where the ray o + t·d meets the environment, when that is
// nearer than h.t.
func (e *environment) hitEnvironment(o, d vec3, h *hit) {
	if e.ground != nil && d.y > 0 {
		// Camera above the ground (o.y < 0), ray going down.
		if t := -o.y / d.y; t > tMin && t < h.t {
			h.t, h.face, h.s = t, faceNegY, nil
		}
	}
	if e.shell {
		// Leaving the box from inside: the nearest exit plane on each axis.
		t, f := math.Inf(1), int8(-1)
		if d.x > 0 {
			t, f = (e.shellHi.x-o.x)/d.x, facePosX
		} else if d.x < 0 {
			t, f = (e.shellLo.x-o.x)/d.x, faceNegX
		}
		if d.y > 0 {
			if ty := (e.shellHi.y - o.y) / d.y; ty < t {
				t, f = ty, facePosY
			}
		} else if d.y < 0 {
			if ty := (e.shellLo.y - o.y) / d.y; ty < t {
				t, f = ty, faceNegY
			}
		}
		if d.z > 0 {
			if tz := (e.shellHi.z - o.z) / d.z; tz < t {
				t, f = tz, facePosZ
			}
		} else if d.z < 0 {
			if tz := (e.shellLo.z - o.z) / d.z; tz < t {
				t, f = tz, faceNegZ
			}
		}
		if f >= 0 && t > tMin && t < h.t {
			h.t, h.face, h.s = t, f, nil
		}
	}
}

// envMaterial and envNormal describe the environment surface of a hit with h.s == nil.
func (e *environment) envMaterial(f int8) *material {
	if e.shell {
		return e.shellMat[f]
	}
	return e.ground
}

func (e *environment) envNormal(f int8) vec3 {
	// The shell is seen from inside: its normals point inwards, against the exit face.
	if e.shell {
		return faceNormal(f).scale(-1)
	}
	return vec3{0, -1, 0}
}

// matMaker builds materials for one scene with the scene's texture scale.
type matMaker struct {
	r  *rng
	ts float64 // Config.TextureScale
}

// minLambda is the finest noise wavelength in metres (before TextureScale): a few pixels
// at the nearest distances the rig meets (0.5 m in a room, where a pixel is ~1.3 mm).
const minLambda = 0.003

// jitter varies a colour by ±amount (fraction) per channel, for variety between objects.
func (mm *matMaker) jitter(c rgb, amount float64) rgb {
	for i := range c {
		c[i] = clamp(c[i]*(1+mm.r.rangef(-amount, amount)), 0.02, 0.95)
	}
	return c
}

// noise returns octaves from lambda0 metres down to minLambda, scaled by TextureScale.
func (mm *matMaker) noise(lambda0, gain float64) octaves {
	return newOctaves(lambda0*mm.ts, minLambda*mm.ts, gain, mm.r.seed32())
}

// plain is a noise-only material: plaster, concrete, paint, fabric, foliage.
func (mm *matMaker) plain(col rgb, lambda0, gain, contrast float64) *material {
	return &material{pat: patPlain, col: col, contrast: contrast, detail: mm.noise(lambda0, gain)}
}

// jointed is bricks, tiles or planks: cells of cellU x cellV metres with joints of width
// line in colour col2.
func (mm *matMaker) jointed(p pattern, col, col2 rgb, cellU, cellV, line, cellVar float64) *material {
	return &material{
		pat: p, col: col, col2: col2, cellU: cellU, cellV: cellV, line: line, cellVar: cellVar,
		contrast: 0.9, grain: 6, detail: mm.noise(0.5, 0.85),
	}
}

// bands is horizontal stripes of height period/2 each, alternating col and col2.
func (mm *matMaker) bands(col, col2 rgb, period float64) *material {
	return &material{
		pat: patBands, col: col, col2: col2, cellV: period, cellVar: 0.15,
		contrast: 0.9, detail: mm.noise(0.5, 0.85),
	}
}
