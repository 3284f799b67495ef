package mcp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/masking"
)

// A Google API key and a PEM private key as a tool might return them.
const (
	apiKey = "AIzaSyA1234567890abcdefghijklmnopqrstuv"
	pemKey = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\nNMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ\n-----END PRIVATE KEY-----\n"
)

var testEngine = func() *masking.Engine {
	eng, err := masking.NewEngine(nil)
	if err != nil {
		panic(err)
	}
	return eng
}()

func newMasker(t testing.TB, p masking.Profile) *ResponseMasker {
	t.Helper()
	m, err := NewResponseMasker(testEngine, p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func toolResultMessage(t testing.TB, id any, text string, structured any, isError bool) []byte {
	t.Helper()
	result := map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}, "isError": isError}
	if structured != nil {
		result["structuredContent"] = structured
	}
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Secrets are masked in plain text content, in JSON held inside text (by
// field rules too, rooted at that document), and in structuredContent.
func TestToolResultMasked(t *testing.T) {
	p := masking.DefaultProfile().Merge(masking.Profile{Fields: []masking.Field{{Path: "payload.data", Label: "secret_payload"}}})
	m := newMasker(t, p)
	m.Call = func(id string) (CallInfo, bool) {
		return CallInfo{Method: "tools/call", Name: "access_secret"}, id == "1"
	}
	m.ExcerptBytes = 1 << 20
	nested, _ := json.Marshal(map[string]any{"payload": map[string]any{"data": "c2VjcmV0LXBheWxvYWQ="}, "name": "db", "password": "hunter2-but-long", "key": apiKey})
	msg := toolResultMessage(t, 1, string(nested), map[string]any{"payload": map[string]any{"data": "c2VjcmV0LXBheWxvYWQ="}, "note": "key " + apiKey}, false)
	out, err := m.Message(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Result struct {
			Content    []struct{ Text string }
			Structured struct {
				Payload struct{ Data string }
				Note    string
			} `json:"structuredContent"`
		}
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("invalid JSON out: %v\n%s", err, out)
	}
	for _, leak := range []string{apiKey, "c2VjcmV0LXBheWxvYWQ=", "hunter2-but-long"} {
		if bytes.Contains(out, []byte(leak)) {
			t.Errorf("%q reached the agent: %s", leak, out)
		}
	}
	var inner map[string]any
	if err := json.Unmarshal([]byte(v.Result.Content[0].Text), &inner); err != nil {
		t.Fatalf("the text is no longer JSON: %q", v.Result.Content[0].Text)
	}
	// A masked base64 member stays base64, so clients still decode it.
	maskedPayload := func(s string) bool {
		b, err := base64.StdEncoding.DecodeString(s)
		return s == "[MASKED:secret_payload]" || err == nil && string(b) == "[MASKED:secret_payload]"
	}
	payload, _ := inner["payload"].(map[string]any)
	if inner["name"] != "db" || payload == nil || !maskedPayload(fmt.Sprint(payload["data"])) {
		t.Errorf("inner %v", inner)
	}
	if !maskedPayload(v.Result.Structured.Payload.Data) || !strings.Contains(v.Result.Structured.Note, "[MASKED:gcp_api_key]") {
		t.Errorf("structuredContent %+v", v.Result.Structured)
	}
	if len(m.Results) != 1 || m.Results[0].Tool != "access_secret" || m.Results[0].ID != "1" || bytes.Contains(m.Results[0].Result, []byte(apiKey)) || !bytes.HasPrefix(m.Results[0].Result, []byte(`{"content"`)) {
		t.Errorf("results %+v", m.Results)
	}
	// Plain text with a PEM key, an error result, an escaped member name.
	m.Results = nil
	msg = toolResultMessage(t, 1, "the key is:\n"+pemKey, nil, true)
	out, err = m.Message(nil, msg)
	if err != nil || bytes.Contains(out, []byte("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj")) || !json.Valid(out) {
		t.Fatalf("PEM: %v %s", err, out)
	}
	if len(m.Results) != 1 || !m.Results[0].IsError {
		t.Errorf("isError not seen: %+v", m.Results)
	}
	out, err = m.Message(nil, []byte(`{"jsonrpc":"2.0","id":2,"result":{"\u0041IzaSyA1234567890abcdefghijklmnopqrstuv":1}}`))
	if err != nil || bytes.Contains(out, []byte("1234567890abcdefghijklmnopqrstuv")) || !json.Valid(out) {
		t.Errorf("escaped key: %v %s", err, out)
	}
	// A JSON-RPC error and a notification are masked as documents.
	out, _ = m.Message(nil, []byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"bad key `+apiKey+`"}}`))
	if bytes.Contains(out, []byte(apiKey)) {
		t.Errorf("error: %s", out)
	}
	out, _ = m.Message(nil, []byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"message":"`+apiKey+`"}}`))
	if bytes.Contains(out, []byte(apiKey)) {
		t.Errorf("notification: %s", out)
	}
	// A batch of responses.
	out, _ = m.Message(nil, []byte(`[`+string(toolResultMessage(t, 1, apiKey, nil, false))+`,{"jsonrpc":"2.0","id":2,"result":{}}]`))
	if bytes.Contains(out, []byte(apiKey)) || !json.Valid(out) {
		t.Errorf("batch: %s", out)
	}
	// Not JSON at all: masked as text.
	out, _ = m.Message(nil, []byte(`oops `+apiKey))
	if bytes.Contains(out, []byte(apiKey)) {
		t.Errorf("text: %s", out)
	}
}

