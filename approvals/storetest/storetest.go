// Package storetest is the conformance suite every approvals.Store must pass.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/approvals"
)

// Factory opens stores for the suite.
type Factory struct {
	// New returns an empty store; the suite closes it.
	New func(t *testing.T) approvals.Store
	// Replica returns another handle on the data of s, as a second replica
	// would have; nil means s is shared as is (a single-replica store).
	Replica func(t *testing.T, s approvals.Store) approvals.Store
}

// Fresh builds a pending approval for fp created at now, as the Service would.
func Fresh(fp string, now time.Time, grant string, ttl time.Duration) approvals.Approval {
	return approvals.Approval{
		ID: approvals.NewID(), State: approvals.StatePending,
		Request: approvals.Request{
			Fingerprint: fp, Subject: "agent-1", Email: "bot@example.com", Operation: "compute.instances.delete",
			Method: "DELETE", URL: "https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances/i",
			Rule: "prod-writes", Approvers: []string{"group:sre"}, MinApprovals: 1, Grant: grant, TTL: ttl,
		},
		CreatedAt: now.UTC(), ExpiresAt: now.Add(ttl).UTC(),
	}
}

// FP returns a distinct fingerprint for name.
func FP(name string) string {
	return approvals.Fingerprint(name, "POST", "example.com", "/"+name, nil, nil)
}

func decide(t *testing.T, s approvals.Store, a approvals.Approval, st approvals.State, now time.Time) approvals.Approval {
	t.Helper()
	a.Votes = append(a.Votes, approvals.Vote{Approver: "sre-1", Email: "sre@example.com", Approve: st == approvals.StateApproved, Reason: "because", At: now})
	a.State, a.DecidedAt, a.ExpiresAt = st, now, now.Add(a.Request.TTL)
	if st == approvals.StateApproved {
		a.GrantExpiresAt = a.ExpiresAt
	}
	u, err := s.Update(context.Background(), a, now)
	if err != nil {
		t.Fatalf("Update(%s): %v", st, err)
	}
	return u
}

func mustGate(t *testing.T, s approvals.Store, fp, grant, claim string, now time.Time) approvals.GateResult {
	t.Helper()
	r, err := s.Gate(context.Background(), fp, Fresh(fp, now, grant, time.Minute), claim, now)
	if err != nil {
		t.Fatalf("Gate: %v", err)
	}
	return r
}

