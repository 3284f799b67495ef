package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/identity/identitytest"
)

// clock is a settable clock for the verifier.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newVerifier(t testing.TB, opts identity.Options, issuers ...identity.IssuerConfig) *identity.OIDCVerifier {
	t.Helper()
	v, err := identity.NewOIDCVerifier(context.Background(), issuers, opts)
	if err != nil {
		t.Fatalf("NewOIDCVerifier: %v", err)
	}
	return v
}

// refusal asserts that err is an *identity.Error of kind want whose message
// holds every fragment and never the token.
func refusal(t *testing.T, err error, token string, want identity.ErrorKind, fragments ...string) {
	t.Helper()
	var ie *identity.Error
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *identity.Error", err, err)
	}
	if ie.Kind != want {
		t.Fatalf("kind = %s, want %s (message %q)", ie.Kind, want, ie.Msg)
	}
	for _, f := range fragments {
		if !strings.Contains(ie.Error(), f) {
			t.Errorf("message %q does not contain %q", ie.Error(), f)
		}
	}
	if len(token) > 10 && strings.Contains(ie.Error(), token) {
		t.Errorf("message echoes the token")
	}
	parts := strings.Split(token, ".")
	if len(parts) == 3 && len(parts[2]) > 8 && strings.Contains(ie.Error(), parts[2]) {
		t.Errorf("message echoes the token's signature")
	}
}

func TestVerifyAcceptsAGoodToken(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	v := newVerifier(t, identity.Options{}, iss.Config("airlock", "groups"))
	if err := v.Healthy(); err != nil {
		t.Fatalf("Healthy: %v", err)
	}
	exp := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	tok := iss.Mint(map[string]any{
		"sub":    "alice",
		"email":  "alice@example.com",
		"groups": []string{"sre", "ai-agents"},
		"act":    map[string]any{"sub": "claude-agent"},
		"exp":    exp.Unix(),
		"team":   "payments",
	})
	id, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id.Subject != "alice" || id.Email != "alice@example.com" || id.Issuer != iss.URL() || id.Actor != "claude-agent" {
		t.Errorf("identity = %+v", id)
	}
	if fmt.Sprint(id.Groups) != "[sre ai-agents]" {
		t.Errorf("groups = %v", id.Groups)
	}
	if !id.Expiry.Equal(exp) {
		t.Errorf("expiry = %v, want %v", id.Expiry, exp)
	}
	if id.Claims["team"] != "payments" || id.Claims["sub"] != "alice" {
		t.Errorf("claims = %v", id.Claims)
	}
}

