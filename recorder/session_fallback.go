package recorder

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// FallbackTracker tracks sessions in a shared Tracker (Redis, so that every
// replica agrees) and, while that one fails, on this replica alone, so that
// a Redis outage never stops a request that does not need Redis. A session
// started or continued that way is local: Local reports it, and the
// recorder marks each of its events (Event.LocalSession), so an auditor
// knows that another replica may have recorded the same subject's requests
// of that time under another session.
//
// After a failure the shared tracker is left alone for a backoff (RetryMin,
// doubling up to RetryMax); then one request at a time tries it again, and
// the first success returns every request to it. No restart is needed.
type FallbackTracker struct {
	shared Tracker
	opts   FallbackOptions

	mu       sync.Mutex
	subjects map[string]memSession // subject -> its local session
	localIDs map[string]time.Time  // local session id -> last use
	gap      time.Duration         // the idle gap of the last call
	ops      int
	pruned   time.Time
	down     bool
	since    time.Time // when the shared tracker last started failing
	retryAt  time.Time
	backoff  time.Duration
	probing  bool
	lastErr  error
	nLocal   atomic.Int64 // len(localIDs), read without the lock
}

// FallbackOptions tune a FallbackTracker. Zero values take the defaults.
type FallbackOptions struct {
	// Timeout bounds one call to the shared tracker, leaving the rest of the
	// request's deadline to the fallback and the decision. Default 300ms.
	Timeout time.Duration
	// RetryMin and RetryMax bound the backoff before the shared tracker is
	// tried again after a failure. Defaults 1s and 30s.
	RetryMin, RetryMax time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the transitions (down, back); nil discards.
	Logger *slog.Logger
}

var (
	_ Tracker      = (*FallbackTracker)(nil)
	_ localTracker = (*FallbackTracker)(nil)
)

// localTracker is a Tracker that can tell the sessions it tracked on this
// replica alone; the recorder marks their events.
type localTracker interface {
	Local(session string) bool
}

// NewFallbackTracker wraps shared.
func NewFallbackTracker(shared Tracker, opts FallbackOptions) *FallbackTracker {
	if opts.Timeout <= 0 {
		opts.Timeout = 300 * time.Millisecond
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(30*time.Second, opts.RetryMin)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &FallbackTracker{shared: shared, opts: opts, subjects: map[string]memSession{}, localIDs: map[string]time.Time{}}
}

// Current implements Tracker. It never fails: when the shared tracker
// does, the session is tracked locally.
func (t *FallbackTracker) Current(ctx context.Context, subject string, fresh func() string, gap time.Duration) (string, error) {
	if use, probe := t.tryShared(); use {
		sctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
		id, err := t.shared.Current(sctx, subject, fresh, gap)
		cancel()
		switch {
		case err == nil:
			t.sharedUp()
			return id, nil
		case ctx.Err() != nil:
			// The caller gave up (Envoy's deadline): no verdict on the
			// shared tracker.
			t.probeDone(probe)
		default:
			t.sharedDown(err, probe)
		}
	}
	return t.currentLocal(subject, fresh, gap), nil
}

// tryShared says whether this call goes to the shared tracker (always
// while it works; after a failure, one call at a time once the backoff is
// over) and whether it is that one call, the probe.
func (t *FallbackTracker) tryShared() (use, probe bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.down {
		return true, false
	}
	if t.probing || t.opts.Now().Before(t.retryAt) {
		return false, false
	}
	t.probing = true
	return true, true
}

func (t *FallbackTracker) sharedUp() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.down {
		return
	}
	t.down, t.backoff, t.lastErr, t.probing = false, 0, nil, false
	t.opts.Logger.Info("session tracking is shared again: every replica agrees on sessions",
		"local_since", t.since.UTC().Format(time.RFC3339), "local_sessions", len(t.localIDs))
}

func (t *FallbackTracker) probeDone(probe bool) {
	if !probe {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probing = false
}

// sharedDown records a failure. The first one starts the backoff; only a
// failed probe doubles it (calls already under way when the shared tracker
// went down fail too, and must not).
func (t *FallbackTracker) sharedDown(err error, probe bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	t.lastErr = err
	switch {
	case !t.down:
		t.down, t.since, t.backoff = true, now, t.opts.RetryMin
		t.opts.Logger.Warn("session tracking falls back to this replica alone; its events are marked local_session until the shared store is back",
			"err", err, "retry_in", t.backoff)
	case probe:
		t.probing = false
		t.backoff = min(2*t.backoff, t.opts.RetryMax)
		t.opts.Logger.Debug("the shared session store still fails", "err", err, "retry_in", t.backoff)
	default:
		return
	}
	t.retryAt = now.Add(t.backoff)
}

// currentLocal is MemoryTracker's rule on this replica's map, recording the
// ids it hands out as local.
func (t *FallbackTracker) currentLocal(subject string, fresh func() string, gap time.Duration) string {
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gap = gap
	t.ops++
	if t.ops%4096 == 0 {
		t.pruneLocked(now)
	}
	s, ok := t.subjects[subject]
	if !ok || now.Sub(s.last) > gap {
		s.id = fresh()
	}
	s.last = now
	t.subjects[subject] = s
	t.localIDs[s.id] = now
	t.nLocal.Store(int64(len(t.localIDs)))
	return s.id
}

// Local reports whether session was tracked on this replica alone. It
// costs one atomic load while no session is local.
func (t *FallbackTracker) Local(session string) bool {
	if t.nLocal.Load() == 0 {
		return false
	}
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.pruned) > t.gap {
		t.pruneLocked(now)
	}
	_, ok := t.localIDs[session]
	return ok
}

// pruneLocked forgets local sessions idle for two gaps: long enough for the
// last response events of their requests to be marked.
func (t *FallbackTracker) pruneLocked(now time.Time) {
	t.pruned = now
	keep := 2 * t.gap
	for id, last := range t.localIDs {
		if now.Sub(last) > keep {
			delete(t.localIDs, id)
		}
	}
	for subj, s := range t.subjects {
		if now.Sub(s.last) > keep {
			delete(t.subjects, subj)
		}
	}
	t.nLocal.Store(int64(len(t.localIDs)))
}

// FallbackStatus is what a FallbackTracker reports for health.
type FallbackStatus struct {
	// Down is true while sessions are tracked locally.
	Down bool
	// Since is when the shared tracker started failing.
	Since time.Time
	// Err is the shared tracker's last error.
	Err error
	// LocalSessions counts the local sessions remembered.
	LocalSessions int
}

// Status reports whether the shared tracker is in use.
func (t *FallbackTracker) Status() FallbackStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return FallbackStatus{Down: t.down, Since: t.since, Err: t.lastErr, LocalSessions: len(t.localIDs)}
}
