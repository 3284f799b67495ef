package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/envoy"
	"github.com/airlockhq/airlock/envoy/envoytest"
	"github.com/airlockhq/airlock/identity/identitytest"
	"github.com/airlockhq/airlock/mcp/mcpserver"
	"github.com/airlockhq/airlock/test/standin"
)

// fakeComputeMCP is Google's Compute Engine MCP server as the Go SDK
// serves it (streamable HTTP, SSE responses), with the tools airlock's
// catalog knows and one it does not. It counts what reached it.
type fakeComputeMCP struct {
	stops   atomic.Int32
	deletes atomic.Int32
	mu      sync.Mutex
	calls   []string
	// headers are the MCP headers of each request that reached it.
	headers []string
}

// project is the argument Google's servers mirror into a header.
var projectSchema = map[string]any{"type": "string", "x-mcp-header": "Project"}

func (f *fakeComputeMCP) server(versions []string) *sdk.Server {
	srv := sdk.NewServer(&sdk.Implementation{Name: "compute.googleapis.com", Version: "v1"}, &sdk.ServerOptions{SupportedProtocolVersions: versions})
	instanceArgs := map[string]any{"type": "object", "properties": map[string]any{"project": projectSchema, "zone": map[string]any{"type": "string"}, "name": map[string]any{"type": "string"}}, "required": []string{"project", "zone", "name"}}
	tr, fa := true, false
	srv.AddTool(&sdk.Tool{Name: "list_instances", Description: "Lists instances.", Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true},
		InputSchema: map[string]any{"type": "object", "properties": map[string]any{"project": projectSchema, "zone": map[string]any{"type": "string"}}}},
		func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			f.note("list_instances")
			list := map[string]any{"instances": []any{map[string]any{"name": "web-1", "status": "RUNNING",
				"metadata":       map[string]any{"items": []any{map[string]any{"key": "startup-script", "value": "export API_KEY=" + secretAPIKey + "\n./run"}}},
				"serviceAccount": "123-compute@developer.gserviceaccount.com"}},
				"note": "deploy key " + secretAPIKey}
			text, _ := json.Marshal(list)
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: string(text)}}, StructuredContent: list}, nil
		})
	srv.AddTool(&sdk.Tool{Name: "delete_instance", Description: "Deletes an instance.", Annotations: &sdk.ToolAnnotations{DestructiveHint: &tr}, InputSchema: instanceArgs},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			f.deletes.Add(1)
			f.note("delete_instance")
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "deleted"}}}, nil
		})
	srv.AddTool(&sdk.Tool{Name: "stop_instance", Description: "Stops an instance.", Annotations: &sdk.ToolAnnotations{DestructiveHint: &tr}, InputSchema: instanceArgs},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			f.stops.Add(1)
			f.note("stop_instance")
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: `{"operationName":"operation-1"}`}}}, nil
		})
	srv.AddTool(&sdk.Tool{Name: "launch_rockets", Description: "Not a Compute tool airlock knows.", Annotations: &sdk.ToolAnnotations{DestructiveHint: &fa},
		InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			f.note("launch_rockets")
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "launched"}}}, nil
		})
	return srv
}

func (f *fakeComputeMCP) note(tool string) {
	f.mu.Lock()
	f.calls = append(f.calls, tool)
	f.mu.Unlock()
}

// agentTransport sends the agent's requests to the Envoy stand-in in
// transparent mode: the Host is Google's, the token the agent's.
type agentTransport struct {
	front, host, token, session string
}

