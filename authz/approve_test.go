package authz

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/policies"
)

// approvalPolicy sends every write to a human; compute writes get a window
// grant, so one approval can be tried with many variations.
const approvalPolicy = `name: prod
default: allow
rules:
  - name: storage-writes
    when: gcp.service == "storage" && !gcp.readonly
    action: approve
    approvers: [group:sre]
    ttl: 10m
  - name: compute-writes
    when: gcp.service == "compute" && !gcp.readonly
    action: approve
    approvers: [group:sre]
    grant: window
    ttl: 10m
`

var (
	agentID = identity.Identity{Issuer: "https://issuer.example", Subject: "agent-1", Email: "agent@example.com", Groups: []string{"ai-agents"}}
	sreID   = identity.Identity{Issuer: "https://issuer.example", Subject: "sre-1", Email: "sre@example.com", EmailVerified: true, Groups: []string{"sre"}}
)

func loadPolicy(t *testing.T, text string) *policies.Set {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := policies.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// approvalEngine is an engine with the real recognizer, the given policy
// and a real approvals service over the memory store.
func approvalEngine(t *testing.T, policy string, opts approvals.Options, eo Options) (*Engine, *approvals.Service) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	svc := approvals.NewService(approvals.NewMemoryStore(), opts)
	t.Cleanup(func() { _ = svc.Close() })
	eo.Policies = loadPolicy(t, policy)
	if eo.Verifier == nil {
		eo.Verifier = fakeVerifier{"agent": agentID, "agent-other-issuer": func() identity.Identity {
			id := agentID
			id.Issuer = "https://other.example"
			return id
		}()}
	}
	eo.Recognizer = gcp.NewRecognizer(gcp.DefaultCatalog(), nil)
	eo.Approvals = svc
	if eo.Timeout == 0 {
		// These tests are not about the decision's deadline: give a slow,
		// loaded machine (the race detector) room.
		eo.Timeout = 30 * time.Second
	}
	e, err := New(eo)
	if err != nil {
		t.Fatal(err)
	}
	return e, svc
}

// send builds a request as Envoy presents it: pseudo-headers, the agent's
// token, content-length for a body, an x-request-id.
func send(method, url, body string, headers ...string) Request {
	host, path, _ := strings.Cut(strings.TrimPrefix(url, "https://"), "/")
	path = "/" + path
	h := map[string]string{":method": method, ":authority": host, ":path": path, ":scheme": "https",
		"authorization": "Bearer agent", "x-request-id": "rid-1", "x-forwarded-proto": "https"}
	if body != "" {
		h["content-length"] = strconv.Itoa(len(body))
	}
	for i := 0; i+1 < len(headers); i += 2 {
		h[strings.ToLower(headers[i])] = headers[i+1]
	}
	return Request{ID: h["x-request-id"], Method: method, Host: host, Path: path, Headers: h, Body: []byte(body)}
}

// pendingID asserts an APPROVAL_REQUIRED refusal and returns its approval id.
func pendingID(t *testing.T, res *Result) string {
	t.Helper()
	if res.Outcome != ApprovalRequired || res.Refusal == nil || res.Refusal.Reason != ReasonApprovalRequired {
		t.Fatalf("outcome %s, want approval_required (%+v)", res.Outcome, res.Refusal)
	}
	id := res.Refusal.Metadata["approval_id"]
	if id == "" {
		t.Fatalf("no approval id: %+v", res.Refusal)
	}
	return id
}

// approve asks for approval of r, approves it and returns its id.
func approve(t *testing.T, e *Engine, svc *approvals.Service, r Request) string {
	t.Helper()
	id := pendingID(t, e.Decide(context.Background(), r))
	if _, err := svc.Vote(context.Background(), id, sreID, true, "ok"); err != nil {
		t.Fatalf("vote: %v", err)
	}
	return id
}

