package eval

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/edgedepth/edgedepth/depth"
)

// Depth error figures (depth_error_NNNNNN.png): one row per estimator with a depth for
// the frame, four panels a row — the left image, the prediction, the truth (both
// coloured by the same depth scale) and |prediction − truth| — and, below, the colour
// bars of the depth (metres) and of the error (metres). Grey marks pixels without a
// depth (prediction or truth) and, in the error panel, pixels the metrics do not use
// (outside the crop or the caps).

// Layout of a depth error figure, pixels.
const (
	figMargin   = 10
	figHeader   = 30 // the frame's caption
	figTitle    = 20 // a panel's title
	figColourH  = 80 // the colour bar row
	figMinPanel = 320
	figMaxPanel = 480
)

var noDepthGrey = color.RGBA{128, 128, 128, 255}

// depthFigureLayout returns the panel size and the figure size for a frame of w x h
// pixels and rows estimators: panels are the frame scaled to a width between 320 and
// 480 pixels.
func depthFigureLayout(w, h, rows int) (pw, ph, figW, figH int) {
	pw = min(max(w, figMinPanel), figMaxPanel)
	ph = int(math.Round(float64(h) * float64(pw) / float64(w)))
	figW = 4*pw + 5*figMargin
	figH = figHeader + rows*(figTitle+ph+figMargin) + figColourH + figMargin
	return
}

// colourLUT samples a colour map at 256 levels over [0, 1].
func colourLUT(cm palette.ColorMap) [256]color.RGBA {
	var lut [256]color.RGBA
	cm.SetMin(0)
	cm.SetMax(1)
	for i := range lut {
		c, err := cm.At(float64(i) / 255)
		if err != nil {
			panic(err) // 0..1 is inside the map by construction
		}
		r, g, b, _ := c.RGBA()
		lut[i] = color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255}
	}
	return lut
}

// paint colours values v (NaN = no value) linearly over [lo, hi] into an image.
func paint(v []float64, w, h int, lut *[256]color.RGBA, lo, hi float64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i, x := range v {
		c := noDepthGrey
		if !math.IsNaN(x) {
			t := min(max((x-lo)/(hi-lo), 0), 1)
			c = lut[int(math.Round(t*255))]
		}
		img.SetRGBA(i%w, i/w, c)
	}
	return img
}

// depthValues turns a map into values with NaN where there is no depth.
func depthValues(m depth.Map) []float64 {
	v := make([]float64, len(m.M))
	for i, z := range m.M {
		if z > 0 && z <= math.MaxFloat32 {
			v[i] = float64(z)
		} else {
			v[i] = math.NaN()
		}
	}
	return v
}

// plotDepthFigure draws the depth error figure of sample s; false when no estimator
// gave a depth for it.
func (ev *Evaluation) plotDepthFigure(path string, s mapSample) (bool, error) {
	type row struct {
		name      string
		pred, err []float64
	}
	truth := s.left.TruthDepth
	w, h := truth.Width, truth.Height
	tv := depthValues(truth)
	mask := ev.opt.Crop.Mask(w, h)
	maxT := ev.opt.MaxDepthM
	if maxT == 0 {
		maxT = math.Inf(1)
	}
	var rows []row
	var errs []float64
	for k, r := range ev.runs {
		pm := s.pred[k]
		if pm.Width == 0 {
			continue
		}
		rw := row{name: r.p.Name(), pred: depthValues(pm), err: make([]float64, len(tv))}
		for i := range rw.err {
			t, p := tv[i], rw.pred[i]
			if math.IsNaN(t) || math.IsNaN(p) || (mask != nil && !mask[i]) || t < ev.opt.MinDepthM || t > maxT {
				rw.err[i] = math.NaN()
				continue
			}
			p = min(max(p, ev.opt.MinDepthM), maxT) // as depth.Compare clamps
			rw.err[i] = math.Abs(p - t)
			errs = append(errs, rw.err[i])
		}
		rows = append(rows, rw)
	}
	if len(rows) == 0 {
		return false, nil
	}

	// Depth scale from the truth's 2nd to 98th percentile; error scale to the 95th.
	var valid []float64
	for _, t := range tv {
		if !math.IsNaN(t) {
			valid = append(valid, t)
		}
	}
	slices.Sort(valid)
	dLo, dHi := quantile(valid, 0.02), quantile(valid, 0.98)
	if !(dHi > dLo) {
		dHi = dLo + 1
	}
	slices.Sort(errs)
	eHi := quantile(errs, 0.95)
	if !(eHi > 0) {
		eHi = 0.01
	}
	depthMap, errMap := moreland.ExtendedKindlmann(), moreland.BlackBody()
	depthLUT, errLUT := colourLUT(depthMap), colourLUT(errMap)
	truthImg := paint(tv, w, h, &depthLUT, dLo, dHi)
	leftImg := s.left.Left.RGBA()

	pw, ph, figW, figH := depthFigureLayout(w, h, len(rows))
	c, dc := newCanvas(figW, figH)
	// vg's origin is the bottom left; rows are laid out from the top.
	top := func(yFromTop int) vg.Length { return px(float64(figH - yFromTop)) }
	text := func(size vg.Length) draw.TextStyle {
		return draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, size), Handler: plot.DefaultTextHandler}
	}
	dc.FillText(text(vg.Points(12)), vg.Point{X: px(figMargin), Y: top(figHeader - 8)},
		fmt.Sprintf("frame %06d, %s; grey: no depth (or not used by the metrics)", s.index, elapsedLabel(s.left.CaptureTime.Sub(ev.stamps[0]))))
	y := figHeader
	for _, r := range rows {
		panels := []struct {
			title string
			img   image.Image
		}{
			{"image", leftImg},
			{r.name + " prediction", paint(r.pred, w, h, &depthLUT, dLo, dHi)},
			{"truth", truthImg},
			{r.name + " |error|", paint(r.err, w, h, &errLUT, 0, eHi)},
		}
		for col, p := range panels {
			x := figMargin + col*(pw+figMargin)
			dc.FillText(text(vg.Points(10)), vg.Point{X: px(float64(x)), Y: top(y + figTitle - 5)}, p.title)
			rect := vg.Rectangle{
				Min: vg.Point{X: px(float64(x)), Y: top(y + figTitle + ph)},
				Max: vg.Point{X: px(float64(x + pw)), Y: top(y + figTitle)},
			}
			dc.DrawImage(rect, p.img)
		}
		y += figTitle + ph + figMargin
	}

	// Colour bars: depth under the prediction and truth columns, error under the last.
	depthMap.SetMin(dLo)
	depthMap.SetMax(dHi)
	errMap.SetMin(0)
	errMap.SetMax(eHi)
	bar := func(cm palette.ColorMap, label string, x0, x1 int) {
		p := plot.New()
		p.HideY()
		p.X.Label.Text = label
		p.Add(&plotter.ColorBar{ColorMap: cm})
		area := draw.Crop(dc, px(float64(x0)), px(float64(x1-figW)), px(figMargin), -px(float64(y)))
		p.Draw(area)
	}
	bar(depthMap, "depth (m), prediction and truth", figMargin+pw+figMargin, figMargin+3*pw+2*figMargin)
	bar(errMap, "|error| (m)", figMargin+3*(pw+figMargin), figMargin+4*pw+3*figMargin)
	return true, writePNG(path, c)
}
