package identity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/identity"
)

func TestDevIssuerMintVerifyStatic(t *testing.T) {
	dev, err := identity.NewDevIssuer("http://127.0.0.1:8080/dev", "airlock")
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, identity.Options{})
	if err := v.AddStatic(dev.Config(), dev.Keys()); err != nil {
		t.Fatalf("AddStatic: %v", err)
	}
	tok, err := dev.Mint("alice", "alice@example.com", []string{"ai-agents", "sre"}, "agent-1", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id.Subject != "alice" || id.Email != "alice@example.com" || id.Actor != "agent-1" || id.Issuer != "http://127.0.0.1:8080/dev" ||
		fmt.Sprint(id.Groups) != "[ai-agents sre]" {
		t.Errorf("identity = %+v", id)
	}
	if d := time.Until(id.Expiry); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("expiry in %s, want about 10m", d)
	}
	if s := v.Stats(); s.KeyFetches != 0 {
		t.Errorf("static issuer fetched keys: %+v", s)
	}
	// Another dev issuer's token under the same name is refused.
	other, err := identity.NewDevIssuer("http://127.0.0.1:8080/dev", "airlock")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.Mint("mallory", "", nil, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), forged)
	refusal(t, err, forged, identity.BadSignature)
}

func TestDevIssuerMintErrors(t *testing.T) {
	dev, err := identity.NewDevIssuer("http://127.0.0.1:8080/dev", "airlock")
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"no sub":       func() error { _, err := dev.Mint("", "", nil, "", 0); return err },
		"negative ttl": func() error { _, err := dev.Mint("a", "", nil, "", -time.Second); return err },
		"ttl too long": func() error { _, err := dev.Mint("a", "", nil, "", 48*time.Hour); return err },
	} {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://127.0.0.1/dev"} {
		if _, err := identity.NewDevIssuer(bad, "airlock"); err == nil {
			t.Errorf("issuer URL %q accepted", bad)
		}
	}
	if _, err := identity.NewDevIssuer("http://127.0.0.1:8080/dev", ""); err == nil {
		t.Error("empty audience accepted")
	}
}

