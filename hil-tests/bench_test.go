package hiltests

import (
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/edgedepth/edgedepth/depth"
	"github.com/edgedepth/edgedepth/telemetry"
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

// BenchmarkNetworkFrameToMQTT runs the daemon with the networks (the end-to-end test's
// model: channel scale 0.25, 320x96) on the simulated street at 320x96 and 10 fps,
// embedded broker, and measures for each pose message the time from the pair's
// capture stamp to its arrival at a subscriber: ring wait + networks + odometry +
// depth and confidence encoding + MQTT. With continual training on, the learner
// (320x96, batch 4, duty 0.3, one thread at lowered priority) trains beside it.
// Reported as p50 and p95 milliseconds and the pairs per second received.
func BenchmarkNetworkFrameToMQTT(b *testing.B) {
	for _, training := range []bool{false, true} {
		name := "training-off"
		if training {
			name = "training-on"
		}
		b.Run(name, func(b *testing.B) {
			brokerAddr, httpAddr, data := freeAddr(b), freeAddr(b), b.TempDir()
			copyModels(b, filepath.Join(data, "models"))
			startDaemonArgs(b, []string{
				"EDGEDEPTH_ROBOT_ID=bench",
				"EDGEDEPTH_DATA_DIR=" + data,
				"EDGEDEPTH_MQTT_EMBEDDED_BROKER_ADDR=" + brokerAddr,
				"EDGEDEPTH_MQTT_BROKER_URL=tcp://" + brokerAddr,
				"EDGEDEPTH_HTTP_ADDR=" + httpAddr,
				"EDGEDEPTH_SOURCE_SIM_SCENE=street", "EDGEDEPTH_SOURCE_SIM_SEED=3",
				"EDGEDEPTH_SOURCE_SIM_WIDTH=320", "EDGEDEPTH_SOURCE_SIM_HEIGHT=96",
				"EDGEDEPTH_DEPTH_ESTIMATOR=network",
				"EDGEDEPTH_DEPTH_NETWORK_WIDTH=320", "EDGEDEPTH_DEPTH_NETWORK_HEIGHT=96",
				"EDGEDEPTH_TRAINING_ENABLED=" + strconv.FormatBool(training),
				"EDGEDEPTH_TRAINING_WIDTH=320", "EDGEDEPTH_TRAINING_HEIGHT=96",
			}, "run")
			waitHealth(b, httpAddr, 30*time.Second, func(code int, _ string) bool { return code > 0 })
			msgs := subscribe(b, "tcp://"+brokerAddr, "edgedepth/bench/pose")
			for range 5 {
				waitFor(b, msgs, 30*time.Second, "pose", func(message) bool { return true })
			}
			b.ResetTimer()
			start := time.Now()
			lat := make([]float64, 0, b.N)
			for range b.N {
				m := waitFor(b, msgs, 30*time.Second, "pose", func(message) bool { return true })
				p, err := telemetry.ParsePoseMessage(m.Payload)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, float64(m.At.Sub(p.Stamp))/float64(time.Millisecond))
			}
			b.StopTimer()
			sort.Float64s(lat)
			b.ReportMetric(lat[len(lat)/2], "p50-ms")
			b.ReportMetric(lat[len(lat)*95/100], "p95-ms")
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pairs/s")
		})
	}
}
