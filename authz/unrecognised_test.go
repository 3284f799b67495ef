package authz

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/policies"
)

// denyListPolicy allows whatever it does not name: the policy a forbidden
// operation slips through when airlock cannot recognise it.
const denyListPolicy = `name: deny-list
default: allow
rules:
  - name: no-object-delete
    when: gcp.method == "storage.objects.delete"
    action: deny
  - name: no-secret-access
    when: gcp.method.endsWith(".versions.access")
    action: deny
  - name: unknown-operations-seen
    when: gcp.method == "" && gcp.service == "storage"
    action: approve
    approvers: [group:sre]
`

func newDenyListEngine(t *testing.T, mode Unrecognised) *Engine {
	t.Helper()
	set := loadPolicy(t, denyListPolicy)
	e, err := New(Options{
		Verifier:     fakeVerifier{"good": {Subject: "agent-1", Groups: []string{"ai-agents"}}},
		Recognizer:   gcp.NewRecognizer(gcp.DefaultCatalog(), nil),
		Policies:     set,
		Unrecognised: mode,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestUnrecognisedRefusedBeforePolicy: with the default setting, a request
// airlock cannot recognise is refused before a deny-list policy (default
// allow) can let it through, and the refusal tells the agent what to send.
func TestUnrecognisedRefusedBeforePolicy(t *testing.T) {
	e := newDenyListEngine(t, "")
	grpc := func(ct string) Request {
		r := req("POST", "storage.googleapis.com", "/google.storage.v2.Storage/DeleteObject", "good")
		r.Headers["content-type"] = ct
		return r
	}
	batch := req("POST", "storage.googleapis.com", "/batch/storage/v1", "good")
	batch.Headers["content-type"] = "multipart/mixed; boundary=b"
	batch.Body = []byte("--b\r\nContent-Type: application/http\r\n\r\nGET /storage/v1/b/a/o HTTP/1.1\r\n\r\n\r\n--b\r\nContent-Type: application/http\r\n\r\nDELETE /storage/v2/b/a/o/x HTTP/1.1\r\n\r\n\r\n--b--\r\n")
	tests := []struct {
		name  string
		req   Request
		words []string
	}{
		{"gRPC DeleteObject", grpc("application/grpc"), []string{"gRPC", "NewRESTClient", `transport="rest"`, "newHttpJsonBuilder()"}},
		{"gRPC-Web DeleteObject", grpc("application/grpc-web-text"), []string{"gRPC"}},
		{"gRPC AccessSecretVersion", func() Request {
			r := req("POST", "secretmanager.googleapis.com", "/google.cloud.secretmanager.v1.SecretManagerService/AccessSecretVersion", "good")
			r.Headers["content-type"] = "application/grpc+proto"
			return r
		}(), []string{"gRPC", "AccessSecretVersion"}},
		{"unknown method", req("DELETE", "storage.googleapis.com", "/storage/v2/b/acme-prod-data/o/x", "good"),
			[]string{"airlock knows storage v1 at storage.googleapis.com", "use a documented REST method"}},
		{"unknown googleapis host", req("DELETE", "newstorage.googleapis.com", "/v1/b/x", "good"), []string{"does not know an API served at newstorage.googleapis.com"}},
		{"non-Google host", req("GET", "example.com", "/", "good"), []string{"not a Google Cloud API host"}},
		{"batch with an unknown part", batch, []string{"batch part 2:", "DELETE /storage/v2/b/a/o/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.Decide(context.Background(), tt.req)
			if res.Outcome != Invalid || res.Refusal == nil || res.Refusal.HTTPStatus != 400 || res.Refusal.Reason != ReasonInvalidRequest {
				t.Fatalf("outcome %s (%+v), want a 400 INVALID_REQUEST refusal before policy", res.Outcome, res.Refusal)
			}
			if res.Decision.Policy != "" {
				t.Fatalf("policy %s decided a request refused before policy", res.Decision.Policy)
			}
			msg := res.Refusal.Message
			if !strings.HasPrefix(msg, "airlock: refused before policy: ") {
				t.Errorf("message %q", msg)
			}
			for _, w := range tt.words {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}

	// Recognised spellings reach the policy, and its deny rules hold.
	for _, r := range []Request{
		req("DELETE", "content-storage.googleapis.com", "/storage/v1/b/acme-prod-data/o/x", "good"),
		req("DELETE", "storage-vialink1.p.googleapis.com", "/storage/v1/b/acme-prod-data/o/x", "good"),
		req("DELETE", "storage-download.googleapis.com", "/acme-prod-data/x", "good"),
		req("GET", "secretmanager-adsteam.p.googleapis.com", "/v1/projects/p/secrets/s/versions/1:access", "good"),
	} {
		res := e.Decide(context.Background(), r)
		if res.Outcome != PolicyDenied {
			t.Errorf("%s %s%s: outcome %s, want denied by the deny list (%+v)", r.Method, r.Host, r.Path, res.Outcome, res.Refusal)
		}
	}
	if res := e.Decide(context.Background(), req("GET", "compute.googleapis.com", "/$discovery/rest?version=v1", "good")); res.Outcome != Allowed ||
		res.Recognized.Operation.Method != "discovery.apis.getRest" {
		t.Errorf("discovery document: %s %q", res.Outcome, res.Recognized.Operation.Method)
	}
}

// TestUnrecognisedToPolicy: authz.unrecognised: policy hands such requests
// to policy, where gcp.method is empty.
func TestUnrecognisedToPolicy(t *testing.T) {
	e := newDenyListEngine(t, UnrecognisedToPolicy)
	r := req("POST", "storage.googleapis.com", "/google.storage.v2.Storage/DeleteObject", "good")
	r.Headers["content-type"] = "application/grpc"
	res := e.Decide(context.Background(), r)
	if res.Outcome == Invalid || res.Decision.Rule != "unknown-operations-seen" || res.Recognized.Operation.Method != "" {
		t.Fatalf("outcome %s by %q (%+v), want the policy's rule for unknown storage operations", res.Outcome, res.Decision.Rule, res.Refusal)
	}
	res = e.Decide(context.Background(), req("GET", "example.com", "/", "good"))
	if res.Outcome != Allowed || res.Decision.Policy != "deny-list" {
		t.Fatalf("non-Google host with default allow: %s %+v", res.Outcome, res.Refusal)
	}
	// What is ambiguous stays refused whatever the setting.
	res = e.Decide(context.Background(), req("GET", "secretmanager.googleapis.com", "/v1/projects/p/secrets/s/versions/1:access?alt=proto", "good"))
	if res.Outcome != Invalid || !strings.Contains(res.Refusal.Message, "alt=json") {
		t.Fatalf("alt=proto: %s %+v", res.Outcome, res.Refusal)
	}
	if _, err := New(Options{Verifier: fakeVerifier{}, Recognizer: gcp.NewRecognizer(gcp.DefaultCatalog(), nil), Policies: e.Policies(), Unrecognised: "allow"}); err == nil ||
		!strings.Contains(err.Error(), "refuse or policy") {
		t.Fatalf("an unknown setting was accepted: %v", err)
	}
}

// TestPolicyTestsMeanWhatTheGatewayDoes: `airlock policy test` refuses
// before policy exactly what the gateway refuses, and `expect: invalid`
// expects it.
func TestPolicyTestsMeanWhatTheGatewayDoes(t *testing.T) {
	dir := t.TempDir()
	policy := denyListPolicy + `tests:
  - name: gRPC is refused before policy
    request: {method: POST, url: "https://storage.googleapis.com/google.storage.v2.Storage/DeleteObject", headers: {content-type: application/grpc}}
    expect: invalid
  - name: an unknown method is refused before policy
    request: {method: DELETE, url: "https://storage.googleapis.com/storage/v2/b/a/o/x"}
    expect: invalid
  - name: an ambiguous path is refused before policy
    request: {method: DELETE, url: "https://storage.googleapis.com/storage/v1/b/a/o/x/../y"}
    expect: invalid
  - name: a known delete is denied
    request: {method: DELETE, url: "https://content-storage.googleapis.com/storage/v1/b/a/o/x"}
    expect: deny
    rule: no-object-delete
  - name: this one wrongly expects the policy to decide
    request: {method: DELETE, url: "https://storage.googleapis.com/storage/v2/b/a/o/x"}
    expect: approve
  - name: this one wrongly expects a refusal
    request: {method: GET, url: "https://storage.googleapis.com/storage/v1/b/a/o"}
    expect: invalid
`
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := policies.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec := gcp.NewRecognizer(gcp.DefaultCatalog(), nil)
	results := set.RunTests(context.Background(), TestInputBuilder(rec))
	if len(results) != 6 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results[:4] {
		if !r.Passed {
			t.Errorf("%s: %s", r.Case.Name, r.Failure())
		}
	}
	if r := results[4]; r.Passed || !strings.Contains(r.Failure(), "expected approve, but the gateway refuses the request before policy: airlock knows storage v1") {
		t.Errorf("%s: passed=%v %q", r.Case.Name, r.Passed, r.Failure())
	}
	if r := results[5]; r.Passed || !strings.Contains(r.Failure(), "expected a refusal before policy (invalid), got allow") {
		t.Errorf("%s: passed=%v %q", r.Case.Name, r.Passed, r.Failure())
	}
	for _, r := range results {
		if r.Refused != nil && !errors.Is(r.Refused, policies.ErrRefusedBeforePolicy) {
			t.Errorf("%s: refusal %v does not wrap ErrRefusedBeforePolicy", r.Case.Name, r.Refused)
		}
	}

	// With authz.unrecognised: policy, the policy decides unknown
	// operations, and the tests say so.
	results = set.RunTests(context.Background(), TestInputBuilderFor(rec, UnrecognisedToPolicy))
	if r := results[4]; !r.Passed {
		t.Errorf("policy mode: %s: %s", r.Case.Name, r.Failure())
	}
	if r := results[0]; r.Passed {
		t.Errorf("policy mode: %s passed", r.Case.Name)
	}
	if r := results[2]; !r.Passed {
		t.Errorf("policy mode: an ambiguous path is still refused: %s", r.Failure())
	}
}

// TestPolicyTestOfABatch: a test gives one input, but the gateway decides
// a batch part by part, so a batch in a policy test is an error that says
// so, never the batch decided as one unknown operation.
func TestPolicyTestOfABatch(t *testing.T) {
	build := TestInputBuilder(gcp.NewRecognizer(gcp.DefaultCatalog(), nil))
	_, err := build(context.Background(), policies.TestCase{Method: "POST", URL: "https://storage.googleapis.com/batch/storage/v1",
		Headers: map[string]string{"Content-Type": "multipart/mixed; boundary=b"},
		Body:    "--b\r\nContent-Type: application/http\r\n\r\nDELETE /storage/v1/b/a/o/x HTTP/1.1\r\n\r\n\r\n--b--\r\n"})
	if err == nil || errors.Is(err, policies.ErrRefusedBeforePolicy) || !strings.Contains(err.Error(), "one test per part") {
		t.Fatalf("err = %v", err)
	}
}
