// Package identitytest runs a real OIDC issuer for tests: an httptest server
// serving discovery and a JWKS with generated keys, and a minter of honest
// and adversarial tokens.
package identitytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/airlockhq/airlock/identity"
)

// DefaultAudience is the audience of minted tokens unless a claim says otherwise.
const DefaultAudience = "airlock"

// DefaultSubject is the subject of minted tokens unless a claim says otherwise.
const DefaultSubject = "test-subject"

// Issuer is a running test OIDC issuer.
type Issuer struct {
	t   testing.TB
	srv *httptest.Server
	alg jose.SignatureAlgorithm

	mu       sync.Mutex
	keys     []signingKey  // all published; the last one signs
	stranger crypto.Signer // an unpublished key, made on first use

	jwksHits      atomic.Int64
	discoveryHits atomic.Int64
	down          atomic.Bool

	signIn signIn // the authorization code flow (codeflow.go)
}

type signingKey struct {
	kid  string
	priv crypto.Signer
}

// Option configures NewIssuer.
type Option func(*Issuer)

// WithAlgorithm signs with alg (RS256 by default; PS256, ES256, ES384,
// EdDSA and the other RSA variants are supported).
func WithAlgorithm(alg string) Option {
	return func(i *Issuer) { i.alg = jose.SignatureAlgorithm(alg) }
}

// Down starts the issuer unavailable: every request gets a 503 until
// SetDown(false).
func Down() Option { return func(i *Issuer) { i.down.Store(true) } }

// NewIssuer starts an issuer with one generated key; it stops at the end of
// the test.
func NewIssuer(t testing.TB, opts ...Option) *Issuer {
	t.Helper()
	i := &Issuer{t: t, alg: jose.RS256}
	for _, o := range opts {
		o(i)
	}
	i.keys = []signingKey{i.newKey()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		i.discoveryHits.Add(1)
		if i.down.Load() {
			http.Error(w, "issuer down", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, map[string]any{
			"issuer":                                i.URL(),
			"jwks_uri":                              i.URL() + "/jwks",
			"authorization_endpoint":                i.URL() + "/authorize",
			"token_endpoint":                        i.URL() + "/token",
			"code_challenge_methods_supported":      []string{"S256"},
			"response_types_supported":              []string{"code", "id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{string(i.alg)},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		i.jwksHits.Add(1)
		if i.down.Load() {
			http.Error(w, "issuer down", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, i.JWKS())
	})
	i.serveSignIn(mux)
	i.srv = httptest.NewServer(mux)
	t.Cleanup(i.srv.Close)
	return i
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (i *Issuer) newKey() signingKey {
	i.t.Helper()
	var priv crypto.Signer
	var err error
	switch i.alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES512:
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		i.t.Fatalf("identitytest: generate key: %v", err)
	}
	return signingKey{kid: randomKID(), priv: priv}
}

func (i *Issuer) strangerKey() crypto.Signer {
	i.t.Helper()
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stranger == nil {
		i.stranger = i.newKey().priv
	}
	return i.stranger
}

func randomKID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// URL is the issuer URL (the "iss" of its tokens).
func (i *Issuer) URL() string { return i.srv.URL }

// Config returns an IssuerConfig trusting this issuer through discovery.
func (i *Issuer) Config(aud, groupsClaim string) identity.IssuerConfig {
	return identity.IssuerConfig{Issuer: i.URL(), Audience: aud, GroupsClaim: groupsClaim}
}

// JWKSHits counts the requests for the JWKS so far.
func (i *Issuer) JWKSHits() int { return int(i.jwksHits.Load()) }

// DiscoveryHits counts the requests for the discovery document so far.
func (i *Issuer) DiscoveryHits() int { return int(i.discoveryHits.Load()) }

// SetDown makes every request fail with 503 (true) or be served again (false).
func (i *Issuer) SetDown(down bool) { i.down.Store(down) }

// JWKS is the published key set.
func (i *Issuer) JWKS() jose.JSONWebKeySet {
	i.mu.Lock()
	defer i.mu.Unlock()
	set := jose.JSONWebKeySet{}
	for _, k := range i.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(i.alg), Use: "sig"})
	}
	return set
}

// KID is the key id that signs new tokens.
func (i *Issuer) KID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[len(i.keys)-1].kid
}

// Rotate publishes a new key, which signs tokens from now on; older keys
// stay published. It returns the new key id.
func (i *Issuer) Rotate() string {
	i.t.Helper()
	k := i.newKey()
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = append(i.keys, k)
	return k.kid
}

// RemoveKey stops publishing the key kid, as an issuer does when it retires
// or revokes a key. The signing key cannot be removed.
func (i *Issuer) RemoveKey(kid string) {
	i.t.Helper()
	i.mu.Lock()
	defer i.mu.Unlock()
	for n, k := range i.keys {
		if k.kid == kid {
			if n == len(i.keys)-1 {
				i.t.Fatalf("identitytest: RemoveKey(%q): that key signs new tokens; Rotate first", kid)
			}
			i.keys = append(i.keys[:n], i.keys[n+1:]...)
			return
		}
	}
	i.t.Fatalf("identitytest: RemoveKey(%q): no such key", kid)
}

