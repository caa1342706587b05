//go:build unix

package sim

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used (user + system). Benchmarks report
// CPU per frame beside wall-clock rates because the machines they run on are shared:
// wall-clock frames/s says how fast it went, CPU per frame how fast it can go.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
