package console

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotFound: the store holds no live value under the key.
var ErrNotFound = errors.New("console: not found")

// Store keeps the console's server-side state, sign-ins and sign-ins in
// progress, under keys that are hashes of what the browser holds. Every
// method is safe for concurrent use; with Redis, every replica serves
// every person.
type Store interface {
	// Put stores v under key for ttl.
	Put(ctx context.Context, key string, v []byte, ttl time.Duration) error
	// Get returns the live value under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Take returns the live value under key and deletes it in one step, or
	// ErrNotFound: only one caller ever takes a value.
	Take(ctx context.Context, key string) ([]byte, error)
	// Delete removes key.
	Delete(ctx context.Context, key string) error
}

var (
	_ Store = (*MemoryStore)(nil)
	_ Store = (*RedisStore)(nil)
)

// MemoryStore is a Store in this process, for a single replica. It holds
// at most Max values; beyond, expired ones are dropped and then the
// oldest-expiring one.
type MemoryStore struct {
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[string]memEntry
}

type memEntry struct {
	v       []byte
	expires time.Time
}

// NewMemoryStore returns a store holding at most max values (default 100000).
func NewMemoryStore(max int) *MemoryStore {
	if max <= 0 {
		max = 100000
	}
	return &MemoryStore{max: max, now: time.Now, m: map[string]memEntry{}}
}

// Put implements Store.
func (s *MemoryStore) Put(_ context.Context, key string, v []byte, ttl time.Duration) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok && len(s.m) >= s.max {
		var oldest string
		var at time.Time
		for k, e := range s.m {
			if !now.Before(e.expires) {
				delete(s.m, k)
				continue
			}
			if oldest == "" || e.expires.Before(at) {
				oldest, at = k, e.expires
			}
		}
		if len(s.m) >= s.max {
			delete(s.m, oldest)
		}
	}
	s.m[key] = memEntry{v: append([]byte(nil), v...), expires: now.Add(ttl)}
	return nil
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok || !s.now().Before(e.expires) {
		delete(s.m, key)
		return nil, ErrNotFound
	}
	return append([]byte(nil), e.v...), nil
}

// Take implements Store.
func (s *MemoryStore) Take(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	delete(s.m, key)
	if !ok || !s.now().Before(e.expires) {
		return nil, ErrNotFound
	}
	return e.v, nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// RedisStore is a Store in Redis (the client of approvals.store), shared by
// every replica. Keys live under "airlock:console:".
type RedisStore struct {
	rdb redis.UniversalClient
}

// NewRedisStore keeps the console's state in rdb.
func NewRedisStore(rdb redis.UniversalClient) *RedisStore { return &RedisStore{rdb: rdb} }

const redisPrefix = "airlock:console:"

// Put implements Store.
func (s *RedisStore) Put(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, redisPrefix+key, v, ttl).Err(); err != nil {
		return fmt.Errorf("console: store: %w", err)
	}
	return nil
}

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, redisPrefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("console: store: %w", err)
	}
	return b, nil
}

// Take implements Store with GETDEL: one atomic step.
func (s *RedisStore) Take(ctx context.Context, key string) ([]byte, error) {
	b, err := s.rdb.GetDel(ctx, redisPrefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("console: store: %w", err)
	}
	return b, nil
}

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, redisPrefix+key).Err(); err != nil {
		return fmt.Errorf("console: store: %w", err)
	}
	return nil
}
