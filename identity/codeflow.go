package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// LoginServer is the authorization and token endpoints of the OIDC
// authorization code flow with PKCE (S256 only), for the development and
// test issuers: the authorization endpoint shows a login form, and a
// person who passes it is sent back to the client's registered redirect
// URI with a code; the token endpoint exchanges the code, once, for an ID
// token whose audience is the client. A code lives one minute and is bound
// to its client, redirect URI, PKCE challenge and nonce.
type LoginServer struct {
	form LoginForm
	mint func(claims map[string]any) (string, error)
	now  func() time.Time

	mu      sync.Mutex
	clients map[string]loginClient
	codes   map[string]*loginCode
}

// LoginForm is the form a LoginServer shows and how it checks it.
type LoginForm struct {
	// Title heads the page.
	Title string
	// Fields are the inputs, each with a label.
	Fields []LoginField
	// Authenticate turns the submitted fields into the claims of the ID
	// token (sub, email, groups, ...), or an error shown on the form.
	Authenticate func(form url.Values) (map[string]any, error)
}

// LoginField is one labelled input of a LoginForm.
type LoginField struct {
	// Name is the form field name; Label what a person reads.
	Name, Label string
	// Type is the input type (text, password, email); default text.
	Type string
	// Value is the initial value; Hint a line of help under the input.
	Value, Hint string
}

type loginClient struct {
	secret    string
	redirects []string
}

type loginCode struct {
	client, redirect, challenge, nonce string
	claims                             map[string]any
	expires                            time.Time
}

// maxLoginCodes bounds the codes waiting to be exchanged.
const maxLoginCodes = 10000

// codeLifetime is how long a code may wait for its exchange.
const codeLifetime = time.Minute

// NewLoginServer serves form and signs ID tokens with mint, which adds
// iss, iat and exp to the claims it is given (sub, aud, nonce and the
// form's claims).
func NewLoginServer(form LoginForm, mint func(claims map[string]any) (string, error)) *LoginServer {
	return &LoginServer{form: form, mint: mint, now: time.Now, clients: map[string]loginClient{}, codes: map[string]*loginCode{}}
}

