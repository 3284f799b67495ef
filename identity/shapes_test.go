package identity_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/identity/identitytest"
)

// Kubernetes service-account tokens (a projected volume with audience
// airlock), through the cluster issuer's discovery and JWKS: the subject
// is system:serviceaccount:NS:NAME, and the claim mapping exposes the
// namespace, service account and pod.
func TestKubernetesServiceAccountTokens(t *testing.T) {
	k := identitytest.NewKubernetesIssuer(t)
	ic := k.Config("airlock", "")
	ic.Claims = map[string]string{
		"namespace":       "kubernetes.io.namespace",
		"service_account": "kubernetes.io.serviceaccount.name",
		"pod":             "kubernetes.io.pod.name",
	}
	v := newVerifier(t, identity.Options{}, ic)
	if err := v.Healthy(); err != nil {
		t.Fatalf("keys not loaded through the cluster's discovery: %v", err)
	}
	id, err := v.Verify(context.Background(), k.KubernetesToken("agents", "claude", "airlock"))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "system:serviceaccount:agents:claude" || id.Issuer != k.URL() ||
		id.Claims["namespace"] != "agents" || id.Claims["service_account"] != "claude" ||
		!strings.HasPrefix(id.Claims["pod"].(string), "claude-") {
		t.Fatalf("identity = %+v", id)
	}
	if _, ok := id.Claims["kubernetes.io"].(map[string]any); !ok {
		t.Errorf("the token's own claims are gone: %v", id.Claims)
	}
	// A token projected for another audience (the API server's default, or
	// another service's) is refused.
	_, err = v.Verify(context.Background(), k.KubernetesToken("agents", "claude", "https://kubernetes.default.svc"))
	refusal(t, err, "", identity.WrongAudience, `does not include "airlock"`)
}

// GitHub Actions OIDC tokens: restricted to the organisation's
// repositories by subject prefix; repository, ref, workflow and
// environment are claims of their own.
func TestGitHubActionsTokens(t *testing.T) {
	gh := identitytest.NewGitHubActionsIssuer(t)
	ic := gh.Config("airlock", "")
	ic.AllowedSubjects = []string{"repo:acme/infra:*"}
	v := newVerifier(t, identity.Options{}, ic)
	id, err := v.Verify(context.Background(), gh.GitHubToken("acme/infra", "refs/heads/main", "Deploy", "production", "airlock"))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "repo:acme/infra:environment:production" {
		t.Fatalf("subject = %q", id.Subject)
	}
	for k, want := range map[string]string{"repository": "acme/infra", "ref": "refs/heads/main", "workflow": "Deploy", "environment": "production", "repository_owner": "acme"} {
		if id.Claims[k] != want {
			t.Errorf("claims[%s] = %v, want %q", k, id.Claims[k], want)
		}
	}
	tok := gh.GitHubToken("mallory/infra", "refs/heads/main", "Deploy", "", "airlock")
	_, err = v.Verify(context.Background(), tok)
	refusal(t, err, tok, identity.NotAllowed, `"repo:mallory/infra:ref:refs/heads/main" is not an allowed subject`)
}

// Google-signed ID tokens (the metadata server, gcloud auth
// print-identity-token) through accounts.google.com's discovery and
// www.googleapis.com's JWKS, admitted by e-mail or domain.
func TestGoogleIDTokens(t *testing.T) {
	g := identitytest.NewGoogleIssuer(t)
	agent := g.GoogleServiceAccountToken("agent@acme-prod.iam.gserviceaccount.com", "104958372615243", "airlock")
	other := g.GoogleServiceAccountToken("miner@evil-123.iam.gserviceaccount.com", "118273645521", "airlock")
	opts := identity.Options{HTTPClient: g.Client()}

	t.Run("allowed_emails", func(t *testing.T) {
		ic := g.Config("airlock", "")
		ic.AllowedEmails = []string{"Agent@acme-prod.iam.gserviceaccount.com"}
		v := newVerifier(t, opts, ic)
		id, err := v.Verify(context.Background(), agent)
		if err != nil {
			t.Fatal(err)
		}
		gce, _ := id.Claims["google"].(map[string]any)["compute_engine"].(map[string]any)
		if id.Subject != "104958372615243" || id.Email != "agent@acme-prod.iam.gserviceaccount.com" || !id.EmailVerified || gce["project_id"] != "acme-prod" {
			t.Fatalf("identity = %+v", id)
		}
		_, err = v.Verify(context.Background(), other)
		refusal(t, err, other, identity.NotAllowed, `"miner@evil-123.iam.gserviceaccount.com" is not an allowed e-mail`)
		// An unverified e-mail is no e-mail.
		unverified := g.Mint(map[string]any{"email": "agent@acme-prod.iam.gserviceaccount.com", "email_verified": false})
		_, err = v.Verify(context.Background(), unverified)
		refusal(t, err, unverified, identity.NotAllowed, "is not verified")
	})
	t.Run("allowed_email_domains", func(t *testing.T) {
		ic := g.Config("airlock", "")
		ic.AllowedEmailDomains = []string{"acme-prod.iam.gserviceaccount.com"}
		v := newVerifier(t, opts, ic)
		if _, err := v.Verify(context.Background(), agent); err != nil {
			t.Fatal(err)
		}
		_, err := v.Verify(context.Background(), other)
		refusal(t, err, other, identity.NotAllowed, "is not in an allowed domain")
	})
	t.Run("unrestricted is refused", func(t *testing.T) {
		_, err := identity.NewOIDCVerifier(context.Background(), []identity.IssuerConfig{g.Config("airlock", "")}, opts)
		if err == nil || !strings.Contains(err.Error(), "anyone can obtain a token from https://accounts.google.com") ||
			!strings.Contains(err.Error(), "allowed_emails") || !strings.Contains(err.Error(), "allow_unrestricted") {
			t.Fatalf("err = %v", err)
		}
		ic := g.Config("airlock", "")
		ic.AllowUnrestricted = true
		v := newVerifier(t, opts, ic)
		if _, err := v.Verify(context.Background(), other); err != nil {
			t.Fatalf("allow_unrestricted: %v", err)
		}
	})
}

