package mcp

import (
	"encoding/base64"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Standard request headers (SEP-2243) and the version that requires them.
const (
	headerMethod      = "mcp-method"
	headerName        = "mcp-name"
	headerParamPrefix = "mcp-param-"
	headerVersion     = "mcp-protocol-version"
	// StatelessVersion is the first revision that requires Mcp-Method and
	// Mcp-Name and has no sessions or batches.
	StatelessVersion = "2026-07-28"
	metaVersionKey   = "io.modelcontextprotocol/protocolVersion"
	base64Prefix     = "=?base64?"
	base64Suffix     = "?="
)

// checkHeaders refuses a request whose mirrored headers disagree with its
// body, or that lacks a header its protocol version requires.
func checkHeaders(h map[string]string, req *Request, _ any) *RequestError {
	version := req.ProtocolVersion
	stateless := version >= StatelessVersion
	method, hasMethod := h[headerMethod]
	name, hasName := h[headerName]
	var params []string
	for k := range h {
		if strings.HasPrefix(k, headerParamPrefix) {
			params = append(params, k)
		}
	}
	sort.Strings(params)
	if req.Batch {
		if stateless {
			return mismatch("protocol version %s has no JSON-RPC batches; send each message as its own POST", version)
		}
		if hasMethod || hasName || len(params) > 0 {
			return mismatch("a batch cannot carry Mcp-Method, Mcp-Name or Mcp-Param headers: they mirror one message; send each message as its own POST")
		}
		return nil
	}
	c := req.Calls[0]
	for _, k := range append([]string{headerMethod, headerName}, params...) {
		if v, ok := h[k]; ok {
			if err := checkValue(k, v); err != nil {
				return err
			}
		}
	}
	if mv, ok := metaVersion(c.Message); ok && version != "" && mv != version {
		return mismatch("the MCP-Protocol-Version header (%s) and the message's _meta protocol version (%s) disagree", clip(version), clip(mv))
	}
	if c.Kind == ClientResponse {
		if hasMethod || hasName || len(params) > 0 {
			return mismatch("a JSON-RPC response has no method, name or arguments to mirror in Mcp-Method, Mcp-Name or Mcp-Param headers")
		}
		return nil
	}
	isRequest := c.ID != ""
	switch {
	case hasMethod && strings.TrimSpace(method) != c.Method:
		return mismatch("the Mcp-Method header (%s) does not match the body's method (%s)", clip(strings.TrimSpace(method)), clip(c.Method))
	case !hasMethod && stateless && isRequest:
		return mismatch("protocol version %s requires the Mcp-Method header (%s)", version, c.Method)
	}
	_, named := namedMethods[c.Method]
	if hasName {
		if !named {
			return mismatch("%s names no tool, prompt or resource, so it takes no Mcp-Name header", c.Method)
		}
		v, ok := decodeValue(strings.TrimSpace(name))
		if !ok {
			return mismatch("the Mcp-Name header is not valid base64 inside =?base64?...?=")
		}
		if v != c.Name {
			return mismatch("the Mcp-Name header (%s) does not match the name in the body (%s)", clip(v), clip(c.Name))
		}
	} else if named && stateless {
		return mismatch("protocol version %s requires the Mcp-Name header for %s", version, c.Method)
	}
	if c.Kind != ToolCall {
		if len(params) > 0 {
			return mismatch("only tools/call carries Mcp-Param headers, not %s", c.Method)
		}
		return nil
	}
	return checkParams(h, params, c, stateless)
}

// checkParams compares the Mcp-Param headers of a tool call with its
// arguments: exactly, through the tool's x-mcp-header declarations, when
// airlock knows them; otherwise each header's value must be the value of
// one of the arguments. A declared argument needs its header from the
// version that introduced them (stateless) on; a header sent is compared
// whatever the version.
func checkParams(h map[string]string, params []string, c *Call, stateless bool) *RequestError {
	if c.Tool != nil && c.Tool.HeadersKnown {
		declared := map[string]HeaderBinding{}
		for _, b := range c.Tool.Headers {
			declared[headerParamPrefix+strings.ToLower(b.Header)] = b
		}
		for _, k := range params {
			if _, ok := declared[k]; !ok {
				return mismatch("tool %s declares no x-mcp-header for the %s header", clip(c.Name), k)
			}
		}
		for k, b := range declared {
			arg, present := lookup(c.Arguments, b.Path)
			hv, hasHeader := h[k]
			if !present || arg == nil {
				if hasHeader {
					return mismatch("the %s header is sent but the argument %s it mirrors is absent", k, strings.Join(b.Path, "."))
				}
				continue
			}
			if !hasHeader {
				if !stateless {
					continue
				}
				return mismatch("the argument %s of tool %s must be mirrored in the %s header", strings.Join(b.Path, "."), clip(c.Name), k)
			}
			v, ok := decodeValue(strings.TrimSpace(hv))
			if !ok {
				return mismatch("the %s header is not valid base64 inside =?base64?...?=", k)
			}
			if !primitiveEqual(v, arg) {
				return mismatch("the %s header (%s) does not match the argument %s in the body", k, clip(v), strings.Join(b.Path, "."))
			}
		}
		return nil
	}
	for _, k := range params {
		v, ok := decodeValue(strings.TrimSpace(h[k]))
		if !ok {
			return mismatch("the %s header is not valid base64 inside =?base64?...?=", k)
		}
		if !anyArgument(c.Arguments, v, 0) {
			return mismatch("the %s header (%s) matches no argument of tool %s; airlock does not know the tool's x-mcp-header declarations (call tools/list through the gateway first)", k, clip(v), clip(c.Name))
		}
	}
	return nil
}

// anyArgument reports whether some primitive value in v equals the header
// value s.
func anyArgument(v any, s string, depth int) bool {
	if depth > 32 {
		return false
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if anyArgument(e, s, depth+1) {
				return true
			}
		}
		return false
	case []any:
		return false
	}
	return primitiveEqual(s, v)
}

// primitiveEqual compares a decoded header value with a JSON argument:
// strings exactly, booleans as true/false, integers numerically.
func primitiveEqual(s string, v any) bool {
	switch x := v.(type) {
	case string:
		return s == x
	case bool:
		return s == strconv.FormatBool(x)
	case float64:
		if x != math.Trunc(x) || math.Abs(x) >= 1<<53 {
			return false
		}
		f, err := strconv.ParseFloat(s, 64)
		return err == nil && f == x
	}
	return false
}

// decodeValue undoes SEP-2243's base64 sentinel encoding.
func decodeValue(v string) (string, bool) {
	if enc, ok := strings.CutPrefix(v, base64Prefix); ok {
		if enc, ok = strings.CutSuffix(enc, base64Suffix); ok {
			b, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				return "", false
			}
			return string(b), true
		}
	}
	return v, true
}

// checkValue refuses a header value with characters a header may not hold.
func checkValue(k, v string) *RequestError {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
			return mismatch("the %s header holds a control or non-ASCII character; encode such values as =?base64?...?=", k)
		}
	}
	return nil
}

// metaVersion reads params._meta's protocol version.
func metaVersion(m map[string]any) (string, bool) {
	p, _ := m["params"].(map[string]any)
	meta, _ := p["_meta"].(map[string]any)
	v, ok := meta[metaVersionKey].(string)
	return v, ok
}

func mismatch(format string, args ...any) *RequestError {
	e := refuse(CodeHeaderMismatch, format, args...)
	e.Msg = "header mismatch: " + e.Msg
	return e
}