// RegisterClient admits client id with its secret ("" for a public
// client, which must then use PKCE, as every client must) and the only
// redirect URIs codes are sent to.
func (l *LoginServer) RegisterClient(id, secret string, redirectURIs ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clients[id] = loginClient{secret: secret, redirects: slices.Clone(redirectURIs)}
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title></head><body>
<main>
<h1>{{.Title}}</h1>
<p>Signing in to <strong>{{.Client}}</strong>.</p>
{{if .Error}}<p role="alert" id="login-error"><strong>Sign-in failed:</strong> {{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}{{range .Fields}}<p><label for="f-{{.Name}}">{{.Label}}</label><br>
<input id="f-{{.Name}}" name="{{.Name}}" type="{{if .Type}}{{.Type}}{{else}}text{{end}}" value="{{.Value}}"{{if .Hint}} aria-describedby="h-{{.Name}}"{{end}}>
{{if .Hint}}<br><small id="h-{{.Name}}">{{.Hint}}</small>{{end}}</p>
{{end}}<p><button type="submit" id="sign-in">Sign in</button></p>
</form></main></body></html>
`))

// authParams are the authorization request's parameters carried through
// the form.
var authParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method"}

// Authorize is the authorization endpoint: GET shows the login form for a
// valid authorization request, POST checks the form and redirects to the
// client with a code. A request naming an unknown client or redirect URI
// is refused on the page, never redirected.
func (l *LoginServer) Authorize(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	p := r.Form
	l.mu.Lock()
	c, known := l.clients[p.Get("client_id")]
	l.mu.Unlock()
	redirect := p.Get("redirect_uri")
	if !known || !slices.Contains(c.redirects, redirect) {
		http.Error(w, "unknown client_id or unregistered redirect_uri", http.StatusBadRequest)
		return
	}
	// A browser holds the form's redirect to the client to form-action too.
	if u, err := url.Parse(redirect); err == nil && u.Host != "" {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self' "+u.Scheme+"://"+u.Host+"; frame-ancestors 'none'; base-uri 'none'")
	}
	back := func(q url.Values) {
		if s := p.Get("state"); s != "" {
			q.Set("state", s)
		}
		sep := "?"
		if strings.Contains(redirect, "?") {
			sep = "&"
		}
		http.Redirect(w, r, redirect+sep+q.Encode(), http.StatusSeeOther)
	}
	switch {
	case p.Get("response_type") != "code":
		back(url.Values{"error": {"unsupported_response_type"}})
		return
	case !slices.Contains(strings.Fields(p.Get("scope")), "openid"):
		back(url.Values{"error": {"invalid_scope"}, "error_description": {"scope must include openid"}})
		return
	case p.Get("code_challenge_method") != "S256" || len(p.Get("code_challenge")) != 43:
		back(url.Values{"error": {"invalid_request"}, "error_description": {"PKCE with S256 is required"}})
		return
	}
	if r.Method == http.MethodGet {
		l.render(w, r, p, "", http.StatusOK)
		return
	}
	claims, err := l.form.Authenticate(r.PostForm)
	if err != nil {
		l.render(w, r, p, err.Error(), http.StatusUnauthorized)
		return
	}
	code := randomToken()
	now := l.now()
	l.mu.Lock()
	for k, v := range l.codes {
		if now.After(v.expires) {
			delete(l.codes, k)
		}
	}
	if len(l.codes) >= maxLoginCodes {
		l.mu.Unlock()
		back(url.Values{"error": {"temporarily_unavailable"}})
		return
	}
	l.codes[code] = &loginCode{client: p.Get("client_id"), redirect: redirect, challenge: p.Get("code_challenge"),
		nonce: p.Get("nonce"), claims: claims, expires: now.Add(codeLifetime)}
	l.mu.Unlock()
	back(url.Values{"code": {code}})
}

func (l *LoginServer) render(w http.ResponseWriter, r *http.Request, p url.Values, msg string, code int) {
	type hidden struct{ Name, Value string }
	var hs []hidden
	for _, k := range authParams {
		hs = append(hs, hidden{k, p.Get(k)})
	}
	fields := slices.Clone(l.form.Fields)
	if r.Method == http.MethodPost {
		for i := range fields {
			if fields[i].Type != "password" {
				fields[i].Value = r.PostForm.Get(fields[i].Name)
			}
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_ = loginPage.Execute(w, map[string]any{
		"Title": l.form.Title, "Client": p.Get("client_id"), "Error": msg,
		"Action": r.URL.Path, "Hidden": hs, "Fields": fields,
	})
}

// Token is the token endpoint for grant_type=authorization_code: the
// client (client_secret_basic or client_secret_post) exchanges a code with
// its PKCE verifier and the same redirect URI, once.
func (l *LoginServer) Token(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, e, desc string) {
		writeJSON(w, code, map[string]string{"error": e, "error_description": desc})
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "invalid_request", "POST the token request")
		return
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "authorization_code" {
		fail(http.StatusBadRequest, "unsupported_grant_type", "only authorization_code")
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = f.Get("client_id"), f.Get("client_secret")
	}
	l.mu.Lock()
	c, known := l.clients[id]
	lc := l.codes[f.Get("code")]
	delete(l.codes, f.Get("code")) // single use, whatever follows
	l.mu.Unlock()
	if !known || subtle.ConstantTimeCompare([]byte(c.secret), []byte(secret)) != 1 {
		fail(http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	if lc == nil || l.now().After(lc.expires) || lc.client != id || lc.redirect != f.Get("redirect_uri") {
		fail(http.StatusBadRequest, "invalid_grant", "the code is unknown, used, expired, or not this client's")
		return
	}
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(lc.challenge)) != 1 {
		fail(http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
		return
	}
	claims := make(map[string]any, len(lc.claims)+2)
	for k, v := range lc.claims {
		claims[k] = v
	}
	claims["aud"] = id
	if lc.nonce != "" {
		claims["nonce"] = lc.nonce
	}
	tok, err := l.mint(claims)
	if err != nil {
		fail(http.StatusInternalServerError, "server_error", "the ID token could not be signed")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "id_token": tok, "token_type": "Bearer", "expires_in": 3600})
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
