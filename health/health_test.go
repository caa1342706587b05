package health

import "testing"

func TestTracker(t *testing.T) {
	var h Tracker
	if !h.OK() || len(h.Warnings()) != 0 {
		t.Fatal("zero Tracker is not healthy")
	}
	h.Set("mqtt", "broker refused")
	h.Set("camera left", "no packets")
	first := h.Warnings()[1].Since
	h.Set("mqtt", "broker refused") // same message keeps Since
	w := h.Warnings()
	if len(w) != 2 || w[0].Component != "camera left" || w[1].Since != first || h.OK() {
		t.Fatalf("warnings %+v", w)
	}
	h.Report("camera left", nil)
	h.Clear("mqtt")
	if !h.OK() {
		t.Fatalf("still degraded: %+v", h.Warnings())
	}
}
