package identity_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/identity"
)

// devFlow serves a dev issuer on a loopback test server with the console
// registered as a client.
func devFlow(t *testing.T) (*identity.DevIssuer, string, string) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	dev, err := identity.NewDevIssuer(srv.URL+"/dev", "airlock")
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/dev/", dev.Handler())
	redirect := "http://127.0.0.1:9/auth/callback"
	dev.RegisterClient("airlock-console", "", redirect)
	return dev, srv.URL + "/dev", redirect
}

func challenge(verifier string) string {
	s := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorize signs in at the dev issuer's form and returns the code.
func authorize(t *testing.T, iss, redirect, verifier string, form url.Values) (*http.Response, string) {
	t.Helper()
	p := url.Values{"response_type": {"code"}, "client_id": {"airlock-console"}, "redirect_uri": {redirect}, "scope": {"openid email"},
		"state": {"st"}, "nonce": {"n-1"}, "code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
	for k, v := range form {
		p[k] = v
	}
	resp, err := noRedirect.PostForm(iss+"/authorize", p)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return resp, loc.Query().Get("code")
}

func exchange(t *testing.T, iss, redirect, code, verifier string) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(iss+"/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {"airlock-console"},
		"code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func TestDevIssuerCodeFlow(t *testing.T) {
	dev, iss, redirect := devFlow(t)
	verifier := strings.Repeat("v", 43)

	// The form is served to a valid request, with labelled fields.
	resp, err := http.Get(iss + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"airlock-console"}, "redirect_uri": {redirect},
		"scope": {"openid"}, "state": {"s"}, "code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `<label for="f-sub">`) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "form-action 'self' http://127.0.0.1:9") {
		t.Fatalf("form = %d %s", resp.StatusCode, page)
	}

	resp, code := authorize(t, iss, redirect, verifier, url.Values{"sub": {"bob"}, "email": {"bob@example.com"}, "groups": {"sre, audit"}})
	if resp.StatusCode != 303 || code == "" || !strings.Contains(resp.Header.Get("Location"), "state=st") {
		t.Fatalf("authorize = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A wrong verifier spends the code.
	if st, m := exchange(t, iss, redirect, code, strings.Repeat("w", 43)); st != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("wrong verifier = %d %v", st, m)
	}
	if st, _ := exchange(t, iss, redirect, code, verifier); st != 400 {
		t.Fatalf("a spent code was exchanged: %d", st)
	}
	_, code = authorize(t, iss, redirect, verifier, url.Values{"sub": {"bob"}, "email": {"bob@example.com"}, "groups": {"sre, audit"}})
	if st, _ := exchange(t, iss, "http://127.0.0.1:9/other", code, verifier); st != 400 {
		t.Fatalf("a code exchanged for another redirect URI: %d", st)
	}
	_, code = authorize(t, iss, redirect, verifier, url.Values{"sub": {"bob"}, "email": {"bob@example.com"}, "groups": {"sre, audit"}})
	st, m := exchange(t, iss, redirect, code, verifier)
	if st != 200 {
		t.Fatalf("exchange = %d %v", st, m)
	}
	if st, _ := exchange(t, iss, redirect, code, verifier); st != 400 {
		t.Fatalf("a code was exchanged twice: %d", st)
	}
	v := newVerifier(t, identity.Options{})
	if err := v.AddStatic(dev.ClientConfig("airlock-console"), dev.Keys()); err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(context.Background(), m["id_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "bob" || !id.EmailVerified || strings.Join(id.Groups, ",") != "sre,audit" || id.Claims["nonce"] != "n-1" {
		t.Errorf("ID token identity = %+v", id)
	}
	// An ID token for the console is no agent token: wrong audience.
	agents := newVerifier(t, identity.Options{})
	_ = agents.AddStatic(dev.Config(), dev.Keys())
	if _, err := agents.Verify(context.Background(), m["id_token"].(string)); err == nil {
		t.Error("a console ID token passes as an agent token")
	}

	// Requests that must never be redirected: unknown client or URI.
	for _, p := range []url.Values{
		{"client_id": {"evil"}},
		{"redirect_uri": {"https://evil.example.com/cb"}},
	} {
		resp, _ := authorize(t, iss, redirect, verifier, p)
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("%v: %d %s", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// PKCE is required.
	resp, _ = authorize(t, iss, redirect, verifier, url.Values{"code_challenge_method": {"plain"}})
	if !strings.Contains(resp.Header.Get("Location"), "error=invalid_request") {
		t.Errorf("plain PKCE = %s", resp.Header.Get("Location"))
	}
	// The sign-in answers loopback clients only.
	req := httptest.NewRequest("GET", "/dev/authorize", nil)
	req.RemoteAddr = "10.0.0.7:1234"
	rec := httptest.NewRecorder()
	dev.Handler().ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Errorf("a remote sign-in = %d", rec.Code)
	}
	// Discovery names the endpoints.
	resp, err = http.Get(iss + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc["authorization_endpoint"] != iss+"/authorize" || doc["token_endpoint"] != iss+"/token" {
		t.Errorf("discovery = %v", doc)
	}
}
