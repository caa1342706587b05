package runtime

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/edgedepth/edgedepth/camera/calib"
	"github.com/edgedepth/edgedepth/camera/calib3d"
	"github.com/edgedepth/edgedepth/camera/rtsp"
	"github.com/edgedepth/edgedepth/camera/sim"
	"github.com/edgedepth/edgedepth/jetson/cuda"
	"github.com/edgedepth/edgedepth/jetson/platform"
	"github.com/edgedepth/edgedepth/runtime/config"
	"github.com/edgedepth/edgedepth/tensor"
)

// Doctor checks what cfg needs on this machine and writes one plain line per finding:
// "ok", "warn" (works, but not as well as it could) or "FAIL" (the daemon will not do
// this part). It returns the number of failed checks.
func Doctor(ctx context.Context, cfg config.Config, version string, w io.Writer) (failed int) {
	report := func(level, what, format string, args ...any) {
		if level == "FAIL" {
			failed++
		}
		fmt.Fprintf(w, "%-4s  %-12s %s\n", level, what, fmt.Sprintf(format, args...))
	}

	report("ok", "build", "edgedepth %s, %s, %s/%s, %d CPUs", version, goruntime.Version(), goruntime.GOOS, goruntime.GOARCH, goruntime.NumCPU())
	report("ok", "opencv", "OpenCV %s (SGBM stereo matching through our calib3d shim)", calib3d.Version())
	checkCUDA(cfg, report)
	checkJetson(cfg, report)

	switch cfg.Source.Kind {
	case "sim":
		checkSim(cfg.Source.Sim, report)
	case "rtsp":
		r := cfg.Source.RTSP
		checkRTSPReachable(ctx, "left", r.Left.URL, report)
		if !r.SideBySide {
			checkRTSPReachable(ctx, "right", r.Right.URL, report)
		}
		checkCalibration(r, report)
		report("ok", "cameras", "run `edgedepth probe` with the camera URLs to see what they stream and how well they pair")
	}

	checkModel(cfg, report)
	checkBroker(ctx, cfg, report)
	checkDataDirWritable(cfg.DataDir, report)
	if cfg.HTTP.Addr != "" {
		checkListen("http", cfg.HTTP.Addr, "the viewer, /metrics and /healthz", report)
	}
	return failed
}

type reportFunc func(level, what, format string, args ...any)

func checkSim(sc sim.Config, report reportFunc) {
	w, err := sim.NewWorld(sc)
	if err != nil {
		report("FAIL", "camera", "simulated rig: %v", err)
		return
	}
	t0 := time.Now()
	w.Render(0)
	dt := time.Since(t0)
	report("ok", "camera", "simulated %s rig, %dx%d at %g fps: one stereo frame renders in %s",
		sc.Scene, sc.Width, sc.Height, sc.FPS, dt.Round(time.Millisecond))
	if dt.Seconds() > 1/sc.FPS {
		report("warn", "camera", "rendering is slower than %g fps on this machine: pairs will arrive late", sc.FPS)
	}
}

func checkCalibration(r config.RTSP, report reportFunc) {
	cal, err := calib.Load(r.Calibration...)
	if err != nil {
		report("FAIL", "calibration", "%v", err)
		return
	}
	report("ok", "calibration", "%s: %s, baseline %.3f m (calibration_unit_m %g)",
		strings.Join(r.Calibration, ", "), cal.Size, cal.Baseline()*r.CalibrationUnitM, r.CalibrationUnitM)
}

