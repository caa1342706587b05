package eval

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	stddraw "image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot sizes in pixels.
const (
	// TrajectoryPlotPx is the width and height of trajectory.png (square, so that
	// metres are as long across as up).
	TrajectoryPlotPx = 800
	// LinePlotWidthPx and LinePlotHeightPx are the size of trajectory_error.png and
	// depth_error.png.
	LinePlotWidthPx  = 900
	LinePlotHeightPx = 500
)

// plotDPI is the resolution of every plot: one pixel is 72/plotDPI points.
const plotDPI = 96

// px converts pixels to vg lengths at plotDPI.
func px(n float64) vg.Length { return vg.Length(n * 72 / plotDPI) }

// newCanvas returns a white w x h pixel canvas.
func newCanvas(w, h int) (*vgimg.Canvas, draw.Canvas) {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	stddraw.Draw(img, img.Bounds(), image.White, image.Point{}, stddraw.Src)
	c := vgimg.NewWith(vgimg.UseImage(img), vgimg.UseDPI(plotDPI))
	return c, draw.New(c)
}

// writePNG encodes the canvas's image to path (through a temporary file, so that a
// reader never sees half a plot).
func writePNG(path string, c *vgimg.Canvas) error {
	var b bytes.Buffer
	if err := png.Encode(&b, c.Image()); err != nil {
		return fmt.Errorf("eval: %s: %w", filepath.Base(path), err)
	}
	return writeFile(path, b.Bytes())
}

// writeFile writes data to path through a temporary file in the same directory.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("eval: write %s: %w", path, werr)
	}
	return nil
}

// seriesColour is the colour of estimator k in every plot (ground truth is black).
func seriesColour(k int) color.Color { return plotutil.Color(k) }

var sim3Dashes = []vg.Length{vg.Points(6), vg.Points(3)}

// figure is a plot and the number of its legend entries.
type figure struct {
	*plot.Plot
	entries int
}

