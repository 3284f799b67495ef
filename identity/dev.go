package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DevMaxTTL is the longest lifetime of a development token.
const DevMaxTTL = 24 * time.Hour

// DevIssuer is a development OIDC issuer for local trials: it holds a fresh
// ECDSA P-256 key made at start, serves discovery and its JWKS, and mints
// tokens, over HTTP only to loopback clients. Its keys die with the process.
type DevIssuer struct {
	issuer   string
	audience string
	path     string
	kid      string
	key      *ecdsa.PrivateKey
	signer   jose.Signer
	now      func() time.Time
	login    *LoginServer
}

// NewDevIssuer makes a development issuer named issuerURL (for example
// http://127.0.0.1:8080/dev) whose tokens carry audience.
func NewDevIssuer(issuerURL, audience string) (*DevIssuer, error) {
	if err := checkURL(issuerURL); err != nil {
		return nil, fmt.Errorf("identity: dev issuer %q: %w", issuerURL, err)
	}
	if audience == "" {
		return nil, errors.New("identity: dev issuer: audience is empty")
	}
	u, _ := url.Parse(issuerURL)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: dev issuer: generate key: %w", err)
	}
	var kb [8]byte
	if _, err := rand.Read(kb[:]); err != nil {
		return nil, fmt.Errorf("identity: dev issuer: key id: %w", err)
	}
	kid := "dev-" + hex.EncodeToString(kb[:])
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("identity: dev issuer: signer: %w", err)
	}
	d := &DevIssuer{
		issuer:   strings.TrimSuffix(issuerURL, "/"),
		audience: audience,
		path:     strings.TrimSuffix(u.EscapedPath(), "/"),
		kid:      kid,
		key:      key,
		signer:   signer,
		now:      time.Now,
	}
	d.login = NewLoginServer(LoginForm{
		Title: "airlock dev sign-in",
		Fields: []LoginField{
			{Name: "sub", Label: "Subject (who you are)", Value: "alice"},
			{Name: "email", Label: "E-mail (optional; vouched for)", Type: "email", Value: "alice@example.com"},
			{Name: "groups", Label: "Groups, comma-separated", Value: "sre", Hint: "Approvers of the example policies are in group sre."},
		},
		Authenticate: devLogin,
	}, d.sign)
	return d, nil
}

// devLogin reads the dev sign-in form: anyone on loopback may be anybody.
func devLogin(f url.Values) (map[string]any, error) {
	sub := strings.TrimSpace(f.Get("sub"))
	if sub == "" {
		return nil, errors.New("the subject is empty")
	}
	claims := map[string]any{"sub": sub}
	if e := strings.TrimSpace(f.Get("email")); e != "" {
		claims["email"], claims["email_verified"] = e, true
	}
	groups := []string{}
	for p := range strings.SplitSeq(f.Get("groups"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			groups = append(groups, p)
		}
	}
	claims["groups"] = groups
	return claims, nil
}

// RegisterClient lets an OAuth client (the console) sign people in with
// the authorization code flow: ID tokens for it carry its id as audience.
func (d *DevIssuer) RegisterClient(id, secret string, redirectURIs ...string) {
	d.login.RegisterClient(id, secret, redirectURIs...)
}

// ClientConfig is the IssuerConfig that verifies the ID tokens issued to
// client id.
func (d *DevIssuer) ClientConfig(id string) IssuerConfig {
	c := d.Config()
	c.Audience = id
	return c
}

