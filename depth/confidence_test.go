package depth

import (
	"math"
	"testing"
	"time"
)

func TestConfidencePNGRoundTrip(t *testing.T) {
	w, h := 7, 3
	conf := make([]float32, w*h)
	for i := range conf {
		conf[i] = float32(i) / float32(len(conf)-1)
	}
	conf[3] = float32(math.NaN())
	conf[4] = 1.5
	meta := Meta{Seq: 42, Stamp: time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC), FrameID: "camera_left", Estimator: "monodepth2"}
	b, err := EncodeConfidencePNG(conf, w, h, meta)
	if err != nil {
		t.Fatal(err)
	}
	got, gw, gh, gm, err := DecodeConfidencePNG(b)
	if err != nil {
		t.Fatal(err)
	}
	if gw != w || gh != h || gm.Seq != 42 || !gm.Stamp.Equal(meta.Stamp) || gm.FrameID != meta.FrameID || gm.Estimator != meta.Estimator {
		t.Fatalf("decoded %dx%d %+v", gw, gh, gm)
	}
	for i, c := range got {
		want := conf[i]
		switch i {
		case 3:
			want = 0
		case 4:
			want = 1
		}
		if math.Abs(float64(c-want)) > 0.5/255+1e-6 {
			t.Errorf("pixel %d: %g, want %g", i, c, want)
		}
	}
	// A depth payload is not a confidence payload.
	d, _ := EncodePNG(Map{Width: 1, Height: 1, M: []float32{1}}, meta)
	if _, _, _, _, err := DecodeConfidencePNG(d); err == nil {
		t.Fatal("a depth payload decoded as confidence")
	}
}
