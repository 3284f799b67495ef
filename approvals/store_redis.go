package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis layout. Every key carries the hash tag {approvals} so that the Lua
// scripts, which touch several keys, work on Redis Cluster (all approvals
// live in one slot; approvals are few, so one shard is plenty).
//
//	airlock:{approvals}:fp:<fingerprint>  string: id of the live approval of
//	                                       that fingerprint; expires with it
//	airlock:{approvals}:a:<id>             hash: json (the Approval), state,
//	                                       exp (ms: when the state ends), grant,
//	                                       version, claimed_by, claimed_at (ms),
//	                                       uses; expires one hour after exp
//	airlock:{approvals}:created            zset, all scores 0: members
//	                                       "<created ms, 16 digits>:<id>", so
//	                                       that lexical order is list order
//	airlock:{approvals}:pending:<requester>
//	                                       zset: id of each pending approval of
//	                                       one requester, scored by its expiry
//	                                       (ms); for the per-requester cap
//	airlock:{approvals}:decided            pub/sub channel: id of each decision
//
// Gate is one EVALSHA (gateScript): a claim, a pending lookup or a creation
// each cost one round trip. A vote is a read plus one EVALSHA (updateScript,
// a compare-and-set on version).
const (
	redisPrefix    = "airlock:{approvals}:"
	redisFPPrefix  = redisPrefix + "fp:"
	redisRecPrefix = redisPrefix + "a:"
	redisCreated   = redisPrefix + "created"
	redisPending   = redisPrefix + "pending:"
	redisChannel   = redisPrefix + "decided"
)

// gateScript: KEYS[1] fingerprint key, KEYS[2] created zset, KEYS[3] the
// requester's pending zset.
// ARGV: now ms, record key prefix, fresh id, fresh json, fresh exp ms,
// fresh grant, claim id, retention ms, max pending (0: no cap), created
// member, created cutoff (members before it are dropped).
// Returns {kind, json, claimed_at, uses, version} with kind one of
// pending, denied, granted, created, full.
var gateScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local id = redis.call('GET', KEYS[1])
if id then
  local rk = ARGV[2] .. id
  local h = redis.call('HMGET', rk, 'state', 'exp', 'grant', 'claimed_by', 'json', 'claimed_at', 'uses', 'version')
  local state, exp = h[1], tonumber(h[2])
  if state and exp and exp > now then
    if state == 'pending' or state == 'denied' then
      return {state, h[5], h[6], h[7], h[8]}
    end
    if state == 'approved' then
      if h[3] == 'window' then
        local uses = redis.call('HINCRBY', rk, 'uses', 1)
        local claimed = h[6]
        if not claimed or claimed == '0' then
          claimed = ARGV[1]
          redis.call('HSET', rk, 'claimed_at', claimed)
        end
        return {'granted', h[5], claimed, tostring(uses), h[8]}
      end
      if not h[4] or h[4] == '' then
        redis.call('HSET', rk, 'claimed_by', ARGV[7], 'claimed_at', ARGV[1], 'uses', '1')
        return {'granted', h[5], ARGV[1], '1', h[8]}
      end
      if ARGV[7] ~= '' and h[4] == ARGV[7] then
        return {'granted', h[5], h[6], h[7], h[8]}
      end
    end
  end
end
local maxp = tonumber(ARGV[9])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if maxp > 0 and redis.call('ZCARD', KEYS[3]) >= maxp then
  return {'full', '', '0', '0', '0'}
end
local fexp = tonumber(ARGV[5])
local rk = ARGV[2] .. ARGV[3]
redis.call('HSET', rk, 'json', ARGV[4], 'state', 'pending', 'exp', ARGV[5], 'grant', ARGV[6], 'version', '1', 'claimed_by', '', 'claimed_at', '0', 'uses', '0')
redis.call('PEXPIREAT', rk, fexp + tonumber(ARGV[8]))
redis.call('SET', KEYS[1], ARGV[3], 'PXAT', ARGV[5])
redis.call('ZADD', KEYS[3], fexp, ARGV[3])
if redis.call('PTTL', KEYS[3]) < fexp - now then
  redis.call('PEXPIREAT', KEYS[3], fexp)
end
redis.call('ZADD', KEYS[2], 0, ARGV[10])
redis.call('ZREMRANGEBYLEX', KEYS[2], '-', '(' .. ARGV[11])
return {'created', ARGV[4], '0', '0', '1'}
`)

// updateScript: KEYS[1] record, KEYS[2] fingerprint key, KEYS[3] the
// requester's pending zset.
// ARGV: expected version, json, state, exp ms, id, retention ms, channel, now ms.
// Returns ok, missing, conflict or expired.
var updateScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'version', 'exp')
if not h[1] then return 'missing' end
if h[1] ~= ARGV[1] then return 'conflict' end
if tonumber(h[2]) <= tonumber(ARGV[8]) then return 'expired' end
redis.call('HSET', KEYS[1], 'json', ARGV[2], 'state', ARGV[3], 'exp', ARGV[4], 'version', tostring(tonumber(h[1]) + 1))
redis.call('PEXPIREAT', KEYS[1], tonumber(ARGV[4]) + tonumber(ARGV[6]))
if ARGV[3] ~= 'pending' then
  redis.call('ZREM', KEYS[3], ARGV[5])
  local cur = redis.call('GET', KEYS[2])
  if not cur or cur == ARGV[5] then
    redis.call('SET', KEYS[2], ARGV[5], 'PXAT', ARGV[4])
  end
  redis.call('PUBLISH', ARGV[7], ARGV[5])
end
return 'ok'
`)

