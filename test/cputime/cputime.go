// Package cputime reads the CPU time a benchmark's process has used: on a
// shared machine another tenant's load moves wall time far more than CPU
// time, so benchmarks report both.
package cputime

import (
	"syscall"
	"time"
)

// Process is the user plus system CPU time of the whole process so far,
// every goroutine and thread included; zero if it cannot be read.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