// Mint signs a token with the current key. Defaults: iss (this issuer), aud
// "airlock", sub "test-subject", iat now, exp in one hour; claims override
// them, and a claim set to nil is left out.
func (i *Issuer) Mint(claims map[string]any) string {
	i.t.Helper()
	return i.MintWith(claims)
}

// MintOption shapes an adversarial token for MintWith.
type MintOption func(*mint)

type mint struct {
	claims  map[string]any
	header  map[string]any
	key     crypto.Signer
	alg     string
	kid     string
	noKID   bool
	none    bool
	hsPEM   bool
	forged  bool
	unknown bool
}

// Expired sets exp an hour ago (and iat two hours ago).
func Expired() MintOption {
	return func(m *mint) {
		m.claims["exp"] = time.Now().Add(-time.Hour).Unix()
		m.claims["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	}
}

// NotYetValid sets nbf an hour from now.
func NotYetValid() MintOption {
	return func(m *mint) { m.claims["nbf"] = time.Now().Add(time.Hour).Unix() }
}

// Forged signs with a fresh key that is not published, under the current
// key's id.
func Forged() MintOption { return func(m *mint) { m.forged = true } }

// UnknownKID signs with a fresh unpublished key under a new key id.
func UnknownKID() MintOption { return func(m *mint) { m.unknown = true } }

// WithKID signs with the current key but names kid in the header.
func WithKID(kid string) MintOption { return func(m *mint) { m.kid = kid } }

// WithoutKID leaves the kid out of the header.
func WithoutKID() MintOption { return func(m *mint) { m.noKID = true } }

// AlgNone produces an unsigned token with "alg": "none".
func AlgNone() MintOption { return func(m *mint) { m.none = true } }

// HS256WithPublicKey signs with HMAC-SHA256 keyed by the PEM of the current
// public key: the classic algorithm confusion attack.
func HS256WithPublicKey() MintOption { return func(m *mint) { m.hsPEM = true } }

// SignedWith signs with key under alg (for instance a key the issuer does
// not publish, or an algorithm other than the issuer's), keeping the kid.
func SignedWith(alg string, key crypto.Signer) MintOption {
	return func(m *mint) { m.alg, m.key = alg, key }
}

// WithHeader sets an extra header field.
func WithHeader(name string, value any) MintOption {
	return func(m *mint) { m.header[name] = value }
}

// MintWith mints a token like Mint, shaped by opts.
func (i *Issuer) MintWith(claims map[string]any, opts ...MintOption) string {
	i.t.Helper()
	now := time.Now()
	m := &mint{
		claims: map[string]any{
			"iss": i.URL(),
			"aud": DefaultAudience,
			"sub": DefaultSubject,
			"iat": now.Unix(),
			"exp": now.Add(time.Hour).Unix(),
		},
		header: map[string]any{"typ": "JWT"},
	}
	for _, o := range opts {
		o(m)
	}
	for k, v := range claims {
		if v == nil {
			delete(m.claims, k)
			continue
		}
		m.claims[k] = v
	}
	i.mu.Lock()
	cur := i.keys[len(i.keys)-1]
	i.mu.Unlock()
	key, kid := cur.priv, cur.kid
	switch {
	case m.forged:
		key = i.strangerKey()
	case m.unknown:
		key, kid = i.strangerKey(), randomKID()
	}
	alg := i.alg
	if m.key != nil {
		key, alg = m.key, jose.SignatureAlgorithm(m.alg)
	}
	if m.kid != "" {
		kid = m.kid
	}
	if !m.noKID {
		m.header["kid"] = kid
	}
	switch {
	case m.none:
		m.header["alg"] = "none"
		return i.encode(m) + "."
	case m.hsPEM:
		m.header["alg"] = "HS256"
		der, err := x509.MarshalPKIXPublicKey(cur.priv.Public())
		if err != nil {
			i.t.Fatalf("identitytest: marshal public key: %v", err)
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		signing := i.encode(m)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	return i.sign(m, alg, key)
}

func (i *Issuer) encode(m *mint) string {
	i.t.Helper()
	h, err := json.Marshal(m.header)
	if err != nil {
		i.t.Fatalf("identitytest: header: %v", err)
	}
	p, err := json.Marshal(m.claims)
	if err != nil {
		i.t.Fatalf("identitytest: claims: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
}

func (i *Issuer) sign(m *mint, alg jose.SignatureAlgorithm, key crypto.Signer) string {
	i.t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{}}
	for k, v := range m.header {
		if k == "kid" || k == "alg" {
			continue
		}
		opts.ExtraHeaders[jose.HeaderKey(k)] = v
	}
	sk := jose.SigningKey{Algorithm: alg, Key: key}
	if kid, ok := m.header["kid"].(string); ok {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		i.t.Fatalf("identitytest: signer: %v", err)
	}
	p, err := json.Marshal(m.claims)
	if err != nil {
		i.t.Fatalf("identitytest: claims: %v", err)
	}
	jws, err := signer.Sign(p)
	if err != nil {
		i.t.Fatalf("identitytest: sign: %v", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		i.t.Fatalf("identitytest: serialize: %v", err)
	}
	return tok
}
