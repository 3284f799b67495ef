package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/identity"
)

// loginTTL bounds a sign-in in progress: from /auth/login to the callback.
const loginTTL = 10 * time.Minute

// storeTimeout bounds one call to the Store.
const storeTimeout = 3 * time.Second

// session is a sign-in as the server keeps it: the identity the ID token
// proved (never the token) and the CSRF token of the browser holding it.
type session struct {
	Subject       string    `json:"sub"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified,omitempty"`
	Issuer        string    `json:"iss"`
	Groups        []string  `json:"groups"`
	Actor         string    `json:"act,omitempty"`
	CSRF          string    `json:"csrf"`
	Created       time.Time `json:"created"`
	Expires       time.Time `json:"expires"`
}

func (s *session) identity() identity.Identity {
	return identity.Identity{Subject: s.Subject, Email: s.Email, EmailVerified: s.EmailVerified, Issuer: s.Issuer,
		Groups: s.Groups, Actor: s.Actor, Expiry: s.Expires}
}

// pendingLogin is a sign-in in progress, bound to the browser that began
// it by the login cookie.
type pendingLogin struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Next     string `json:"next"`
}

func (c *Console) sessionCookie() string {
	if c.secure {
		return "__Host-airlock_session"
	}
	return "airlock_session"
}

func (c *Console) loginCookie() string {
	if c.secure {
		return "__Host-airlock_login"
	}
	return "airlock_login"
}

func (c *Console) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		ck.MaxAge = int(maxAge / time.Second)
	} else {
		ck.MaxAge = -1
	}
	http.SetCookie(w, ck)
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// storeKey is where the value a browser's cookie names is kept: a hash,
// so that the store never holds a usable cookie.
func storeKey(kind, cookie string) string {
	h := sha256.Sum256([]byte(cookie))
	return kind + ":" + hex.EncodeToString(h[:])
}

// validCookie has the form randomToken makes.
func validCookie(v string) bool {
	if len(v) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil
}

// safeNext keeps a return path on this console: an absolute path under
// the base path, without scheme, host or backslash tricks.
func (c *Console) safeNext(next string) string {
	home := c.path("/")
	if next == "" || len(next) > 2048 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, c.base.Path+"/") {
		return home
	}
	if strings.HasPrefix(u.Path, c.path("/auth/")) {
		return home
	}
	return u.RequestURI()
}

// oauthConfig is the client's view of the issuer, discovered on first
// use (and again after a failure).
func (c *Console) oauthConfig(ctx context.Context) (*oauth2.Config, error) {
	c.mu.Lock()
	ep := c.endpoint
	c.mu.Unlock()
	if ep == nil {
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, c.o.HTTPClient), c.o.Issuer)
		if err != nil {
			return nil, fmt.Errorf("console: discovery of %s: %w", c.o.Issuer, err)
		}
		e := p.Endpoint()
		if e.AuthURL == "" || e.TokenURL == "" {
			return nil, fmt.Errorf("console: %s publishes no authorization or token endpoint", c.o.Issuer)
		}
		ep = &e
		c.mu.Lock()
		c.endpoint = ep
		c.mu.Unlock()
	}
	return &oauth2.Config{
		ClientID: c.o.ClientID, ClientSecret: c.o.ClientSecret, Endpoint: *ep,
		RedirectURL: c.base.String() + "/auth/callback",
		Scopes:      []string{oidc.ScopeOpenID, "email", "profile"},
	}, nil
}

// login begins the authorization code flow: a fresh state, nonce and PKCE
// verifier kept server-side under the login cookie, then the issuer.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !c.SignIn() {
		c.errorPage(w, http.StatusServiceUnavailable, "Sign-in is not configured", "Set console.issuer and console.client_id in airlock.yaml (see README, \"The console\"). The approvals API still takes bearer tokens: airlock approvals list.")
		return
	}
	if !c.logins.allow(r, c.now()) {
		w.Header().Set("Retry-After", "60")
		c.errorPage(w, http.StatusTooManyRequests, "Too many sign-ins from this address", "Wait a minute and sign in again.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	cfg, err := c.oauthConfig(ctx)
	if err != nil {
		c.log.Warn("console: sign-in issuer unreachable", "err", err)
		c.errorPage(w, http.StatusBadGateway, "The sign-in provider cannot be reached", "Try again in a moment. If it persists, check console.issuer.")
		return
	}
	pl := pendingLogin{State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(), Next: c.safeNext(r.URL.Query().Get("next"))}
	b, _ := json.Marshal(pl)
	id := randomToken()
	sctx, scancel := context.WithTimeout(ctx, storeTimeout)
	defer scancel()
	if err := c.o.Store.Put(sctx, storeKey("login", id), b, loginTTL); err != nil {
		c.log.Warn("console: sign-in store unavailable", "err", err)
		c.errorPage(w, http.StatusServiceUnavailable, "Sign-in is unavailable", "The console's session store did not answer; try again shortly.")
		return
	}
	c.setCookie(w, c.loginCookie(), id, loginTTL)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, cfg.AuthCodeURL(pl.State, oauth2.S256ChallengeOption(pl.Verifier), oauth2.SetAuthURLParam("nonce", pl.Nonce)), http.StatusSeeOther)
}

