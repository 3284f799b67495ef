package approvals

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/redistest"
)

func testFP(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:])
}

// roundTrips counts the commands and pipelines a client sends.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// TestGateIsOneRoundTrip: a claim, a creation and a pending lookup each cost
// one round trip (EVALSHA) once the script is loaded.
func TestGateIsOneRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	store, err := NewRedisStore(context.Background(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rt := &roundTrips{}
	store.rdb.AddHook(rt)
	ctx := context.Background()
	now := time.Now()
	fresh := func(fp string) Approval {
		return Approval{ID: NewID(), Request: Request{Fingerprint: fp, Grant: GrantOnce, TTL: time.Minute}, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	}
	fp1 := testFP("1")
	fp2 := testFP("2")
	first, err := store.Gate(ctx, fp1, fresh(fp1), "c", 0, now) // loads the script
	if err != nil {
		t.Fatal(err)
	}
	a := first.Approval
	a.State, a.DecidedAt, a.GrantExpiresAt = StateApproved, now, now.Add(time.Minute)
	if _, err := store.Update(ctx, a, now); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name, fp string
		check    func(GateResult) bool
	}{
		{"claim", fp1, func(r GateResult) bool { return r.Granted }},
		{"create", fp2, func(r GateResult) bool { return r.Created }},
		{"pending lookup", fp2, func(r GateResult) bool { return !r.Created && !r.Granted }},
	} {
		before := rt.n.Load()
		r, err := store.Gate(ctx, step.fp, fresh(step.fp), "c2", 0, now)
		if err != nil || !step.check(r) {
			t.Fatalf("%s: %+v, %v", step.name, r, err)
		}
		if got := rt.n.Load() - before; got != 1 {
			t.Errorf("%s: %d round trips, want 1", step.name, got)
		}
	}
}

// TestRedisSlowIsBoundedByDeadline: a Redis that accepts connections but
// never answers costs no more than the caller's deadline.
func TestRedisSlowIsBoundedByDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold the connection open, answer nothing
		}
	}()
	store, err := NewRedisStore(context.Background(), "redis://"+l.Addr().String()+"/0")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	fp := testFP("slow")
	_, err = store.Gate(ctx, fp, Approval{ID: NewID(), Request: Request{Fingerprint: fp, Grant: GrantOnce}, ExpiresAt: start.Add(time.Minute)}, "c", 0, start)
	if err == nil {
		t.Fatal("Gate against a silent Redis succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Gate against a silent Redis took %v; the deadline was 300ms", d)
	}
}
