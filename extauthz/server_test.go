package extauthz

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/identity/identitytest"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/policies/policiestest"
	"github.com/airlockhq/airlock/resources"
	"github.com/airlockhq/airlock/resources/resourcestest"
)

// recordingDecider captures the translated request and answers a fixed result.
type recordingDecider struct {
	got    authz.Request
	result *authz.Result
}

func (d *recordingDecider) Decide(_ context.Context, r authz.Request) *authz.Result {
	d.got = r
	return d.result
}

func checkRequest(h *authv3.AttributeContext_HttpRequest) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}}
}

func TestRequestTranslation(t *testing.T) {
	allowed := &authz.Result{Outcome: authz.Allowed, RequestID: "r1"}
	tests := []struct {
		name string
		in   *authv3.AttributeContext_HttpRequest
		want authz.Request
	}{
		{
			name: "headers map and raw body",
			in: &authv3.AttributeContext_HttpRequest{
				Method: "POST", Host: "compute.googleapis.com", Path: "/compute/v1/x?a=b",
				Headers: map[string]string{":method": "POST", "Authorization": "Bearer t", "x-request-id": "rid", "x-envoy-auth-partial-body": "false"},
				RawBody: []byte(`{"a":1}`),
			},
			want: authz.Request{ID: "rid", Method: "POST", Host: "compute.googleapis.com", Path: "/compute/v1/x?a=b", Body: []byte(`{"a":1}`)},
		},
		{
			name: "header_map with duplicates and body string, partial",
			in: &authv3.AttributeContext_HttpRequest{
				HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
					{Key: ":method", RawValue: []byte("DELETE")},
					{Key: ":authority", RawValue: []byte("storage.googleapis.com")},
					{Key: ":path", RawValue: []byte("/b/o")},
					{Key: "x-dup", RawValue: []byte("1")},
					{Key: "x-dup", RawValue: []byte("2")},
					{Key: "x-envoy-auth-partial-body", RawValue: []byte("true")},
				}},
				Body: "partial",
			},
			want: authz.Request{Method: "DELETE", Host: "storage.googleapis.com", Path: "/b/o", Body: []byte("partial"), BodyPartial: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &recordingDecider{result: allowed}
			if _, err := New(d).Check(context.Background(), checkRequest(tt.in)); err != nil {
				t.Fatal(err)
			}
			g := d.got
			if g.ID != tt.want.ID || g.Method != tt.want.Method || g.Host != tt.want.Host || g.Path != tt.want.Path ||
				string(g.Body) != string(tt.want.Body) || g.BodyPartial != tt.want.BodyPartial {
				t.Fatalf("got %+v\nwant %+v", g, tt.want)
			}
			if g.Headers["authorization"] == "" && tt.in.Headers != nil {
				t.Errorf("header names were not lower-cased: %v", g.Headers)
			}
			if tt.in.HeaderMap != nil && g.Headers["x-dup"] != "1,2" {
				t.Errorf("duplicates not joined: %q", g.Headers["x-dup"])
			}
		})
	}
}

