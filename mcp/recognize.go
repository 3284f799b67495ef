package mcp

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/airlockhq/airlock/gcp"
)

// MaxBatch bounds the messages of one batch.
const MaxBatch = 64

// JSON-RPC error codes of refusals before policy.
const (
	// CodeParseError: the body is not JSON.
	CodeParseError = -32700
	// CodeInvalidRequest: the body is not a JSON-RPC message MCP allows.
	CodeInvalidRequest = -32600
	// CodeMethodNotFound: a method airlock does not know.
	CodeMethodNotFound = -32601
	// CodeInvalidParams: the params of a known method are malformed, or a
	// tool's arguments cannot be read as the operation it performs.
	CodeInvalidParams = -32602
	// CodeHeaderMismatch: the HTTP headers disagree with the body
	// (SEP-2243; HeaderMismatch of 2026-07-28).
	CodeHeaderMismatch = -32020
)

// RequestError refuses an MCP request before policy. Msg is written for
// the agent; Code is the JSON-RPC error code of the refusal.
type RequestError struct {
	Msg  string
	Code int
}

func (e *RequestError) Error() string { return "mcp: " + e.Msg }

func refuse(code int, format string, args ...any) *RequestError {
	return &RequestError{Msg: fmt.Sprintf(format, args...), Code: code}
}

// HTTPRequest is the request as the gateway recognised it.
type HTTPRequest struct {
	// Method is the effective HTTP method, upper case.
	Method string
	// Host and Path are normalised (gcp.Recognized).
	Host, Path string
	// Headers have lower-case names.
	Headers map[string]string
	// Body is the JSON body as gcp read it (BodyJSON); BodyUnreadable says
	// why a body that exists could not be read.
	Body           any
	BodyUnreadable string
	// RawBody is the body as sent.
	RawBody []byte
}

// Request is one HTTP request to an MCP endpoint, recognised.
type Request struct {
	// Host is the endpoint's host, Server its service ("compute"), Path
	// its path ("/mcp").
	Host, Server, Path string
	// Region is the region of a regional endpoint, else "".
	Region string
	// HTTPMethod is POST, or GET or DELETE for a transport operation.
	HTTPMethod string
	// ProtocolVersion is the MCP-Protocol-Version header.
	ProtocolVersion string
	// Batch is true when the body is a JSON-RPC batch.
	Batch bool
	// Calls are the body's messages in order; one Transport call for a
	// GET or DELETE.
	Calls []*Call
}

// Call is one message of an MCP request.
type Call struct {
	Kind Kind
	// Method is the JSON-RPC method; "" for a client's response and for a
	// transport operation.
	Method string
	// ID is the id as canonical JSON (1, "a"); "" for a notification.
	ID string
	// Name is the tool or prompt name, or the resource URI.
	Name string
	// Arguments are a tool call's or prompt's arguments (never nil for a
	// tool call).
	Arguments map[string]any
	// Message is the whole JSON-RPC message.
	Message map[string]any
	// Tool is what airlock knows of the called tool; nil when nothing.
	Tool *Tool
	// ReadOnly and Destructive are the tool's hints (a message that is no
	// tool call reads: true, false).
	ReadOnly, Destructive bool
	// REST is the REST request the tool call performs, recognised by the
	// gcp catalog; nil when the call maps to none.
	REST *gcp.Recognized
	// Unmapped says why a tool call maps to no REST method.
	Unmapped string
}

// Operation is the Google Cloud operation of the call as policies see it
// (gcp.*): the REST twin's for a mapped tool call; otherwise the server's
// service with no method, read-only unless the call is a tool call.
func (c *Call) Operation(r *Request) gcp.Operation {
	if c.REST != nil {
		return c.REST.Operation
	}
	return gcp.Operation{Service: r.Server, Location: r.Region, ReadOnly: c.Kind != ToolCall}
}

