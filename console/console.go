// Package console is the web console of approvers and auditors, served on
// listen.http at approvals.public_url:
//
//	GET  /                    the queue: pending approvals the viewer may see, newest first, live
//	GET  /approvals/ID        one approval: who, what, why, the body, the IAM change, votes, the session
//	GET  /sessions            auditors browse recorded sessions (time, subject, actor, method, decision, text)
//	GET  /sessions/ID         a session's timeline, each event's verification inline, replay, download
//	GET  /auth/login          sign-in: the OIDC authorization code flow with PKCE (?next=/approvals/ID)
//	GET  /auth/callback       the OIDC redirect
//	POST /auth/logout         sign-out (GET shows the signed-out page)
//	GET  /auth/me             who is signed in, their groups, and the CSRF token
//	GET  /v1/sessions[...]    the auditors' API behind the session pages (bearer tokens too)
//
// The pages are clients of the JSON APIs (the approvals API accepts a
// console sign-in beside bearer tokens), so that a person and a script
// see the same data under the same rules.
//
// Sign-in: nobody handles a token. The browser holds only an opaque
// session cookie (HttpOnly, Secure unless the base URL is plain http on
// loopback, SameSite=Lax so that a link from chat lands signed in);
// the server keeps the identity the ID token proved, never the token, in a
// Store (Redis when approvals.store is Redis, so any replica serves any
// approver), under a hash of the cookie, for console.session_ttl.
//
// Defences: every state-changing request carries the session's CSRF token
// in X-CSRF-Token (or the csrf form field of sign-out) and, when the
// browser says where it comes from (Origin, Sec-Fetch-Site), must come
// from the console's own origin; API calls made with the cookie must be
// same-origin too. Pages are served with a strict Content-Security-Policy
// and no inline script: the page's JS and CSS are embedded static files.
package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/recorder"
)

// Options configure a Console.
type Options struct {
	// BaseURL is where people reach the console (approvals.public_url).
	BaseURL string
	// Issuer is the sign-in issuer; empty turns sign-in off (the pages say
	// how to configure it; the bearer-token API stays).
	Issuer string
	// ClientID and ClientSecret are the console's OAuth client at Issuer
	// (no secret: a public client, PKCE only).
	ClientID, ClientSecret string
	// Endpoint, when set, is used instead of Issuer's discovery document.
	Endpoint *oauth2.Endpoint
	// IDTokens verifies the ID tokens Issuer issues to ClientID (audience
	// ClientID), mapping their claims as for any token of that issuer.
	IDTokens identity.Verifier
	// Bearer verifies the bearer tokens of API calls.
	Bearer identity.Verifier
	// Approvals is the approvals service.
	Approvals *approvals.Service
	// Store keeps sign-ins (default: a MemoryStore).
	Store Store
	// SessionTTL is how long a sign-in lasts (default 8h).
	SessionTTL time.Duration
	// Auditors may browse every session: group:NAME or user:EMAIL.
	Auditors []string
	// Sessions reads the recorded sessions; nil when recording is off.
	Sessions *recorder.Reader
	// Verify tunes the verification of a session shown.
	Verify recorder.VerifyOptions
	// Audit records that a person read a session, before it is shown;
	// required with Sessions. An error refuses the read.
	Audit func(ctx context.Context, a Access) error
	// HTTPClient reaches the issuer (discovery, token exchange).
	HTTPClient *http.Client
	// Logger receives the console's logs; never a token.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Access is one person's read of a recorded session.
type Access struct {
	// Viewer is who read it.
	Viewer identity.Identity
	// Session is the session read.
	Session string
	// Action is "view" or "export".
	Action string
	// Format is the export's format (jsonl, html).
	Format string
	// Approval is the approval through which an approver reached it, if any.
	Approval string
	// Time is when.
	Time time.Time
}

// Console serves the pages, the sign-in and the auditors' API.
type Console struct {
	o      Options
	log    *slog.Logger
	now    func() time.Time
	base   *url.URL
	origin string
	secure bool

	logins   *loginLimiter
	mu       sync.Mutex
	endpoint *oauth2.Endpoint
}

// New checks o and returns a Console.
func New(o Options) (*Console, error) {
	if o.Approvals == nil {
		return nil, errors.New("console: the approvals service is required")
	}
	if o.Bearer == nil {
		return nil, errors.New("console: a bearer-token verifier is required")
	}
	if o.Issuer != "" && (o.ClientID == "" || o.IDTokens == nil) {
		return nil, errors.New("console: sign-in needs a client id and an ID-token verifier")
	}
	if o.Sessions != nil && o.Audit == nil {
		return nil, errors.New("console: reading sessions needs Audit, so that every read leaves a trace")
	}
	u, err := url.Parse(strings.TrimRight(o.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("console: base URL %q is not an http(s) URL", o.BaseURL)
	}
	if o.Store == nil {
		o.Store = NewMemoryStore(0)
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 8 * time.Hour
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{
		o: o, log: o.Logger.With("component", "console"), now: o.Now, base: u,
		origin: u.Scheme + "://" + u.Host, endpoint: o.Endpoint, logins: newLoginLimiter(),
		secure: !(u.Scheme == "http" && loopback(u.Hostname())),
	}
	return c, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SignIn reports whether people can sign in.
func (c *Console) SignIn() bool { return c.o.Issuer != "" }

// path is p under the base URL's path, for links and redirects.
func (c *Console) path(p string) string { return c.base.Path + p }

// Register adds the console's routes to mux.
func (c *Console) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", c.page("queue"))
	mux.HandleFunc("GET /approvals/{id}", c.page("approval"))
	mux.HandleFunc("GET /sessions", c.page("sessions"))
	mux.HandleFunc("GET /sessions/{id}", c.page("session"))
	// The old page's address: /approvals#ID lands on the queue, which
	// opens the approval of the fragment.
	mux.HandleFunc("GET /approvals", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, c.path("/"), http.StatusMovedPermanently)
	})
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /auth/login", c.login)
	mux.HandleFunc("GET /auth/callback", c.callback)
	mux.HandleFunc("POST /auth/logout", c.logout)
	mux.HandleFunc("GET /auth/logout", c.signedOut)
	mux.HandleFunc("GET /auth/me", c.me)
	mux.HandleFunc("GET /v1/sessions", c.listSessions)
	mux.HandleFunc("GET /v1/sessions/{id}", c.getSession)
	mux.HandleFunc("GET /v1/sessions/{id}/download", c.downloadSession)
}

// IsAuditor reports whether id may browse every session: the same
// matching as approvers (group:NAME, or user:EMAIL with a verified e-mail).
func (c *Console) IsAuditor(id identity.Identity) bool {
	return approvals.IsApprover(c.o.Auditors, id)
}
