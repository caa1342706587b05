package hiltests

import (
	"sort"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/depth"
)

// BenchmarkFrameToMQTTLatency runs the daemon on configs/default.yaml (simulated rig,
// SGBM, embedded broker; ports moved to free ones) and measures, for each depth message
// a subscriber receives, the time from the pair's capture stamp to the message's arrival:
// ring wait + SGBM + PNG encoding + MQTT through the broker. One iteration is one depth
// message; reported as p50 and p95 milliseconds.
func BenchmarkFrameToMQTTLatency(b *testing.B) {
	brokerAddr, httpAddr := freeAddr(b), freeAddr(b)
	startDaemonArgs(b, []string{
		"EDGEDEPTH_ROBOT_ID=bench",
		"EDGEDEPTH_DATA_DIR=" + b.TempDir(),
		"EDGEDEPTH_MQTT_EMBEDDED_BROKER_ADDR=" + brokerAddr,
		"EDGEDEPTH_MQTT_BROKER_URL=tcp://" + brokerAddr,
		"EDGEDEPTH_HTTP_ADDR=" + httpAddr,
	}, "run", "--config", "../configs/default.yaml")
	waitHealth(b, httpAddr, 30*time.Second, func(code int, _ string) bool { return code > 0 })
	msgs := subscribe(b, "tcp://"+brokerAddr, "edgedepth/bench/depth")
	// Let the pipeline reach its steady state before measuring.
	for range 3 {
		waitFor(b, msgs, 30*time.Second, "depth", func(message) bool { return true })
	}
	b.ResetTimer()
	lat := make([]float64, 0, b.N)
	for range b.N {
		m := waitFor(b, msgs, 30*time.Second, "depth", func(message) bool { return true })
		_, meta, err := depth.DecodePNG(m.Payload)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, float64(m.At.Sub(meta.Stamp))/float64(time.Millisecond))
	}
	b.StopTimer()
	sort.Float64s(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[len(lat)*95/100], "p95-ms")
}