// An SSE response is masked whatever bytes its events are split at.
func TestSSESplitAtEveryByte(t *testing.T) {
	nested, _ := json.Marshal(map[string]any{"privateKeyData": "ZXlKaGJHY2lPaUpTVXpJMU5pSjk=", "note": "key=" + apiKey})
	stream := "id: e1\r\nevent: message\r\ndata: " + string(toolResultMessage(t, 5, string(nested), nil, false)) + "\r\n\r\n" +
		": keep-alive\n\n" +
		"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\n" +
		"data: \"params\":{\"progress\":1,\"message\":\"" + apiKey + "\"}}\n\n" +
		"data: " + string(toolResultMessage(t, 6, pemKey, nil, false)) + "\n\n"
	whole := runSSE(t, []string{stream}, 0)
	for cut := 1; cut < len(stream); cut++ {
		got := runSSE(t, []string{stream[:cut], stream[cut:]}, 0)
		if got != whole {
			t.Fatalf("split at %d:\n%s\n---\n%s", cut, got, whole)
		}
	}
	// Byte by byte.
	parts := make([]string, len(stream))
	for i := range stream {
		parts[i] = stream[i : i+1]
	}
	if got := runSSE(t, parts, 0); got != whole {
		t.Fatalf("byte by byte:\n%s\n---\n%s", got, whole)
	}
	for _, leak := range []string{apiKey, "ZXlKaGJHY2lPaUpTVXpJMU5pSjk=", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"} {
		if strings.Contains(whole, leak) {
			t.Errorf("%q reached the agent:\n%s", leak, whole)
		}
	}
	// Each event is still an event whose data is one JSON-RPC message.
	events := strings.Split(strings.TrimSuffix(whole, "\n\n"), "\n\n")
	if len(events) != 4 {
		t.Fatalf("%d events:\n%s", len(events), whole)
	}
	for _, ev := range events {
		var data []string
		for _, line := range strings.Split(ev, "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				data = append(data, d)
			}
		}
		if len(data) > 0 && !json.Valid([]byte(strings.Join(data, "\n"))) {
			t.Errorf("event data is not JSON: %q", ev)
		}
	}
	if !strings.HasPrefix(whole, "id: e1\nevent: message\ndata: {") || !strings.Contains(whole, ": keep-alive\n\n") {
		t.Errorf("fields lost:\n%s", whole)
	}
}