// The peer address Envoy saw reaches the decision (the recorder limits
// unauthenticated requests per source).
func TestSourceAddress(t *testing.T) {
	d := &recordingDecider{result: &authz.Result{Outcome: authz.Allowed}}
	req := checkRequest(&authv3.AttributeContext_HttpRequest{Method: "GET", Host: "compute.googleapis.com", Path: "/"})
	req.Attributes.Source = &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
		SocketAddress: &corev3.SocketAddress{Address: "203.0.113.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 53211}}}}}
	if _, err := New(d).Check(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if d.got.Source != "203.0.113.7" {
		t.Fatalf("Source = %q, want the peer address", d.got.Source)
	}
}

func TestResponseMapping(t *testing.T) {
	base := func(o authz.Outcome, status int, reason string) *authz.Result {
		f := authz.NewRefusal(o, "airlock: because", map[string]string{"request_id": "req-9"})
		f.Headers = map[string]string{"www-authenticate": "Bearer"}
		if f.HTTPStatus != status || f.Reason != reason {
			panic(fmt.Sprintf("%v: the table says %d %s", o, f.HTTPStatus, f.Reason))
		}
		return &authz.Result{Outcome: o, RequestID: "req-9", Refusal: f}
	}
	tests := []struct {
		res    *authz.Result
		code   codes.Code
		status int
	}{
		{base(authz.PolicyDenied, 403, authz.ReasonPolicyDenied), codes.PermissionDenied, 403},
		{base(authz.Unauthenticated, 401, authz.ReasonUnauthenticated), codes.Unauthenticated, 401},
		{base(authz.Unavailable, 503, authz.ReasonUnavailable), codes.Unavailable, 503},
		{base(authz.Invalid, 400, authz.ReasonInvalidRequest), codes.InvalidArgument, 400},
	}
	for _, tt := range tests {
		resp := response(tt.res)
		if codes.Code(resp.GetStatus().GetCode()) != tt.code {
			t.Errorf("%s: grpc code %v, want %v", tt.res.Refusal.Reason, resp.GetStatus().GetCode(), tt.code)
		}
		d := resp.GetDeniedResponse()
		if int(d.GetStatus().GetCode()) != tt.status {
			t.Errorf("%s: http %d, want %d", tt.res.Refusal.Reason, d.GetStatus().GetCode(), tt.status)
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil {
			t.Errorf("body not JSON: %v", err)
		}
		var sawCT, sawAuth bool
		for _, h := range d.GetHeaders() {
			if h.GetHeader().GetRawValue() != nil {
				t.Errorf("ext_authz headers must use value, not raw_value")
			}
			sawCT = sawCT || (h.GetHeader().GetKey() == "content-type" && strings.HasPrefix(h.GetHeader().GetValue(), "application/json"))
			sawAuth = sawAuth || h.GetHeader().GetKey() == "www-authenticate"
		}
		if !sawCT || !sawAuth {
			t.Errorf("%s: missing headers: %v", tt.res.Refusal.Reason, d.GetHeaders())
		}
	}

	ok := response(&authz.Result{Outcome: authz.Allowed, RequestID: "r", SessionID: "s",
		Decision: policies.Decision{Masking: []masking.Rule{{Policy: "p", Name: "m", Fields: []string{"payload.data"}, Detectors: []string{"private_key"}}}}})
	if ok.GetStatus().GetCode() != 0 {
		t.Fatalf("allowed answered %v", ok.GetStatus())
	}
	okr := ok.GetOkResponse()
	if len(okr.GetHeadersToRemove()) == 0 || okr.GetHeadersToRemove()[0] != "authorization" {
		t.Errorf("the agent's authorization header is not removed: %v", okr.GetHeadersToRemove())
	}
	md := handoff.MetadataFromMap(ok.GetDynamicMetadata().AsMap())
	if md.RequestID != "r" || md.SessionID != "s" || len(md.Masking) != 1 || md.Masking[0].Fields[0] != "payload.data" {
		t.Errorf("metadata did not survive the Struct round trip: %+v", md)
	}
}

// benchEngine builds the real pipeline with a 50-rule policy and a real
// OIDC verifier whose cache holds the token.
func benchEngine(b *testing.B) (*Server, *authv3.CheckRequest) {
	return benchEngineWith(b, "", nil)
}

// benchServer is the ext_authz server over the 50-rule policy
// (extraRules first), trusting a fresh issuer, with opts added to the
// engine's options; and a token of an agent that policy lets read.
func benchServer(b *testing.B, extraRules string, opts authz.Options) (*Server, string) {
	b.Helper()
	iss := identitytest.NewIssuer(b)
	dir := b.TempDir()
	policy := strings.ReplaceAll(policiestest.BenchmarkPolicy50(), `startsWith("https://")`, `startsWith("http")`)
	policy = strings.Replace(policy, "rules:\n", "rules:\n"+extraRules, 1)
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(policy), 0o644); err != nil {
		b.Fatal(err)
	}
	set, err := policies.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	v, err := identity.NewOIDCVerifier(context.Background(), []identity.IssuerConfig{iss.Config("airlock", "groups")}, identity.Options{})
	if err != nil {
		b.Fatal(err)
	}
	opts.Verifier, opts.Policies = v, set
	if opts.Recognizer == nil {
		opts.Recognizer = gcp.NewRecognizer(gcp.DefaultCatalog(), nil)
	}
	e, err := authz.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return New(e), iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})
}