// Run runs the suite.
func Run(t *testing.T, f Factory) {
	open := func(t *testing.T) (approvals.Store, approvals.Store) {
		s := f.New(t)
		t.Cleanup(func() { _ = s.Close() })
		if f.Replica == nil {
			return s, s
		}
		r := f.Replica(t, s)
		t.Cleanup(func() { _ = r.Close() })
		return s, r
	}
	ctx := context.Background()

	t.Run("PendingIsStableAcrossReplicas", func(t *testing.T) {
		s, r := open(t)
		now := time.Now()
		first := mustGate(t, s, FP("a"), approvals.GrantOnce, "c1", now)
		if !first.Created || first.Granted || first.Approval.State != approvals.StatePending {
			t.Fatalf("first gate = %+v, want created pending", first)
		}
		again := mustGate(t, r, FP("a"), approvals.GrantOnce, "c2", now.Add(time.Second))
		if again.Created || again.Granted || again.Approval.ID != first.Approval.ID {
			t.Fatalf("second gate = created %v granted %v id %s, want the pending %s", again.Created, again.Granted, again.Approval.ID, first.Approval.ID)
		}
		other := mustGate(t, r, FP("b"), approvals.GrantOnce, "c3", now)
		if !other.Created || other.Approval.ID == first.Approval.ID {
			t.Fatalf("other fingerprint got id %s (created %v), want a new approval", other.Approval.ID, other.Created)
		}
		got, err := r.Get(ctx, first.Approval.ID)
		if err != nil || got.Request.Operation != "compute.instances.delete" || got.Request.TTL != time.Minute || got.Version != 1 {
			t.Fatalf("Get = %+v, %v", got, err)
		}
	})

	t.Run("GetUnknown", func(t *testing.T) {
		s, _ := open(t)
		if _, err := s.Get(ctx, approvals.NewID()); !errors.Is(err, approvals.ErrNotFound) {
			t.Fatalf("Get(unknown) err = %v, want ErrNotFound", err)
		}
	})

	t.Run("OnceGrantClaimedOnce", func(t *testing.T) {
		s, r := open(t)
		now := time.Now()
		p := mustGate(t, s, FP("once"), approvals.GrantOnce, "c0", now)
		decide(t, r, p.Approval, approvals.StateApproved, now)
		g := mustGate(t, r, FP("once"), approvals.GrantOnce, "claim-1", now.Add(time.Second))
		if !g.Granted || g.Approval.ID != p.Approval.ID || g.Approval.Uses != 1 || g.Approval.ClaimedAt.IsZero() {
			t.Fatalf("claim = %+v, want granted with uses 1", g)
		}
		retry := mustGate(t, s, FP("once"), approvals.GrantOnce, "claim-1", now.Add(2*time.Second))
		if !retry.Granted || retry.Approval.ID != p.Approval.ID {
			t.Fatalf("retry with the same claim id = %+v, want granted again", retry)
		}
		next := mustGate(t, s, FP("once"), approvals.GrantOnce, "claim-2", now.Add(2*time.Second))
		if next.Granted || !next.Created || next.Approval.ID == p.Approval.ID {
			t.Fatalf("second claim = %+v, want a new pending approval", next)
		}
	})

	t.Run("WindowGrantUntilTTL", func(t *testing.T) {
		s, r := open(t)
		now := time.Now()
		p := mustGate(t, s, FP("win"), approvals.GrantWindow, "c0", now)
		d := decide(t, s, p.Approval, approvals.StateApproved, now)
		for i := 1; i <= 3; i++ {
			g := mustGate(t, r, FP("win"), approvals.GrantWindow, fmt.Sprint("c", i), now.Add(time.Duration(i)*time.Second))
			if !g.Granted || g.Approval.Uses != i {
				t.Fatalf("use %d = granted %v uses %d", i, g.Granted, g.Approval.Uses)
			}
		}
		late := mustGate(t, r, FP("win"), approvals.GrantWindow, "late", d.GrantExpiresAt.Add(time.Millisecond))
		if late.Granted || !late.Created {
			t.Fatalf("after the window = %+v, want a new pending approval", late)
		}
	})

	t.Run("DeniedStaysDenied", func(t *testing.T) {
		s, r := open(t)
		now := time.Now()
		p := mustGate(t, s, FP("deny"), approvals.GrantOnce, "c0", now)
		d := decide(t, r, p.Approval, approvals.StateDenied, now.Add(time.Second))
		g := mustGate(t, s, FP("deny"), approvals.GrantOnce, "c1", now.Add(30*time.Second))
		if g.Granted || g.Created || g.Approval.State != approvals.StateDenied || g.Approval.DenialReason() != "because" {
			t.Fatalf("gate after denial = %+v, want the denied approval", g)
		}
		after := mustGate(t, s, FP("deny"), approvals.GrantOnce, "c2", d.ExpiresAt.Add(time.Millisecond))
		if !after.Created {
			t.Fatalf("gate after the denial's TTL = %+v, want a new pending approval", after)
		}
	})

	t.Run("ExpiredPendingIsReplaced", func(t *testing.T) {
		s, _ := open(t)
		now := time.Now()
		p := mustGate(t, s, FP("exp"), approvals.GrantOnce, "c0", now)
		later := p.Approval.ExpiresAt.Add(time.Millisecond)
		n := mustGate(t, s, FP("exp"), approvals.GrantOnce, "c1", later)
		if !n.Created || n.Approval.ID == p.Approval.ID {
			t.Fatalf("gate after expiry = %+v, want a new approval", n)
		}
		a := p.Approval
		a.Version = 1
		a.State = approvals.StateApproved
		if _, err := s.Update(ctx, a, later); !errors.Is(err, approvals.ErrExpired) {
			t.Fatalf("Update of an expired approval err = %v, want ErrExpired", err)
		}
	})

	t.Run("UpdateIsCompareAndSet", func(t *testing.T) {
		s, r := open(t)
		now := time.Now()
		p := mustGate(t, s, FP("cas"), approvals.GrantOnce, "c0", now)
		a := p.Approval
		a.Votes = []approvals.Vote{{Approver: "x", Approve: true, At: now}}
		u, err := s.Update(ctx, a, now)
		if err != nil || u.Version != 2 {
			t.Fatalf("Update = v%d, %v; want version 2", u.Version, err)
		}
		if _, err := r.Update(ctx, a, now); !errors.Is(err, approvals.ErrConflict) {
			t.Fatalf("stale Update err = %v, want ErrConflict", err)
		}
		got, err := r.Get(ctx, a.ID)
		if err != nil || len(got.Votes) != 1 || got.Version != 2 || got.State != approvals.StatePending {
			t.Fatalf("Get after Update = %+v, %v", got, err)
		}
		ghost := a
		ghost.ID = approvals.NewID()
		if _, err := s.Update(ctx, ghost, now); !errors.Is(err, approvals.ErrNotFound) {
			t.Fatalf("Update(unknown) err = %v, want ErrNotFound", err)
		}
	})

	t.Run("ListNewestFirst", func(t *testing.T) {
		s, r := open(t)
		now := time.Now()
		a := mustGate(t, s, FP("l1"), approvals.GrantOnce, "c", now)
		b := mustGate(t, s, FP("l2"), approvals.GrantOnce, "c", now.Add(time.Second))
		list, err := r.List(ctx, now.Add(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != b.Approval.ID || list[1].ID != a.Approval.ID {
			t.Fatalf("List = %v, want [%s %s]", ids(list), b.Approval.ID, a.Approval.ID)
		}
	})

	t.Run("SubscribeSeesDecisionsOfOtherReplicas", func(t *testing.T) {
		s, r := open(t)
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := s.Subscribe(sctx)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		p := mustGate(t, s, FP("sub"), approvals.GrantOnce, "c", now)
		// The subscription may take a moment to be live: decide until heard.
		deadline := time.After(5 * time.Second)
		a := p.Approval
		a.Votes = []approvals.Vote{{Approver: "x", Approve: true, At: now}}
		u, err := r.Update(ctx, a, now) // pending -> pending: no event
		if err != nil {
			t.Fatal(err)
		}
		decide(t, r, u, approvals.StateApproved, now)
		select {
		case id := <-ch:
			if id != p.Approval.ID {
				t.Fatalf("event for %s, want %s", id, p.Approval.ID)
			}
		case <-deadline:
			t.Fatal("no decision event within 5s")
		}
	})

	t.Run("ConcurrentClaimsOneWinner", func(t *testing.T) {
		s, r := open(t)
		now := time.Now()
		p := mustGate(t, s, FP("race"), approvals.GrantOnce, "c0", now)
		decide(t, s, p.Approval, approvals.StateApproved, now)
		var wins atomic.Int32
		var failures atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				st := s
				if i%2 == 1 {
					st = r
				}
				res, err := st.Gate(ctx, FP("race"), Fresh(FP("race"), now, approvals.GrantOnce, time.Minute), fmt.Sprint("claim-", i), now.Add(time.Second))
				if err != nil {
					failures.Add(1)
					return
				}
				if res.Granted {
					wins.Add(1)
				}
			}(i)
		}
		wg.Wait()
		if failures.Load() != 0 || wins.Load() != 1 {
			t.Fatalf("wins = %d, failures = %d; want exactly one winner", wins.Load(), failures.Load())
		}
	})

	t.Run("Ping", func(t *testing.T) {
		s, _ := open(t)
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func ids(list []approvals.Approval) string {
	var b strings.Builder
	for _, a := range list {
		b.WriteString(a.ID + " ")
	}
	return b.String()
}
