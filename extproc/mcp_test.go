package extproc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/airlockhq/airlock/extproc"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/mcp"
	"github.com/airlockhq/airlock/test/standin"
)

// toolsRecorder records tool calls (and nothing else).
type toolsRecorder struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

func (r *toolsRecorder) RecordRequestHeaders(context.Context, handoff.Metadata, map[string]string) error {
	return nil
}

func (r *toolsRecorder) RecordResponse(context.Context, handoff.Metadata, int, map[string]string, []byte, int64) error {
	return nil
}

func (r *toolsRecorder) RecordToolCall(_ context.Context, _ handoff.Metadata, call handoff.MCPCallMetadata, res mcp.ToolResult) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call.Name+" "+string(call.Arguments)+" -> "+string(res.Result))
	return r.fail
}

// listPolicy keeps the tools whose name does not start with delete_.
type listPolicy struct {
	mu      sync.Mutex
	learned []string
}

func (p *listPolicy) Callable(_ context.Context, meta handoff.Metadata, tools []*mcp.Tool) []bool {
	keep := make([]bool, len(tools))
	for i, t := range tools {
		keep[i] = !strings.HasPrefix(t.Name, "delete_") && meta.MCP.Caller.Subject == "agent-1"
	}
	return keep
}

func (p *listPolicy) Learn(host string, tools []*mcp.Tool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range tools {
		p.learned = append(p.learned, host+"/"+t.Name)
	}
}

func mcpMetadata(t testing.TB, calls []handoff.MCPCallMetadata, caller *handoff.MCPCaller) handoff.Metadata {
	t.Helper()
	return handoff.Metadata{RequestID: "r1", SessionID: "s1", Subject: "agent-1", GCPMethod: "compute.instances.list",
		MCP: &handoff.MCPMetadata{Host: "compute.googleapis.com", Path: "/mcp", Server: "compute", Calls: calls, Caller: caller}}
}

func toolResult(id int, text string) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}, "isError": false}})
	return string(b)
}

// An SSE tool result is masked at every chunk size, JSON inside its text
// by field rules too, and recorded as a tool call before it reaches the
// agent.
func TestMCPSSEMaskedAndRecorded(t *testing.T) {
	rec := &toolsRecorder{}
	conn := startServer(t, extproc.Options{Recorder: rec})
	inner, _ := json.Marshal(map[string]any{"instances": []any{map[string]any{"name": "web-1", "metadata": map[string]any{"items": []any{map[string]any{"key": "startup-script", "value": "export KEY=" + testAPIKey}}}}}, "rootPassword": "s3cr3t-Pa55word"})
	body := "event: message\ndata: " + `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}` + "\n\n" +
		"event: message\ndata: " + toolResult(7, string(inner)) + "\n\n"
	md := mcpMetadata(t, []handoff.MCPCallMetadata{{ID: "7", Method: "tools/call", Name: "list_instances", GCPMethod: "compute.instances.list", Arguments: json.RawMessage(`{"project":"acme-dev","zone":"us-east1-b"}`)}}, nil)
	md.Masking = []masking.Rule{{Policy: "gcp-baseline", Name: "instance-startup-scripts", Fields: []string{`**.metadata.items[?key=="startup-script"].value`}}}
	var first string
	for _, chunk := range []int{1, 3, 17, 1000, 1 << 20} {
		rec.calls = nil
		up := &upstream{status: 200, header: map[string]string{"Content-Type": "text/event-stream"}, body: []byte(body)}
		res := standin.NewExtProcFilter(conn, config(chunk)).Do(context.Background(), mcpRequest(t), metadata(t, md), up)
		if res.Status != 200 || res.Reset || res.LocalReply {
			t.Fatalf("chunk %d: %d reset=%v %q %s", chunk, res.Status, res.Reset, res.Details, res.Body)
		}
		for _, leak := range []string{testAPIKey, "s3cr3t-Pa55word", "export KEY"} {
			if bytes.Contains(res.Body, []byte(leak)) {
				t.Fatalf("chunk %d: %q reached the agent:\n%s", chunk, leak, res.Body)
			}
		}
		if !bytes.Contains(res.Body, []byte(`[MASKED:instance-startup-scripts]`)) {
			t.Fatalf("chunk %d: the field rule did not apply inside the text:\n%s", chunk, res.Body)
		}
		if first == "" {
			first = string(res.Body)
		} else if string(res.Body) != first {
			t.Fatalf("chunk %d gives another body:\n%s\n---\n%s", chunk, res.Body, first)
		}
		if len(rec.calls) != 1 || !strings.HasPrefix(rec.calls[0], `list_instances {"project":"acme-dev","zone":"us-east1-b"} -> {"content"`) || strings.Contains(rec.calls[0], testAPIKey) {
			t.Fatalf("chunk %d: recorded %v", chunk, rec.calls)
		}
	}
	// A tool call that cannot be recorded does not reach the agent.
	rec.fail = errors.New("spool full")
	up := &upstream{status: 200, header: map[string]string{"Content-Type": "text/event-stream"}, body: []byte(body)}
	res := standin.NewExtProcFilter(conn, config(1<<20)).Do(context.Background(), mcpRequest(t), metadata(t, md), up)
	if !res.Reset && res.Status == 200 && bytes.Contains(res.Body, []byte("web-1")) {
		t.Fatalf("an unrecorded tool result reached the agent: %d %s", res.Status, res.Body)
	}
}

