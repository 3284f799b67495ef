package mcp

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Hints are the annotations a server declares for a tool (readOnlyHint,
// destructiveHint, idempotentHint, openWorldHint); nil means not declared.
type Hints struct {
	ReadOnly    *bool `json:"readOnlyHint,omitempty"`
	Destructive *bool `json:"destructiveHint,omitempty"`
	Idempotent  *bool `json:"idempotentHint,omitempty"`
	OpenWorld   *bool `json:"openWorldHint,omitempty"`
}

// IsReadOnly is readOnlyHint, false when not declared.
func (h Hints) IsReadOnly() bool { return h.ReadOnly != nil && *h.ReadOnly }

// IsDestructive follows MCP's defaults: a tool that is not read-only may
// be destructive unless it says otherwise.
func (h Hints) IsDestructive() bool {
	if h.IsReadOnly() {
		return false
	}
	return h.Destructive == nil || *h.Destructive
}

// HeaderBinding is one x-mcp-header of a tool's input schema: the argument
// at Path is mirrored in the header Mcp-Param-{Header}.
type HeaderBinding struct {
	Path   []string
	Header string
}

// Tool is what airlock knows of one tool of one server.
type Tool struct {
	Name  string
	Hints Hints
	// Headers are the tool's x-mcp-header bindings; HeadersKnown is false
	// when airlock has not seen the tool's input schema.
	Headers      []HeaderBinding
	HeadersKnown bool
	// rest maps the tool to the REST method it performs; nil when none.
	rest *template
	// method is the Discovery id of that method.
	method string
	// Source is "catalog" or "server" (learned from tools/list).
	Source string
}

// Mapped reports whether the tool performs a REST method airlock knows.
func (t *Tool) Mapped() bool { return t != nil && t.rest != nil }

// Method is the Discovery id of the REST method the tool performs, "" when
// none.
func (t *Tool) Method() string {
	if t == nil {
		return ""
	}
	return t.method
}

// REST is the tool's REST template ("DELETE compute/v1/..."), "" when none.
func (t *Tool) REST() string {
	if t == nil || t.rest == nil {
		return ""
	}
	return t.rest.src
}

//go:embed catalog.json
var catalogJSON []byte

// Catalog is the shipped knowledge of Google's MCP servers: their tools,
// the hints Google declares for them, and the REST method each performs.
// It is immutable.
type Catalog struct {
	servers map[string]map[string]*Tool
}

var (
	defaultOnce    sync.Once
	defaultCatalog *Catalog
	defaultErr     error
)

// DefaultCatalog returns the embedded catalog, parsed once.
func DefaultCatalog() *Catalog {
	defaultOnce.Do(func() { defaultCatalog, defaultErr = ParseCatalog(catalogJSON) })
	if defaultErr != nil {
		panic("mcp: the embedded catalog does not parse: " + defaultErr.Error())
	}
	return defaultCatalog
}

// ParseCatalog reads a catalog document.
func ParseCatalog(data []byte) (*Catalog, error) {
	var doc struct {
		Servers map[string]map[string]struct {
			ReadOnly    *bool  `json:"readOnly"`
			Destructive *bool  `json:"destructive"`
			Idempotent  *bool  `json:"idempotent"`
			OpenWorld   *bool  `json:"openWorld"`
			REST        string `json:"rest"`
			Method      string `json:"method"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("mcp: catalog: %w", err)
	}
	c := &Catalog{servers: map[string]map[string]*Tool{}}
	for server, tools := range doc.Servers {
		m := map[string]*Tool{}
		for name, e := range tools {
			t := &Tool{Name: name, Source: "catalog", Hints: Hints{ReadOnly: e.ReadOnly, Destructive: e.Destructive, Idempotent: e.Idempotent, OpenWorld: e.OpenWorld}}
			if e.ReadOnly == nil {
				f := false
				t.Hints.ReadOnly = &f
			}
			if e.REST != "" {
				tpl, err := parseTemplate(e.REST)
				if err != nil {
					return nil, fmt.Errorf("mcp: catalog: %s/%s: %w", server, name, err)
				}
				if e.Method == "" {
					return nil, fmt.Errorf("mcp: catalog: %s/%s: a rest mapping needs its method id", server, name)
				}
				t.rest, t.method = tpl, e.Method
			}
			m[name] = t
		}
		c.servers[server] = m
	}
	return c, nil
}

// Servers lists the servers of the catalog, sorted.
func (c *Catalog) Servers() []string {
	out := make([]string, 0, len(c.servers))
	for s := range c.servers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Tools lists a server's tools, sorted by name.
func (c *Catalog) Tools(server string) []*Tool {
	m := c.servers[server]
	out := make([]*Tool, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Tool returns a server's tool.
func (c *Catalog) Tool(server, name string) (*Tool, bool) {
	t, ok := c.servers[server][name]
	return t, ok
}

// template is a REST method's verb and path with argument placeholders.
type template struct {
	src   string
	verb  string
	parts []tplPart
	query string
}

// tplPart is a literal run of the path or a placeholder.
type tplPart struct {
	lit      string
	arg      []string // the argument's path: "service.name" is [service name]
	reserved bool     // {+arg}: a resource name that may hold '/'
}

func parseTemplate(s string) (*template, error) {
	verb, rest, ok := strings.Cut(s, " ")
	if !ok || verb == "" || rest == "" || strings.HasPrefix(rest, "/") {
		return nil, fmt.Errorf("rest %q: want VERB path/below/the/host", s)
	}
	t := &template{src: s, verb: verb}
	rest, t.query, _ = strings.Cut(rest, "?")
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			t.parts = append(t.parts, tplPart{lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tplPart{lit: rest[:i]})
		}
		j := strings.IndexByte(rest, '}')
		if j < i {
			return nil, fmt.Errorf("rest %q: unclosed placeholder", s)
		}
		name := rest[i+1 : j]
		p := tplPart{}
		if strings.HasPrefix(name, "+") {
			p.reserved, name = true, name[1:]
		}
		if name == "" {
			return nil, fmt.Errorf("rest %q: empty placeholder", s)
		}
		p.arg = strings.Split(name, ".")
		t.parts = append(t.parts, p)
		rest = rest[j+1:]
	}
	return t, nil
}

// fill builds the REST path (with its query) from a call's arguments.
// missing names an argument the template needs that the call does not
// give (the call is then unmapped); err refuses an argument that would
// change the path's structure.
func (t *template) fill(args map[string]any) (path, missing string, err error) {
	var b strings.Builder
	b.WriteByte('/')
	for _, p := range t.parts {
		if p.arg == nil {
			b.WriteString(p.lit)
			continue
		}
		name := strings.Join(p.arg, ".")
		v, ok := lookup(args, p.arg)
		if !ok || v == nil {
			return "", name, nil
		}
		s, ok := scalarString(v)
		if !ok {
			return "", "", fmt.Errorf("argument %s must be a string", name)
		}
		if s == "" {
			return "", name, nil
		}
		if strings.ContainsAny(s, "?#%") || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return "", "", fmt.Errorf("argument %s holds a character that is not allowed in a resource name (?, #, %%, a control character)", name)
		}
		segs := []string{s}
		if p.reserved {
			segs = strings.Split(s, "/")
		} else if strings.Contains(s, "/") {
			return "", "", fmt.Errorf("argument %s must be one name, without '/'", name)
		}
		for i, seg := range segs {
			if seg == "" || seg == "." || seg == ".." {
				return "", "", fmt.Errorf("argument %s has an empty or dot segment", name)
			}
			if i > 0 {
				b.WriteByte('/')
			}
			b.WriteString(url.PathEscape(seg))
		}
	}
	if t.query != "" {
		b.WriteByte('?')
		b.WriteString(t.query)
	}
	return b.String(), "", nil
}

// lookup finds the argument at path in args.
func lookup(args map[string]any, path []string) (any, bool) {
	var cur any = args
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// scalarString renders a string or an integer argument.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		if x == float64(int64(x)) && x > -1<<53 && x < 1<<53 {
			return strconv.FormatInt(int64(x), 10), true
		}
	}
	return "", false
}
