package authz

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/mcp"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/resources"
)

// MCP requests. A POST to one of Google's MCP endpoints is recognised by
// the mcp package: each JSON-RPC message is decided on its own, with mcp.*
// set and, for a tool call that does what a REST method does, gcp.* as
// that method would set them; the strongest action of any message decides
// the POST, so one denied call denies a batch. A refusal is a JSON-RPC
// error (JSONRPCError) with the HTTP status of the refusal, as the MCP
// transport has its servers answer, so that MCP clients show the message.

// recognizeMCP reads a request to an MCP endpoint into res.MCP. For a
// single message its operation becomes the request's (gcp_method in the
// metadata, the recording, the refusal).
func (e *Engine) recognizeMCP(res *Result, req Request) error {
	rec := res.Recognized
	m, err := e.opts.MCP.Recognize(mcp.HTTPRequest{
		Method: rec.Method, Host: rec.Host, Path: rec.Path, Headers: req.Headers,
		Body: rec.BodyJSON, BodyUnreadable: rec.BodyUnreadable, RawBody: req.Body,
	})
	if err != nil {
		return err
	}
	res.MCP = m
	rec.Unrecognized = ""
	rec.Operation = gcp.Operation{Service: m.Server, Location: m.Region, ReadOnly: true}
	if len(m.Calls) == 1 {
		rec.Operation = m.Calls[0].Operation(m)
	}
	res.Recognized = rec
	return nil
}

// mcpRefused refuses before policy a request to an MCP endpoint that is
// not MCP airlock can decide.
func mcpRefused(r *Result, err error) *Result {
	code := mcp.CodeInvalidRequest
	var re *mcp.RequestError
	if errors.As(err, &re) {
		code = re.Code
		err = &gcp.RequestError{Msg: re.Msg}
	}
	badRequest(r, err)
	r.Refusal.JSONRPC = &JSONRPCError{Code: code}
	return r
}

// mcpSinkGuard applies the recorder's sink guard to the REST twin of each
// tool call.
func (e *Engine) mcpSinkGuard(m *mcp.Request, req Request) string {
	for _, c := range m.Calls {
		if c.REST != nil {
			if why := e.opts.SinkGuard.Check(*c.REST, req); why != "" {
				return "tool " + c.Name + ": " + why
			}
		}
	}
	return ""
}

// evaluateMCP decides every message of an MCP request.
func (e *Engine) evaluateMCP(ctx context.Context, set *policies.Set, m *mcp.Request, rec gcp.Recognized, id identity.Identity, req Request, session string, now time.Time) policies.Decision {
	inputs := make([]policies.Input, len(m.Calls))
	for i, c := range m.Calls {
		inputs[i] = e.mcpInput(m, c, rec, id, req, session, now)
	}
	return strongest(ctx, set, inputs, "the MCP request holds no message")
}

// mcpInput is what policies see of one MCP message: the HTTP request,
// request.body the message itself, gcp.* its operation and mcp.* the
// message.
func (e *Engine) mcpInput(m *mcp.Request, c *mcp.Call, rec gcp.Recognized, id identity.Identity, req Request, session string, now time.Time) policies.Input {
	in := buildMCPInput(m, c, rec, id, req, session, now)
	if e.opts.Resources != nil {
		in.Resources = resources.ForRequest(e.opts.Resources, in.GCP)
	}
	return in
}

func buildMCPInput(m *mcp.Request, c *mcp.Call, rec gcp.Recognized, id identity.Identity, req Request, session string, now time.Time) policies.Input {
	op := c.Operation(m)
	in := policies.Input{
		Request: policies.Request{
			Method:  rec.Method,
			Host:    rec.Host,
			Path:    rec.Path,
			Query:   rec.Query,
			Headers: policyHeaders(req.Headers),
		},
		Identity:  id,
		GCP:       op,
		SessionID: session,
		Now:       now,
		MCP:       mcpVars(m, c),
	}
	if c.Message != nil {
		in.Request.Body = c.Message
	}
	return in
}

