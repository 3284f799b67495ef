package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// links remembers, per session, the segment started last and, once it
// closed, how far it went, so that the next segment of the session names
// it (Manifest.Previous) and a deleted segment leaves a trace. With Redis
// every replica shares what it knows; this writer's own memory covers a
// Redis outage and single-replica set-ups.
type links struct {
	redis redis.UniversalClient // nil: memory only
	log   *slog.Logger
	now   func() time.Time

	mu     sync.Mutex
	local  map[string]linkEntry
	pruned time.Time
	// down: after a Redis failure, Redis is left alone until then, so
	// that an outage costs new segments one timeout, not one each.
	down time.Time
}

type linkEntry struct {
	ref     SegmentRef
	at      time.Time // last touched here
	started time.Time // when the segment started
	shared  bool      // Redis was told of it
}

// linkTTL is how long a session's last segment is remembered: a session
// resumed after that starts a segment that names none (the checkpoints
// still list every segment).
const linkTTL = 7 * 24 * time.Hour

// linkRedisTimeout bounds one Redis round trip of links: a segment is
// created on the request path. After a failure Redis is not asked again
// for linkRedisBackoff.
const (
	linkRedisTimeout = 500 * time.Millisecond
	linkRedisBackoff = 5 * time.Second
)

// useRedis says whether Redis is to be asked now.
func (l *links) useRedis() bool {
	if l.redis == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.now().Before(l.down)
}

// failed notes a Redis failure.
func (l *links) failed(what string, err error) {
	l.mu.Lock()
	l.down = l.now().Add(linkRedisBackoff)
	l.mu.Unlock()
	l.log.Warn("recorder: "+what+"; using this writer's own record of segments for a while", "err", err)
}

func newLinks(client redis.UniversalClient, log *slog.Logger, now func() time.Time) *links {
	return &links{redis: client, log: log, now: now, local: map[string]linkEntry{}}
}

func linkKey(session string) string {
	sum := sha256.Sum256([]byte(session))
	return "airlock:segment:" + hex.EncodeToString(sum[:])
}

// encodeRef and decodeRef give a SegmentRef's Redis form:
// SEGMENT|DAY|EVENTS|HEAD|STARTED (Unix nanoseconds).
func encodeRef(r SegmentRef, started time.Time) string {
	return r.Segment + "|" + r.Day + "|" + strconv.FormatInt(r.Events, 10) + "|" + r.Head + "|" + strconv.FormatInt(started.UnixNano(), 10)
}

func decodeRef(v string) (SegmentRef, time.Time, bool) {
	parts := strings.Split(v, "|")
	if len(parts) != 5 || parts[0] == "" {
		return SegmentRef{}, time.Time{}, false
	}
	n, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || n < 0 {
		return SegmentRef{}, time.Time{}, false
	}
	ns, err := strconv.ParseInt(parts[4], 10, 64)
	if err != nil {
		return SegmentRef{}, time.Time{}, false
	}
	return SegmentRef{Segment: parts[0], Day: parts[1], Events: n, Head: parts[3]}, time.Unix(0, ns), true
}

var linkStartScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return v
`)

// linkUpdateScript replaces the session's entry only while it still names
// the segment ARGV[1] (a replica that started a later one wins); an empty
// ARGV[2] deletes it.
var linkUpdateScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then
  if ARGV[2] == '' then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  end
  return 1
end
return 0
`)

// start records that next begins in session and returns the segment
// started before it, or nil: the one Redis names (any replica's) unless
// this writer started a later one while Redis could not be told.
func (l *links) start(session string, next SegmentRef) *SegmentRef {
	now := l.now()
	l.mu.Lock()
	prev, known := l.local[session]
	l.local[session] = linkEntry{ref: next, at: now, started: now}
	l.mu.Unlock()
	var out *SegmentRef
	if known {
		p := prev.ref
		out = &p
	}
	if !l.useRedis() {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), linkRedisTimeout)
	defer cancel()
	v, err := linkStartScript.Run(ctx, l.redis, []string{linkKey(session)}, encodeRef(next, now), linkTTL.Milliseconds()).Text()
	if err != nil && !errors.Is(err, redis.Nil) {
		l.failed("the previous segment of a session cannot be read from Redis", err)
		return out
	}
	l.mu.Lock()
	if e, ok := l.local[session]; ok && e.ref.Segment == next.Segment {
		e.shared = true
		l.local[session] = e
	}
	l.mu.Unlock()
	shared, started, ok := decodeRef(v)
	switch {
	case !ok:
		return out
	case out == nil:
		return &shared
	case shared.Segment == out.Segment:
		if shared.Events > out.Events {
			return &shared
		}
		return out
	case prev.shared || started.After(prev.started):
		// Redis knew ours and names another since: a later one.
		return &shared
	}
	return out
}

// closed records how far a closed segment of session went, where it is
// still the session's last one (or the session is unknown here: a segment
// recovered after a restart).
func (l *links) closed(ctx context.Context, session string, ref SegmentRef) {
	l.mu.Lock()
	e, ok := l.local[session]
	if !ok || e.ref.Segment == ref.Segment {
		e.ref, e.at = ref, l.now()
		l.local[session] = e
	}
	l.mu.Unlock()
	if !l.useRedis() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, linkRedisTimeout)
	defer cancel()
	if err := linkUpdateScript.Run(ctx, l.redis, []string{linkKey(session)}, ref.Segment+"|", encodeRef(ref, e.started), linkTTL.Milliseconds()).Err(); err != nil {
		l.failed("the end of segment "+ref.Segment+" cannot be recorded in Redis", err)
	}
}

// abort undoes start for a segment that could not be created.
func (l *links) abort(session string, next SegmentRef, prev *SegmentRef) {
	l.mu.Lock()
	if e, ok := l.local[session]; ok && e.ref.Segment == next.Segment {
		if prev != nil {
			l.local[session] = linkEntry{ref: *prev, at: e.at}
		} else {
			delete(l.local, session)
		}
	}
	l.mu.Unlock()
	if !l.useRedis() {
		return
	}
	restore := ""
	if prev != nil {
		restore = encodeRef(*prev, time.Time{})
	}
	ctx, cancel := context.WithTimeout(context.Background(), linkRedisTimeout)
	defer cancel()
	if err := linkUpdateScript.Run(ctx, l.redis, []string{linkKey(session)}, next.Segment+"|", restore, linkTTL.Milliseconds()).Err(); err != nil {
		l.failed("an aborted segment cannot be removed from Redis", err)
	}
}

// prune forgets sessions idle for longer than keep, at most once a minute.
func (l *links) prune(keep time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.pruned) < time.Minute {
		return
	}
	l.pruned = now
	for k, e := range l.local {
		if now.Sub(e.at) > keep {
			delete(l.local, k)
		}
	}
}

func (r SegmentRef) String() string {
	return fmt.Sprintf("%s (%s, %d events)", r.Segment, r.Day, r.Events)
}
