package depth

import (
	"math"

	"github.com/edgedepth/edgedepth/camera"
)

// NonOccluded marks the left-image pixels that the right eye also sees, from
// ground-truth depth of a rectified pair: only there can a stereo matcher be right.
//
// A left pixel at column x with depth Z appears in the right image at
// x_r = x − fx·B/Z on the same row. Nearer surfaces have larger disparity and move
// further left, so a pixel is hidden from the right eye exactly when some pixel to its
// right in the left image lands on or left of it in the right image: when
// min over x' > x of x_r(x') ≤ x_r(x) + ½ (within half a pixel counts as "on", since a
// pixel covers one pixel's width). A pixel whose x_r falls off the left edge of the
// right image is not seen either. One right-to-left pass per row keeps that minimum.
//
// Pixels without truth (0: sky) are false, and do not hide others: at infinity they land
// on their own column, to the right of anything in front of them. A zero fx or baseline
// gives all valid pixels true (no parallax, no occlusion); a map whose buffer does not
// hold Width*Height values gives all false.
func NonOccluded(truth Map, fx, baselineM float64) []bool {
	vis := make([]bool, len(truth.M))
	if truth.Width*truth.Height != len(truth.M) {
		return vis
	}
	fb := fx * baselineM
	for y := 0; y < truth.Height; y++ {
		row := truth.M[y*truth.Width : (y+1)*truth.Width]
		out := vis[y*truth.Width : (y+1)*truth.Width]
		nearest := math.Inf(1) // min x_r over the pixels to the right
		for x := len(row) - 1; x >= 0; x-- {
			z := float64(row[x])
			if !(z > 0) || math.IsInf(z, 0) {
				continue
			}
			xr := float64(x) - fb/z
			out[x] = xr > -0.5 && nearest > xr+0.5
			nearest = min(nearest, xr)
		}
	}
	return vis
}

// TexturedRadius is the half-size of the window over which Textured averages gradients:
// 5x5, the default SGBM block.
const TexturedRadius = 2

// Textured marks the pixels of img with enough local texture for block matching: the
// root-mean-square intensity gradient over the (2·TexturedRadius+1)² window around the
// pixel is at least minGradient, in grey levels (0..255) per pixel. Gradients are
// central differences of BT.601 luma. Flat walls, sky and saturated areas are false.
func Textured(img camera.Image, minGradient float64) []bool {
	w, h := img.Width, img.Height
	if w <= 0 || h <= 0 || len(img.Pix) != 3*w*h {
		return make([]bool, max(w*h, 0))
	}
	grey := make([]float64, w*h)
	for i := range grey {
		p := img.Pix[3*i : 3*i+3]
		grey[i] = 0.299*float64(p[0]) + 0.587*float64(p[1]) + 0.114*float64(p[2])
	}
	// Squared gradient magnitude, summed in an integral image so each window is O(1).
	sat := make([]float64, (w+1)*(h+1))
	for y := 0; y < h; y++ {
		var rowSum float64
		for x := 0; x < w; x++ {
			xl, xh := max(x-1, 0), min(x+1, w-1)
			yl, yh := max(y-1, 0), min(y+1, h-1)
			gx := (grey[y*w+xh] - grey[y*w+xl]) / float64(max(xh-xl, 1))
			gy := (grey[yh*w+x] - grey[yl*w+x]) / float64(max(yh-yl, 1))
			rowSum += gx*gx + gy*gy
			sat[(y+1)*(w+1)+x+1] = sat[y*(w+1)+x+1] + rowSum
		}
	}
	out := make([]bool, w*h)
	thr := minGradient * minGradient
	const r = TexturedRadius
	for y := 0; y < h; y++ {
		y0, y1 := max(y-r, 0), min(y+r+1, h)
		for x := 0; x < w; x++ {
			x0, x1 := max(x-r, 0), min(x+r+1, w)
			sum := sat[y1*(w+1)+x1] - sat[y0*(w+1)+x1] - sat[y1*(w+1)+x0] + sat[y0*(w+1)+x0]
			out[y*w+x] = sum >= thr*float64((x1-x0)*(y1-y0))
		}
	}
	return out
}