// callback ends the flow: the browser that began it (login cookie) with
// the same state, the code exchanged with the PKCE verifier, the ID token
// verified (issuer, audience, signature, expiry, the issuer's
// restrictions) and its nonce matched. Only then is a session made.
func (c *Console) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ck, err := r.Cookie(c.loginCookie())
	if err != nil || !validCookie(ck.Value) {
		c.errorPage(w, http.StatusBadRequest, "This sign-in did not start here", "Sign in again from the console; sign-in links cannot be shared or reused.")
		return
	}
	c.setCookie(w, c.loginCookie(), "", 0)
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	sctx, scancel := context.WithTimeout(ctx, storeTimeout)
	b, err := c.o.Store.Take(sctx, storeKey("login", ck.Value))
	scancel()
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			c.log.Warn("console: sign-in store unavailable", "err", err)
		}
		c.errorPage(w, http.StatusBadRequest, "This sign-in expired or was already used", "Sign in again.")
		return
	}
	var pl pendingLogin
	if err := json.Unmarshal(b, &pl); err != nil || subtle.ConstantTimeCompare([]byte(pl.State), []byte(q.Get("state"))) != 1 {
		c.errorPage(w, http.StatusBadRequest, "This sign-in does not match the one this browser began", "Sign in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		c.errorPage(w, http.StatusUnauthorized, "The sign-in provider refused", "It said: "+clip(e+" "+q.Get("error_description"), 200))
		return
	}
	cfg, err := c.oauthConfig(ctx)
	if err != nil {
		c.errorPage(w, http.StatusBadGateway, "The sign-in provider cannot be reached", "Try again in a moment.")
		return
	}
	tok, err := cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, c.o.HTTPClient), q.Get("code"), oauth2.VerifierOption(pl.Verifier))
	if err != nil {
		c.log.Warn("console: code exchange failed", "err", exchangeError(err))
		c.errorPage(w, http.StatusBadGateway, "The sign-in could not be completed", "The provider did not accept the sign-in code; sign in again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		c.errorPage(w, http.StatusBadGateway, "The sign-in provider sent no ID token", "Check that console.issuer is an OpenID Connect provider.")
		return
	}
	id, err := c.o.IDTokens.Verify(ctx, raw)
	if err != nil {
		msg := "The ID token was refused."
		var ie *identity.Error
		if errors.As(err, &ie) {
			msg = "The ID token was refused: " + ie.Msg
		}
		c.log.Warn("console: ID token refused", "err", err)
		c.errorPage(w, http.StatusUnauthorized, "You could not be signed in", msg)
		return
	}
	if n, _ := id.Claims["nonce"].(string); subtle.ConstantTimeCompare([]byte(n), []byte(pl.Nonce)) != 1 {
		c.errorPage(w, http.StatusUnauthorized, "You could not be signed in", "The ID token was not issued for this sign-in (nonce mismatch).")
		return
	}
	now := c.now()
	s := session{Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified, Issuer: id.Issuer, Groups: id.Groups,
		Actor: id.Actor, CSRF: randomToken(), Created: now.UTC(), Expires: now.Add(c.o.SessionTTL).UTC()}
	if s.Groups == nil {
		s.Groups = []string{}
	}
	sb, _ := json.Marshal(s)
	cookie := randomToken()
	sctx, scancel = context.WithTimeout(ctx, storeTimeout)
	defer scancel()
	if err := c.o.Store.Put(sctx, storeKey("session", cookie), sb, c.o.SessionTTL); err != nil {
		c.log.Warn("console: sign-in store unavailable", "err", err)
		c.errorPage(w, http.StatusServiceUnavailable, "Sign-in is unavailable", "The console's session store did not answer; try again shortly.")
		return
	}
	c.setCookie(w, c.sessionCookie(), cookie, c.o.SessionTTL)
	c.log.Info("console sign-in", "subject", s.Subject, "email", s.Email, "groups", s.Groups)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, pl.Next, http.StatusSeeOther)
}

// exchangeError keeps the provider's error code and drops the rest (a
// response body could echo what was sent).
func exchangeError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fmt.Sprintf("HTTP %d %s", re.Response.StatusCode, clip(re.ErrorCode, 60))
	}
	return clip(err.Error(), 200)
}

// current returns the sign-in the request's cookie names, or nil.
func (c *Console) current(r *http.Request) (*session, string, error) {
	ck, err := r.Cookie(c.sessionCookie())
	if err != nil || !validCookie(ck.Value) {
		return nil, "", nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	b, err := c.o.Store.Get(ctx, storeKey("session", ck.Value))
	if errors.Is(err, ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil || !c.now().Before(s.Expires) {
		return nil, "", nil
	}
	return &s, ck.Value, nil
}

// errCrossSite refuses a request made with the cookie from elsewhere.
var errCrossSite = errors.New("refused: a request made with your console sign-in must come from the console's own pages")

// errCSRF refuses a state-changing request without the session's token.
var errCSRF = errors.New("refused: this request lacks the console's CSRF token (X-CSRF-Token); reload the page")

// checkOrigin refuses a request the browser says comes from another site.
func (c *Console) checkOrigin(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return errCrossSite
	}
	if o := r.Header.Get("Origin"); o != "" && o != c.origin {
		return errCrossSite
	}
	return nil
}

// checkCSRF is checkOrigin plus the session's CSRF token, from the
// X-CSRF-Token header or the csrf form field.
func (c *Console) checkCSRF(r *http.Request, s *session) error {
	if err := c.checkOrigin(r); err != nil {
		return err
	}
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		tok = r.PostFormValue("csrf")
	}
	if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.CSRF)) != 1 {
		return errCSRF
	}
	return nil
}