func TestVerifyRefusesAdversarialTokens(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	other := identitytest.NewIssuer(t)
	v := newVerifier(t, identity.Options{}, iss.Config("airlock", "groups"))
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		token     string
		kind      identity.ErrorKind
		fragments []string
	}{
		{"empty", "", identity.NoToken, []string{"Authorization: Bearer"}},
		{"expired", iss.MintWith(nil, identitytest.Expired()), identity.Expired, []string{"expired at", "get a new token"}},
		{"not yet valid", iss.MintWith(nil, identitytest.NotYetValid()), identity.Expired, []string{"not valid yet"}},
		{"wrong audience", iss.Mint(map[string]any{"aud": "someone-else"}), identity.WrongAudience, []string{`"someone-else"`, `does not include "airlock"`}},
		{"wrong audience list", iss.Mint(map[string]any{"aud": []string{"a", "b"}}), identity.WrongAudience, []string{`["a", "b"]`, `"airlock"`}},
		{"unknown issuer", iss.Mint(map[string]any{"iss": "https://evil.example"}), identity.UnknownIssuer, []string{`"https://evil.example"`, "not trusted"}},
		{"unknown issuer sanitised", iss.Mint(map[string]any{"iss": "https://evil.example/\n" + strings.Repeat("x", 300)}), identity.UnknownIssuer, []string{`"https://evil.example/?xxx`, `..."`}},
		{"other issuer", other.Mint(nil), identity.UnknownIssuer, []string{other.URL(), "not trusted"}},
		{"forged same kid", iss.MintWith(nil, identitytest.Forged()), identity.BadSignature, []string{"signature does not verify", iss.URL()}},
		{"forged and expired", iss.MintWith(nil, identitytest.Forged(), identitytest.Expired()), identity.BadSignature, []string{"signature does not verify"}},
		{"other issuer's key with our iss", other.MintWith(map[string]any{"iss": iss.URL()}), identity.BadSignature, []string{"does not publish"}},
		{"other algorithm and key", iss.MintWith(nil, identitytest.SignedWith("ES256", otherKey)), identity.BadSignature, []string{"signature does not verify"}},
		{"alg none", iss.MintWith(nil, identitytest.AlgNone()), identity.BadSignature, []string{`algorithm "none" is not accepted`, "RS256"}},
		{"HS256 keyed with the public key", iss.MintWith(nil, identitytest.HS256WithPublicKey()), identity.BadSignature, []string{`algorithm "HS256" is not accepted`}},
		{"unknown kid", iss.MintWith(nil, identitytest.UnknownKID()), identity.BadSignature, []string{"key id", "does not publish"}},
		{"no kid, forged", iss.MintWith(nil, identitytest.Forged(), identitytest.WithoutKID()), identity.BadSignature, []string{"signature does not verify"}},
		{"not a jwt", "not-a-token", identity.Malformed, []string{"not a JWT"}},
		{"jwe", "a.b.c.d.e", identity.Malformed, []string{"JWE"}},
		{"bad base64", "@@@.e30.sig", identity.Malformed, []string{"header is not base64url"}},
		{"no exp", iss.Mint(map[string]any{"exp": nil}), identity.Malformed, []string{"no exp claim"}},
		{"no sub", iss.Mint(map[string]any{"sub": nil}), identity.Malformed, []string{"no sub claim"}},
		{"no iss", iss.Mint(map[string]any{"iss": nil}), identity.Malformed, []string{"no iss claim"}},
		{"aud is a number", iss.Mint(map[string]any{"aud": 7}), identity.Malformed, []string{"expected types"}},
		{"exp is a string", iss.Mint(map[string]any{"exp": "tomorrow"}), identity.Malformed, []string{"expected types"}},
		{"signature stripped", stripSignature(iss.Mint(nil)), identity.BadSignature, []string{"signature does not verify"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), tc.token)
			if err == nil {
				t.Fatalf("accepted: %+v", id)
			}
			refusal(t, err, tc.token, tc.kind, tc.fragments...)
		})
	}
}

func stripSignature(tok string) string {
	return tok[:strings.LastIndex(tok, ".")+1]
}

func TestSeveralIssuers(t *testing.T) {
	a := identitytest.NewIssuer(t)
	b := identitytest.NewIssuer(t, identitytest.WithAlgorithm("ES256"))
	v := newVerifier(t, identity.Options{}, a.Config("airlock", "groups"), b.Config("gateway-b", "roles"))
	if got := v.Issuers(); len(got) != 2 {
		t.Fatalf("issuers = %v", got)
	}

	idA, err := v.Verify(context.Background(), a.Mint(map[string]any{"sub": "alice", "groups": []string{"g-a"}}))
	if err != nil {
		t.Fatalf("issuer a: %v", err)
	}
	if idA.Issuer != a.URL() || fmt.Sprint(idA.Groups) != "[g-a]" {
		t.Errorf("issuer a identity = %+v", idA)
	}
	idB, err := v.Verify(context.Background(), b.Mint(map[string]any{"sub": "bob", "aud": "gateway-b", "roles": []string{"r-b"}, "groups": []string{"ignored"}}))
	if err != nil {
		t.Fatalf("issuer b: %v", err)
	}
	if idB.Issuer != b.URL() || fmt.Sprint(idB.Groups) != "[r-b]" {
		t.Errorf("issuer b identity = %+v", idB)
	}
	// Each issuer's audience is its own.
	tok := b.Mint(map[string]any{"aud": "airlock"})
	_, err = v.Verify(context.Background(), tok)
	refusal(t, err, tok, identity.WrongAudience, `"gateway-b"`)
	// A token naming issuer a but signed by b's key is a forgery.
	tok = b.MintWith(map[string]any{"iss": a.URL()}, identitytest.WithKID(a.KID()))
	_, err = v.Verify(context.Background(), tok)
	refusal(t, err, tok, identity.BadSignature, "does not verify")
}

