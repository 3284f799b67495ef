//go:build !unix

package recorder

import "errors"

// ErrSpoolInUse is returned (wrapped) by New when another process holds
// the spool directory.
var ErrSpoolInUse = errors.New("recorder: the spool is in use by another process")

// spoolLock does nothing where flock is not available.
type spoolLock struct{}

func lockSpool(string) (*spoolLock, error) { return &spoolLock{}, nil }

func (*spoolLock) release() {}
