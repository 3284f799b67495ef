package identitytest

import (
	"crypto/subtle"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"sync"

	"github.com/airlockhq/airlock/identity"
)

// signIn is the issuer's authorization code flow: people with a password
// sign in on a form at /authorize, registered clients exchange codes at
// /token for ID tokens whose audience is the client.
type signIn struct {
	login *identity.LoginServer

	mu    sync.Mutex
	users map[string]user
}

type user struct {
	password string
	claims   map[string]any
}

func (i *Issuer) serveSignIn(mux *http.ServeMux) {
	i.signIn.users = map[string]user{}
	i.signIn.login = identity.NewLoginServer(identity.LoginForm{
		Title: "Test issuer sign-in",
		Fields: []identity.LoginField{
			{Name: "username", Label: "Username"},
			{Name: "password", Label: "Password", Type: "password"},
		},
		Authenticate: i.authenticate,
	}, func(claims map[string]any) (string, error) { return i.Mint(claims), nil })
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		if i.down.Load() {
			http.Error(w, "issuer down", http.StatusServiceUnavailable)
			return
		}
		i.signIn.login.Authorize(w, r)
	})
	mux.HandleFunc("POST /token", i.signIn.login.Token)
}

func (i *Issuer) authenticate(f url.Values) (map[string]any, error) {
	i.signIn.mu.Lock()
	u, ok := i.signIn.users[f.Get("username")]
	i.signIn.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(u.password), []byte(f.Get("password"))) != 1 {
		return nil, errors.New("unknown username or wrong password")
	}
	return maps.Clone(u.claims), nil
}

// AddUser lets username sign in with password at the authorization
// endpoint; the ID token carries claims (sub, email, email_verified,
// groups, ...), sub defaulting to username.
func (i *Issuer) AddUser(username, password string, claims map[string]any) {
	c := maps.Clone(claims)
	if c == nil {
		c = map[string]any{}
	}
	if _, ok := c["sub"]; !ok {
		c["sub"] = username
	}
	i.signIn.mu.Lock()
	defer i.signIn.mu.Unlock()
	i.signIn.users[username] = user{password: password, claims: c}
}

// RegisterClient admits an OAuth client with its secret ("" for a public
// client) and its redirect URIs.
func (i *Issuer) RegisterClient(id, secret string, redirectURIs ...string) {
	i.signIn.login.RegisterClient(id, secret, redirectURIs...)
}
