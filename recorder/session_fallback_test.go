package recorder_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
	"github.com/airlockhq/airlock/redistest"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingTracker counts the calls that reach the tracker it wraps.
type countingTracker struct {
	recorder.Tracker
	calls atomic.Int64
}

func (c *countingTracker) Current(ctx context.Context, subject string, fresh func() string, gap time.Duration) (string, error) {
	c.calls.Add(1)
	return c.Tracker.Current(ctx, subject, fresh, gap)
}

func freshIDs(prefix string) func() string {
	var n atomic.Int64
	return func() string { return prefix + "-" + string(rune('a'+n.Add(1))) }
}

// TestFallbackTrackerSurvivesRedisOutage: with the real redis-server killed,
// sessions are tracked on the replica and reported local; Redis is left
// alone during the backoff, retried after it, and used again once back,
// without a restart.
func TestFallbackTrackerSurvivesRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	newClient := func() redis.UniversalClient {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { c.Close() })
		return c
	}
	clock := &fakeClock{t: time.Now()}
	shared := &countingTracker{Tracker: recorder.NewRedisTracker(newClient())}
	ft := recorder.NewFallbackTracker(shared, recorder.FallbackOptions{Now: clock.Now, RetryMin: time.Second, RetryMax: 4 * time.Second})
	other := recorder.NewFallbackTracker(recorder.NewRedisTracker(newClient()), recorder.FallbackOptions{Now: clock.Now})
	ctx := context.Background()
	const gap = time.Hour

	id, err := ft.Current(ctx, "alice", freshIDs("s-shared"), gap)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := other.Current(ctx, "alice", freshIDs("s-other"), gap); got != id {
		t.Fatalf("two replicas disagree while Redis is up: %s and %s", id, got)
	}
	if ft.Local(id) || ft.Status().Down {
		t.Fatal("a shared session is reported local")
	}

	srv.Kill()
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	local, err := ft.Current(cctx, "alice", freshIDs("s-local"), gap)
	cancel()
	if err != nil || local == "" || local == id {
		t.Fatalf("with Redis down: %q, %v (want a new local session)", local, err)
	}
	if !ft.Local(local) || !ft.Status().Down || ft.Status().Err == nil {
		t.Fatalf("the local session is not reported: local %v, status %+v", ft.Local(local), ft.Status())
	}
	// Within the backoff Redis is not tried, and the local session holds.
	calls := shared.calls.Load()
	for range 5 {
		if got, err := ft.Current(ctx, "alice", freshIDs("s-x"), gap); err != nil || got != local {
			t.Fatalf("during the backoff: %q, %v (want %s)", got, err, local)
		}
	}
	if shared.calls.Load() != calls {
		t.Fatalf("Redis was tried %d times during the backoff", shared.calls.Load()-calls)
	}
	// After the backoff one call tries Redis, fails, and the backoff doubles.
	clock.Advance(time.Second)
	if _, err := ft.Current(ctx, "bob", freshIDs("s-bob"), gap); err != nil {
		t.Fatal(err)
	}
	if shared.calls.Load() != calls+1 {
		t.Fatalf("after the backoff Redis was tried %d times, want 1", shared.calls.Load()-calls)
	}
	clock.Advance(time.Second)
	_, _ = ft.Current(ctx, "bob", freshIDs("s-bob"), gap) // within the doubled backoff
	if shared.calls.Load() != calls+1 {
		t.Fatal("Redis was tried within the doubled backoff")
	}

	srv.Restart()
	clock.Advance(time.Second)
	back, err := ft.Current(ctx, "alice", freshIDs("s-back"), gap)
	if err != nil {
		t.Fatal(err)
	}
	if ft.Status().Down || ft.Local(back) {
		t.Fatalf("Redis is back but tracking stays local: %+v", ft.Status())
	}
	if got, _ := other.Current(ctx, "alice", freshIDs("s-other2"), gap); got != back {
		t.Fatalf("replicas disagree after recovery: %s and %s", back, got)
	}
	if !ft.Local(local) {
		t.Error("the session tracked during the outage is no longer reported local (its late events must stay marked)")
	}
}

// flakyTracker fails while down is set.
type flakyTracker struct {
	down atomic.Bool
	mem  *recorder.MemoryTracker
}

func (f *flakyTracker) Current(ctx context.Context, subject string, fresh func() string, gap time.Duration) (string, error) {
	if f.down.Load() {
		return "", errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	}
	return f.mem.Current(ctx, subject, fresh, gap)
}

