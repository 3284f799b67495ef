package console_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/console"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/identity/identitytest"
	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
)

const clientID = "airlock-console"

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// fixture is a console in front of a real approvals service, signing
// people in at a real OIDC issuer, reading sessions from the GCS emulator.
type fixture struct {
	t    *testing.T
	iss  *identitytest.Issuer
	svc  *approvals.Service
	con  *console.Console
	srv  *httptest.Server
	base string
	sink recorder.Sink
	gcs  *recordertest.GCS

	mu       sync.Mutex
	audits   []console.Access
	auditErr error
	now      time.Time
}

func newFixture(t *testing.T, mods ...func(*console.Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, iss: identitytest.NewIssuer(t), now: time.Now()}
	f.iss.AddUser("sre", "pw", map[string]any{"sub": "sre-1", "email": "sre-1@example.com", "email_verified": true, "groups": []string{"sre"}})
	f.iss.AddUser("alice", "pw", map[string]any{"sub": "alice", "email": "alice@example.com", "email_verified": true, "groups": []string{"dev"}})
	f.iss.AddUser("audit", "pw", map[string]any{"sub": "audit-1", "email": "audit-1@example.com", "email_verified": true, "groups": []string{"audit"}})
	f.iss.AddUser("carol", "pw", map[string]any{"sub": "carol", "email": "carol@example.com", "email_verified": true, "groups": []string{"qa"}})

	mux := http.NewServeMux()
	f.srv = httptest.NewUnstartedServer(mux)
	f.base = "http://" + f.srv.Listener.Addr().String()
	f.iss.RegisterClient(clientID, "s3cret", f.base+"/auth/callback")

	ctx := context.Background()
	bearer, err := identity.NewOIDCVerifier(ctx, []identity.IssuerConfig{f.iss.Config("airlock", "groups")}, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	idTokens, err := identity.NewOIDCVerifier(ctx, []identity.IssuerConfig{f.iss.Config(clientID, "groups")}, identity.Options{CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = approvals.NewService(approvals.NewMemoryStore(), approvals.Options{PublicURL: f.base, Logger: quiet()})
	t.Cleanup(func() { f.svc.Close() })

	f.gcs = recordertest.StartGCS(t, "recordings")
	f.sink = recorder.NewGCSSink(f.gcs.Client(t), "recordings", "airlock")
	o := console.Options{
		BaseURL: f.base, Issuer: f.iss.URL(), ClientID: clientID, ClientSecret: "s3cret",
		IDTokens: idTokens, Bearer: bearer, Approvals: f.svc, Auditors: []string{"group:audit"},
		Sessions: recorder.NewReader(f.sink), Logger: quiet(),
		Audit: func(_ context.Context, a console.Access) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.auditErr != nil {
				return f.auditErr
			}
			f.audits = append(f.audits, a)
			return nil
		},
		Now: func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now },
	}
	for _, m := range mods {
		m(&o)
	}
	f.con, err = console.New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.con.Register(mux)
	api := approvals.NewHandlerWith(f.svc, bearer, quiet(), approvals.HandlerOptions{Session: f.con.Authenticate})
	mux.Handle("/v1/approvals", api)
	mux.Handle("/v1/approvals/", api)
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// browser is a cookie-keeping client that follows redirects.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (b *browser) get(u string, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// signIn goes through the issuer's sign-in form from path and returns
// where it landed.
func (f *fixture) signIn(b *browser, path, user string) *http.Response {
	f.t.Helper()
	resp, page := b.get(f.base + path)
	if !strings.Contains(page, `id="f-username"`) {
		f.t.Fatalf("GET %s did not reach the sign-in form: %d %s", path, resp.StatusCode, page)
	}
	form := resp.Request.URL.Query()
	form.Set("username", user)
	form.Set("password", "pw")
	resp, body := b.do(postForm(resp.Request.URL.String(), form))
	if resp.StatusCode != 200 {
		f.t.Fatalf("sign-in as %s ended with %d at %s: %s", user, resp.StatusCode, resp.Request.URL, body)
	}
	return resp
}

func postForm(u string, form url.Values) *http.Request {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

type me struct {
	Subject string   `json:"subject"`
	Email   string   `json:"email"`
	Groups  []string `json:"groups"`
	Auditor bool     `json:"auditor"`
	CSRF    string   `json:"csrf_token"`
}

func (f *fixture) me(b *browser) (int, me) {
	f.t.Helper()
	resp, body := b.get(f.base + "/auth/me")
	var m me
	_ = json.Unmarshal([]byte(body), &m)
	return resp.StatusCode, m
}

func (f *fixture) sessionCookie(b *browser) *http.Cookie {
	u, _ := url.Parse(f.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "airlock_session" {
			return c
		}
	}
	return nil
}

func TestSignInDeepLink(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t)
	resp := f.signIn(b, "/approvals/abc?x=1", "sre")
	if got := resp.Request.URL.String(); got != f.base+"/approvals/abc?x=1" {
		t.Errorf("sign-in landed at %s, want the deep link", got)
	}
	code, m := f.me(b)
	if code != 200 || m.Subject != "sre-1" || m.Email != "sre-1@example.com" || len(m.Groups) != 1 || m.Groups[0] != "sre" || m.Auditor || len(m.CSRF) != 43 {
		t.Fatalf("/auth/me = %d %+v", code, m)
	}
	page := httpGet(t, b, f.base+"/")
	if !strings.Contains(page, "sre-1@example.com") || !strings.Contains(page, `<span class="group">sre</span>`) {
		t.Error("the page does not say who is signed in and their groups")
	}
	if strings.Contains(page, `type="password"`) || strings.Contains(strings.ToLower(page), "token") && strings.Contains(page, "<input id=\"token\"") {
		t.Error("the page asks for a token")
	}
}

func httpGet(t *testing.T, b *browser, u string) string {
	t.Helper()
	_, body := b.get(u)
	return body
}

func TestCookies(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t)
	// The raw Set-Cookie of the callback: HttpOnly, Lax, bounded, no
	// Secure on plain-http loopback.
	var setCookie []string
	b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if r := req.Response; r != nil && strings.HasSuffix(r.Request.URL.Path, "/auth/callback") {
			setCookie = r.Header.Values("Set-Cookie")
		}
		return nil
	}
	f.signIn(b, "/", "sre")
	joined := strings.Join(setCookie, "\n")
	if !regexp.MustCompile(`airlock_session=[A-Za-z0-9_-]{43}; Path=/; Max-Age=28800; HttpOnly; SameSite=Lax`).MatchString(joined) {
		t.Errorf("session cookie = %q", joined)
	}
	if !strings.Contains(joined, "airlock_login=; Path=/; Max-Age=0") {
		t.Errorf("the sign-in-in-progress cookie is not cleared: %q", joined)
	}

	// Off loopback the cookies are Secure and __Host- prefixed.
	g := newFixture(t, func(o *console.Options) {
		o.BaseURL = "https://airlock.example.com"
		o.Endpoint = &oauth2Endpoint
	})
	rec := httptest.NewRecorder()
	mux := http.NewServeMux()
	g.con.Register(mux)
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/auth/login", nil))
	if sc := rec.Header().Get("Set-Cookie"); !strings.HasPrefix(sc, "__Host-airlock_login=") || !strings.Contains(sc, "; Secure") || !strings.Contains(sc, "HttpOnly") {
		t.Errorf("login cookie off loopback = %q", sc)
	}
	if loc := rec.Header().Get("Location"); !strings.Contains(loc, "code_challenge_method=S256") || !strings.Contains(loc, "nonce=") ||
		!strings.Contains(loc, "redirect_uri=https%3A%2F%2Fairlock.example.com%2Fauth%2Fcallback") {
		t.Errorf("authorization request = %s", loc)
	}
}

