package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// IssuerConfig is one trusted OIDC issuer.
type IssuerConfig struct {
	// Issuer is the issuer URL, compared exactly with the token's "iss".
	Issuer string
	// Audience must be one of the token's "aud" values.
	Audience string
	// GroupsClaim names the claim holding the caller's groups (default
	// "groups"); a dotted name such as "realm_access.roles" reaches into
	// nested objects when no claim has that exact name.
	GroupsClaim string
	// JWKSURL, when set, is used instead of the discovery document's jwks_uri
	// and discovery is skipped.
	JWKSURL string
	// TrustEmail marks every "email" claim of this issuer as verified, for
	// issuers that only ever issue e-mails they own but do not send
	// "email_verified".
	TrustEmail bool
	// AllowedSubjects, AllowedEmails, AllowedEmailDomains and AllowedHD
	// restrict who may present this issuer's tokens; see restriction.
	AllowedSubjects     []string
	AllowedEmails       []string
	AllowedEmailDomains []string
	AllowedHD           []string
	// AllowUnrestricted trusts a public issuer (PublicIssuer: anyone can
	// obtain its tokens) without any allowed_* restriction. Without it such
	// an issuer is a configuration error.
	AllowUnrestricted bool
	// SubjectClaim names the claim that is the Identity's Subject (default
	// "sub"); EmailClaim the one that is its Email (default "email"). A
	// dotted name reaches into nested objects (see ClaimAt).
	SubjectClaim string
	EmailClaim   string
	// Claims maps extra names to claim paths: each name is set in the
	// Identity's Claims to the value at its path (and left out when the
	// token has none), e.g. namespace: kubernetes.io.namespace.
	Claims map[string]string
}

// Options tune an OIDCVerifier. The zero value is usable.
type Options struct {
	// Leeway is the clock skew tolerated on exp and nbf; zero tolerates none.
	Leeway time.Duration
	// KeyRefreshInterval is the minimum gap between two JWKS fetches for one
	// issuer triggered by an unknown key id (default 10s).
	KeyRefreshInterval time.Duration
	// CacheSize bounds the verified tokens kept until their expiry (default
	// 10000; negative disables the cache).
	CacheSize int
	// HTTPClient fetches discovery documents and key sets (default: a client
	// with a 10s timeout).
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives key loading events; it never sees a token.
	Logger *slog.Logger
	// MaxTokenLifetime refuses a token whose exp - iat exceeds it, or,
	// without iat, whose exp is further than this from now (default 24h).
	MaxTokenLifetime time.Duration
}

// Stats counts the verifier's work, for metrics and tests.
type Stats struct {
	// CacheHits are verifications answered from the cache.
	CacheHits int64
	// CacheMisses are verifications that needed the full check.
	CacheMisses int64
	// SignatureChecks are signature verifications attempted (one per key tried).
	SignatureChecks int64
	// KeyFetches are successful JWKS fetches.
	KeyFetches int64
	// CachedTokens is the number of tokens in the cache now.
	CachedTokens int
}

type counters struct {
	cacheHits, cacheMisses, signatureChecks, keyFetches atomic.Int64
}

// allowedAlgs are the signature algorithms accepted: asymmetric ones only,
// so that neither "none" nor an HMAC keyed with a public key can pass.
var allowedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

var allowedAlgNames = func() []string {
	out := make([]string, len(allowedAlgs))
	for i, a := range allowedAlgs {
		out[i] = string(a)
	}
	return out
}()

// maxTokenBytes bounds the size of a token worth parsing.
const maxTokenBytes = 16 << 10

// googleIssuer may appear without its scheme in Google's tokens.
const googleIssuer = "https://accounts.google.com"

type issuerState struct {
	cfg         IssuerConfig
	keys        *keySet
	verifier    *oidc.IDTokenVerifier
	restriction restriction
}

