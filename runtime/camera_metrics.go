package runtime

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgedepth/edgedepth/camera/rtsp"
	"github.com/edgedepth/edgedepth/camera/stereo"
)

// cameraCollector exposes the RTSP ingest on /metrics: per camera the frames, losses and
// jitter, and for the pair the pairing error, offset and drift. It reads the parts' own
// statistics at scrape time, so the hot path pays nothing for it.
type cameraCollector struct {
	src  *stereo.Source
	cams map[string]*rtsp.Camera // by side: "left", "right" or "side-by-side"

	frames, corrupt, lost, skipped, restarts, jitter, fps *prometheus.Desc
	pairs, unpaired, pairError, offset, drift             *prometheus.Desc
}

func newCameraCollector(src *stereo.Source, cams map[string]*rtsp.Camera) *cameraCollector {
	cam := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("edgedepth_camera_"+name, help, []string{"camera"}, nil)
	}
	pair := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("edgedepth_pairing_"+name, help, labels, nil)
	}
	return &cameraCollector{
		src: src, cams: cams,
		frames:    cam("frames_total", "Pictures decoded and delivered by the camera."),
		corrupt:   cam("corrupt_frames_total", "Access units dropped as incomplete or undecodable."),
		lost:      cam("lost_packets_total", "RTP packets that never arrived (sequence gaps)."),
		skipped:   cam("skipped_frames_total", "Access units skipped while waiting for a keyframe."),
		restarts:  cam("restarts_total", "Times the camera's stream failed and was restarted."),
		jitter:    cam("jitter_seconds", "RFC 3550 interarrival jitter of the camera's RTP packets."),
		fps:       cam("fps", "Measured frame rate of the camera, frames per second."),
		pairs:     pair("pairs_total", "Stereo pairs matched by capture time."),
		unpaired:  pair("unpaired_frames_total", "Frames discarded without a partner within the tolerance.", "camera"),
		pairError: pair("error_seconds", "Recent mean |left − right| capture-time difference of pairs."),
		offset:    pair("offset_seconds", "Recent mean left − right capture-time difference."),
		drift:     pair("drift_seconds_per_minute", "Trend of the left − right offset (0 until measured)."),
	}
}

func (c *cameraCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.frames, c.corrupt, c.lost, c.skipped, c.restarts, c.jitter, c.fps,
		c.pairs, c.unpaired, c.pairError, c.offset, c.drift} {
		ch <- d
	}
}

func (c *cameraCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	restarts := map[string]uint64{"left": st.Left.Restarts, "right": st.Right.Restarts}
	if st.SideBySide {
		restarts = map[string]uint64{"side-by-side": st.Left.Restarts}
	}
	for side, cam := range c.cams {
		cs := cam.Stats()
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), side)
		}
		counter(c.frames, cs.Frames)
		counter(c.corrupt, cs.Corrupt)
		counter(c.lost, cs.LostPackets)
		counter(c.skipped, cs.Skipped)
		counter(c.restarts, restarts[side])
		ch <- prometheus.MustNewConstMetric(c.jitter, prometheus.GaugeValue, cs.JitterMs/1000, side)
		ch <- prometheus.MustNewConstMetric(c.fps, prometheus.GaugeValue, cs.FPS, side)
	}
	p := st.Pairing
	ch <- prometheus.MustNewConstMetric(c.pairs, prometheus.CounterValue, float64(p.Pairs))
	ch <- prometheus.MustNewConstMetric(c.unpaired, prometheus.CounterValue, float64(p.UnpairedLeft), "left")
	ch <- prometheus.MustNewConstMetric(c.unpaired, prometheus.CounterValue, float64(p.UnpairedRight), "right")
	ch <- prometheus.MustNewConstMetric(c.pairError, prometheus.GaugeValue, p.ErrorRecent.Seconds())
	ch <- prometheus.MustNewConstMetric(c.offset, prometheus.GaugeValue, p.OffsetRecent.Seconds())
	drift := 0.0
	if p.DriftValid {
		drift = p.DriftMsPerMin / 1000
	}
	ch <- prometheus.MustNewConstMetric(c.drift, prometheus.GaugeValue, drift)
}
