package authz

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
	"github.com/airlockhq/airlock/test/cputime"
)

// BenchmarkRecordDecisionParallel is what recording adds to one allowed
// Check as airlock serve wires it: the decision handed over built from
// the result, headers and body masked with the serving profile, encoded,
// chained and made durable in an fsync'd spool shared by many concurrent
// requests. Uploads run as in production (local sink). Sub-benchmarks:
// recorder.durability (check: the Check waits for the sync; extproc: it
// does not), and one session for every caller or eight.
func BenchmarkRecordDecisionParallel(b *testing.B) {
	for _, mode := range []string{recorder.DurabilityExtProc, recorder.DurabilityCheck} {
		for _, subjects := range []int{1, 8} {
			b.Run(fmt.Sprintf("durability=%s/sessions=%d", mode, subjects), func(b *testing.B) {
				benchRecordDecision(b, mode, subjects)
			})
		}
	}
}

func benchRecordDecision(b *testing.B, durability string, subjects int) {
	eng, err := masking.NewEngine(nil)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	rec, err := recorder.New(context.Background(), recorder.Options{
		Sink: recordertest.OpenSink(b, "file://"+filepath.Join(dir, "sink")), Spool: filepath.Join(dir, "spool"),
		Mask: masking.NewRequestMasker(eng).Value, MaxBodyBytes: 16 << 10, Durability: durability,
	})
	if err != nil {
		b.Fatal(err)
	}
	e := &Engine{opts: Options{MaskBody: masking.NewRequestMasker(eng).Body}}
	var n atomic.Int64
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		subject := fmt.Sprintf("agent-%d", n.Add(1)%int64(subjects))
		session, err := rec.Session(context.Background(), subject, "")
		if err != nil {
			b.Error(err)
			return
		}
		r := benchResult(subject, session)
		for pb.Next() {
			if err := rec.RecordDecision(context.Background(), e.record(r)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	// CPU per decision (all goroutines, the committer and the uploader,
	// the upload of what was recorded included), the figure that bounds
	// throughput once Check saturates the cores.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((cputime.Process()-cpu0).Nanoseconds())/float64(b.N)/1e3, "cpu-µs/op")
}

func benchResult(subject, session string) *Result {
	path := "/compute/v1/projects/acme-dev/zones/us-east1-b/instances"
	return &Result{
		Outcome:   Allowed,
		RequestID: "5f0c3a9e-2b7d-4c61-9a57-0d2e8b1f4c33",
		SessionID: session,
		Identity:  identity.Identity{Subject: subject, Email: subject + "@agents.example.com", Issuer: "https://issuer.example.com"},
		Recognized: gcp.Recognized{Method: "GET", Host: "compute.googleapis.com", Path: path,
			Operation: gcp.Operation{Method: "compute.instances.list", Project: "acme-dev", Resource: "projects/acme-dev/zones/us-east1-b"}},
		Decision: policies.Decision{Policy: "gcp-baseline", Rule: "agents-may-read"},
		Request: &Request{ID: "5f0c3a9e-2b7d-4c61-9a57-0d2e8b1f4c33", Method: "GET", Host: "compute.googleapis.com", Path: path + "?maxResults=50",
			Headers: map[string]string{":method": "GET", ":path": path + "?maxResults=50", ":authority": "compute.googleapis.com", ":scheme": "https",
				"authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl", "user-agent": "google-cloud-sdk gcloud/500.0.0",
				"accept": "application/json", "x-request-id": "5f0c3a9e-2b7d-4c61-9a57-0d2e8b1f4c33", "x-goog-api-client": "gl-go/1.26 gdcl/0.312.0"},
			Time: time.Now()},
	}
}

// A decision records the peer address and the refusal's reason; a request
// refused before an identity was known is recorded compactly, its query
// (an API key, say) masked away with the rest.
func TestRecordSourceAndUnauthenticated(t *testing.T) {
	eng, err := masking.NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()
	rec, err := recorder.New(ctx, recorder.Options{Sink: recordertest.OpenSink(t, "file://"+filepath.Join(dir, "sink")), Spool: filepath.Join(dir, "spool"), Mask: masking.NewRequestMasker(eng).Value, MaxBodyBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{opts: Options{MaskBody: masking.NewRequestMasker(eng).Body}}
	r := benchResult("agent-1", "named~x")
	r.Request.Source = "198.51.100.4"
	r.Outcome = PolicyDenied
	r.Refusal = &Refusal{Reason: ReasonPolicyDenied, Message: "denied"}
	if err := rec.RecordDecision(ctx, e.record(r)); err != nil {
		t.Fatal(err)
	}
	anon := &Result{Outcome: Unauthenticated, RequestID: "anon-1",
		Refusal: &Refusal{Reason: ReasonUnauthenticated, Message: "no token", Metadata: map[string]string{"why": "no_token"}},
		Request: &Request{Method: "POST", Host: "compute.googleapis.com", Path: "/compute/v1/x?key=AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", Source: "203.0.113.5",
			Headers: map[string]string{"user-agent": "curl", "cookie": "a=b"}, Body: []byte(`{"secret":"x"}`)}}
	if err := rec.RecordDecision(ctx, e.record(anon)); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rd := recorder.NewReader(rec.Sink())
	s, err := rd.Load(ctx, "named~x", nil)
	if err != nil || s.Events[0].Decision.Source != "198.51.100.4" || s.Events[0].Decision.Reason != ReasonPolicyDenied {
		t.Fatalf("authenticated decision: %v %+v", err, s.Events[0].Decision)
	}
	s, err = rd.Load(ctx, recorder.UnauthenticatedSession, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Events[0].Decision
	if got.Source != "203.0.113.5" || got.Reason != "UNAUTHENTICATED: no_token" || got.Path != "/compute/v1/x" || got.Query != "" ||
		len(got.Headers) != 0 || got.BodyExcerpt != "" || got.Message != "" || got.Decision != "unauthenticated" {
		t.Fatalf("unauthenticated decision %+v", got)
	}
}
