package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DeviceLogin is the client side of the OAuth 2.0 device authorization
// grant (RFC 8628) against an OIDC issuer: the person approves a short
// code in a browser, the command-line client receives an ID token (the
// token airlock verifies) and a refresh token that keeps it fresh.
type DeviceLogin struct {
	// Issuer is the issuer URL; its discovery document names the device
	// authorization and token endpoints.
	Issuer string
	// ClientID is the public client registered for the command line; the
	// ID token's audience, so the issuer's entry in airlock names it as
	// audience.
	ClientID string
	// ClientSecret, for issuers that give command-line clients one.
	ClientSecret string
	// Scopes requested (default openid, email, profile, offline_access).
	Scopes []string
	// HTTPClient talks to the issuer (default: 30s timeout).
	HTTPClient *http.Client

	deviceEndpoint, tokenEndpoint string
}

// DeviceCode is what the person needs to approve the login.
type DeviceCode struct {
	DeviceCode string
	// UserCode is typed in at VerificationURI, or already filled in at
	// VerificationURIComplete.
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string
	// Expires is when the device code stops being valid.
	Expires time.Time
	// Interval is the least time between two polls.
	Interval time.Duration
}

// LoginTokens are what a login or a refresh returns.
type LoginTokens struct {
	IDToken      string
	AccessToken  string
	RefreshToken string
	// Expiry is the ID token's exp (else now + expires_in).
	Expiry time.Time
}

// LoginError is an OAuth error answer of the issuer (RFC 6749 5.2).
type LoginError struct {
	Code, Description string
}

func (e *LoginError) Error() string {
	if e.Description == "" {
		return "identity: login: the issuer answered " + e.Code
	}
	return fmt.Sprintf("identity: login: the issuer answered %s: %s", e.Code, sanitise(e.Description, 200))
}

// maxLoginResponse bounds an issuer's answer.
const maxLoginResponse = 1 << 20

// Discover reads the issuer's discovery document: it must name this
// issuer, a device authorization endpoint and a token endpoint, all https
// (http only on loopback).
func (l *DeviceLogin) Discover(ctx context.Context) error {
	if err := checkLoginURL(l.Issuer); err != nil {
		return fmt.Errorf("identity: login: issuer %w", err)
	}
	if l.ClientID == "" {
		return errors.New("identity: login: a client id is required")
	}
	var doc struct {
		Issuer string `json:"issuer"`
		Device string `json:"device_authorization_endpoint"`
		Token  string `json:"token_endpoint"`
	}
	u := strings.TrimSuffix(l.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("identity: login: %w", err)
	}
	if err := l.do(req, &doc); err != nil {
		return fmt.Errorf("identity: login: discovery %s: %w", u, err)
	}
	if doc.Issuer != l.Issuer {
		return fmt.Errorf("identity: login: the discovery document of %s names issuer %q", l.Issuer, sanitise(doc.Issuer, 100))
	}
	if doc.Device == "" {
		return fmt.Errorf("identity: login: %s offers no device authorization endpoint (RFC 8628); enable the device flow for client %s", l.Issuer, l.ClientID)
	}
	for _, e := range []string{doc.Device, doc.Token} {
		if err := checkLoginURL(e); err != nil {
			return fmt.Errorf("identity: login: endpoint %w", err)
		}
	}
	l.deviceEndpoint, l.tokenEndpoint = doc.Device, doc.Token
	return nil
}

func checkLoginURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL", sanitise(s, 100))
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "localhost" || h == "127.0.0.1" || h == "::1" {
			return nil
		}
	}
	return fmt.Errorf("%q must be https (http only on loopback)", sanitise(s, 100))
}

// Start asks for a device code.
func (l *DeviceLogin) Start(ctx context.Context) (*DeviceCode, error) {
	scopes := l.Scopes
	if len(scopes) == 0 {
		scopes = []string{"openid", "email", "profile", "offline_access"}
	}
	var out struct {
		DeviceCode              string `json:"device_code"`
		UserCode                string `json:"user_code"`
		VerificationURI         string `json:"verification_uri"`
		VerificationURL         string `json:"verification_url"` // Google's spelling
		VerificationURIComplete string `json:"verification_uri_complete"`
		ExpiresIn               int64  `json:"expires_in"`
		Interval                int64  `json:"interval"`
	}
	if err := l.post(ctx, l.deviceEndpoint, url.Values{"scope": {strings.Join(scopes, " ")}}, &out); err != nil {
		return nil, err
	}
	if out.VerificationURI == "" {
		out.VerificationURI = out.VerificationURL
	}
	if out.DeviceCode == "" || out.UserCode == "" || out.VerificationURI == "" {
		return nil, errors.New("identity: login: the device authorization answer lacks device_code, user_code or verification_uri")
	}
	dc := &DeviceCode{DeviceCode: out.DeviceCode, UserCode: out.UserCode, VerificationURI: out.VerificationURI,
		VerificationURIComplete: out.VerificationURIComplete, Interval: 5 * time.Second, Expires: time.Now().Add(10 * time.Minute)}
	if out.Interval > 0 {
		dc.Interval = time.Duration(out.Interval) * time.Second
	}
	if out.ExpiresIn > 0 {
		dc.Expires = time.Now().Add(time.Duration(out.ExpiresIn) * time.Second)
	}
	return dc, nil
}

