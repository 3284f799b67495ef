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
	return &MemoryStore{byID: map[string]*memRecord{}, byFP: map[string]string{}, subs: map[chan string]struct{}{}}
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
}

// Gate implements Store.
func (m *MemoryStore) Gate(ctx context.Context, fp string, fresh Approval, claimID string, now time.Time) (GateResult, error) {
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
	fresh.State, fresh.Version = StatePending, 1
	m.byID[fresh.ID] = &memRecord{a: fresh}
	m.byFP[fp] = fresh.ID
	return GateResult{Approval: fresh, Created: true}, nil
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
func (m *MemoryStore) List(ctx context.Context, now time.Time) ([]Approval, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	out := make([]Approval, 0, len(m.byID))
	for _, r := range m.byID {
		out = append(out, r.a)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > listLimit {
		out = out[:listLimit]
	}
	return out, nil
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
