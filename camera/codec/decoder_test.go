package codec

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/edgedepth/edgedepth/camera"
)

// ffmpegStream is a stream encoded by the ffmpeg command-line tool: its access units in
// decoding order with their presentation times, and the pictures ffmpeg itself decodes
// from it in display order (the reference).
type ffmpegStream struct {
	aus  [][][]byte
	pts  []int64 // per access unit, in decoding order, milliseconds
	ref  []camera.Image
	w, h int
}

// encodeWithFFmpeg encodes n frames of ffmpeg's testsrc2 with encoder (libx264 or libx265)
// and the given number of B-frames, in a Matroska file (which records each packet's pts),
// then rewrites it as an Annex B stream with an access unit delimiter before every access
// unit, so that the test can split access units without parsing slice headers.
func encodeWithFFmpeg(t *testing.T, encoder string, bframes, n int) ffmpegStream {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (Debian: apt-get install ffmpeg)")
	}
	const w, h = 320, 240
	dir := t.TempDir()
	mkv, raw, rgb := filepath.Join(dir, "s.mkv"), filepath.Join(dir, "s.es"), filepath.Join(dir, "s.rgb")
	bsf, format := "h264_mp4toannexb,h264_metadata=aud=insert", "h264"
	args := []string{"-bf", strconv.Itoa(bframes), "-g", "12"}
	if encoder == "libx265" {
		bsf, format = "hevc_mp4toannexb,hevc_metadata=aud=insert", "hevc"
		args = append(args, "-x265-params", "log-level=error:bframes="+strconv.Itoa(bframes))
	}
	run := func(name string, args ...string) []byte {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return out
	}
	run("ffmpeg", append(append([]string{"-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
		"testsrc2=size=320x240:rate=25", "-frames:v", strconv.Itoa(n), "-pix_fmt", "yuv420p", "-c:v", encoder},
		args...), mkv)...)
	run("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", mkv, "-c", "copy", "-bsf:v", bsf, "-f", format, raw)
	run("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", mkv, "-f", "rawvideo", "-pix_fmt", "rgb24", rgb)
	probe := run("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=pts", "-of", "csv=p=0", mkv)

	var s ffmpegStream
	s.w, s.h = w, h
	for _, line := range strings.Fields(string(probe)) {
		p, err := strconv.ParseInt(strings.TrimSuffix(line, ","), 10, 64)
		if err != nil {
			t.Fatalf("ffprobe pts %q: %v", line, err)
		}
		s.pts = append(s.pts, p)
	}
	es, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	nalus, err := splitAnnexB(es)
	if err != nil {
		t.Fatal(err)
	}
	isAUD := func(n []byte) bool {
		if format == "hevc" {
			return len(n) >= 2 && (n[0]>>1)&0x3f == 35
		}
		return naluType(n) == naluTypeAUD
	}
	for _, nalu := range nalus {
		if isAUD(nalu) || len(s.aus) == 0 {
			s.aus = append(s.aus, nil)
		}
		s.aus[len(s.aus)-1] = append(s.aus[len(s.aus)-1], nalu)
	}
	if len(s.aus) != len(s.pts) {
		t.Fatalf("%d access units but %d packet times", len(s.aus), len(s.pts))
	}
	pix, err := os.ReadFile(rgb)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off+3*w*h <= len(pix); off += 3 * w * h {
		s.ref = append(s.ref, camera.Image{Width: w, Height: h, Pix: pix[off : off+3*w*h]})
	}
	return s
}