// benchEngineWith adds extra rules to the 50-rule policy and resource
// lookups to the engine.
func benchEngineWith(b *testing.B, extraRules string, lookups resources.Backend) (*Server, *authv3.CheckRequest) {
	b.Helper()
	s, tok := benchServer(b, extraRules, authz.Options{Resources: lookups})
	req := checkRequest(&authv3.AttributeContext_HttpRequest{
		Id: "1", Method: "GET", Host: "compute.googleapis.com", Scheme: "https", Protocol: "HTTP/2",
		Path: "/compute/v1/projects/acme-dev/zones/us-east1-b/instances?maxResults=50",
		Headers: map[string]string{
			":method": "GET", ":authority": "compute.googleapis.com", ":scheme": "https",
			":path":         "/compute/v1/projects/acme-dev/zones/us-east1-b/instances?maxResults=50",
			"authorization": "Bearer " + tok, "user-agent": "google-cloud-sdk gcloud/500.0.0",
			"accept": "application/json", "x-request-id": "c0ffee",
		},
	})
	resp, _ := s.Check(context.Background(), req)
	if resp.GetStatus().GetCode() != 0 {
		b.Fatalf("bench request refused: %s", resp.GetDeniedResponse().GetBody())
	}
	return s, req
}

// BenchmarkCheck is CheckRequest -> CheckResponse in process, 50-rule
// policy, cached verified token.
func BenchmarkCheck(b *testing.B) {
	s, req := benchEngine(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Check(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// benchLookups is a fake Google holding one project under an organization,
// and resource lookups against it.
func benchLookups(b *testing.B) (*resourcestest.Fake, resources.Backend) {
	f := resourcestest.New(b)
	f.AddNode("organizations/100", resourcestest.Node{DisplayName: "acme.com"})
	f.AddProject(resourcestest.Project{ID: "acme-dev", Number: "111111111111", Parent: "organizations/100", Labels: map[string]string{"env": "dev"}})
	lookups, err := resources.New(resources.Options{Client: http.DefaultClient, Endpoints: f.Endpoints()})
	if err != nil {
		b.Fatal(err)
	}
	return f, lookups
}

// resourceRule denies reads of frozen projects: a rule that reads the
// project's labels and ancestry on every read.
const resourceRule = "  - name: frozen-projects\n    when: 'gcp.readonly && (resource.project.labels.?env.orValue(\"\") == \"frozen\" || \"folders/999\" in resource.project.ancestors)'\n    action: deny\n"

// BenchmarkCheckResources measures what a rule reading resource.* adds to
// Check with a warm cache: the same 50-rule policy and request, with and
// without a deny rule on the project's labels and ancestry (evaluated for
// every read), in one run.
func BenchmarkCheckResources(b *testing.B) {
	f, lookups := benchLookups(b)
	for _, c := range []struct {
		name    string
		rules   string
		lookups resources.Backend
	}{{"without", "", nil}, {"with-resource-rule", resourceRule, lookups}} {
		b.Run(c.name, func(b *testing.B) {
			s, req := benchEngineWith(b, c.rules, c.lookups)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	if f.Hits("project") != 1 || f.Hits("organization") != 1 {
		b.Fatalf("the warm cache called Google: %d project, %d organization lookups", f.Hits("project"), f.Hits("organization"))
	}
}

func BenchmarkCheckParallel(b *testing.B) {
	s, req := benchEngine(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Check(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAllowedResponse is the CheckResponse of an allowed request with
// two masking rules selected, built and marshalled as gRPC sends it.
func BenchmarkAllowedResponse(b *testing.B) {
	r := &authz.Result{Outcome: authz.Allowed, RequestID: "0f6a820c-c7c6-4d6c-acf9-55e9f1f32553", SessionID: "s-20261129T000801Z-eac6c73e18a5",
		Decision: policies.Decision{Policy: "gcp-baseline", Rule: "agents-may-read", Matches: []policies.Match{{Policy: "gcp-baseline", Rule: "agents-may-read"}},
			Masking: []masking.Rule{
				{Policy: "gcp-baseline", Name: "instance-startup-scripts", Fields: []string{`**.metadata.items[?key=="startup-script"].value`}, Detectors: []string{"private_key", "gcp_api_key"}},
				{Policy: "gcp-baseline", Name: "internal-tokens", Detectors: []string{"acme_internal_token"}},
			}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := proto.Marshal(response(r)); err != nil {
			b.Fatal(err)
		}
	}
}
