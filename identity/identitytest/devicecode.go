package identitytest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// DeviceIssuer is an OIDC issuer with the OAuth 2.0 device authorization
// grant (RFC 8628) and refresh tokens, as a company issuer offers it to a
// command-line client: discovery names device_authorization_endpoint and
// token_endpoint; a device code is pending until the test approves its
// user code (as the person would in a browser), then polling returns an ID
// token for the client (aud: the client id) and a refresh token.
type DeviceIssuer struct {
	*ShapedIssuer
	clientID string

	mu        sync.Mutex
	lifetime  time.Duration
	interval  int
	codes     map[string]*deviceCode // by device code
	byUser    map[string]*deviceCode
	refresh   map[string]map[string]any // refresh token -> claims
	refreshes int
	polls     int
	waiting   chan string // user codes, as they are issued
}

type deviceCode struct {
	device, user string
	expires      time.Time
	lastPoll     time.Time
	claims       map[string]any // set when approved
	denied       bool
	done         bool
}

// NewDeviceIssuer starts a device-flow issuer for the public client
// clientID. ID tokens live an hour unless SetLifetime says otherwise; the
// polling interval is one second.
func NewDeviceIssuer(t testing.TB, clientID string) *DeviceIssuer {
	t.Helper()
	d := &DeviceIssuer{clientID: clientID, lifetime: time.Hour, interval: 1,
		codes: map[string]*deviceCode{}, byUser: map[string]*deviceCode{}, refresh: map[string]map[string]any{},
		waiting: make(chan string, 16)}
	var mux *http.ServeMux
	d.ShapedIssuer, mux = newShapedMux(t, "", "/jwks", func(issuer, jwks string) map[string]any {
		return map[string]any{
			"issuer":                                issuer,
			"jwks_uri":                              jwks,
			"device_authorization_endpoint":         issuer + "/device/code",
			"token_endpoint":                        issuer + "/token",
			"response_types_supported":              []string{"code", "id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"grant_types_supported":                 []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
		}
	})
	mux.HandleFunc("POST /device/code", d.deviceCode)
	mux.HandleFunc("POST /token", d.token)
	return d
}

// SetLifetime sets the lifetime of ID tokens issued from now on.
func (d *DeviceIssuer) SetLifetime(l time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lifetime = l
}

// NextUserCode waits up to timeout for the next user code the issuer hands
// out, as the person reads it from the terminal.
func (d *DeviceIssuer) NextUserCode(timeout time.Duration) (string, error) {
	select {
	case c := <-d.waiting:
		return c, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("identitytest: no device code was requested within %s", timeout)
	}
}

// Approve approves userCode as the person would in the browser: the next
// poll gets an ID token with claims (sub, email, groups, ...).
func (d *DeviceIssuer) Approve(userCode string, claims map[string]any) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.byUser[userCode]
	if c == nil {
		return fmt.Errorf("identitytest: no pending user code %q", userCode)
	}
	c.claims = claims
	return nil
}

// Deny refuses userCode.
func (d *DeviceIssuer) Deny(userCode string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.byUser[userCode]; c != nil {
		c.denied = true
	}
}

// RevokeRefreshTokens invalidates every refresh token issued so far.
func (d *DeviceIssuer) RevokeRefreshTokens() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refresh = map[string]map[string]any{}
}

// Refreshes counts the refresh-token grants served.
func (d *DeviceIssuer) Refreshes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refreshes
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": code, "error_description": desc})
}

func randomCode(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (d *DeviceIssuer) deviceCode(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") != d.clientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client")
		return
	}
	user := strings.ToUpper(randomCode(2) + "-" + randomCode(2))
	c := &deviceCode{device: randomCode(16), user: user, expires: time.Now().Add(10 * time.Minute)}
	d.mu.Lock()
	d.codes[c.device] = c
	d.byUser[user] = c
	interval := d.interval
	d.mu.Unlock()
	select {
	case d.waiting <- user:
	default:
	}
	writeJSON(w, map[string]any{
		"device_code":               c.device,
		"user_code":                 user,
		"verification_uri":          d.URL() + "/device",
		"verification_uri_complete": d.URL() + "/device?user_code=" + user,
		"expires_in":                600,
		"interval":                  interval,
	})
}

func (d *DeviceIssuer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") != d.clientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var claims map[string]any
	switch r.PostForm.Get("grant_type") {
	case "urn:ietf:params:oauth:grant-type:device_code":
		d.polls++
		c := d.codes[r.PostForm.Get("device_code")]
		switch {
		case c == nil || c.done:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown device code")
			return
		case time.Now().After(c.expires):
			oauthError(w, http.StatusBadRequest, "expired_token", "the device code expired")
			return
		case c.denied:
			oauthError(w, http.StatusBadRequest, "access_denied", "the user denied the request")
			return
		case !c.lastPoll.IsZero() && time.Since(c.lastPoll) < time.Duration(d.interval)*time.Second-100*time.Millisecond:
			c.lastPoll = time.Now()
			oauthError(w, http.StatusBadRequest, "slow_down", "polling too fast")
			return
		case c.claims == nil:
			c.lastPoll = time.Now()
			oauthError(w, http.StatusBadRequest, "authorization_pending", "waiting for the user")
			return
		}
		c.done = true
		claims = c.claims
	case "refresh_token":
		var ok bool
		claims, ok = d.refresh[r.PostForm.Get("refresh_token")]
		if !ok {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is invalid or revoked")
			return
		}
		delete(d.refresh, r.PostForm.Get("refresh_token"))
		d.refreshes++
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	now := time.Now()
	c := map[string]any{"aud": d.clientID, "iat": now.Unix(), "exp": now.Add(d.lifetime).Unix(), "jti": randomCode(8)}
	for k, v := range claims {
		c[k] = v
	}
	rt := randomCode(24)
	d.refresh[rt] = claims
	writeJSON(w, map[string]any{
		"access_token":  randomCode(20),
		"token_type":    "Bearer",
		"expires_in":    int(d.lifetime / time.Second),
		"id_token":      d.Mint(c),
		"refresh_token": rt,
		"scope":         r.PostForm.Get("scope"),
	})
}
