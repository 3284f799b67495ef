package policies

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// watchRecorder collects what Watch reports.
type watchRecorder struct {
	mu     sync.Mutex
	sets   []*Set
	errors []error
}

func (r *watchRecorder) onLoad(s *Set) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sets = append(r.sets, s)
}

func (r *watchRecorder) onError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, err)
}

func (r *watchRecorder) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sets), len(r.errors)
}

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func startWatch(t *testing.T, paths ...string) *watchRecorder {
	t.Helper()
	rec := &watchRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, paths, 5*time.Millisecond, LoadOptions{}, rec.onLoad, rec.onError)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return rec
}

// writeFile replaces path atomically (a temporary file renamed over it), as
// editors and ConfigMap updates do, so a poll never sees it half-written; a
// truncated file held still for a poll interval on a loaded machine would
// otherwise be a genuine broken edit.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// firstError returns the first error reported, under the recorder's lock.
func (r *watchRecorder) firstError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errors[0]
}

func TestWatchReloadsGoodEditsAndKeepsSetOnBrokenOnes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	writeFile(t, file, "name: one\ndefault: allow\n")
	rec := startWatch(t, dir)
	waitFor(t, "initial load", func() bool { n, _ := rec.counts(); return n == 1 })

	// A broken edit is reported once and gives no new set.
	writeFile(t, file, "name: one\ndefault: perhaps\n")
	waitFor(t, "error report", func() bool { _, e := rec.counts(); return e == 1 })
	var le *LoadError
	if first := rec.firstError(); !errors.As(first, &le) || !strings.Contains(first.Error(), `default must be allow, deny or approve, not "perhaps"`) {
		t.Fatalf("error = %v", first)
	}

	// A good edit replaces the set.
	writeFile(t, file, "name: two\ndefault: deny\n")
	waitFor(t, "reload", func() bool { n, _ := rec.counts(); return n == 2 })
	rec.mu.Lock()
	if got := rec.sets[1].Names(); len(got) != 1 || got[0] != "two" {
		t.Errorf("names = %v", got)
	}
	rec.mu.Unlock()

	// Unchanged content gives nothing more; a new file in the folder does.
	writeFile(t, filepath.Join(dir, "q.yaml"), "name: three\ndefault: deny\n")
	waitFor(t, "reload after new file", func() bool { n, _ := rec.counts(); return n == 3 })
	if n, e := rec.counts(); n != 3 || e != 1 {
		t.Errorf("loads %d errors %d, want 3 and 1", n, e)
	}
}

// TestWatchSymlinkSwap mimics a Kubernetes ConfigMap volume: the files are
// symbolic links through ..data, which is swapped atomically to a new folder.
func TestWatchSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	mkVersion := func(name, policy string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "p.yaml"), "name: "+policy+"\ndefault: allow\n")
	}
	mkVersion("..v1", "v1")
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "p.yaml"), filepath.Join(dir, "p.yaml")); err != nil {
		t.Fatal(err)
	}
	rec := startWatch(t, dir)
	waitFor(t, "initial load", func() bool { n, _ := rec.counts(); return n == 1 })

	mkVersion("..v2", "v2")
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("..v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload after swap", func() bool { n, _ := rec.counts(); return n == 2 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.sets[1].Names()[0]; got != "v2" {
		t.Errorf("policy = %s, want v2", got)
	}
	if len(rec.errors) != 0 {
		t.Errorf("errors = %v", rec.errors)
	}
}

func TestWatchReportsMissingFiles(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone.yaml")
	rec := startWatch(t, missing)
	waitFor(t, "error", func() bool { _, e := rec.counts(); return e == 1 })
	writeFile(t, missing, "name: back\ndefault: allow\n")
	waitFor(t, "load", func() bool { n, _ := rec.counts(); return n == 1 })
	if _, e := rec.counts(); e != 1 {
		t.Errorf("errors = %d, want 1 (reported once)", e)
	}
}
