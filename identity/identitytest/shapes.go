package identitytest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/identity"
)

// ShapedIssuer is a real OIDC issuer shaped like one agents already have:
// the discovery document, JWKS location and claim layout of a Kubernetes
// cluster (GKE), GitHub Actions or Google. Its keys and signing are an
// Issuer's.
type ShapedIssuer struct {
	*Issuer
	issuer string // the "iss" of its tokens
	srv    *httptest.Server
	routes map[string]bool // published hosts Client sends to the test server
}

// URL is the issuer URL, the "iss" of its tokens.
func (s *ShapedIssuer) URL() string { return s.issuer }

// Mint signs a token with this issuer's "iss"; claims override it.
func (s *ShapedIssuer) Mint(claims map[string]any) string {
	s.t.Helper()
	c := map[string]any{"iss": s.issuer}
	for k, v := range claims {
		c[k] = v
	}
	return s.Issuer.Mint(c)
}

// MintWith mints like Issuer.MintWith, with this issuer's "iss".
func (s *ShapedIssuer) MintWith(claims map[string]any, opts ...MintOption) string {
	s.t.Helper()
	c := map[string]any{"iss": s.issuer}
	for k, v := range claims {
		c[k] = v
	}
	return s.Issuer.MintWith(c, opts...)
}

// Config returns an IssuerConfig trusting this issuer through discovery.
func (s *ShapedIssuer) Config(aud, groupsClaim string) identity.IssuerConfig {
	return identity.IssuerConfig{Issuer: s.issuer, Audience: aud, GroupsClaim: groupsClaim}
}

// Client is an HTTP client that reaches this issuer at its published
// URLs (https://accounts.google.com, https://www.googleapis.com/oauth2/v3/certs
// for the Google shape); for the other shapes it is a plain client.
func (s *ShapedIssuer) Client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: routeTransport{routes: s.routes, to: s.srv.Listener.Addr().String()}}
}

type routeTransport struct {
	routes map[string]bool
	to     string
}

func (rt routeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if rt.routes[r.URL.Host] {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = "http", rt.to
	}
	return http.DefaultTransport.RoundTrip(r)
}

func newShaped(t testing.TB, issuerPath, jwksPath string, discovery func(issuer, jwks string) map[string]any) *ShapedIssuer {
	t.Helper()
	s, _ := newShapedMux(t, issuerPath, jwksPath, discovery)
	return s
}

// newShapedMux is newShaped returning the server's mux, for more endpoints.
func newShapedMux(t testing.TB, issuerPath, jwksPath string, discovery func(issuer, jwks string) map[string]any) (*ShapedIssuer, *http.ServeMux) {
	t.Helper()
	s := &ShapedIssuer{Issuer: NewIssuer(t)}
	mux := http.NewServeMux()
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.issuer = s.srv.URL + issuerPath
	jwks := s.srv.URL + jwksPath
	s.serve(mux, issuerPath, jwksPath, func() map[string]any { return discovery(s.issuer, jwks) })
	return s, mux
}

func (s *ShapedIssuer) serve(mux *http.ServeMux, issuerPath, jwksPath string, discovery func() map[string]any) {
	mux.HandleFunc("GET "+issuerPath+"/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		s.discoveryHits.Add(1)
		writeJSON(w, discovery())
	})
	mux.HandleFunc("GET "+jwksPath, func(w http.ResponseWriter, r *http.Request) {
		s.jwksHits.Add(1)
		writeJSON(w, s.JWKS())
	})
}

// GKEClusterPath is the issuer path of the Kubernetes shape: a GKE
// cluster's issuer is https://container.googleapis.com/v1/projects/P/locations/L/clusters/C.
const GKEClusterPath = "/v1/projects/acme-prod/locations/us-east1/clusters/agents"

// NewKubernetesIssuer starts an issuer shaped like a GKE cluster's service
// account issuer: the issuer URL ends in the cluster path, discovery and
// the JWKS live below it, and tokens carry the "kubernetes.io" claim.
func NewKubernetesIssuer(t testing.TB) *ShapedIssuer {
	t.Helper()
	return newShaped(t, GKEClusterPath, GKEClusterPath+"/jwks", func(issuer, jwks string) map[string]any {
		return map[string]any{
			"issuer":                                issuer,
			"jwks_uri":                              jwks,
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"claims_supported":                      []string{"iss", "sub", "kubernetes.io"},
			"grant_types":                           []string{"urn:kubernetes:grant_type:programmatic_authorization"},
		}
	})
}

// KubernetesToken mints a projected service-account token of namespace ns
// and service account sa for audience aud, as the kubelet writes it into
// a pod's projected volume.
func (s *ShapedIssuer) KubernetesToken(ns, sa, aud string) string {
	s.t.Helper()
	now := time.Now()
	return s.Mint(map[string]any{
		"aud": []string{aud},
		"sub": fmt.Sprintf("system:serviceaccount:%s:%s", ns, sa),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": randomKID(),
		"kubernetes.io": map[string]any{
			"namespace":      ns,
			"node":           map[string]any{"name": "gke-agents-pool-1-7f3a", "uid": "6a1c0f5e-1d0b-4b8e-9d7e-1f2a3b4c5d6e"},
			"pod":            map[string]any{"name": sa + "-7d9f8c6b5-x2x7q", "uid": "0f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c"},
			"serviceaccount": map[string]any{"name": sa, "uid": "9b8a7f6e-5d4c-4b3a-8f9e-0d1c2b3a4f5e"},
			"warnafter":      now.Add(45 * time.Minute).Unix(),
		},
	})
}