func TestGrantDoesNotAdmitAnotherStorageWrite(t *testing.T) {
	const obj = "https://storage.googleapis.com/acme-data/reports/q3.csv"
	tests := []struct {
		name    string
		approve Request
		attempt Request
	}{
		{"copy instead of upload", send("PUT", obj, ""), send("PUT", obj, "", "x-goog-copy-source", "/acme-secrets/keys.json")},
		{"public acl added", send("PUT", obj, "a,b\n", "content-type", "text/csv"), send("PUT", obj, "a,b\n", "content-type", "text/csv", "x-goog-acl", "public-read")},
		{"copy from another source", send("PUT", obj, "", "x-goog-copy-source", "/acme-data/reports/q2.csv"), send("PUT", obj, "", "x-goog-copy-source", "/acme-secrets/keys.json")},
		{"another content type", send("PUT", obj, "a,b\n", "content-type", "text/csv"), send("PUT", obj, "a,b\n", "content-type", "text/html")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, svc := approvalEngine(t, approvalPolicy, approvals.Options{}, Options{})
			id := approve(t, e, svc, tc.approve)
			res := e.Decide(context.Background(), tc.attempt)
			if got := pendingID(t, res); got == id {
				t.Fatalf("the grant of %s admitted a different request", id)
			}
			// The approved request itself still passes.
			if res := e.Decide(context.Background(), tc.approve); res.Outcome != Allowed {
				t.Fatalf("the approved request was refused: %+v", res.Refusal)
			}
		})
	}
}

func TestCopySourceIsAnotherOperation(t *testing.T) {
	// The copy is its own operation and rule when the policy says so.
	const policy = `name: prod
default: allow
rules:
  - name: uploads
    when: gcp.method == "storage.objects.insert"
    action: approve
    approvers: [group:sre]
  - name: copies
    when: gcp.method == "storage.objects.copy"
    action: approve
    approvers: [group:sre]
`
	e, svc := approvalEngine(t, policy, approvals.Options{}, Options{})
	const obj = "https://storage.googleapis.com/acme-data/reports/q3.csv"
	approve(t, e, svc, send("PUT", obj, ""))
	res := e.Decide(context.Background(), send("PUT", obj, "", "x-goog-copy-source", "/acme-secrets/keys.json"))
	pendingID(t, res)
	if res.Refusal.Metadata["rule"] != "copies" {
		t.Fatalf("rule %q, want copies", res.Refusal.Metadata["rule"])
	}
}

// batchBody reads as one part with boundary A and as another with boundary B.
const batchBody = "--A\r\nContent-Type: application/http\r\n\r\nDELETE /storage/v1/b/acme-data/o/obj1 HTTP/1.1\r\n\r\n" +
	"--B\r\nContent-Type: application/http\r\n\r\nDELETE /storage/v1/b/acme-data/o/obj2 HTTP/1.1\r\n\r\n--A--\r\n--B--\r\n"

func TestBatchGrantBindsItsParts(t *testing.T) {
	e, svc := approvalEngine(t, approvalPolicy, approvals.Options{}, Options{})
	const url = "https://storage.googleapis.com/batch/storage/v1"
	a := send("POST", url, batchBody, "content-type", "multipart/mixed; boundary=A")
	b := send("POST", url, batchBody, "content-type", "multipart/mixed; boundary=B")
	rec := gcp.NewRecognizer(gcp.DefaultCatalog(), nil)
	ra, errA := rec.Recognize(gcp.Request{Method: a.Method, Host: a.Host, Path: a.Path, Headers: a.Headers, Body: a.Body})
	rb, errB := rec.Recognize(gcp.Request{Method: b.Method, Host: b.Host, Path: b.Path, Headers: b.Headers, Body: b.Body})
	if errA != nil || errB != nil || len(ra.Parts) != 1 || len(rb.Parts) != 1 || ra.Parts[0].Operation.Resource == rb.Parts[0].Operation.Resource {
		t.Fatalf("the two boundaries do not read as different parts: %+v %v / %+v %v", ra.Parts, errA, rb.Parts, errB)
	}
	id := approve(t, e, svc, a)
	if got := pendingID(t, e.Decide(context.Background(), b)); got == id {
		t.Fatal("a batch grant admitted the same bytes read with another boundary")
	}
	if res := e.Decide(context.Background(), a); res.Outcome != Allowed {
		t.Fatalf("the approved batch was refused: %+v", res.Refusal)
	}
}

