package handoff

import (
	"encoding/json"
	"unicode/utf8"
	"unsafe"

	"github.com/airlockhq/airlock/masking"
)

// MetadataNamespace is the Envoy dynamic-metadata namespace under which the
// ext_authz filter stores what airlock returns in CheckResponse.dynamic_metadata.
// The ext_proc filter must forward it (metadata_options.forwarding_namespaces.untyped).
const MetadataNamespace = "envoy.filters.http.ext_authz"

// The keys of Metadata in the dynamic metadata (ToMap, MetadataFromMap and
// the ext_authz server's encoder spell them from here).
const (
	KeyRequestID = "request_id"
	KeySessionID = "session_id"
	KeySubject   = "subject"
	KeyActor     = "actor"
	KeyGCPMethod = "gcp_method"
	KeyDecision  = "decision"
	KeyRules     = "rules"
	KeyMasking   = "masking"
	KeyMCP       = "mcp"
)

// Metadata is what an allowed Check hands to later filters (ext_proc, the
// recorder) through Envoy dynamic metadata.
type Metadata struct {
	RequestID string
	SessionID string
	Subject   string
	Actor     string
	GCPMethod string
	Decision  string
	Rules     []string
	// Masking lists the masking rules selected for this request; empty means
	// the default profile applies.
	Masking []masking.Rule
	// MCP describes an MCP request; nil for a REST request.
	MCP *MCPMetadata
}

// ToMap renders the metadata as the JSON-like map placed in a
// google.protobuf.Struct. Every field is a string but "rules", a list;
// "masking" is the selected rules as a JSON array of
// {"policy","name","fields","detectors"} objects, kept in one string because
// a deep Struct costs more to encode than the whole decision; "mcp", for an
// MCP request only, is MCPMetadata as JSON in one string.
func (m Metadata) ToMap() map[string]any {
	out := map[string]any{
		KeyRequestID: m.RequestID,
		KeySessionID: m.SessionID,
		KeySubject:   m.Subject,
		KeyActor:     m.Actor,
		KeyGCPMethod: m.GCPMethod,
		KeyDecision:  m.Decision,
		KeyRules:     anyStrings(m.Rules),
		KeyMasking:   m.MaskingJSON(),
	}
	if m.MCP != nil {
		out[KeyMCP] = m.MCPJSON()
	}
	return out
}

// MaskingJSON encodes Masking as a JSON array without reflection: it runs
// for every allowed request.
func (m Metadata) MaskingJSON() string {
	if len(m.Masking) == 0 {
		return "[]"
	}
	// The size without escapes: one allocation, and the string is the
	// buffer itself.
	n := 2
	for _, s := range m.Masking {
		n += len(`{"policy":"","name":"","fields":[],"detectors":[]},`) + len(s.Policy) + len(s.Name)
		for _, f := range s.Fields {
			n += len(f) + 3
		}
		for _, d := range s.Detectors {
			n += len(d) + 3
		}
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, s := range m.Masking {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"policy":`...)
		b = appendJSONString(b, s.Policy)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, s.Name)
		b = append(b, `,"fields":`...)
		b = appendJSONStrings(b, s.Fields)
		b = append(b, `,"detectors":`...)
		b = appendJSONStrings(b, s.Detectors)
		b = append(b, '}')
	}
	b = append(b, ']')
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func appendJSONStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		// The run of bytes that need no escaping is copied at once.
		j := i
		for j < len(s) && s[j] >= 0x20 && s[j] < utf8.RuneSelf && s[j] != '"' && s[j] != '\\' {
			j++
		}
		b = append(b, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// MetadataFromMap reads what ToMap wrote (after a round trip through a
// protobuf Struct). "masking" may also be a list of objects, as a filter
// written by hand might send it. Unknown or mistyped fields are ignored; an
// unreadable masking value yields no selected rules (the default profile
// still applies).
func MetadataFromMap(v map[string]any) Metadata {
	var m Metadata
	m.RequestID, _ = v[KeyRequestID].(string)
	m.SessionID, _ = v[KeySessionID].(string)
	m.Subject, _ = v[KeySubject].(string)
	m.Actor, _ = v[KeyActor].(string)
	m.GCPMethod, _ = v[KeyGCPMethod].(string)
	m.Decision, _ = v[KeyDecision].(string)
	m.Rules = stringList(v[KeyRules])
	if s, ok := v[KeyMCP].(string); ok && s != "" {
		var mm MCPMetadata
		if json.Unmarshal([]byte(s), &mm) == nil {
			m.MCP = &mm
		}
	}
	switch mv := v[KeyMasking].(type) {
	case string:
		var list []struct {
			Policy    string   `json:"policy"`
			Name      string   `json:"name"`
			Fields    []string `json:"fields"`
			Detectors []string `json:"detectors"`
		}
		if json.Unmarshal([]byte(mv), &list) == nil {
			for _, e := range list {
				m.Masking = append(m.Masking, masking.Rule{Policy: e.Policy, Name: e.Name, Fields: e.Fields, Detectors: e.Detectors})
			}
		}
	case []any:
		for _, item := range mv {
			e, ok := item.(map[string]any)
			if !ok {
				continue
			}
			var s masking.Rule
			s.Policy, _ = e["policy"].(string)
			s.Name, _ = e["name"].(string)
			s.Fields = stringList(e["fields"])
			s.Detectors = stringList(e["detectors"])
			m.Masking = append(m.Masking, s)
		}
	}
	return m
}

func anyStrings(in []string) []any {
	out := make([]any, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}

func stringList(v any) []string {
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		if s, ok := item.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// MCPMetadata is what ext_proc learns of an allowed MCP request: its
// server and messages (to match responses to calls, mask and record them)
// and, with a tools/list when filtering is on, the caller (to decide which
// tools the caller could call).
type MCPMetadata struct {
	Host   string            `json:"host"`
	Path   string            `json:"path,omitempty"`
	Server string            `json:"server"`
	Calls  []MCPCallMetadata `json:"calls"`
	Caller *MCPCaller        `json:"caller,omitempty"`
}

// MCPCallMetadata is one message of an MCP request.
type MCPCallMetadata struct {
	// ID is the JSON-RPC id as canonical JSON.
	ID        string `json:"id,omitempty"`
	Method    string `json:"method,omitempty"`
	Name      string `json:"name,omitempty"`
	GCPMethod string `json:"gcp_method,omitempty"`
	// Arguments are the call's arguments, masked as the request's body is
	// for recordings; a JSON string when they were too long to keep.
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// MCPCaller is the identity the request was decided for.
type MCPCaller struct {
	Subject       string         `json:"sub"`
	Email         string         `json:"email,omitempty"`
	EmailVerified bool           `json:"email_verified,omitempty"`
	Issuer        string         `json:"iss"`
	Groups        []string       `json:"groups,omitempty"`
	Actor         string         `json:"act,omitempty"`
	Claims        map[string]any `json:"claims,omitempty"`
}

// MCPJSON encodes MCP for the dynamic metadata; "" when nil.
func (m Metadata) MCPJSON() string {
	if m.MCP == nil {
		return ""
	}
	b, err := json.Marshal(m.MCP)
	if err != nil {
		return ""
	}
	return string(b)
}

// Call returns the call a response's id answers.
func (m *MCPMetadata) Call(id string) (MCPCallMetadata, bool) {
	if m == nil {
		return MCPCallMetadata{}, false
	}
	for _, c := range m.Calls {
		if c.ID == id && id != "" {
			return c, true
		}
	}
	return MCPCallMetadata{}, false
}
