package approvals

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// MemoryStore keeps approvals in process memory: for a single replica.
type MemoryStore struct {
	mu        sync.Mutex
	byID      map[string]*memRecord
	byFP      map[string]string
	pending   map[string]map[string]time.Time // requester key -> pending id -> expiry
	subs      map[chan string]struct{}
	closed    bool
	lastSweep time.Time
}

type memRecord struct {
	a         Approval
	claimedBy string
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{byID: map[string]*memRecord{}, byFP: map[string]string{}, pending: map[string]map[string]time.Time{}, subs: map[chan string]struct{}{}}
}

func (m *MemoryStore) sweepLocked(now time.Time) {
	if now.Sub(m.lastSweep) < time.Minute {
		return
	}
	m.lastSweep = now
	for id, r := range m.byID {
		end := r.a.ExpiresAt
		if r.a.GrantExpiresAt.After(end) {
			end = r.a.GrantExpiresAt
		}
		if now.After(end.Add(retention)) {
			delete(m.byID, id)
			if m.byFP[r.a.Request.Fingerprint] == id {
				delete(m.byFP, r.a.Request.Fingerprint)
			}
		}
	}
	for rk, q := range m.pending {
		for id, exp := range q {
			if !now.Before(exp) {
				delete(q, id)
			}
		}
		if len(q) == 0 {
			delete(m.pending, rk)
		}
	}
}

// Gate implements Store.
func (m *MemoryStore) Gate(ctx context.Context, fp string, fresh Approval, claimID string, maxPending int, now time.Time) (GateResult, error) {
	if err := ctx.Err(); err != nil {
		return GateResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return GateResult{}, fmt.Errorf("memory store closed")
	}
	m.sweepLocked(now)
	if id, ok := m.byFP[fp]; ok {
		if r, ok := m.byID[id]; ok && now.Before(r.a.ExpiresAt) {
			switch r.a.State {
			case StatePending, StateDenied:
				return GateResult{Approval: r.a}, nil
			case StateApproved:
				switch {
				case r.a.Request.Grant == GrantWindow:
					if r.a.ClaimedAt.IsZero() {
						r.a.ClaimedAt = now
					}
					r.a.Uses++
					return GateResult{Approval: r.a, Granted: true}, nil
				case r.claimedBy == "":
					r.claimedBy, r.a.ClaimedAt, r.a.Uses = claimID, now, 1
					return GateResult{Approval: r.a, Granted: true}, nil
				case claimID != "" && r.claimedBy == claimID:
					return GateResult{Approval: r.a, Granted: true}, nil
				}
			}
		}
	}
	rk := requesterKey(fresh.Request)
	queue := m.pending[rk]
	for id, exp := range queue {
		if !now.Before(exp) {
			delete(queue, id)
		}
	}
	if maxPending > 0 && len(queue) >= maxPending {
		return GateResult{QueueFull: true}, nil
	}
	if queue == nil {
		queue = map[string]time.Time{}
		m.pending[rk] = queue
	}
	fresh.State, fresh.Version = StatePending, 1
	m.byID[fresh.ID] = &memRecord{a: fresh}
	m.byFP[fp] = fresh.ID
	queue[fresh.ID] = fresh.ExpiresAt
	return GateResult{Approval: fresh, Created: true}, nil
}

// Release implements Store.
func (m *MemoryStore) Release(ctx context.Context, id, claimID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.byID[id]
	if !ok || claimID == "" || r.claimedBy != claimID || r.a.Request.Grant != GrantOnce {
		return false, nil
	}
	r.claimedBy, r.a.ClaimedAt, r.a.Uses = "", time.Time{}, 0
	return true, nil
}

// Get implements Store.
func (m *MemoryStore) Get(ctx context.Context, id string) (Approval, error) {
	if err := ctx.Err(); err != nil {
		return Approval{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.byID[id]
	if !ok {
		return Approval{}, ErrNotFound
	}
	return r.a, nil
}

// Update implements Store.
func (m *MemoryStore) Update(ctx context.Context, a Approval, now time.Time) (Approval, error) {
	if err := ctx.Err(); err != nil {
		return Approval{}, err
	}
	m.mu.Lock()
	r, ok := m.byID[a.ID]
	if !ok {
		m.mu.Unlock()
		return Approval{}, ErrNotFound
	}
	if r.a.Version != a.Version {
		m.mu.Unlock()
		return Approval{}, ErrConflict
	}
	if !now.Before(r.a.ExpiresAt) {
		m.mu.Unlock()
		return Approval{}, ErrExpired
	}
	a.Version++
	a.ClaimedAt, a.Uses = r.a.ClaimedAt, r.a.Uses
	r.a = a
	if a.State != StatePending {
		rk := requesterKey(a.Request)
		delete(m.pending[rk], a.ID)
		if len(m.pending[rk]) == 0 {
			delete(m.pending, rk)
		}
		fp := a.Request.Fingerprint
		if cur, ok := m.byFP[fp]; !ok || cur == a.ID {
			m.byFP[fp] = a.ID
		}
		for c := range m.subs {
			select {
			case c <- a.ID:
			default:
			}
		}
	}
	m.mu.Unlock()
	return a, nil
}

// List implements Store.
func (m *MemoryStore) List(ctx context.Context, after Cursor, limit int) (Page, error) {
	if err := ctx.Err(); err != nil {
		return Page{}, err
	}
	m.mu.Lock()
	out := make([]Approval, 0, len(m.byID))
	for _, r := range m.byID {
		if after.IsZero() || after.before(cursorOf(r.a)) {
			out = append(out, r.a)
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return cursorOf(out[i]).before(cursorOf(out[j])) })
	p := Page{Next: after}
	if limit > 0 && len(out) > limit {
		out, p.More = out[:limit], true
	}
	p.Approvals = out
	if len(out) > 0 {
		p.Next = cursorOf(out[len(out)-1])
	}
	return p, nil
}

// Subscribe implements Store.
func (m *MemoryStore) Subscribe(ctx context.Context) (<-chan string, error) {
	c := make(chan string, 64)
	m.mu.Lock()
	m.subs[c] = struct{}{}
	m.mu.Unlock()
	go func() {
		<-ctx.Done()
		m.mu.Lock()
		delete(m.subs, c)
		close(c)
		m.mu.Unlock()
	}()
	return c, nil
}

// Ping implements Store.
func (m *MemoryStore) Ping(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("memory store closed")
	}
	return ctx.Err()
}

// Close implements Store.
func (m *MemoryStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
