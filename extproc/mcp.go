package extproc

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"strings"

	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/mcp"
)

// MCP responses. When ext_authz allowed an MCP request (its metadata
// carries "mcp"), a JSON or text/event-stream response is read message by
// message (mcp.ResponseMasker): each JSON-RPC message is masked with the
// request's profile, JSON inside a tool result's text as a document of its
// own; a tools/list result teaches the server's tools to Options.MCP and,
// with the caller in the metadata (mcp.filter_tools), loses the tools the
// caller could never call; each tool call's result is recorded as a tool
// call (Options.Recorder, when it records tool calls) before its bytes go
// to the agent. An SSE event is held until it is complete; a JSON body
// until its end. Either is bounded by Options.MCPMaxMessageBytes; a larger
// one, or one that cannot be masked, ends the response in an error.

// MCPPolicy decides which tools of a tools/list result the caller could
// ever call, and learns the tools a server declares.
type MCPPolicy interface {
	// Callable reports, for each tool, whether the caller of the metadata
	// could call it under the policies in force.
	Callable(ctx context.Context, meta handoff.Metadata, tools []*mcp.Tool) []bool
	// Learn records the tools a server at host declared.
	Learn(host string, tools []*mcp.Tool)
}

// ToolCallRecorder records tool calls; the ext_proc server uses it when
// Options.Recorder implements it.
type ToolCallRecorder interface {
	// RecordToolCall records one tool call: the call as ext_authz passed it
	// on (tool, masked arguments) and its masked result. An error fails the
	// response closed.
	RecordToolCall(ctx context.Context, meta handoff.Metadata, call handoff.MCPCallMetadata, result mcp.ToolResult) error
}

// defaultMCPMaxMessageBytes bounds one JSON-RPC message of a response.
const defaultMCPMaxMessageBytes = 16 << 20

// mcpStream is the MCP state of one response.
type mcpStream struct {
	masker *mcp.ResponseMasker
	sse    *mcp.SSE
	// body holds a JSON response until its end.
	body []byte
	// held is what the held bytes charge to the lease.
	held     int64
	recorded int
}

// isMCPBody reports whether a content type is one an MCP server answers
// with: JSON or an event stream.
func isMCPBody(contentType string) (sse, ok bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	}
	if mt == "text/event-stream" {
		return true, true
	}
	return false, mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// startMCP prepares the masking of an MCP response body.
func (st *stream) startMCP(sse bool) error {
	meta := st.meta.MCP
	m, err := mcp.NewResponseMasker(st.engine, masking.ProfileFor(st.meta.Masking))
	if err != nil {
		return err
	}
	m.Call = func(id string) (mcp.CallInfo, bool) {
		c, ok := meta.Call(id)
		return mcp.CallInfo{Method: c.Method, Name: c.Name}, ok
	}
	m.ExcerptBytes = st.s.opts.RecordBodyBytes
	if p := st.s.opts.MCP; p != nil {
		m.Learn = func(tools []*mcp.Tool) { p.Learn(meta.Host, tools) }
		if meta.Caller != nil {
			m.Filter = func(tools []*mcp.Tool) []bool { return p.Callable(st.ctx, st.meta, tools) }
		}
	}
	st.mcp = &mcpStream{masker: m}
	if sse {
		st.mcp.sse = mcp.NewSSE(m, st.s.opts.MCPMaxMessageBytes)
	}
	st.feed = st.mcpPiece
	return nil
}

// mcpPiece masks bytes of an MCP body into st.out.
func (st *stream) mcpPiece(p []byte) error {
	ms := st.mcp
	if ms.sse == nil {
		if len(ms.body)+len(p) > st.s.opts.MCPMaxMessageBytes {
			return st.mcpTooLarge()
		}
		if err := st.mcpHold(int64(len(ms.body) + len(p))); err != nil {
			return err
		}
		ms.body = append(ms.body, p...)
		return nil
	}
	b, err := st.out.room(len(p)+len(p)/8+64, st.blockSize)
	if err != nil {
		return err
	}
	out, err := ms.sse.Write(*b, p)
	if errors.Is(err, mcp.ErrMessageTooLarge) {
		return st.mcpTooLarge()
	}
	if err != nil {
		return err
	}
	if err := st.out.commit(b, out); err != nil {
		return err
	}
	if err := st.mcpHold(int64(ms.sse.Buffered())); err != nil {
		return err
	}
	// A tool result is durable before its bytes go to the agent.
	return st.recordToolCalls()
}

// mcpClose ends an MCP body: the JSON body is masked, the last event
// flushed.
func (st *stream) mcpClose() error {
	ms := st.mcp
	b, err := st.out.room(len(ms.body)+len(ms.body)/8+64, 0)
	if err != nil {
		return err
	}
	var out []byte
	if ms.sse != nil {
		out, err = ms.sse.Close(*b)
	} else {
		out, err = ms.masker.Message(*b, ms.body)
	}
	if err != nil {
		return err
	}
	if err := st.out.commit(b, out); err != nil {
		return err
	}
	st.mcpRelease()
	return st.recordToolCalls()
}

// mcpHold charges the bytes an MCP body holds to the lease.
func (st *stream) mcpHold(n int64) error {
	ms := st.mcp
	if n > ms.held {
		if err := st.lease.charge(n - ms.held); err != nil {
			return err
		}
	} else if n < ms.held {
		st.lease.uncharge(ms.held - n)
	}
	ms.held = n
	return nil
}

// mcpRelease gives the held bytes back.
func (st *stream) mcpRelease() {
	ms := st.mcp
	if ms == nil {
		return
	}
	if ms.held > 0 && st.lease != nil {
		st.lease.uncharge(ms.held)
		ms.held = 0
	}
	ms.body = nil
	if ms.sse != nil {
		ms.sse.Release()
		ms.sse = nil
	}
}

func (st *stream) mcpTooLarge() error {
	return fmt.Errorf("extproc: a JSON-RPC message of the MCP response is larger than mcp.max_message_bytes (%d); it was not passed on", st.s.opts.MCPMaxMessageBytes)
}

// recordToolCalls records the tool results not recorded yet.
func (st *stream) recordToolCalls() error {
	ms := st.mcp
	results := ms.masker.Results[ms.recorded:]
	if len(results) == 0 {
		return nil
	}
	ms.recorded = len(ms.masker.Results)
	rec, ok := st.s.opts.Recorder.(ToolCallRecorder)
	if !ok {
		return nil
	}
	for _, r := range results {
		call, _ := st.meta.MCP.Call(r.ID)
		if err := rec.RecordToolCall(st.ctx, st.meta, call, r); err != nil {
			st.log().Error("recording the tool call failed; failing the response closed", "tool", r.Tool, "err", err)
			return fmt.Errorf("extproc: recording the tool call %s: %w", r.Tool, err)
		}
	}
	return nil
}