func (a agentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	u := *r.URL
	front, _ := http.NewRequest("GET", a.front, nil)
	u.Scheme, u.Host = front.URL.Scheme, front.URL.Host
	r.URL = &u
	r.Host = a.host
	r.Header.Set("Authorization", "Bearer "+a.token)
	if a.session != "" {
		r.Header.Set("X-Airlock-Session", a.session)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// mcpGateway runs airlock with the example baseline, the Envoy stand-in
// (ext_proc in chunks of chunk bytes) and the fake Compute MCP server.
func mcpGateway(t *testing.T, iss *identitytest.Issuer, fake *fakeComputeMCP, versions []string, chunk int) (*gateway, *httptest.Server) {
	t.Helper()
	handler := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return fake.server(versions) },
		&sdk.StreamableHTTPOptions{Stateless: len(versions) == 0, DisableLocalhostProtection: true})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fake.mu.Lock()
		fake.headers = append(fake.headers, fmt.Sprintf("%s version=%s method=%s name=%s project=%s session=%t", r.Method,
			r.Header.Get("Mcp-Protocol-Version"), r.Header.Get("Mcp-Method"), r.Header.Get("Mcp-Name"), r.Header.Get("Mcp-Param-Project"), r.Header.Get("Mcp-Session-Id") != ""))
		fake.mu.Unlock()
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(upstream.Close)
	g := &gateway{tokens: envoytest.NewTokenServer(t, time.Hour)}
	g.a = startAirlock(t, func(p Ports, dir string) string {
		return fmt.Sprintf(`listen: {authz: %q, extproc: %q, sds: %q, http: %q}
%s
policies: {paths: [%q]}
approvals: {public_url: "http://%s"}
recorder: {enabled: true, sink: "file://%s/sessions", spool: "%s/spool"}
credentials:
  - name: gcp
    service_account_key: %s
    scopes: [https://www.googleapis.com/auth/cloud-platform]
`, p.Authz, p.ExtProc, p.SDS, p.HTTP, issuerConfig(iss), filepath.Join(repoRoot, "policies", "examples"), p.HTTP, dir, dir, g.tokens.KeyFile)
	})
	cfg, err := config.Load(g.a.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sds := standin.NewSDSClient(ctx, dial(t, g.a.SDSAddr), "gcp")
	t.Cleanup(sds.Close)
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if _, err := sds.WaitFor(wctx, "gcp", ""); err != nil {
		t.Fatalf("no credential over SDS: %v\n%s", err, g.a.Logs())
	}
	fc := standin.AirlockFrontConfig(cfg, dial(t, g.a.AuthzAddr), dial(t, g.a.ExtProcAddr), sds, upstream.URL)
	fc.AuthzConfig.Timeout = 10 * time.Second
	ep := standin.ExtProcAirlockConfig()
	ep.MessageTimeout = 10 * time.Second // a loaded test machine, not the shipped 200 ms
	ep.BufferLimit = envoy.ListenerBufferLimit(cfg)
	ep.ChunkSize = chunk
	fc.ExtProc = standin.NewExtProcFilter(dial(t, g.a.ExtProcAddr), ep)
	g.front = httptest.NewServer(standin.NewFront(fc))
	t.Cleanup(g.front.Close)
	return g, upstream
}

func agentSession(t *testing.T, g *gateway, token, session string) *sdk.ClientSession {
	t.Helper()
	c := sdk.NewClient(&sdk.Implementation{Name: "agent", Version: "1"}, nil)
	hc := &http.Client{Transport: agentTransport{front: g.front.URL, host: "compute.googleapis.com", token: token, session: session}}
	s, err := c.Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: "https://compute.googleapis.com/mcp", HTTPClient: hc, DisableStandaloneSSE: true, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, g.a.Logs())
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func toolText(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// One agent session through the stand-in to Google's Compute MCP server,
// with the official SDK's client: tools/list filtered, a read allowed and
// masked (a secret split across ext_proc chunks), the REST rule denying
// the delete tool, a write held, approved, retried and allowed once,
// header/body disagreement and a batch with a forbidden call refused, and
// the tool calls recorded and shown.
func TestMCPThroughTheGateway(t *testing.T) {
	for _, tc := range []struct {
		name     string
		versions []string
	}{
		{"stateless 2026-07-28", nil},
		{"sessions 2025-11-25", []string{"2025-11-25"}},
	} {
		t.Run(tc.name, func(t *testing.T) { mcpThroughTheGateway(t, tc.versions) })
	}
}

func mcpThroughTheGateway(t *testing.T, versions []string) {
	iss := identitytest.NewIssuer(t)
	fake := &fakeComputeMCP{}
	g, upstream := mcpGateway(t, iss, fake, versions, 7)
	agent := iss.Mint(map[string]any{"sub": "alice", "email": "alice@acme.example", "groups": []string{"ai-agents"}})
	sre := iss.Mint(map[string]any{"sub": "bob", "email": "bob@acme.example", "email_verified": true, "groups": []string{"sre"}})
	s := agentSession(t, g, agent, "mcp-e2e")
	ctx := context.Background()

	// tools/list: the tool airlock cannot map is one the caller can never
	// call under the baseline, so it is not offered.
	tools, err := s.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v\n%s", err, g.a.Logs())
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	if got := strings.Join(names, ","); strings.Contains(got, "launch_rockets") || !strings.Contains(got, "list_instances") || !strings.Contains(got, "stop_instance") {
		t.Fatalf("tools/list gave %s", got)
	}

	// A read is allowed; the key in its text (JSON inside text, split
	// across 7-byte chunks) and in structuredContent is masked, the
	// startup script by the baseline's field rule.
	res, err := s.CallTool(ctx, &sdk.CallToolParams{Name: "list_instances", Arguments: map[string]any{"project": "acme-dev", "zone": "us-east1-b"}})
	if err != nil {
		t.Fatalf("list_instances: %v", err)
	}
	text := toolText(res)
	structured, _ := json.Marshal(res.StructuredContent)
	if res.IsError || !strings.Contains(text, "web-1") || strings.Contains(text, secretAPIKey) || strings.Contains(string(structured), secretAPIKey) {
		t.Fatalf("list_instances: %s / %s", text, structured)
	}
	if !strings.Contains(text, "[MASKED:instance-startup-scripts]") || !strings.Contains(text, "[MASKED:gcp_api_key]") || !strings.Contains(text, "gserviceaccount.com") {
		t.Fatalf("list_instances not masked as a document: %s", text)
	}

	// The baseline's REST rule denies the delete tool: the agent reads the
	// rule and its message; nothing reaches Google.
	_, err = s.CallTool(ctx, &sdk.CallToolParams{Name: "delete_instance", Arguments: map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"}})
	if err == nil || !strings.Contains(err.Error(), "denied by rule no-prod-instance-delete") || !strings.Contains(err.Error(), "Deleting production VM instances is not allowed") {
		t.Fatalf("delete_instance: %v", err)
	}
	if fake.deletes.Load() != 0 {
		t.Fatal("the delete reached Google")
	}
	code, body := g.agent(t, "DELETE", "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1", agent)
	if code != 403 || !strings.Contains(body, "no-prod-instance-delete") {
		t.Fatalf("REST twin: %d %s", code, body)
	}

	// A production write is held for approval: the message names the rule,
	// the approval id, its URL and to retry the same call.
	stop := &sdk.CallToolParams{Name: "stop_instance", Arguments: map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"}}
	_, err = s.CallTool(ctx, stop)
	if err == nil || !strings.Contains(err.Error(), "approval required by rule prod-writes-need-sre") || !strings.Contains(err.Error(), "retry the same call once approved") {
		t.Fatalf("stop_instance: %v", err)
	}
	id := approvalID(err.Error())
	if id == "" || !strings.Contains(err.Error(), "http://"+g.a.HTTPAddr+"/approvals") {
		t.Fatalf("no approval id or URL in %v", err)
	}
	// The agent's own token never approves its call.
	if code, out := api(t, "POST", "http://"+g.a.HTTPAddr+"/v1/approvals/"+id+":approve", agent, map[string]string{"reason": "trust me"}); code != 403 {
		t.Fatalf("the agent approved its own call: %d %v", code, out)
	}
	if code, out := api(t, "POST", "http://"+g.a.HTTPAddr+"/v1/approvals/"+id+":approve", sre, map[string]string{"reason": "maintenance window"}); code != 200 {
		t.Fatalf("approve: %d %v", code, out)
	}
	if res, err := s.CallTool(ctx, stop); err != nil || res.IsError || fake.stops.Load() != 1 {
		t.Fatalf("retry after approval: %v %+v (stops %d)", err, res, fake.stops.Load())
	}
	if _, err := s.CallTool(ctx, stop); err == nil || approvalID(err.Error()) == id || fake.stops.Load() != 1 {
		t.Fatalf("the once grant admitted a second call: %v (stops %d)", err, fake.stops.Load())
	}

	// Header and body disagree: refused, the client's error shows why.
	post := func(body string, headers ...string) (int, string) {
		req, _ := http.NewRequest("POST", g.front.URL+"/mcp", strings.NewReader(body))
		req.Host = "compute.googleapis.com"
		req.Header.Set("Authorization", "Bearer "+agent)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	call := func(id int, tool, project string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{"project":%q,"zone":"us-east1-b","name":"web-1"}}}`, id, tool, project)
	}
	code, body = post(call(41, "stop_instance", "acme-dev"), "Mcp-Method", "tools/call", "Mcp-Name", "list_instances")
	if code != 400 || !strings.Contains(body, `"code":-32020`) || !strings.Contains(body, `"id":41`) || !strings.Contains(body, "Mcp-Name header (list_instances) does not match") {
		t.Fatalf("header mismatch: %d %s", code, body)
	}
	code, body = post(call(42, "stop_instance", "acme-dev"), "Mcp-Method", "tools/call", "Mcp-Name", "stop_instance", "Mcp-Param-Project", "acme-sandbox", "Mcp-Protocol-Version", "2026-07-28")
	if code != 400 || !strings.Contains(body, `"code":-32020`) || !strings.Contains(body, "mcp-param-project header (acme-sandbox) does not match") {
		t.Fatalf("param mismatch: %d %s", code, body)
	}
	// A batch with one forbidden call: the whole POST is refused.
	code, body = post("[" + call(51, "list_instances", "acme-dev") + "," + call(52, "delete_instance", "acme-prod") + "]")
	if code != 403 || !strings.Contains(body, `"id":51`) || !strings.Contains(body, `"id":52`) || !strings.Contains(body, "no-prod-instance-delete") {
		t.Fatalf("batch: %d %s", code, body)
	}
	fake.mu.Lock()
	reached := strings.Join(fake.calls, ",")
	seen := strings.Join(fake.headers, "\n")
	fake.mu.Unlock()
	if len(versions) == 0 {
		// 2026-07-28: every POST mirrors its method and name, a tool call
		// its project (x-mcp-header, learned from tools/list).
		if !strings.Contains(seen, "POST version=2026-07-28 method=tools/call name=list_instances project=acme-dev session=false") {
			t.Fatalf("Google did not see the 2026-07-28 headers:\n%s", seen)
		}
	} else if !strings.Contains(seen, "version=2025-11-25 method= name= project= session=true") {
		t.Fatalf("Google did not see a 2025-11-25 session:\n%s", seen)
	}
	if strings.Contains(reached, "delete_instance") || strings.Count(reached, "stop_instance") != 1 {
		t.Fatalf("Google received %s", reached)
	}
	_ = s.Close()
	upstream.Close()

	// The session shows the tool calls: tool, masked arguments, masked result.
	g.a.Stop()
	sink := "file://" + g.a.Dir + "/sessions"
	rc, stdout, stderr := runCLI(t, nil, "sessions", "show", "mcp-e2e", "--sink", sink)
	if rc != 0 || !strings.Contains(stdout, "TOOL_CALL") || !strings.Contains(stdout, "compute/list_instances") || !strings.Contains(stdout, "[compute.instances.stop]") ||
		!strings.Contains(stdout, `arguments: {"project":"acme-dev","zone":"us-east1-b"}`) || strings.Contains(stdout, secretAPIKey) {
		t.Fatalf("sessions show: %d\n%s\n%s", rc, stdout, stderr)
	}
	rc, stdout, _ = runCLI(t, nil, "sessions", "export", "mcp-e2e", "--sink", sink, "--format", "html")
	if rc != 0 || !strings.Contains(stdout, "compute/stop_instance") || strings.Contains(stdout, secretAPIKey) {
		t.Fatalf("export: %d", rc)
	}
}

// approvalID finds the approval id in a refusal message.
func approvalID(msg string) string {
	_, rest, ok := strings.Cut(msg, "approve request ")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, " ")
	return id
}

// airlock's own MCP server, driven by the SDK's client over streamable
// HTTP and over stdio (`airlock mcp`).
func TestAirlockMCPServer(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	g, _ := mcpGateway(t, iss, &fakeComputeMCP{}, nil, 16<<10)
	agent := iss.Mint(map[string]any{"sub": "alice", "groups": []string{"ai-agents"}})
	endpoint := "http://" + g.a.HTTPAddr + "/mcp"
	c := sdk.NewClient(&sdk.Implementation{Name: "agent", Version: "1"}, nil)
	s, err := c.Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: bearerTransport{agent}}}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, g.a.Logs())
	}
	defer s.Close()
	check := func(s *sdk.ClientSession) {
		t.Helper()
		res, err := s.CallTool(context.Background(), &sdk.CallToolParams{Name: "explain_request", Arguments: map[string]any{
			"server": "compute", "tool": "delete_instance", "arguments": map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"}}})
		if err != nil {
			t.Fatal(err)
		}
		var d mcpserver.Decision
		b, _ := json.Marshal(res.StructuredContent)
		_ = json.Unmarshal(b, &d)
		if d.Decision != "policy_denied" || d.Operation.Method != "compute.instances.delete" || len(d.Rules) == 0 || d.Rules[0] != "gcp-baseline/no-prod-instance-delete" {
			t.Fatalf("explain_request: %s", b)
		}
		res, err = s.CallTool(context.Background(), &sdk.CallToolParams{Name: "request_approval", Arguments: map[string]any{
			"method": "POST", "url": "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/stop", "justification": "hung after the kernel update"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ = json.Marshal(res.StructuredContent)
		_ = json.Unmarshal(b, &d)
		if d.Approval == nil || d.Approval.State != "pending" || !strings.HasPrefix(d.Approval.ApproveURL, "http://"+g.a.HTTPAddr+"/approvals") {
			t.Fatalf("request_approval: %s", b)
		}
	}
	check(s)

	// Over stdio: `airlock mcp` with the agent's token.
	cmd := exec.Command(airlockBin, "mcp", "--server", "http://"+g.a.HTTPAddr)
	cmd.Env = append(cmd.Environ(), "AIRLOCK_TOKEN="+agent)
	stdio, err := c.Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("airlock mcp: %v", err)
	}
	defer stdio.Close()
	check(stdio)

	// Without the agent's token: 401 with the resource metadata.
	resp, err := http.Post(endpoint, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "oauth-protected-resource/mcp") {
		t.Fatalf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	code, prm := g.a.Get(t, "/.well-known/oauth-protected-resource/mcp")
	if code != 200 || !strings.Contains(prm, iss.URL()) {
		t.Fatalf("metadata: %d %s", code, prm)
	}
}

type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}
