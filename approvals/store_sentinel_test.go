package approvals_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/approvals/storetest"
	"github.com/airlockhq/airlock/redistest"
)

// startSentinel starts a master and one Sentinel watching it as "main";
// it returns the redis-sentinel:// URL and the master.
func startSentinel(t *testing.T) (string, *redistest.Server) {
	t.Helper()
	master := redistest.Start(t)
	port := strings.TrimPrefix(master.Addr(), "127.0.0.1:")
	sent := redistest.StartWith(t, redistest.Options{
		ConfigFile: fmt.Sprintf("sentinel monitor main 127.0.0.1 %s 1\nsentinel down-after-milliseconds main 5000\nprotected-mode no\n", port),
		Args:       []string{"--sentinel"},
	})
	c := redis.NewSentinelClient(&redis.Options{Addr: sent.Addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		addr, err := c.GetMasterAddrByName(context.Background(), "main").Result()
		if err == nil && len(addr) == 2 && addr[1] == port {
			return "redis-sentinel://" + sent.Addr() + "?master_name=main", master
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel does not report the master after 10s: %v %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisSentinelStoreConformance(t *testing.T) {
	u, master := startSentinel(t)
	admin := redis.NewClient(&redis.Options{Addr: master.Addr()})
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
