// Package platform probes the NVIDIA Jetson that edgedepth runs on: the L4T and JetPack
// release, the module, the nvpmodel power mode, the CPU, GPU and memory clock limits, the
// thermal zones and the INA3221 power rails. On any other machine it says "skipped".
//
// # Concepts
//
// Every reader takes a filesystem root: "/" in production, a directory of recorded files
// in tests (testdata/<model>/ holds AGX Orin, Orin NX and Orin Nano layouts). Nothing here
// uses cgo or NVIDIA libraries, so the package builds and runs everywhere.
//
// Probe returns a Report whose State follows periph's drivers: Loaded (a Jetson; parts
// that could not be read are listed in Notes, the rest is reported), Skipped ("not a
// Jetson (no /etc/nv_tegra_release)"), Failed (the release file exists but cannot be
// understood). Report.Text is the plain-words form for `edgedepth doctor`; Report has
// JSON tags for status messages.
//
// Where each value comes from:
//
//   - release: /etc/nv_tegra_release, "# R36 (release), REVISION: 3.0, ..." is L4T 36.3.0,
//     mapped to JetPack (6.0) by a table of documented pairs, else by major line.
//   - model: /proc/device-tree/model (NUL-terminated); module from the compatible list
//     (/proc/device-tree/compatible, "nvidia,p3701-0005" is AGX Orin 64GB); SoC from
//     /sys/devices/soc0/{soc_id,machine}.
//   - power mode: the current mode's id is read from /var/lib/nvpmodel/status
//     ("pmode:0002", JetPack 5 adds "fmode:quiet"), which the nvpmodel tool writes each
//     time it applies a mode, at boot included; its name from the matching
//     "< POWER_MODEL ID=2 NAME=MODE_30W >" section of /etc/nvpmodel.conf. With no status
//     file the conf's "< PM_CONFIG DEFAULT=n >" is reported, with a note.
//   - CPU: cpufreq policies, scaling_max_freq (the limit now, nvpmodel's cap included)
//     against cpuinfo_max_freq (the hardware's), in kHz.
//   - GPU: the devfreq device whose name has "gpu" (17000000.gpu, JetPack 6) or is the
//     Orin GPU (17000000.ga10b, JetPack 5): max_freq, cur_freq in Hz; load (per mille) from
//     the device's own "load" or /sys/devices/gpu.0/load.
//   - memory (EMC): /sys/kernel/debug/bpmp/debug/clk/emc/{rate,max_rate}, debugfs: root only.
//   - thermal: /sys/class/thermal/thermal_zone*/{type,temp}, milli-°C; Jetson zones without
//     a sensor answer -256000 and are reported as "no reading".
//   - power: INA3221 channels through hwmon, /sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/
//     in<N>_label, in<N>_input (mV), curr<N>_input (mA); channels labelled "NC" are skipped.
//
// # Lifecycle
//
// Probe is a one-shot read with no state. For live readings, NewSampler finds the
// temperature, power and GPU load files once and keeps them open; Sample re-reads them
// from offset 0 into a caller-owned Telemetry without allocating; Close releases them.
// Sample(root) is the one-shot form.
//
// # Concurrency
//
// Probe and Sample(root) are safe to call from any goroutine. A Sampler belongs to one
// goroutine (the training governor's loop) and must not be shared.
package platform
