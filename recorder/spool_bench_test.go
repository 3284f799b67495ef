package recorder

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/airlockhq/airlock/test/cputime"
)

// BenchmarkSpoolEnqueueParallel measures the spool alone: durable appends
// of 400-byte records, concurrent appends sharing fsyncs.
func BenchmarkSpoolEnqueueParallel(b *testing.B) {
	s, err := openSpool(b.TempDir(), 8<<30, 64<<20, func(spoolRecord) bool { return false })
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	rec := bytes.Repeat([]byte("x"), 400)
	b.SetParallelism(128)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := appendDurable(s, rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkSpoolDatasync is the floor under group commit on this disk:
// one 4 KiB write over zero-filled blocks plus datasync, alone. It
// reports the CPU each sync costs (user + system time of the process),
// which a batch shares among its records however few they are.
func BenchmarkSpoolDatasync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "sync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const span = 8 << 20
	if _, err := f.Write(make([]byte, span)); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	rec := bytes.Repeat([]byte("x"), 4<<10)
	cpu0 := cputime.Process()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := f.WriteAt(rec, int64(i*len(rec))%span); err != nil {
			b.Fatal(err)
		}
		if err := datasync(f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cputime.Process()-cpu0).Nanoseconds())/float64(b.N)/1e3, "cpu-µs/op")
}
