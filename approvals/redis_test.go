package approvals_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/redistest"
)

// TestHoldAfterRedisRestart: the pub/sub feed reconnects by itself after
// Redis restarts, so holds are woken again without restarting airlock.
func TestHoldAfterRedisRestart(t *testing.T) {
	srv := redistest.StartPersistent(t)
	a := newService(t, newRedisStore(t, srv.URL()), approvals.Options{})
	b := newService(t, newRedisStore(t, srv.URL()), approvals.Options{})
	waitSubscribers(t, srv.Addr(), 2)
	srv.Kill()
	srv.Restart()
	waitSubscribers(t, srv.Addr(), 2) // both replicas resubscribed by themselves
	id := gate(t, a, request("restart")).Approval.ID
	holdThenApprove(t, a, b, "restart", id, 20*time.Second)
}

// waitSubscribers polls until n clients listen on the decision channel.
func waitSubscribers(t *testing.T, addr string, n int64) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := c.PubSubNumSub(context.Background(), "airlock:{approvals}:decided").Result()
		if err == nil && m["airlock:{approvals}:decided"] >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers on the decision channel after 10s (err %v), want %d", m["airlock:{approvals}:decided"], err, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
