//go:build unix

package logbatch

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) this process has used,
// all its goroutines together, and true.
func processCPU() (time.Duration, bool) {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0, false
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()), true
}
