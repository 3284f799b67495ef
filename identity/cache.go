package identity

import (
	"crypto/sha256"
	"sync"
	"time"
	"unsafe"
)

const cacheShards = 16

// tokenCache keeps verified identities keyed by the SHA-256 of the raw token
// (the token itself is never stored) until the token expires. It is bounded:
// a full shard drops expired entries first, then arbitrary ones.
type tokenCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu  sync.RWMutex
	m   map[[32]byte]*cacheEntry
	max int
}

type cacheEntry struct {
	id  Identity
	exp int64 // unix nanoseconds; the entry is dead from this instant on
}

// newTokenCache returns a cache holding about size entries, or nil when size
// is not positive (no caching).
func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	per := size / cacheShards
	if per < 1 {
		per = 1
	}
	c := &tokenCache{}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]*cacheEntry, min(per, 1024))
		c.shards[i].max = per
	}
	return c
}

// tokenKey hashes the raw token without copying it.
func tokenKey(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

func (c *tokenCache) get(key [32]byte, now time.Time) (Identity, bool) {
	s := &c.shards[key[0]%cacheShards]
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	if e == nil || now.UnixNano() >= e.exp {
		return Identity{}, false
	}
	return e.id, true
}

func (c *tokenCache) put(key [32]byte, id Identity, now time.Time) {
	exp := id.Expiry.UnixNano()
	nowNs := now.UnixNano()
	if exp <= nowNs {
		return
	}
	s := &c.shards[key[0]%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok && len(s.m) >= s.max {
		for k, e := range s.m {
			if nowNs >= e.exp {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) < s.max {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[key] = &cacheEntry{id: id, exp: exp}
}

func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
