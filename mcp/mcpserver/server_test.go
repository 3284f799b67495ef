package mcpserver_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/mcp"
	"github.com/airlockhq/airlock/mcp/mcpserver"
	"github.com/airlockhq/airlock/policies"
)

const policy = `name: prod
default: deny
rules:
  - name: no-delete
    when: gcp.method == "compute.instances.delete"
    action: deny
    message: Deleting instances is not allowed.
  - name: prod-writes
    when: '!gcp.readonly && gcp.project == "acme-prod"'
    action: approve
    approvers: [group:sre]
    grant: window
    ttl: 10m
  - name: reads
    when: gcp.readonly
    action: allow
`

type verifier map[string]identity.Identity

func (v verifier) Verify(_ context.Context, tok string) (identity.Identity, error) {
	if id, ok := v[tok]; ok {
		return id, nil
	}
	return identity.Identity{}, &identity.Error{Kind: identity.BadSignature, Msg: "the token's signature does not verify"}
}

var (
	agent = identity.Identity{Issuer: "https://issuer.example", Subject: "agent-1", Groups: []string{"ai-agents"}, Expiry: time.Now().Add(time.Hour)}
	other = identity.Identity{Issuer: "https://issuer.example", Subject: "agent-2", Groups: []string{"ai-agents"}, Expiry: time.Now().Add(time.Hour)}
	sre   = identity.Identity{Issuer: "https://issuer.example", Subject: "sre-1", Email: "sre@example.com", EmailVerified: true, Groups: []string{"sre"}}
)

type fixture struct {
	url string
	svc *approvals.Service
}

