package recorder

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/airlockhq/airlock/handoff"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrInvalidSession is returned (wrapped) by Session for a session name the
// agent sent that handoff.ValidSessionName refuses.
var ErrInvalidSession = errors.New("recorder: invalid session name")

// Tracker resolves the session of a request. Implementations must agree
// across replicas when several run.
type Tracker interface {
	// Current returns the subject's session, starting a new one with id
	// fresh() when there is none or the last request is older than gap
	// (fresh is called only then where the implementation can tell).
	Current(ctx context.Context, subject string, fresh func() string, gap time.Duration) (string, error)
}

// subjectTag scopes names to a subject: 12 hex digits of SHA-256(subject).
func subjectTag(subject string) string {
	sum := sha256.Sum256([]byte("airlock-subject\n" + subject))
	return hex.EncodeToString(sum[:6])
}

// NamedSession returns the stored id of the session an agent named with
// the x-airlock-session header: the name scoped to its subject
// ("NAME~TAG"), so that one identity can never write into another's
// session.
func NamedSession(subject, name string) (string, error) {
	if !handoff.ValidSessionName(name) {
		return "", fmt.Errorf("%w %q: use 1 to 64 characters among A-Z a-z 0-9 . _ -, starting with a letter or digit", ErrInvalidSession, name)
	}
	return name + "~" + subjectTag(subject), nil
}

// newSessionID is a fresh, time-ordered session id.
func newSessionID(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "s-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// MemoryTracker keeps sessions in process memory: for a single replica.
type MemoryTracker struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]memSession
	ops int
}

type memSession struct {
	id   string
	last time.Time
}

var _ Tracker = (*MemoryTracker)(nil)

// NewMemoryTracker returns an in-memory tracker; now may be nil.
func NewMemoryTracker(now func() time.Time) *MemoryTracker {
	if now == nil {
		now = time.Now
	}
	return &MemoryTracker{now: now, m: map[string]memSession{}}
}

// Current implements Tracker.
func (t *MemoryTracker) Current(ctx context.Context, subject string, fresh func() string, gap time.Duration) (string, error) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ops++
	if t.ops%4096 == 0 {
		for k, s := range t.m {
			if now.Sub(s.last) > gap {
				delete(t.m, k)
			}
		}
	}
	s, ok := t.m[subject]
	if !ok || now.Sub(s.last) > gap {
		s.id = fresh()
	}
	s.last = now
	t.m[subject] = s
	return s.id, nil
}

// RedisTracker keeps sessions in Redis so that every replica agrees. One
// request costs one round trip (a script: read or start, and extend).
type RedisTracker struct {
	client redis.UniversalClient
	prefix string
}

var _ Tracker = (*RedisTracker)(nil)

// NewRedisTracker uses client; keys are "airlock:session:" + SHA-256 of the
// subject.
func NewRedisTracker(client redis.UniversalClient) *RedisTracker {
	return &RedisTracker{client: client, prefix: "airlock:session:"}
}

var currentScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  v = ARGV[1]
end
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
return v
`)

// Current implements Tracker.
func (t *RedisTracker) Current(ctx context.Context, subject string, fresh func() string, gap time.Duration) (string, error) {
	sum := sha256.Sum256([]byte(subject))
	key := t.prefix + hex.EncodeToString(sum[:])
	v, err := currentScript.Run(ctx, t.client, []string{key}, fresh(), gap.Milliseconds()).Text()
	if err != nil {
		return "", fmt.Errorf("recorder: session of %s: %w", subjectTag(subject), err)
	}
	return v, nil
}
