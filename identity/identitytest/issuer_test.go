package identitytest_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/airlockhq/airlock/identity/identitytest"
)

func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(h, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func fetchJWKS(t *testing.T, iss *identitytest.Issuer) (int, jose.JSONWebKeySet) {
	t.Helper()
	resp, err := http.Get(iss.URL() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, set
}

func TestIssuer(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	code, set := fetchJWKS(t, iss)
	if code != 200 || len(set.Keys) != 1 || set.Keys[0].KeyID != iss.KID() || !set.Keys[0].IsPublic() {
		t.Fatalf("jwks: %d %+v", code, set)
	}
	old := iss.KID()
	if h := header(t, iss.Mint(nil)); h["kid"] != old || h["alg"] != "RS256" {
		t.Fatalf("header = %v", h)
	}
	kid := iss.Rotate()
	if h := header(t, iss.Mint(nil)); h["kid"] != kid {
		t.Fatalf("after Rotate, header = %v", h)
	}
	if _, set = fetchJWKS(t, iss); len(set.Keys) != 2 {
		t.Fatalf("after Rotate, %d keys", len(set.Keys))
	}
	iss.RemoveKey(old)
	if _, set = fetchJWKS(t, iss); len(set.Keys) != 1 || set.Keys[0].KeyID != kid {
		t.Fatalf("after RemoveKey, %+v", set)
	}
	if h := header(t, iss.MintWith(nil, identitytest.AlgNone())); h["alg"] != "none" {
		t.Fatalf("alg none header = %v", h)
	}
	if h := header(t, iss.MintWith(nil, identitytest.UnknownKID())); h["kid"] == kid {
		t.Fatalf("unknown kid header = %v", h)
	}
	iss.SetDown(true)
	if code, _ := fetchJWKS(t, iss); code != http.StatusServiceUnavailable {
		t.Fatalf("down: status %d", code)
	}
	if iss.JWKSHits() != 4 {
		t.Fatalf("JWKS hits = %d, want 4", iss.JWKSHits())
	}
	cfg := iss.Config("aud", "roles")
	if cfg.Issuer != iss.URL() || cfg.Audience != "aud" || cfg.GroupsClaim != "roles" {
		t.Fatalf("config = %+v", cfg)
	}
}