// TestDecodeFFmpegStreams decodes streams made by ffmpeg's encoders, with and without
// B-frames, and checks that pictures come out in display order, each with the PTS of its
// own access unit, and look like what ffmpeg decodes.
func TestDecodeFFmpegStreams(t *testing.T) {
	tests := []struct {
		codec, encoder string
		bframes        int
	}{
		{CodecH264, "libx264", 0},
		{CodecH264, "libx264", 2},
		{CodecH265, "libx265", 0},
		{CodecH265, "libx265", 3},
	}
	for _, tt := range tests {
		t.Run(tt.encoder+"/bf"+strconv.Itoa(tt.bframes), func(t *testing.T) {
			const n = 30
			s := encodeWithFFmpeg(t, tt.encoder, tt.bframes, n)
			if reordered := !slices.IsSorted(s.pts); reordered != (tt.bframes > 0) {
				t.Fatalf("decoding-order PTS sorted = %v with %d B-frames: the test does not test what it says", !reordered, tt.bframes)
			}
			dec, err := NewDecoder(tt.codec, "")
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			var got []Picture
			for i, au := range s.aus {
				pics, err := dec.DecodeTimed(au, s.pts[i])
				if err != nil {
					t.Fatalf("access unit %d: %v", i, err)
				}
				got = append(got, pics...)
			}
			// The decoder keeps up to its reorder depth of pictures until more arrive; a
			// live stream never ends, so there is no flush.
			if len(got) < n-tt.bframes-1 {
				t.Fatalf("%d pictures out of %d access units", len(got), n)
			}
			want := slices.Sorted(slices.Values(s.pts))
			for i, p := range got {
				if p.PTS != want[i] {
					t.Fatalf("picture %d: PTS %d, want %d (display order %v)", i, p.PTS, want[i], want[:len(got)])
				}
				if q := psnr(t, s.ref[i], p.Image); q < 35 {
					t.Errorf("picture %d: PSNR %.1f dB against ffmpeg's decode, want >= 35", i, q)
				}
			}
		})
	}
}

func TestNewDecoderErrors(t *testing.T) {
	tests := []struct {
		codec, name string
		want        error
	}{
		{"vp8", "", ErrConfig},
		{"h265", "h264", ErrConfig},
		{"hevc", "hevc_nonexistent", ErrNotFound},
		{"h264", "hevc", ErrConfig},
	}
	for _, tt := range tests {
		d, err := NewDecoder(tt.codec, tt.name)
		if !errors.Is(err, tt.want) {
			if d != nil {
				d.Close()
			}
			t.Errorf("NewDecoder(%q, %q): %v, want %v", tt.codec, tt.name, err, tt.want)
		}
	}
	for _, c := range []string{"h264", "H265", "hevc"} {
		d, err := NewDecoder(c, "")
		if err != nil {
			t.Errorf("NewDecoder(%q): %v", c, err)
			continue
		}
		d.Close()
	}
}

// FuzzDecodeH264 and FuzzDecodeH265 feed arbitrary NAL units, as a network would, to the
// decoder glue: errors are fine, crashes and leaks are not.
func FuzzDecodeH264(f *testing.F) { fuzzDecode(f, CodecH264) }

func FuzzDecodeH265(f *testing.F) { fuzzDecode(f, CodecH265) }

func fuzzDecode(f *testing.F, codec string) {
	enc, err := NewH264Encoder(EncoderConfig{Width: 64, Height: 48})
	if err != nil {
		f.Fatal(err)
	}
	au, err := enc.Encode(texture(64, 48, 0), 0)
	enc.Close()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(appendAnnexB(nil, au), 2)
	f.Add([]byte{0, 0, 0, 1, 0x65, 0xff, 0, 0x12}, 0)
	f.Add([]byte{0, 0, 0, 1, 0x40, 0x01, 0x0c, 0x01, 0xff, 0xff}, 1)
	dec, err := NewDecoder(codec, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(dec.Close)
	f.Fuzz(func(t *testing.T, stream []byte, repeat int) {
		nalus, err := splitAnnexB(stream)
		if err != nil {
			return
		}
		for range 1 + repeat&3 {
			pics, _ := dec.DecodeTimed(nalus, 1)
			for _, p := range pics {
				if len(p.Image.Pix) != 3*p.Image.Width*p.Image.Height {
					t.Fatalf("picture %dx%d with %d bytes", p.Image.Width, p.Image.Height, len(p.Image.Pix))
				}
			}
		}
	})
}
