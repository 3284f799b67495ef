package console_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/console"
	"github.com/airlockhq/airlock/redistest"
)

// testStore is the conformance suite every console Store passes.
func testStore(t *testing.T, s console.Store) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, console.ErrNotFound) {
		t.Fatalf("Get(missing) = %v", err)
	}
	if err := s.Put(ctx, "k", []byte("v1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Get(ctx, "k"); err != nil || string(b) != "v1" {
		t.Fatalf("Get = %q %v", b, err)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, console.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	// Take hands a value to exactly one of many concurrent callers: a
	// sign-in in progress completes once, on any replica.
	if err := s.Put(ctx, "once", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Go(func() {
			if b, err := s.Take(ctx, "once"); err == nil && string(b) == "x" {
				wins.Add(1)
			} else if !errors.Is(err, console.ErrNotFound) {
				t.Errorf("Take = %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d callers took the value, want 1", wins.Load())
	}
	// Values end with their TTL.
	if err := s.Put(ctx, "short", []byte("x"), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := s.Get(ctx, "short"); errors.Is(err, console.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a value outlived its TTL")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMemoryStore(t *testing.T) {
	testStore(t, console.NewMemoryStore(0))
	// Bounded: the oldest-expiring value gives way.
	s := console.NewMemoryStore(2)
	ctx := context.Background()
	_ = s.Put(ctx, "a", []byte("a"), time.Minute)
	_ = s.Put(ctx, "b", []byte("b"), time.Hour)
	_ = s.Put(ctx, "c", []byte("c"), time.Hour)
	if _, err := s.Get(ctx, "a"); !errors.Is(err, console.ErrNotFound) {
		t.Error("the store grew past its bound")
	}
	if _, err := s.Get(ctx, "c"); err != nil {
		t.Error("the newest value was dropped")
	}
}

func TestRedisStore(t *testing.T) {
	srv := redistest.Start(t)
	rdb, err := approvals.NewRedisClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	testStore(t, console.NewRedisStore(rdb))
	// Another replica (another client) sees the same sign-ins.
	other, err := approvals.NewRedisClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	ctx := context.Background()
	if err := console.NewRedisStore(rdb).Put(ctx, "session:x", []byte("who"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if b, err := console.NewRedisStore(other).Get(ctx, "session:x"); err != nil || string(b) != "who" {
		t.Fatalf("the other replica reads %q %v", b, err)
	}
	srv.Stop()
	if _, err := console.NewRedisStore(rdb).Get(ctx, "session:x"); err == nil || errors.Is(err, console.ErrNotFound) {
		t.Fatalf("a stopped Redis answers %v, want an error (not \"not found\")", err)
	}
}

// TestSignInsSurviveReplicasAndFailClosed: with Redis, a sign-in made on
// one replica works on another; with Redis down, pages and API calls made
// with the cookie answer 503, never as someone else or signed out.
func TestSignInsSurviveReplicasAndFailClosed(t *testing.T) {
	srv := redistest.Start(t)
	rdb, err := approvals.NewRedisClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	f := newFixture(t, func(o *console.Options) { o.Store = console.NewRedisStore(rdb) })
	b := newBrowser(t)
	f.signIn(b, "/", "sre")

	// A second replica: another console over the same Redis and issuer.
	other, err := approvals.NewRedisClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	g, err := console.New(console.Options{BaseURL: f.base, Issuer: f.iss.URL(), ClientID: clientID, IDTokens: fakeVerifier{}, Bearer: fakeVerifier{},
		Approvals: f.svc, Store: console.NewRedisStore(other), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.Register(mux)
	req := httptest.NewRequest("GET", "/auth/me", nil)
	req.AddCookie(f.sessionCookie(b))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"subject": "sre-1"`) {
		t.Fatalf("the other replica does not know the sign-in: %d %s", rec.Code, rec.Body)
	}

	srv.Stop()
	if resp, body := b.get(f.base+"/v1/approvals", "Sec-Fetch-Site", "same-origin"); resp.StatusCode != 503 {
		t.Errorf("API with Redis down = %d %s", resp.StatusCode, body)
	}
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if resp, _ := b.get(f.base + "/"); resp.StatusCode != 503 {
		t.Errorf("page with Redis down = %d", resp.StatusCode)
	}
}