func TestAlgorithms(t *testing.T) {
	for _, alg := range []string{"RS256", "RS512", "PS256", "ES256", "ES384", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			iss := identitytest.NewIssuer(t, identitytest.WithAlgorithm(alg))
			v := newVerifier(t, identity.Options{}, iss.Config("airlock", ""))
			if _, err := v.Verify(context.Background(), iss.Mint(nil)); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestGroupsClaim(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	tests := []struct {
		name   string
		claim  string
		claims map[string]any
		want   string
	}{
		{"list", "groups", map[string]any{"groups": []string{"a", "b"}}, "[a b]"},
		{"default claim name", "", map[string]any{"groups": []string{"a"}}, "[a]"},
		{"single string", "groups", map[string]any{"groups": "sre"}, "[sre]"},
		{"empty string", "groups", map[string]any{"groups": ""}, "[]"},
		{"non-strings in list ignored", "groups", map[string]any{"groups": []any{"a", 7, true, map[string]any{"x": 1}, "b"}}, "[a b]"},
		{"number ignored", "groups", map[string]any{"groups": 42}, "[]"},
		{"object ignored", "groups", map[string]any{"groups": map[string]any{"a": true}}, "[]"},
		{"missing", "groups", nil, "[]"},
		{"custom claim", "roles", map[string]any{"roles": []string{"admin"}, "groups": []string{"no"}}, "[admin]"},
		{"nested path", "realm_access.roles", map[string]any{"realm_access": map[string]any{"roles": []string{"x", "y"}}}, "[x y]"},
		{"exact dotted name wins", "a.b", map[string]any{"a.b": "flat", "a": map[string]any{"b": "nested"}}, "[flat]"},
		{"nested path through a non-object", "a.b", map[string]any{"a": "str"}, "[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, identity.Options{}, iss.Config("airlock", tc.claim))
			id, err := v.Verify(context.Background(), iss.Mint(tc.claims))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Groups == nil || fmt.Sprint(id.Groups) != tc.want {
				t.Errorf("groups = %#v, want %s", id.Groups, tc.want)
			}
		})
	}
}

func TestActor(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	v := newVerifier(t, identity.Options{}, iss.Config("airlock", "groups"))
	tests := []struct {
		name string
		act  any
		want string
	}{
		{"act.sub", map[string]any{"sub": "agent-7"}, "agent-7"},
		{"delegation chain: the current actor", map[string]any{"sub": "agent-7", "act": map[string]any{"sub": "orchestrator"}}, "agent-7"},
		{"act as a string is ignored", "agent-7", ""},
		{"act.sub not a string", map[string]any{"sub": 7}, ""},
		{"no act", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), iss.Mint(map[string]any{"act": tc.act}))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Actor != tc.want {
				t.Errorf("actor = %q, want %q", id.Actor, tc.want)
			}
		})
	}
}