// TestDevIssuerOverHTTP trusts the dev issuer the way any other issuer is
// trusted: by discovery over HTTP.
func TestDevIssuerOverHTTP(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	dev, err := identity.NewDevIssuer(srv.URL+"/dev", "airlock")
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/dev/", dev.Handler())

	for _, useJWKSURL := range []bool{false, true} {
		cfg := dev.Config()
		if !useJWKSURL {
			cfg.JWKSURL = ""
		}
		v := newVerifier(t, identity.Options{}, cfg)
		if err := v.Healthy(); err != nil {
			t.Fatalf("jwks_url %v: Healthy: %v", useJWKSURL, err)
		}
		// httptest clients connect from loopback: the token endpoint answers.
		resp, err := http.Get(srv.URL + "/dev/token?sub=bob&groups=a,b&groups=c&actor=x&email=bob@example.com&ttl=5m")
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			ExpiresIn   int    `json:"expires_in"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || body.TokenType != "Bearer" || body.ExpiresIn != 300 {
			t.Fatalf("token endpoint: %d %+v %v", resp.StatusCode, body, err)
		}
		id, err := v.Verify(context.Background(), body.AccessToken)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if id.Subject != "bob" || id.Actor != "x" || id.Email != "bob@example.com" || fmt.Sprint(id.Groups) != "[a b c]" {
			t.Errorf("identity = %+v", id)
		}
	}
}

func TestDevTokenEndpointLoopbackOnly(t *testing.T) {
	dev, err := identity.NewDevIssuer("http://127.0.0.1:8080/dev", "airlock")
	if err != nil {
		t.Fatal(err)
	}
	h := dev.Handler()
	tests := []struct {
		name   string
		method string
		remote string
		target string
		body   string
		header map[string]string
		want   int
	}{
		{"ipv4 loopback", "GET", "127.0.0.1:5555", "/dev/token?sub=alice", "", nil, 200},
		{"other loopback address", "GET", "127.0.0.9:5555", "/dev/token?sub=alice", "", nil, 200},
		{"ipv6 loopback", "GET", "[::1]:5555", "/dev/token?sub=alice", "", nil, 200},
		{"post form", "POST", "127.0.0.1:5555", "/dev/token", "sub=alice&groups=a", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 200},
		{"remote ipv4", "GET", "192.0.2.1:1234", "/dev/token?sub=alice", "", nil, 403},
		{"remote ipv6", "GET", "[2001:db8::1]:1234", "/dev/token?sub=alice", "", nil, 403},
		{"private network", "GET", "10.0.0.5:1234", "/dev/token?sub=alice", "", nil, 403},
		{"unparseable remote", "GET", "somewhere", "/dev/token?sub=alice", "", nil, 403},
		{"forwarded through a local proxy", "GET", "127.0.0.1:5555", "/dev/token?sub=alice", "", map[string]string{"X-Forwarded-For": "203.0.113.9"}, 403},
		{"forwarded header", "GET", "127.0.0.1:5555", "/dev/token?sub=alice", "", map[string]string{"Forwarded": "for=203.0.113.9"}, 403},
		{"remote post", "POST", "192.0.2.1:1234", "/dev/token", "sub=alice", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 403},
		{"no sub", "GET", "127.0.0.1:5555", "/dev/token", "", nil, 400},
		{"bad ttl", "GET", "127.0.0.1:5555", "/dev/token?sub=a&ttl=forever", "", nil, 400},
		{"ttl too long", "GET", "127.0.0.1:5555", "/dev/token?sub=a&ttl=100h", "", nil, 400},
		{"discovery is public", "GET", "192.0.2.1:1234", "/dev/.well-known/openid-configuration", "", nil, 200},
		{"jwks is public", "GET", "192.0.2.1:1234", "/dev/jwks", "", nil, 200},
		{"outside the issuer path", "GET", "127.0.0.1:5555", "/token?sub=alice", "", nil, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			r.RemoteAddr = tc.remote
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status = %d, want %d: %s", w.Code, tc.want, w.Body.String())
			}
			if tc.want == 403 && strings.Contains(w.Body.String(), "eyJ") {
				t.Fatalf("refusal carries a token: %s", w.Body.String())
			}
			if tc.want == 200 && strings.HasSuffix(tc.target, "openid-configuration") {
				var doc map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || doc["issuer"] != "http://127.0.0.1:8080/dev" || doc["jwks_uri"] != "http://127.0.0.1:8080/dev/jwks" {
					t.Fatalf("discovery = %s", w.Body.String())
				}
			}
		})
	}
}

func TestDevIssuerAtTheRoot(t *testing.T) {
	dev, err := identity.NewDevIssuer("http://localhost:9999", "airlock")
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/token?"+url.Values{"sub": {"a"}}.Encode(), nil)
	r.RemoteAddr = "127.0.0.1:1"
	w := httptest.NewRecorder()
	dev.Handler().ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body.String())
	}
}

func TestRequestDevToken(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	dev, err := identity.NewDevIssuer(srv.URL+"/dev", "airlock")
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/dev/", dev.Handler())
	v := newVerifier(t, identity.Options{})
	if err := v.AddStatic(dev.Config(), dev.Keys()); err != nil {
		t.Fatal(err)
	}
	tok, err := identity.RequestDevToken(context.Background(), nil, dev.Config().Issuer, identity.DevTokenRequest{
		Sub: "carol", Groups: []string{"ai-agents"}, Actor: "bot", TTL: 2 * time.Minute,
	})
	if err != nil {
		t.Fatalf("RequestDevToken: %v", err)
	}
	id, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "carol" || id.Actor != "bot" || fmt.Sprint(id.Groups) != "[ai-agents]" {
		t.Errorf("identity = %+v", id)
	}
	if _, err := identity.RequestDevToken(context.Background(), nil, dev.Config().Issuer, identity.DevTokenRequest{}); err == nil || !strings.Contains(err.Error(), "sub is empty") {
		t.Fatalf("no sub: %v", err)
	}
}
