package approvals

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/airlockhq/airlock/identity"
)

// Options configure a Service.
type Options struct {
	// DefaultTTL applies when a rule sets no ttl (default 15m).
	DefaultTTL time.Duration
	// MaxTTL caps every rule's ttl (default 24h).
	MaxTTL time.Duration
	// PublicURL is the base URL approvers reach the API at, e.g.
	// https://airlock.example.com; ApproveURL builds on it.
	PublicURL string
	// Webhooks are URLs POSTed on every new pending approval and decision.
	Webhooks []string
	// Logger receives the service's logs (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnVote, when set, is called after every vote is stored, with the
	// approval as it stands after it (the session recorder keeps votes).
	OnVote func(ctx context.Context, a Approval, v Vote)
	// MaxPendingPerSubject caps the live pending approvals of one
	// requester (issuer and subject); beyond it Gate answers QueueFull.
	// Zero means 20; negative means no cap.
	MaxPendingPerSubject int
	// AllowDelegatedVotes lets a token with an act claim vote (never one
	// acting for the requester).
	AllowDelegatedVotes bool
}

// DefaultMaxPendingPerSubject is the default cap on one requester's
// pending approvals.
const DefaultMaxPendingPerSubject = 20

// Service runs the approval lifecycle over a Store. It is safe for
// concurrent use; several Services (replicas) may share one Redis store.
type Service struct {
	store  Store
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	hooks  *notifier
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

// NewService returns a Service over store. It subscribes to decisions in the
// background (for hold); a store that is down is retried, never fatal.
func NewService(store Store, opts Options) *Service {
	if opts.DefaultTTL <= 0 {
		opts.DefaultTTL = 15 * time.Minute
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = 24 * time.Hour
	}
	if opts.DefaultTTL > opts.MaxTTL {
		opts.DefaultTTL = opts.MaxTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxPendingPerSubject == 0 {
		opts.MaxPendingPerSubject = DefaultMaxPendingPerSubject
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		store: store, opts: opts, log: opts.Logger.With("component", "approvals"), now: opts.Now,
		cancel: cancel, done: make(chan struct{}), waiters: map[string]map[chan struct{}]struct{}{},
	}
	s.hooks = newNotifier(opts.Webhooks, s.log)
	go s.listen(ctx)
	return s
}

// listen fans decisions out to the Gates holding for them.
func (s *Service) listen(ctx context.Context) {
	defer close(s.done)
	for ctx.Err() == nil {
		ch, err := s.store.Subscribe(ctx)
		if err != nil {
			s.log.Warn("approvals: subscribe to decisions failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		for id := range ch {
			s.wake(id)
		}
	}
}

func (s *Service) wake(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.waiters[id] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (s *Service) watch(id string) (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	s.mu.Lock()
	if s.waiters[id] == nil {
		s.waiters[id] = map[chan struct{}]struct{}{}
	}
	s.waiters[id][c] = struct{}{}
	s.mu.Unlock()
	return c, func() {
		s.mu.Lock()
		delete(s.waiters[id], c)
		if len(s.waiters[id]) == 0 {
			delete(s.waiters, id)
		}
		s.mu.Unlock()
	}
}

// Outcome is the gate's answer.
type Outcome struct {
	// Granted: the request may proceed; its grant was claimed.
	Granted bool
	// Approval is the approval; when not Granted its State is pending or
	// denied (zero when QueueFull).
	Approval Approval
	// ClaimID is the claim this Gate made on a once grant: Release it if
	// the request does not go out after all.
	ClaimID string
	// QueueFull: the request needs a new approval but the requester
	// already has Limit pending ones; nothing was stored.
	QueueFull bool
	// Limit is the cap on pending approvals per requester.
	Limit int
}

// ApproveURL is where an approver finds the approval: its page in the
// console, PUBLIC_URL/approvals/ID.
func (s *Service) ApproveURL(id string) string {
	base := strings.TrimRight(s.opts.PublicURL, "/")
	return base + "/approvals/" + url.PathEscape(id)
}

// normalise checks and completes a gate request.
func (s *Service) normalise(req Request) (Request, error) {
	if !validFingerprint(req.Fingerprint) {
		return req, fmt.Errorf("approvals: gate: %w: fingerprint must be a lower-case hex SHA-256", ErrInvalid)
	}
	if req.Subject == "" {
		return req, fmt.Errorf("approvals: gate: %w: requester subject is empty", ErrInvalid)
	}
	if len(req.Approvers) == 0 {
		return req, fmt.Errorf("approvals: gate: %w: rule %q names no approvers", ErrInvalid, req.Rule)
	}
	for _, a := range req.Approvers {
		if !strings.HasPrefix(a, "group:") && !strings.HasPrefix(a, "user:") || len(a) <= len("user:") {
			return req, fmt.Errorf("approvals: gate: %w: approver %q must be group:NAME or user:EMAIL", ErrInvalid, a)
		}
	}
	switch req.Grant {
	case "":
		req.Grant = GrantOnce
	case GrantOnce, GrantWindow:
	default:
		return req, fmt.Errorf("approvals: gate: %w: grant %q must be once or window", ErrInvalid, req.Grant)
	}
	if req.MinApprovals < 1 {
		req.MinApprovals = 1
	}
	if req.TTL <= 0 {
		req.TTL = s.opts.DefaultTTL
	}
	if req.TTL > s.opts.MaxTTL {
		req.TTL = s.opts.MaxTTL
	}
	req.TTL = req.TTL.Truncate(time.Millisecond)
	for _, f := range []*string{&req.Operation, &req.Resource, &req.Method, &req.URL, &req.Justification, &req.Policy, &req.Rule, &req.Message, &req.SessionID, &req.RequestID} {
		*f = bound(*f, MaxFieldLen)
	}
	req.BodyExcerpt = bound(req.BodyExcerpt, MaxBodyLen)
	return req, nil
}

// bound cuts s to at most n bytes on a UTF-8 boundary, marking the cut.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "\uFFFD") + "..."
}

// Gate decides whether req, which a rule sent to approval, may proceed: it
// claims an approved grant, or returns the pending or denied approval of the
// same fingerprint, or opens a new pending approval. With hold > 0 a pending
// Gate waits up to hold (and the ctx deadline) for a decision. A store
// failure returns an error wrapping ErrUnavailable.
func (s *Service) Gate(ctx context.Context, req Request, hold time.Duration) (Outcome, error) {
	req, err := s.normalise(req)
	if err != nil {
		return Outcome{}, err
	}
	// The claim is this Check's own: fresh, never a value the agent sends
	// (a repeated x-request-id must not spend a once grant twice), and
	// reused only by this Gate's own retries and hold.
	claimID := NewID()
	out, err := s.gateOnce(ctx, req, claimID)
	if err != nil || out.Granted || out.QueueFull || out.Approval.State != StatePending || hold <= 0 {
		return out, err
	}
	return s.hold(ctx, req, claimID, out, hold)
}

// Release gives back the claim of a granted Outcome on a once grant, when
// the request it admitted was refused after all (its decision could not be
// recorded, say), so the grant is not spent on a request that never went
// out. Only the Gate that claimed can release; a window grant has nothing
// to give back.
func (s *Service) Release(ctx context.Context, out Outcome) error {
	if !out.Granted || out.ClaimID == "" || out.Approval.Request.Grant != GrantOnce {
		return nil
	}
	ok, err := s.store.Release(ctx, out.Approval.ID, out.ClaimID)
	if err != nil {
		return fmt.Errorf("approvals: release %s: %w: %w", out.Approval.ID, ErrUnavailable, err)
	}
	if ok {
		s.log.Info("approval grant released", "approval_id", out.Approval.ID)
	}
	return nil
}

func (s *Service) gateOnce(ctx context.Context, req Request, claimID string) (Outcome, error) {
	now := s.now()
	fresh := Approval{ID: NewID(), State: StatePending, Request: req, CreatedAt: now.UTC(), ExpiresAt: now.Add(req.TTL).UTC()}
	limit := s.opts.MaxPendingPerSubject
	res, err := s.store.Gate(ctx, req.Fingerprint, fresh, claimID, max(limit, 0), now)
	if err != nil {
		return Outcome{}, fmt.Errorf("approvals: gate %s: %w: %w", req.Fingerprint[:12], ErrUnavailable, err)
	}
	if res.QueueFull {
		s.log.Warn("approval queue full", "requester", req.Requester(), "limit", limit, "rule", req.Rule)
		return Outcome{QueueFull: true, Limit: limit}, nil
	}
	if res.Created {
		s.log.Info("approval pending", "approval_id", res.Approval.ID, "rule", req.Rule, "operation", req.Operation, "requester", req.Requester())
		s.hooks.enqueue("pending", res.Approval, s.ApproveURL(res.Approval.ID))
	}
	if res.Granted {
		s.log.Info("approval grant claimed", "approval_id", res.Approval.ID, "grant", req.Grant, "uses", res.Approval.Uses)
	}
	out := Outcome{Granted: res.Granted, Approval: res.Approval, Limit: limit}
	if res.Granted {
		out.ClaimID = claimID
	}
	return out, nil
}

// hold waits for a decision on the pending approval of out, woken by the
// store's decision feed, then gates again.
func (s *Service) hold(ctx context.Context, req Request, claimID string, out Outcome, hold time.Duration) (Outcome, error) {
	id := out.Approval.ID
	wake, stop := s.watch(id)
	defer stop()
	timer := time.NewTimer(hold)
	defer timer.Stop()
	// A decision may have landed between the first gate and watch.
	check := true
	for {
		if check {
			a, err := s.store.Get(ctx, id)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return out, nil // the agent still gets its pending answer
			}
			if err == nil && a.State != StatePending {
				next, err := s.gateOnce(ctx, req, claimID)
				if err != nil {
					return Outcome{}, err
				}
				return next, nil
			}
		}
		select {
		case <-wake:
			check = true
		case <-timer.C:
			return out, nil
		case <-ctx.Done():
			return out, nil
		}
	}
}

// Vote records voter's decision on approval id. The voter must be one of the
// rule's approvers and not the requester; one denial ends the approval and
// min_approvals distinct approvals approve it.
func (s *Service) Vote(ctx context.Context, id string, voter identity.Identity, approve bool, reason string) (Approval, error) {
	if !ValidID(id) {
		return Approval{}, fmt.Errorf("approvals: vote: %w: malformed approval id %q", ErrInvalid, truncate(id, 40))
	}
	reason = strings.TrimSpace(reason)
	if len(reason) > MaxReasonLen {
		return Approval{}, fmt.Errorf("approvals: vote %s: %w: reason is %d bytes; at most %d", id, ErrInvalid, len(reason), MaxReasonLen)
	}
	if !utf8.ValidString(reason) {
		return Approval{}, fmt.Errorf("approvals: vote %s: %w: reason is not UTF-8", id, ErrInvalid)
	}
	if !approve && reason == "" {
		return Approval{}, fmt.Errorf("approvals: vote %s: %w: a denial needs a reason the agent can read", id, ErrInvalid)
	}
	if voter.Subject == "" {
		return Approval{}, fmt.Errorf("approvals: vote %s: %w: voter has no subject", id, ErrNotApprover)
	}
	var mine *Vote // the vote of the previous attempt
	for attempt := 0; attempt < 8; attempt++ {
		a, err := s.store.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return Approval{}, fmt.Errorf("approvals: vote %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return Approval{}, fmt.Errorf("approvals: vote %s: %w: %w", id, ErrUnavailable, err)
		}
		if mine != nil && hasVote(a.Votes, *mine) {
			return a, nil // our earlier attempt landed but its reply was lost
		}
		now := s.now()
		if err := s.mayVote(a, voter, now); err != nil {
			return Approval{}, fmt.Errorf("approvals: vote %s: %w", id, err)
		}
		v := Vote{Approver: voter.Subject, Email: voter.Email, Approve: approve, Reason: reason, At: now.UTC()}
		mine = &v
		a.Votes = append(a.Votes, v)
		if !approve {
			a.State, a.DecidedAt, a.ExpiresAt = StateDenied, now.UTC(), now.Add(a.Request.TTL).UTC()
		} else if approvals(a.Votes) >= a.Request.MinApprovals {
			a.State, a.DecidedAt = StateApproved, now.UTC()
			a.ExpiresAt = now.Add(a.Request.TTL).UTC()
			a.GrantExpiresAt = a.ExpiresAt
		}
		updated, err := s.store.Update(ctx, a, now)
		switch {
		case errors.Is(err, ErrConflict):
			continue
		case errors.Is(err, ErrExpired):
			return Approval{}, fmt.Errorf("approvals: vote %s: %w", id, ErrExpired)
		case errors.Is(err, ErrNotFound):
			return Approval{}, fmt.Errorf("approvals: vote %s: %w", id, ErrNotFound)
		case err != nil:
			return Approval{}, fmt.Errorf("approvals: vote %s: %w: %w", id, ErrUnavailable, err)
		}
		s.log.Info("approval vote", "approval_id", id, "approver", cmp.Or(voter.Email, voter.Subject), "approve", approve, "state", updated.State)
		if updated.State != StatePending {
			s.hooks.enqueue(string(updated.State), updated, s.ApproveURL(id))
		}
		if s.opts.OnVote != nil {
			s.opts.OnVote(ctx, updated, v)
		}
		return updated, nil
	}
	return Approval{}, fmt.Errorf("approvals: vote %s: %w: too many concurrent votes; retry", id, ErrUnavailable)
}

// mayVote is every rule a vote must pass, in the order Vote reports them:
// the approval is pending, the voter is not the requester, votes with
// their own token (unless delegated votes are allowed), is one of the
// rule's approvers, and has not voted yet.
func (s *Service) mayVote(a Approval, voter identity.Identity, now time.Time) error {
	switch a.Effective(now) {
	case StatePending:
	case StateExpired:
		if a.State == StatePending {
			return fmt.Errorf("%w at %s", ErrExpired, a.ExpiresAt.UTC().Format(time.RFC3339))
		}
		return fmt.Errorf("%w: %s", ErrDecided, a.State)
	default:
		return fmt.Errorf("%w: %s", ErrDecided, a.State)
	}
	if voter.Subject == "" {
		return fmt.Errorf("%w: voter has no subject", ErrNotApprover)
	}
	if isRequester(a.Request, voter) {
		return ErrSelfApproval
	}
	if voter.Actor != "" {
		if voter.Actor == a.Request.Subject || voter.Actor == a.Request.Actor {
			return fmt.Errorf("%w (this token acts for the requester)", ErrDelegated)
		}
		if !s.opts.AllowDelegatedVotes {
			return ErrDelegated
		}
	}
	if !IsApprover(a.Request.Approvers, voter) {
		return fmt.Errorf("%w (approvers: %s)", ErrNotApprover, strings.Join(a.Request.Approvers, ", "))
	}
	for _, v := range a.Votes {
		if v.Approver == voter.Subject {
			return fmt.Errorf("%w: you already voted", ErrDecided)
		}
	}
	return nil
}

// ViewerOf says what voter may do with a, by the rules Vote applies.
func (s *Service) ViewerOf(a Approval, voter identity.Identity) Viewer {
	v := Viewer{IsRequester: voter.Subject != "" && isRequester(a.Request, voter)}
	for _, x := range a.Votes {
		v.Voted = v.Voted || (voter.Subject != "" && x.Approver == voter.Subject)
	}
	if err := s.mayVote(a, voter, s.now()); err != nil {
		v.WhyNot = err.Error()
	} else {
		v.CanVote = true
	}
	return v
}

func hasVote(votes []Vote, v Vote) bool {
	for _, x := range votes {
		if x.Approver == v.Approver && x.Approve == v.Approve && x.At.Equal(v.At) {
			return true
		}
	}
	return false
}

func approvals(votes []Vote) int {
	n := 0
	for _, v := range votes {
		if v.Approve {
			n++
		}
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// isRequester is broad, since refusing too much is safe here: the same
// subject (of any issuer), the same e-mail (verified or not, any case), or
// the agent that acted for the requester.
func isRequester(r Request, voter identity.Identity) bool {
	if voter.Subject == r.Subject || (r.Actor != "" && voter.Subject == r.Actor) {
		return true
	}
	return r.Email != "" && strings.EqualFold(r.Email, voter.Email)
}

// IsApprover reports whether id matches one of approvers: group:NAME matches
// NAME in id.Groups; user:EMAIL matches id.Email, case-insensitive, only
// when the issuer vouches for it (id.EmailVerified), and never the subject.
func IsApprover(approvers []string, id identity.Identity) bool {
	for _, a := range approvers {
		if g, ok := strings.CutPrefix(a, "group:"); ok && g != "" {
			for _, have := range id.Groups {
				if have == g {
					return true
				}
			}
		}
		if u, ok := strings.CutPrefix(a, "user:"); ok && u != "" {
			if id.EmailVerified && id.Email != "" && strings.EqualFold(u, id.Email) {
				return true
			}
		}
	}
	return false
}

// Get returns the approval with this id (state as stored).
func (s *Service) Get(ctx context.Context, id string) (Approval, error) {
	if !ValidID(id) {
		return Approval{}, fmt.Errorf("approvals: get: %w: malformed approval id %q", ErrInvalid, truncate(id, 40))
	}
	a, err := s.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Approval{}, fmt.Errorf("approvals: get %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Approval{}, fmt.Errorf("approvals: get %s: %w: %w", id, ErrUnavailable, err)
	}
	a.State = a.Effective(s.now())
	return a, nil
}

// Healthy reports whether the store answers.
func (s *Service) Healthy(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return fmt.Errorf("approvals: store: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// WebhookDrops counts notifications dropped because the queue was full or
// every retry failed.
func (s *Service) WebhookDrops() int64 { return s.hooks.drops.Load() }

// Close stops the decision feed and the webhook workers (waiting briefly
// for queued notifications) and closes the store.
func (s *Service) Close() error {
	s.cancel()
	<-s.done
	s.hooks.close()
	return s.store.Close()
}
