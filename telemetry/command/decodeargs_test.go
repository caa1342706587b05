package command

import "testing"

func TestDecodeArgsWithoutArgsKeepsDefaults(t *testing.T) {
	for _, raw := range []string{"", "  ", "null"} {
		a := struct {
			Frames int `json:"frames"`
		}{Frames: 10}
		if err := DecodeArgs([]byte(raw), &a); err != nil || a.Frames != 10 {
			t.Errorf("DecodeArgs(%q): %v, frames %d; want no error and the default 10", raw, err, a.Frames)
		}
	}
	var a struct {
		Frames int `json:"frames"`
	}
	if err := DecodeArgs([]byte(`{"frams":3}`), &a); err == nil {
		t.Error("an unknown field was accepted")
	}
}
