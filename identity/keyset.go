package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

const (
	// fetchTimeout bounds one discovery or JWKS request.
	fetchTimeout = 10 * time.Second
	// maxJWKSBytes bounds a discovery document or a JWKS.
	maxJWKSBytes = 1 << 20
	// firstBackoff and maxBackoff bound the wait between failed attempts to
	// load an issuer's keys for the first time.
	firstBackoff = time.Second
	maxBackoff   = time.Minute
	// maxKeyAge is how long fetched keys are used before the next request
	// refreshes them, so that keys an issuer withdraws stop being trusted.
	maxKeyAge = time.Hour
)

// keySet holds one issuer's public keys. It implements oidc.KeySet with its
// own refresh policy: keys are loaded by discovery (or from the configured
// JWKS URL) on first use, retried with backoff while the issuer is
// unreachable, and refetched when a token names an unknown key id, at most
// once per refresh interval however many such tokens arrive.
type keySet struct {
	issuer   string
	static   bool
	client   *http.Client
	now      func() time.Time
	interval time.Duration
	log      *slog.Logger
	stats    *counters

	keys     atomic.Pointer[[]jose.JSONWebKey] // nil until first loaded
	loadedAt atomic.Int64                      // unix nanoseconds of the last successful fetch
	// refreshing is set while a background refresh of old keys runs.
	refreshing atomic.Bool

	// sem serialises fetches; the fields below it are guarded by it.
	sem         chan struct{}
	jwksURL     string
	lastFetch   time.Time // last JWKS fetch attempt, for the rate limit
	failures    int
	nextAttempt time.Time
	lastErr     atomic.Pointer[string]
}

var _ oidc.KeySet = (*keySet)(nil)

func newRemoteKeySet(issuer, jwksURL string, client *http.Client, now func() time.Time, interval time.Duration, log *slog.Logger, stats *counters) *keySet {
	return &keySet{
		issuer:   issuer,
		jwksURL:  jwksURL,
		client:   client,
		now:      now,
		interval: interval,
		log:      log,
		stats:    stats,
		sem:      make(chan struct{}, 1),
	}
}

func newStaticKeySet(issuer string, keys []jose.JSONWebKey, stats *counters) *keySet {
	ks := &keySet{issuer: issuer, static: true, stats: stats, sem: make(chan struct{}, 1), now: time.Now}
	ks.keys.Store(&keys)
	return ks
}

// loaded reports whether keys are present, and the last load error if not.
func (ks *keySet) loaded() (bool, string) {
	if ks.keys.Load() != nil {
		return true, ""
	}
	if e := ks.lastErr.Load(); e != nil {
		return false, *e
	}
	return false, "not loaded yet"
}

func (ks *keySet) lock(ctx context.Context) error {
	select {
	case ks.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (ks *keySet) unlock() { <-ks.sem }

// ensureLoaded loads the keys the first time, honouring the backoff after a
// failure. It returns an *Error of kind Unavailable when there are no keys.
func (ks *keySet) ensureLoaded(ctx context.Context) *Error {
	if ks.keys.Load() != nil {
		return nil
	}
	if err := ks.lock(ctx); err != nil {
		return ks.unavailable()
	}
	defer ks.unlock()
	if ks.keys.Load() != nil {
		return nil
	}
	now := ks.now()
	if now.Before(ks.nextAttempt) {
		return ks.unavailable()
	}
	if err := ks.fetchLocked(ctx); err != nil {
		ks.failures++
		backoff := firstBackoff << min(ks.failures-1, 10)
		if backoff > maxBackoff {
			backoff = maxBackoff
		}
		ks.nextAttempt = now.Add(backoff)
		ks.log.Warn("identity: issuer keys unavailable", "issuer", ks.issuer, "error", err.Error(), "retry_in", backoff)
		return ks.unavailable()
	}
	ks.failures = 0
	return nil
}

func (ks *keySet) unavailable() *Error {
	return &Error{Kind: Unavailable, Msg: fmt.Sprintf("the signing keys of issuer %s could not be fetched; retry shortly", quote(ks.issuer))}
}

// refresh refetches the JWKS unless one was fetched less than the refresh
// interval ago. It reports whether the key set was replaced.
func (ks *keySet) refresh(ctx context.Context) bool {
	if ks.static {
		return false
	}
	if err := ks.lock(ctx); err != nil {
		return false
	}
	defer ks.unlock()
	if ks.now().Sub(ks.lastFetch) < ks.interval {
		return false
	}
	if err := ks.fetchLocked(ctx); err != nil {
		ks.log.Warn("identity: refreshing issuer keys failed", "issuer", ks.issuer, "error", err.Error())
		return false
	}
	return true
}

// fetchLocked discovers the JWKS URL when needed and fetches the keys.
// The caller holds sem.
func (ks *keySet) fetchLocked(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	ks.lastFetch = ks.now()
	err := func() error {
		if ks.jwksURL == "" {
			p, err := oidc.NewProvider(oidc.ClientContext(ctx, ks.client), ks.issuer)
			if err != nil {
				return fmt.Errorf("discovery: %w", err)
			}
			var doc struct {
				JWKSURL string `json:"jwks_uri"`
			}
			if err := p.Claims(&doc); err != nil || doc.JWKSURL == "" {
				return errors.New("discovery: the document has no jwks_uri")
			}
			ks.jwksURL = doc.JWKSURL
		}
		keys, err := fetchJWKS(ctx, ks.client, ks.jwksURL)
		if err != nil {
			return err
		}
		ks.stats.keyFetches.Add(1)
		ks.keys.Store(&keys)
		ks.loadedAt.Store(ks.now().UnixNano())
		ks.lastErr.Store(nil)
		ks.log.Info("identity: issuer keys loaded", "issuer", ks.issuer, "keys", len(keys))
		return nil
	}()
	if err != nil {
		msg := err.Error()
		ks.lastErr.Store(&msg)
	}
	return err
}

// fetchJWKS downloads a JWKS and keeps its usable asymmetric public keys;
// keys it cannot parse, symmetric keys and encryption keys are skipped.
func fetchJWKS(ctx context.Context, client *http.Client, url string) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes))
	if err != nil {
		return nil, fmt.Errorf("jwks %s: read: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks %s: status %s", url, resp.Status)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks %s: decode: %w", url, err)
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if pub, ok := publicKey(k); ok {
			keys = append(keys, pub)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("jwks %s: no usable signing keys", url)
	}
	return keys, nil
}