func TestBatchBoundaryAloneDoesNotChangeTheGrant(t *testing.T) {
	e, svc := approvalEngine(t, approvalPolicy, approvals.Options{}, Options{})
	const url = "https://storage.googleapis.com/batch/storage/v1"
	part := "Content-Type: application/http\r\n\r\nDELETE /storage/v1/b/acme-data/o/obj1 HTTP/1.1\r\n\r\n"
	a := send("POST", url, "--x1\r\n"+part+"\r\n--x1--\r\n", "content-type", "multipart/mixed; boundary=x1")
	b := send("POST", url, "--y2\r\n"+part+"\r\n--y2--\r\n", "content-type", "multipart/mixed; boundary=y2")
	approve(t, e, svc, a)
	if res := e.Decide(context.Background(), b); res.Outcome != Allowed {
		t.Fatalf("the same parts under another boundary were refused: %+v", res.Refusal)
	}
}

func TestOnceGrantIgnoresTheAgentsRequestID(t *testing.T) {
	e, svc := approvalEngine(t, approvalPolicy, approvals.Options{}, Options{})
	r := send("DELETE", "https://storage.googleapis.com/acme-data/reports/q3.csv", "")
	id := approve(t, e, svc, r)
	if res := e.Decide(context.Background(), r); res.Outcome != Allowed {
		t.Fatalf("the approved request was refused: %+v", res.Refusal)
	}
	// The same x-request-id again: the grant is spent.
	for i := 0; i < 3; i++ {
		if got := pendingID(t, e.Decide(context.Background(), r)); got == id {
			t.Fatalf("replay %d reused the spent approval %s", i, id)
		}
	}
	a, err := svc.Get(context.Background(), id)
	if err != nil || a.Uses != 1 {
		t.Fatalf("approval after replays = uses %d, %v", a.Uses, err)
	}
}

func TestPolicyEditAsksAgain(t *testing.T) {
	e, svc := approvalEngine(t, approvalPolicy, approvals.Options{}, Options{})
	r := send("DELETE", "https://storage.googleapis.com/acme-data/reports/q3.csv", "")
	id := approve(t, e, svc, r)
	e.SetPolicies(loadPolicy(t, strings.Replace(approvalPolicy, "name: storage-writes", "name: storage-writes-v2", 1)))
	res := e.Decide(context.Background(), r)
	if got := pendingID(t, res); got == id {
		t.Fatal("a grant of rule storage-writes admitted a request rule storage-writes-v2 governs")
	}
	if res.Refusal.Metadata["rule"] != "storage-writes-v2" {
		t.Fatalf("rule %q", res.Refusal.Metadata["rule"])
	}
}

