package depth_test

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"time"

	"github.com/edgedepth/edgedepth/camera"
	"github.com/edgedepth/edgedepth/depth"
)

// A consumer needs nothing from edgedepth to read the depth topic: any PNG decoder
// gives millimetres.
func ExampleEncodePNG() {
	m := depth.NewMap(4, 2)
	m.M[1] = 1.2345 // metres
	payload, err := depth.EncodePNG(m, depth.Meta{
		Seq:        42,
		Stamp:      time.Date(2026, 11, 3, 12, 0, 0, 5, time.UTC),
		FrameID:    "left_camera_optical",
		Estimator:  "sgbm",
		Intrinsics: camera.Intrinsics{Fx: 381.4, Fy: 381.4, Cx: 319.5, Cy: 239.5},
		BaselineM:  0.2,
	})
	if err != nil {
		panic(err)
	}

	img, _ := png.Decode(bytes.NewReader(payload))
	g := img.(*image.Gray16)
	fmt.Println("pixel (1,0):", g.Gray16At(1, 0).Y, "mm; pixel (0,0):", g.Gray16At(0, 0).Y, "(invalid)")

	// edgedepth's own decoder also returns the metadata.
	back, meta, _ := depth.DecodePNG(payload)
	fmt.Println(back.M[1], "m, seq", meta.Seq, meta.Stamp.Format(time.RFC3339Nano), meta.Intrinsics.Fx)
	// Output:
	// pixel (1,0): 1235 mm; pixel (0,0): 0 (invalid)
	// 1.235 m, seq 42 2026-11-03T12:00:00.000000005Z 381.4
}
