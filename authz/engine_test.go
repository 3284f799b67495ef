package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/masking"
)

// fakeVerifier accepts the tokens it knows.
type fakeVerifier map[string]identity.Identity

func (f fakeVerifier) Verify(_ context.Context, raw string) (identity.Identity, error) {
	if id, ok := f[raw]; ok {
		return id, nil
	}
	return identity.Identity{}, &identity.Error{Kind: identity.BadSignature, Msg: "the token's signature does not verify"}
}

// fakeApprovals answers a fixed outcome and records what it was asked.
type fakeApprovals struct {
	out   approvals.Outcome
	err   error
	asked []approvals.Request
}

func (f *fakeApprovals) Gate(_ context.Context, r approvals.Request, _ time.Duration) (approvals.Outcome, error) {
	f.asked = append(f.asked, r)
	return f.out, f.err
}

func (f *fakeApprovals) Release(context.Context, approvals.Outcome) error { return nil }

func (f *fakeApprovals) ApproveURL(id string) string {
	return "https://airlock.example/approvals/" + id
}

type fakeRecorder struct {
	err  error
	seen []handoff.Decision
}

func (f *fakeRecorder) RecordDecision(_ context.Context, d handoff.Decision) error {
	f.seen = append(f.seen, d)
	return f.err
}

const testPolicy = `name: test
default: deny
rules:
  - name: no-delete
    when: gcp.method == "compute.instances.delete"
    action: deny
    message: Deleting instances is not allowed for agents.
  - name: prod-writes
    when: '!gcp.readonly && gcp.project == "acme-prod"'
    action: approve
    approvers: [group:sre]
    ttl: 10m
  - name: reads
    when: gcp.readonly
    action: allow
masking:
  - name: secrets
    when: gcp.service == "secretmanager"
    fields: [payload.data]
`

