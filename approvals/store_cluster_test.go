package approvals_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/approvals/storetest"
	"github.com/airlockhq/airlock/redistest"
)

// startCluster starts a one-node Redis Cluster owning every slot.
func startCluster(t *testing.T) string {
	t.Helper()
	srv := redistest.StartWith(t, redistest.Options{Args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"}})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	if err := c.ClusterAddSlotsRange(ctx, 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return "redis-cluster://" + srv.Addr()
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok after 10s: %q %v", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisClusterStoreConformance(t *testing.T) {
	u := startCluster(t)
	admin := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(u, "redis-cluster://")})
	defer admin.Close()
	open := func(t *testing.T) approvals.Store {
		s, err := approvals.OpenStore(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T) approvals.Store {
			if err := admin.FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			return open(t)
		},
		Replica: func(t *testing.T, _ approvals.Store) approvals.Store { return open(t) },
	})
}