func mcpVars(m *mcp.Request, c *mcp.Call) policies.MCP {
	v := policies.MCP{Server: m.Server, Method: c.Method, Name: c.Name, Arguments: c.Arguments, ReadOnly: c.ReadOnly, Destructive: c.Destructive}
	if c.Kind == mcp.ToolCall {
		v.Tool = c.Name
	}
	return v
}

// approvalOperation is the operation approvers see: the REST method a
// request performs, or for an MCP message without one what it calls.
func approvalOperation(r *Result) string {
	if op := r.Recognized.Operation.Method; op != "" || r.MCP == nil {
		return op
	}
	var names []string
	for _, c := range r.MCP.Calls {
		n := c.Method
		if c.Name != "" {
			n += " " + r.MCP.Server + "/" + c.Name
		}
		names = append(names, n)
	}
	return "mcp " + strings.Join(names, ", ")
}

// mcpWhat names an MCP request in a refusal.
func mcpWhat(r *Result) string {
	m := r.MCP
	if len(m.Calls) != 1 {
		return "an MCP batch to " + m.Host + " (" + strings.Join(m.Names(), ", ") + ")"
	}
	c := m.Calls[0]
	if c.Kind != mcp.ToolCall {
		return "the MCP " + c.Method + " of " + m.Host
	}
	what := "the MCP tool call " + c.Name + " of " + m.Host
	if c.REST != nil {
		what += " (" + c.REST.Operation.Method + ")"
	}
	return what
}

// JSONRPCError renders a refusal as JSON-RPC error responses: one for each
// request of the POST (in a batch, an array), or one without an id for a
// notification.
type JSONRPCError struct {
	// Code is the JSON-RPC error code; zero takes the refusal's.
	Code int
	// IDs are the request ids as canonical JSON, in order.
	IDs []string
	// Batch is true when the request was a batch.
	Batch bool
}

// JSON-RPC codes of refusals. The specification leaves -32000 to -32099 to
// itself; airlock's own codes sit outside that range and mirror the HTTP
// status of the refusal.
const (
	CodePolicyDenied    = -31403
	CodeUnauthenticated = -31401
	CodeUnavailable     = -31503
)

type jsonrpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   jsonrpcErr      `json:"error"`
}

type jsonrpcErr struct {
	Code    int               `json:"code"`
	Message string            `json:"message"`
	Data    handoff.ErrorInfo `json:"data"`
}