func TestLeeway(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	tok := iss.Mint(map[string]any{"exp": time.Now().Add(-10 * time.Second).Unix(), "nbf": time.Now().Add(-time.Minute).Unix()})
	strict := newVerifier(t, identity.Options{}, iss.Config("airlock", "groups"))
	_, err := strict.Verify(context.Background(), tok)
	refusal(t, err, tok, identity.Expired, "expired at")
	lenient := newVerifier(t, identity.Options{Leeway: 30 * time.Second}, iss.Config("airlock", "groups"))
	if _, err := lenient.Verify(context.Background(), tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	early := iss.Mint(map[string]any{"nbf": time.Now().Add(20 * time.Second).Unix()})
	if _, err := lenient.Verify(context.Background(), early); err != nil {
		t.Fatalf("nbf within leeway: %v", err)
	}
	_, err = strict.Verify(context.Background(), early)
	refusal(t, err, early, identity.Expired, "not valid yet")
}

func TestCacheSkipsTheSignatureCheck(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	clk := newClock()
	v := newVerifier(t, identity.Options{Now: clk.Now}, iss.Config("airlock", "groups"))
	tok := iss.Mint(map[string]any{"exp": clk.Now().Add(10 * time.Minute).Unix()})

	first, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	s1 := v.Stats()
	if s1.SignatureChecks != 1 || s1.CacheMisses != 1 || s1.CachedTokens != 1 {
		t.Fatalf("after first verify: %+v", s1)
	}
	for range 5 {
		id, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatal(err)
		}
		if id.Subject != first.Subject || !id.Expiry.Equal(first.Expiry) {
			t.Fatalf("cached identity differs: %+v", id)
		}
	}
	s2 := v.Stats()
	if s2.SignatureChecks != 1 || s2.CacheHits != 5 {
		t.Fatalf("after cached verifies: %+v", s2)
	}
	// A cached token is never accepted past its expiry.
	clk.Advance(11 * time.Minute)
	_, err = v.Verify(context.Background(), tok)
	refusal(t, err, tok, identity.Expired, "expired at")
	if s3 := v.Stats(); s3.CacheHits != 5 {
		t.Fatalf("expired token served from cache: %+v", s3)
	}
}

