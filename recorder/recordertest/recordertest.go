// Package recordertest holds test helpers for the recorder: an in-process
// Cloud Storage emulator that can be taken down and brought back, and a
// conformance suite every recorder.Sink must pass.
package recordertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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
	objs, _, err := g.Server.ListObjectsWithOptions(bucket, fakestorage.ListOptions{Prefix: prefix})
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