// OIDCVerifier verifies OIDC tokens from several issuers with go-oidc. It is
// safe for concurrent use. Verified tokens are cached until they expire, so
// a busy agent costs one signature check per token.
type OIDCVerifier struct {
	now      func() time.Time
	leeway   time.Duration
	lifetime time.Duration
	interval time.Duration
	client   *http.Client
	log      *slog.Logger
	cache    *tokenCache
	stats    counters

	mu      sync.Mutex // serialises changes to issuers
	issuers atomic.Pointer[map[string]*issuerState]
}

var _ Verifier = (*OIDCVerifier)(nil)

// NewOIDCVerifier builds a verifier trusting issuers. It tries to load every
// issuer's keys before returning, but an unreachable issuer is not an error:
// its keys are fetched again on demand (with backoff), and until then its
// tokens are refused with an *Error of kind Unavailable. Configuration errors
// (empty or invalid issuer URL, missing audience, duplicate issuer) are errors.
func NewOIDCVerifier(ctx context.Context, issuers []IssuerConfig, opts Options) (*OIDCVerifier, error) {
	v := &OIDCVerifier{
		now:      opts.Now,
		leeway:   max(opts.Leeway, 0),
		lifetime: opts.MaxTokenLifetime,
		interval: opts.KeyRefreshInterval,
		client:   opts.HTTPClient,
		log:      opts.Logger,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.interval <= 0 {
		v.interval = 10 * time.Second
	}
	if v.lifetime <= 0 {
		v.lifetime = DefaultMaxTokenLifetime
	}
	if v.client == nil {
		v.client = &http.Client{Timeout: fetchTimeout}
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case opts.CacheSize == 0:
		v.cache = newTokenCache(10000)
	case opts.CacheSize > 0:
		v.cache = newTokenCache(opts.CacheSize)
	}
	m := make(map[string]*issuerState, len(issuers))
	for i, ic := range issuers {
		ic, err := normaliseIssuer(ic)
		if err != nil {
			return nil, fmt.Errorf("identity: issuers[%d]: %w", i, err)
		}
		if _, dup := m[ic.Issuer]; dup {
			return nil, fmt.Errorf("identity: issuers[%d]: issuer %q is listed twice", i, ic.Issuer)
		}
		ks := newRemoteKeySet(ic.Issuer, ic.JWKSURL, v.client, v.now, v.interval, v.log, &v.stats)
		m[ic.Issuer] = v.newIssuerState(ic, ks)
	}
	v.issuers.Store(&m)

	var wg sync.WaitGroup
	for _, is := range m {
		wg.Go(func() {
			lctx, cancel := context.WithTimeout(ctx, fetchTimeout)
			defer cancel()
			_ = is.keys.ensureLoaded(lctx)
		})
	}
	wg.Wait()
	return v, nil
}

func (v *OIDCVerifier) newIssuerState(ic IssuerConfig, ks *keySet) *issuerState {
	leeway := v.leeway
	now := v.now
	cfg := &oidc.Config{
		ClientID:             ic.Audience,
		SupportedSigningAlgs: allowedAlgNames,
		Now:                  func() time.Time { return now().Add(-leeway) },
	}
	return &issuerState{cfg: ic, keys: ks, verifier: oidc.NewVerifier(ic.Issuer, ks, cfg), restriction: newRestriction(ic)}
}

func normaliseIssuer(ic IssuerConfig) (IssuerConfig, error) {
	if strings.TrimSpace(ic.Issuer) == "" {
		return ic, errors.New("issuer is empty")
	}
	if err := checkURL(ic.Issuer); err != nil {
		return ic, fmt.Errorf("issuer %q: %w", ic.Issuer, err)
	}
	if ic.JWKSURL != "" {
		if err := checkURL(ic.JWKSURL); err != nil {
			return ic, fmt.Errorf("issuer %q: jwks_url %q: %w", ic.Issuer, ic.JWKSURL, err)
		}
	}
	if strings.TrimSpace(ic.Audience) == "" {
		return ic, fmt.Errorf("issuer %q: audience is empty", ic.Issuer)
	}
	if ic.GroupsClaim == "" {
		ic.GroupsClaim = "groups"
	}
	if ic.SubjectClaim == "" {
		ic.SubjectClaim = "sub"
	}
	if ic.EmailClaim == "" {
		ic.EmailClaim = "email"
	}
	if err := checkRestriction(ic); err != nil {
		return ic, fmt.Errorf("issuer %q: %w", ic.Issuer, err)
	}
	if !ic.AllowUnrestricted {
		if err := ic.CheckPublic(); err != nil {
			return ic, fmt.Errorf("issuer %q: %w", ic.Issuer, err)
		}
	}
	if err := CheckClaimNames(ic.Claims); err != nil {
		return ic, fmt.Errorf("issuer %q: %w", ic.Issuer, err)
	}
	return ic, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return errors.New("must be an http or https URL")
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not have a query or fragment")
	}
	return nil
}