func start(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := policies.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := approvals.NewService(approvals.NewMemoryStore(), approvals.Options{DefaultTTL: 10 * time.Minute, MaxTTL: time.Hour, PublicURL: "https://airlock.example", Logger: log})
	t.Cleanup(func() { _ = svc.Close() })
	v := verifier{"agent-token": agent, "other-token": other}
	g := gcp.NewRecognizer(gcp.DefaultCatalog(), nil)
	eng, err := authz.New(authz.Options{Verifier: v, Recognizer: g, Policies: set, Approvals: svc, Timeout: 30 * time.Second,
		MCP: mcp.NewRecognizer(g, nil, mcp.NewRegistry(0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	opts := mcpserver.Options{Decider: eng, Verifier: v, Approvals: svc, PublicURL: "https://airlock.example", Issuers: []string{"https://issuer.example"}, Logger: log}
	mux := http.NewServeMux()
	mux.Handle(mcpserver.Path, mcpserver.Handler(opts))
	mux.Handle(mcpserver.MetadataPath, mcpserver.MetadataHandler(opts))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &fixture{url: hs.URL, svc: svc}
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func connect(t *testing.T, url, token string) *sdk.ClientSession {
	t.Helper()
	c := sdk.NewClient(&sdk.Implementation{Name: "test-agent", Version: "1"}, nil)
	s, err := c.Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: bearer{token}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// call calls a tool and decodes its structured result.
func call(t *testing.T, s *sdk.ClientSession, tool string, args map[string]any, out any) *sdk.CallToolResult {
	t.Helper()
	res, err := s.CallTool(context.Background(), &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if out != nil && !res.IsError {
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v: %s", tool, err, b)
		}
	}
	return res
}

func text(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func TestAgentTools(t *testing.T) {
	f := start(t)
	s := connect(t, f.url+"/mcp", "agent-token")
	tools, err := s.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	if strings.Join(names, ",") != "explain_request,get_approval,list_my_grants,request_approval,wait_for_approval" {
		t.Fatalf("tools %v", names)
	}

	// explain_request: a REST delete is denied by its rule.
	var d mcpserver.Decision
	call(t, s, "explain_request", map[string]any{"method": "DELETE", "url": "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances/web-1"}, &d)
	if d.Decision != "policy_denied" || d.Rules[0] != "prod/no-delete" || !strings.Contains(d.Message, "Deleting instances is not allowed") || d.Operation.Method != "compute.instances.delete" || !strings.Contains(d.Next, "do not send it") {
		t.Fatalf("REST delete: %+v", d)
	}
	// An MCP tool call that needs approval: a dry run asks nothing.
	stop := map[string]any{"server": "compute", "tool": "stop_instance", "arguments": map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"}}
	call(t, s, "explain_request", stop, &d)
	if d.Decision != "approval_required" || d.Operation.Method != "compute.instances.stop" || d.Operation.MCP == nil || d.Operation.MCP.Tool != "stop_instance" || !d.Operation.MCP.Mapped || !strings.Contains(d.Next, "request_approval") {
		t.Fatalf("MCP stop: %+v", d)
	}
	if l, _ := f.svc.List(context.Background(), approvals.ListOptions{}); len(l.Approvals) != 0 {
		t.Fatal("explain_request opened an approval")
	}
	// request_approval needs a justification, then opens the approval.
	if res := call(t, s, "request_approval", stop, nil); !res.IsError || !strings.Contains(text(res), "justification") {
		t.Fatalf("without a justification: %+v", res)
	}
	ask := map[string]any{"justification": "restart web-1 after the config push"}
	for k, v := range stop {
		ask[k] = v
	}
	call(t, s, "request_approval", ask, &d)
	if d.Approval == nil || d.Approval.State != "pending" || !strings.HasPrefix(d.Approval.ApproveURL, "https://airlock.example/approvals") || d.Approval.ExpiresAt.IsZero() || d.Approval.Justification != "restart web-1 after the config push" {
		t.Fatalf("request_approval: %+v %+v", d, d.Approval)
	}
	id := d.Approval.ID
	var a mcpserver.ApprovalView
	call(t, s, "get_approval", map[string]any{"approval_id": id}, &a)
	if a.State != "pending" || a.Rule != "prod-writes" {
		t.Fatalf("get_approval: %+v", a)
	}
	// wait_for_approval: still pending after its timeout, then approved
	// as soon as a human approves.
	call(t, s, "wait_for_approval", map[string]any{"approval_id": id, "timeout_seconds": 1}, &a)
	if a.State != "pending" || !strings.Contains(a.Next, "still pending") {
		t.Fatalf("wait: %+v", a)
	}
	done := make(chan mcpserver.ApprovalView, 1)
	go func() {
		var w mcpserver.ApprovalView
		res, err := s.CallTool(context.Background(), &sdk.CallToolParams{Name: "wait_for_approval", Arguments: map[string]any{"approval_id": id}})
		if err == nil {
			b, _ := json.Marshal(res.StructuredContent)
			_ = json.Unmarshal(b, &w)
		}
		done <- w
	}()
	if _, err := f.svc.Vote(context.Background(), id, sre, true, "ok"); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-done:
		if w.State != "approved" || len(w.Votes) != 1 || w.Votes[0].By != "sre@example.com" || !strings.Contains(w.Next, "send the request") {
			t.Fatalf("after the vote: %+v", w)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("wait_for_approval did not wake on the vote")
	}
	// The window grant is listed with its expiry.
	var g mcpserver.Grants
	call(t, s, "list_my_grants", nil, &g)
	if len(g.Grants) != 1 || g.Grants[0].ID != id || g.Grants[0].GrantExpiresAt == nil {
		t.Fatalf("grants %+v", g)
	}

	// Another agent sees none of it.
	o := connect(t, f.url+"/mcp", "other-token")
	if res := call(t, o, "get_approval", map[string]any{"approval_id": id}, nil); !res.IsError || !strings.Contains(text(res), "no approval") {
		t.Fatalf("another agent read the approval: %s", text(res))
	}
	call(t, o, "list_my_grants", nil, &g)
	if len(g.Grants) != 0 {
		t.Fatalf("another agent's grants: %+v", g)
	}
	// No tool approves anything.
	if _, err := s.CallTool(context.Background(), &sdk.CallToolParams{Name: "approve", Arguments: map[string]any{"approval_id": id}}); err == nil {
		t.Fatal("an approve tool exists")
	}
}

// Without a valid token the server answers 401 with the protected
// resource metadata, which names the issuers.
func TestProtectedResource(t *testing.T) {
	f := start(t)
	for _, tok := range []string{"", "forged"} {
		req, _ := http.NewRequest("POST", f.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `resource_metadata="https://airlock.example/.well-known/oauth-protected-resource/mcp"`) {
			t.Fatalf("token %q: %d %q", tok, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	resp, err := http.Get(f.url + mcpserver.MetadataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&prm); err != nil || prm.Resource != "https://airlock.example/mcp" || prm.AuthorizationServers[0] != "https://issuer.example" {
		t.Fatalf("metadata %+v %v", prm, err)
	}
}

// `airlock mcp` serves the same tools over stdio, calling the server with
// the agent's token.
func TestStdio(t *testing.T) {
	f := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srvIn, cliOut := io.Pipe()
	cliIn, srvOut := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- mcpserver.ServeStdio(ctx, f.url+"/mcp", "agent-token", "test", srvIn, srvOut) }()
	c := sdk.NewClient(&sdk.Implementation{Name: "stdio-agent", Version: "1"}, nil)
	s, err := c.Connect(ctx, &sdk.IOTransport{Reader: cliIn, Writer: cliOut}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var d mcpserver.Decision
	call(t, s, "explain_request", map[string]any{"method": "GET", "url": "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances"}, &d)
	if d.Decision != "allowed" || d.Operation.Method != "compute.instances.list" {
		t.Fatalf("%+v", d)
	}
	// A bad token never gets a tool.
	bad := make(chan error, 1)
	r2, w2 := io.Pipe()
	go func() { bad <- mcpserver.ServeStdio(ctx, f.url+"/mcp", "forged", "test", r2, io.Discard) }()
	select {
	case err := <-bad:
		if err == nil || !strings.Contains(err.Error(), "airlock mcp") {
			t.Fatalf("forged token: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ServeStdio with a forged token did not fail")
	}
	w2.Close()
}
