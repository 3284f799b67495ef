package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/airlockhq/airlock/identity/identitytest"
	"github.com/airlockhq/airlock/test/standin"
)

// denyListPolicy allows everything it does not name: the setting in which a
// differently spelled forbidden operation would slip through if airlock
// recognised it as something else.
const denyListPolicy = `name: deny-list
default: allow
rules:
  - name: no-instance-delete
    when: gcp.method == "compute.instances.delete"
    action: deny
    message: Deleting instances is not allowed for agents.
  - name: no-object-delete
    when: gcp.method == "storage.objects.delete"
    action: deny
    message: Deleting objects is not allowed for agents.
  - name: no-bucket-delete
    when: gcp.method == "storage.buckets.delete"
    action: deny
  - name: no-secret-access
    when: gcp.method.startsWith("secretmanager.") && gcp.method.endsWith(".access")
    action: deny
`

// googleError is the refusal body agents receive.
type googleError struct {
	Error struct {
		Code    int    `json:"code"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Details []struct {
			Type     string            `json:"@type"`
			Reason   string            `json:"reason"`
			Domain   string            `json:"domain"`
			Metadata map[string]string `json:"metadata"`
		} `json:"details"`
	} `json:"error"`
}

func parseRefusal(t *testing.T, body []byte) googleError {
	t.Helper()
	var g googleError
	if err := json.Unmarshal(body, &g); err != nil {
		t.Fatalf("refusal body is not Google's JSON error shape: %v\n%s", err, body)
	}
	if len(g.Error.Details) != 1 || g.Error.Details[0].Type != "type.googleapis.com/google.rpc.ErrorInfo" || g.Error.Details[0].Domain != "airlock" {
		t.Fatalf("refusal lacks the airlock ErrorInfo detail: %s", body)
	}
	if !strings.HasPrefix(g.Error.Message, "airlock: ") {
		t.Fatalf("refusal message does not say who refused: %q", g.Error.Message)
	}
	return g
}

// envoyConfig is how the shipped Envoy config drives ext_authz.
var envoyConfig = standin.AuthzConfig{
	WithRequestBody:     true,
	MaxRequestBytes:     1 << 20,
	AllowPartialMessage: true,
	PackAsBytes:         true,
	StatusOnError:       503,
	// The shipped timeout is hold + authz.timeout + 1s; a loaded test
	// machine gets more, since a timeout here is not what is under test.
	Timeout: 10 * time.Second,
}

type checker struct {
	t      *testing.T
	client authv3.AuthorizationClient
	cfg    standin.AuthzConfig
}

// do sends one request through the ext_authz stand-in.
func (c checker) do(method, url, token string, headers map[string]string, body string) *standin.AuthzResult {
	c.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := standin.Check(ctx, c.client, req, []byte(body), c.cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	if res.Err != nil {
		c.t.Fatalf("ext_authz transport error: %v", res.Err)
	}
	return res
}

func issuerConfig(iss *identitytest.Issuer) string {
	return fmt.Sprintf("identity:\n  issuers:\n    - issuer: %s\n      audience: airlock\n      groups_claim: groups\n", iss.URL())
}

func writePolicy(t *testing.T, dir, name, text string) string {
	t.Helper()
	pdir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(pdir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return pdir
}

func startWithPolicy(t *testing.T, iss *identitytest.Issuer, policy string, extra string) *Airlock {
	return startAirlock(t, func(p Ports, dir string) string {
		pdir := writePolicy(t, dir, "policy.yaml", policy)
		return fmt.Sprintf(`listen: {authz: %q, extproc: %q, sds: "", http: %q}
log: {level: info, format: json}
%s
policies: {paths: [%q], reload_interval: 100ms}
recorder: {enabled: false}
gateway: {domains: [gw.example.com]}
%s`, p.Authz, p.ExtProc, p.HTTP, issuerConfig(iss), pdir, extra)
	})
}

func TestEveryIdentityAttackIsRefused(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	other := identitytest.NewIssuer(t)
	a := startWithPolicy(t, iss, denyListPolicy, "")
	c := checker{t, a.Authz(t), envoyConfig}
	claims := func() map[string]any {
		return map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}, "aud": "airlock"}
	}
	list := "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances"

	good := iss.Mint(claims())
	if res := c.do("GET", list, good, nil, ""); !res.Allowed {
		t.Fatalf("a valid token was refused: %d %s", res.Status, res.Body)
	}

	wrongAud := claims()
	wrongAud["aud"] = "someone-else"
	cases := []struct {
		name  string
		token string
		url   string
		why   string
	}{
		{"no token", "", list, "no_token"},
		{"forged signature", iss.MintWith(claims(), identitytest.Forged()), list, "bad_signature"},
		{"expired", iss.MintWith(claims(), identitytest.Expired()), list, "expired"},
		{"not yet valid", iss.MintWith(claims(), identitytest.NotYetValid()), list, "expired"},
		{"wrong audience", iss.Mint(wrongAud), list, "wrong_audience"},
		{"unknown issuer", other.Mint(claims()), list, "unknown_issuer"},
		{"alg none", iss.MintWith(claims(), identitytest.AlgNone()), list, ""},
		{"HS256 signed with the public key", iss.MintWith(claims(), identitytest.HS256WithPublicKey()), list, ""},
		{"token in the query string", "", list + "?access_token=" + good, "no_token"},
		{"not a JWT", "not-a-jwt", list, "malformed"},
	}
	var tokens []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := checker{t, c.client, envoyConfig}
			res := c.do("GET", tc.url, tc.token, nil, "")
			if res.Allowed {
				t.Fatalf("allowed with %s", tc.name)
			}
			if res.Status != 401 {
				t.Fatalf("status %d, want 401: %s", res.Status, res.Body)
			}
			g := parseRefusal(t, res.Body)
			if g.Error.Status != "UNAUTHENTICATED" || g.Error.Details[0].Reason != "UNAUTHENTICATED" {
				t.Fatalf("want UNAUTHENTICATED, got %s/%s", g.Error.Status, g.Error.Details[0].Reason)
			}
			if tc.why != "" && g.Error.Details[0].Metadata["why"] != tc.why {
				t.Fatalf("why = %q, want %q (message %q)", g.Error.Details[0].Metadata["why"], tc.why, g.Error.Message)
			}
			if !strings.Contains(g.Error.Message, "Authorization: Bearer") {
				t.Errorf("the refusal does not tell the agent how to authenticate: %q", g.Error.Message)
			}
			if res.Headers.Get("www-authenticate") == "" {
				t.Errorf("401 without www-authenticate")
			}
		})
		if tc.token != "" {
			tokens = append(tokens, tc.token)
		}
	}
	tokens = append(tokens, good)
	a.Stop()
	logs := a.Logs()
	for _, tok := range tokens {
		// The signature part is what makes a token a credential.
		parts := strings.Split(tok, ".")
		secret := parts[len(parts)-1]
		if len(secret) > 16 && strings.Contains(logs, secret) {
			t.Errorf("a token reached the logs")
		}
	}
	if !strings.Contains(logs, `"outcome":"unauthenticated"`) {
		t.Errorf("refusals are not logged as decisions:\n%s", indent(logs))
	}
}

// TestForbiddenOperationNeverSlipsPast sends every spelling of forbidden
// operations against a deny-list policy (default allow): each must be
// refused, by the rule or before policy.
func TestForbiddenOperationNeverSlipsPast(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a := startWithPolicy(t, iss, denyListPolicy, "")
	c := checker{t, a.Authz(t), envoyConfig}
	tok := iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})

	const inst = "/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1"
	batchBody := func(boundary, part string) string {
		return "--" + boundary + "\r\nContent-Type: application/http\r\nContent-ID: <1>\r\n\r\n" + part + "\r\n--" + boundary + "--\r\n"
	}
	type spelling struct {
		name    string
		method  string
		url     string
		headers map[string]string
		body    string
		rule    string // expected deciding rule, or "" for refused before policy
	}
	spellings := []spelling{
		{"canonical", "DELETE", "https://compute.googleapis.com" + inst, nil, "", "no-instance-delete"},
		{"method override header", "POST", "https://compute.googleapis.com" + inst, map[string]string{"X-HTTP-Method-Override": "DELETE"}, "", "no-instance-delete"},
		{"method override lower case", "POST", "https://compute.googleapis.com" + inst, map[string]string{"X-HTTP-Method-Override": "delete"}, "", "no-instance-delete"},
		{"upper-case host", "DELETE", "https://COMPUTE.GOOGLEAPIS.COM" + inst, nil, "", "no-instance-delete"},
		{"host with trailing dot", "DELETE", "https://compute.googleapis.com." + inst, nil, "", "no-instance-delete"},
		{"host with port", "DELETE", "https://compute.googleapis.com:443" + inst, nil, "", "no-instance-delete"},
		{"mtls host", "DELETE", "https://compute.mtls.googleapis.com" + inst, nil, "", "no-instance-delete"},
		{"regional host", "DELETE", "https://compute.us-east1.rep.googleapis.com" + inst, nil, "", "no-instance-delete"},
		{"legacy www host", "DELETE", "https://www.googleapis.com" + inst, nil, "", "no-instance-delete"},
		{"gateway domain", "DELETE", "https://compute.gw.example.com" + inst, nil, "", "no-instance-delete"},
		{"encoded unreserved in literal segment", "DELETE", "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/%69nstances/web-1", nil, "", "no-instance-delete"},
		{"encoded unreserved in name", "DELETE", "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/%77eb-1", nil, "", "no-instance-delete"},
		{"query noise", "DELETE", "https://compute.googleapis.com" + inst + "?alt=json&prettyPrint=false", nil, "", "no-instance-delete"},
		{"dot-dot segment", "DELETE", "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/x/../web-1", nil, "", ""},
		{"dot segment", "DELETE", "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/./instances/web-1", nil, "", ""},
		{"encoded dot-dot", "DELETE", "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/x/%2e%2e/web-1", nil, "", ""},
		{"encoded slashes joining segments", "DELETE", "https://compute.googleapis.com/compute/v1/projects/acme-prod%2Fzones%2Fus-east1-b%2Finstances%2Fweb-1", nil, "", ""},
		{"encoded custom-verb colon", "GET", "https://secretmanager.googleapis.com/v1/projects/acme-prod/secrets/db/versions/latest%3Aaccess", nil, "", ""},
		{"empty segment", "DELETE", "https://compute.googleapis.com/compute/v1//projects/acme-prod/zones/us-east1-b/instances/web-1", nil, "", ""},
		{"batch part", "POST", "https://compute.googleapis.com/batch/compute/v1",
			map[string]string{"Content-Type": "multipart/mixed; boundary=b0undary"},
			batchBody("b0undary", "DELETE "+inst+" HTTP/1.1\r\n\r\n"), "no-instance-delete"},
		{"legacy global batch", "POST", "https://www.googleapis.com/batch",
			map[string]string{"Content-Type": "multipart/mixed; boundary=xyz"},
			batchBody("xyz", "GET /compute/v1/projects/acme-dev/zones/us-east1-b/instances HTTP/1.1\r\n\r\n") + "",
			""},
		{"storage JSON API with encoded slash", "DELETE", "https://storage.googleapis.com/storage/v1/b/acme-data/o/dir%2Fsecret.txt", nil, "", "no-object-delete"},
		{"storage JSON API override", "POST", "https://storage.googleapis.com/storage/v1/b/acme-data/o/dir%2Fsecret.txt", map[string]string{"X-HTTP-Method-Override": "DELETE"}, "", "no-object-delete"},
		{"storage XML API path-style", "DELETE", "https://storage.googleapis.com/acme-data/dir/secret.txt", nil, "", "no-object-delete"},
		{"storage XML API bucket host", "DELETE", "https://acme-data.storage.googleapis.com/dir/secret.txt", nil, "", "no-object-delete"},
		{"storage bucket delete XML", "DELETE", "https://storage.googleapis.com/acme-data", nil, "", "no-bucket-delete"},
		{"storage bucket delete JSON", "DELETE", "https://storage.googleapis.com/storage/v1/b/acme-data", nil, "", "no-bucket-delete"},
		{"storage batch", "POST", "https://storage.googleapis.com/batch/storage/v1",
			map[string]string{"Content-Type": `multipart/mixed; boundary="===1==="`},
			batchBody("===1===", "DELETE /storage/v1/b/acme-data/o/a.txt HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"), "no-object-delete"},
		{"batch with an unquoted invalid boundary", "POST", "https://storage.googleapis.com/batch/storage/v1",
			map[string]string{"Content-Type": "multipart/mixed; boundary====1==="},
			batchBody("===1===", "DELETE /storage/v1/b/acme-data/o/a.txt HTTP/1.1\r\n\r\n"), ""},
		{"secret access", "GET", "https://secretmanager.googleapis.com/v1/projects/acme-prod/secrets/db/versions/latest:access", nil, "", "no-secret-access"},
		{"secret access regional", "GET", "https://secretmanager.us-east1.rep.googleapis.com/v1/projects/acme-prod/locations/us-east1/secrets/db/versions/1:access", nil, "", "no-secret-access"},
	}
	// The legacy global batch above holds only a read: it must be allowed,
	// which proves the batch is parsed rather than refused wholesale.
	for _, s := range spellings {
		t.Run(s.name, func(t *testing.T) {
			c := checker{t, c.client, envoyConfig}
			res := c.do(s.method, s.url, tok, s.headers, s.body)
			if s.name == "legacy global batch" {
				if !res.Allowed {
					t.Fatalf("a batch of reads was refused: %d %s", res.Status, res.Body)
				}
				return
			}
			if res.Allowed {
				t.Fatalf("%s %s slipped past the deny-list", s.method, s.url)
			}
			g := parseRefusal(t, res.Body)
			if s.rule == "" {
				if res.Status != 400 || g.Error.Details[0].Reason != "INVALID_REQUEST" {
					t.Fatalf("want a 400 refusal before policy, got %d %s: %s", res.Status, g.Error.Details[0].Reason, g.Error.Message)
				}
				return
			}
			if res.Status != 403 || g.Error.Details[0].Reason != "POLICY_DENIED" {
				t.Fatalf("want 403 POLICY_DENIED, got %d %s: %s", res.Status, g.Error.Details[0].Reason, g.Error.Message)
			}
			if got := g.Error.Details[0].Metadata["rule"]; got != s.rule {
				t.Fatalf("decided by rule %q, want %q", got, s.rule)
			}
			if !strings.Contains(g.Error.Message, s.rule) {
				t.Fatalf("message does not name the rule: %q", g.Error.Message)
			}
		})
	}

	t.Run("partial batch body", func(t *testing.T) {
		small := envoyConfig
		small.MaxRequestBytes = 64
		c := checker{t, c.client, small}
		body := batchBody("b0undary", "GET /compute/v1/projects/acme-dev/zones/us-east1-b/instances HTTP/1.1\r\n\r\n"+strings.Repeat(" ", 200))
		res := c.do("POST", "https://compute.googleapis.com/batch/compute/v1", tok, map[string]string{"Content-Type": "multipart/mixed; boundary=b0undary"}, body)
		if res.Allowed || res.Status != 400 {
			t.Fatalf("a truncated batch body must be refused with 400, got allowed=%v %d %s", res.Allowed, res.Status, res.Body)
		}
	})
}

func TestAllowedRequestCarriesDecisionMetadata(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a := startWithPolicy(t, iss, denyListPolicy, "")
	c := checker{t, a.Authz(t), envoyConfig}
	tok := iss.Mint(map[string]any{"sub": "agent-7", "groups": []string{"ai-agents"}, "act": map[string]any{"sub": "claude"}})
	res := c.do("GET", "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances?access_token=leak", tok,
		map[string]string{"x-airlock-session": "sess-42"}, "")
	if !res.Allowed {
		t.Fatalf("refused: %s", res.Body)
	}
	md := res.DynamicMetadata
	if md["subject"] != "agent-7" || md["actor"] != "claude" || md["session_id"] != "sess-42" || md["gcp_method"] != "compute.instances.list" {
		t.Fatalf("dynamic metadata = %v", md)
	}
	if rules, _ := md["rules"].([]any); len(rules) != 1 || rules[0] != "deny-list/default" {
		t.Fatalf("rules = %v, want [deny-list/default]", md["rules"])
	}
	if res.UpstreamHeaders.Get("Authorization") != "" {
		t.Fatalf("the agent's token would reach Google")
	}
	if strings.Contains(res.Path, "access_token") {
		t.Fatalf("the query token would reach Google: %s", res.Path)
	}
	// An invalid session name is refused with words the agent understands.
	res = c.do("GET", "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances", tok,
		map[string]string{"x-airlock-session": "../../etc"}, "")
	if res.Allowed || res.Status != 400 || !strings.Contains(string(res.Body), "x-airlock-session") {
		t.Fatalf("bad session header: allowed=%v %d %s", res.Allowed, res.Status, res.Body)
	}
}

func TestHeaderMapAndRawBodyForms(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a := startWithPolicy(t, iss, denyListPolicy, "")
	tok := iss.Mint(map[string]any{"sub": "agent-1"})
	for _, cfg := range []standin.AuthzConfig{
		{WithRequestBody: true, MaxRequestBytes: 1 << 20, AllowPartialMessage: true, EncodeRawHeaders: true, PackAsBytes: true, Timeout: 10 * time.Second},
		{WithRequestBody: true, MaxRequestBytes: 1 << 20, AllowPartialMessage: true, Timeout: 10 * time.Second},
	} {
		c := checker{t, a.Authz(t), cfg}
		body := "--b\r\nContent-Type: application/http\r\n\r\nDELETE /storage/v1/b/acme-data/o/x HTTP/1.1\r\n\r\n\r\n--b--\r\n"
		res := c.do("POST", "https://storage.googleapis.com/batch/storage/v1", tok, map[string]string{"Content-Type": "multipart/mixed; boundary=b"}, body)
		if res.Allowed {
			t.Fatalf("encode_raw_headers=%v pack_as_bytes=%v: batch delete allowed", cfg.EncodeRawHeaders, cfg.PackAsBytes)
		}
		res = c.do("GET", "https://storage.googleapis.com/storage/v1/b/acme-data/o", tok, nil, "")
		if !res.Allowed {
			t.Fatalf("encode_raw_headers=%v: list refused: %s", cfg.EncodeRawHeaders, res.Body)
		}
	}
}
