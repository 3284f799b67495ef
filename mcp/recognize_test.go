package mcp

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestEndpoints(t *testing.T) {
	for _, tc := range []struct {
		host, path string
		want       bool
	}{
		{"compute.googleapis.com", "/mcp", true},
		{"container.googleapis.com", "/mcp/read-only", true},
		{"alloydb.us-east1.rep.googleapis.com", "/mcp", true},
		{"compute.googleapis.com", "/mcpx", false},
		{"compute.googleapis.com", "/compute/v1/mcp", false},
		{"example.com", "/mcp", false},
		{".googleapis.com", "/mcp", false},
	} {
		if got := IsEndpoint(tc.host, tc.path); got != tc.want {
			t.Errorf("IsEndpoint(%q, %q) = %v", tc.host, tc.path, got)
		}
	}
}

// Every method of the specification is recognised; anything else, and
// every message JSON-RPC or MCP does not allow, is refused with the code a
// client understands.
func TestMessages(t *testing.T) {
	r := newTestRecognizer(t)
	ok := []struct {
		body any
		kind Kind
	}{
		{map[string]any{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": map[string]any{"protocolVersion": "2025-11-25"}}, Protocol},
		{map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"}, Protocol},
		{map[string]any{"jsonrpc": "2.0", "id": "a", "method": "ping"}, Protocol},
		{map[string]any{"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": map[string]any{"cursor": "x"}}, Protocol},
		{map[string]any{"jsonrpc": "2.0", "id": 3, "method": "resources/list"}, Protocol},
		{map[string]any{"jsonrpc": "2.0", "id": 4, "method": "resources/read", "params": map[string]any{"uri": "file:///x"}}, ResourceRead},
		{map[string]any{"jsonrpc": "2.0", "id": 5, "method": "prompts/list"}, Protocol},
		{map[string]any{"jsonrpc": "2.0", "id": 6, "method": "prompts/get", "params": map[string]any{"name": "p", "arguments": map[string]any{"a": "b"}}}, PromptGet},
		{map[string]any{"jsonrpc": "2.0", "id": 7, "method": "server/discover"}, Protocol},
		{map[string]any{"jsonrpc": "2.0", "id": 8, "result": map[string]any{}}, ClientResponse},
		{map[string]any{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": map[string]any{"requestId": 3}}, Protocol},
	}
	for _, tc := range ok {
		req, err := r.Recognize(post(t, "compute.googleapis.com", tc.body, nil))
		if err != nil {
			t.Errorf("%v: %v", tc.body, err)
			continue
		}
		if c := req.Calls[0]; c.Kind != tc.kind || !c.ReadOnly || c.Destructive {
			t.Errorf("%v: kind %v readonly %v", tc.body, c.Kind, c.ReadOnly)
		}
	}
	bad := []struct {
		body any
		code int
		msg  string
	}{
		{map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/delete"}, CodeMethodNotFound, "does not know the MCP method"},
		{map[string]any{"jsonrpc": "2.0", "method": "notifications/whatever"}, CodeMethodNotFound, "does not know"},
		{map[string]any{"jsonrpc": "1.0", "id": 1, "method": "ping"}, CodeInvalidRequest, `"jsonrpc": "2.0"`},
		{map[string]any{"jsonrpc": "2.0", "id": nil, "method": "ping"}, CodeInvalidRequest, "never allows null"},
		{map[string]any{"jsonrpc": "2.0", "id": 1.5, "method": "ping"}, CodeInvalidRequest, "string or an integer"},
		{map[string]any{"jsonrpc": "2.0", "method": "tools/call", "params": map[string]any{"name": "x"}}, CodeInvalidRequest, "needs an id"},
		{map[string]any{"jsonrpc": "2.0", "id": 1, "method": "notifications/initialized"}, CodeInvalidRequest, "has no id"},
		{map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{}}, CodeInvalidParams, "params.name"},
		{map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": []any{"x"}}, CodeInvalidParams, "must be an object"},
		{map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{"name": "x", "arguments": "y"}}, CodeInvalidParams, "arguments"},
		{map[string]any{"jsonrpc": "2.0", "id": 1, "method": "ping", "sneaky": true}, CodeInvalidRequest, "no member"},
		{map[string]any{"jsonrpc": "2.0", "id": 1, "method": "ping", "result": 1}, CodeInvalidRequest, "not both"},
		{map[string]any{"jsonrpc": "2.0", "id": 1}, CodeInvalidRequest, "needs a method"},
		{[]any{}, CodeInvalidRequest, "empty"},
		{"x", CodeInvalidRequest, "must be"},
		{[]any{map[string]any{"jsonrpc": "2.0", "id": 1, "method": "ping"}, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "ping"}}, CodeInvalidRequest, "used by two"},
	}
	for _, tc := range bad {
		_, err := r.Recognize(post(t, "compute.googleapis.com", tc.body, nil))
		re, ok := err.(*RequestError)
		if !ok || re.Code != tc.code || !strings.Contains(re.Msg, tc.msg) {
			t.Errorf("%v: got %v, want code %d with %q", tc.body, err, tc.code, tc.msg)
		}
	}
	big := make([]any, MaxBatch+1)
	for i := range big {
		big[i] = map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"}
	}
	if _, err := r.Recognize(post(t, "compute.googleapis.com", big, nil)); err == nil {
		t.Error("a batch over MaxBatch was accepted")
	}
	// A body gcp could not read is refused as a parse error.
	if _, err := r.Recognize(HTTPRequest{Method: "POST", Host: "compute.googleapis.com", Path: "/mcp", BodyUnreadable: "it is not valid JSON"}); err == nil || err.(*RequestError).Code != CodeParseError {
		t.Errorf("unreadable body: %v", err)
	}
	// GET and DELETE are transport operations; other verbs are refused.
	for _, m := range []string{"GET", "DELETE"} {
		req, err := r.Recognize(HTTPRequest{Method: m, Host: "compute.googleapis.com", Path: "/mcp"})
		if err != nil || req.Calls[0].Kind != Transport {
			t.Errorf("%s: %v", m, err)
		}
	}
	if _, err := r.Recognize(HTTPRequest{Method: "PUT", Host: "compute.googleapis.com", Path: "/mcp"}); err == nil {
		t.Error("PUT accepted")
	}
}

func TestBatchDecidedPerCall(t *testing.T) {
	r := newTestRecognizer(t)
	body := []any{
		map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{"name": "list_instances", "arguments": map[string]any{"project": "acme-dev", "zone": "us-east1-b"}}},
		map[string]any{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": map[string]any{"name": "delete_instance", "arguments": map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"}}},
	}
	req, err := r.Recognize(post(t, "compute.googleapis.com", body, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !req.Batch || len(req.Calls) != 2 || req.Calls[1].REST.Operation.Method != "compute.instances.delete" || req.Calls[0].ID != "1" {
		t.Fatalf("%+v", req)
	}
}

func b64(s string) string {
	return base64Prefix + base64.StdEncoding.EncodeToString([]byte(s)) + base64Suffix
}

// Headers and body must agree (SEP-2243).
func TestHeadersAgreeWithBody(t *testing.T) {
	r := newTestRecognizer(t)
	f, tr := false, true
	r.Registry().Learn("compute.googleapis.com", []*Tool{{Name: "list_instances", Source: "server", HeadersKnown: true, Hints: Hints{ReadOnly: &tr, Destructive: &f},
		Headers: []HeaderBinding{{Path: []string{"project"}, Header: "Project"}, {Path: []string{"zone"}, Header: "Zone"}}}})
	args := map[string]any{"project": "acme-dev", "zone": "us-east1-b"}
	v26 := map[string]string{"mcp-protocol-version": "2026-07-28"}
	with := func(base map[string]string, kv ...string) map[string]string {
		h := map[string]string{}
		for k, v := range base {
			h[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	good := []map[string]string{
		{},
		{"mcp-method": "tools/call"},
		{"mcp-method": " tools/call ", "mcp-name": "list_instances"},
		with(v26, "mcp-method", "tools/call", "mcp-name", "list_instances", "mcp-param-project", "acme-dev", "mcp-param-zone", "us-east1-b"),
		with(v26, "mcp-method", "tools/call", "mcp-name", b64("list_instances"), "mcp-param-project", b64("acme-dev"), "mcp-param-zone", "us-east1-b"),
	}
	for _, h := range good {
		if _, err := r.Recognize(toolCall(t, "compute.googleapis.com", "list_instances", args, h)); err != nil {
			t.Errorf("%v: %v", h, err)
		}
	}
	bad := []struct {
		h   map[string]string
		msg string
	}{
		{map[string]string{"mcp-method": "tools/list"}, "Mcp-Method header (tools/list) does not match"},
		{map[string]string{"mcp-method": "TOOLS/CALL"}, "does not match"},
		{map[string]string{"mcp-name": "delete_instance"}, "Mcp-Name header (delete_instance) does not match"},
		{map[string]string{"mcp-name": b64("delete_instance")}, "does not match"},
		{map[string]string{"mcp-name": "=?base64?!!!?="}, "not valid base64"},
		{with(v26, "mcp-name", "list_instances", "mcp-param-project", "acme-dev", "mcp-param-zone", "us-east1-b"), "requires the Mcp-Method header"},
		{with(v26, "mcp-method", "tools/call", "mcp-param-project", "acme-dev", "mcp-param-zone", "us-east1-b"), "requires the Mcp-Name header"},
		{with(v26, "mcp-method", "tools/call", "mcp-name", "list_instances", "mcp-param-project", "acme-prod", "mcp-param-zone", "us-east1-b"), "mcp-param-project header (acme-prod) does not match"},
		{with(v26, "mcp-method", "tools/call", "mcp-name", "list_instances", "mcp-param-project", "acme-dev"), "must be mirrored in the mcp-param-zone header"},
		{with(v26, "mcp-method", "tools/call", "mcp-name", "list_instances", "mcp-param-project", "acme-dev", "mcp-param-zone", "us-east1-b", "mcp-param-region", "x"), "declares no x-mcp-header"},
		{map[string]string{"mcp-param-zone": "us-east1-b\x01"}, "control or non-ASCII"},
	}
	for _, tc := range bad {
		_, err := r.Recognize(toolCall(t, "compute.googleapis.com", "list_instances", args, tc.h))
		re, ok := err.(*RequestError)
		if !ok || re.Code != CodeHeaderMismatch || !strings.Contains(re.Msg, tc.msg) {
			t.Errorf("%v: got %v, want a header mismatch with %q", tc.h, err, tc.msg)
		}
	}
	// An argument mirrored that is absent must not have a header.
	_, err := r.Recognize(toolCall(t, "compute.googleapis.com", "list_instances", map[string]any{"project": "acme-dev"}, map[string]string{"mcp-param-zone": "us-east1-b", "mcp-param-project": "acme-dev"}))
	if err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("header for an absent argument: %v", err)
	}
	// A tool whose declarations airlock has not seen: each header must be
	// the value of some argument.
	if _, err := r.Recognize(toolCall(t, "compute.googleapis.com", "delete_instance", map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"}, map[string]string{"mcp-param-project": "acme-prod"})); err != nil {
		t.Errorf("unknown declarations, matching value: %v", err)
	}
	if _, err := r.Recognize(toolCall(t, "compute.googleapis.com", "delete_instance", map[string]any{"project": "acme-prod", "zone": "us-east1-b", "name": "web-1"}, map[string]string{"mcp-param-project": "acme-dev"})); err == nil {
		t.Error("unknown declarations, a header matching no argument was accepted")
	}
	// Integers compare as numbers.
	r.Registry().Learn("bigquery.googleapis.com", []*Tool{{Name: "q", HeadersKnown: true, Headers: []HeaderBinding{{Path: []string{"limit"}, Header: "Limit"}}}})
	if _, err := r.Recognize(toolCall(t, "bigquery.googleapis.com", "q", map[string]any{"limit": 42}, map[string]string{"mcp-param-limit": "42.0"})); err != nil {
		t.Errorf("42.0 vs 42: %v", err)
	}
	// The body's protocol version must equal the header's.
	body := map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": map[string]any{"_meta": map[string]any{metaVersionKey: "2025-11-25"}}}
	if _, err := r.Recognize(post(t, "compute.googleapis.com", body, with(v26, "mcp-method", "tools/list"))); err == nil || !strings.Contains(err.Error(), "_meta") {
		t.Errorf("version mismatch: %v", err)
	}
	// Batches carry no mirrored headers, and none exist in 2026-07-28.
	batch := []any{map[string]any{"jsonrpc": "2.0", "id": 1, "method": "ping"}}
	if _, err := r.Recognize(post(t, "compute.googleapis.com", batch, map[string]string{"mcp-method": "ping"})); err == nil {
		t.Error("a batch with Mcp-Method was accepted")
	}
	if _, err := r.Recognize(post(t, "compute.googleapis.com", batch, v26)); err == nil {
		t.Error("a batch in 2026-07-28 was accepted")
	}
	// Mcp-Name on a method that names nothing, Mcp-Param on another method.
	if _, err := r.Recognize(post(t, "compute.googleapis.com", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, map[string]string{"mcp-name": "x"})); err == nil {
		t.Error("Mcp-Name on tools/list was accepted")
	}
}

func TestParseToolLearnsHeaders(t *testing.T) {
	raw := json.RawMessage(`{"name":"execute_sql","annotations":{"readOnlyHint":false,"destructiveHint":true},
	  "inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},
	    "opts":{"type":"object","properties":{"project":{"type":"string","x-mcp-header":"Project"}}},"query":{"type":"string"}}}}`)
	tool, err := ParseTool(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !tool.HeadersKnown || len(tool.Headers) != 2 || tool.Headers[0].Header != "Project" || strings.Join(tool.Headers[0].Path, ".") != "opts.project" || !tool.Hints.IsDestructive() {
		t.Fatalf("%+v", tool)
	}
	for _, bad := range []string{
		`{"name":"x","inputSchema":{"properties":{"a":{"type":"number","x-mcp-header":"A"}}}}`,
		`{"name":"x","inputSchema":{"properties":{"a":{"type":"string","x-mcp-header":"A B"}}}}`,
		`{"name":"x","inputSchema":{"properties":{"a":{"type":"string","x-mcp-header":"A"},"b":{"type":"string","x-mcp-header":"a"}}}}`,
		`{"inputSchema":{}}`,
	} {
		if _, err := ParseTool(json.RawMessage(bad)); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}
