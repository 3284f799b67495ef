package mcp

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/airlockhq/airlock/masking"
)

// FuzzMCPResponse: whatever a server sends, masking never panics, a JSON
// message stays JSON, and a planted key never comes out, whole or split
// across chunks.
func FuzzMCPResponse(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"{\"a\":\"b\"}"}],"structuredContent":{"k":1}}}`), uint8(3))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":"x","error":{"code":1,"message":"m"}}]`), uint8(1))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"t","inputSchema":{"properties":{"p":{"type":"string","x-mcp-header":"P"}}}}]}}`), uint8(9))
	f.Add([]byte("not json at all"), uint8(2))
	f.Fuzz(func(t *testing.T, msg []byte, cut uint8) {
		m := newMasker(t, masking.DefaultProfile())
		m.Call = func(string) (CallInfo, bool) { return CallInfo{Method: "tools/call", Name: "x"}, true }
		m.ExcerptBytes = 64
		out, err := m.Message(nil, msg)
		if err != nil {
			return
		}
		if json.Valid(msg) && !json.Valid(out) {
			t.Fatalf("valid JSON in, invalid out:\n%s\n%s", msg, out)
		}
		// The same message with a key planted in a text, as SSE cut in two.
		planted, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "result": map[string]any{"content": []any{map[string]any{"type": "text", "text": string(msg) + " " + apiKey}}}})
		stream := append(append([]byte("data: "), planted...), "\n\n"...)
		i := int(cut) % len(stream)
		s := NewSSE(newMasker(t, masking.DefaultProfile()), 1<<20)
		o, err := s.Write(nil, stream[:i])
		if err == nil {
			o, err = s.Write(o, stream[i:])
		}
		if err == nil {
			o, err = s.Close(o)
		}
		if err == nil && bytes.Contains(o, []byte(apiKey)) {
			t.Fatalf("the key came out:\n%s", o)
		}
	})
}

// FuzzMCPRequest: recognising any JSON body never panics.
func FuzzMCPRequest(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_instance","arguments":{"project":"p","zone":"z","name":"n"}}}`), "tools/call", "delete_instance")
	f.Add([]byte(`[{"jsonrpc":"2.0","method":"notifications/initialized"}]`), "", "")
	r := newTestRecognizer(f)
	f.Fuzz(func(t *testing.T, body []byte, method, name string) {
		var v any
		if json.Unmarshal(body, &v) != nil {
			return
		}
		h := map[string]string{"mcp-method": method, "mcp-name": name, "mcp-protocol-version": "2026-07-28"}
		_, _ = r.Recognize(HTTPRequest{Method: "POST", Host: "compute.googleapis.com", Path: "/mcp", Headers: h, Body: v, RawBody: body})
	})
}
