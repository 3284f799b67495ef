package identity

import "testing"

// A Google Workspace token vouches for its address through hd, the domain
// that owns the account; a consumer account or another domain does not.
func TestGoogleHostedDomainVouches(t *testing.T) {
	google := IssuerConfig{Issuer: googleIssuer}
	cases := []struct {
		email, hd string
		want      bool
	}{
		{"alice@acme.com", "acme.com", true},
		{"alice@ACME.com", "acme.com", true},
		{"alice@acme.com", "", false},
		{"alice@evil.com", "acme.com", false},
		{"alice@acme.com.evil.com", "acme.com", false},
		{"no-at-sign", "acme.com", false},
	}
	for _, c := range cases {
		claims := map[string]any{"email": c.email}
		if c.hd != "" {
			claims["hd"] = c.hd
		}
		if got := emailVerified(claims, c.email, google); got != c.want {
			t.Errorf("emailVerified(%q, hd %q) = %v, want %v", c.email, c.hd, got, c.want)
		}
	}
	if emailVerified(map[string]any{"hd": "acme.com"}, "alice@acme.com", IssuerConfig{Issuer: "https://idp.example"}) {
		t.Error("hd vouches on an issuer other than Google")
	}
}
