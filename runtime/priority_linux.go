package runtime

import (
	goruntime "runtime"
	"syscall"
)

// lowerThreadPriority locks the calling goroutine to its OS thread and gives the
// thread the scheduling niceness nice (0–19; higher yields more), so that the kernel
// runs inference's threads first whenever both want a core. The goroutine must end
// locked: Go then ends the thread rather than hand its lowered priority on.
func lowerThreadPriority(nice int) error {
	goruntime.LockOSThread()
	return syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), nice)
}
