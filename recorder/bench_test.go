package recorder_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
)

// BenchmarkSpoolAppendParallel measures durable appends of decision events
// (masking, chaining, encoding, group commit): each returns once its event
// is synced, many appends sharing one sync. Uploads are held back.
func BenchmarkSpoolAppendParallel(b *testing.B) {
	dir := b.TempDir()
	r, err := recorder.New(context.Background(), recorder.Options{
		Sink: recordertest.OpenSink(b, "file://"+filepath.Join(dir, "sink")), Spool: filepath.Join(dir, "spool"),
		SpoolMaxBytes: 8 << 30, FlushInterval: time.Hour, ChunkMinBytes: 1 << 30, ChunkMaxBytes: 1 << 30, ChunkMaxAge: time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(128)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		session := fmt.Sprintf("bench-%d~x", n.Add(1)%32)
		for pb.Next() {
			if err := r.Decision(ctx, recorder.DecisionEvent{SessionID: session, RequestID: "r", Subject: "alice", Method: "GET",
				Host: "compute.googleapis.com", Path: "/compute/v1/projects/p/zones/z/instances", GCPMethod: "compute.instances.list",
				Decision: recorder.DecisionAllowed, Policy: "gcp", Rule: "agents-may-read", Headers: map[string]string{"user-agent": "gcloud"}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	b.StopTimer()
	recorder.Abandon(r)
}

// BenchmarkUploadGCS measures how fast spooled requests (decision,
// request and vote events, 500 sessions) drain to the GCS emulator, every
// GCS request delayed by 50ms as over a network.
func BenchmarkUploadGCS(b *testing.B) {
	g := recordertest.StartGCS(b, "audit")
	g.SetLatency(50 * time.Millisecond)
	client := g.Client(b)
	dir := b.TempDir()
	ctx := context.Background()
	r, err := recorder.New(ctx, recorder.Options{Sink: recorder.NewGCSSink(client, "audit", "bench"), Spool: filepath.Join(dir, "spool"),
		SpoolMaxBytes: 8 << 30, FlushInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	const sessions = 500
	for i := 0; i < b.N; i++ {
		if err := recordRequest(ctx, r, fmt.Sprintf("up-%d~x", i%sessions), "alice", i); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	if err := r.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "requests/s")
	b.StopTimer()
	if st := r.Stats(); st.PendingEvents != 0 {
		b.Fatalf("left %d", st.PendingEvents)
	}
	r.Close(ctx)
}