// sign signs claims (sub, aud, ...) as an hour-long token of this issuer.
func (d *DevIssuer) sign(claims map[string]any) (string, error) {
	now := d.now()
	c := map[string]any{"iss": d.issuer, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	tok, err := jwt.Signed(d.signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("identity: dev token: sign: %w", err)
	}
	return tok, nil
}

// Config is the IssuerConfig that trusts this issuer (groups in "groups").
func (d *DevIssuer) Config() IssuerConfig {
	return IssuerConfig{Issuer: d.issuer, Audience: d.audience, GroupsClaim: "groups", JWKSURL: d.issuer + "/jwks"}
}

// Keys returns the issuer's public keys, for OIDCVerifier.AddStatic.
func (d *DevIssuer) Keys() []jose.JSONWebKey {
	return []jose.JSONWebKey{{Key: &d.key.PublicKey, KeyID: d.kid, Algorithm: string(jose.ES256), Use: "sig"}}
}

// Mint signs a token for sub. email, groups and actor (the RFC 8693 act.sub)
// are optional; ttl defaults to one hour and may not exceed DevMaxTTL.
func (d *DevIssuer) Mint(sub, email string, groups []string, actor string, ttl time.Duration) (string, error) {
	if sub == "" {
		return "", errors.New("identity: dev token: sub is empty")
	}
	if ttl == 0 {
		ttl = time.Hour
	}
	if ttl < 0 || ttl > DevMaxTTL {
		return "", fmt.Errorf("identity: dev token: ttl %s is not between 0 and %s", ttl, DevMaxTTL)
	}
	now := d.now()
	claims := map[string]any{
		"iss": d.issuer,
		"aud": d.audience,
		"sub": sub,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
	if email != "" {
		// The dev issuer vouches for the address it was asked to put in
		// the token: a local trial has no mailbox to prove.
		claims["email"] = email
		claims["email_verified"] = true
	}
	if groups == nil {
		groups = []string{}
	}
	claims["groups"] = groups
	if actor != "" {
		claims["act"] = map[string]any{"sub": actor}
	}
	tok, err := jwt.Signed(d.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("identity: dev token: sign: %w", err)
	}
	return tok, nil
}

// Handler serves, under the issuer URL's path, the discovery document
// (/.well-known/openid-configuration), the JWKS (/jwks), the token
// endpoint (/token, GET or POST with sub, groups=a,b, actor, email, ttl;
// or a POST with grant_type=authorization_code from a registered client)
// and the authorization endpoint (/authorize: a sign-in form where anyone
// on loopback types who they are). The token and authorization endpoints
// answer loopback clients only, judged by the connection's remote
// address; any forwarding header makes them refuse too.
func (d *DevIssuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+d.path+"/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                                d.issuer,
			"jwks_uri":                              d.issuer + "/jwks",
			"token_endpoint":                        d.issuer + "/token",
			"authorization_endpoint":                d.issuer + "/authorize",
			"response_types_supported":              []string{"code", "id_token"},
			"grant_types_supported":                 []string{"authorization_code"},
			"code_challenge_methods_supported":      []string{"S256"},
			"scopes_supported":                      []string{"openid", "email", "profile"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{string(jose.ES256)},
		})
	})
	mux.HandleFunc("GET "+d.path+"/jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: d.Keys()})
	})
	token := func(w http.ResponseWriter, r *http.Request) {
		if !fromLoopback(r) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "the dev token endpoint answers loopback clients only"})
			return
		}
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad form: " + err.Error()})
			return
		}
		if r.Method == http.MethodPost && r.PostForm.Get("grant_type") != "" {
			d.login.Token(w, r)
			return
		}
		var ttl time.Duration
		if s := r.Form.Get("ttl"); s != "" {
			var err error
			if ttl, err = time.ParseDuration(s); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("ttl %q is not a duration such as 1h", sanitise(s, 40))})
				return
			}
		}
		var groups []string
		for _, g := range r.Form["groups"] {
			for p := range strings.SplitSeq(g, ",") {
				if p = strings.TrimSpace(p); p != "" {
					groups = append(groups, p)
				}
			}
		}
		tok, err := d.Mint(r.Form.Get("sub"), r.Form.Get("email"), groups, r.Form.Get("actor"), ttl)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": strings.TrimPrefix(err.Error(), "identity: ")})
			return
		}
		if ttl == 0 {
			ttl = time.Hour
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"access_token": tok,
			"id_token":     tok,
			"token_type":   "Bearer",
			"expires_in":   int64(ttl / time.Second),
		})
	}
	mux.HandleFunc("GET "+d.path+"/token", token)
	mux.HandleFunc("POST "+d.path+"/token", token)
	mux.HandleFunc(d.path+"/authorize", func(w http.ResponseWriter, r *http.Request) {
		if !fromLoopback(r) {
			http.Error(w, "the dev sign-in answers loopback clients only", http.StatusForbidden)
			return
		}
		d.login.Authorize(w, r)
	})
	return mux
}

// fromLoopback reports whether r came straight from a loopback address.
func fromLoopback(r *http.Request) bool {
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Envoy-External-Address"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// DevTokenRequest asks a DevIssuer's token endpoint for a token.
type DevTokenRequest struct {
	// Sub is the subject (required).
	Sub string
	// Email is the "email" claim, optional.
	Email string
	// Groups go into the "groups" claim.
	Groups []string
	// Actor becomes act.sub, optional.
	Actor string
	// TTL is the token's lifetime (default one hour).
	TTL time.Duration
}

// RequestDevToken fetches a token from the dev issuer at issuerURL (for
// example http://127.0.0.1:8080/dev) over HTTP; it must run on the same host.
func RequestDevToken(ctx context.Context, client *http.Client, issuerURL string, req DevTokenRequest) (string, error) {
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	q := url.Values{"sub": {req.Sub}}
	if req.Email != "" {
		q.Set("email", req.Email)
	}
	if len(req.Groups) > 0 {
		q.Set("groups", strings.Join(req.Groups, ","))
	}
	if req.Actor != "" {
		q.Set("actor", req.Actor)
	}
	if req.TTL != 0 {
		q.Set("ttl", req.TTL.String())
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(issuerURL, "/")+"/token", strings.NewReader(q.Encode()))
	if err != nil {
		return "", fmt.Errorf("identity: dev token: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(hreq)
	if err != nil {
		return "", fmt.Errorf("identity: dev token: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		return "", fmt.Errorf("identity: dev token: %s: status %s", issuerURL, resp.Status)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return "", fmt.Errorf("identity: dev token: %s: status %s: %s", issuerURL, resp.Status, body.Error)
	}
	return body.AccessToken, nil
}