func newPlot(title, xLabel, yLabel string) *figure {
	p := &figure{Plot: plot.New()}
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

func addLine(p *figure, label string, xy plotter.XYs, c color.Color, width vg.Length, dashes []vg.Length) error {
	if len(xy) == 0 {
		return nil
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return fmt.Errorf("eval: plot %s: %w", label, err)
	}
	l.Color, l.Width, l.Dashes = c, width, dashes
	p.Add(l)
	p.Legend.Add(label, l)
	p.entries++
	return nil
}

// seconds is the time of frame index since the first frame evaluated.
func (ev *Evaluation) seconds(index int) float64 {
	k := index - ev.start
	if k < 0 || k >= len(ev.stamps) {
		return math.NaN()
	}
	return ev.stamps[k].Sub(ev.stamps[0]).Seconds()
}

// plotTrajectory draws the top view (x right, z forward, metres) of the ground truth
// and of every estimator's trajectory aligned onto it: SE(3) solid, Sim(3) dashed.
func (ev *Evaluation) plotTrajectory(path string) error {
	p := newPlot("Trajectory, top view (estimates aligned to the ground truth)", "x (m)", "z (m)")
	var truth plotter.XYs
	for _, tp := range ev.truth {
		truth = append(truth, plotter.XY{X: tp.pose.T[0], Y: tp.pose.T[2]})
	}
	if err := addLine(p, "ground truth", truth, color.Black, vg.Points(3), nil); err != nil {
		return err
	}
	if len(truth) > 0 {
		start, err := plotter.NewScatter(truth[:1])
		if err != nil {
			return fmt.Errorf("eval: plot: %w", err)
		}
		start.Shape, start.Radius = draw.CircleGlyph{}, vg.Points(4)
		p.Add(start)
		p.Legend.Add("start", start)
		p.entries++
	}
	for k, r := range ev.runs {
		t := r.traj
		if t == nil || t.err != nil {
			continue
		}
		var se3, sim3 plotter.XYs
		for i := range t.per.AlignedSE3 {
			se3 = append(se3, plotter.XY{X: t.per.AlignedSE3[i][0], Y: t.per.AlignedSE3[i][2]})
			sim3 = append(sim3, plotter.XY{X: t.per.AlignedSim3[i][0], Y: t.per.AlignedSim3[i][2]})
		}
		if err := addLine(p, r.p.Name()+" SE(3)", se3, seriesColour(k), vg.Points(1.5), nil); err != nil {
			return err
		}
		if err := addLine(p, fmt.Sprintf("%s Sim(3), scale %.3f", r.p.Name(), t.metrics.Sim3Scale), sim3, seriesColour(k), vg.Points(1), sim3Dashes); err != nil {
			return err
		}
	}
	equalAxes(p, legendRoom(p))
	c, dc := newCanvas(TrajectoryPlotPx, TrajectoryPlotPx)
	p.Draw(dc)
	return writePNG(path, c)
}

// equalAxes widens the shorter axis range so that both span the same length (on a
// square canvas a metre is then about as long across as up), with a 5 % margin, and
// then both by the fraction top, added above the data (room for the legend).
func equalAxes(p *figure, top float64) {
	dx, dy := p.X.Max-p.X.Min, p.Y.Max-p.Y.Min
	span := max(dx, dy, 1e-3) * 1.05
	cx, cy := (p.X.Max+p.X.Min)/2, (p.Y.Max+p.Y.Min)/2
	p.X.Min, p.X.Max = cx-span/2*(1+top), cx+span/2*(1+top)
	p.Y.Min, p.Y.Max = cy-span/2, cy+span/2+span*top
}

// legendRoom is the fraction of the data's height to add above it so that the legend
// (top right) does not hide the data: about one line of the plot per entry.
func legendRoom(p *figure) float64 { return 0.06 * float64(p.entries) }

// roomAbove raises the top of the y axis by legendRoom, from a bottom of 0.
func roomAbove(p *figure) {
	p.Y.Min = 0
	if !(p.Y.Max > 0) {
		p.Y.Max = 1e-3
	}
	p.Y.Max *= 1 + legendRoom(p)
}

// plotTrajectoryError draws each estimator's position error over time after the SE(3)
// (solid) and Sim(3) (dashed) alignments.
func (ev *Evaluation) plotTrajectoryError(path string) error {
	p := newPlot("Position error after alignment", "time (s)", "position error (m)")
	for k, r := range ev.runs {
		t := r.traj
		if t == nil || t.err != nil {
			continue
		}
		var se3, sim3 plotter.XYs
		for i, idx := range t.frames {
			s := ev.seconds(idx)
			se3 = append(se3, plotter.XY{X: s, Y: t.per.ATESE3M[i]})
			sim3 = append(sim3, plotter.XY{X: s, Y: t.per.ATESim3M[i]})
		}
		if err := addLine(p, fmt.Sprintf("%s SE(3), RMSE %.3f m", r.p.Name(), t.metrics.ATESE3RMSEM), se3, seriesColour(k), vg.Points(1.5), nil); err != nil {
			return err
		}
		if err := addLine(p, fmt.Sprintf("%s Sim(3), RMSE %.3f m", r.p.Name(), t.metrics.ATESim3RMSEM), sim3, seriesColour(k), vg.Points(1), sim3Dashes); err != nil {
			return err
		}
	}
	roomAbove(p)
	c, dc := newCanvas(LinePlotWidthPx, LinePlotHeightPx)
	p.Draw(dc)
	return writePNG(path, c)
}

// plotDepthError draws each estimator's abs rel per frame over time, metric (solid)
// and median-scaled (dashed).
func (ev *Evaluation) plotDepthError(path string) error {
	p := newPlot("Depth error per frame", "time (s)", "abs rel")
	for k, r := range ev.runs {
		var metric, scaled plotter.XYs
		for _, f := range r.depth {
			s := ev.seconds(f.index)
			metric = append(metric, plotter.XY{X: s, Y: f.metric.AbsRel})
			scaled = append(scaled, plotter.XY{X: s, Y: f.scaled.AbsRel})
		}
		if err := addLine(p, r.p.Name()+" metric", metric, seriesColour(k), vg.Points(1.5), nil); err != nil {
			return err
		}
		if err := addLine(p, r.p.Name()+" median-scaled", scaled, seriesColour(k), vg.Points(1), sim3Dashes); err != nil {
			return err
		}
	}
	roomAbove(p)
	c, dc := newCanvas(LinePlotWidthPx, LinePlotHeightPx)
	p.Draw(dc)
	return writePNG(path, c)
}

// elapsedLabel formats a duration for a figure caption.
func elapsedLabel(d time.Duration) string { return fmt.Sprintf("t = %.2f s", d.Seconds()) }