// IsEndpoint reports whether a normalised host and path name an MCP
// endpoint of Google: a googleapis.com host, and /mcp or a path below it.
func IsEndpoint(host, path string) bool {
	if !strings.HasSuffix(host, ".googleapis.com") || len(host) <= len(".googleapis.com") {
		return false
	}
	return path == "/mcp" || strings.HasPrefix(path, "/mcp/")
}

// Recognizer recognises MCP requests and maps tool calls to REST methods.
// It is safe for concurrent use.
type Recognizer struct {
	gcp     *gcp.Recognizer
	catalog *Catalog
	learned *Registry
}

// NewRecognizer returns a recognizer over the gcp recognizer (for REST
// twins), the catalog and what was learned (nil: nothing is learned).
func NewRecognizer(g *gcp.Recognizer, c *Catalog, learned *Registry) *Recognizer {
	if c == nil {
		c = DefaultCatalog()
	}
	return &Recognizer{gcp: g, catalog: c, learned: learned}
}

// Catalog is the catalog in use.
func (r *Recognizer) Catalog() *Catalog { return r.catalog }

// Registry is where learned tools are kept (may be nil).
func (r *Recognizer) Registry() *Registry { return r.learned }

// Server names the MCP server of a normalised host ("compute").
func (r *Recognizer) Server(host string) string {
	if r.gcp != nil {
		if s := r.gcp.ServiceOf(host); s != "" {
			return s
		}
	}
	s, _, _ := strings.Cut(host, ".")
	return s
}

// ResolveTool combines what airlock knows of a tool at host: hints and
// header bindings learned from the server win over the catalog's; the
// REST mapping comes from the catalog. nil when nothing is known.
func (r *Recognizer) ResolveTool(host, server, name string) *Tool {
	cat, inCat := r.catalog.Tool(server, name)
	learned, inReg := r.learned.Lookup(host, name)
	switch {
	case inReg && inCat:
		t := *learned
		t.rest, t.method = cat.rest, cat.method
		return &t
	case inReg:
		return learned
	case inCat:
		return cat
	}
	return nil
}

// Recognize reads an HTTP request to an MCP endpoint. The error is a
// *RequestError refusing it before policy.
func (r *Recognizer) Recognize(req HTTPRequest) (*Request, error) {
	out := &Request{
		Host: req.Host, Server: r.Server(req.Host), Path: req.Path, HTTPMethod: req.Method,
		ProtocolVersion: strings.TrimSpace(req.Headers["mcp-protocol-version"]),
	}
	out.Region = regionOf(req.Host)
	switch req.Method {
	case "GET", "DELETE":
		out.Calls = []*Call{{Kind: Transport, ReadOnly: true}}
		return out, nil
	case "POST":
	default:
		return nil, refuse(CodeInvalidRequest, "an MCP endpoint takes POST (and, before protocol version 2026-07-28, GET and DELETE), not %s", req.Method)
	}
	if req.BodyUnreadable != "" {
		code := CodeParseError
		if strings.Contains(req.BodyUnreadable, "cut") || strings.Contains(req.BodyUnreadable, "more than") {
			code = CodeInvalidRequest
		}
		return nil, refuse(code, "the body of an MCP request must be one JSON-RPC message (or a batch) that airlock can read, but %s", req.BodyUnreadable)
	}
	var msgs []any
	switch b := req.Body.(type) {
	case map[string]any:
		msgs = []any{b}
	case []any:
		if len(b) == 0 {
			return nil, refuse(CodeInvalidRequest, "an empty JSON-RPC batch holds no message")
		}
		if len(b) > MaxBatch {
			return nil, refuse(CodeInvalidRequest, "a JSON-RPC batch of %d messages is more than the %d airlock decides at once; send fewer", len(b), MaxBatch)
		}
		out.Batch, msgs = true, b
	case nil:
		return nil, refuse(CodeInvalidRequest, "an MCP POST needs a JSON-RPC message as its body")
	default:
		return nil, refuse(CodeInvalidRequest, "the body must be a JSON-RPC message (an object) or a batch (an array)")
	}
	ids := map[string]bool{}
	for i, m := range msgs {
		c, err := r.message(out, m)
		if err != nil {
			if out.Batch {
				err.Msg = fmt.Sprintf("message %d of the batch: %s", i+1, err.Msg)
			}
			return nil, err
		}
		if c.ID != "" && c.Kind != ClientResponse {
			if ids[c.ID] {
				return nil, refuse(CodeInvalidRequest, "the id %s is used by two requests of one batch", c.ID)
			}
			ids[c.ID] = true
		}
		out.Calls = append(out.Calls, c)
	}
	if err := checkHeaders(req.Headers, out, req.Body); err != nil {
		return nil, err
	}
	return out, nil
}