// TestCallbackRefusals: a sign-in completes only in the browser that began
// it, once, with the state it was given.
func TestCallbackRefusals(t *testing.T) {
	f := newFixture(t)
	// Begin in browser A and stop at the issuer's redirect to the callback.
	a := newBrowser(t)
	var callback string
	a.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/auth/callback" && callback == "" {
			callback = req.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, _ := a.get(f.base + "/")
	form := resp.Request.URL.Query()
	form.Set("username", "sre")
	form.Set("password", "pw")
	a.do(postForm(resp.Request.URL.String(), form))
	if callback == "" {
		t.Fatal("the issuer did not redirect to the callback")
	}

	// Browser B (the victim of a login CSRF) gets A's callback: refused.
	victim := newBrowser(t)
	resp, body := victim.get(callback)
	if resp.StatusCode != 400 || !strings.Contains(body, "did not start here") || f.sessionCookie(victim) != nil {
		t.Fatalf("a callback in another browser = %d %s", resp.StatusCode, body)
	}
	// A forged state in A: refused, and the sign-in is spent.
	u, _ := url.Parse(callback)
	q := u.Query()
	q.Set("state", "forged")
	u.RawQuery = q.Encode()
	a.c.CheckRedirect = nil
	resp, body = a.get(u.String())
	if resp.StatusCode != 400 || !strings.Contains(body, "does not match") {
		t.Fatalf("a forged state = %d %s", resp.StatusCode, body)
	}
	resp, body = a.get(callback)
	if resp.StatusCode != 400 || f.sessionCookie(a) != nil {
		t.Fatalf("a spent sign-in completed: %d %s", resp.StatusCode, body)
	}
	if code, _ := f.me(a); code != 401 {
		t.Fatalf("signed in after refusals: %d", code)
	}
}

