package approvals_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/approvals/storetest"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/redistest"
)

var (
	requester = identity.Identity{Subject: "agent-1", Email: "bot@example.com", Groups: []string{"ai-agents", "sre"}}
	sre1      = identity.Identity{Subject: "sre-1", Email: "ann@example.com", Groups: []string{"sre"}}
	sre2      = identity.Identity{Subject: "sre-2", Email: "bob@example.com", Groups: []string{"sre"}}
	carol     = identity.Identity{Subject: "carol", Email: "Carol@Example.com", EmailVerified: true}
	outsider  = identity.Identity{Subject: "dev-9", Email: "dev@example.com", Groups: []string{"dev"}}
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newService(t testing.TB, store approvals.Store, opts approvals.Options) *approvals.Service {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if opts.PublicURL == "" {
		opts.PublicURL = "https://airlock.example.com"
	}
	s := approvals.NewService(store, opts)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func request(name string, mods ...func(*approvals.Request)) approvals.Request {
	r := approvals.Request{
		Fingerprint: storetest.FP(name),
		Subject:     requester.Subject, Email: requester.Email, Actor: "claude",
		Operation: "compute.instances.delete", Resource: "projects/p/zones/z/instances/" + name,
		Method: "DELETE", URL: "https://compute.googleapis.com/compute/v1/" + name,
		Policy: "gcp-production", Rule: "prod-writes-need-a-human",
		Approvers: []string{"group:sre", "user:carol@example.com"}, MinApprovals: 1, Grant: approvals.GrantOnce,
		TTL: 15 * time.Minute, RequestID: "req-" + name,
	}
	for _, m := range mods {
		m(&r)
	}
	return r
}

func gate(t *testing.T, s *approvals.Service, r approvals.Request) approvals.Outcome {
	t.Helper()
	o, err := s.Gate(context.Background(), r, 0)
	if err != nil {
		t.Fatalf("Gate: %v", err)
	}
	return o
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := approvals.NewID()
		if !approvals.ValidID(id) || seen[id] {
			t.Fatalf("NewID() = %q: valid %v, duplicate %v", id, approvals.ValidID(id), seen[id])
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "abc", strings.Repeat("a", 25), strings.Repeat("a", 27), strings.Repeat("A", 26), strings.Repeat("a", 25) + "1", strings.Repeat("a", 25) + "b", "../../../etc/passwd0000000"} {
		if approvals.ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) approvals.Store
	}{
		{"memory", func(t *testing.T) approvals.Store { return approvals.NewMemoryStore() }},
		{"redis", func(t *testing.T) approvals.Store { return newRedisStore(t, redistest.Start(t).URL()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newService(t, tc.store(t), approvals.Options{})
			o := gate(t, s, request("vm1"))
			if o.Granted || o.Approval.State != approvals.StatePending || !approvals.ValidID(o.Approval.ID) {
				t.Fatalf("first gate = %+v", o)
			}
			id := o.Approval.ID
			if again := gate(t, s, request("vm1")); again.Approval.ID != id {
				t.Fatalf("same request while pending got id %s, want %s", again.Approval.ID, id)
			}
			if other := gate(t, s, request("vm1", func(r *approvals.Request) {
				r.Fingerprint = storetest.FP("vm1 with another body")
			})); other.Approval.ID == id {
				t.Fatal("a different body got the same approval")
			}
			if _, err := s.Vote(ctx, id, requester, true, "mine"); !errors.Is(err, approvals.ErrSelfApproval) {
				t.Fatalf("self-approval err = %v", err)
			}
			if _, err := s.Vote(ctx, id, outsider, true, ""); !errors.Is(err, approvals.ErrNotApprover) {
				t.Fatalf("outsider err = %v", err)
			}
			a, err := s.Vote(ctx, id, carol, true, "looks fine") // user:carol@example.com, case-insensitive
			if err != nil || a.State != approvals.StateApproved || len(a.Votes) != 1 || a.Votes[0].Reason != "looks fine" || a.Votes[0].Email != carol.Email {
				t.Fatalf("vote = %+v, %v", a, err)
			}
			if _, err := s.Vote(ctx, id, sre1, false, "late"); !errors.Is(err, approvals.ErrDecided) {
				t.Fatalf("vote after decision err = %v", err)
			}
			if g := gate(t, s, request("vm1")); !g.Granted || g.Approval.ID != id {
				t.Fatalf("gate after approval = %+v", g)
			}
			if g := gate(t, s, request("vm1", func(r *approvals.Request) { r.RequestID = "req-other" })); g.Granted || g.Approval.ID == id {
				t.Fatalf("second use of a once grant = %+v, want a new pending approval", g)
			}
			got, err := s.Get(ctx, id)
			if err != nil || got.Uses != 1 || got.ClaimedAt.IsZero() {
				t.Fatalf("Get after claim = %+v, %v", got, err)
			}
			pending, err := s.List(ctx, approvals.ListOptions{State: approvals.StatePending})
			if err != nil || len(pending.Approvals) != 2 || pending.NextPageToken != "" {
				t.Fatalf("List(pending) = %d (next %q), %v; want 2", len(pending.Approvals), pending.NextPageToken, err)
			}
		})
	}
}

func TestMinApprovalsAndDenial(t *testing.T) {
	ctx := context.Background()
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{})
	id := gate(t, s, request("two", func(r *approvals.Request) { r.MinApprovals = 2 })).Approval.ID
	a, err := s.Vote(ctx, id, sre1, true, "ok")
	if err != nil || a.State != approvals.StatePending {
		t.Fatalf("first of two = %v, %v", a.State, err)
	}
	if _, err := s.Vote(ctx, id, sre1, true, "again"); !errors.Is(err, approvals.ErrDecided) {
		t.Fatalf("same approver twice err = %v", err)
	}
	if a, err = s.Vote(ctx, id, sre2, true, "ok too"); err != nil || a.State != approvals.StateApproved {
		t.Fatalf("second of two = %v, %v", a.State, err)
	}

	id = gate(t, s, request("deny", func(r *approvals.Request) { r.MinApprovals = 2 })).Approval.ID
	if _, err := s.Vote(ctx, id, sre1, true, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Vote(ctx, id, sre2, false, ""); !errors.Is(err, approvals.ErrInvalid) {
		t.Fatalf("denial without reason err = %v", err)
	}
	if a, err = s.Vote(ctx, id, sre2, false, "not during the freeze"); err != nil || a.State != approvals.StateDenied {
		t.Fatalf("denial = %v, %v", a.State, err)
	}
	o := gate(t, s, request("deny", func(r *approvals.Request) { r.MinApprovals = 2; r.RequestID = "retry" }))
	if o.Granted || o.Approval.ID != id || o.Approval.State != approvals.StateDenied || o.Approval.DenialReason() != "not during the freeze" || o.Approval.Denier() != sre2.Email {
		t.Fatalf("retry after denial = %+v", o)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	id := gate(t, s, request("bad")).Approval.ID
	tests := []struct {
		name   string
		id     string
		voter  identity.Identity
		reason string
		want   error
	}{
		{"malformed id", "not-an-id", sre1, "", approvals.ErrInvalid},
		{"unknown id", approvals.NewID(), sre1, "", approvals.ErrNotFound},
		{"oversized reason", id, sre1, strings.Repeat("x", approvals.MaxReasonLen+1), approvals.ErrInvalid},
		{"invalid utf-8", id, sre1, "\xff", approvals.ErrInvalid},
		{"non-approver", id, outsider, "", approvals.ErrNotApprover},
		{"self by email", id, identity.Identity{Subject: "other", Email: "BOT@example.com", Groups: []string{"sre"}}, "", approvals.ErrSelfApproval},
		{"no subject", id, identity.Identity{Groups: []string{"sre"}}, "", approvals.ErrNotApprover},
	}
	for _, tc := range tests {
		if _, err := s.Vote(ctx, tc.id, tc.voter, true, tc.reason); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	clock.Store(now.Add(16 * time.Minute).UnixNano())
	if _, err := s.Vote(ctx, id, sre1, true, ""); !errors.Is(err, approvals.ErrExpired) {
		t.Errorf("vote on expired err = %v", err)
	}
	for name, r := range map[string]approvals.Request{
		"bad fingerprint": request("x", func(r *approvals.Request) { r.Fingerprint = "abc" }),
		"no approvers":    request("x", func(r *approvals.Request) { r.Approvers = nil }),
		"bad approver":    request("x", func(r *approvals.Request) { r.Approvers = []string{"sre"} }),
		"bad grant":       request("x", func(r *approvals.Request) { r.Grant = "forever" }),
	} {
		if _, err := s.Gate(ctx, r, 0); !errors.Is(err, approvals.ErrInvalid) {
			t.Errorf("Gate(%s) err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestTTLDefaultsAndCap(t *testing.T) {
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{DefaultTTL: 5 * time.Minute, MaxTTL: time.Hour})
	o := gate(t, s, request("ttl0", func(r *approvals.Request) { r.TTL = 0 }))
	if d := o.Approval.ExpiresAt.Sub(o.Approval.CreatedAt); d != 5*time.Minute {
		t.Errorf("default ttl = %v", d)
	}
	o = gate(t, s, request("ttlbig", func(r *approvals.Request) { r.TTL = 48 * time.Hour }))
	if d := o.Approval.ExpiresAt.Sub(o.Approval.CreatedAt); d != time.Hour {
		t.Errorf("capped ttl = %v", d)
	}
}

// TestHoldAcrossReplicas: a Gate holding on one replica is woken by a vote
// on another through Redis pub/sub and lets the request through.
func TestHoldAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a := newService(t, newRedisStore(t, srv.URL()), approvals.Options{})
	b := newService(t, newRedisStore(t, srv.URL()), approvals.Options{})
	ctx := context.Background()
	first := gate(t, a, request("hold"))
	type result struct {
		o   approvals.Outcome
		err error
		d   time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		o, err := a.Gate(ctx, request("hold"), 20*time.Second)
		done <- result{o, err, time.Since(start)}
	}()
	// Vote once the holder is waiting; the holder re-checks after it
	// registers, so an early vote is also fine.
	if _, err := b.Vote(ctx, first.Approval.ID, sre1, true, "go"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || !r.o.Granted || r.o.Approval.ID != first.Approval.ID {
			t.Fatalf("held gate = %+v, %v", r.o, r.err)
		}
		if r.d > 10*time.Second {
			t.Fatalf("held gate took %v", r.d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("held gate not woken")
	}
}

// TestHoldWokenByPubSub: the vote happens strictly after the holder waits.
func TestHoldWokenByPubSub(t *testing.T) {
	srv := redistest.Start(t)
	a := newService(t, newRedisStore(t, srv.URL()), approvals.Options{})
	b := newService(t, newRedisStore(t, srv.URL()), approvals.Options{})
	id := gate(t, a, request("hold2")).Approval.ID
	waitSubscribers(t, srv.Addr(), 2)
	holdThenApprove(t, a, b, "hold2", id, 10*time.Second)
}

// holdThenApprove holds request(name) on a, makes sure the hold is still
// waiting after 200 ms, approves id on b and fails unless the hold is
// granted within wait.
func holdThenApprove(t *testing.T, a, b *approvals.Service, name, id string, wait time.Duration) {
	t.Helper()
	ctx := context.Background()
	done := make(chan approvals.Outcome, 1)
	go func() {
		o, _ := a.Gate(ctx, request(name), 2*wait)
		done <- o
	}()
	// Vote only after the hold began: poll a's answer channel for a little
	// while to make sure it is still waiting.
	select {
	case o := <-done:
		t.Fatalf("hold returned before any vote: %+v", o)
	case <-time.After(200 * time.Millisecond):
	}
	start := time.Now()
	if _, err := b.Vote(ctx, id, sre1, true, "go"); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-done:
		if !o.Granted {
			t.Fatalf("held gate = %+v", o)
		}
		t.Logf("woken %v after the vote", time.Since(start))
	case <-time.After(wait):
		t.Fatal("held gate not woken after the vote")
	}
}

func TestHoldTimesOutPending(t *testing.T) {
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{})
	start := time.Now()
	o, err := s.Gate(context.Background(), request("wait"), 100*time.Millisecond)
	if err != nil || o.Granted || o.Approval.State != approvals.StatePending {
		t.Fatalf("hold = %+v, %v", o, err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 5*time.Second {
		t.Fatalf("hold took %v", d)
	}
}

// TestRedisDownAndRecovery: Redis down at start and mid-test yields
// ErrUnavailable; after a restart decisions recover, and no grant is spent
// twice or lost.
func TestRedisDownAndRecovery(t *testing.T) {
	srv := redistest.StartPersistent(t)
	url := srv.URL()
	srv.Kill()
	ctx := context.Background()
	store, err := approvals.OpenStore(ctx, url) // Redis down: must not fail
	if err != nil {
		t.Fatalf("OpenStore with Redis down: %v", err)
	}
	s := newService(t, store, approvals.Options{})
	tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.Healthy(tctx); !errors.Is(err, approvals.ErrUnavailable) {
		t.Fatalf("Healthy with Redis down = %v", err)
	}
	if _, err := s.Gate(tctx, request("down"), 0); !errors.Is(err, approvals.ErrUnavailable) {
		t.Fatalf("Gate with Redis down = %v", err)
	}
	srv.Restart()
	if err := s.Healthy(ctx); err != nil {
		t.Fatalf("Healthy after start: %v", err)
	}
	id := gate(t, s, request("down")).Approval.ID
	if _, err := s.Vote(ctx, id, sre1, true, "ok"); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if _, err := s.Vote(ctx, id, sre2, true, "ok"); !errors.Is(err, approvals.ErrUnavailable) {
		t.Fatalf("Vote with Redis killed = %v", err)
	}
	srv.Restart()
	// The decision survived the crash; exactly one of many claims wins.
	other := newService(t, newRedisStore(t, url), approvals.Options{})
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			svc := s
			if i%2 == 0 {
				svc = other
			}
			o, err := svc.Gate(ctx, request("down", func(r *approvals.Request) { r.RequestID = fmt.Sprint("r", i) }), 0)
			if err == nil && o.Granted {
				wins.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("claims after restart: %d winners, want exactly 1", wins.Load())
	}
	// The claim survives another crash: the grant is not spent again.
	srv.Kill()
	srv.Restart()
	if o := gate(t, s, request("down", func(r *approvals.Request) { r.RequestID = "after" })); o.Granted {
		t.Fatal("grant spent twice after a crash")
	}
	a, err := s.Get(ctx, id)
	if err != nil || a.Uses != 1 || a.State != approvals.StateApproved {
		t.Fatalf("approval after crashes = %+v, %v", a, err)
	}
}

func TestOpenStoreErrors(t *testing.T) {
	ctx := context.Background()
	for _, spec := range []string{"mem", "http://x:1", "redis://", "redis-sentinel://h:1", "redis://h:1/?bogus=1"} {
		if _, err := approvals.OpenStore(ctx, spec); err == nil {
			t.Errorf("OpenStore(%q) succeeded", spec)
		}
	}
	for _, spec := range []string{"memory", "redis://127.0.0.1:1/0", "rediss://u:p@h:6380/1", "redis-sentinel://h:26379?master_name=m", "redis-cluster://h:7000?addr=h:7001"} {
		s, err := approvals.OpenStore(ctx, spec)
		if err != nil {
			t.Errorf("OpenStore(%q): %v", spec, err)
			continue
		}
		_ = s.Close()
	}
	if _, err := approvals.OpenStore(ctx, "redis://user:secret@h:1/?bogus=1"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks or is missing: %v", err)
	}
}

// lostReplyStore applies the first Update but answers ErrConflict, as when a
// reply is lost and the client retries.
type lostReplyStore struct {
	*approvals.MemoryStore
	lost atomic.Bool
}

func (l *lostReplyStore) Update(ctx context.Context, a approvals.Approval, now time.Time) (approvals.Approval, error) {
	u, err := l.MemoryStore.Update(ctx, a, now)
	if err == nil && l.lost.CompareAndSwap(false, true) {
		return approvals.Approval{}, approvals.ErrConflict
	}
	return u, err
}

func TestVoteLostReplyIsIdempotent(t *testing.T) {
	s := newService(t, &lostReplyStore{MemoryStore: approvals.NewMemoryStore()}, approvals.Options{})
	id := gate(t, s, request("lost")).Approval.ID
	a, err := s.Vote(context.Background(), id, sre1, true, "ok")
	if err != nil || a.State != approvals.StateApproved || len(a.Votes) != 1 {
		t.Fatalf("vote with a lost reply = %+v, %v; want approved with one vote", a, err)
	}
}

func TestOnVoteSeesEveryStoredVote(t *testing.T) {
	ctx := context.Background()
	type seen struct {
		id    string
		state approvals.State
		who   string
		ok    bool
	}
	var got []seen
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{OnVote: func(_ context.Context, a approvals.Approval, v approvals.Vote) {
		got = append(got, seen{a.ID, a.State, v.Approver, v.Approve})
	}})
	id := gate(t, s, request("two", func(r *approvals.Request) { r.MinApprovals = 2 })).Approval.ID
	if _, err := s.Vote(ctx, id, sre1, true, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Vote(ctx, id, sre1, true, "again"); err == nil {
		t.Fatal("a second vote by the same approver was accepted")
	}
	if _, err := s.Vote(ctx, id, sre2, false, "no"); err != nil {
		t.Fatal(err)
	}
	want := []seen{{id, approvals.StatePending, sre1.Subject, true}, {id, approvals.StateDenied, sre2.Subject, false}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("OnVote saw %+v, want %+v", got, want)
	}
}

// TestOnceGrantOneUseAcrossReplicas: many Checks repeating one
// x-request-id (the agent's value) on two replicas sharing a real Redis
// spend a once grant exactly once.
func TestOnceGrantOneUseAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a := newService(t, newRedisStore(t, srv.URL()), approvals.Options{})
	b := newService(t, newRedisStore(t, srv.URL()), approvals.Options{})
	ctx := context.Background()
	id := gate(t, a, request("replay")).Approval.ID
	if _, err := b.Vote(ctx, id, sre1, true, "ok"); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			svc := a
			if i%2 == 1 {
				svc = b
			}
			o, err := svc.Gate(ctx, request("replay"), 0) // the same RequestID every time
			if err != nil {
				t.Error(err)
				return
			}
			if o.Granted {
				if o.Approval.ID != id || o.ClaimID == "" || o.ClaimID == o.Approval.Request.RequestID {
					t.Errorf("granted %+v", o)
				}
				wins.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d Checks with one x-request-id spent one once grant, want exactly 1", wins.Load())
	}
}

func TestReleaseGivesTheGrantBack(t *testing.T) {
	ctx := context.Background()
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{})
	id := gate(t, s, request("rel")).Approval.ID
	if _, err := s.Vote(ctx, id, sre1, true, "ok"); err != nil {
		t.Fatal(err)
	}
	first := gate(t, s, request("rel"))
	if !first.Granted {
		t.Fatalf("claim = %+v", first)
	}
	forged := first
	forged.ClaimID = approvals.NewID()
	if err := s.Release(ctx, forged); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, id); got.Uses != 1 {
		t.Fatalf("a release by another claim gave the grant back: uses %d", got.Uses)
	}
	if err := s.Release(ctx, first); err != nil {
		t.Fatal(err)
	}
	if again := gate(t, s, request("rel")); !again.Granted || again.Approval.ID != id {
		t.Fatalf("after release = %+v, want the grant", again)
	}
	if next := gate(t, s, request("rel")); next.Granted {
		t.Fatal("the grant was used twice after one release")
	}
}

func TestUserApproverNeedsVerifiedEmail(t *testing.T) {
	ctx := context.Background()
	onlyCarol := func(r *approvals.Request) { r.Approvers = []string{"user:carol@example.com"} }
	for _, tc := range []struct {
		name  string
		voter identity.Identity
	}{
		{"unverified e-mail", identity.Identity{Subject: "mallory", Email: "carol@example.com"}},
		{"subject equal to the e-mail", identity.Identity{Subject: "carol@example.com"}},
		{"subject equal, unverified e-mail", identity.Identity{Subject: "carol@example.com", Email: "carol@example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t, approvals.NewMemoryStore(), approvals.Options{})
			id := gate(t, s, request("verified", onlyCarol)).Approval.ID
			if _, err := s.Vote(ctx, id, tc.voter, true, "ok"); !errors.Is(err, approvals.ErrNotApprover) {
				t.Fatalf("vote err = %v, want ErrNotApprover", err)
			}
			if approvals.IsApprover([]string{"user:carol@example.com"}, tc.voter) {
				t.Fatal("IsApprover matched")
			}
		})
	}
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{})
	id := gate(t, s, request("verified", onlyCarol)).Approval.ID
	if a, err := s.Vote(ctx, id, identity.Identity{Subject: "c-1", Email: "CAROL@example.COM", EmailVerified: true}, true, "ok"); err != nil || a.State != approvals.StateApproved {
		t.Fatalf("a verified e-mail in another case = %v, %v", a.State, err)
	}
}

func TestDelegatedTokensCannotVote(t *testing.T) {
	ctx := context.Background()
	delegated := func(actor string) identity.Identity {
		id := sre1
		id.Actor = actor
		return id
	}
	for _, tc := range []struct {
		name  string
		allow bool
		voter identity.Identity
		want  error
	}{
		{"acting for the requester", false, delegated(requester.Subject), approvals.ErrDelegated},
		{"acting for the requester, delegation allowed", true, delegated(requester.Subject), approvals.ErrDelegated},
		{"the requesting agent as actor, delegation allowed", true, delegated("claude"), approvals.ErrDelegated},
		{"any delegation by default", false, delegated("some-tool"), approvals.ErrDelegated},
		{"the requesting agent with its own token", false, identity.Identity{Subject: "claude", Groups: []string{"sre"}}, approvals.ErrSelfApproval},
		{"delegation allowed", true, delegated("some-tool"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t, approvals.NewMemoryStore(), approvals.Options{AllowDelegatedVotes: tc.allow})
			id := gate(t, s, request("delegated")).Approval.ID
			_, err := s.Vote(ctx, id, tc.voter, true, "ok")
			if !errors.Is(err, tc.want) {
				t.Fatalf("vote err = %v, want %v", err, tc.want)
			}
			if tc.want == approvals.ErrDelegated && !strings.Contains(err.Error(), "approving is a human act") {
				t.Fatalf("message %q", err)
			}
		})
	}
}

func TestPendingQueueFull(t *testing.T) {
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{MaxPendingPerSubject: 3})
	var first string
	for i := 0; i < 3; i++ {
		o := gate(t, s, request(fmt.Sprint("q", i)))
		if o.QueueFull || o.Approval.ID == "" {
			t.Fatalf("request %d = %+v", i, o)
		}
		if i == 0 {
			first = o.Approval.ID
		}
	}
	o := gate(t, s, request("q3"))
	if !o.QueueFull || o.Limit != 3 || o.Granted || o.Approval.ID != "" {
		t.Fatalf("fourth request = %+v, want QueueFull with limit 3", o)
	}
	if again := gate(t, s, request("q0")); again.QueueFull || again.Approval.ID != first {
		t.Fatalf("a re-sent pending request = %+v, want %s", again, first)
	}
	if other := gate(t, s, request("q4", func(r *approvals.Request) { r.Subject = "agent-2" })); other.QueueFull {
		t.Fatal("another requester's queue is full too")
	}
}

func TestStoredRequestStringsAreBounded(t *testing.T) {
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{})
	long := strings.Repeat("é", 5000)
	longBody := strings.Repeat("é", approvals.MaxBodyLen)
	o := gate(t, s, request("long", func(r *approvals.Request) {
		r.URL, r.BodyExcerpt, r.Resource, r.Operation, r.Method, r.SessionID, r.RequestID, r.Message = "https://x/"+long, longBody, long, long, long, long, long, long
	}))
	a, err := s.Get(context.Background(), o.Approval.ID)
	if err != nil {
		t.Fatal(err)
	}
	r := a.Request
	for name, v := range map[string]string{"url": r.URL, "resource": r.Resource, "operation": r.Operation, "method": r.Method, "session": r.SessionID, "request id": r.RequestID, "message": r.Message} {
		if len(v) > approvals.MaxFieldLen || !utf8.ValidString(v) || !strings.HasSuffix(v, "...") {
			t.Errorf("%s: %d bytes, valid UTF-8 %v", name, len(v), utf8.ValidString(v))
		}
	}
	if b := r.BodyExcerpt; len(b) > approvals.MaxBodyLen || len(b) < approvals.MaxBodyLen-8 || !utf8.ValidString(b) || !strings.HasSuffix(b, "...") {
		t.Errorf("body: %d bytes, valid UTF-8 %v", len(b), utf8.ValidString(b))
	}
}
