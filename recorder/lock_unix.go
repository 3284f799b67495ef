//go:build unix

package recorder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrSpoolInUse is returned (wrapped) by New when another process holds
// the spool directory: two writers on one spool would upload each
// other's events.
var ErrSpoolInUse = errors.New("recorder: the spool is in use by another process")

// spoolLock is an exclusive flock on SPOOL/lock, held while the recorder
// runs and released by the kernel if the process dies.
type spoolLock struct{ f *os.File }

func lockSpool(dir string) (*spoolLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recorder: spool %s: %w", dir, err)
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recorder: spool %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w%s: %s is locked; give each airlock process its own spool directory", ErrSpoolInUse, holder, dir)
		}
		return nil, fmt.Errorf("recorder: spool %s: lock: %w", dir, err)
	}
	// The holder's pid, for the message another process prints.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &spoolLock{f: f}, nil
}

func (l *spoolLock) release() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Close()
	l.f = nil
}
