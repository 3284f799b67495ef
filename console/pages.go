package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
)

//go:embed static
var staticFS embed.FS

// staticVersion changes with the embedded files, so that a page never
// runs yesterday's script.
var staticVersion = func() string {
	h := sha256.New()
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := staticFS.ReadFile(p)
			h.Write([]byte(p))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// contentSecurityPolicy admits the console's own script, style and API,
// nothing inline, no frame, no plugin, forms to itself only.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

var shell = template.Must(template.New("shell").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · airlock</title>
<link rel="icon" href="{{.Base}}/static/favicon.svg">
<link rel="stylesheet" href="{{.Base}}/static/app.css?v={{.Version}}">
<script src="{{.Base}}/static/app.js?v={{.Version}}" defer></script>
</head>
<body data-page="{{.Page}}" data-base="{{.Base}}" data-id="{{.ID}}" data-csrf="{{.Me.CSRFToken}}" data-subject="{{.Me.Subject}}" data-auditor="{{.Me.Auditor}}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="{{.Base}}/">airlock</a>
  <nav aria-label="Console">
    <a href="{{.Base}}/"{{if eq .Page "queue"}} aria-current="page"{{end}}>Approvals</a>
    <a href="{{.Base}}/sessions"{{if or (eq .Page "sessions") (eq .Page "session")}} aria-current="page"{{end}}>Sessions</a>
  </nav>
  <div class="who" id="who">
    <span>Signed in as <strong id="who-name">{{if .Me.Email}}{{.Me.Email}}{{else}}{{.Me.Subject}}{{end}}</strong>{{if .Me.Actor}} (acting for another party: {{.Me.Actor}}){{end}}</span>
    <span id="who-groups">Groups: {{if .Me.Groups}}{{range $i, $g := .Me.Groups}}{{if $i}}, {{end}}<span class="group">{{$g}}</span>{{end}}{{else}}none{{end}}</span>
    {{if .Me.Auditor}}<span class="badge">auditor</span>{{end}}
    <form method="post" action="{{.Base}}/auth/logout" class="logout">
      <input type="hidden" name="csrf" value="{{.Me.CSRFToken}}">
      <button type="submit" id="sign-out">Sign out</button>
    </form>
  </div>
</header>
<main id="main" tabindex="-1">
<noscript><p class="notice">The console needs JavaScript. The same data is in the CLI: <code>airlock approvals list</code>, <code>airlock sessions list</code>.</p></noscript>
<p id="loading" class="muted">Loading…</p>
</main>
<div id="live" class="sr-only" role="status" aria-live="polite"></div>
</body></html>
`))

var messagePage = template.Must(template.New("message").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · airlock</title>
<link rel="icon" href="{{.Base}}/static/favicon.svg">
<link rel="stylesheet" href="{{.Base}}/static/app.css?v={{.Version}}">
</head><body>
<header class="top"><a class="brand" href="{{.Base}}/">airlock</a></header>
<main id="main" class="message">
<h1>{{.Title}}</h1>
<p>{{.Text}}</p>
<p><a class="button" href="{{.Base}}/auth/login">Sign in</a></p>
</main></body></html>
`))

// page serves the shell of a page to a signed-in person; anyone else is
// sent to sign in and brought back here.
func (c *Console) page(kind string) http.HandlerFunc {
	titles := map[string]string{"queue": "Approvals", "approval": "Approval", "sessions": "Sessions", "session": "Session"}
	return func(w http.ResponseWriter, r *http.Request) {
		if !c.SignIn() {
			c.errorPage(w, http.StatusServiceUnavailable, "Sign-in is not configured",
				"The console signs people in with OpenID Connect: set console.issuer and console.client_id in airlock.yaml (see README, \"The console\"). Until then, use the CLI: airlock approvals list, airlock sessions list.")
			return
		}
		s, _, err := c.current(r)
		if err != nil {
			c.errorPage(w, http.StatusServiceUnavailable, "The console is unavailable", "Its session store did not answer; try again shortly.")
			return
		}
		if s == nil {
			http.Redirect(w, r, c.path("/auth/login")+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		securityHeaders(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = shell.Execute(w, map[string]any{
			"Title": titles[kind], "Page": kind, "ID": r.PathValue("id"), "Base": c.base.Path,
			"Version": staticVersion, "Me": c.meOf(s),
		})
	}
}

// signedOut is the page after sign-out.
func (c *Console) signedOut(w http.ResponseWriter, r *http.Request) {
	c.message(w, http.StatusOK, "You are signed out", "Your console session has ended on this server.")
}

func (c *Console) errorPage(w http.ResponseWriter, code int, title, text string) {
	c.message(w, code, title, text)
}

func (c *Console) message(w http.ResponseWriter, code int, title, text string) {
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_ = messagePage.Execute(w, map[string]any{"Title": title, "Text": strings.TrimSpace(text), "Base": c.base.Path, "Version": staticVersion})
}
