package approvals_test

import (
	"context"
	"testing"
	"time"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/redistest"
)

// TestSessionTrackingSharesTheApprovalStore: the session tracker runs on
// the client NewRedisClient builds from approvals.store, in every form:
// two replicas (two clients) agree on a subject's session.
func TestSessionTrackingSharesTheApprovalStore(t *testing.T) {
	setups := map[string]func(t *testing.T) string{
		"standalone": func(t *testing.T) string { return redistest.Start(t).URL() },
		"sentinel":   func(t *testing.T) string { u, _ := redistest.StartSentinel(t); return u },
		"cluster":    func(t *testing.T) string { return redistest.StartCluster(t) },
	}
	for name, start := range setups {
		t.Run(name, func(t *testing.T) {
			u := start(t)
			var trackers []recorder.Tracker
			for range 2 {
				c, err := approvals.NewRedisClient(u)
				if err != nil {
					t.Fatal(err)
				}
				// The store and the tracker share the client; closing the
				// store closes it.
				store := approvals.NewRedisStoreWithClient(c)
				t.Cleanup(func() { store.Close() })
				trackers = append(trackers, recorder.NewRedisTracker(c))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a, err := trackers[0].Current(ctx, "alice", func() string { return "s-first" }, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			b, err := trackers[1].Current(ctx, "alice", func() string { return "s-second" }, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if a != "s-first" || b != "s-first" {
				t.Fatalf("replicas disagree over %s: %q and %q", name, a, b)
			}
			c, err := trackers[1].Current(ctx, "bob", func() string { return "s-bob" }, time.Hour)
			if err != nil || c != "s-bob" {
				t.Fatalf("another subject: %q %v", c, err)
			}
		})
	}
	if _, err := approvals.NewRedisClient("mysql://x"); err == nil {
		t.Error("NewRedisClient accepted a non-Redis URL")
	}
}