// publicKey returns the public half of an asymmetric key; symmetric keys are
// refused, so that a shared secret can never verify a token.
func publicKey(k jose.JSONWebKey) (jose.JSONWebKey, bool) {
	if !k.Valid() {
		return jose.JSONWebKey{}, false
	}
	if _, sym := k.Key.([]byte); sym {
		return jose.JSONWebKey{}, false
	}
	if k.IsPublic() {
		return k, true
	}
	pub := k.Public()
	return pub, pub.Key != nil
}

// verifyState travels in the context from Verify into VerifySignature, so
// that the key set's precise refusal survives go-oidc's error wrapping and
// the already parsed token is not parsed again.
type verifyState struct {
	jws   *jose.JSONWebSignature
	err   *Error
	sigOK bool
}

type verifyStateKey struct{}

// VerifySignature implements oidc.KeySet.
func (ks *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	st, _ := ctx.Value(verifyStateKey{}).(*verifyState)
	if st == nil {
		st = &verifyState{}
	}
	fail := func(e *Error) ([]byte, error) {
		st.err = e
		return nil, e
	}
	jws := st.jws
	if jws == nil {
		var err error
		jws, err = jose.ParseSignedCompact(jwt, allowedAlgs)
		if err != nil || len(jws.Signatures) != 1 {
			return fail(&Error{Kind: Malformed, Msg: "the bearer token is not a well-formed signed JWT"})
		}
	}
	if err := ks.ensureLoaded(ctx); err != nil {
		return fail(err)
	}
	if !ks.static && ks.now().UnixNano()-ks.loadedAt.Load() > int64(maxKeyAge) && ks.refreshing.CompareAndSwap(false, true) {
		// Old keys keep working while fresh ones are fetched in the background.
		go func() {
			defer ks.refreshing.Store(false)
			ks.refresh(context.Background())
		}()
	}
	kid := jws.Signatures[0].Header.KeyID
	payload, found := ks.try(jws, kid)
	if payload != nil {
		st.sigOK = true
		return payload, nil
	}
	// The issuer may have rotated its keys (or replaced the key behind a
	// kid): look again, at most once per refresh interval.
	if ks.refresh(ctx) {
		payload, found = ks.try(jws, kid)
		if payload != nil {
			st.sigOK = true
			return payload, nil
		}
	}
	if !found && kid != "" {
		return fail(&Error{Kind: BadSignature, Msg: fmt.Sprintf("the token is signed with key id %s, which issuer %s does not publish", quote(kid), quote(ks.issuer))})
	}
	return fail(&Error{Kind: BadSignature, Msg: fmt.Sprintf("the token's signature does not verify with the keys of issuer %s", quote(ks.issuer))})
}

// try verifies the signature with the keys matching kid (every key when the
// token names none; keys published without a kid match any). found reports
// whether any key matched.
func (ks *keySet) try(jws *jose.JSONWebSignature, kid string) (payload []byte, found bool) {
	keys := ks.keys.Load()
	if keys == nil {
		return nil, false
	}
	for i := range *keys {
		k := &(*keys)[i]
		if kid != "" && k.KeyID != "" && k.KeyID != kid {
			continue
		}
		found = true
		ks.stats.signatureChecks.Add(1)
		if p, err := jws.Verify(k); err == nil {
			return p, true
		}
	}
	return nil, found
}