// Authenticate is the console sign-in for the approvals API
// (approvals.HandlerOptions.Session): ok is false without a sign-in; a
// call from another site, or a state-changing one without the CSRF token,
// is refused.
func (c *Console) Authenticate(r *http.Request) (identity.Identity, bool, error) {
	s, _, err := c.current(r)
	if err != nil {
		c.log.Warn("console: session store unavailable", "err", err)
		return identity.Identity{}, false, fmt.Errorf("the console's session store is unavailable; retry shortly (%w)", approvals.ErrUnavailable)
	}
	if s == nil {
		return identity.Identity{}, false, nil
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if err := c.checkOrigin(r); err != nil {
			return identity.Identity{}, false, err
		}
	} else if err := c.checkCSRF(r, s); err != nil {
		return identity.Identity{}, false, err
	}
	return s.identity(), true, nil
}

// logout ends the sign-in: the server forgets it, the cookie is cleared.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	s, cookie, err := c.current(r)
	if err != nil {
		c.errorPage(w, http.StatusServiceUnavailable, "Sign-out is unavailable", "The console's session store did not answer; try again shortly.")
		return
	}
	if s != nil {
		if err := c.checkCSRF(r, s); err != nil {
			c.errorPage(w, http.StatusForbidden, "Sign-out refused", err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		defer cancel()
		if err := c.o.Store.Delete(ctx, storeKey("session", cookie)); err != nil {
			c.errorPage(w, http.StatusServiceUnavailable, "Sign-out is unavailable", "The console's session store did not answer; try again shortly.")
			return
		}
		c.log.Info("console sign-out", "subject", s.Subject)
	}
	c.setCookie(w, c.sessionCookie(), "", 0)
	http.Redirect(w, r, c.path("/auth/logout"), http.StatusSeeOther)
}

// me is who is signed in, for the pages.
func (c *Console) me(w http.ResponseWriter, r *http.Request) {
	s, _, err := c.current(r)
	switch {
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "console: the session store is unavailable; retry shortly")
		return
	case s == nil:
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "console: not signed in")
		return
	}
	if err := c.checkOrigin(r); err != nil {
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "console: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, c.meOf(s))
}

type meJSON struct {
	Subject       string    `json:"subject"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified"`
	Issuer        string    `json:"issuer"`
	Groups        []string  `json:"groups"`
	Actor         string    `json:"actor,omitempty"`
	Auditor       bool      `json:"auditor"`
	CSRFToken     string    `json:"csrf_token"`
	Expires       time.Time `json:"expires_at"`
}

func (c *Console) meOf(s *session) meJSON {
	return meJSON{Subject: s.Subject, Email: s.Email, EmailVerified: s.EmailVerified, Issuer: s.Issuer, Groups: s.Groups,
		Actor: s.Actor, Auditor: c.IsAuditor(s.identity()), CSRFToken: s.CSRF, Expires: s.Expires}
}

// caller authenticates an API call: a bearer token, else the console
// sign-in (same-origin only). It writes the refusal itself.
func (c *Console) caller(w http.ResponseWriter, r *http.Request) (identity.Identity, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		raw, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || strings.TrimSpace(raw) == "" {
			writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "console: send \"Authorization: Bearer <OIDC token>\"")
			return identity.Identity{}, false
		}
		id, err := c.o.Bearer.Verify(r.Context(), strings.TrimSpace(raw))
		if err != nil {
			var ie *identity.Error
			if errors.As(err, &ie) && ie.Kind == identity.Unavailable {
				writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", err.Error())
				return identity.Identity{}, false
			}
			msg := "console: token refused"
			if errors.As(err, &ie) {
				msg += ": " + ie.Msg
			}
			writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", msg)
			return identity.Identity{}, false
		}
		return id, true
	}
	id, ok, err := c.Authenticate(r)
	switch {
	case errors.Is(err, approvals.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "console: "+err.Error())
		return identity.Identity{}, false
	case err != nil:
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "console: "+err.Error())
		return identity.Identity{}, false
	case !ok:
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "console: sign in, or send \"Authorization: Bearer <OIDC token>\"")
		return identity.Identity{}, false
	}
	return id, true
}

func clip(s string, n int) string {
	var b strings.Builder
	for i, r := range s {
		if i >= n {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r == 0x7f {
			r = ' '
		}
		b.WriteRune(r)
	}
	return b.String()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError writes Google's JSON error shape.
func writeError(w http.ResponseWriter, code int, status, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "status": status, "message": msg}})
}
