package mcp

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Registry holds what airlock learns from the tools/list responses it
// sees: each tool's annotations and x-mcp-header bindings, per server host.
// The responses come from Google's servers (the gateway routes to
// *.googleapis.com only), whose declarations airlock trusts. It is bounded
// and safe for concurrent use.
type Registry struct {
	mu       sync.RWMutex
	hosts    map[string]map[string]*Tool
	maxHosts int
	maxTools int
}

// NewRegistry returns an empty registry that keeps at most maxHosts
// servers of at most maxTools tools each (defaults 256 and 1024).
func NewRegistry(maxHosts, maxTools int) *Registry {
	if maxHosts <= 0 {
		maxHosts = 256
	}
	if maxTools <= 0 {
		maxTools = 1024
	}
	return &Registry{hosts: map[string]map[string]*Tool{}, maxHosts: maxHosts, maxTools: maxTools}
}

// Learn records the tools of one tools/list page of host. A page adds or
// replaces tools; tools of other pages stay.
func (r *Registry) Learn(host string, tools []*Tool) {
	if r == nil || len(tools) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.hosts[host]
	if m == nil {
		if len(r.hosts) >= r.maxHosts {
			return
		}
		m = map[string]*Tool{}
		r.hosts[host] = m
	}
	for _, t := range tools {
		if _, ok := m[t.Name]; !ok && len(m) >= r.maxTools {
			continue
		}
		m[t.Name] = t
	}
}

// Lookup returns what was learned of a tool at host.
func (r *Registry) Lookup(host, name string) (*Tool, bool) {
	if r == nil {
		return nil, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.hosts[host][name]
	return t, ok
}

// Tools lists the tools learned at host, sorted by name.
func (r *Registry) Tools(host string) []*Tool {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Tool, 0, len(r.hosts[host]))
	for _, t := range r.hosts[host] {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ToolDefinition is a tool as tools/list returns it, the members airlock
// reads.
type ToolDefinition struct {
	Name        string          `json:"name"`
	Annotations *Hints          `json:"annotations,omitempty"`
	InputSchema json.RawMessage `json:"inputSchema,omitempty"`
}

// ParseTool reads one tool definition of a tools/list result. A tool whose
// x-mcp-header declarations break the rules of SEP-2243 (a conforming
// client excludes it) is an error.
func ParseTool(raw json.RawMessage) (*Tool, error) {
	var d ToolDefinition
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("mcp: tool definition: %w", err)
	}
	if d.Name == "" {
		return nil, fmt.Errorf("mcp: tool definition without a name")
	}
	t := &Tool{Name: d.Name, Source: "server", HeadersKnown: true}
	if d.Annotations != nil {
		t.Hints = *d.Annotations
	}
	if len(d.InputSchema) > 0 {
		var s schemaProps
		if err := json.Unmarshal(d.InputSchema, &s); err != nil {
			return nil, fmt.Errorf("mcp: tool %s: input schema: %w", d.Name, err)
		}
		seen := map[string]bool{}
		var err error
		t.Headers, err = collectBindings(s.Properties, nil, seen, nil)
		if err != nil {
			return nil, fmt.Errorf("mcp: tool %s: %w", d.Name, err)
		}
	}
	return t, nil
}

// schemaProps is the part of a JSON Schema x-mcp-header lives in.
type schemaProps struct {
	Type       any                    `json:"type"`
	XMCPHeader json.RawMessage        `json:"x-mcp-header"`
	Properties map[string]schemaProps `json:"properties"`
}

func collectBindings(props map[string]schemaProps, prefix []string, seen map[string]bool, out []HeaderBinding) ([]HeaderBinding, error) {
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := props[n]
		path := append(append([]string(nil), prefix...), n)
		if len(p.XMCPHeader) > 0 {
			var h string
			if err := json.Unmarshal(p.XMCPHeader, &h); err != nil || h == "" {
				return nil, fmt.Errorf("property %s: x-mcp-header must be a non-empty string", strings.Join(path, "."))
			}
			if !isToken(h) {
				return nil, fmt.Errorf("property %s: x-mcp-header %q is not an HTTP header name", strings.Join(path, "."), h)
			}
			if t, _ := p.Type.(string); t != "string" && t != "integer" && t != "boolean" {
				return nil, fmt.Errorf("property %s: x-mcp-header on a %v, not a string, integer or boolean", strings.Join(path, "."), p.Type)
			}
			lh := strings.ToLower(h)
			if seen[lh] {
				return nil, fmt.Errorf("x-mcp-header %q is declared twice", h)
			}
			seen[lh] = true
			out = append(out, HeaderBinding{Path: path, Header: h})
		}
		if len(p.Properties) > 0 {
			var err error
			if out, err = collectBindings(p.Properties, path, seen, out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// isToken reports an HTTP field name (RFC 9110 tchar).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}