// releaseScript: KEYS[1] record. ARGV: claim id.
// Returns 1 when the claim was given back, else 0.
var releaseScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'claimed_by', 'grant')
if not h[1] or ARGV[1] == '' or h[1] ~= ARGV[1] or h[2] ~= 'once' then return 0 end
redis.call('HSET', KEYS[1], 'claimed_by', '', 'claimed_at', '0', 'uses', '0')
return 1
`)

// createdMember is the created zset member of c.
func createdMember(c Cursor) string { return fmt.Sprintf("%016d:%s", c.CreatedMS, c.ID) }

// parseCreatedMember reads a created zset member.
func parseCreatedMember(m string) (Cursor, bool) {
	ms, id, ok := strings.Cut(m, ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return Cursor{}, false
	}
	return Cursor{CreatedMS: n, ID: id}, true
}

// RedisStore keeps approvals in Redis (standalone, Sentinel or Cluster).
type RedisStore struct {
	rdb redis.UniversalClient
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore connects lazily to the Redis named by rawURL:
//
//	redis://[user:pass@]host:port/db        standalone (rediss:// for TLS)
//	redis-sentinel://[user:pass@]host:port?master_name=NAME[&addr=host:port...]
//	                                        Sentinel (rediss-sentinel:// for TLS)
//	redis-cluster://[user:pass@]host:port[?addr=host:port...]
//	                                        Cluster (rediss-cluster:// for TLS)
//
// Query parameters are go-redis options (dial_timeout, read_timeout, ...).
// It does not contact Redis: a Redis that is down at start makes Healthy
// fail, not NewRedisStore.
func NewRedisStore(ctx context.Context, rawURL string) (*RedisStore, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("approvals: store URL: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	base, kind, _ := strings.Cut(scheme, "-")
	if base != "redis" && base != "rediss" {
		kind = "?"
	}
	if u.Host == "" {
		return nil, fmt.Errorf("approvals: store URL %q: missing host:port", redactURL(u))
	}
	u.Scheme = base
	var rdb redis.UniversalClient
	switch kind {
	case "":
		o, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("approvals: store URL %q: %w", redactURL(u), err)
		}
		tuneTimeouts(&o.ContextTimeoutEnabled, &o.MaxRetries)
		rdb = redis.NewClient(o)
	case "sentinel":
		o, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("approvals: store URL %q: %w", redactURL(u), err)
		}
		if o.MasterName == "" {
			return nil, fmt.Errorf("approvals: store URL %q: a Sentinel URL needs ?master_name=NAME", redactURL(u))
		}
		tuneTimeouts(&o.ContextTimeoutEnabled, &o.MaxRetries)
		rdb = redis.NewFailoverClient(o)
	case "cluster":
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("approvals: store URL %q: %w", redactURL(u), err)
		}
		tuneTimeouts(&o.ContextTimeoutEnabled, &o.MaxRetries)
		rdb = redis.NewClusterClient(o)
	default:
		return nil, fmt.Errorf("approvals: store URL %q: unknown scheme %q; want redis, rediss, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster", redactURL(u), scheme)
	}
	return &RedisStore{rdb: rdb}, nil
}

// tuneTimeouts makes commands honour the request's deadline and retry a
// broken connection once (every script is safe to repeat).
func tuneTimeouts(ctxTimeout *bool, retries *int) {
	*ctxTimeout = true
	if *retries == 0 {
		*retries = 1
	}
}

func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	return c.String()
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// decode builds an Approval from its stored json and the dynamic fields.
func decodeRecord(js, claimedAt, uses, version any) (Approval, error) {
	s, _ := js.(string)
	var a Approval
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return Approval{}, fmt.Errorf("decode stored approval: %w", err)
	}
	if c := toInt(claimedAt); c > 0 {
		a.ClaimedAt = time.UnixMilli(c).UTC()
	}
	a.Uses = int(toInt(uses))
	if v := toInt(version); v > 0 {
		a.Version = v
	}
	return a, nil
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	case int64:
		return x
	}
	return 0
}

// Gate implements Store in one round trip.
func (r *RedisStore) Gate(ctx context.Context, fp string, fresh Approval, claimID string, maxPending int, now time.Time) (GateResult, error) {
	fresh.State, fresh.Version = StatePending, 1
	js, err := json.Marshal(fresh)
	if err != nil {
		return GateResult{}, err
	}
	cutoff := fmt.Sprintf("%016d", now.Add(-25*retention).UnixMilli())
	res, err := gateScript.Run(ctx, r.rdb, []string{redisFPPrefix + fp, redisCreated, redisPending + requesterKey(fresh.Request)},
		ms(now), redisRecPrefix, fresh.ID, js, ms(fresh.ExpiresAt), fresh.Request.Grant, claimID,
		strconv.FormatInt(retention.Milliseconds(), 10), strconv.Itoa(max(maxPending, 0)),
		createdMember(cursorOf(fresh)), cutoff).Slice()
	if err != nil {
		return GateResult{}, err
	}
	if len(res) != 5 {
		return GateResult{}, fmt.Errorf("gate script: unexpected reply %v", res)
	}
	if kind, _ := res[0].(string); kind == "full" {
		return GateResult{QueueFull: true}, nil
	}
	a, err := decodeRecord(res[1], res[2], res[3], res[4])
	if err != nil {
		return GateResult{}, err
	}
	kind, _ := res[0].(string)
	return GateResult{Approval: a, Granted: kind == "granted", Created: kind == "created"}, nil
}

// Release implements Store in one round trip.
func (r *RedisStore) Release(ctx context.Context, id, claimID string) (bool, error) {
	n, err := releaseScript.Run(ctx, r.rdb, []string{redisRecPrefix + id}, claimID).Int()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// Get implements Store.
func (r *RedisStore) Get(ctx context.Context, id string) (Approval, error) {
	vals, err := r.rdb.HMGet(ctx, redisRecPrefix+id, "json", "claimed_at", "uses", "version").Result()
	if err != nil {
		return Approval{}, err
	}
	if vals[0] == nil {
		return Approval{}, ErrNotFound
	}
	return decodeRecord(vals[0], vals[1], vals[2], vals[3])
}

// Update implements Store.
func (r *RedisStore) Update(ctx context.Context, a Approval, now time.Time) (Approval, error) {
	prev := a.Version
	a.Version = prev + 1
	js, err := json.Marshal(a)
	if err != nil {
		return Approval{}, err
	}
	res, err := updateScript.Run(ctx, r.rdb, []string{redisRecPrefix + a.ID, redisFPPrefix + a.Request.Fingerprint, redisPending + requesterKey(a.Request)},
		strconv.FormatInt(prev, 10), js, string(a.State), ms(a.ExpiresAt), a.ID,
		strconv.FormatInt(retention.Milliseconds(), 10), redisChannel, ms(now)).Text()
	if err != nil {
		return Approval{}, err
	}
	switch res {
	case "ok":
		return a, nil
	case "missing":
		return Approval{}, ErrNotFound
	case "conflict":
		return Approval{}, ErrConflict
	case "expired":
		return Approval{}, ErrExpired
	}
	return Approval{}, fmt.Errorf("update script: unexpected reply %q", res)
}

// List implements Store: one range read and one pipeline of reads.
func (r *RedisStore) List(ctx context.Context, after Cursor, limit int) (Page, error) {
	if limit <= 0 {
		limit = 100
	}
	hi := "+"
	if !after.IsZero() {
		hi = "(" + createdMember(after)
	}
	members, err := r.rdb.ZRevRangeByLex(ctx, redisCreated, &redis.ZRangeBy{Max: hi, Min: "-", Count: int64(limit)}).Result()
	if err != nil {
		return Page{}, err
	}
	p := Page{Next: after, More: len(members) == limit, Approvals: []Approval{}}
	if len(members) == 0 {
		return p, nil
	}
	ids := make([]string, 0, len(members))
	for _, m := range members {
		c, ok := parseCreatedMember(m)
		if !ok {
			return Page{}, fmt.Errorf("list: malformed entry %q", m)
		}
		ids = append(ids, c.ID)
		p.Next = c
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err = r.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = pl.HMGet(ctx, redisRecPrefix+id, "json", "claimed_at", "uses", "version")
		}
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	for _, c := range cmds {
		v := c.Val()
		if len(v) != 4 || v[0] == nil {
			continue // expired record
		}
		a, err := decodeRecord(v[0], v[1], v[2], v[3])
		if err != nil {
			return Page{}, err
		}
		p.Approvals = append(p.Approvals, a)
	}
	return p, nil
}

// Subscribe implements Store with Redis pub/sub; go-redis reconnects and
// resubscribes by itself after Redis comes back.
func (r *RedisStore) Subscribe(ctx context.Context) (<-chan string, error) {
	ps := r.rdb.Subscribe(ctx, redisChannel)
	in := ps.Channel()
	out := make(chan string, 64)
	go func() {
		defer close(out)
		defer ps.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- m.Payload:
				default:
				}
			}
		}
	}()
	return out, nil
}

// Ping implements Store.
func (r *RedisStore) Ping(ctx context.Context) error { return r.rdb.Ping(ctx).Err() }

// Close implements Store.
func (r *RedisStore) Close() error {
	if err := r.rdb.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return err
	}
	return nil
}