func newTestEngine(t *testing.T, opts Options) *Engine {
	t.Helper()
	set := loadPolicy(t, testPolicy)
	opts.Policies = set
	if opts.Verifier == nil {
		opts.Verifier = fakeVerifier{"good": {Subject: "agent-1", Email: "agent@example.com", Groups: []string{"ai-agents"}, Actor: "claude"}}
	}
	opts.Recognizer = gcp.NewRecognizer(gcp.DefaultCatalog(), nil)
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second // not about the deadline: room for -race on a loaded machine
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func req(method, host, path, token string) Request {
	h := map[string]string{":method": method, ":authority": host, ":path": path}
	if token != "" {
		h["authorization"] = "Bearer " + token
	}
	return Request{ID: "rid", Method: method, Host: host, Path: path, Headers: h}
}

func TestDecide(t *testing.T) {
	granted := &fakeApprovals{out: approvals.Outcome{Granted: true, Approval: approvals.Approval{ID: "a1", State: approvals.StateApproved}}}
	pending := &fakeApprovals{out: approvals.Outcome{Approval: approvals.Approval{ID: "a2", State: approvals.StatePending,
		Request: approvals.Request{Approvers: []string{"group:sre"}, MinApprovals: 1}, ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	deniedA := &fakeApprovals{out: approvals.Outcome{Approval: approvals.Approval{ID: "a3", State: approvals.StateDenied,
		Votes: []approvals.Vote{{Approver: "bob", Email: "bob@example.com", Reason: "not during the freeze"}}}}}
	down := &fakeApprovals{err: errors.New("approvals: redis: connection refused")}
	invalid := &fakeApprovals{err: fmt.Errorf("approvals: gate: %w: no approvers", approvals.ErrInvalid)}

	const inst = "/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1"
	tests := []struct {
		name      string
		approvals Approvals
		req       Request
		outcome   Outcome
		status    int
		contains  []string
	}{
		{"read allowed", nil, req("GET", "compute.googleapis.com", "/compute/v1/projects/acme-dev/zones/us-east1-b/instances", "good"), Allowed, 0, nil},
		{"delete denied by rule", nil, req("DELETE", "compute.googleapis.com", inst, "good"), PolicyDenied, 403,
			[]string{"airlock: denied by rule no-delete: Deleting instances is not allowed for agents."}},
		{"unknown write denied by default", nil, req("POST", "compute.googleapis.com", "/compute/v1/projects/acme-dev/zones/us-east1-b/instances", "good"), PolicyDenied, 403,
			[]string{"default of policy test"}},
		{"no token", nil, req("GET", "compute.googleapis.com", "/", ""), Unauthenticated, 401, []string{"unauthenticated", "Authorization: Bearer"}},
		{"bad token", nil, req("GET", "compute.googleapis.com", "/", "forged"), Unauthenticated, 401, []string{"signature does not verify"}},
		{"ambiguous path", nil, req("GET", "compute.googleapis.com", "/compute/v1/projects/p/../q/zones/z/instances", "good"), Invalid, 400, []string{"refused before policy"}},
		{"approval granted", granted, req("POST", "compute.googleapis.com", inst+"/stop", "good"), Allowed, 0, nil},
		{"approval pending", pending, req("POST", "compute.googleapis.com", inst+"/stop", "good"), ApprovalRequired, 403,
			[]string{"approval required by rule prod-writes", "a2", "https://airlock.example/approvals/a2", "retry the identical request", "group:sre", "2030-01-01T00:00:00Z"}},
		{"approval denied", deniedA, req("POST", "compute.googleapis.com", inst+"/stop", "good"), ApprovalDenied, 403,
			[]string{"approval a3 was denied by bob@example.com: not during the freeze", "Do not retry"}},
		{"approval store down", down, req("POST", "compute.googleapis.com", inst+"/stop", "good"), Unavailable, 503, []string{"approval store cannot be reached"}},
		{"approval rule unusable", invalid, req("POST", "compute.googleapis.com", inst+"/stop", "good"), PolicyDenied, 403, []string{"approval rule cannot be applied", "no approvers"}},
		{"approvals not configured", nil, req("POST", "compute.googleapis.com", inst+"/stop", "good"), Unavailable, 503, []string{"approvals are not configured"}},
		{"bad session header", nil, func() Request {
			r := req("GET", "compute.googleapis.com", "/compute/v1/projects/acme-dev/zones/us-east1-b/instances", "good")
			r.Headers[handoff.SessionHeader] = "a/b"
			return r
		}(), Invalid, 400, []string{"x-airlock-session"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEngine(t, Options{Approvals: tt.approvals})
			res := e.Decide(context.Background(), tt.req)
			if res.Outcome != tt.outcome {
				t.Fatalf("outcome %s, want %s (%+v)", res.Outcome, tt.outcome, res.Refusal)
			}
			if tt.outcome == Allowed {
				if res.Refusal != nil {
					t.Fatalf("allowed with a refusal: %+v", res.Refusal)
				}
				return
			}
			if res.Refusal.HTTPStatus != tt.status {
				t.Fatalf("status %d, want %d", res.Refusal.HTTPStatus, tt.status)
			}
			body := string(res.Refusal.Body())
			for _, c := range tt.contains {
				if !strings.Contains(res.Refusal.Message, c) {
					t.Errorf("message %q lacks %q", res.Refusal.Message, c)
				}
			}
			if res.Refusal.Metadata["request_id"] != "rid" || !strings.Contains(body, `"request_id":"rid"`) {
				t.Errorf("request id missing: %s", body)
			}
		})
	}
}

func TestApprovalRequestCarriesTheFingerprintedRequest(t *testing.T) {
	f := &fakeApprovals{out: approvals.Outcome{Approval: approvals.Approval{ID: "x", State: approvals.StatePending}}}
	e := newTestEngine(t, Options{Approvals: f, Hold: time.Second})
	r := req("POST", "compute.googleapis.com", "/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/setMetadata?requestId=1", "good")
	r.Body = []byte(`{"items":[]}`)
	e.Decide(context.Background(), r)
	r.Body = []byte(`{"items":[{"key":"a"}]}`)
	e.Decide(context.Background(), r)
	if len(f.asked) != 2 {
		t.Fatalf("gate asked %d times", len(f.asked))
	}
	a, b := f.asked[0], f.asked[1]
	if a.Fingerprint == b.Fingerprint {
		t.Errorf("different bodies share a fingerprint")
	}
	if a.Subject != "agent-1" || a.Actor != "claude" || a.Operation != "compute.instances.setMetadata" || a.Rule != "prod-writes" ||
		a.TTL != 10*time.Minute || a.Approvers[0] != "group:sre" || a.Resource == "" || !strings.HasPrefix(a.URL, "https://compute.googleapis.com/") {
		t.Errorf("approval request = %+v", a)
	}
}

func TestRecorderFailureFailsClosed(t *testing.T) {
	rec := &fakeRecorder{err: errors.New("spool full")}
	e := newTestEngine(t, Options{Recorder: rec})
	res := e.Decide(context.Background(), req("GET", "compute.googleapis.com", "/compute/v1/projects/acme-dev/zones/us-east1-b/instances", "good"))
	if res.Outcome != Unavailable || res.Refusal.HTTPStatus != 503 {
		t.Fatalf("an unrecordable request was not refused: %s", res.Outcome)
	}
	if len(rec.seen) != 1 || rec.seen[0].Outcome != Allowed.String() {
		t.Fatalf("recorder saw %v", rec.seen)
	}
}

func TestMetadataOfAllowedRequest(t *testing.T) {
	e := newTestEngine(t, Options{})
	r := req("GET", "secretmanager.googleapis.com", "/v1/projects/acme-dev/secrets/db/versions/3", "good")
	res := e.Decide(context.Background(), r)
	if res.Outcome != Allowed {
		t.Fatalf("refused: %+v", res.Refusal)
	}
	m := res.Metadata()
	if m.Subject != "agent-1" || m.Actor != "claude" || m.GCPMethod != "secretmanager.projects.secrets.versions.get" {
		t.Fatalf("metadata %+v", m)
	}
	if len(m.Masking) != 1 || m.Masking[0].Fields[0] != "payload.data" {
		t.Fatalf("masking not selected: %+v", m.Masking)
	}
	back := handoff.MetadataFromMap(m.ToMap())
	if back.Subject != m.Subject || len(back.Masking) != 1 {
		t.Fatalf("round trip lost data: %+v", back)
	}
}

func TestValidSessionName(t *testing.T) {
	for s, want := range map[string]bool{"a": true, "sess-1.2_3": true, "": false, "a/b": false, "../x": false, "..": false, ".a": false, "-a": false, strings.Repeat("a", 65): false, "é": false} {
		if handoff.ValidSessionName(s) != want {
			t.Errorf("ValidSessionName(%q) = %v", s, !want)
		}
	}
}

// TestRequestIDNeverCarriesASecret: the agent's x-request-id names the
// decision only when it is a UUID, or a short plain ID the masker leaves
// alone; a key, an odd value or a long one gives way to a new ID, which
// is what logs, the recording and the refusal then carry.
func TestRequestIDNeverCarriesASecret(t *testing.T) {
	const key = "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"
	masked := 0
	e := newTestEngine(t, Options{MaskBody: func(b []byte, _ []masking.Rule) []byte {
		masked++
		return []byte(strings.ReplaceAll(string(b), key, "[MASKED:gcp_api_key]"))
	}})
	for id, kept := range map[string]bool{
		"4c7e1f0a-0001-4b8e-9d6f-00000000000a": true,
		"req-1.a_b:c":                          true,
		key:                                    false,
		"x-" + key:                             false,
		"a b":                                  false,
		"a\"b":                                 false,
		"é":                                    false,
		strings.Repeat("a", 129):               false,
		"":                                     false,
	} {
		masked = 0
		r := req("GET", "compute.googleapis.com", "/compute/v1/projects/acme-prod/zones/us-east1-b/instances", "bad-token")
		r.ID = id
		res := e.Decide(context.Background(), r)
		if got := res.RequestID == id; got != kept {
			t.Errorf("x-request-id %.40q: kept %v, want %v", id, got, kept)
		}
		if res.RequestID == "" || strings.Contains(res.RequestID, key) || strings.Contains(res.Metadata().RequestID, key) {
			t.Errorf("x-request-id %.40q: request ID %q", id, res.RequestID)
		}
		if handoff.IsUUID(id) && masked != 0 {
			t.Errorf("a UUID went through the masker %d times", masked)
		}
	}
}

// A held request's body is masked once: the recording takes the body the
// approver's excerpt was cut from.
func TestHeldBodyMaskedOnce(t *testing.T) {
	f := &fakeApprovals{out: approvals.Outcome{Approval: approvals.Approval{ID: "x", State: approvals.StatePending}}}
	rec := &fakeRecorder{}
	calls := 0
	e := newTestEngine(t, Options{Approvals: f, Recorder: rec, MaskBody: func(b []byte, _ []masking.Rule) []byte {
		if string(b) != "rid" { // the request ID is checked on its own
			calls++
		}
		return []byte(strings.ReplaceAll(string(b), "hunter2", "[MASKED:password]"))
	}})
	r := req("POST", "compute.googleapis.com", "/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/setMetadata", "good")
	r.Body = []byte(`{"items":[{"key":"db-password","value":"hunter2"}]}`)
	res := e.Decide(context.Background(), r)
	if res.Outcome != ApprovalRequired {
		t.Fatalf("outcome %v", res.Outcome)
	}
	// The approver's excerpt and the recorded body come from one masking.
	if len(rec.seen) != 1 || string(rec.seen[0].Body) != `{"items":[{"key":"db-password","value":"[MASKED:password]"}]}` || calls != 1 {
		t.Fatalf("recorded %+v after %d maskings", rec.seen, calls)
	}
	if rec.seen[0].BodyBytes != int64(len(r.Body)) {
		t.Fatalf("recorded body size %d, want %d", rec.seen[0].BodyBytes, len(r.Body))
	}
}

func TestApprovalBodyExcerptIsMaskedFirst(t *testing.T) {
	f := &fakeApprovals{out: approvals.Outcome{Approval: approvals.Approval{ID: "x", State: approvals.StatePending}}}
	e := newTestEngine(t, Options{Approvals: f, MaskBody: func(b []byte, _ []masking.Rule) []byte {
		return []byte(strings.ReplaceAll(string(b), "hunter2", "[MASKED:password]"))
	}})
	r := req("POST", "compute.googleapis.com", "/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/setMetadata", "good")
	r.Body = []byte(`{"items":[{"key":"db-password","value":"hunter2"}]}` + strings.Repeat(" ", 2*approvals.MaxBodyLen))
	e.Decide(context.Background(), r)
	got := f.asked[0].BodyExcerpt
	if strings.Contains(got, "hunter2") || !strings.Contains(got, "[MASKED:password]") || len(got) > approvals.MaxBodyLen {
		t.Fatalf("excerpt %q", got)
	}
	if msg := f.asked[0].Message; msg == "" {
		t.Fatal("the approval does not carry the rule's message")
	}

	// Without a masker the approver sees the size, never the bytes.
	f2 := &fakeApprovals{out: f.out}
	e2 := newTestEngine(t, Options{Approvals: f2})
	e2.Decide(context.Background(), r)
	if got := f2.asked[0].BodyExcerpt; strings.Contains(got, "hunter2") || !strings.Contains(got, "not shown") {
		t.Fatalf("unmasked excerpt without a masker: %q", got)
	}
}

// TestApprovalURLIsMasked: a key in the query (?key=) reaches neither the
// approvers nor the webhook; without a masker the query is not shown.
func TestApprovalURLIsMasked(t *testing.T) {
	f := &fakeApprovals{out: approvals.Outcome{Approval: approvals.Approval{ID: "x", State: approvals.StatePending}}}
	e := newTestEngine(t, Options{Approvals: f, MaskBody: func(b []byte, _ []masking.Rule) []byte {
		return []byte(strings.ReplaceAll(string(b), "hunter2", "[MASKED:api_key]"))
	}})
	r := req("POST", "compute.googleapis.com", "/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/stop?key=hunter2&requestId=7", "good")
	e.Decide(context.Background(), r)
	if len(f.asked) != 1 {
		t.Fatalf("approvals asked %d times", len(f.asked))
	}
	if got := f.asked[0].URL; strings.Contains(got, "hunter2") || !strings.Contains(got, "key=[MASKED:api_key]&requestId=7") {
		t.Fatalf("approval URL %q", got)
	}
	f2 := &fakeApprovals{out: f.out}
	e2 := newTestEngine(t, Options{Approvals: f2})
	e2.Decide(context.Background(), r)
	if got := f2.asked[0].URL; strings.Contains(got, "hunter2") || !strings.HasSuffix(got, "/stop?(query not shown)") {
		t.Fatalf("approval URL without a masker %q", got)
	}
}

func TestPolicyHeadersDropCredentials(t *testing.T) {
	in := map[string]string{
		":path": "/x", "authorization": "Bearer t", "x-goog-api-key": "AIza", "cookie": "a=b",
		"x-amz-security-token": "t", "x-custom-token": "t", "x-forwarded": "Bearer abc",
		"user-agent": "gcloud", "x-goog-user-project": "acme-dev",
	}
	got := policyHeaders(in)
	if len(got) != 2 || got["user-agent"] != "gcloud" || got["x-goog-user-project"] != "acme-dev" {
		t.Fatalf("policy headers = %v", got)
	}
}

// Headers reach policies that read request.headers (credentials left
// out); a set that does not read them is not handed them, and a reload
// to one that does sees them on the next request.
func TestPoliciesReadHeadersOnlyWhenTheyUseThem(t *testing.T) {
	e := newTestEngine(t, Options{})
	r := req("GET", "compute.googleapis.com", "/compute/v1/projects/acme-dev/zones/us-east1-b/instances", "good")
	r.Headers["x-goog-user-project"] = "acme-billing"
	if res := e.Decide(context.Background(), r); res.Outcome != Allowed {
		t.Fatalf("without a header rule: %v", res.Outcome)
	}
	e.SetPolicies(loadPolicy(t, `name: headers
default: allow
rules:
  - name: no-billing-override
    when: request.headers[?"x-goog-user-project"].orValue("") == "acme-billing" && !("authorization" in request.headers)
    action: deny
    message: No billing project overrides.
`))
	if res := e.Decide(context.Background(), r); res.Outcome != PolicyDenied || res.Decision.Rule != "no-billing-override" {
		t.Fatalf("a rule on request.headers did not see the header: %v %+v", res.Outcome, res.Decision)
	}
}
