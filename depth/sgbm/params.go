package sgbm

import (
	"fmt"
	"math"

	"github.com/edgedepth/edgedepth/camera/calib3d"
)

// Mode names a cost-aggregation scheme of semi-global matching.
type Mode string

// Modes, fastest first. On the simulator's 640x480 scenes with 128 disparities
// (BenchmarkSGBMSimulatorModes, 2 cores) 3way took about half the time of sgbm and
// was more accurate on the street (median abs rel 1.4 % against 2.3 %); hh was best
// (1.1 %) at four to five times the cost of 3way, hh4 between them.
const (
	// Mode3Way aggregates along 3 directions, parallelised over rows. The default.
	Mode3Way Mode = "3way"
	// ModeSGBM aggregates along 5 directions in one pass (OpenCV's default).
	ModeSGBM Mode = "sgbm"
	// ModeHH4 aggregates along 4 directions.
	ModeHH4 Mode = "hh4"
	// ModeHH aggregates along all 8 directions in two passes, with a full cost volume
	// (width·height·NumDisparities·2 bytes: 79 MB at 640x480x128).
	ModeHH Mode = "hh"
)

var modes = map[Mode]calib3d.SGBMMode{
	Mode3Way: calib3d.Mode3Way,
	ModeSGBM: calib3d.ModeSGBM,
	ModeHH4:  calib3d.ModeHH4,
	ModeHH:   calib3d.ModeHH,
}

// Params configure the SGBM estimator. The defaults suit a 640x480 rectified pair.
// Disparities are in pixels of the input image.
type Params struct {
	// MinDisparity is the smallest disparity searched, pixels. Default 0 (objects at
	// infinity). Must be >= 0: a negative disparity is behind a parallel rig.
	MinDisparity int `yaml:"min_disparity"`
	// NumDisparities is how many disparities are searched from MinDisparity, pixels;
	// a positive multiple of 16. Default 128: with fx·B = 60 px·m (fx 500 px, 12 cm
	// baseline) the nearest measurable depth is 0.47 m. Matching time grows linearly
	// with it, and the leftmost MinDisparity+NumDisparities columns get no depth.
	NumDisparities int `yaml:"num_disparities"`
	// BlockSize is the side of the matched block, pixels; odd, 1..31. Default 5:
	// small blocks keep object edges sharp, and SGM's smoothness term supplies the
	// support a larger block would.
	BlockSize int `yaml:"block_size"`
	// P1 and P2 penalise disparity changes of ±1 and of more than 1 between neighbours
	// (cost units of the block sum). 0 derives them from BlockSize as OpenCV recommends
	// for one channel: P1 = 8·bs², P2 = 32·bs² (200 and 800 at bs 5). P2 > P1.
	P1 int `yaml:"p1"`
	P2 int `yaml:"p2"`
	// Disp12MaxDiff is the largest left-right consistency error allowed, pixels: a pixel
	// whose right-to-left match does not come back within this is dropped (occlusions,
	// mismatches). Default 1; negative disables the check.
	Disp12MaxDiff int `yaml:"disp12_max_diff"`
	// PreFilterCap clips the x-derivative prefilter, grey levels, 1..63. Default 63.
	PreFilterCap int `yaml:"pre_filter_cap"`
	// UniquenessRatio is the margin, percent, by which the best cost must beat the
	// second best for the match to count; 0..100. Default 10. It removes ambiguous
	// matches on repetitive or weak texture.
	UniquenessRatio int `yaml:"uniqueness_ratio"`
	// SpeckleWindowSize is the largest connected region, pixels, treated as a speckle
	// and removed; 0 disables speckle filtering. Default 100.
	SpeckleWindowSize int `yaml:"speckle_window_size"`
	// SpeckleRange is the disparity variation, pixels, within which neighbours belong to
	// the same region for speckle filtering. Default 2.
	SpeckleRange int `yaml:"speckle_range"`
	// Mode is the aggregation scheme: "3way" (default), "sgbm", "hh4" or "hh".
	Mode Mode `yaml:"mode"`
	// MinDepthM and MaxDepthM clip the output, metres: depths outside become 0
	// (invalid). Defaults 0.2 and 20: beyond 20 m a 12 cm baseline resolves depth to
	// no better than about ±1.5 m per quarter pixel of disparity error. Not read from
	// the sgbm section of a config file: the daemon sets them from depth.min_depth_m and
	// depth.max_depth_m, which bound every estimator alike.
	MinDepthM float64 `yaml:"-"`
	MaxDepthM float64 `yaml:"-"`
}