func TestGrantBindsMeaningNotBytes(t *testing.T) {
	e, svc := approvalEngine(t, approvalPolicy, approvals.Options{}, Options{})
	const url = "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/setMetadata?requestId=7&access_token=abc"
	approve(t, e, svc, send("POST", url, `{"fingerprint":"x1","items":[{"key":"a","value":"1"}]}`, "content-type", "application/json", "user-agent", "gcloud/1"))
	same := []Request{
		send("POST", url, "{ \"items\" : [ {\"value\":\"1\", \"key\":\"a\"} ],\n \"fingerprint\":\"x1\" }", "content-type", "application/json"),
		send("POST", strings.Replace(url, "&access_token=abc", "&access_token=zzz", 1), `{"items":[{"key":"a","value":"1"}],"fingerprint":"x1"}`, "content-type", "application/json",
			"x-request-id", "other", "traceparent", "00-abc-def-01", "user-agent", "curl/8", "x-goog-api-client", "gl-go/1", "accept-encoding", "gzip", "x-envoy-expected-rq-timeout-ms", "5000", "x-airlock-session", "s1", "x-b3-traceid", "1"),
		send("POST", url, `{"items":[{"key":"\u0061","value":"1"}],"fingerprint":"x1"}`, "content-type", "application/json"),
	}
	for i, r := range same {
		if res := e.Decide(context.Background(), r); res.Outcome != Allowed {
			t.Errorf("variant %d of the approved request was refused: %+v", i, res.Refusal)
		}
	}
	other := []Request{
		send("POST", url, `{"items":[{"key":"a","value":"1.0"}],"fingerprint":"x1"}`, "content-type", "application/json"),
		send("POST", url, `{"items":[{"key":"a","value":1}],"fingerprint":"x1"}`, "content-type", "application/json"),
		send("POST", url, `{"items":[{"value":"1","key":"a"},{"key":"b","value":"2"}],"fingerprint":"x1"}`, "content-type", "application/json"),
		send("POST", url, `{"items":[{"key":"a","value":"1"}],"fingerprint":"x1"}`, "content-type", "application/json", "x-goog-user-project", "acme-billing"),
		send("POST", url, `{"items":[{"key":"a","value":"1"}],"fingerprint":"x1"}`, "content-type", "application/json", "x-goog-some-future-header", "1"),
		send("POST", url+"&fields=id", `{"items":[{"key":"a","value":"1"}],"fingerprint":"x1"}`, "content-type", "application/json"),
		send("POST", url, `{"items":[{"key":"a","value":"1"}],"fingerprint":"x1"}`, "content-type", "text/plain"),
	}
	for i, r := range other {
		if res := e.Decide(context.Background(), r); res.Outcome != ApprovalRequired {
			t.Errorf("different request %d was not held: %s", i, res.Outcome)
		}
	}
	// Another issuer's subject of the same name is another requester.
	r := same[0]
	r.Headers["authorization"] = "Bearer agent-other-issuer"
	if res := e.Decide(context.Background(), r); res.Outcome != ApprovalRequired {
		t.Errorf("the same subject of another issuer was admitted: %s", res.Outcome)
	}
}

func TestUnbindableRequestIsRefused(t *testing.T) {
	const url = "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/setMetadata"
	partial := send("POST", url, `{"items":[`, "content-type", "application/json")
	partial.BodyPartial = true
	partial.Headers["content-length"] = "9000000"
	unsent := send("POST", url, "", "content-type", "application/json")
	unsent.Headers["content-length"] = "120"
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{"body cut by Envoy", partial, "larger than the gateway inspects"},
		{"body not sent", unsent, "saw 0 of the body's 120 bytes"},
		{"duplicate member", send("POST", url, `{"items":[],"items":[{"key":"a"}]}`, "content-type", "application/json"), `member "items" twice`},
		{"duplicate member by escape", send("POST", url, `{"a":{"k":1,"\u006b":2}}`, "content-type", "application/json"), `member "k" twice`},
		{"too deep", send("POST", url, strings.Repeat("[", 200)+strings.Repeat("]", 200), "content-type", "application/json"), "nested deeper than 128"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeApprovals{out: approvals.Outcome{Granted: true, Approval: approvals.Approval{ID: "a1", State: approvals.StateApproved}}}
			e := newTestEngine(t, Options{Approvals: f, Verifier: fakeVerifier{"agent": agentID}})
			e.SetPolicies(loadPolicy(t, approvalPolicy))
			res := e.Decide(context.Background(), tc.req)
			// A duplicate member is refused before policy, the rest when
			// the approval would have to bind them.
			beforePolicy := strings.Contains(tc.want, "twice")
			if res.Outcome != Invalid || res.Refusal.HTTPStatus != 400 || !strings.Contains(res.Refusal.Message, tc.want) ||
				!beforePolicy && !strings.Contains(res.Refusal.Message, "rule compute-writes needs a human's approval") {
				t.Fatalf("outcome %s: %+v", res.Outcome, res.Refusal)
			}
			if len(f.asked) != 0 {
				t.Fatalf("an unbindable request reached the approval gate: %+v", f.asked)
			}
		})
	}
}