func TestCacheDoesNotKeepRefusals(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	v := newVerifier(t, identity.Options{}, iss.Config("airlock", "groups"))
	tok := iss.MintWith(nil, identitytest.Forged())
	for range 3 {
		_, err := v.Verify(context.Background(), tok)
		refusal(t, err, tok, identity.BadSignature)
	}
	if s := v.Stats(); s.CachedTokens != 0 || s.CacheHits != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestCacheIsBounded(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	v := newVerifier(t, identity.Options{CacheSize: 32}, iss.Config("airlock", "groups"))
	for i := range 200 {
		if _, err := v.Verify(context.Background(), iss.Mint(map[string]any{"sub": fmt.Sprint("user-", i)})); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.Stats().CachedTokens; n == 0 || n > 32 {
		t.Fatalf("cached tokens = %d, want 1..32", n)
	}
}

func TestCacheDisabled(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	v := newVerifier(t, identity.Options{CacheSize: -1}, iss.Config("airlock", "groups"))
	tok := iss.Mint(nil)
	for range 3 {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if s := v.Stats(); s.SignatureChecks != 3 || s.CacheHits != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestConcurrentVerify(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	v := newVerifier(t, identity.Options{CacheSize: 64}, iss.Config("airlock", "groups"))
	toks := make([]string, 8)
	for i := range toks {
		toks[i] = iss.Mint(map[string]any{"sub": fmt.Sprint("u", i)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				id, err := v.Verify(context.Background(), toks[(g+i)%len(toks)])
				if err != nil {
					errs <- err
					return
				}
				if id.Subject != fmt.Sprint("u", (g+i)%len(toks)) {
					errs <- fmt.Errorf("subject %q for token %d", id.Subject, (g+i)%len(toks))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestKeyRotationIsPickedUp(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	clk := newClock()
	v := newVerifier(t, identity.Options{Now: clk.Now, KeyRefreshInterval: 10 * time.Second}, iss.Config("airlock", "groups"))
	if _, err := v.Verify(context.Background(), iss.Mint(nil)); err != nil {
		t.Fatal(err)
	}
	if h := iss.JWKSHits(); h != 1 {
		t.Fatalf("JWKS hits after start = %d, want 1", h)
	}
	iss.Rotate()
	clk.Advance(11 * time.Second)
	tok := iss.Mint(map[string]any{"sub": "after-rotation"})
	id, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("token signed by the rotated key: %v", err)
	}
	if id.Subject != "after-rotation" || iss.JWKSHits() != 2 {
		t.Fatalf("subject %q, JWKS hits %d", id.Subject, iss.JWKSHits())
	}
}

func TestUnknownKIDRefreshIsRateLimited(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	clk := newClock()
	v := newVerifier(t, identity.Options{Now: clk.Now, KeyRefreshInterval: 10 * time.Second, CacheSize: -1}, iss.Config("airlock", "groups"))
	if h := iss.JWKSHits(); h != 1 {
		t.Fatalf("JWKS hits after start = %d, want 1", h)
	}
	flood := func() {
		var wg sync.WaitGroup
		for range 40 {
			wg.Go(func() {
				tok := iss.MintWith(nil, identitytest.UnknownKID())
				_, err := v.Verify(context.Background(), tok)
				var ie *identity.Error
				if !errors.As(err, &ie) || ie.Kind != identity.BadSignature {
					t.Errorf("unknown kid: %v", err)
				}
			})
		}
		wg.Wait()
	}
	// Within the interval of the initial load: no fetch at all.
	flood()
	if h := iss.JWKSHits(); h != 1 {
		t.Fatalf("JWKS hits after a flood inside the interval = %d, want 1", h)
	}
	// After the interval: exactly one fetch for the whole flood.
	clk.Advance(11 * time.Second)
	flood()
	if h := iss.JWKSHits(); h != 2 {
		t.Fatalf("JWKS hits after a flood past the interval = %d, want 2", h)
	}
	// A real rotation inside the interval waits for the interval to end.
	iss.Rotate()
	tok := iss.Mint(nil)
	_, err := v.Verify(context.Background(), tok)
	refusal(t, err, tok, identity.BadSignature, "does not publish")
	clk.Advance(11 * time.Second)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
	if h := iss.JWKSHits(); h != 3 {
		t.Fatalf("JWKS hits = %d, want 3", h)
	}
	// Tokens with a known kid never cause a fetch.
	for range 20 {
		if _, err := v.Verify(context.Background(), iss.Mint(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if h := iss.JWKSHits(); h != 3 {
		t.Fatalf("JWKS hits after good tokens = %d, want 3", h)
	}
}

func TestUnreachableIssuerRecovers(t *testing.T) {
	iss := identitytest.NewIssuer(t, identitytest.Down())
	good := identitytest.NewIssuer(t)
	clk := newClock()
	v, err := identity.NewOIDCVerifier(context.Background(), []identity.IssuerConfig{iss.Config("airlock", "groups"), good.Config("airlock", "groups")}, identity.Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("NewOIDCVerifier must not fail for an unreachable issuer: %v", err)
	}
	if err := v.Healthy(); err == nil || !strings.Contains(err.Error(), iss.URL()) || strings.Contains(err.Error(), good.URL()+" (") {
		t.Fatalf("Healthy = %v, want an error naming only the unreachable issuer", err)
	}
	// The reachable issuer works meanwhile.
	if _, err := v.Verify(context.Background(), good.Mint(nil)); err != nil {
		t.Fatalf("reachable issuer: %v", err)
	}
	tok := iss.Mint(nil)
	_, err = v.Verify(context.Background(), tok)
	refusal(t, err, tok, identity.Unavailable, iss.URL(), "retry")

	// Inside the backoff, requests do not hammer the issuer.
	hits := iss.DiscoveryHits()
	iss.SetDown(false)
	for range 10 {
		_, err = v.Verify(context.Background(), tok)
		refusal(t, err, tok, identity.Unavailable)
	}
	if iss.DiscoveryHits() != hits {
		t.Fatalf("discovery hits went from %d to %d inside the backoff", hits, iss.DiscoveryHits())
	}
	clk.Advance(2 * time.Second)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("after the issuer came back: %v", err)
	}
	if err := v.Healthy(); err != nil {
		t.Fatalf("Healthy after recovery: %v", err)
	}
}

func TestUnreachableAddressAtStart(t *testing.T) {
	cfg := identity.IssuerConfig{Issuer: "http://127.0.0.1:1/nothing-here", Audience: "airlock"}
	v, err := identity.NewOIDCVerifier(context.Background(), []identity.IssuerConfig{cfg}, identity.Options{})
	if err != nil {
		t.Fatalf("NewOIDCVerifier: %v", err)
	}
	if err := v.Healthy(); err == nil {
		t.Fatal("Healthy = nil for an issuer that was never reached")
	}
}

func TestJWKSURLSkipsDiscovery(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	cfg := iss.Config("airlock", "groups")
	cfg.JWKSURL = iss.URL() + "/jwks"
	v := newVerifier(t, identity.Options{}, cfg)
	if _, err := v.Verify(context.Background(), iss.Mint(nil)); err != nil {
		t.Fatal(err)
	}
	if iss.DiscoveryHits() != 0 {
		t.Fatalf("discovery hits = %d, want 0", iss.DiscoveryHits())
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		issuers []identity.IssuerConfig
		want    string
	}{
		{"empty issuer", []identity.IssuerConfig{{Audience: "a"}}, "issuer is empty"},
		{"not a URL", []identity.IssuerConfig{{Issuer: "accounts.example.com", Audience: "a"}}, "http or https"},
		{"no host", []identity.IssuerConfig{{Issuer: "https://", Audience: "a"}}, "no host"},
		{"no audience", []identity.IssuerConfig{{Issuer: "https://idp.example"}}, "audience is empty"},
		{"bad jwks url", []identity.IssuerConfig{{Issuer: "https://idp.example", Audience: "a", JWKSURL: "ftp://x"}}, "jwks_url"},
		{"duplicate", []identity.IssuerConfig{{Issuer: "https://idp.example", Audience: "a"}, {Issuer: "https://idp.example", Audience: "b"}}, "listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := identity.NewOIDCVerifier(context.Background(), tc.issuers, identity.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "identity: ") {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAddStatic(t *testing.T) {
	v := newVerifier(t, identity.Options{}, nil...)
	if err := v.AddStatic(identity.IssuerConfig{Issuer: "https://static.example", Audience: "a"}, []jose.JSONWebKey{{Key: []byte("shared-secret"), KeyID: "k"}}); err == nil {
		t.Fatal("a symmetric key was accepted")
	}
	if err := v.AddStatic(identity.IssuerConfig{Issuer: "https://static.example", Audience: "a"}, nil); err == nil {
		t.Fatal("no keys was accepted")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := identity.IssuerConfig{Issuer: "https://static.example", Audience: "a"}
	if err := v.AddStatic(cfg, []jose.JSONWebKey{{Key: key, KeyID: "k"}}); err != nil {
		t.Fatalf("AddStatic: %v", err)
	}
	if err := v.AddStatic(cfg, []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k"}}); err == nil {
		t.Fatal("a duplicate issuer was accepted")
	}
	if err := v.Healthy(); err != nil {
		t.Fatalf("Healthy: %v", err)
	}
}

func TestOddTokens(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	v := newVerifier(t, identity.Options{}, iss.Config("airlock", "groups"))
	tests := []struct {
		name      string
		token     string
		kind      identity.ErrorKind
		fragments []string
	}{
		{"too long", iss.Mint(map[string]any{"pad": strings.Repeat("x", 20<<10)}), identity.Malformed, []string{"16 KiB"}},
		{"no aud", iss.Mint(map[string]any{"aud": nil}), identity.WrongAudience, []string{"(none)"}},
		{"header not JSON", "bm90LWpzb24.e30.c2ln", identity.Malformed, []string{"header is not a JSON object"}},
		{"payload not base64", "eyJhbGciOiJSUzI1NiJ9.@@@.c2ln", identity.Malformed, []string{"payload is not base64url"}},
		{"payload not an object", "eyJhbGciOiJSUzI1NiJ9.WzFd.c2ln", identity.Malformed, []string{"expected types"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.token)
			refusal(t, err, tc.token, tc.kind, tc.fragments...)
		})
	}
}

func TestRetiredKeyStopsBeingTrusted(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	clk := newClock()
	v := newVerifier(t, identity.Options{Now: clk.Now, CacheSize: -1}, iss.Config("airlock", "groups"))
	oldKID := iss.KID()
	old := iss.Mint(map[string]any{"exp": clk.Now().Add(5 * time.Hour).Unix()})
	if _, err := v.Verify(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	iss.Rotate()
	iss.RemoveKey(oldKID)
	// Keys older than an hour are refreshed in the background; the old key
	// keeps working until the fresh set arrives.
	clk.Advance(2 * time.Hour)
	if _, err := v.Verify(context.Background(), old); err != nil {
		// The refresh this call started may already have landed (the
		// race detector slows this goroutine more than the refresher):
		// then the only acceptable refusal is the retired key's.
		refusal(t, err, old, identity.BadSignature, "does not publish")
	}
	deadline := time.Now().Add(5 * time.Second)
	for iss.JWKSHits() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no background refresh: JWKS hits = %d", iss.JWKSHits())
		}
		time.Sleep(5 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, err := v.Verify(context.Background(), old)
		if err != nil {
			refusal(t, err, old, identity.BadSignature, "does not publish")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a retired key is still trusted after the refresh")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := v.Verify(context.Background(), iss.Mint(map[string]any{"exp": clk.Now().Add(time.Hour).Unix()})); err != nil {
		t.Fatalf("new key: %v", err)
	}
}

func TestGoogleIssuerWithoutScheme(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	v := newVerifier(t, identity.Options{})
	if err := v.AddStatic(identity.IssuerConfig{Issuer: "https://accounts.google.com", Audience: "airlock", AllowedSubjects: []string{identitytest.DefaultSubject}}, iss.JWKS().Keys); err != nil {
		t.Fatal(err)
	}
	for _, claimed := range []string{"https://accounts.google.com", "accounts.google.com"} {
		id, err := v.Verify(context.Background(), iss.Mint(map[string]any{"iss": claimed}))
		if err != nil {
			t.Fatalf("iss %q: %v", claimed, err)
		}
		if id.Issuer != "https://accounts.google.com" {
			t.Errorf("iss %q: identity issuer = %q", claimed, id.Issuer)
		}
	}
}

func TestJWKSWithUnusableKeys(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	good, err := json.Marshal(iss.JWKS().Keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":%q},{"kty":"weird"},{"kty":"RSA","use":"enc","n":"x","e":"AQAB"},%s]}`, iss.KID(), good)
	}))
	t.Cleanup(srv.Close)
	cfg := iss.Config("airlock", "groups")
	cfg.JWKSURL = srv.URL
	v := newVerifier(t, identity.Options{}, cfg)
	if _, err := v.Verify(context.Background(), iss.Mint(nil)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	tok := iss.MintWith(nil, identitytest.HS256WithPublicKey())
	_, err = v.Verify(context.Background(), tok)
	refusal(t, err, tok, identity.BadSignature)
	if hits.Load() != 1 {
		t.Fatalf("JWKS hits = %d", hits.Load())
	}
}

// An e-mail stands for a person only when the issuer vouches for it: the
// email_verified claim, or an issuer configured with trust_email.
func TestEmailVerified(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	plain := newVerifier(t, identity.Options{}, iss.Config("airlock", "groups"))
	trustCfg := iss.Config("airlock", "groups")
	trustCfg.TrustEmail = true
	trusting := newVerifier(t, identity.Options{}, trustCfg)
	cases := []struct {
		name   string
		claims map[string]any
		v      *identity.OIDCVerifier
		want   bool
	}{
		{"no claim", map[string]any{"email": "boss@example.com"}, plain, false},
		{"claim false", map[string]any{"email": "boss@example.com", "email_verified": false}, plain, false},
		{"claim true", map[string]any{"email": "boss@example.com", "email_verified": true}, plain, true},
		{"claim string true", map[string]any{"email": "boss@example.com", "email_verified": "true"}, plain, true},
		{"claim string other", map[string]any{"email": "boss@example.com", "email_verified": "yes"}, plain, false},
		{"hd on a non-Google issuer", map[string]any{"email": "boss@example.com", "hd": "example.com"}, plain, false},
		{"trusting issuer", map[string]any{"email": "boss@example.com"}, trusting, true},
		{"trusting issuer, no e-mail", map[string]any{}, trusting, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := c.v.Verify(context.Background(), iss.Mint(c.claims))
			if err != nil {
				t.Fatal(err)
			}
			if id.EmailVerified != c.want {
				t.Errorf("EmailVerified = %v, want %v (email %q)", id.EmailVerified, c.want, id.Email)
			}
		})
	}
}
