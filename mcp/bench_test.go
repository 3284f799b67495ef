package mcp

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/masking/maskingtest"
	"github.com/airlockhq/airlock/test/cputime"
)

// sseToolResult is an SSE response carrying one tools/call result whose
// text is 1 MiB of GCP-shaped JSON with secrets planted (the masking
// benchmark's corpus), as Google's servers return JSON inside text, and its
// structuredContent.
func sseToolResult(b *testing.B) []byte {
	b.Helper()
	doc := maskingtest.InstanceList(1<<20, 9)
	var structured any
	if err := json.Unmarshal(doc, &structured); err != nil {
		b.Fatal(err)
	}
	msg, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "result": map[string]any{
		"content": []any{map[string]any{"type": "text", "text": string(doc)}}, "isError": false}})
	if err != nil {
		b.Fatal(err)
	}
	return append(append([]byte("event: message\ndata: "), msg...), "\n\n"...)
}

// BenchmarkSSEMask is the SSE masking of a tool result in 64 KiB chunks,
// default profile: the bytes/s are per core.
func BenchmarkSSEMask(b *testing.B) {
	stream := sseToolResult(b)
	eng, err := masking.NewEngine(nil)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 0, len(stream)+len(stream)/4)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	cpu := cputime.Process()
	for b.Loop() {
		m, err := NewResponseMasker(eng, masking.DefaultProfile())
		if err != nil {
			b.Fatal(err)
		}
		m.Call = func(string) (CallInfo, bool) { return CallInfo{Method: "tools/call", Name: "list_instances"}, true }
		s := NewSSE(m, 64<<20)
		out = out[:0]
		for p := stream; len(p) > 0; {
			n := min(len(p), 64<<10)
			if out, err = s.Write(out, p[:n]); err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
		if out, err = s.Close(out); err != nil {
			b.Fatal(err)
		}
		s.Release()
	}
	// Bytes per second of this process's CPU time: per core, whatever
	// else the machine runs.
	if used := (cputime.Process() - cpu).Seconds(); used > 0 {
		b.ReportMetric(float64(len(stream))*float64(b.N)/used/1e6, "cpu-MB/s")
	}
}

// BenchmarkJSONMaskBaseline is the same document masked as one JSON body
// by the masking package: the ceiling SSE masking is measured against.
func BenchmarkJSONMaskBaseline(b *testing.B) {
	doc := maskingtest.InstanceList(1<<20, 9)
	eng, err := masking.NewEngine(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := eng.Mask(masking.DefaultProfile(), masking.JSON, doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecognizeToolCall is the MCP part of a Check on a tools/call
// with 4 KiB of arguments: reading the message, mapping the tool to its
// REST twin, checking the headers (the JSON is parsed by gcp before).
func BenchmarkRecognizeToolCall(b *testing.B) {
	r := newTestRecognizer(b)
	args := map[string]any{"project": "acme-dev", "zone": "us-east1-b", "name": "web-2"}
	for i := 0; len(args) < 60; i++ {
		args[fmt.Sprintf("label_%d", i)] = "a value of sixty-four bytes, more or less, for the benchmark"
	}
	req := toolCall(b, "compute.googleapis.com", "create_instance", args, map[string]string{"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "create_instance"})
	b.SetBytes(int64(len(req.RawBody)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Recognize(req); err != nil {
			b.Fatal(err)
		}
	}
}
