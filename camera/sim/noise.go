package sim

// Everything random in the world comes from the two pure functions below (a lattice hash
// for textures, splitmix64 for layouts) rather than math/rand, whose stream for a given
// seed is not promised to stay the same across Go releases: a seed must name the same
// held-out scene forever.

// Lattice hashing: a coordinate is scrambled by multiplying with an odd constant, the
// axes are combined with the seed by xor, and one xorshift-multiply-xorshift round
// mixes the result. One multiply per lattice point is plenty for value noise, whose
// values only need to look independent, and noise is most of a frame's time.
// Only the low 32 bits of the coordinates count: the lattice repeats every 2^32 cells,
// thousands of kilometres even for the finest noise.
const (
	hashX = 0x8da6b343
	hashY = 0xd8163841
	hashZ = 0xcb1ab31f
)

func mix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x2c1b3c6d
	h ^= h >> 13
	return h
}

// hash2 maps a lattice point and a seed to 32 bits.
func hash2(x, y int64, seed uint32) uint32 {
	return mix32(seed ^ uint32(x)*hashX ^ uint32(y)*hashY)
}

func hash3(x, y, z int64, seed uint32) uint32 {
	return hash2(x, y, seed^uint32(z)*hashZ)
}

// floor splits x into its integer part and the fraction in [0, 1). It is math.Floor
// without the function call, which matters at a few hundred million calls a second.
// Valid for |x| < 2^62.
func floor(x float64) (int64, float64) {
	i := int64(x) // truncates towards zero
	if float64(i) > x {
		i--
	}
	return i, x - float64(i)
}

// unitHash maps a hash to [-1, 1).
func unitHash(h uint32) float64 { return unitHashF(float64(h)) }

// noise2 is value noise: random values on the integer lattice, blended with a cubic
// smoothstep. It is band-limited to wavelengths of about one lattice cell, which is what
// lets fbm drop octaves that a pixel cannot resolve. Returns a value in [-1, 1].
func noise2(x, y float64, seed uint32) float64 {
	ix, tx := floor(x)
	iy, ty := floor(y)
	sx, sy := tx*tx*(3-2*tx), ty*ty*(3-2*ty)
	// hash2 of the four corners, sharing the products.
	x0 := uint32(ix) * hashX
	x1 := x0 + hashX
	y0 := uint32(iy)*hashY ^ seed
	y1 := (uint32(iy)+1)*hashY ^ seed
	// Interpolate the raw hashes and map to [-1, 1] once: the blend weights sum to 1.
	a := float64(mix32(x0 ^ y0))
	b := float64(mix32(x1 ^ y0))
	c := float64(mix32(x0 ^ y1))
	d := float64(mix32(x1 ^ y1))
	top := a + (b-a)*sx
	bot := c + (d-c)*sx
	return unitHashF(top + (bot-top)*sy)
}

// unitHashF is unitHash for a blend of hashes.
func unitHashF(h float64) float64 { return h*(2.0/4294967296.0) - 1 }

// noise3 is the 3-D counterpart of noise2, used on curved surfaces where no seam-free
// 2-D parameterisation exists.
func noise3(x, y, z float64, seed uint32) float64 {
	ix, tx := floor(x)
	iy, ty := floor(y)
	iz, tz := floor(z)
	sx, sy, sz := tx*tx*(3-2*tx), ty*ty*(3-2*ty), tz*tz*(3-2*tz)
	var v [2]float64
	for k := int64(0); k < 2; k++ {
		a := unitHash(hash3(ix, iy, iz+k, seed))
		b := unitHash(hash3(ix+1, iy, iz+k, seed))
		c := unitHash(hash3(ix, iy+1, iz+k, seed))
		d := unitHash(hash3(ix+1, iy+1, iz+k, seed))
		top := a + (b-a)*sx
		bot := c + (d-c)*sx
		v[k] = top + (bot-top)*sy
	}
	return v[0] + (v[1]-v[0])*sz
}

// Octave rotation: each octave is turned by atan(3/4) ≈ 36.9° and shifted so that the
// lattices of different octaves never line up (aligned lattices show as a grid).
const (
	octCos   = 0.8
	octSin   = 0.6
	octShift = 17.31
	// octSeedStep changes the lattice values from one octave to the next.
	octSeedStep = 0x68e31da4
	// maxOctaves bounds the work per pixel (noise is most of a frame's time); with
	// lacunarity 2 it spans a factor 2^7 = 128 in scale: a material whose coarsest
	// wavelength is 0.5 m has detail down to 4 mm. Larger variation comes from colours
	// per object and per cell instead.
	maxOctaves = 8
)