func (f *Refusal) jsonrpcBody() []byte {
	code := f.JSONRPC.Code
	if code == 0 {
		switch f.HTTPStatus {
		case 401:
			code = CodeUnauthenticated
		case 503:
			code = CodeUnavailable
		case 400:
			code = mcp.CodeInvalidRequest
		default:
			code = CodePolicyDenied
		}
	}
	e := jsonrpcErr{Code: code, Message: f.Message, Data: handoff.NewErrorInfo(f.Reason, f.Metadata)}
	var out any
	ids := f.JSONRPC.IDs
	switch {
	case len(ids) == 0:
		out = jsonrpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: e}
	case !f.JSONRPC.Batch:
		out = jsonrpcResponse{JSONRPC: "2.0", ID: json.RawMessage(ids[0]), Error: e}
	default:
		list := make([]jsonrpcResponse, len(ids))
		for i, id := range ids {
			list[i] = jsonrpcResponse{JSONRPC: "2.0", ID: json.RawMessage(id), Error: e}
		}
		out = list
	}
	b, err := json.Marshal(out)
	if err != nil {
		return []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"airlock: refusal could not be rendered"}}`)
	}
	return b
}

// mcpRefusal renders the refusal of a request to an MCP endpoint as
// JSON-RPC, whatever refused it (identity, recognition, policy, approval).
func (e *Engine) mcpRefusal(r *Result, req Request) {
	if e.opts.MCP == nil {
		return
	}
	if r.MCP == nil && r.Refusal.JSONRPC == nil && !endpointOf(r, req) {
		return
	}
	j := r.Refusal.JSONRPC
	if j == nil {
		j = &JSONRPCError{}
		r.Refusal.JSONRPC = j
	}
	if r.MCP != nil {
		j.Batch = r.MCP.Batch
		for _, c := range r.MCP.Calls {
			if c.ID != "" && c.Kind != mcp.ClientResponse {
				j.IDs = append(j.IDs, c.ID)
			}
		}
		return
	}
	// Refused before the messages were read: their ids, when the body is
	// JSON at all.
	switch b := r.Recognized.BodyJSON.(type) {
	case map[string]any:
		if id := idOf(b); id != "" {
			j.IDs = []string{id}
		}
	case []any:
		j.Batch = true
		for _, m := range b {
			if mm, ok := m.(map[string]any); ok {
				if id := idOf(mm); id != "" {
					j.IDs = append(j.IDs, id)
				}
			}
		}
		if len(j.IDs) == 0 {
			j.Batch = false
		}
	}
}

func idOf(m map[string]any) string {
	if _, ok := m["method"]; !ok {
		return ""
	}
	v, ok := m["id"]
	if !ok {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return mcp.CanonicalID(b)
}

// endpointOf reports whether a request (maybe refused before it was
// recognised) went to an MCP endpoint.
func endpointOf(r *Result, req Request) bool {
	host, path := r.Recognized.Host, r.Recognized.Path
	if host == "" {
		host = strings.ToLower(req.Host)
		if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
			host = host[:i]
		}
		host = strings.TrimSuffix(host, ".")
		path, _, _ = strings.Cut(req.Path, "?")
	}
	return mcp.IsEndpoint(host, path)
}

// maxMetadataArguments bounds the masked arguments passed on per call.
const maxMetadataArguments = 8 << 10

// mcpMetadata describes an allowed MCP request for ext_proc.
func (e *Engine) mcpMetadata(r *Result) *handoff.MCPMetadata {
	m := r.MCP
	out := &handoff.MCPMetadata{Host: m.Host, Path: m.Path, Server: m.Server}
	lists := false
	specs := r.Decision.Masking
	for _, c := range m.Calls {
		cm := handoff.MCPCallMetadata{ID: c.ID, Method: c.Method, Name: c.Name}
		if c.REST != nil {
			cm.GCPMethod = c.REST.Operation.Method
		}
		if c.Kind == mcp.ClientResponse {
			cm.ID = ""
		}
		if c.Method == "tools/list" {
			lists = true
		}
		if (c.Kind == mcp.ToolCall || c.Kind == mcp.PromptGet) && e.opts.MaskBody != nil && len(c.Arguments) > 0 {
			cm.Arguments = e.maskedArguments(c.Arguments, specs)
		}
		out.Calls = append(out.Calls, cm)
	}
	if lists && e.opts.MCPFilterTools {
		id := r.Identity
		out.Caller = &handoff.MCPCaller{Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified, Issuer: id.Issuer, Groups: id.Groups, Actor: id.Actor, Claims: id.Claims}
	}
	return out
}

func (e *Engine) maskedArguments(args map[string]any, specs []masking.Rule) json.RawMessage {
	raw, err := json.Marshal(args)
	if err != nil {
		return nil
	}
	masked := e.opts.MaskBody(raw, specs)
	if len(masked) <= maxMetadataArguments && json.Valid(masked) {
		return masked
	}
	s, _ := json.Marshal(excerpt(masked, maxMetadataArguments))
	return s
}

// callerIdentity is the caller of an MCP request as policies see it.
func callerIdentity(c *handoff.MCPCaller) identity.Identity {
	return identity.Identity{Subject: c.Subject, Email: c.Email, EmailVerified: c.EmailVerified, Issuer: c.Issuer, Groups: c.Groups, Actor: c.Actor, Claims: c.Claims}
}