// AddStatic trusts iss with fixed keys, without discovery or HTTP: the way
// to trust an in-process issuer such as the DevIssuer. Only asymmetric
// public keys are accepted (private keys are reduced to their public half).
func (v *OIDCVerifier) AddStatic(iss IssuerConfig, keys []jose.JSONWebKey) error {
	ic, err := normaliseIssuer(iss)
	if err != nil {
		return fmt.Errorf("identity: static issuer: %w", err)
	}
	pubs := make([]jose.JSONWebKey, 0, len(keys))
	for i, k := range keys {
		pub, ok := publicKey(k)
		if !ok {
			return fmt.Errorf("identity: static issuer %q: key %d is not an asymmetric signing key", ic.Issuer, i)
		}
		pubs = append(pubs, pub)
	}
	if len(pubs) == 0 {
		return fmt.Errorf("identity: static issuer %q: no keys", ic.Issuer)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	old := *v.issuers.Load()
	if _, dup := old[ic.Issuer]; dup {
		return fmt.Errorf("identity: static issuer %q is already trusted", ic.Issuer)
	}
	m := make(map[string]*issuerState, len(old)+1)
	for k, s := range old {
		m[k] = s
	}
	m[ic.Issuer] = v.newIssuerState(ic, newStaticKeySet(ic.Issuer, pubs, &v.stats))
	v.issuers.Store(&m)
	return nil
}

// Healthy returns nil when every issuer's keys are loaded, else an error
// naming the issuers whose keys are missing and why.
func (v *OIDCVerifier) Healthy() error {
	m := *v.issuers.Load()
	var bad []string
	for name, is := range m {
		if ok, why := is.keys.loaded(); !ok {
			bad = append(bad, fmt.Sprintf("%s (%s)", name, why))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("identity: keys not loaded for issuer %s", strings.Join(bad, "; "))
}

// Issuers lists the trusted issuer URLs, sorted.
func (v *OIDCVerifier) Issuers() []string {
	m := *v.issuers.Load()
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Stats returns the verifier's counters.
func (v *OIDCVerifier) Stats() Stats {
	s := Stats{
		CacheHits:       v.stats.cacheHits.Load(),
		CacheMisses:     v.stats.cacheMisses.Load(),
		SignatureChecks: v.stats.signatureChecks.Load(),
		KeyFetches:      v.stats.keyFetches.Load(),
	}
	if v.cache != nil {
		s.CachedTokens = v.cache.len()
	}
	return s
}

// Verify checks raw and returns the Identity it proves. Every refusal is an
// *Error whose message tells the agent why without echoing the token. The
// Identity's Groups and Claims may be shared with the cache: treat them as
// read-only.
func (v *OIDCVerifier) Verify(ctx context.Context, raw string) (Identity, error) {
	if raw == "" {
		return Identity{}, &Error{Kind: NoToken, Msg: `no token: send an "Authorization: Bearer <OIDC token>" header`}
	}
	if len(raw) > maxTokenBytes {
		return Identity{}, malformed("the bearer token is longer than 16 KiB")
	}
	now := v.now()
	var key [32]byte
	if v.cache != nil {
		key = tokenKey(raw)
		if id, ok := v.cache.get(key, now); ok {
			v.stats.cacheHits.Add(1)
			return id, nil
		}
		v.stats.cacheMisses.Add(1)
	}
	id, err := v.verify(ctx, raw, now)
	if err != nil {
		return Identity{}, err
	}
	if v.cache != nil {
		v.cache.put(key, id, now)
	}
	return id, nil
}

// audience is the "aud" claim: one string or a list of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// unverified holds the claims read before the signature is checked: used
// only to pick the issuer and to explain a refusal, never trusted alone.
type unverified struct {
	Iss string   `json:"iss"`
	Sub string   `json:"sub"`
	Aud audience `json:"aud"`
	Exp *float64 `json:"exp"`
	Nbf *float64 `json:"nbf"`
}

func malformed(msg string) *Error { return &Error{Kind: Malformed, Msg: msg} }

func (v *OIDCVerifier) verify(ctx context.Context, raw string, now time.Time) (Identity, error) {
	switch strings.Count(raw, ".") {
	case 2:
	case 4:
		return Identity{}, malformed("encrypted tokens (JWE) are not accepted; send a signed JWT")
	default:
		return Identity{}, malformed("the bearer token is not a JWT (three base64url parts separated by dots)")
	}
	h, rest, _ := strings.Cut(raw, ".")
	p, _, _ := strings.Cut(rest, ".")
	hb, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return Identity{}, malformed("the token's header is not base64url")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return Identity{}, malformed("the token's header is not a JSON object")
	}
	if !slices.Contains(allowedAlgNames, hdr.Alg) {
		return Identity{}, &Error{Kind: BadSignature, Msg: fmt.Sprintf("the token's algorithm %s is not accepted; sign it with one of %s", quote(hdr.Alg), strings.Join(allowedAlgNames, ", "))}
	}
	pb, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return Identity{}, malformed("the token's payload is not base64url")
	}
	var pre unverified
	if err := json.Unmarshal(pb, &pre); err != nil {
		return Identity{}, malformed("the token's claims are not a JSON object of the expected types (iss, sub and aud strings, exp and nbf numbers)")
	}
	if pre.Iss == "" {
		return Identity{}, malformed("the token has no iss claim")
	}
	m := *v.issuers.Load()
	is := m[pre.Iss]
	if is == nil && pre.Iss == "accounts.google.com" {
		is = m[googleIssuer]
	}
	if is == nil {
		return Identity{}, &Error{Kind: UnknownIssuer, Msg: fmt.Sprintf("the token's issuer %s is not trusted by this gateway", quote(pre.Iss))}
	}
	if pre.Exp == nil {
		return Identity{}, malformed("the token has no exp claim")
	}
	jws, err := jose.ParseSigned(raw, allowedAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return Identity{}, malformed("the bearer token is not a well-formed signed JWT")
	}
	st := &verifyState{jws: jws}
	tok, err := is.verifier.Verify(context.WithValue(ctx, verifyStateKey{}, st), raw)
	if err != nil {
		return Identity{}, v.classify(is, st, err, &pre, now)
	}
	if pre.Nbf != nil {
		if nbf := unixTime(*pre.Nbf); now.Add(v.leeway).Before(nbf) {
			return Identity{}, notYetValid(nbf)
		}
	}
	if err := v.checkLifetime(tok.IssuedAt, tok.Expiry, now); err != nil {
		return Identity{}, err
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Identity{}, malformed("the token's claims are not a JSON object")
	}
	subject := tok.Subject
	if is.cfg.SubjectClaim != "sub" {
		subject, _ = ClaimAt(claims, is.cfg.SubjectClaim).(string)
	}
	if subject == "" {
		return Identity{}, malformed("the token has no " + is.cfg.SubjectClaim + " claim (its subject)")
	}
	id := Identity{
		Subject: subject,
		Issuer:  is.cfg.Issuer,
		Groups:  groupsFrom(claims, is.cfg.GroupsClaim),
		Claims:  mapClaims(claims, is.cfg.Claims),
		Expiry:  tok.Expiry,
	}
	if e, ok := ClaimAt(claims, is.cfg.EmailClaim).(string); ok {
		id.Email = e
		id.EmailVerified = e != "" && emailVerified(claims, e, is.cfg)
	}
	if act, ok := claims["act"].(map[string]any); ok {
		if s, ok := act["sub"].(string); ok {
			id.Actor = s
		}
	}
	if err := is.restriction.admit(id, claims, is.cfg.Issuer); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// classify turns a go-oidc refusal into an *Error that says why.
func (v *OIDCVerifier) classify(is *issuerState, st *verifyState, err error, pre *unverified, now time.Time) *Error {
	var exp *oidc.TokenExpiredError
	if errors.As(err, &exp) {
		return &Error{Kind: Expired, Msg: fmt.Sprintf("the token expired at %s (%s ago); get a new token",
			exp.Expiry.UTC().Format(time.RFC3339), now.Sub(exp.Expiry).Round(time.Second))}
	}
	if st.err != nil {
		return st.err
	}
	if !st.sigOK {
		return malformed("the bearer token is not a well-formed signed JWT")
	}
	// The signature held, so the claims read earlier are the issuer's.
	if !slices.Contains(pre.Aud, is.cfg.Audience) {
		return &Error{Kind: WrongAudience, Msg: fmt.Sprintf("the token's audience %s does not include %s, the audience this gateway requires for issuer %s",
			quoteList(pre.Aud), quote(is.cfg.Audience), quote(is.cfg.Issuer))}
	}
	if pre.Nbf != nil {
		if nbf := unixTime(*pre.Nbf); now.Add(v.leeway).Before(nbf) {
			return notYetValid(nbf)
		}
	}
	return malformed("the token was refused: " + sanitise(strings.TrimPrefix(err.Error(), "oidc: "), 160))
}

func notYetValid(nbf time.Time) *Error {
	return &Error{Kind: Expired, Msg: fmt.Sprintf("the token is not valid yet: its nbf is %s", nbf.UTC().Format(time.RFC3339))}
}

func unixTime(f float64) time.Time {
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

// groupsFrom reads the groups claim: a list (non-string members ignored) or
// a single string. A dotted name reaches into nested objects when no claim
// has that exact name.
func groupsFrom(claims map[string]any, name string) []string {
	switch g := ClaimAt(claims, name).(type) {
	case string:
		if g != "" {
			return []string{g}
		}
	case []any:
		out := make([]string, 0, len(g))
		for _, e := range g {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return []string{}
}

// quote renders an untrusted value for a message: printable ASCII only,
// at most 80 characters, in double quotes.
func quote(s string) string { return `"` + sanitise(s, 80) + `"` }

func quoteList(l []string) string {
	if len(l) == 0 {
		return "(none)"
	}
	out := make([]string, 0, min(len(l), 5))
	for i, s := range l {
		if i == 5 {
			out = append(out, "...")
			break
		}
		out = append(out, quote(s))
	}
	return "[" + strings.Join(out, ", ") + "]"
}

func sanitise(s string, limit int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == limit {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// emailVerified reports whether the issuer vouches for email: an
// "email_verified" claim of true (or "true", as some issuers send it), an
// issuer configured with TrustEmail, or a Google token whose "hd" claim (the
// Workspace domain that owns the account) is the e-mail's domain. An e-mail
// read from another claim than "email" is verified only by TrustEmail:
// email_verified speaks of the "email" claim.
func emailVerified(claims map[string]any, email string, cfg IssuerConfig) bool {
	if cfg.EmailClaim != "" && cfg.EmailClaim != "email" {
		return cfg.TrustEmail
	}
	switch v := claims["email_verified"].(type) {
	case bool:
		if v {
			return true
		}
	case string:
		if strings.EqualFold(v, "true") {
			return true
		}
	}
	if cfg.TrustEmail {
		return true
	}
	if cfg.Issuer == googleIssuer {
		hd, _ := claims["hd"].(string)
		_, domain, ok := strings.Cut(email, "@")
		return ok && hd != "" && strings.EqualFold(hd, domain)
	}
	return false
}
