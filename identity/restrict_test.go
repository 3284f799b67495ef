package identity_test

import (
	"context"
	"testing"
	"time"

	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/identity/identitytest"
)

// TestTokenLifetimeIsBounded: an ancient iat with a far exp, or no iat and a
// far exp, is refused however valid the signature; the cache never admits
// such a token later.
func TestTokenLifetimeIsBounded(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	v := newVerifier(t, identity.Options{}, iss.Config("airlock", "groups"))
	now := time.Now()
	cases := []struct {
		name   string
		claims map[string]any
		ok     bool
		frag   string
	}{
		{"one hour", map[string]any{"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}, true, ""},
		{"exactly the maximum", map[string]any{"iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix()}, true, ""},
		{"ancient iat, far exp", map[string]any{"iat": now.Add(-3 * 365 * 24 * time.Hour).Unix(), "exp": now.Add(10 * 365 * 24 * time.Hour).Unix()}, false, "longer than the 24h0m0s this gateway accepts"},
		{"a day and a minute", map[string]any{"iat": now.Unix(), "exp": now.Add(24*time.Hour + time.Minute).Unix()}, false, "the token lives 24h1m0s"},
		{"ancient iat, near exp", map[string]any{"iat": now.Add(-48 * time.Hour).Unix(), "exp": now.Add(time.Hour).Unix()}, false, "the token lives 49h0m0s"},
		{"no iat, near exp", map[string]any{"iat": nil, "exp": now.Add(time.Hour).Unix()}, true, ""},
		{"no iat, far exp", map[string]any{"iat": nil, "exp": now.Add(30 * 24 * time.Hour).Unix()}, false, "has no iat and expires in 720h0m0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := iss.Mint(tc.claims)
			for range 2 { // the second time through the cache
				_, err := v.Verify(context.Background(), tok)
				if tc.ok {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					continue
				}
				refusal(t, err, tok, identity.LifetimeTooLong, tc.frag)
			}
		})
	}

	short := newVerifier(t, identity.Options{MaxTokenLifetime: 10 * time.Minute}, iss.Config("airlock", "groups"))
	tok := iss.Mint(map[string]any{"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	_, err := short.Verify(context.Background(), tok)
	refusal(t, err, tok, identity.LifetimeTooLong, "longer than the 10m0s this gateway accepts")
}

// TestIssuerRestrictions: a token the issuer signed for our audience is
// refused unless its subject, verified e-mail domain or Workspace domain is
// allowed; a token matching any one of the lists set is admitted.
func TestIssuerRestrictions(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	cfg := iss.Config("airlock", "groups")
	cfg.AllowedSubjects = []string{"bot-1", "repo:acme/infra:*"}
	cfg.AllowedEmailDomains = []string{"acme-prod.iam.gserviceaccount.com"}
	cfg.AllowedHD = []string{"Example.com"}
	v := newVerifier(t, identity.Options{}, cfg)
	cases := []struct {
		name   string
		claims map[string]any
		ok     bool
		frags  []string
	}{
		{"listed subject", map[string]any{"sub": "bot-1"}, true, nil},
		{"subject prefix", map[string]any{"sub": "repo:acme/infra:ref:refs/heads/main"}, true, nil},
		{"service account of the project", map[string]any{"sub": "1234", "email": "deployer@acme-prod.iam.gserviceaccount.com", "email_verified": true}, true, nil},
		{"workspace user", map[string]any{"sub": "5678", "email": "alice@example.com", "hd": "example.com"}, true, nil},
		{"stranger", map[string]any{"sub": "1111", "email": "mallory@gmail.com", "email_verified": true}, false,
			[]string{`its subject "1111" is not an allowed subject`, `its e-mail "mallory@gmail.com" is not in an allowed domain`, "it has no hd (Google Workspace domain) claim"}},
		{"unverified e-mail in the allowed domain", map[string]any{"sub": "2222", "email": "x@acme-prod.iam.gserviceaccount.com", "email_verified": false}, false,
			[]string{`its e-mail "x@acme-prod.iam.gserviceaccount.com" is not verified`}},
		{"sub-domain of an allowed domain", map[string]any{"sub": "3333", "email": "x@evil.acme-prod.iam.gserviceaccount.com", "email_verified": true}, false,
			[]string{"is not in an allowed domain"}},
		{"subject prefix of another repository", map[string]any{"sub": "repo:acme/infra-evil:ref:refs/heads/main"}, false, []string{"is not an allowed subject"}},
		{"other workspace", map[string]any{"sub": "4444", "hd": "evil.com"}, false, []string{`its Workspace domain "evil.com" is not allowed`}},
		{"subject equal to an allowed domain", map[string]any{"sub": "example.com"}, false, []string{"not an allowed subject"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := iss.Mint(tc.claims)
			for range 2 { // and again through the cache
				_, err := v.Verify(context.Background(), tok)
				if tc.ok {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					continue
				}
				refusal(t, err, tok, identity.NotAllowed, append([]string{"issuer \"" + iss.URL() + "\" admits only listed identities"}, tc.frags...)...)
			}
		})
	}

	// Without restrictions every token of the issuer passes.
	open := newVerifier(t, identity.Options{}, iss.Config("airlock", "groups"))
	if _, err := open.Verify(context.Background(), iss.Mint(map[string]any{"sub": "1111"})); err != nil {
		t.Fatal(err)
	}
}

func TestRestrictionConfigErrors(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	for _, mod := range []func(*identity.IssuerConfig){
		func(c *identity.IssuerConfig) { c.AllowedSubjects = []string{"*"} },
		func(c *identity.IssuerConfig) { c.AllowedSubjects = []string{"a*b"} },
		func(c *identity.IssuerConfig) { c.AllowedEmailDomains = []string{"@example.com"} },
		func(c *identity.IssuerConfig) { c.AllowedHD = []string{""} },
	} {
		cfg := iss.Config("airlock", "groups")
		mod(&cfg)
		if _, err := identity.NewOIDCVerifier(context.Background(), []identity.IssuerConfig{cfg}, identity.Options{}); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
}

func TestPublicIssuer(t *testing.T) {
	for iss, want := range map[string]bool{
		"https://accounts.google.com":                                                 true,
		"accounts.google.com":                                                         true,
		"https://token.actions.githubusercontent.com":                                 true,
		"https://gitlab.com":                                                          true,
		"https://login.microsoftonline.com/common/v2.0":                               true,
		"https://login.microsoftonline.com/organizations/v2.0":                        true,
		"https://idp.example.com/multitenant":                                         true,
		"https://login.microsoftonline.com/8f2c1e9a-0000-4c7e-9d1f-3e2a1b0c9d8e/v2.0": false,
		"https://issuer.example.com":                                                  false,
		"https://token.actions.githubusercontent.com.ev":                              false,
	} {
		if got := identity.PublicIssuer(iss); got != want {
			t.Errorf("PublicIssuer(%q) = %v, want %v", iss, got, want)
		}
	}
	c := identity.IssuerConfig{Issuer: "https://accounts.google.com", Audience: "airlock"}
	if err := c.CheckPublic(); err == nil {
		t.Error("an unrestricted Google issuer passes CheckPublic")
	}
	c.AllowedHD = []string{"example.com"}
	if err := c.CheckPublic(); err != nil {
		t.Errorf("a restricted Google issuer: %v", err)
	}
}
