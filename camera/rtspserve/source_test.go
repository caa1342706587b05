package rtspserve

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/edgedepth/edgedepth/camera"
)

// The test rig: a synthetic stereo camera whose every pair can be rendered again from its
// sequence number, so that whatever a client decodes can be compared with what was sent.

const (
	texPeriod = 256 // the texture repeats every texPeriod pixels horizontally
	disparity = 12  // the right eye sees the texture this many pixels further on
	pxPerPair = 3   // the scene moves this many pixels a pair
	cellSize  = 16  // barcode cells: 16x16 pixels, one macroblock each
	seqBits   = 16  // the barcode holds the low 16 bits of Seq
	framePer  = time.Second / 30
)

// pattern renders the test scene at one size.
type pattern struct {
	w, h int
	tw   int    // texture width: w + texPeriod + disparity
	tex  []byte // packed RGB, tw x h
}

func newPattern(w, h int) *pattern {
	p := &pattern{w: w, h: h, tw: w + texPeriod + disparity}
	p.tex = make([]byte, 3*p.tw*h)
	for y := range h {
		for x := range p.tw {
			// Integer harmonics of texPeriod keep the texture periodic; several scales
			// make it look like camera content rather than a flat test card.
			a := 2 * math.Pi * float64(x) / texPeriod
			fy := float64(y)
			v := 128 + 55*math.Sin(3*a)*math.Cos(fy/11) + 35*math.Sin(7*a+fy/17)
			i := 3 * (y*p.tw + x)
			p.tex[i] = clamp(v)
			p.tex[i+1] = clamp(255 - v + 25*math.Sin(2*a+fy/29))
			p.tex[i+2] = clamp(128 + 90*math.Cos(a+fy/41))
		}
	}
	return p
}

func clamp(v float64) byte { return byte(math.Max(0, math.Min(255, math.Round(v)))) }

// render draws pair seq as seen by eye 0 (left) or 1 (right), with seq in a barcode along
// the top.
func (p *pattern) render(seq uint64, eye int) camera.Image {
	img := camera.NewImage(p.w, p.h)
	x0 := int(seq*pxPerPair%texPeriod) + eye*disparity
	for y := range p.h {
		copy(img.Pix[3*y*p.w:3*(y+1)*p.w], p.tex[3*(y*p.tw+x0):3*(y*p.tw+x0+p.w)])
	}
	for bit := range seqBits {
		v := byte(16)
		if seq>>bit&1 == 1 {
			v = 240
		}
		for y := range cellSize {
			for x := bit * cellSize; x < (bit+1)*cellSize; x++ {
				i := 3 * (y*p.w + x)
				img.Pix[i], img.Pix[i+1], img.Pix[i+2] = v, v, v
			}
		}
	}
	return img
}

// readSeq reads the barcode back: the mean of each cell's centre decides its bit.
func readSeq(img camera.Image) uint64 {
	var seq uint64
	for bit := range seqBits {
		sum := 0
		for y := 4; y < cellSize-4; y++ {
			for x := bit*cellSize + 4; x < (bit+1)*cellSize-4; x++ {
				i := 3 * (y*img.Width + x)
				sum += int(img.Pix[i]) + int(img.Pix[i+1]) + int(img.Pix[i+2])
			}
		}
		if sum/(3*8*8) > 128 {
			seq |= 1 << bit
		}
	}
	return seq
}

// psnr of b against a in dB.
func psnr(a, b camera.Image) float64 {
	if a.Width != b.Width || a.Height != b.Height {
		return 0
	}
	var se float64
	for i := range a.Pix {
		d := float64(a.Pix[i]) - float64(b.Pix[i])
		se += d * d
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255*float64(len(a.Pix))/se)
}

// testSource is a camera.Source producing the pattern.
type testSource struct {
	// patternAt gives the scene of pair seq (so a test can change resolution).
	patternAt func(seq uint64) *pattern
	// period paces the pairs in real time; 0 emits as fast as possible from a few
	// pre-rendered pairs (to overrun the encoder).
	period time.Duration
	// stopAfter > 0 stops emitting after that many pairs; Run then returns stopErr if
	// set, nil at once if endEarly, else nil when ctx ends.
	stopAfter uint64
	stopErr   error
	endEarly  bool
	// hold, when non-nil, delays the first pair until it is closed.
	hold chan struct{}
	// emitted counts pairs handed to emit; finished is closed when stopAfter is reached.
	emitted  atomic.Uint64
	finished chan struct{}
	// t0 is the capture time of pair 0 (set before Run, read by tests); pair n is
	// captured at t0 + n/30 s whatever the pacing, so RTP timestamps advance exactly
	// 3000 ticks a pair.
	t0 time.Time
}

func newTestSource(w, h int, period time.Duration) *testSource {
	p := newPattern(w, h)
	return &testSource{
		patternAt: func(uint64) *pattern { return p },
		period:    period,
		finished:  make(chan struct{}),
		t0:        time.Now(),
	}
}

func (s *testSource) Name() string { return "test pattern" }

func (s *testSource) Run(ctx context.Context, emit func(camera.StereoFrame)) error {
	if s.hold != nil {
		select {
		case <-ctx.Done():
			return nil
		case <-s.hold:
		}
	}
	var tick <-chan time.Time
	var pre []camera.StereoFrame
	if s.period > 0 {
		t := time.NewTicker(s.period)
		defer t.Stop()
		tick = t.C
	} else {
		for seq := range uint64(4) {
			p := s.patternAt(seq)
			pre = append(pre, camera.StereoFrame{Left: p.render(seq, 0), Right: p.render(seq, 1)})
		}
	}
	for seq := uint64(0); ; seq++ {
		if s.stopAfter > 0 && seq == s.stopAfter {
			close(s.finished)
			if s.stopErr != nil || s.endEarly {
				return s.stopErr
			}
			<-ctx.Done()
			return nil
		}
		var f camera.StereoFrame
		if tick != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-tick:
			}
			p := s.patternAt(seq)
			f = camera.StereoFrame{Left: p.render(seq, 0), Right: p.render(seq, 1)}
		} else {
			if ctx.Err() != nil {
				return nil
			}
			f = pre[seq%uint64(len(pre))]
		}
		f.Seq = seq
		f.CaptureTime = s.t0.Add(time.Duration(seq) * framePer)
		emit(f)
		s.emitted.Add(1)
	}
}
