// Package storetest is the conformance suite every approvals.Store must pass.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	h := sha256.Sum256([]byte("storetest:" + name))
	return hex.EncodeToString(h[:])
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
	r, err := s.Gate(context.Background(), fp, Fresh(fp, now, grant, time.Minute), claim, 0, now)
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
		page, err := r.List(ctx, approvals.Cursor{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		list := page.Approvals
		if len(list) != 2 || list[0].ID != b.Approval.ID || list[1].ID != a.Approval.ID || page.More {
			t.Fatalf("List = %v (more %v), want [%s %s]", ids(list), page.More, b.Approval.ID, a.Approval.ID)
		}
	})

	t.Run("ListPagesOverEverything", func(t *testing.T) {
		s, r := open(t)
		now := time.Now().Truncate(time.Millisecond)
		want := map[string]bool{}
		for i := 0; i < 12; i++ {
			// Every third approval shares its millisecond with the next:
			// the id orders ties.
			at := now.Add(time.Duration(i/2) * time.Millisecond)
			fresh := Fresh(FP(fmt.Sprint("page-", i)), at, approvals.GrantOnce, time.Hour)
			res, err := s.Gate(ctx, fresh.Request.Fingerprint, fresh, "c", 0, at)
			if err != nil || !res.Created {
				t.Fatalf("Gate %d: %+v, %v", i, res, err)
			}
			want[res.Approval.ID] = true
		}
		var got []approvals.Approval
		cur := approvals.Cursor{}
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("List does not end")
			}
			page, err := r.List(ctx, cur, 5)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page.Approvals...)
			cur = page.Next
			if !page.More {
				break
			}
		}
		if len(got) != len(want) {
			t.Fatalf("paged %d approvals, want %d: %s", len(got), len(want), ids(got))
		}
		for i, a := range got {
			if !want[a.ID] {
				t.Fatalf("approval %s listed twice or unknown", a.ID)
			}
			delete(want, a.ID)
			if i > 0 {
				p := got[i-1]
				pm, am := p.CreatedAt.UnixMilli(), a.CreatedAt.UnixMilli()
				if pm < am || (pm == am && p.ID < a.ID) {
					t.Fatalf("list order broken at %d: %s (%d) before %s (%d)", i, p.ID, pm, a.ID, am)
				}
			}
		}
	})

	t.Run("PendingCapPerRequester", func(t *testing.T) {
		s, r := open(t)
		now := time.Now()
		gate := func(st approvals.Store, name, subject string, at time.Time) approvals.GateResult {
			t.Helper()
			f := Fresh(FP(name), at, approvals.GrantOnce, time.Minute)
			f.Request.Subject = subject
			res, err := st.Gate(ctx, FP(name), f, "c", 2, at)
			if err != nil {
				t.Fatalf("Gate(%s): %v", name, err)
			}
			return res
		}
		a := gate(s, "cap-a", "bot", now)
		b := gate(r, "cap-b", "bot", now)
		if !a.Created || !b.Created {
			t.Fatalf("first two = %+v, %+v; want created", a, b)
		}
		if full := gate(s, "cap-c", "bot", now); !full.QueueFull || full.Created || full.Approval.ID != "" {
			t.Fatalf("third pending of one requester = %+v, want QueueFull", full)
		}
		if again := gate(r, "cap-a", "bot", now); again.QueueFull || again.Created || again.Approval.ID != a.Approval.ID {
			t.Fatalf("a re-sent pending request = %+v, want its approval %s", again, a.Approval.ID)
		}
		if other := gate(r, "cap-d", "someone-else", now); !other.Created {
			t.Fatalf("another requester = %+v, want created", other)
		}
		other := Fresh(FP("cap-e"), now, approvals.GrantOnce, time.Minute)
		other.Request.Issuer = "https://other-issuer.example"
		other.Request.Subject = "bot"
		if res, err := s.Gate(ctx, FP("cap-e"), other, "c", 2, now); err != nil || !res.Created {
			t.Fatalf("the same subject from another issuer = %+v, %v; want created", res, err)
		}
		decide(t, r, a.Approval, approvals.StateDenied, now)
		if c := gate(s, "cap-c", "bot", now); !c.Created {
			t.Fatalf("after a decision freed a place = %+v, want created", c)
		}
		if full := gate(s, "cap-f", "bot", now); !full.QueueFull {
			t.Fatalf("queue full again = %+v", full)
		}
		later := now.Add(time.Minute + time.Millisecond)
		if f := gate(r, "cap-f", "bot", later); !f.Created {
			t.Fatalf("after the pending approvals expired = %+v, want created", f)
		}
	})

	t.Run("PendingCapIsAtomic", func(t *testing.T) {
		s, r := open(t)
		now := time.Now()
		var created, full, failures atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				st := s
				if i%2 == 1 {
					st = r
				}
				fp := FP(fmt.Sprint("cap-race-", i))
				res, err := st.Gate(ctx, fp, Fresh(fp, now, approvals.GrantOnce, time.Minute), "c", 5, now)
				switch {
				case err != nil:
					failures.Add(1)
				case res.Created:
					created.Add(1)
				case res.QueueFull:
					full.Add(1)
				}
			}(i)
		}
		wg.Wait()
		if failures.Load() != 0 || created.Load() != 5 || full.Load() != 35 {
			t.Fatalf("created %d, full %d, failures %d; want 5, 35, 0", created.Load(), full.Load(), failures.Load())
		}
	})

	t.Run("ReleaseOnlyByClaimer", func(t *testing.T) {
		s, r := open(t)
		now := time.Now()
		p := mustGate(t, s, FP("rel"), approvals.GrantOnce, "c0", now)
		decide(t, r, p.Approval, approvals.StateApproved, now)
		if g := mustGate(t, r, FP("rel"), approvals.GrantOnce, "claim-1", now); !g.Granted {
			t.Fatalf("claim = %+v", g)
		}
		if ok, err := s.Release(ctx, p.Approval.ID, "claim-2"); err != nil || ok {
			t.Fatalf("Release by another claim = %v, %v; want false", ok, err)
		}
		if ok, err := s.Release(ctx, p.Approval.ID, ""); err != nil || ok {
			t.Fatalf("Release with no claim id = %v, %v; want false", ok, err)
		}
		if ok, err := r.Release(ctx, p.Approval.ID, "claim-1"); err != nil || !ok {
			t.Fatalf("Release by the claimer = %v, %v; want true", ok, err)
		}
		got, err := s.Get(ctx, p.Approval.ID)
		if err != nil || got.Uses != 0 || !got.ClaimedAt.IsZero() {
			t.Fatalf("after release = uses %d claimed %v, %v", got.Uses, got.ClaimedAt, err)
		}
		if ok, err := r.Release(ctx, p.Approval.ID, "claim-1"); err != nil || ok {
			t.Fatalf("a second Release = %v, %v; want false", ok, err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				st := s
				if i%2 == 1 {
					st = r
				}
				res, err := st.Gate(ctx, FP("rel"), Fresh(FP("rel"), now, approvals.GrantOnce, time.Minute), fmt.Sprint("again-", i), 0, now.Add(time.Second))
				if err == nil && res.Granted {
					wins.Add(1)
				}
			}(i)
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("claims after a release: %d winners, want exactly 1", wins.Load())
		}
		if ok, err := s.Release(ctx, approvals.NewID(), "claim-1"); err != nil || ok {
			t.Fatalf("Release of an unknown approval = %v, %v; want false", ok, err)
		}
	})

	t.Run("ReleaseOfWindowGrantIsNoop", func(t *testing.T) {
		s, _ := open(t)
		now := time.Now()
		p := mustGate(t, s, FP("relw"), approvals.GrantWindow, "c0", now)
		decide(t, s, p.Approval, approvals.StateApproved, now)
		mustGate(t, s, FP("relw"), approvals.GrantWindow, "w1", now)
		if ok, err := s.Release(ctx, p.Approval.ID, "w1"); err != nil || ok {
			t.Fatalf("Release of a window grant = %v, %v; want false", ok, err)
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
				res, err := st.Gate(ctx, FP("race"), Fresh(FP("race"), now, approvals.GrantOnce, time.Minute), fmt.Sprint("claim-", i), 0, now.Add(time.Second))
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
