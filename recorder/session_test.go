package recorder_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/redistest"
)

func TestNamedSessions(t *testing.T) {
	tests := []struct {
		name, subject, header string
		wantErr               bool
	}{
		{"plain", "alice", "fix-bug-123", false},
		{"dots and underscores", "alice", "a.b_c", false},
		{"64 chars", "alice", strings.Repeat("a", 64), false},
		{"65 chars", "alice", strings.Repeat("a", 65), true},
		{"slash", "alice", "../bob", true},
		{"space", "alice", "a b", true},
		{"tilde", "alice", "x~123", true},
		{"dot only", "alice", "..", true},
		{"unicode", "alice", "séance", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := recorder.NamedSession(tt.subject, tt.header)
			if tt.wantErr {
				if !errors.Is(err, recorder.ErrInvalidSession) {
					t.Fatalf("NamedSession(%q) = %q, %v; want ErrInvalidSession", tt.header, id, err)
				}
				return
			}
			if err != nil || !strings.HasPrefix(id, tt.header+"~") || !handoff.ValidSessionID(id) {
				t.Fatalf("NamedSession(%q) = %q, %v", tt.header, id, err)
			}
		})
	}
	a, _ := recorder.NamedSession("alice", "shared")
	b, _ := recorder.NamedSession("bob", "shared")
	if a == b {
		t.Fatalf("two subjects naming the same session share %q", a)
	}
}

// trackerSuite checks idle-gap sessions on a tracker.
func trackerSuite(t *testing.T, tr recorder.Tracker, advance func(time.Duration)) {
	ctx := context.Background()
	gap := 200 * time.Millisecond
	s1, err := tr.Current(ctx, "alice", fixed("s-one"), gap)
	if err != nil || s1 != "s-one" {
		t.Fatalf("first = %q, %v", s1, err)
	}
	advance(gap / 2)
	if s, _ := tr.Current(ctx, "alice", fixed("s-two"), gap); s != "s-one" {
		t.Fatalf("within the gap = %q, want s-one", s)
	}
	if s, _ := tr.Current(ctx, "bob", fixed("s-bob"), gap); s != "s-bob" {
		t.Fatalf("another subject = %q", s)
	}
	advance(gap + 50*time.Millisecond)
	if s, _ := tr.Current(ctx, "alice", fixed("s-three"), gap); s != "s-three" {
		t.Fatalf("after the gap = %q, want s-three", s)
	}
	// Concurrent first requests agree on one session.
	var wg sync.WaitGroup
	got := make([]string, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = tr.Current(ctx, "carol", fixed("s-carol-"+string(rune('a'+i))), gap)
		}()
	}
	wg.Wait()
	for _, s := range got {
		if s != got[0] {
			t.Fatalf("concurrent first requests got %v", got)
		}
	}
}

func TestMemoryTracker(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	tr := recorder.NewMemoryTracker(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	trackerSuite(t, tr, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() })
	// A live session costs no new id.
	tr.Current(context.Background(), "erin", fixed("s-erin"), time.Minute)
	if s, _ := tr.Current(context.Background(), "erin", func() string { t.Error("new id made for a live session"); return "x" }, time.Minute); s != "s-erin" {
		t.Fatalf("live session = %q", s)
	}
}

func TestRedisTrackerAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := redis.NewClient(opt), redis.NewClient(opt)
	t.Cleanup(func() { c1.Close(); c2.Close() })
	// Redis keeps the real clock: advance by waiting past the TTL.
	trackerSuite(t, recorder.NewRedisTracker(c1), func(d time.Duration) { time.Sleep(d) })
	ctx := context.Background()
	a, _ := recorder.NewRedisTracker(c1).Current(ctx, "dave", fixed("s-r1"), time.Minute)
	b, _ := recorder.NewRedisTracker(c2).Current(ctx, "dave", fixed("s-r2"), time.Minute)
	if a != "s-r1" || b != "s-r1" {
		t.Fatalf("replicas disagree: %q %q", a, b)
	}
	srv.Stop()
	if _, err := recorder.NewRedisTracker(c1).Current(ctx, "dave", fixed("s-x"), time.Minute); err == nil {
		t.Fatal("a stopped Redis gave a session")
	}
}

func TestRecorderSession(t *testing.T) {
	r := newRecorder(t, recorder.Options{IdleGap: time.Hour})
	defer closeRecorder(t, r)
	ctx := context.Background()
	s1, err := r.Session(ctx, "alice", "")
	if err != nil || !strings.HasPrefix(s1, "s-") || !handoff.ValidSessionID(s1) {
		t.Fatalf("Session = %q, %v", s1, err)
	}
	if s2, _ := r.Session(ctx, "alice", ""); s2 != s1 {
		t.Fatalf("second Session = %q, want %q", s2, s1)
	}
	if _, err := r.Session(ctx, "alice", "bad/name"); !errors.Is(err, recorder.ErrInvalidSession) {
		t.Fatalf("bad header: %v", err)
	}
	if err := r.Decision(ctx, recorder.DecisionEvent{SessionID: "../../etc", Decision: "deny"}); err == nil {
		t.Fatal("recorded into an invalid session id")
	}
}

// fixed is a fresh-id function that always gives id.
func fixed(id string) func() string { return func() string { return id } }