// Every public issuer needs a restriction or the explicit opt-out, on
// every way of trusting one.
func TestPublicIssuersNeedARestriction(t *testing.T) {
	for _, iss := range []string{"https://accounts.google.com", "https://token.actions.githubusercontent.com", "https://login.microsoftonline.com/common/v2.0"} {
		_, err := identity.NewOIDCVerifier(context.Background(), []identity.IssuerConfig{{Issuer: iss, Audience: "airlock"}}, identity.Options{CacheSize: -1})
		if err == nil || !strings.Contains(err.Error(), "issuers[0]") {
			t.Errorf("%s unrestricted: err = %v", iss, err)
		}
		v := newVerifier(t, identity.Options{})
		src := identitytest.NewIssuer(t)
		if err := v.AddStatic(identity.IssuerConfig{Issuer: iss, Audience: "airlock"}, src.JWKS().Keys); err == nil {
			t.Errorf("AddStatic trusted %s unrestricted", iss)
		}
	}
}

func TestClaimAt(t *testing.T) {
	claims := map[string]any{
		"kubernetes.io": map[string]any{"namespace": "agents", "serviceaccount": map[string]any{"name": "claude"}},
		"a.b":           "exact",
		"a":             map[string]any{"b": "nested"},
		"realm_access":  map[string]any{"roles": []any{"x"}},
		"n":             map[string]any{"m.k": map[string]any{"v": 1.0}},
	}
	for path, want := range map[string]any{
		"kubernetes.io.namespace":           "agents",
		"kubernetes.io.serviceaccount.name": "claude",
		"a.b":                               "exact",
		"realm_access.roles":                []any{"x"},
		"n.m.k.v":                           1.0,
		"kubernetes.io.missing":             nil,
		"missing":                           nil,
		"kubernetes":                        nil,
	} {
		if got := identity.ClaimAt(claims, path); !reflect.DeepEqual(got, want) {
			t.Errorf("ClaimAt(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestCheckClaimNames(t *testing.T) {
	for m, want := range map[*map[string]string]string{
		{"namespace": "kubernetes.io.namespace", "_x1": "a"}: "",
		{"1ns": "a"}:             "not a CEL identifier",
		{"name-space": "a"}:      "not a CEL identifier",
		{"sub": "kubernetes.io"}: "registered claim",
		{"email": "upn"}:         "registered claim",
		{"ns": ""}:               "not a claim path",
		{"ns": "a..b"}:           "not a claim path",
		{"ns": ".a"}:             "not a claim path",
	} {
		err := identity.CheckClaimNames(*m)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckClaimNames(%v) = %v, want %q", *m, err, want)
		}
	}
}

// A mapped name says what its path holds, and nothing when the token has
// nothing there: a top-level claim of the same name does not stand in.
func TestClaimMappingReplacesSameNamedClaims(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	ic := iss.Config("airlock", "")
	ic.Claims = map[string]string{"namespace": "kubernetes.io.namespace"}
	v := newVerifier(t, identity.Options{}, ic)
	id, err := v.Verify(context.Background(), iss.Mint(map[string]any{"namespace": "kube-system"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := id.Claims["namespace"]; ok {
		t.Fatalf("claims[namespace] = %v from a top-level claim; the mapping's path is absent", id.Claims["namespace"])
	}
	id, err = v.Verify(context.Background(), iss.Mint(map[string]any{"namespace": "kube-system", "kubernetes.io": map[string]any{"namespace": "agents"}}))
	if err != nil || id.Claims["namespace"] != "agents" {
		t.Fatalf("claims[namespace] = %v, %v", id.Claims["namespace"], err)
	}
}

func TestSubjectAndEmailClaims(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	ic := iss.Config("airlock", "")
	ic.SubjectClaim = "oid"
	ic.EmailClaim = "upn"
	v := newVerifier(t, identity.Options{}, ic)
	id, err := v.Verify(context.Background(), iss.Mint(map[string]any{"oid": "5f2b-77", "upn": "alice@acme.example", "email_verified": true}))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "5f2b-77" || id.Email != "alice@acme.example" || id.EmailVerified {
		t.Fatalf("identity = %+v (email_verified speaks of the email claim, not upn)", id)
	}
	tok := iss.Mint(nil)
	_, err = v.Verify(context.Background(), tok)
	refusal(t, err, tok, identity.Malformed, "no oid claim")

	ic.TrustEmail = true
	ic.Issuer = iss.URL()
	v = newVerifier(t, identity.Options{}, ic)
	id, err = v.Verify(context.Background(), iss.Mint(map[string]any{"oid": "5f2b-77", "upn": "alice@acme.example"}))
	if err != nil || !id.EmailVerified {
		t.Fatalf("trust_email: %+v, %v", id, err)
	}
}