// DefaultParams returns the defaults described on each field of Params.
func DefaultParams() Params {
	return Params{
		MinDisparity:      0,
		NumDisparities:    128,
		BlockSize:         5,
		Disp12MaxDiff:     1,
		PreFilterCap:      63,
		UniquenessRatio:   10,
		SpeckleWindowSize: 100,
		SpeckleRange:      2,
		Mode:              Mode3Way,
		MinDepthM:         0.2,
		MaxDepthM:         20,
	}
}

// Penalties returns P1 and P2 as the matcher will use them: the fields, or the
// BlockSize-derived defaults where they are 0.
func (p Params) Penalties() (p1, p2 int) {
	p1, p2 = p.P1, p.P2
	if p1 == 0 {
		p1 = 8 * p.BlockSize * p.BlockSize
	}
	if p2 == 0 {
		p2 = 32 * p.BlockSize * p.BlockSize
	}
	return p1, p2
}

// Validate reports the first field outside its range, by its configuration key.
func (p Params) Validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%s = %v, want %s", field, v, want)
	}
	switch {
	case p.MinDisparity < 0 || p.MinDisparity > 1024:
		return bad("min_disparity", p.MinDisparity, "0..1024 pixels")
	case p.NumDisparities < 16 || p.NumDisparities > 1024 || p.NumDisparities%16 != 0:
		return bad("num_disparities", p.NumDisparities, "a multiple of 16 in 16..1024 pixels")
	case p.BlockSize < 1 || p.BlockSize > 31 || p.BlockSize%2 == 0:
		return bad("block_size", p.BlockSize, "odd, 1..31 pixels")
	case p.P1 < 0:
		return bad("p1", p.P1, ">= 0 (0 = 8·BlockSize²)")
	case p.P2 < 0:
		return bad("p2", p.P2, ">= 0 (0 = 32·BlockSize²)")
	case p.Disp12MaxDiff > 1024:
		return bad("disp12_max_diff", p.Disp12MaxDiff, "<= 1024 pixels (negative disables)")
	case p.PreFilterCap < 1 || p.PreFilterCap > 63:
		return bad("pre_filter_cap", p.PreFilterCap, "1..63")
	case p.UniquenessRatio < 0 || p.UniquenessRatio > 100:
		return bad("uniqueness_ratio", p.UniquenessRatio, "0..100 percent")
	case p.SpeckleWindowSize < 0:
		return bad("speckle_window_size", p.SpeckleWindowSize, ">= 0 pixels")
	case p.SpeckleRange < 0:
		return bad("speckle_range", p.SpeckleRange, ">= 0 pixels")
	case !(p.MinDepthM >= 0) || math.IsInf(p.MinDepthM, 0):
		return bad("min_depth_m", p.MinDepthM, "a finite number >= 0 metres")
	case !(p.MaxDepthM > p.MinDepthM) || math.IsInf(p.MaxDepthM, 0):
		return bad("max_depth_m", p.MaxDepthM, fmt.Sprintf("finite and above MinDepthM (%g) metres", p.MinDepthM))
	}
	if _, ok := modes[p.Mode]; !ok {
		return bad("mode", fmt.Sprintf("%q", p.Mode), `"3way", "sgbm", "hh4" or "hh"`)
	}
	if p1, p2 := p.Penalties(); p2 <= p1 {
		return fmt.Errorf("p2 = %d must exceed p1 = %d", p2, p1)
	}
	return nil
}

func (p Params) matcherParams() calib3d.SGBMParams {
	p1, p2 := p.Penalties()
	return calib3d.SGBMParams{
		MinDisparity:      p.MinDisparity,
		NumDisparities:    p.NumDisparities,
		BlockSize:         p.BlockSize,
		P1:                p1,
		P2:                p2,
		Disp12MaxDiff:     p.Disp12MaxDiff,
		PreFilterCap:      p.PreFilterCap,
		UniquenessRatio:   p.UniquenessRatio,
		SpeckleWindowSize: p.SpeckleWindowSize,
		SpeckleRange:      p.SpeckleRange,
		Mode:              modes[p.Mode],
	}
}
