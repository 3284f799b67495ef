package recorder

import (
	"context"

	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/mcp"
)

// RecordToolCall records one MCP tool call on the response path: the call
// as ext_authz passed it on (tool, masked arguments) and its result as
// ext_proc masked it; nil once the event is durable in the spool. It
// implements the ext_proc server's ToolCallRecorder, which fails the
// response closed on an error.
func (r *Recorder) RecordToolCall(ctx context.Context, meta handoff.Metadata, call handoff.MCPCallMetadata, res mcp.ToolResult) error {
	c := ToolCallEvent{
		Subject:     meta.Subject,
		Tool:        res.Tool,
		CallID:      res.ID,
		GCPMethod:   call.GCPMethod,
		Arguments:   excerpt(call.Arguments, r.opts.MaxBodyBytes),
		Result:      excerpt(res.Result, r.opts.MaxBodyBytes),
		ResultBytes: int64(res.Bytes),
		IsError:     res.IsError,
	}
	if m := meta.MCP; m != nil {
		c.Server, c.Host = m.Server, m.Host
	}
	if c.Tool == "" {
		c.Tool = call.Name
	}
	// Like a response: written before the result reaches the agent.
	err := r.record(ctx, meta.SessionID, &Event{Kind: KindToolCall, RequestID: meta.RequestID, ToolCall: &c}, waitWritten)
	if err != nil {
		r.failed(KindToolCall, meta.RequestID, err)
	}
	return err
}
