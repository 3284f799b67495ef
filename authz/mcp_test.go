package authz

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/mcp"
	"github.com/airlockhq/airlock/policies/examples"
)

const computeMCP = "https://compute.googleapis.com/mcp"

func toolCallBody(id any, tool string, args map[string]any, meta map[string]any) string {
	params := map[string]any{"name": tool, "arguments": args}
	if meta != nil {
		params["_meta"] = meta
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
	return string(b)
}

func mcpSend(body string, headers ...string) Request {
	return send("POST", computeMCP, body, append([]string{"content-type", "application/json", "accept", "application/json, text/event-stream"}, headers...)...)
}

func withMCP(o Options) Options {
	o.MCP = mcp.NewRecognizer(gcp.NewRecognizer(gcp.DefaultCatalog(), nil), nil, mcp.NewRegistry(0, 0))
	return o
}

// jsonrpcError decodes a single JSON-RPC error response.
func jsonrpcError(t *testing.T, res *Result) (id json.RawMessage, code int, msg string, data map[string]any) {
	t.Helper()
	if res.Refusal == nil {
		t.Fatalf("not refused: %s", res.Outcome)
	}
	var v struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int            `json:"code"`
			Message string         `json:"message"`
			Data    map[string]any `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(res.Refusal.Body(), &v); err != nil || v.JSONRPC != "2.0" {
		t.Fatalf("not a JSON-RPC error: %s (%v)", res.Refusal.Body(), err)
	}
	return v.ID, v.Error.Code, v.Error.Message, v.Error.Data
}

// The rule that denies the REST delete denies the tool that does the same
// thing, with no MCP-specific rule, and the agent reads why as a JSON-RPC
// error for its call.
func TestOneRuleForRESTAndMCP(t *testing.T) {
	e := newTestEngine(t, withMCP(Options{}))
	rest := e.Decide(context.Background(), req("DELETE", "compute.googleapis.com", "/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1", "good"))
	if rest.Outcome != PolicyDenied || rest.Decision.Rule != "no-delete" {
		t.Fatalf("REST: %s %+v", rest.Outcome, rest.Decision)
	}
	r := mcpSend(toolCallBody(7, "delete_instance", map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"}, nil))
	r.Headers["authorization"] = "Bearer good"
	res := e.Decide(context.Background(), r)
	if res.Outcome != PolicyDenied || res.Decision.Rule != "no-delete" || res.Recognized.Operation.Method != "compute.instances.delete" {
		t.Fatalf("MCP: %s %+v %+v", res.Outcome, res.Decision, res.Recognized.Operation)
	}
	if res.Refusal.HTTPStatus != 403 {
		t.Errorf("status %d", res.Refusal.HTTPStatus)
	}
	id, code, msg, data := jsonrpcError(t, res)
	if string(id) != "7" || code != CodePolicyDenied || !strings.Contains(msg, "denied by rule no-delete: Deleting instances is not allowed") {
		t.Errorf("id %s code %d msg %q", id, code, msg)
	}
	if data["reason"] != ReasonPolicyDenied || data["metadata"].(map[string]any)["rule"] != "no-delete" {
		t.Errorf("data %v", data)
	}
	// A read tool is allowed, with its REST twin's gcp.* and the call's
	// masked arguments passed on.
	r = mcpSend(toolCallBody("a", "list_instances", map[string]any{"project": "acme-dev", "zone": "us-east1-b", "filter": "AIzaSyA1234567890abcdefghijklmnopqrstuv"}, nil), "authorization", "Bearer good")
	e.opts.MaskBody = func(b []byte, _ []masking.Rule) []byte {
		return []byte(strings.ReplaceAll(string(b), "AIzaSyA1234567890abcdefghijklmnopqrstuv", "[MASKED:gcp_api_key]"))
	}
	res = e.Decide(context.Background(), r)
	if res.Outcome != Allowed {
		t.Fatalf("list: %s %+v", res.Outcome, res.Refusal)
	}
	md := handoff.MetadataFromMap(res.Metadata().ToMap())
	if md.GCPMethod != "compute.instances.list" || md.MCP == nil || len(md.MCP.Calls) != 1 {
		t.Fatalf("metadata %+v", md)
	}
	c := md.MCP.Calls[0]
	if c.ID != `"a"` || c.Name != "list_instances" || c.GCPMethod != "compute.instances.list" || strings.Contains(string(c.Arguments), "AIza") || !strings.Contains(string(c.Arguments), "[MASKED:gcp_api_key]") {
		t.Errorf("call metadata %+v args %s", c, c.Arguments)
	}
	if md.MCP.Caller != nil {
		t.Error("the caller was passed on without a tools/list")
	}
}

// Requests airlock cannot decide are refused before policy, as JSON-RPC
// errors with the codes of the specification.
func TestMCPRefusedBeforePolicy(t *testing.T) {
	e := newTestEngine(t, withMCP(Options{}))
	for _, tc := range []struct {
		body    string
		headers []string
		id      string
		code    int
		msg     string
	}{
		{`{"jsonrpc":"2.0","id":3,"method":"tools/delete_everything"}`, nil, "3", mcp.CodeMethodNotFound, "does not know the MCP method"},
		{toolCallBody(4, "list_instances", map[string]any{"project": "acme-dev", "zone": "us-east1-b"}, nil), []string{"mcp-name", "delete_instance"}, "4", mcp.CodeHeaderMismatch, "header mismatch"},
		{toolCallBody(5, "list_instances", map[string]any{"project": "acme-dev", "zone": "us-east1-b"}, nil), []string{"mcp-method", "tools/list"}, "5", mcp.CodeHeaderMismatch, "Mcp-Method"},
		{toolCallBody(6, "delete_instance", map[string]any{"project": "acme-dev", "zone": "us-east1-b/../x", "name": "web-1"}, nil), nil, "6", mcp.CodeInvalidParams, "cannot be read as the Google Cloud operation"},
		{`{"jsonrpc":"2.0","id":8,"method":"ping"`, nil, "null", mcp.CodeParseError, "not valid JSON"},
	} {
		r := mcpSend(tc.body, append([]string{"authorization", "Bearer good"}, tc.headers...)...)
		res := e.Decide(context.Background(), r)
		if res.Outcome != Invalid || res.Refusal.HTTPStatus != 400 {
			t.Errorf("%s: %s %+v", tc.body, res.Outcome, res.Refusal)
			continue
		}
		id, code, msg, _ := jsonrpcError(t, res)
		if string(id) != tc.id || code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: id %s code %d msg %q", tc.body, id, code, msg)
		}
	}
	// Without a token: 401, as JSON-RPC, the id unknown.
	r := mcpSend(toolCallBody(9, "list_instances", nil, nil))
	delete(r.Headers, "authorization")
	res := e.Decide(context.Background(), r)
	id, code, msg, _ := jsonrpcError(t, res)
	if res.Refusal.HTTPStatus != 401 || string(id) != "null" || code != CodeUnauthenticated || !strings.Contains(msg, "unauthenticated") {
		t.Errorf("401: %d %s %d %q", res.Refusal.HTTPStatus, id, code, msg)
	}
	// Without MCP recognition the same request is an unknown operation in
	// Google's error shape.
	plain := newTestEngine(t, Options{})
	res = plain.Decide(context.Background(), mcpSend(toolCallBody(1, "list_instances", nil, nil), "authorization", "Bearer good"))
	if res.Outcome != Invalid || res.Refusal.JSONRPC != nil || !strings.Contains(string(res.Refusal.Body()), `"error":{"code":400`) {
		t.Errorf("without MCP: %s %s", res.Outcome, res.Refusal.Body())
	}
}

// One forbidden call in a batch refuses the whole POST; every request of
// the batch gets the error.
func TestMCPBatchOneDeniedCallDeniesAll(t *testing.T) {
	e := newTestEngine(t, withMCP(Options{}))
	body := "[" + toolCallBody(1, "list_instances", map[string]any{"project": "acme-dev", "zone": "us-east1-b"}, nil) + "," +
		toolCallBody(2, "delete_instance", map[string]any{"project": "acme-dev", "zone": "us-east1-b", "name": "web-1"}, nil) + "," +
		`{"jsonrpc":"2.0","method":"notifications/initialized"}]`
	res := e.Decide(context.Background(), mcpSend(body, "authorization", "Bearer good"))
	if res.Outcome != PolicyDenied || res.Decision.Rule != "no-delete" {
		t.Fatalf("%s %+v", res.Outcome, res.Decision)
	}
	var list []struct {
		ID    json.RawMessage `json:"id"`
		Error struct{ Message string }
	}
	if err := json.Unmarshal(res.Refusal.Body(), &list); err != nil || len(list) != 2 || string(list[0].ID) != "1" || string(list[1].ID) != "2" || !strings.Contains(list[0].Error.Message, "no-delete") {
		t.Fatalf("batch refusal %s (%v)", res.Refusal.Body(), err)
	}
	// Without the delete, the batch is allowed.
	body = "[" + toolCallBody(1, "list_instances", map[string]any{"project": "acme-dev", "zone": "us-east1-b"}, nil) + "," +
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`
	if res := e.Decide(context.Background(), mcpSend(body, "authorization", "Bearer good")); res.Outcome != Allowed {
		t.Fatalf("read-only batch: %s %+v", res.Outcome, res.Refusal)
	}
}

// A held tool call is bound to its canonical call: the id, _meta and the
// session do not matter, the arguments do (numbers by their text).
func TestMCPApprovalBindsTheCanonicalCall(t *testing.T) {
	e, svc := approvalEngine(t, approvalPolicy, approvals.Options{DefaultTTL: 10 * time.Minute, PublicURL: "https://airlock.example"}, withMCP(Options{}))
	args := map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"}
	first := mcpSend(toolCallBody(1, "stop_instance", args, map[string]any{"progressToken": "p1"}), "mcp-session-id", "s-1")
	res := e.Decide(context.Background(), first)
	id := pendingID(t, res)
	rid, code, msg, data := jsonrpcError(t, res)
	if string(rid) != "1" || code != CodePolicyDenied || res.Refusal.HTTPStatus != 403 {
		t.Fatalf("refusal: id %s code %d status %d", rid, code, res.Refusal.HTTPStatus)
	}
	for _, want := range []string{"approval required by rule compute-writes", "stop_instance", id, svc.ApproveURL(id), "retry the same call once approved"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the message does not say %q: %s", want, msg)
		}
	}
	if md := data["metadata"].(map[string]any); md["approval_id"] != id || md["approve_url"] == "" {
		t.Errorf("metadata %v", md)
	}
	if _, err := svc.Vote(context.Background(), id, sreID, true, "ok"); err != nil {
		t.Fatal(err)
	}
	// The same call, another id, another _meta, another session: admitted.
	again := mcpSend(toolCallBody("retry-7", "stop_instance", map[string]any{"zone": "us-east1-b", "name": "web-1", "project": "acme-prod"}, map[string]any{"progressToken": "p2"}), "mcp-session-id", "s-2", "mcp-method", "tools/call")
	if res := e.Decide(context.Background(), again); res.Outcome != Allowed || res.Approval == nil || res.Approval.ID != id {
		t.Fatalf("retry: %s %+v", res.Outcome, res.Refusal)
	}
	// Another instance is another approval.
	other := mcpSend(toolCallBody(2, "stop_instance", map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-2"}, nil))
	if got := pendingID(t, e.Decide(context.Background(), other)); got == id {
		t.Fatal("a grant for web-1 admitted web-2")
	}
	// Numbers bind by their text: integers beyond float64 differ.
	a := Binding{Issuer: "i", Subject: "s", MCP: mustMCP(t, e, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"n":12345678901234567891}}}`)}
	b := a
	a.Body = []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"n":12345678901234567891}}}`)
	b.Body = []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"n":12345678901234567892}}}`)
	fa, errA := a.Fingerprint()
	fb, errB := b.Fingerprint()
	if errA != nil || errB != nil || fa == fb {
		t.Fatalf("fingerprints %s %s (%v %v)", fa, fb, errA, errB)
	}
}

func mustMCP(t *testing.T, e *Engine, body string) *mcp.Request {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	m, err := e.opts.MCP.Recognize(mcp.HTTPRequest{Method: "POST", Host: "compute.googleapis.com", Path: "/mcp", Headers: map[string]string{}, Body: v})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// holdApprovals records the hold it is asked to wait.
type holdApprovals struct {
	fakeApprovals
	hold time.Duration
}

func (h *holdApprovals) Gate(ctx context.Context, r approvals.Request, hold time.Duration) (approvals.Outcome, error) {
	h.hold = hold
	return h.fakeApprovals.Gate(ctx, r, hold)
}

// A held MCP call is answered before MCP clients give up: its hold is
// capped; a REST request waits the whole hold.
func TestMCPHoldIsCapped(t *testing.T) {
	pending := &holdApprovals{fakeApprovals: fakeApprovals{out: approvals.Outcome{Approval: approvals.Approval{ID: "a1", State: approvals.StatePending, ExpiresAt: time.Now().Add(time.Hour)}}}}
	e := newTestEngine(t, withMCP(Options{Approvals: pending, Hold: 5 * time.Minute, MCPMaxHold: 45 * time.Second}))
	r := mcpSend(toolCallBody(1, "stop_instance", map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"}, nil), "authorization", "Bearer good")
	if res := e.Decide(context.Background(), r); res.Outcome != ApprovalRequired || pending.hold != 45*time.Second {
		t.Fatalf("MCP: %s, hold %s", res.Outcome, pending.hold)
	}
	e.Decide(context.Background(), req("POST", "compute.googleapis.com", "/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/stop", "good"))
	if pending.hold != 5*time.Minute {
		t.Fatalf("REST hold %s", pending.hold)
	}
	// A zero cap answers a held MCP call at once; it never lifts the cap.
	e = newTestEngine(t, withMCP(Options{Approvals: pending, Hold: 5 * time.Minute}))
	if res := e.Decide(context.Background(), r); res.Outcome != ApprovalRequired || pending.hold != 0 {
		t.Fatalf("MCP with no cap: %s, hold %s", res.Outcome, pending.hold)
	}
}

// A tools/list passes the caller on when filtering is on.
func TestMCPToolsListPassesTheCaller(t *testing.T) {
	e := newTestEngine(t, withMCP(Options{MCPFilterTools: true}))
	res := e.Decide(context.Background(), mcpSend(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "authorization", "Bearer good"))
	if res.Outcome != Allowed {
		t.Fatalf("%s %+v", res.Outcome, res.Refusal)
	}
	md := handoff.MetadataFromMap(res.Metadata().ToMap())
	if md.MCP == nil || md.MCP.Caller == nil || md.MCP.Caller.Subject != "agent-1" || md.MCP.Caller.Groups[0] != "ai-agents" {
		t.Fatalf("%+v", md.MCP)
	}
}

// tools/list keeps the tools the caller could call under the baseline and
// drops the others: unmapped tools (unknown-operation) and, for a caller
// outside the agents' groups, every tool.
func TestToolsCallableUnderTheBaseline(t *testing.T) {
	base, err := examples.FS.ReadFile("gcp-baseline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := approvalEngine(t, string(base), approvals.Options{}, withMCP(Options{MCPFilterTools: true}))
	tr, f := true, false
	tools := []*mcp.Tool{
		{Name: "list_instances", Hints: mcp.Hints{ReadOnly: &tr}},
		{Name: "delete_instance", Hints: mcp.Hints{ReadOnly: &f, Destructive: &tr}},
		{Name: "stop_instance", Hints: mcp.Hints{ReadOnly: &f}},
		{Name: "launch_rockets"},
	}
	meta := handoff.Metadata{MCP: &handoff.MCPMetadata{Host: "compute.googleapis.com", Path: "/mcp", Server: "compute", Caller: &handoff.MCPCaller{Subject: "agent-1", Groups: []string{"ai-agents"}}}}
	if got := e.Callable(context.Background(), meta, tools); !equalBools(got, []bool{true, true, true, false}) {
		t.Errorf("ai-agents: %v", got)
	}
	meta.MCP.Caller = &handoff.MCPCaller{Subject: "mallory", Groups: []string{"interns"}}
	if got := e.Callable(context.Background(), meta, tools); !equalBools(got, []bool{false, false, false, false}) {
		t.Errorf("outside the groups: %v", got)
	}
	// The GKE server's Kubernetes tools map to no REST method.
	meta.MCP = &handoff.MCPMetadata{Host: "container.googleapis.com", Server: "container", Caller: &handoff.MCPCaller{Subject: "agent-1", Groups: []string{"ai-agents"}}}
	if got := e.Callable(context.Background(), meta, []*mcp.Tool{{Name: "kube_get", Hints: mcp.Hints{ReadOnly: &tr}}, {Name: "get_cluster", Hints: mcp.Hints{ReadOnly: &tr}}}); !equalBools(got, []bool{false, true}) {
		t.Errorf("container: %v", got)
	}
	// Without the caller nothing is filtered.
	meta.MCP.Caller = nil
	if got := e.Callable(context.Background(), meta, tools); !equalBools(got, []bool{true, true, true, true}) {
		t.Errorf("no caller: %v", got)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