func runSSE(t *testing.T, parts []string, limit int) string {
	t.Helper()
	m := newMasker(t, masking.DefaultProfile())
	m.Call = func(id string) (CallInfo, bool) { return CallInfo{Method: "tools/call", Name: "x"}, true }
	if limit == 0 {
		limit = 1 << 20
	}
	s := NewSSE(m, limit)
	var out []byte
	for _, p := range parts {
		var err error
		if out, err = s.Write(out, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := s.Close(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// An event larger than the limit ends the response (fail closed).
func TestSSEEventTooLarge(t *testing.T) {
	m := newMasker(t, masking.DefaultProfile())
	s := NewSSE(m, 64)
	_, err := s.Write(nil, []byte("data: "+strings.Repeat("x", 100)))
	if err != ErrMessageTooLarge {
		t.Fatalf("%v", err)
	}
}

// tools/list results teach the registry and drop what the filter refuses.
func TestToolsListFilteredAndLearned(t *testing.T) {
	m := newMasker(t, masking.DefaultProfile())
	m.Call = func(id string) (CallInfo, bool) { return CallInfo{Method: "tools/list"}, true }
	var learned []*Tool
	m.Learn = func(ts []*Tool) { learned = ts }
	m.Filter = func(ts []*Tool) []bool {
		keep := make([]bool, len(ts))
		for i, tl := range ts {
			keep[i] = tl.Name != "delete_instance"
		}
		return keep
	}
	msg := `{"jsonrpc":"2.0","id":1,"result":{"tools":[
	  {"name":"list_instances","annotations":{"readOnlyHint":true},"inputSchema":{"type":"object","properties":{"project":{"type":"string","x-mcp-header":"Project"}}}},
	  {"name":"delete_instance","annotations":{"destructiveHint":true},"inputSchema":{"type":"object"}},
	  {"name":"bad","inputSchema":{"type":"object","properties":{"a":{"type":"object","x-mcp-header":"A"}}}}],"nextCursor":"c2"}}`
	out, err := m.Message(nil, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Result struct {
			Tools []struct{ Name string }
			Next  string `json:"nextCursor"`
		}
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(v.Result.Tools) != 2 || v.Result.Tools[0].Name != "list_instances" || v.Result.Tools[1].Name != "bad" || v.Result.Next != "c2" || m.Removed() != 1 {
		t.Fatalf("%s", out)
	}
	if len(learned) != 2 || learned[0].Name != "list_instances" || learned[0].Headers[0].Header != "Project" || !learned[0].Hints.IsReadOnly() {
		t.Fatalf("learned %+v", learned)
	}
}

func TestDataLines(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"a", "id: 1\ndata: a"},
		{"a\nb", "id: 1\ndata: a\ndata: b"},
		{"a\n\nbc\n", "id: 1\ndata: a\ndata: \ndata: bc\ndata: "},
	} {
		dst := []byte("id: 1\ndata: ")
		if got := string(dataLines(append(dst, tc.body...), len(dst))); got != tc.want {
			t.Errorf("%q: %q", tc.body, got)
		}
	}
}

// appendJSONString agrees with encoding/json on what the string holds.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "\n\r\t\x00\x1f", "héllo wörld ✓ 😀", "bad \xff\xfe utf8", strings.Repeat("é", 5000) + "\xe2\x80", strings.Repeat("x\"", 3000)} {
		got := appendJSONString(nil, []byte(s))
		var back, want string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: %s is not a JSON string: %v", s, got, err)
		}
		ref, _ := json.Marshal(s)
		_ = json.Unmarshal(ref, &want)
		if back != want {
			t.Errorf("%.40q: round trip %.40q, encoding/json %.40q", s, back, want)
		}
	}
}