func TestApprovalQueueFull(t *testing.T) {
	e, _ := approvalEngine(t, approvalPolicy, approvals.Options{MaxPendingPerSubject: 2}, Options{})
	obj := func(n string) Request { return send("DELETE", "https://storage.googleapis.com/acme-data/"+n, "") }
	first := pendingID(t, e.Decide(context.Background(), obj("a")))
	pendingID(t, e.Decide(context.Background(), obj("b")))
	res := e.Decide(context.Background(), obj("c"))
	if res.Outcome != ApprovalRequired || res.Refusal.HTTPStatus != 403 || res.Refusal.Reason != ReasonApprovalRequired ||
		res.Refusal.Metadata["queue_full"] != "true" || res.Refusal.Metadata["limit"] != "2" || res.Refusal.Metadata["approval_id"] != "" ||
		!strings.Contains(res.Refusal.Message, "approval queue is full") || !strings.Contains(res.Refusal.Message, "Wait for approvers to decide") {
		t.Fatalf("over the cap: %s %+v", res.Outcome, res.Refusal)
	}
	if again := pendingID(t, e.Decide(context.Background(), obj("a"))); again != first {
		t.Fatalf("a re-sent pending request got %s, want its approval %s", again, first)
	}
}

// flakyRecorder fails the first allowed decision it is given.
type flakyRecorder struct {
	mu     sync.Mutex
	failed bool
}

func (f *flakyRecorder) RecordDecision(_ context.Context, d handoff.Decision) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d.Outcome == Allowed.String() && !f.failed {
		f.failed = true
		return errors.New("spool full")
	}
	return nil
}

func TestRefusedRequestGivesItsOnceGrantBack(t *testing.T) {
	e, svc := approvalEngine(t, approvalPolicy, approvals.Options{}, Options{Recorder: &flakyRecorder{}})
	r := send("DELETE", "https://storage.googleapis.com/acme-data/reports/q3.csv", "")
	id := approve(t, e, svc, r)
	if res := e.Decide(context.Background(), r); res.Outcome != Unavailable {
		t.Fatalf("an unrecordable request was not refused: %s", res.Outcome)
	}
	res := e.Decide(context.Background(), r)
	if res.Outcome != Allowed || res.Approval == nil || res.Approval.ID != id {
		t.Fatalf("the grant was spent by a request that never went out: %s %+v", res.Outcome, res.Refusal)
	}
	if got := pendingID(t, e.Decide(context.Background(), r)); got == id {
		t.Fatal("the grant was used twice")
	}
}

func TestApprovalStoresRequesterIssuer(t *testing.T) {
	e, svc := approvalEngine(t, approvalPolicy, approvals.Options{}, Options{})
	id := pendingID(t, e.Decide(context.Background(), send("DELETE", "https://storage.googleapis.com/acme-data/x", "")))
	a, err := svc.Get(context.Background(), id)
	if err != nil || a.Request.Issuer != agentID.Issuer || a.Request.Subject != agentID.Subject {
		t.Fatalf("approval %+v, %v", a.Request, err)
	}
}

func TestHeldOnceGrantAcrossConcurrentChecks(t *testing.T) {
	e, svc := approvalEngine(t, approvalPolicy, approvals.Options{}, Options{Hold: 2 * time.Second})
	r := send("DELETE", "https://storage.googleapis.com/acme-data/held", "")
	var wg sync.WaitGroup
	results := make([]*Result, 8)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = e.Decide(context.Background(), r)
		}(i)
	}
	// Approve once the approval exists; the holders are woken.
	var id string
	deadline := time.Now().Add(5 * time.Second)
	for id == "" {
		list, err := svc.List(context.Background(), approvals.ListOptions{State: approvals.StatePending})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Approvals) > 0 {
			id = list.Approvals[0].ID
		}
		if time.Now().After(deadline) {
			t.Fatal("no pending approval within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := svc.Vote(context.Background(), id, sreID, true, "go"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	allowed := 0
	for _, res := range results {
		if res.Outcome == Allowed {
			allowed++
		}
	}
	if allowed != 1 {
		t.Fatalf("%d held Checks with one x-request-id passed on one once grant, want exactly 1", allowed)
	}
}
