package recorder

import (
	"bytes"
	"testing"
	"time"
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
			batch, _, _, err := s.enqueue(rec, false)
			if err != nil {
				b.Error(err)
				return
			}
			<-batch.done
			if batch.err != nil {
				b.Error(batch.err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}