// TestOpenRedirect: the return path stays on the console.
func TestOpenRedirect(t *testing.T) {
	f := newFixture(t)
	for _, next := range []string{"//evil.example.com/x", "https://evil.example.com/", "/\\evil.example.com", "/auth/logout", "http:/evil", "javascript:alert(1)"} {
		b := newBrowser(t)
		resp, page := b.get(f.base + "/auth/login?next=" + url.QueryEscape(next))
		form := resp.Request.URL.Query()
		if !strings.Contains(page, "f-username") {
			t.Fatalf("next=%q: no sign-in form", next)
		}
		form.Set("username", "sre")
		form.Set("password", "pw")
		resp, _ = b.do(postForm(resp.Request.URL.String(), form))
		if got := resp.Request.URL.String(); got != f.base+"/" {
			t.Errorf("next=%q landed at %s", next, got)
		}
	}
}

// TestCSRF: a state-changing request made with the cookie needs the
// session's CSRF token and the console's own origin; API reads with the
// cookie must be same-origin.
func TestCSRF(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t)
	f.signIn(b, "/", "sre")
	_, m := f.me(b)
	out, err := f.svc.Gate(context.Background(), approvals.Request{
		Fingerprint: strings.Repeat("ab", 32), Subject: "alice", Email: "alice@example.com", Operation: "compute.instances.stop",
		Method: "POST", URL: "https://compute.googleapis.com/x", Rule: "r", Approvers: []string{"group:sre"},
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := out.Approval.ID
	vote := func(hdr ...string) (int, string) {
		req, _ := http.NewRequest("POST", f.base+"/v1/approvals/"+id+":approve", strings.NewReader(`{"reason":"ok"}`))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, body := b.do(req)
		return resp.StatusCode, body
	}
	for _, tt := range []struct {
		name string
		hdr  []string
	}{
		{"no token", nil},
		{"wrong token", []string{"X-CSRF-Token", strings.Repeat("A", 43)}},
		{"token from another origin", []string{"X-CSRF-Token", m.CSRF, "Origin", "http://evil.example.com"}},
		{"token, cross-site fetch", []string{"X-CSRF-Token", m.CSRF, "Sec-Fetch-Site", "cross-site"}},
		{"token, same-site other origin", []string{"X-CSRF-Token", m.CSRF, "Sec-Fetch-Site", "same-site"}},
	} {
		if code, body := vote(tt.hdr...); code != 403 || !strings.Contains(body, "refused") {
			t.Errorf("%s: vote = %d %s", tt.name, code, body)
		}
	}
	if a, _ := f.svc.Get(context.Background(), id); len(a.Votes) != 0 {
		t.Fatal("a forged vote landed")
	}
	if resp, body := b.get(f.base+"/v1/approvals", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 403 {
		t.Errorf("a cross-site read with the cookie = %d %s", resp.StatusCode, body)
	}
	// Sign-out is state-changing too.
	resp, _ := b.do(postForm(f.base+"/auth/logout", url.Values{}))
	if resp.StatusCode != 403 {
		t.Errorf("sign-out without the token = %d", resp.StatusCode)
	}
	if code, _ := f.me(b); code != 200 {
		t.Fatal("a forged sign-out ended the session")
	}
	if code, body := vote("X-CSRF-Token", m.CSRF, "Origin", f.base, "Sec-Fetch-Site", "same-origin"); code != 200 || !strings.Contains(body, `"state": "approved"`) {
		t.Fatalf("a genuine vote = %d %s", code, body)
	}
}

func TestSignOutAndExpiry(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t)
	f.signIn(b, "/", "sre")
	_, m := f.me(b)
	old := f.sessionCookie(b)
	resp, body := b.do(postForm(f.base+"/auth/logout", url.Values{"csrf": {m.CSRF}}))
	if resp.StatusCode != 200 || !strings.Contains(body, "You are signed out") || resp.Request.URL.Path != "/auth/logout" {
		t.Fatalf("sign-out = %d %s", resp.StatusCode, body)
	}
	replay := newBrowser(t)
	u, _ := url.Parse(f.base)
	replay.c.Jar.SetCookies(u, []*http.Cookie{old})
	if code, _ := f.me(replay); code != 401 {
		t.Errorf("the cookie works after sign-out: %d", code)
	}

	// A sign-in lasts console.session_ttl.
	f.signIn(b, "/", "sre")
	f.advance(8*time.Hour + time.Second)
	if code, _ := f.me(b); code != 401 {
		t.Errorf("a sign-in outlived its lifetime: %d", code)
	}
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ = b.get(f.base + "/sessions/x")
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/auth/login?next=%2Fsessions%2Fx" {
		t.Errorf("an expired sign-in on a page = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestPagesCSP: every page runs only the console's own script and style.
func TestPagesCSP(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t)
	f.signIn(b, "/", "audit")
	for _, p := range []string{"/", "/approvals/x", "/sessions", "/sessions/s1", "/auth/logout"} {
		resp, body := b.get(f.base + p)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") ||
			!strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(body) || regexp.MustCompile(`\son[a-z]+=|style="`).MatchString(body) {
			t.Errorf("%s carries inline script or style", p)
		}
	}
	for _, s := range []string{"/static/app.js", "/static/app.css"} {
		resp, body := b.get(f.base + s)
		if resp.StatusCode != 200 || len(body) < 1000 || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s = %d (%d bytes)", s, resp.StatusCode, len(body))
		}
	}
	// The JS writes values as text, never as HTML.
	_, js := b.get(f.base + "/static/app.js")
	if regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(`).MatchString(js) {
		t.Error("app.js writes HTML from strings")
	}
	// The old page's address leads to the queue.
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if resp, _ := b.get(f.base + "/approvals"); resp.StatusCode != 301 || resp.Header.Get("Location") != "/" {
		t.Errorf("/approvals = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// recordSession records a session of alice's agent into the fixture's sink.
func (f *fixture) recordSession(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	rec, err := recorder.New(ctx, recorder.Options{Sink: f.sink, Spool: t.TempDir(), MaxBodyBytes: 1024, FlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sid, err := rec.Session(ctx, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := rec.Decision(ctx, recorder.DecisionEvent{SessionID: sid, RequestID: fmt.Sprintf("r%d", i), Subject: "alice", Actor: "claude-agent",
			Method: "GET", Host: "compute.googleapis.com", Path: fmt.Sprintf("/compute/v1/projects/p/zones/z/instances/web-%d", i),
			GCPMethod: "compute.instances.get", Decision: recorder.DecisionAllowed}); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := rec.Close(cctx); err != nil {
		t.Fatal(err)
	}
	return sid
}

type sessionPage struct {
	ID           string `json:"id"`
	Verification struct {
		OK       bool `json:"ok"`
		Problems []struct {
			Text string `json:"text"`
		} `json:"problems"`
	} `json:"verification"`
	Events []struct {
		Verification string          `json:"verification"`
		Event        json.RawMessage `json:"event"`
	} `json:"events"`
}

func (f *fixture) readSession(b *browser, path string) (int, sessionPage, string) {
	f.t.Helper()
	resp, body := b.get(f.base+path, "Sec-Fetch-Site", "same-origin")
	var p sessionPage
	_ = json.Unmarshal([]byte(body), &p)
	return resp.StatusCode, p, body
}

// TestSessionsAccess: auditors read every session; an approver reads the
// session of an approval they may decide, and no other; every read is
// recorded before anything is shown, and without the record nothing is.
func TestSessionsAccess(t *testing.T) {
	f := newFixture(t)
	sid := f.recordSession(t)
	ctx := context.Background()
	gate := func(fp, session string, approvers ...string) string {
		out, err := f.svc.Gate(ctx, approvals.Request{Fingerprint: strings.Repeat(fp, 64), Subject: "alice", Operation: "compute.instances.stop",
			Method: "POST", URL: "https://compute.googleapis.com/x", Rule: "r", Approvers: approvers, SessionID: session}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return out.Approval.ID
	}
	mine := gate("a", sid, "group:sre")
	elsewhere := gate("b", "another-session", "group:sre")
	notMine := gate("c", sid, "group:qa")

	auditor, sre := newBrowser(t), newBrowser(t)
	f.signIn(auditor, "/", "audit")
	f.signIn(sre, "/", "sre")

	resp, body := auditor.get(f.base+"/v1/sessions?subject=alice", "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != 200 || !strings.Contains(body, sid) || !strings.Contains(body, "claude-agent") {
		t.Fatalf("auditor list = %d %s", resp.StatusCode, body)
	}
	if resp, body := auditor.get(f.base+"/v1/sessions?actor=nobody", "Sec-Fetch-Site", "same-origin"); resp.StatusCode != 200 || strings.Contains(body, sid) {
		t.Errorf("filtered list = %d %s", resp.StatusCode, body)
	}
	if resp, body := sre.get(f.base+"/v1/sessions", "Sec-Fetch-Site", "same-origin"); resp.StatusCode != 403 || strings.Contains(body, sid) {
		t.Errorf("an approver lists sessions: %d %s", resp.StatusCode, body)
	}
	code, page, body := f.readSession(auditor, "/v1/sessions/"+sid)
	// Three decisions and the close of the recorder's segment.
	if code != 200 || len(page.Events) != 4 || !page.Verification.OK || page.Events[0].Verification != "verified" {
		t.Fatalf("auditor read = %d %s", code, body)
	}
	for _, tt := range []struct{ path, why string }{
		{"/v1/sessions/" + sid, "no approval named"},
		{"/v1/sessions/" + sid + "?approval=" + elsewhere, "an approval of another session"},
		{"/v1/sessions/" + sid + "?approval=" + notMine, "an approval they do not decide"},
		{"/v1/sessions/" + sid + "?approval=zzzz", "a malformed approval id"},
		{"/v1/sessions/" + sid + "/download?format=jsonl&approval=" + notMine, "a download through an approval they do not decide"},
	} {
		if code, _, body := f.readSession(sre, tt.path); code != 403 || strings.Contains(body, "web-1") {
			t.Errorf("approver, %s: %d %s", tt.why, code, body)
		}
	}
	if code, page, body := f.readSession(sre, "/v1/sessions/"+sid+"?approval="+mine); code != 200 || len(page.Events) != 4 {
		t.Fatalf("approver through their approval = %d %s", code, body)
	}
	resp, body = auditor.get(f.base+"/v1/sessions/"+sid+"/download?format=html", "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") || !strings.Contains(body, "Verified: 4 events") {
		t.Errorf("HTML download = %d %s", resp.StatusCode, body)
	}
	// Scripts use bearer tokens.
	tok := f.iss.Mint(map[string]any{"sub": "audit-1", "email": "audit-1@example.com", "email_verified": true, "groups": []string{"audit"}})
	req, _ := http.NewRequest("GET", f.base+"/v1/sessions/"+sid+"/download?format=jsonl", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, body = newBrowser(t).do(req)
	if resp.StatusCode != 200 || strings.Count(body, "\n") != 4 {
		t.Errorf("bearer JSONL download = %d %s", resp.StatusCode, body)
	}

	f.mu.Lock()
	var trail []string
	for _, a := range f.audits {
		trail = append(trail, a.Viewer.Subject+" "+a.Action+" "+a.Session+" "+a.Format+" "+a.Approval)
	}
	f.mu.Unlock()
	want := []string{"audit-1 view " + sid + "  ", "sre-1 view " + sid + "  " + mine, "audit-1 export " + sid + " html ", "audit-1 export " + sid + " jsonl "}
	if strings.Join(trail, "|") != strings.Join(want, "|") {
		t.Errorf("recorded reads:\n%q\nwant\n%q", trail, want)
	}

	// Without a record of the read, nothing is shown.
	f.mu.Lock()
	f.auditErr = errors.New("spool full")
	f.mu.Unlock()
	if code, page, body := f.readSession(auditor, "/v1/sessions/"+sid); code != 503 || len(page.Events) != 0 || strings.Contains(body, "web-") {
		t.Errorf("a read that could not be recorded = %d %s", code, body)
	}
}

// TestTamperedSessionMarked: an event edited in the bucket is marked
// altered, the others of its segment unverified.
func TestTamperedSessionMarked(t *testing.T) {
	f := newFixture(t)
	sid := f.recordSession(t)
	objs := f.gcs.Objects(t, "recordings", "airlock/")
	ctx := context.Background()
	var chunk string
	var data []byte
	for _, o := range objs {
		if strings.HasSuffix(o, ".jsonl.gz") && strings.Contains(o, sid) {
			b, err := f.sink.Get(ctx, strings.TrimPrefix(o, "airlock/"))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(gunzip(t, b), "web-1") {
				chunk, data = o, b
			}
		}
	}
	if chunk == "" {
		t.Fatalf("no chunk of %s holds web-1: %q", sid, objs)
	}
	edited := regzip(t, strings.Replace(gunzip(t, data), "web-1", "web-7", 1))
	client := f.gcs.Client(t)
	w := client.Bucket("recordings").Object(chunk).NewWriter(ctx)
	if _, err := w.Write(edited); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	auditor := newBrowser(t)
	f.signIn(auditor, "/", "audit")
	code, page, body := f.readSession(auditor, "/v1/sessions/"+sid)
	if code != 200 || page.Verification.OK || len(page.Verification.Problems) == 0 {
		t.Fatalf("tampered session = %d %s", code, body)
	}
	var states []string
	for _, e := range page.Events {
		states = append(states, e.Verification)
	}
	if strings.Join(states, ",") != "unverified,altered,unverified,unverified" {
		t.Errorf("marks = %v, want the edited event altered", states)
	}
}

func TestNewRefusesAReaderWithoutAudit(t *testing.T) {
	_, err := console.New(console.Options{BaseURL: "http://127.0.0.1:1", Approvals: &approvals.Service{}, Bearer: fakeVerifier{},
		Sessions: recorder.NewReader(nil)})
	if err == nil || !strings.Contains(err.Error(), "Audit") {
		t.Fatalf("New = %v", err)
	}
}

type fakeVerifier struct{}

func (fakeVerifier) Verify(context.Context, string) (identity.Identity, error) {
	return identity.Identity{}, &identity.Error{Kind: identity.BadSignature, Msg: "no"}
}

var oauth2Endpoint = oauth2.Endpoint{AuthURL: "https://login.example.com/authorize", TokenURL: "https://login.example.com/token"}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func regzip(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestLoginFlood: one address cannot begin sign-ins without bound (each
// keeps state for ten minutes before anyone signed in).
func TestLoginFlood(t *testing.T) {
	f := newFixture(t, func(o *console.Options) { o.Endpoint = &oauth2Endpoint })
	b := newBrowser(t)
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	refused := 0
	for i := 0; i < 100; i++ {
		resp, _ := b.get(f.base + "/auth/login")
		switch resp.StatusCode {
		case 303:
		case 429:
			refused++
		default:
			t.Fatalf("login %d = %d", i, resp.StatusCode)
		}
	}
	if refused < 30 {
		t.Fatalf("%d of 100 sign-ins from one address refused, want the burst of 60 at most to pass", refused)
	}
	f.advance(time.Minute)
	if resp, _ := b.get(f.base + "/auth/login"); resp.StatusCode != 303 {
		t.Fatalf("after a minute, login = %d", resp.StatusCode)
	}
}
