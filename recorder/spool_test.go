package recorder

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
)

// appendDurable queues rec and waits until it is synced, as the recorder
// does for an event.
func appendDurable(s *spool, rec []byte) (fileNo uint64, off int64, err error) {
	b, n, off, err := s.enqueue(rec, 0, nil, false, waitDurable)
	if err != nil {
		return 0, 0, err
	}
	<-b.done
	return n, off, b.err
}

func appendWait(t *testing.T, s *spool, rec []byte) (uint64, int64) {
	t.Helper()
	n, off, err := appendDurable(s, rec)
	if err != nil {
		t.Fatal(err)
	}
	return n, off
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func spoolDiskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		n += fileSize(t, filepath.Join(dir, e.Name()))
	}
	return n
}

// TestSpoolFillsAheadAndReplays: a spool file is zero-filled ahead of its
// records; after a crash, the spool opened again replays every record,
// stops at the zeros and cuts them off; a closed spool leaves none.
func TestSpoolFillsAheadAndReplays(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 64<<20, 1<<20, func(spoolRecord) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	step := s.fillStep()
	var want [][]byte
	var recBytes int64
	var file uint64
	for i := 0; recBytes < 3*step; i++ {
		rec := append(bytes.Repeat([]byte{byte('a' + i%26)}, 3000), fmt.Sprint(i)...)
		n, _ := appendWait(t, s, rec)
		if i == 0 {
			file = n
		} else if n != file {
			t.Fatal("rotated before the test's records filled the file")
		}
		want = append(want, rec)
		recBytes += int64(frameHeader + len(rec))
	}
	path := filepath.Join(dir, walName(file))
	if size := fileSize(t, path); size <= recBytes {
		t.Fatalf("file is %d bytes for %d bytes of records: not filled ahead", size, recBytes)
	}
	// s is left as a crash leaves it (zeros after the records); the spool
	// is opened again on the same folder.

	var got [][]byte
	s2, err := openSpool(dir, 64<<20, 1<<20, func(r spoolRecord) bool {
		got = append(got, r.payload)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.close()
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
	if size := fileSize(t, path); size != recBytes {
		t.Fatalf("after replay the file is %d bytes, want its %d bytes of records", size, recBytes)
	}
	appendWait(t, s2, []byte("after restart"))
	s2.close()
	for _, e := range mustReadDir(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 0 && bytes.HasSuffix(data, make([]byte, frameHeader)) {
			t.Errorf("%s ends in zeros after a clean close", e.Name())
		}
	}
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestSpoolConcurrentAppendsSurviveFilling: appends of many sizes from
// many goroutines across several files and fill regions all come back
// intact: zeros never land on a record.
func TestSpoolConcurrentAppendsSurviveFilling(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 1<<30, 256<<10, func(spoolRecord) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var want []string
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 150; i++ {
				rec := fmt.Sprintf("g%02d-%04d-", g, i) + string(bytes.Repeat([]byte{'x'}, (g*131+i*977)%9000))
				if _, _, err := appendDurable(s, []byte(rec)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want = append(want, rec)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.close()
	var got []string
	s2, err := openSpool(dir, 1<<30, 256<<10, func(r spoolRecord) bool {
		got = append(got, string(r.payload))
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.close()
	sort.Strings(want)
	sort.Strings(got)
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %q replayed as %q", want[i][:10], got[i][:min(10, len(got[i]))])
		}
	}
}

// TestSpoolFillingStaysWithinTheBound: records plus zero-filled space never
// exceed the spool's bound on disk.
func TestSpoolFillingStaysWithinTheBound(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 200 << 10
	s, err := openSpool(dir, maxBytes, 32<<10, func(spoolRecord) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, _, err := appendDurable(s, bytes.Repeat([]byte("y"), 5000))
		if errors.Is(err, ErrSpoolFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	s.close()
	if disk := spoolDiskBytes(t, dir); disk > maxBytes {
		t.Fatalf("spool uses %d bytes on disk, bound %d", disk, maxBytes)
	}
}
