//go:build !linux

package runtime

import goruntime "runtime"

// lowerThreadPriority locks the calling goroutine to its OS thread; thread priorities
// are only set on Linux.
func lowerThreadPriority(nice int) error {
	goruntime.LockOSThread()
	return nil
}
