package recorder

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// UnauthenticatedSession is the session of the requests refused before an
// identity was known. No agent-named ("NAME~TAG") or generated ("s-...")
// session can take this name.
const UnauthenticatedSession = "unauthenticated"

// Bounds of the fields kept of a request refused before an identity was
// known: anyone who reaches Envoy chooses them.
const (
	anonMethodBytes = 32
	anonHostBytes   = 256
	anonPathBytes   = 512
	anonIDBytes     = 128
	anonMaskBytes   = 4096 // of the path, masked before it is cut
)

// unauthenticated records a request refused before an identity was known,
// compactly and within its source's rate and its share of the spool: no
// headers, no body, no query. It never fails the request (nothing of it
// reached Google): what cannot be recorded is dropped and counted. It
// returns once the event is written (a killed process loses none), without
// waiting for its sync.
func (r *Recorder) unauthenticated(ctx context.Context, e DecisionEvent) {
	now := r.now()
	if !r.limiter.allow(sourceKey(e.Source), now) {
		r.anonRateLimited.Add(1)
		return
	}
	path, _, _ := strings.Cut(e.Path, "?")
	path = clip(path, anonMaskBytes)
	if r.opts.Mask != nil && path != "" {
		path = string(r.opts.Mask([]byte(path)))
	}
	d := &DecisionEvent{
		RequestID: clip(e.RequestID, anonIDBytes),
		Method:    clip(e.Method, anonMethodBytes),
		Host:      clip(e.Host, anonHostBytes),
		Path:      clip(path, anonPathBytes),
		Source:    clip(e.Source, anonHostBytes),
		Decision:  e.Decision,
		Reason:    clip(e.Reason, anonIDBytes),
	}
	t := e.Time
	if t.IsZero() {
		t = now
	}
	ev := &Event{Time: t.UTC(), Kind: KindDecision, RequestID: d.RequestID, Decision: d}
	// Refusals reach Google never: the event rides the next group commit
	// and the refusal does not wait for its sync.
	for {
		seg, err := r.segmentFor(UnauthenticatedSession)
		if err == nil {
			var b *commitBatch
			b, _, err = r.appendTo(seg, ev, waitWritten)
			if errors.Is(err, errSegmentClosed) {
				continue
			}
			if err == nil {
				err = waitFor(ctx, b, waitWritten)
			}
		}
		switch {
		case err == nil:
			r.anonEvents.Add(1)
		case errors.Is(err, ErrSpoolFull):
			r.anonSpoolFull.Add(1)
		default:
			if r.anonFailed.Add(1)%1000 == 1 {
				r.log.Warn("recorder: a request refused before an identity was known could not be recorded", "err", err)
			}
		}
		return
	}
}

// clip cuts s to at most n bytes on a rune boundary, valid UTF-8.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// sourceKey is the rate-limited unit of a source address: the address for
// IPv4, its /64 for IPv6 (one host holds a whole /64), the text otherwise.
func sourceKey(source string) string {
	a, err := netip.ParseAddr(source)
	if err != nil {
		if ap, err2 := netip.ParseAddrPort(source); err2 == nil {
			a, err = ap.Addr(), nil
		}
	}
	if err != nil {
		return clip(source, anonHostBytes)
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// sourceLimiter is a token bucket per source, with a bounded number of
// sources.
type sourceLimiter struct {
	rate, burst float64
	max         int

	mu     sync.Mutex
	m      map[string]*tokenBucket
	swept  time.Time
	refill time.Duration // a bucket left alone this long is full again
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

func newSourceLimiter(rate float64, burst, maxSources int) *sourceLimiter {
	l := &sourceLimiter{rate: rate, burst: float64(burst), max: maxSources, m: map[string]*tokenBucket{}}
	if rate > 0 {
		l.refill = time.Duration(float64(burst) / rate * float64(time.Second))
	}
	return l
}

// allow takes one token of key's bucket.
func (l *sourceLimiter) allow(key string, now time.Time) bool {
	if l.rate <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[key]
	if b == nil {
		if len(l.m) >= l.max {
			l.sweep(now)
			if len(l.m) >= l.max {
				return false
			}
		}
		b = &tokenBucket{tokens: l.burst, last: now}
		l.m[key] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep forgets the buckets that are full again (a new one starts full),
// at most once a second.
func (l *sourceLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Second {
		return
	}
	l.swept = now
	for k, b := range l.m {
		if now.Sub(b.last) >= l.refill {
			delete(l.m, k)
		}
	}
}
