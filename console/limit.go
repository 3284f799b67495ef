package console

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// loginLimiter bounds the sign-ins one source address may begin: each
// keeps a little state for ten minutes before anyone has signed in, so an
// unauthenticated flood must not fill the store. A token bucket per
// address, at most maxSources addresses tracked (beyond, the table starts
// afresh).
type loginLimiter struct {
	rate  float64 // tokens per second
	burst float64

	mu      sync.Mutex
	buckets map[string]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

const (
	loginRatePerMinute = 60
	loginBurst         = 60
	maxLoginSources    = 10000
)

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{rate: loginRatePerMinute / 60.0, burst: loginBurst, buckets: map[string]*tokenBucket{}}
}

func (l *loginLimiter) allow(r *http.Request, now time.Time) bool {
	src, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		src = r.RemoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[src]
	if b == nil {
		if len(l.buckets) >= maxLoginSources {
			l.buckets = map[string]*tokenBucket{}
		}
		b = &tokenBucket{tokens: l.burst, last: now}
		l.buckets[src] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
