package resources

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// localCache is a bounded LRU of looked-up answers with per-entry expiry.
type localCache struct {
	mu    sync.Mutex
	max   int
	items map[string]*list.Element
	order *list.List // front: most recently used
}

type cacheEntry struct {
	key     string
	val     any // the answer, decoded (nil when not found)
	found   bool
	expires time.Time
}

func newLocalCache(max int) *localCache {
	return &localCache{max: max, items: map[string]*list.Element{}, order: list.New()}
}

func (c *localCache) get(key string, now time.Time) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return cacheEntry{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		return cacheEntry{}, false
	}
	c.order.MoveToFront(el)
	return *e, true
}

func (c *localCache) put(e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[e.key]; ok {
		*el.Value.(*cacheEntry) = e
		c.order.MoveToFront(el)
		return
	}
	c.items[e.key] = c.order.PushFront(&e)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

// sharedValue is an answer as stored in Redis.
type sharedValue struct {
	Found bool            `json:"found"`
	Val   json.RawMessage `json:"val,omitempty"`
}

// redisPrefix namespaces the shared cache; the version changes with the
// stored shape.
const redisPrefix = "airlock:resource:v1:"

// lockTTL bounds how long one replica holds the right to fetch a resource
// for the others.
const lockTTL = 5 * time.Second

// waitPoll is how often a replica that lost the fetch lock looks for the
// winner's answer.
const waitPoll = 25 * time.Millisecond

// tiers is the cache in front of one upstream: process memory, then Redis,
// then one fetch for every concurrent caller.
type tiers struct {
	local  *localCache
	redis  redis.UniversalClient
	flight singleflight.Group
	now    func() time.Time
	// ttl returns the time to live of a kind's answers; negative is the
	// time to live of "not found".
	ttl      func(kind string) time.Duration
	negative time.Duration
	onFetch  func(kind string)
}

// errNotShared reports that Redis had no answer (or failed): fetch.
var errNotShared = errors.New("not in the shared cache")

// decodeFunc decodes an answer read from Redis into the type fetch returns.
type decodeFunc func([]byte) (any, error)

// get returns the answer for kind/id, fetching it at most once per process
// (and, with Redis, once across replicas) when no fresh answer is cached.
func (t *tiers) get(ctx context.Context, kind, id string, fetch func(context.Context) (any, bool, error), decode decodeFunc) (any, bool, error) {
	key := kind + ":" + id
	if e, ok := t.local.get(key, t.now()); ok {
		return e.val, e.found, nil
	}
	v, err, _ := t.flight.Do(key, func() (any, error) {
		// The context of the first caller bounds the fetch; the others
		// wait for it (each returns when its own context ends).
		if e, ok := t.local.get(key, t.now()); ok {
			return e, nil
		}
		if e, err := t.shared(ctx, key, decode); err == nil {
			t.local.put(e)
			return e, nil
		}
		e, err := t.fetchShared(ctx, kind, key, fetch, decode)
		if err != nil {
			return nil, err
		}
		t.local.put(e)
		return e, nil
	})
	if err != nil {
		return nil, false, err
	}
	e := v.(cacheEntry)
	return e.val, e.found, nil
}

// shared reads key from Redis.
func (t *tiers) shared(ctx context.Context, key string, decode decodeFunc) (cacheEntry, error) {
	if t.redis == nil {
		return cacheEntry{}, errNotShared
	}
	raw, err := t.redis.Get(ctx, redisPrefix+key).Bytes()
	if err != nil {
		return cacheEntry{}, errNotShared
	}
	var sv sharedValue
	if json.Unmarshal(raw, &sv) != nil {
		return cacheEntry{}, errNotShared
	}
	pttl, err := t.redis.PTTL(ctx, redisPrefix+key).Result()
	if err != nil || pttl <= 0 {
		return cacheEntry{}, errNotShared
	}
	e := cacheEntry{key: key, found: sv.Found, expires: t.now().Add(pttl)}
	if sv.Found {
		if e.val, err = decode(sv.Val); err != nil {
			return cacheEntry{}, errNotShared
		}
	}
	return e, nil
}

// fetchShared fetches the answer, taking the Redis fetch lock when Redis
// is configured so that one replica calls Google while the others wait
// for its answer (for at most lockTTL, then they fetch themselves). A
// Redis that fails is skipped: lookups then go to Google directly.
func (t *tiers) fetchShared(ctx context.Context, kind, key string, fetch func(context.Context) (any, bool, error), decode decodeFunc) (cacheEntry, error) {
	if t.redis != nil {
		got, err := t.redis.SetNX(ctx, redisPrefix+"lock:"+key, "1", lockTTL).Result()
		if err == nil && !got {
			deadline := t.now().Add(lockTTL)
			timer := time.NewTicker(waitPoll)
			defer timer.Stop()
			for t.now().Before(deadline) {
				select {
				case <-ctx.Done():
					return cacheEntry{}, ctx.Err()
				case <-timer.C:
				}
				if e, err := t.shared(ctx, key, decode); err == nil {
					return e, nil
				}
			}
		}
	}
	if t.onFetch != nil {
		t.onFetch(kind)
	}
	val, found, err := fetch(ctx)
	if err != nil {
		if t.redis != nil {
			t.redis.Del(context.WithoutCancel(ctx), redisPrefix+"lock:"+key)
		}
		return cacheEntry{}, err
	}
	ttl := t.ttl(kind)
	if !found {
		ttl = t.negative
	}
	e := cacheEntry{key: key, found: found, expires: t.now().Add(ttl)}
	if found {
		e.val = val
	}
	if t.redis != nil {
		var raw []byte
		if found {
			if raw, err = json.Marshal(val); err != nil {
				return cacheEntry{}, err
			}
		}
		if b, err := json.Marshal(sharedValue{Found: found, Val: raw}); err == nil {
			wctx := context.WithoutCancel(ctx)
			t.redis.Set(wctx, redisPrefix+key, b, ttl)
			t.redis.Del(wctx, redisPrefix+"lock:"+key)
		}
	}
	return e, nil
}

// alias stores a found answer under a second id of the same resource (a
// project's number beside its id) for the kind's TTL, unless one is cached.
func (t *tiers) alias(ctx context.Context, kind, id string, val any) {
	key := kind + ":" + id
	now := t.now()
	if _, ok := t.local.get(key, now); ok {
		return
	}
	ttl := t.ttl(kind)
	t.local.put(cacheEntry{key: key, val: val, found: true, expires: now.Add(ttl)})
	if t.redis != nil {
		raw, err := json.Marshal(val)
		if err != nil {
			return
		}
		if b, err := json.Marshal(sharedValue{Found: true, Val: raw}); err == nil {
			t.redis.Set(context.WithoutCancel(ctx), redisPrefix+key, b, ttl)
		}
	}
}

// decodeAs returns the decodeFunc of answers of type T.
func decodeAs[T any]() decodeFunc {
	return func(b []byte) (any, error) {
		var v T
		err := json.Unmarshal(b, &v)
		return v, err
	}
}
