package approvals

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	// QueueFull: no approval was live and the requester already has
	// maxPending pending approvals, so nothing was stored.
	QueueFull bool
}

// Cursor is a position in the list of approvals, which runs newest first by
// creation time (milliseconds), then by id, descending.
type Cursor struct {
	// CreatedMS is the creation time in Unix milliseconds.
	CreatedMS int64
	// ID is the approval id.
	ID string
}

// IsZero reports whether c is the start of the list.
func (c Cursor) IsZero() bool { return c.CreatedMS == 0 && c.ID == "" }

// cursorOf is the position of a.
func cursorOf(a Approval) Cursor { return Cursor{CreatedMS: a.CreatedAt.UnixMilli(), ID: a.ID} }

// before reports whether a comes before b in list order (newest first).
func (c Cursor) before(b Cursor) bool {
	if c.CreatedMS != b.CreatedMS {
		return c.CreatedMS > b.CreatedMS
	}
	return c.ID > b.ID
}

// Page is one stretch of the list of approvals.
type Page struct {
	// Approvals are the approvals found, in list order; an approval that
	// expired out of the store while listed is skipped.
	Approvals []Approval
	// Next is the position of the last entry examined: List(Next, ...)
	// continues after it.
	Next Cursor
	// More is false when the list ended within this page.
	More bool
}

// Store keeps approvals. Every method is safe for concurrent use by several
// replicas sharing the store. Failures other than the typed errors mean the
// store is unavailable.
type Store interface {
	// Gate does, in one atomic step, for the live approval of fp: claims
	// its grant if approved (once: only the first caller, or a caller
	// repeating claimID; window: every caller until the grant expires),
	// returns it if pending or denied, or, when none is live, stores fresh
	// (state pending) and returns it with Created set. With maxPending > 0
	// it stores fresh only while the requester (issuer and subject of
	// fresh.Request) has fewer than maxPending live pending approvals, and
	// otherwise returns QueueFull.
	Gate(ctx context.Context, fp string, fresh Approval, claimID string, maxPending int, now time.Time) (GateResult, error)
	// Release gives back the claim claimID made on the once grant of
	// approval id, so that another request may use it. Only the claimer
	// releases: it returns false when claimID does not hold the claim.
	Release(ctx context.Context, id, claimID string) (bool, error)
	// Get returns the approval with this id, or ErrNotFound.
	Get(ctx context.Context, id string) (Approval, error)
	// Update stores a if the stored version equals a.Version, bumping it;
	// it returns ErrConflict when another writer came first, ErrExpired when
	// the stored approval is no longer live and ErrNotFound when it is gone.
	// A decided approval (approved or denied) becomes the live approval of
	// its fingerprint until a.ExpiresAt, leaves its requester's pending
	// count, and Subscribe reports its id.
	Update(ctx context.Context, a Approval, now time.Time) (Approval, error)
	// List returns up to limit approvals after the position after (the
	// start when zero), in list order.
	List(ctx context.Context, after Cursor, limit int) (Page, error)
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

// requesterKey names the requester whose pending approvals are counted.
func requesterKey(r Request) string {
	h := sha256.Sum256([]byte(r.Issuer + "\x00" + r.Subject))
	return hex.EncodeToString(h[:16])
}

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
