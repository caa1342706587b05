package depth

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"sort"
	"sync"
)

// colourAnchors define edgedepth's preview colour map, from far (t = 0) to near (t = 1):
// dark indigo, blue, azure, teal, green, yellow, orange, dark red. Hue turns
// monotonically and lightness rises to the yellow and then falls, so neighbouring
// depths stay distinguishable and near obstacles are warm. No anchor is black, which is
// reserved for "no estimate".
var colourAnchors = [...]struct {
	t       float64
	r, g, b float64
}{
	{0.00, 35, 23, 80},
	{0.14, 40, 80, 200},
	{0.28, 30, 150, 235},
	{0.42, 30, 210, 190},
	{0.56, 110, 235, 90},
	{0.70, 220, 225, 50},
	{0.84, 250, 140, 30},
	{1.00, 180, 20, 15},
}

// colourLUT is the map sampled at 256 levels, interpolated linearly between anchors.
var colourLUT = func() (lut [256]color.RGBA) {
	for i := range lut {
		t := float64(i) / 255
		k := 1
		for k < len(colourAnchors)-1 && colourAnchors[k].t < t {
			k++
		}
		a, b := colourAnchors[k-1], colourAnchors[k]
		f := (t - a.t) / (b.t - a.t)
		mix := func(x, y float64) uint8 { return uint8(math.Round(x + f*(y-x))) }
		lut[i] = color.RGBA{mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b), 255}
	}
	return lut
}()

var previewImages sync.Pool // *image.RGBA, reused when the size matches

// ColourizeDepth paints m into dst (which must be m.Width x m.Height): depths in
// [minM, maxM] run through the colour map linearly in inverse depth, so resolution goes
// where a robot needs it (near); depths outside are clamped to the ends; invalid pixels
// are black.
func ColourizeDepth(m Map, minM, maxM float64, dst *image.RGBA) error {
	if err := checkMap("preview", m); err != nil {
		return err
	}
	if !(minM > 0) || !(maxM > minM) || math.IsInf(maxM, 0) {
		return fmt.Errorf("depth: preview: range [%g, %g] m must satisfy 0 < min < max < Inf", minM, maxM)
	}
	if b := dst.Bounds(); b.Dx() != m.Width || b.Dy() != m.Height {
		return fmt.Errorf("depth: preview: %v image for a %dx%d map: %w", b, m.Width, m.Height, ErrSizeMismatch)
	}
	// t = (1/z − 1/max) / (1/min − 1/max), scaled to a LUT index: idx = a/z − c.
	invMin, invMax := 1/minM, 1/maxM
	a := float32(255 / (invMin - invMax))
	c := float32(255 * invMax / (invMin - invMax))
	for y := 0; y < m.Height; y++ {
		src := m.M[y*m.Width : (y+1)*m.Width]
		row := dst.Pix[y*dst.Stride : y*dst.Stride+4*m.Width]
		for x, z := range src {
			px := color.RGBA{0, 0, 0, 255}
			if z > 0 && z <= math.MaxFloat32 {
				f := a/z - c + 0.5
				idx := 0
				if f >= 255 {
					idx = 255
				} else if f > 0 {
					idx = int(f)
				}
				px = colourLUT[idx]
			}
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = px.R, px.G, px.B, px.A
		}
	}
	return nil
}

// EncodePreviewJPEG renders m with ColourizeDepth and encodes it as a JPEG of the given
// quality (1..100; 75 is a good default for a live view), for the depth/preview topic.
func EncodePreviewJPEG(m Map, minM, maxM float64, quality int) ([]byte, error) {
	if quality < 1 || quality > 100 {
		return nil, fmt.Errorf("depth: preview: JPEG quality %d outside 1..100", quality)
	}
	if m.Width <= 0 || m.Height <= 0 {
		return nil, fmt.Errorf("depth: preview: empty %dx%d map", m.Width, m.Height)
	}
	img, _ := previewImages.Get().(*image.RGBA)
	if img == nil || img.Rect.Dx() != m.Width || img.Rect.Dy() != m.Height {
		img = image.NewRGBA(image.Rect(0, 0, m.Width, m.Height))
	}
	defer previewImages.Put(img)
	if err := ColourizeDepth(m, minM, maxM, img); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(m.Width * m.Height / 4)
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("depth: preview: %w", err)
	}
	return buf.Bytes(), nil
}

// PreviewRange picks the depth range a preview should span for m: the 2nd and 98th
// percentiles of its valid depths (sampled on a sparse grid: it runs on every preview),
// so that the colours spread over what the camera sees rather than over the configured
// limits, where most of a scene would share one colour. It returns ok false when m has
// too few valid pixels to tell.
func PreviewRange(m Map) (minM, maxM float64, ok bool) {
	const step = 7 // about 1 pixel in 50: plenty for two percentiles
	var zs []float64
	for i := 0; i < len(m.M); i += step {
		if z := m.M[i]; z > 0 {
			zs = append(zs, float64(z))
		}
	}
	if len(zs) < 16 {
		return 0, 0, false
	}
	sort.Float64s(zs)
	minM, maxM = zs[len(zs)*2/100], zs[len(zs)*98/100]
	if !(maxM > minM) {
		return 0, 0, false
	}
	return minM, maxM, true
}