// NewGitHubActionsIssuer starts an issuer shaped like GitHub Actions'
// (https://token.actions.githubusercontent.com): discovery at the root,
// the JWKS at /.well-known/jwks, tokens with repository, ref, workflow and
// environment claims.
func NewGitHubActionsIssuer(t testing.TB) *ShapedIssuer {
	t.Helper()
	return newShaped(t, "", "/.well-known/jwks", func(issuer, jwks string) map[string]any {
		return map[string]any{
			"issuer":                                issuer,
			"jwks_uri":                              jwks,
			"subject_types_supported":               []string{"public", "pairwise"},
			"response_types_supported":              []string{"id_token"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"scopes_supported":                      []string{"openid"},
			"claims_supported": []string{"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "sha", "repository", "repository_id",
				"repository_owner", "repository_owner_id", "run_id", "run_number", "run_attempt", "actor", "actor_id", "workflow",
				"workflow_ref", "workflow_sha", "head_ref", "base_ref", "event_name", "ref_type", "ref_protected", "environment",
				"environment_node_id", "job_workflow_ref", "job_workflow_sha", "repository_visibility", "runner_environment"},
		}
	})
}

// GitHubToken mints a GitHub Actions OIDC token of a workflow run of repo
// (owner/name) on ref, in environment env (empty: none), for audience aud.
// The subject is repo:OWNER/NAME:environment:ENV with an environment, else
// repo:OWNER/NAME:ref:REF, as GitHub forms it.
func (s *ShapedIssuer) GitHubToken(repo, ref, workflow, env, aud string) string {
	s.t.Helper()
	now := time.Now()
	owner, _, _ := strings.Cut(repo, "/")
	sub := "repo:" + repo + ":ref:" + ref
	claims := map[string]any{
		"aud": aud, "sub": sub,
		"iat": now.Unix(), "nbf": now.Add(-5 * time.Second).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": randomKID(), "ref": ref, "ref_type": "branch", "ref_protected": "true",
		"sha": "6f7c1b0e9d8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b", "repository": repo, "repository_id": "74", "repository_owner": owner,
		"repository_owner_id": "65", "repository_visibility": "private", "run_id": "8812345678", "run_number": "42",
		"run_attempt": "1", "actor": "octocat", "actor_id": "583231", "workflow": workflow, "event_name": "push",
		"workflow_ref":       repo + "/.github/workflows/" + strings.ToLower(workflow) + ".yml@" + ref,
		"job_workflow_ref":   repo + "/.github/workflows/" + strings.ToLower(workflow) + ".yml@" + ref,
		"runner_environment": "github-hosted",
	}
	if env != "" {
		claims["sub"] = "repo:" + repo + ":environment:" + env
		claims["environment"] = env
	}
	return s.Mint(claims)
}

// GoogleIssuer is Google's issuer URL.
const GoogleIssuer = "https://accounts.google.com"

// NewGoogleIssuer starts an issuer shaped like Google's: its published
// issuer is https://accounts.google.com and its JWKS
// https://www.googleapis.com/oauth2/v3/certs, both reached through
// Client(), and tokens are those of gcloud auth print-identity-token and
// the metadata server.
func NewGoogleIssuer(t testing.TB) *ShapedIssuer {
	t.Helper()
	s := &ShapedIssuer{Issuer: NewIssuer(t), issuer: GoogleIssuer}
	mux := http.NewServeMux()
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.routes = map[string]bool{"accounts.google.com": true, "www.googleapis.com": true}
	s.serve(mux, "", "/oauth2/v3/certs", func() map[string]any {
		return map[string]any{
			"issuer":                                GoogleIssuer,
			"authorization_endpoint":                "https://accounts.google.com/o/oauth2/v2/auth",
			"device_authorization_endpoint":         "https://oauth2.googleapis.com/device/code",
			"token_endpoint":                        "https://oauth2.googleapis.com/token",
			"userinfo_endpoint":                     "https://openidconnect.googleapis.com/v1/userinfo",
			"revocation_endpoint":                   "https://oauth2.googleapis.com/revoke",
			"jwks_uri":                              "https://www.googleapis.com/oauth2/v3/certs",
			"response_types_supported":              []string{"code", "token", "id_token", "code token", "code id_token", "token id_token", "code token id_token", "none"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"scopes_supported":                      []string{"openid", "email", "profile"},
			"claims_supported":                      []string{"aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "name", "picture", "sub"},
		}
	})
	return s
}

// GoogleServiceAccountToken mints the ID token a service account gets from
// the metadata server (identity?audience=AUD&format=full) or from gcloud
// auth print-identity-token --audiences=AUD --include-email: sub is the
// account's numeric unique id, email its address.
func (s *ShapedIssuer) GoogleServiceAccountToken(email, uniqueID, aud string) string {
	s.t.Helper()
	now := time.Now()
	project := strings.TrimSuffix(email[strings.IndexByte(email, '@')+1:], ".iam.gserviceaccount.com")
	return s.Mint(map[string]any{
		"aud": aud, "azp": uniqueID, "sub": uniqueID,
		"email": email, "email_verified": true,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"google": map[string]any{"compute_engine": map[string]any{
			"instance_creation_timestamp": now.Add(-24 * time.Hour).Unix(), "instance_id": "4711831612917265001",
			"instance_name": "agent-runner", "project_id": project, "project_number": 415104041262, "zone": "us-east1-b",
		}},
	})
}