func checkRTSPReachable(ctx context.Context, eye, raw string, report reportFunc) {
	u, err := url.Parse(raw)
	if err != nil {
		report("FAIL", "camera "+eye, "URL %q: %v", rtsp.Redact(raw), err)
		return
	}
	host := u.Host
	if u.Port() == "" {
		port := "554"
		if u.Scheme == "rtsps" {
			port = "322"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	if err := dial(ctx, host); err != nil {
		report("FAIL", "camera "+eye, "%s is not reachable: %v (powered, cabled, right address?)", host, err)
		return
	}
	report("ok", "camera "+eye, "%s accepts TCP connections", host)
}

func checkBroker(ctx context.Context, cfg config.Config, report reportFunc) {
	m := cfg.MQTT
	if !m.Enabled {
		report("warn", "mqtt", "MQTT is off (mqtt.enabled: false): nothing will be published")
		return
	}
	if m.Embedded.Enabled {
		checkListen("mqtt", m.Embedded.Addr, "the embedded broker", report)
	}
	u, err := url.Parse(m.BrokerURL)
	if err != nil {
		report("FAIL", "mqtt", "broker_url %q: %v", m.BrokerURL, err)
		return
	}
	if m.Embedded.Enabled && sameAddr(u.Host, m.Embedded.Addr) {
		return // the embedded broker is the broker; its port was checked above
	}
	if err := dial(ctx, u.Host); err != nil {
		report("FAIL", "mqtt", "broker %s is not reachable: %v (the daemon will run and keep retrying)", m.BrokerURL, err)
		return
	}
	report("ok", "mqtt", "broker %s accepts TCP connections", m.BrokerURL)
}

func sameAddr(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp {
		return false
	}
	loop := func(h string) bool { return h == "localhost" || net.ParseIP(h).IsLoopback() }
	return ah == bh || (loop(ah) && loop(bh))
}

func dial(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func checkListen(what, addr, purpose string, report reportFunc) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		report("warn", what, "%s cannot listen on %s: %v (another process has the port?)", purpose, addr, err)
		return
	}
	l.Close()
	report("ok", what, "%s can listen on %s", purpose, addr)
}

func checkDataDirWritable(dir string, report reportFunc) {
	abs, _ := filepath.Abs(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		report("FAIL", "data_dir", "cannot create %s: %v", abs, err)
		return
	}
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		report("FAIL", "data_dir", "%s is not writable: %v", abs, err)
		return
	}
	f.Close()
	os.Remove(f.Name())
	report("ok", "data_dir", "%s is writable", abs)
}

// checkJetson reports the board (model, JetPack, power mode, clocks, temperatures, power
// rails) and the configured pins. On another machine the probe says "skipped".
func checkJetson(cfg config.Config, report reportFunc) {
	rep := platform.Probe("/")
	level := "ok"
	if rep.State == platform.Failed {
		level = "warn"
	}
	for _, line := range strings.Split(strings.TrimSpace(rep.Text()), "\n") {
		report(level, "jetson", "%s", strings.TrimPrefix(line, "jetson: "))
	}
	if cfg.GPIO.Empty() {
		report("ok", "gpio", "no pins configured (gpio.trigger_pin, gpio.led_pin, gpio.button_pin)")
		return
	}
	report("ok", "gpio", "pins configured: trigger %q, LED %q, button %q (the daemon opens them; no GPIO here means skipped, not an error)",
		cfg.GPIO.TriggerPin, cfg.GPIO.LEDPin, cfg.GPIO.ButtonPin)
}

// checkCUDA reports the CUDA libraries and GPUs found and, when they open, runs a
// kernel on the GPU (compiled by NVRTC) and reads its result back.
func checkCUDA(cfg config.Config, report func(level, what, format string, args ...any)) {
	info := cuda.Probe()
	if info.Err != nil {
		level := "warn"
		if cfg.Backend == "cuda" {
			level = "FAIL"
		}
		report(level, "cuda", "no usable CUDA (%v): the networks run on the CPU backend (backend: %s)", info.Err, cfg.Backend)
		return
	}
	report("ok", "cuda", "driver %d.%d %s; NVRTC %s; cuBLAS %s; cuDNN %s", info.DriverVersion/1000, info.DriverVersion%1000/10,
		info.Driver.Path, info.NVRTC, info.CUBLAS, info.CUDNN)
	for _, g := range info.Devices {
		report("ok", "gpu", "%d: %s, sm_%d, %d multiprocessors, %.1f GiB", g.Index, g.Name, g.SM, g.Multiprocessors, float64(g.MemoryBytes)/(1<<30))
	}
	b, err := cuda.Open(cuda.DefaultOptions())
	if err != nil {
		report("FAIL", "cuda", "the GPU does not open: %v", err)
		return
	}
	defer b.Close()
	x, err := b.Full(1.5, 4)
	if err == nil {
		var y *tensor.Tensor
		if y, err = b.Affine(x, 2, 1); err == nil {
			var v []float32
			if v, err = b.ToHost(y); err == nil && (len(v) != 4 || v[0] != 4) {
				err = fmt.Errorf("the test kernel computed %v, want 4", v)
			}
		}
	}
	if err != nil {
		report("FAIL", "cuda", "test kernel: %v", err)
		return
	}
	report("ok", "cuda", "a test kernel compiled for %s ran on GPU 0 and computed the right result", b.Target())
}