// message reads one JSON-RPC message.
func (r *Recognizer) message(req *Request, v any) (*Call, *RequestError) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, refuse(CodeInvalidRequest, "a JSON-RPC message must be an object")
	}
	for k := range m {
		switch k {
		case "jsonrpc", "id", "method", "params", "result", "error":
		default:
			return nil, refuse(CodeInvalidRequest, "a JSON-RPC message has no member %q", clip(k))
		}
	}
	if m["jsonrpc"] != "2.0" {
		return nil, refuse(CodeInvalidRequest, `a JSON-RPC message needs "jsonrpc": "2.0"`)
	}
	c := &Call{Message: m, ReadOnly: true}
	idv, hasID := m["id"]
	if hasID {
		id, err := canonicalID(idv)
		if err != nil {
			return nil, err
		}
		c.ID = id
	}
	mv, hasMethod := m["method"]
	_, hasResult := m["result"]
	_, hasError := m["error"]
	if !hasMethod {
		if !hasID || hasResult == hasError {
			return nil, refuse(CodeInvalidRequest, "a JSON-RPC message needs a method, or an id with a result or an error")
		}
		if _, ok := m["params"]; ok {
			return nil, refuse(CodeInvalidRequest, "a JSON-RPC response has no params")
		}
		c.Kind = ClientResponse
		return c, nil
	}
	if hasResult || hasError {
		return nil, refuse(CodeInvalidRequest, "a JSON-RPC message is a request or a response, not both")
	}
	method, ok := mv.(string)
	if !ok || method == "" {
		return nil, refuse(CodeInvalidRequest, "the JSON-RPC method must be a non-empty string")
	}
	c.Method = method
	kind, isRequest := requestMethods[method]
	switch {
	case isRequest && !hasID:
		return nil, refuse(CodeInvalidRequest, "%s is a request: it needs an id", clip(method))
	case notificationMethods[method] && hasID:
		return nil, refuse(CodeInvalidRequest, "%s is a notification: it has no id", clip(method))
	case notificationMethods[method]:
		kind = Protocol
	case !isRequest:
		return nil, refuse(CodeMethodNotFound, "airlock does not know the MCP method %q, so it cannot check it against policy; use a method of the MCP specification (tools/call, tools/list, resources/read, prompts/get, ...)", clip(method))
	}
	c.Kind = kind
	params := map[string]any{}
	if pv, ok := m["params"]; ok {
		p, ok := pv.(map[string]any)
		if !ok {
			return nil, refuse(CodeInvalidParams, "the params of %s must be an object", method)
		}
		params = p
	}
	if member, ok := namedMethods[method]; ok {
		name, ok := params[member].(string)
		if !ok || name == "" {
			return nil, refuse(CodeInvalidParams, "%s needs params.%s, a non-empty string", method, member)
		}
		c.Name = name
	}
	switch kind {
	case ToolCall:
		args := map[string]any{}
		if av, ok := params["arguments"]; ok && av != nil {
			a, ok := av.(map[string]any)
			if !ok {
				return nil, refuse(CodeInvalidParams, "the arguments of tool %s must be an object", clip(c.Name))
			}
			args = a
		}
		c.Arguments = args
		if err := r.mapTool(req, c); err != nil {
			return nil, err
		}
	case PromptGet:
		if av, ok := params["arguments"].(map[string]any); ok {
			c.Arguments = av
		}
	}
	return c, nil
}

