package approvals

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// GateResult is what Store.Gate found or did.
type GateResult struct {
	// Approval is the live approval for the fingerprint (with ClaimedAt and
	// Uses as of this call).
	Approval Approval
	// Granted: the approval was approved and this call claimed its grant.
	Granted bool
	// Created: no approval was live, so the fresh one was stored as pending.
	Created bool
}

// Store keeps approvals. Every method is safe for concurrent use by several
// replicas sharing the store. Failures other than the typed errors mean the
// store is unavailable.
type Store interface {
	// Gate does, in one atomic step, for the live approval of fp: claims
	// its grant if approved (once: only the first caller, or a caller
	// repeating claimID; window: every caller until the grant expires),
	// returns it if pending or denied, or, when none is live, stores fresh
	// (state pending) and returns it with Created set.
	Gate(ctx context.Context, fp string, fresh Approval, claimID string, now time.Time) (GateResult, error)
	// Get returns the approval with this id, or ErrNotFound.
	Get(ctx context.Context, id string) (Approval, error)
	// Update stores a if the stored version equals a.Version, bumping it;
	// it returns ErrConflict when another writer came first, ErrExpired when
	// the stored approval is no longer live and ErrNotFound when it is gone.
	// A decided approval (approved or denied) becomes the live approval of
	// its fingerprint until a.ExpiresAt, and Subscribe reports its id.
	Update(ctx context.Context, a Approval, now time.Time) (Approval, error)
	// List returns the recent approvals, newest first.
	List(ctx context.Context, now time.Time) ([]Approval, error)
	// Subscribe delivers the id of every approval decided by any replica
	// until ctx ends. Delivery is best effort: a waiter re-checks the store.
	Subscribe(ctx context.Context) (<-chan string, error)
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// retention is how long a record stays readable after its state ended.
const retention = time.Hour

// listLimit bounds List.
const listLimit = 500

// OpenStore opens the store named by spec: "memory", or a redis://,
// rediss://, redis-sentinel:// or redis-cluster:// URL (see NewRedisStore).
func OpenStore(ctx context.Context, spec string) (Store, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "" || spec == "memory":
		return NewMemoryStore(), nil
	case strings.Contains(spec, "://"):
		s, err := NewRedisStore(ctx, spec)
		if err != nil {
			return nil, err
		}
		return s, nil
	default:
		return nil, fmt.Errorf("approvals: store %q: want \"memory\" or a redis://, rediss://, redis-sentinel:// or redis-cluster:// URL", spec)
	}
}
