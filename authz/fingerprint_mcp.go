package authz

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/airlockhq/airlock/mcp"
)

// A grant for an MCP request binds its canonical calls, not the bytes of
// the POST: the HTTP method, host and path; the headers a REST grant binds
// except the MCP transport's own (mcpUnboundHeaders); and, per message in
// order, its kind, method, name, REST twin (method id and resource) and
// params re-encoded with member order and whitespace removed (numbers keep
// their text). The JSON-RPC id, params._meta (progress token, protocol
// version, client info, trace context) and the multi round-trip fields
// inputResponses and requestState are left out: an agent retrying the
// same call after approval sends a new id, often in a new session.

// mcpUnboundHeaders are the MCP transport's headers: the session, the
// protocol version, the headers that mirror the body (which is bound and
// which they must equal), and the negotiation of the response's format.
var mcpUnboundHeaders = map[string]bool{
	"mcp-session-id": true, "mcp-protocol-version": true, "mcp-method": true,
	"mcp-name": true, "last-event-id": true, "accept": true, "content-type": true,
}

// mcpUnboundParams are the params members that do not change the call.
var mcpUnboundParams = []string{"_meta", "inputResponses", "requestState"}

func (f *fingerprinter) mcpRequest(m *mcp.Request, headers map[string]string, body []byte) error {
	f.str("mcp")
	f.str(m.HTTPMethod)
	f.str(m.Host)
	f.str(m.Path)
	names := make([]string, 0, len(headers))
	for k := range headers {
		lk := strings.ToLower(k)
		if boundHeader(lk) && !mcpUnboundHeaders[lk] && !strings.HasPrefix(lk, "mcp-param-") {
			names = append(names, k)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	f.num(len(names))
	for _, k := range names {
		f.str(strings.ToLower(k))
		f.str(strings.Trim(headers[k], " \t"))
	}
	f.num(len(m.Calls))
	if len(m.Calls) == 1 && m.Calls[0].Kind == mcp.Transport {
		f.str(mcp.Transport.String())
		return nil
	}
	msgs, err := exactMessages(body)
	if err != nil || len(msgs) != len(m.Calls) {
		return unbindable("the MCP request body cannot be read again exactly as it was decided")
	}
	for i, c := range m.Calls {
		f.str(c.Kind.String())
		f.str(c.Method)
		f.str(c.Name)
		if c.REST != nil {
			f.str(c.REST.Operation.Method)
			f.str(c.REST.Operation.Resource)
		} else {
			f.str("")
			f.str("")
		}
		var bound any
		if c.Kind == mcp.ClientResponse {
			bound = map[string]any{"result": msgs[i]["result"], "error": msgs[i]["error"]}
		} else if p, ok := msgs[i]["params"].(map[string]any); ok {
			for _, k := range mcpUnboundParams {
				delete(p, k)
			}
			bound = p
		}
		b, err := json.Marshal(bound)
		if err != nil {
			return unbindable("the MCP request body cannot be re-encoded")
		}
		f.raw(b)
	}
	return nil
}

// exactMessages decodes a POST's JSON-RPC messages with numbers kept as
// they were written.
func exactMessages(body []byte) ([]map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case map[string]any:
		return []map[string]any{x}, nil
	case []any:
		out := make([]map[string]any, 0, len(x))
		for _, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, errNotMessage
			}
			out = append(out, m)
		}
		return out, nil
	}
	return nil, errNotMessage
}

var errNotMessage = unbindable("not a JSON-RPC message")