// mapTool resolves the called tool and maps it to its REST twin.
func (r *Recognizer) mapTool(req *Request, c *Call) *RequestError {
	t := r.ResolveTool(req.Host, req.Server, c.Name)
	c.Tool = t
	if t == nil {
		// An unknown tool has no hints: not read-only and, by MCP's
		// defaults, destructive.
		c.ReadOnly, c.Destructive = false, true
		c.Unmapped = fmt.Sprintf("airlock does not know the tool %s of the %s MCP server", c.Name, req.Server)
		return nil
	}
	c.ReadOnly, c.Destructive = t.Hints.IsReadOnly(), t.Hints.IsDestructive()
	if t.rest == nil {
		c.Unmapped = fmt.Sprintf("the tool %s of the %s MCP server performs no REST method airlock knows", c.Name, req.Server)
		return nil
	}
	path, missing, err := t.rest.fill(c.Arguments)
	if err != nil {
		return refuse(CodeInvalidParams, "the arguments of tool %s cannot be read as the Google Cloud operation it performs (%s): %v", c.Name, t.rest.src, err)
	}
	if missing != "" {
		c.Unmapped = fmt.Sprintf("the tool %s was called without the argument %s, which names what it acts on", c.Name, missing)
		return nil
	}
	rec, rerr := r.gcp.Recognize(gcp.Request{Method: t.rest.verb, Host: req.Host, Path: path, Headers: map[string]string{}})
	if rerr != nil {
		msg := rerr.Error()
		if re, ok := rerr.(*gcp.RequestError); ok {
			msg = re.Msg
		}
		return refuse(CodeInvalidParams, "the arguments of tool %s cannot be read as the Google Cloud operation it performs: %s", c.Name, msg)
	}
	if rec.Operation.Method == "" {
		c.Unmapped = fmt.Sprintf("the REST method of tool %s (%s) is not in airlock's catalog", c.Name, t.rest.src)
		return nil
	}
	if rec.Operation.Method != t.method {
		// A resource name of another kind would make the REST twin another
		// method than the one the tool performs.
		return refuse(CodeInvalidParams, "the arguments of tool %s name a resource that %s does not act on (read as %s); name the resource the tool expects", c.Name, t.method, rec.Operation.Method)
	}
	c.REST = &rec
	return nil
}

// Skeleton is the operation a tool call performs, as known before its
// arguments: the REST method's service, version, method id and flags, no
// project, location or resource. false when the tool maps to none.
func (r *Recognizer) Skeleton(t *Tool) (gcp.Operation, bool) {
	if t == nil || t.method == "" || r.gcp == nil {
		return gcp.Operation{}, false
	}
	return r.gcp.Operation(t.method)
}

// canonicalID renders a request id as canonical JSON: MCP ids are strings
// or integers, never null.
func canonicalID(v any) (string, *RequestError) {
	switch x := v.(type) {
	case string:
		b, _ := json.Marshal(x)
		return string(b), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10), nil
		}
	}
	return "", refuse(CodeInvalidRequest, "a request id must be a string or an integer (MCP never allows null)")
}

// CanonicalID renders a raw JSON id (from a response) as Call.ID does, so
// that a response can be matched to its request; "" when it is none.
func CanonicalID(raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return ""
	}
	id, err := canonicalID(v)
	if err != nil {
		return ""
	}
	return id
}

// regionOf is the region of SERVICE.REGION.rep.googleapis.com (and its
// .p.rep form).
func regionOf(host string) string {
	rest, ok := strings.CutSuffix(host, ".rep.googleapis.com")
	if !ok {
		return ""
	}
	rest = strings.TrimSuffix(rest, ".p")
	_, region, _ := strings.Cut(rest, ".")
	if strings.Contains(region, ".") {
		return ""
	}
	return region
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// Names lists the distinct methods (and tools) of a request, for logs.
func (r *Request) Names() []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range r.Calls {
		n := c.Method
		if c.Kind == ToolCall {
			n += " " + c.Name
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
