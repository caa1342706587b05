package eval

import "fmt"

// Crop selects the image region whose pixels the depth metrics use, as fractions of
// the image height and width (so it applies to any resolution), the way the KITTI
// evaluation of Monodepth2 and its predecessors does.
type Crop string

// Crops.
const (
	// CropNone uses every pixel.
	CropNone Crop = "none"
	// CropGarg is the crop of Garg et al. (ECCV 2016), used with the Eigen split:
	// rows 0.40810811–0.99189189 of the height, columns 0.03594771–0.96405229 of the
	// width. It leaves out the sky, where the LiDAR has no returns, and the borders.
	CropGarg Crop = "garg"
	// CropEigen is the crop of Eigen et al. (NIPS 2014): rows 0.3324324–0.91351351,
	// columns 0.0359477–0.96405229.
	CropEigen Crop = "eigen"
)

// ParseCrop reads "none", "garg" or "eigen" ("" is none).
func ParseCrop(s string) (Crop, error) {
	switch Crop(s) {
	case "", CropNone:
		return CropNone, nil
	case CropGarg, CropEigen:
		return Crop(s), nil
	}
	return "", fmt.Errorf("eval: crop %q: want none, garg or eigen", s)
}

// Fractions returns the crop's rows [top, bottom) and columns [left, right) as
// fractions of the image height and width.
func (c Crop) Fractions() (top, bottom, left, right float64) {
	switch c {
	case CropGarg:
		return 0.40810811, 0.99189189, 0.03594771, 0.96405229
	case CropEigen:
		return 0.3324324, 0.91351351, 0.0359477, 0.96405229
	}
	return 0, 1, 0, 1
}

// Rect returns the crop in pixels of a width x height image: rows [y0, y1), columns
// [x0, x1), each bound the fraction times the size, truncated (as the KITTI
// evaluation code rounds them).
func (c Crop) Rect(width, height int) (x0, y0, x1, y1 int) {
	top, bottom, left, right := c.Fractions()
	return int(left * float64(width)), int(top * float64(height)), int(right * float64(width)), int(bottom * float64(height))
}

// Mask returns the crop as a mask for depth.Compare (true = used), nil for CropNone.
func (c Crop) Mask(width, height int) []bool {
	if c == CropNone || c == "" {
		return nil
	}
	x0, y0, x1, y1 := c.Rect(width, height)
	m := make([]bool, width*height)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			m[y*width+x] = true
		}
	}
	return m
}
