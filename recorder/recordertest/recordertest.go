// Package recordertest holds test helpers for the recorder: an in-process
// Cloud Storage emulator that can be taken down and brought back, and a
// conformance suite every recorder.Sink must pass.
package recordertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/airlockhq/airlock/recorder"
)

// GCS is an in-process fake-gcs-server behind an HTTP listener that can
// refuse every request with 503 to simulate an outage.
type GCS struct {
	// Server is the emulator.
	Server *fakestorage.Server
	// URL is the listener's base URL, usable as STORAGE_EMULATOR_HOST
	// without its scheme or as an endpoint with "/storage/v1/".
	URL string

	down     atomic.Bool
	latency  atomic.Int64
	requests atomic.Int64
	failed   atomic.Int64

	mu      sync.Mutex
	locked  map[string]time.Duration // bucket -> retention period
	refused atomic.Int64
}

// StartGCS starts the emulator with the given buckets and stops it when the
// test ends.
func StartGCS(tb testing.TB, buckets ...string) *GCS {
	tb.Helper()
	g := &GCS{}
	var inner atomic.Pointer[http.Handler]
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.requests.Add(1)
		if d := time.Duration(g.latency.Load()); d > 0 {
			time.Sleep(d)
		}
		if g.down.Load() {
			g.failed.Add(1)
			http.Error(w, `{"error":{"code":503,"message":"backend unavailable"}}`, http.StatusServiceUnavailable)
			return
		}
		if g.retention(w, r, *inner.Load()) {
			return
		}
		(*inner.Load()).ServeHTTP(w, r)
	}))
	tb.Cleanup(ts.Close)
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		NoListener: true,
		Scheme:     "http",
		PublicHost: strings.TrimPrefix(ts.URL, "http://"),
	})
	if err != nil {
		tb.Fatalf("recordertest: fake GCS: %v", err)
	}
	tb.Cleanup(srv.Stop)
	h := srv.HTTPHandler()
	inner.Store(&h)
	for _, b := range buckets {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	g.Server = srv
	g.URL = ts.URL
	return g
}

