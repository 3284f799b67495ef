package approvals_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/redistest"
)

func benchGate(b *testing.B, store approvals.Store) {
	ctx := context.Background()
	s := newService(b, store, approvals.Options{Logger: quietLogger()})
	b.Run("pending", func(b *testing.B) {
		r := request("bench-pending")
		if _, err := s.Gate(ctx, r, 0); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if o, err := s.Gate(ctx, r, 0); err != nil || o.Approval.State != approvals.StatePending {
				b.Fatal(o, err)
			}
		}
	})
	b.Run("claim-window", func(b *testing.B) {
		r := request("bench-window", func(r *approvals.Request) { r.Grant = approvals.GrantWindow })
		o, err := s.Gate(ctx, r, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Vote(ctx, o.Approval.ID, sre1, true, "bench"); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if o, err := s.Gate(ctx, r, 0); err != nil || !o.Granted {
				b.Fatal(o, err)
			}
		}
	})
	b.Run("create", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if o, err := s.Gate(ctx, request(fmt.Sprint("bench-new-", i)), 0); err != nil || o.Approval.State != approvals.StatePending {
				b.Fatal(o, err)
			}
		}
	})
	b.Run("pending-parallel", func(b *testing.B) {
		r := request("bench-pending")
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Gate(ctx, r, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkGateRedis measures Gate against a real redis-server: each case
// is one EVALSHA round trip.
func BenchmarkGateRedis(b *testing.B) {
	srv := redistest.Start(b)
	store, err := approvals.NewRedisStore(context.Background(), srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	benchGate(b, store)
}

// BenchmarkGateMemory measures Gate against the memory store.
func BenchmarkGateMemory(b *testing.B) { benchGate(b, approvals.NewMemoryStore()) }
