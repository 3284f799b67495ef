package approvals_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/approvals/storetest"
	"github.com/airlockhq/airlock/redistest"
)

func TestRedisSentinelStoreConformance(t *testing.T) {
	u, master := redistest.StartSentinel(t)
	storeConformance(t, u, master.Addr())
}

func TestRedisClusterStoreConformance(t *testing.T) {
	u := redistest.StartCluster(t)
	storeConformance(t, u, strings.TrimPrefix(u, "redis-cluster://"))
}

// storeConformance runs the store suite against the store at u (a
// redis-sentinel:// or redis-cluster:// URL), flushing the node at admin
// before each test; replicas open the URL again.
func storeConformance(t *testing.T, u, admin string) {
	c := redis.NewClient(&redis.Options{Addr: admin})
	defer c.Close()
	open := func(t *testing.T) approvals.Store {
		s, err := approvals.OpenStore(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T) approvals.Store {
			if err := c.FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			return open(t)
		},
		Replica: func(t *testing.T, _ approvals.Store) approvals.Store { return open(t) },
	})
}
