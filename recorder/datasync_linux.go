package recorder

import (
	"os"
	"syscall"
)

// datasync flushes f's data and the metadata needed to read it back (its
// size) with fdatasync, cheaper than fsync on appends.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