// octaves describes a fractal sum of noise: octaves of wavelength lambda0, lambda0/2, ...,
// each gain times weaker than the previous one.
type octaves struct {
	lambda0 float64 // coarsest wavelength, metres
	n       int     // number of octaves down to the finest detail
	gain    float64 // amplitude ratio of successive octaves
	norm    float64 // 1 / total amplitude of all n octaves
	seed    uint32
}

// newOctaves covers wavelengths from lambda0 down to minLambda metres.
func newOctaves(lambda0, minLambda, gain float64, seed uint32) octaves {
	o := octaves{lambda0: lambda0, gain: gain, seed: seed}
	var total float64
	amp := 1.0
	for l := lambda0; l >= minLambda && o.n < maxOctaves; l *= 0.5 {
		total += amp
		amp *= gain
		o.n++
	}
	if total > 0 {
		o.norm = 1 / total
	}
	return o
}

// at2 sums the octaves at surface coordinates (u, v), filtered to a pixel footprint of
// fp metres: an octave of wavelength lambda is kept fully at 4 pixels a cycle and above
// and fades out linearly to nothing at 2 pixels a cycle (Nyquist). Removing, rather than
// aliasing, the unresolvable detail is what keeps the left and right images (and
// consecutive frames) photometrically consistent. The sum is normalised by the full
// amplitude, so a distant surface loses its fine detail but keeps its coarse pattern:
// the filtered texture, not a different one. Result in [-1, 1], typical standard
// deviation 0.2-0.3.
func (o *octaves) at2(u, v, fp float64) float64 {
	var sum float64
	amp, lambda := 1.0, o.lambda0
	// Octave k samples noise at 2^k·R^k·(u, v)/lambda0 (R: the octave rotation), built
	// up incrementally; the seed and the lattice shift step per octave too.
	f := 1 / o.lambda0
	u, v = u*f, v*f
	halfInvFp := 0.5 / fp
	seed, shift := o.seed, 0.0
	for k := 0; k < o.n; k++ {
		w := lambda*halfInvFp - 1 // the fade, before clamping to 1
		if w <= 0 {
			break // every finer octave is unresolvable too
		}
		if w > 1 {
			w = 1
		}
		sum += w * amp * noise2(u+shift, v-shift, seed)
		u, v = 2*(octCos*u-octSin*v), 2*(octSin*u+octCos*v)
		amp *= o.gain
		lambda *= 0.5
		seed += octSeedStep
		shift += octShift
	}
	return sum * o.norm
}

// at3 is at2 over 3-D noise, for curved surfaces.
func (o *octaves) at3(p vec3, fp float64) float64 {
	var sum float64
	amp, lambda := 1.0, o.lambda0
	f := 1 / o.lambda0
	x, y, z := p.x*f, p.y*f, p.z*f
	halfInvFp := 0.5 / fp
	seed, shift := o.seed, 0.0
	for k := 0; k < o.n; k++ {
		w := lambda*halfInvFp - 1
		if w <= 0 {
			break
		}
		if w > 1 {
			w = 1
		}
		sum += w * amp * noise3(x+shift, y-shift, z+shift, seed)
		x, y, z = 2*(octCos*x-octSin*z), 2*y, 2*(octSin*x+octCos*z)
		amp *= o.gain
		lambda *= 0.5
		seed += octSeedStep
		shift += octShift
	}
	return sum * o.norm
}

// rng is splitmix64: a tiny generator whose output for a seed is fixed by this code.
type rng struct{ s uint64 }

func newRNG(parts ...int64) *rng {
	r := &rng{s: 0x9e3779b97f4a7c15}
	for _, p := range parts {
		r.s ^= uint64(p)
		r.next()
	}
	return r
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float returns a uniform value in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// rangef returns a uniform value in [lo, hi).
func (r *rng) rangef(lo, hi float64) float64 { return lo + (hi-lo)*r.float() }

// intn returns a uniform integer in [0, n).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// chance reports true with probability p.
func (r *rng) chance(p float64) bool { return r.float() < p }

// seed32 draws a texture seed.
func (r *rng) seed32() uint32 { return uint32(r.next() >> 32) }
