package approvals

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// NewRedisClient builds the Redis client that approvals.store names, in
// any of the forms NewRedisStore accepts (redis://, rediss://,
// redis-sentinel://, redis-cluster://), so that other concerns (the
// recorder's session tracker) share the approvals' connections. Like
// NewRedisStore it does not contact Redis.
func NewRedisClient(rawURL string) (redis.UniversalClient, error) {
	s, err := NewRedisStore(context.Background(), rawURL)
	if err != nil {
		return nil, err
	}
	return s.rdb, nil
}

// NewRedisStoreWithClient keeps approvals in Redis through rdb (from
// NewRedisClient). Closing the store closes rdb.
func NewRedisStoreWithClient(rdb redis.UniversalClient) *RedisStore {
	return &RedisStore{rdb: rdb}
}
