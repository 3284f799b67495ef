package recorder_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/mcp"
	"github.com/airlockhq/airlock/recorder"
)

// A tool call is recorded with its tool, masked arguments and masked
// result, cut to the body limit, in the request's session, and verifies.
func TestRecordToolCall(t *testing.T) {
	r := newRecorder(t, recorder.Options{MaxBodyBytes: 64})
	ctx := context.Background()
	meta := handoff.Metadata{RequestID: "r1", SessionID: "mcp~x", Subject: "alice",
		MCP: &handoff.MCPMetadata{Host: "compute.googleapis.com", Server: "compute"}}
	call := handoff.MCPCallMetadata{ID: "7", Method: "tools/call", Name: "stop_instance", GCPMethod: "compute.instances.stop", Arguments: json.RawMessage(`{"project":"acme-prod","zone":"us-east1-b","name":"web-1"}`)}
	res := mcp.ToolResult{ID: "7", Tool: "stop_instance", Result: []byte(`{"content":[{"type":"text","text":"key [MASKED:gcp_api_key] and a long tail of words"}],"isError":true}`), Bytes: 4000, IsError: true}
	if err := r.RecordToolCall(ctx, meta, call, res); err != nil {
		t.Fatal(err)
	}
	sink := r.Sink()
	closeRecorder(t, r)
	rd := recorder.NewReader(sink)
	sess, err := rd.Load(ctx, "mcp~x", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := sess.Events[0]
	c := e.ToolCall
	if e.Kind != recorder.KindToolCall || e.RequestID != "r1" || c == nil || c.Tool != "stop_instance" || c.Server != "compute" || c.GCPMethod != "compute.instances.stop" ||
		c.CallID != "7" || !c.IsError || c.ResultBytes != 4000 || len(c.Result) != 64 || c.Arguments != `{"project":"acme-prod","zone":"us-east1-b","name":"web-1"}` || c.Subject != "alice" {
		t.Fatalf("%+v %+v", e, c)
	}
	if v, err := rd.Verify(ctx, "mcp~x", recorder.VerifyOptions{}); err != nil || !v.OK() {
		t.Fatalf("verify %v %+v", err, v)
	}
}
