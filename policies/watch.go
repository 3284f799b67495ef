package policies

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Watch polls the policy files at paths every interval until ctx ends. It
// reads the files at once and then on every poll; whenever their names or
// contents differ from the last read, it loads them and calls onLoad with the
// new set, or onError when they do not load (once per distinct broken
// content). A change is acted on once the files read the same on two polls
// in a row, so a file caught half-written is not taken for a broken edit.
// A broken edit therefore never replaces the working set: the
// caller keeps the last set onLoad gave it. Reading contents rather than
// watching events works through Kubernetes ConfigMap symlink swaps and
// editors that replace files.
func Watch(ctx context.Context, paths []string, interval time.Duration, opts LoadOptions, onLoad func(*Set), onError func(error)) {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	var good []Source // the files of the last set given to onLoad
	haveGood := false
	reported := "" // the state last reported to onError
	seen := ""     // the digest of the previous poll's read
	first := true
	poll := func() {
		srcs, problems := readPaths(paths)
		// Act only on content that held still for one interval: a file
		// being written in place is read half-written at times, and that
		// must not count as a broken edit.
		digest := "read-error"
		if len(problems) == 0 {
			digest = sourcesDigest(srcs)
		}
		stable := first || digest == seen
		seen, first = digest, false
		if !stable {
			return
		}
		if len(problems) > 0 {
			err := &LoadError{Problems: problems}
			if key := "read:" + err.Error(); key != reported {
				reported = key
				onError(err)
			}
			return
		}
		if haveGood && sameSources(srcs, good) {
			reported = ""
			return
		}
		key := "load:" + digest
		if key == reported {
			return
		}
		set, err := LoadSources(opts, srcs...)
		if err != nil {
			reported = key
			onError(err)
			return
		}
		good, haveGood, reported = srcs, true, ""
		onLoad(set)
	}
	poll()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			poll()
		}
	}
}

func sourcesDigest(srcs []Source) string {
	h := sha256.New()
	for _, s := range srcs {
		fmt.Fprintf(h, "%d:%s%d:", len(s.Name), s.Name, len(s.Data))
		h.Write(s.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sameSources(a, b []Source) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}