// Client returns a storage client talking to the emulator.
func (g *GCS) Client(tb testing.TB) *storage.Client {
	tb.Helper()
	c, err := storage.NewClient(context.Background(),
		option.WithEndpoint(g.URL+"/storage/v1/"),
		option.WithoutAuthentication(),
		storage.WithJSONReads())
	if err != nil {
		tb.Fatalf("recordertest: storage client: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// Lock gives bucket a locked retention policy of period, as Bucket Lock
// does: from then on the emulator refuses to delete or replace any object
// of the bucket (403, as Cloud Storage does) and reports the policy in the
// bucket's metadata. fake-gcs-server itself has no retention policies.
func (g *GCS) Lock(bucket string, period time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.locked == nil {
		g.locked = map[string]time.Duration{}
	}
	g.locked[bucket] = period
}

// Refused counts the requests refused by a retention policy.
func (g *GCS) Refused() int64 { return g.refused.Load() }

// retention serves what a locked retention policy changes and reports
// whether it answered the request.
func (g *GCS) retention(w http.ResponseWriter, r *http.Request, inner http.Handler) bool {
	g.mu.Lock()
	locked := g.locked
	g.mu.Unlock()
	if len(locked) == 0 {
		return false
	}
	path := strings.TrimPrefix(r.URL.Path, "/upload")
	rest, ok := strings.CutPrefix(path, "/storage/v1/b/")
	if !ok {
		return false
	}
	bucket, objPath, _ := strings.Cut(rest, "/")
	period, ok := locked[bucket]
	if !ok {
		return false
	}
	refuse := func(why string) bool {
		g.refused.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"error":{"code":403,"message":%q,"errors":[{"reason":"retentionPolicyNotMet","message":%q}]}}`, why, why)
		return true
	}
	switch {
	case r.Method == http.MethodGet && objPath == "":
		// The bucket's metadata, with its policy.
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, r)
		var attrs map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &attrs) != nil {
			return false
		}
		attrs["retentionPolicy"] = map[string]any{"retentionPeriod": fmt.Sprint(int64(period.Seconds())), "isLocked": true,
			"effectiveTime": time.Now().UTC().Format(time.RFC3339)}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(attrs)
		return true
	case r.Method == http.MethodDelete && strings.HasPrefix(objPath, "o/"):
		return refuse("Object '" + bucket + "/" + strings.TrimPrefix(objPath, "o/") + "' is subject to bucket's retention policy or object retention and cannot be deleted or overwritten")
	case r.Method == http.MethodDelete && objPath == "":
		return refuse("Bucket '" + bucket + "' has a locked retention policy and is not empty")
	case r.Method == http.MethodPost && objPath == "o" && strings.HasPrefix(r.URL.Path, "/upload/"):
		name := r.URL.Query().Get("name")
		if name == "" || r.URL.Query().Get("ifGenerationMatch") == "0" {
			return false
		}
		if _, err := g.Server.GetObject(bucket, name); err == nil {
			return refuse("Object '" + bucket + "/" + name + "' is subject to bucket's retention policy or object retention and cannot be deleted or overwritten")
		}
	}
	return false
}

// SetDown makes every request fail with 503 (true) or pass again (false).
func (g *GCS) SetDown(down bool) { g.down.Store(down) }

// SetLatency delays every request by d, as a distant GCS would.
func (g *GCS) SetLatency(d time.Duration) { g.latency.Store(int64(d)) }

// Requests counts the requests received, failed ones included.
func (g *GCS) Requests() int64 { return g.requests.Load() }

// Failed counts the requests refused while down.
func (g *GCS) Failed() int64 { return g.failed.Load() }

// Objects lists the object names under prefix in a bucket, straight from
// the emulator's backend.
func (g *GCS) Objects(tb testing.TB, bucket, prefix string) []string {
	tb.Helper()
	res, err := g.Server.ListObjectsWithOptionsPaginated(bucket, fakestorage.ListOptions{Prefix: prefix})
	objs := res.Objects
	if err != nil {
		tb.Fatalf("recordertest: list %s: %v", bucket, err)
	}
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.Name)
	}
	return out
}

// TestSink runs the conformance suite against sinks made by newSink; each
// call must return an empty sink.
func TestSink(t *testing.T, newSink func(t *testing.T) recorder.Sink) {
	ctx := context.Background()
	t.Run("PutIsWriteOnce", func(t *testing.T) {
		s := newSink(t)
		if err := s.Put(ctx, "2026/01/02/s1/a.json", []byte("one")); err != nil {
			t.Fatal(err)
		}
		// The same bytes again: a retried write succeeds.
		if err := s.Put(ctx, "2026/01/02/s1/a.json", []byte("one")); err != nil {
			t.Fatalf("repeating a write: %v", err)
		}
		// Other bytes never replace an object.
		if err := s.Put(ctx, "2026/01/02/s1/a.json", []byte("two")); !errors.Is(err, recorder.ErrExists) {
			t.Fatalf("overwriting = %v, want ErrExists", err)
		}
		got, err := s.Get(ctx, "2026/01/02/s1/a.json")
		if err != nil || !bytes.Equal(got, []byte("one")) {
			t.Fatalf("Get = %q, %v; want the first content", got, err)
		}
		big := bytes.Repeat([]byte("x"), 3<<20)
		if err := s.Put(ctx, "2026/01/02/s1/big.gz", big); err != nil {
			t.Fatal(err)
		}
		got, err = s.Get(ctx, "2026/01/02/s1/big.gz")
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("Get big: %d bytes, %v; want %d bytes", len(got), err, len(big))
		}
	})
	t.Run("GetMissing", func(t *testing.T) {
		s := newSink(t)
		_, err := s.Get(ctx, "2026/01/02/none/x.json")
		if !errors.Is(err, recorder.ErrNotExist) {
			t.Fatalf("Get missing = %v, want ErrNotExist", err)
		}
	})
	t.Run("ListDelimited", func(t *testing.T) {
		s := newSink(t)
		for _, n := range []string{"2026/01/02/s1/a", "2026/01/02/s1/b", "2026/01/02/s2/a", "2026/01/03/s3/a", "2025/12/31/s4/a"} {
			if err := s.Put(ctx, n, []byte(n)); err != nil {
				t.Fatal(err)
			}
		}
		objs, dirs, err := s.List(ctx, "", "/")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(objs, dirs) != "[] [2025/ 2026/]" {
			t.Fatalf("List root = %v %v", objs, dirs)
		}
		_, dirs, err = s.List(ctx, "2026/01/02/", "/")
		if err != nil || fmt.Sprint(dirs) != "[2026/01/02/s1/ 2026/01/02/s2/]" {
			t.Fatalf("List day = %v, %v", dirs, err)
		}
		objs, _, err = s.List(ctx, "2026/01/02/s1/", "")
		if err != nil || fmt.Sprint(objs) != "[2026/01/02/s1/a 2026/01/02/s1/b]" {
			t.Fatalf("List session = %v, %v", objs, err)
		}
		objs, _, err = s.List(ctx, "2026/", "")
		if err != nil || len(objs) != 4 {
			t.Fatalf("List recursive = %v, %v; want 4 objects", objs, err)
		}
		objs, _, err = s.List(ctx, "2024/", "")
		if err != nil || len(objs) != 0 {
			t.Fatalf("List empty prefix = %v, %v", objs, err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		s := newSink(t)
		if err := s.Put(ctx, "2026/01/02/s1/a", []byte("a")); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "2026/01/02/s1/a"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "2026/01/02/s1/a"); err != nil {
			t.Fatalf("deleting a missing object: %v", err)
		}
		if _, err := s.Get(ctx, "2026/01/02/s1/a"); !errors.Is(err, recorder.ErrNotExist) {
			t.Fatalf("Get after Delete = %v", err)
		}
		objs, dirs, err := s.List(ctx, "", "/")
		if err != nil || len(objs)+len(dirs) != 0 {
			t.Fatalf("List after Delete = %v %v %v", objs, dirs, err)
		}
	})
}

// OpenSink opens a sink URL for a test (file://DIR, or gs://BUCKET/PREFIX
// against the emulator STORAGE_EMULATOR_HOST names).
func OpenSink(tb testing.TB, url string) recorder.Sink {
	tb.Helper()
	s, err := recorder.OpenSink(context.Background(), url, recorder.SinkOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
