package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartSentinel starts a master and one Sentinel monitoring it as "main",
// waits until the Sentinel reports the master, and returns the
// redis-sentinel:// URL (the approvals.store form) and the master.
func StartSentinel(tb testing.TB) (string, *Server) {
	tb.Helper()
	master := Start(tb)
	port := strings.TrimPrefix(master.Addr(), "127.0.0.1:")
	sent := StartWith(tb, Options{
		ConfigFile: fmt.Sprintf("sentinel monitor main 127.0.0.1 %s 1\nsentinel down-after-milliseconds main 5000\nprotected-mode no\n", port),
		Args:       []string{"--sentinel"},
	})
	c := redis.NewSentinelClient(&redis.Options{Addr: sent.Addr()})
	defer c.Close()
	deadline := time.Now().Add(startDeadline)
	for {
		addr, err := c.GetMasterAddrByName(context.Background(), "main").Result()
		if err == nil && len(addr) == 2 && addr[1] == port {
			return "redis-sentinel://" + sent.Addr() + "?master_name=main", master
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: the sentinel does not report the master after %s: %v %v", startDeadline, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartCluster starts a one-node Redis Cluster owning every slot, waits
// until it is ok, and returns its redis-cluster:// URL.
func StartCluster(tb testing.TB) string {
	tb.Helper()
	srv := StartWith(tb, Options{Args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"}})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	if err := c.ClusterAddSlotsRange(ctx, 0, 16383).Err(); err != nil {
		tb.Fatalf("redistest: CLUSTER ADDSLOTSRANGE: %v", err)
	}
	deadline := time.Now().Add(startDeadline)
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return "redis-cluster://" + srv.Addr()
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: cluster not ok after %s: %q %v", startDeadline, info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