// TestLocalSessionEventsAreMarked: the events of a session tracked while the
// shared store failed carry local_session, and the session still verifies;
// events of shared sessions do not.
func TestLocalSessionEventsAreMarked(t *testing.T) {
	shared := &flakyTracker{mem: recorder.NewMemoryTracker(nil)}
	ft := recorder.NewFallbackTracker(shared, recorder.FallbackOptions{RetryMin: time.Hour})
	sinkDir := filepath.Join(t.TempDir(), "sink")
	rec, err := recorder.New(context.Background(), recorder.Options{
		Sink: recordertest.OpenSink(t, "file://"+sinkDir), Spool: filepath.Join(t.TempDir(), "spool"), Tracker: ft,
		FlushInterval: 20 * time.Millisecond, ChunkMaxAge: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	decide := func(subject string) string {
		t.Helper()
		sid, err := rec.Session(ctx, subject, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.Decision(ctx, recorder.DecisionEvent{RequestID: subject + "-1", SessionID: sid, Subject: subject, Method: "GET", Host: "compute.googleapis.com", Path: "/x", Decision: recorder.DecisionAllowed}); err != nil {
			t.Fatal(err)
		}
		if err := rec.Request(ctx, sid, subject+"-1", recorder.RequestEvent{Subject: subject, Method: "GET", Host: "compute.googleapis.com", Path: "/x"}); err != nil {
			t.Fatal(err)
		}
		return sid
	}
	sharedSID := decide("alice")
	shared.down.Store(true)
	localSID := decide("bob")
	// A decision without a session resolves it itself, locally too.
	if err := rec.Decision(ctx, recorder.DecisionEvent{RequestID: "carol-1", Subject: "carol", Method: "GET", Host: "h", Path: "/", Decision: recorder.DecisionAllowed}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := rec.Close(cctx); err != nil {
		t.Fatal(err)
	}

	sink, err := recorder.OpenSink(ctx, "file://"+sinkDir, recorder.SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rd := recorder.NewReader(sink)
	list, err := rd.List(ctx, recorder.Filter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("%d sessions, want 3", len(list))
	}
	for _, s := range list {
		res, err := rd.Verify(ctx, s.ID, recorder.VerifyOptions{})
		if err != nil || !res.OK() {
			t.Fatalf("session %s does not verify: %v %v", s.ID, err, res)
		}
		sess, err := rd.Load(ctx, s.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantLocal := s.ID != sharedSID
		for _, e := range sess.Events {
			if e.Kind == recorder.KindClose {
				continue
			}
			if e.LocalSession != wantLocal {
				t.Errorf("session %s (shared %s, local %s): %s event local_session = %v", s.ID, sharedSID, localSID, e.Kind, e.LocalSession)
			}
		}
	}
}

// gateTracker fails every call, once n calls are in flight together.
type gateTracker struct {
	n       int
	arrived chan struct{}
	release chan struct{}
	calls   atomic.Int64
}

func (g *gateTracker) Current(ctx context.Context, subject string, fresh func() string, gap time.Duration) (string, error) {
	if g.calls.Add(1) <= int64(g.n) {
		g.arrived <- struct{}{}
		<-g.release
	}
	return "", errors.New("connection refused")
}

// TestFallbackBackoffIgnoresConcurrentFailures: the requests in flight when
// the shared tracker goes down all fail, but only failed probes lengthen the
// backoff: the shared tracker is tried again after RetryMin.
func TestFallbackBackoffIgnoresConcurrentFailures(t *testing.T) {
	const n = 20
	g := &gateTracker{n: n, arrived: make(chan struct{}), release: make(chan struct{})}
	clock := &fakeClock{t: time.Now()}
	ft := recorder.NewFallbackTracker(g, recorder.FallbackOptions{Now: clock.Now, RetryMin: time.Second, RetryMax: time.Hour})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := ft.Current(context.Background(), "s"+string(rune('a'+i)), freshIDs("l"), time.Hour); err != nil {
				t.Error(err)
			}
		})
	}
	for range n {
		<-g.arrived
	}
	close(g.release)
	wg.Wait()
	clock.Advance(time.Second)
	before := g.calls.Load()
	if _, err := ft.Current(context.Background(), "z", freshIDs("l"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if g.calls.Load() != before+1 {
		t.Fatalf("no probe after RetryMin: %d concurrent failures lengthened the backoff", n)
	}
}