// Wait polls the token endpoint until the person approves or denies the
// login, the device code expires or ctx ends, slowing down when asked.
func (l *DeviceLogin) Wait(ctx context.Context, dc *DeviceCode) (*LoginTokens, error) {
	interval := dc.Interval
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
		if time.Now().After(dc.Expires) {
			return nil, errors.New("identity: login: the code expired before it was approved; run the login again")
		}
		toks, err := l.tokens(ctx, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {dc.DeviceCode}})
		var le *LoginError
		if errors.As(err, &le) {
			switch le.Code {
			case "authorization_pending":
				continue
			case "slow_down":
				interval += 5 * time.Second
				continue
			case "access_denied":
				return nil, errors.New("identity: login: the login was denied in the browser")
			case "expired_token":
				return nil, errors.New("identity: login: the code expired before it was approved; run the login again")
			}
		}
		return toks, err
	}
}

// Refresh trades a refresh token for fresh tokens. An issuer that answers
// without an ID token cannot keep the login fresh.
func (l *DeviceLogin) Refresh(ctx context.Context, refreshToken string) (*LoginTokens, error) {
	toks, err := l.tokens(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
	if err != nil {
		return nil, err
	}
	if toks.RefreshToken == "" {
		toks.RefreshToken = refreshToken
	}
	return toks, nil
}

func (l *DeviceLogin) tokens(ctx context.Context, form url.Values) (*LoginTokens, error) {
	var out struct {
		IDToken      string `json:"id_token"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int64  `json:"expires_in"`
	}
	if err := l.post(ctx, l.tokenEndpoint, form, &out); err != nil {
		return nil, err
	}
	if out.IDToken == "" {
		return nil, errors.New("identity: login: the issuer returned no id_token; request the openid scope")
	}
	toks := &LoginTokens{IDToken: out.IDToken, AccessToken: out.AccessToken, RefreshToken: out.RefreshToken}
	if exp, ok := TokenExpiry(out.IDToken); ok {
		toks.Expiry = exp
	} else if out.ExpiresIn > 0 {
		toks.Expiry = time.Now().Add(time.Duration(out.ExpiresIn) * time.Second)
	}
	return toks, nil
}

func (l *DeviceLogin) post(ctx context.Context, endpoint string, form url.Values, out any) error {
	if endpoint == "" {
		return errors.New("identity: login: Discover first")
	}
	form.Set("client_id", l.ClientID)
	if l.ClientSecret != "" {
		form.Set("client_secret", l.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("identity: login: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return l.do(req, out)
}

func (l *DeviceLogin) do(req *http.Request, out any) error {
	req.Header.Set("Accept", "application/json")
	client := l.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLoginResponse))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return &LoginError{Code: sanitise(e.Error, 60), Description: e.Description}
		}
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return nil
}

// TokenExpiry reads a JWT's exp claim without verifying it: for a client
// deciding when to refresh the token it holds.
func TokenExpiry(jwt string) (time.Time, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp == nil {
		return time.Time{}, false
	}
	return unixTime(*c.Exp), true
}

// WriteTokenFile writes token, and a line break, to path as gcloud's
// auth/access_token_file and the client libraries read it: readable by the
// owner alone, replaced in one rename so a reader never sees half a token.
func WriteTokenFile(path, token string) error {
	return writePrivate(path, []byte(token+"\n"))
}

func writePrivate(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("identity: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("identity: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("identity: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	return nil
}

// LoginState is what a login keeps beside its token file to refresh it
// later without asking the person again.
type LoginState struct {
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"client_id"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry"`
}

// LoadLoginState reads the state at path; found is false when there is
// none.
func LoadLoginState(path string) (s LoginState, found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("identity: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, false, fmt.Errorf("identity: %s: %w", path, err)
	}
	return s, true, nil
}

// Save writes the state readable by the owner alone.
func (s *LoginState) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	return writePrivate(path, append(b, '\n'))
}

// RefreshAt is when a token valid until exp should be refreshed: when
// four fifths of what is left from now have passed (12 minutes before an
// hour-long token expires).
func RefreshAt(now, exp time.Time) time.Time {
	left := exp.Sub(now)
	if left <= 0 {
		return now
	}
	return now.Add(left * 4 / 5)
}