func mcpRequest(t testing.TB) *http.Request {
	t.Helper()
	r := httptest.NewRequest("POST", "https://compute.googleapis.com/mcp", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// A JSON tools/list result teaches the server's tools and loses those the
// caller could never call; without the caller nothing is removed.
func TestMCPToolsListFiltered(t *testing.T) {
	p := &listPolicy{}
	conn := startServer(t, extproc.Options{MCP: p})
	list := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"list_instances","annotations":{"readOnlyHint":true}},{"name":"delete_instance"},{"name":"stop_instance","description":"key ` + testAPIKey + `"}]}}`
	call := []handoff.MCPCallMetadata{{ID: "1", Method: "tools/list"}}
	up := &upstream{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: []byte(list)}
	res := standin.NewExtProcFilter(conn, config(10)).Do(context.Background(), mcpRequest(t), metadata(t, mcpMetadata(t, call, &handoff.MCPCaller{Subject: "agent-1"})), up)
	if res.Status != 200 || bytes.Contains(res.Body, []byte("delete_instance")) || !bytes.Contains(res.Body, []byte("stop_instance")) || bytes.Contains(res.Body, []byte(testAPIKey)) {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	if !json.Valid(res.Body) {
		t.Fatalf("not JSON: %s", res.Body)
	}
	if len(p.learned) != 3 || p.learned[0] != "compute.googleapis.com/list_instances" {
		t.Fatalf("learned %v", p.learned)
	}
	res = standin.NewExtProcFilter(conn, config(10)).Do(context.Background(), mcpRequest(t), metadata(t, mcpMetadata(t, call, nil)), up)
	if !bytes.Contains(res.Body, []byte("delete_instance")) {
		t.Fatalf("filtered without a caller: %s", res.Body)
	}
}

// A message over mcp.max_message_bytes never reaches the agent.
func TestMCPMessageTooLarge(t *testing.T) {
	conn := startServer(t, extproc.Options{MCPMaxMessageBytes: 1024})
	md := metadata(t, mcpMetadata(t, []handoff.MCPCallMetadata{{ID: "1", Method: "tools/call", Name: "x"}}, nil))
	big := toolResult(1, strings.Repeat("a", 4096)+testAPIKey)
	for _, ct := range []string{"application/json", "text/event-stream"} {
		b := big
		if ct == "text/event-stream" {
			b = "data: " + big + "\n\n"
		}
		up := &upstream{status: 200, header: map[string]string{"Content-Type": ct}, body: []byte(b)}
		res := standin.NewExtProcFilter(conn, config(512)).Do(context.Background(), mcpRequest(t), md, up)
		if res.Status == 200 && !res.Reset {
			t.Fatalf("%s: passed: %s", ct, res.Body)
		}
		if bytes.Contains(res.Body, []byte(testAPIKey)) {
			t.Fatalf("%s: leaked", ct)
		}
	}
}
