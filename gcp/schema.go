package gcp

import (
	"bytes"
	"compress/gzip"
	_ "embed" // the generated request schemas
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/airlockhq/airlock/gcp/internal/schemagen"
)

// schemaData holds the request-body schemas of every GA Discovery document
// (go generate ./gcp): an index line, then one document per gzipped JSON
// line (see schemagen.EncodeLines).
//
//go:embed schemas.jsonl.gz
var schemaData []byte

// Google's JSON parsers for API requests accept more than one spelling of a
// message: a field's original snake_case proto name beside its lowerCamel
// JSON name (invoker_iam_disabled for invokerIamDisabled), quoted booleans
// and numbers, and enum numbers beside enum names. A policy written against
// the Discovery spelling must see that spelling whatever the agent sent,
// so normalizeBody rewrites a body against the method's request schema:
//
//   - a field spelt in snake_case whose lowerCamel form is a property of
//     the schema is renamed to it; both spellings in one object are refused;
//   - "true" and "false" for a boolean field become booleans; a quoted
//     number for an integer or number field becomes a number; a number for
//     an int64 field (written as a string in Discovery) becomes its string;
//   - a number for an enum field is refused: the Discovery document lists
//     enum names, not their numbers, so the gateway cannot tell which name
//     Google would read;
//   - map values (additionalProperties) keep their keys, which are data.
//
// Where the schema is unknown (an unknown method, a field the schema does
// not describe, a free-form value), keys are left as sent, and an object
// naming one field in two spellings is refused.

// schemaTable indexes the embedded schemas. Only the index is decoded up
// front; a document's schemas are split (not decoded) on its first use and
// each schema is decoded on its first use.
type schemaTable struct {
	lines   [][]byte // document lines; lines[0] is the first document
	methods map[string]schemagen.IndexEntry
	docs    []docSchemas
}

// docSchemas is one document's schemas, decoded lazily.
type docSchemas struct {
	once sync.Once
	raw  map[string]json.RawMessage
	err  error

	mu      sync.Mutex
	decoded map[string]*schemagen.Schema
}

var (
	schemasOnce sync.Once
	schemas     *schemaTable
	schemasErr  error
)

func requestSchemas() (*schemaTable, error) {
	schemasOnce.Do(func() { schemas, schemasErr = parseSchemaTable(schemaData) })
	return schemas, schemasErr
}

// WarmSchemas decompresses the embedded request schemas and splits every
// document (decoding no schema yet), so that no request pays for it;
// servers call it at start. Otherwise the first request with a body reads
// the index (tens of milliseconds) and the first of each API its document.
func WarmSchemas() error {
	t, err := requestSchemas()
	if err != nil {
		return err
	}
	for i := range t.docs {
		if err := t.split(i); err != nil {
			return err
		}
	}
	return nil
}

func parseSchemaTable(data []byte) (*schemaTable, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gcp: request schemas: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gcp: request schemas: %w", err)
	}
	head, rest, _ := bytes.Cut(raw, []byte{'\n'})
	var idx schemagen.Index
	if err := json.Unmarshal(head, &idx); err != nil {
		return nil, fmt.Errorf("gcp: request schemas index: %w", err)
	}
	t := &schemaTable{methods: idx.Methods}
	for _, line := range bytes.Split(rest, []byte{'\n'}) {
		if len(line) > 0 {
			t.lines = append(t.lines, line)
		}
	}
	for key, e := range t.methods {
		if e.Doc < 1 || e.Doc > len(t.lines) {
			return nil, fmt.Errorf("gcp: request schemas index: %s names document %d of %d", key, e.Doc, len(t.lines))
		}
	}
	t.docs = make([]docSchemas, len(t.lines))
	return t, nil
}

// schemaView resolves the schemas of one document.
type schemaView struct{ d *docSchemas }

// get decodes (once) and returns the named schema, or nil.
func (v schemaView) get(name string) *schemagen.Schema {
	if v.d == nil {
		return nil
	}
	v.d.mu.Lock()
	defer v.d.mu.Unlock()
	if s, ok := v.d.decoded[name]; ok {
		return s
	}
	var s *schemagen.Schema
	if raw, ok := v.d.raw[name]; ok {
		s = new(schemagen.Schema)
		if json.Unmarshal(raw, s) != nil {
			s = nil
		}
	}
	if v.d.decoded == nil {
		v.d.decoded = map[string]*schemagen.Schema{}
	}
	v.d.decoded[name] = s
	return s
}

// schemaFor returns the request schema of method in version and a view of
// its document, or nil when the method takes no body or is unknown.
func (t *schemaTable) schemaFor(version, method string) (*schemagen.Schema, schemaView, error) {
	e, ok := t.methods[version+" "+method]
	if !ok {
		return nil, schemaView{}, nil
	}
	if err := t.split(e.Doc - 1); err != nil {
		return nil, schemaView{}, err
	}
	v := schemaView{d: &t.docs[e.Doc-1]}
	return v.get(e.Schema), v, nil
}

// split separates document i's schemas, once.
func (t *schemaTable) split(i int) error {
	d := &t.docs[i]
	d.once.Do(func() {
		var doc struct {
			API     string                     `json:"api"`
			Version string                     `json:"version"`
			Schemas map[string]json.RawMessage `json:"schemas"`
		}
		if err := json.Unmarshal(t.lines[i], &doc); err != nil {
			d.err = fmt.Errorf("gcp: request schemas of document %d: %w", i+1, err)
		}
		d.raw = doc.Schemas
	})
	return d.err
}

// normalizeBody rewrites v, a body as parseStrictJSON returns it, into the
// Discovery spelling of the request message of op. The error is a
// *RequestError.
func normalizeBody(op Operation, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	var s *schemagen.Schema
	var view schemaView
	if op.Method != "" {
		t, err := requestSchemas()
		if err != nil {
			return nil, err
		}
		if s, view, err = t.schemaFor(op.Version, op.Method); err != nil {
			return nil, err
		}
	}
	n := normalizer{schemas: view}
	return n.value(v, s, nil, 0)
}

type normalizer struct {
	schemas schemaView
}

// maxSafeInt is the largest integer a float64 holds exactly.
const maxSafeInt = 1 << 53

func (n *normalizer) resolve(s *schemagen.Schema) *schemagen.Schema {
	for i := 0; s != nil && s.Ref != "" && i < 32; i++ {
		s = n.schemas.get(s.Ref)
	}
	if s != nil && s.Ref != "" {
		return nil
	}
	return s
}

func (n *normalizer) value(v any, s *schemagen.Schema, at *jpath, depth int) (any, error) {
	s = n.resolve(s)
	if depth > maxBodyDepth {
		return v, nil
	}
	switch x := v.(type) {
	case map[string]any:
		switch {
		case s != nil && len(s.Props) > 0:
			return n.object(x, s, at, depth)
		case s != nil && s.Map != nil:
			for k, e := range x {
				nv, err := n.value(e, s.Map, &jpath{up: at, key: k}, depth+1)
				if err != nil {
					return nil, err
				}
				x[k] = nv
			}
			return x, nil
		}
		return n.unknownObject(x, at, depth)
	case []any:
		var item *schemagen.Schema
		if s != nil {
			item = s.Items
		}
		for i, e := range x {
			if item == nil && !isContainer(e) {
				continue
			}
			nv, err := n.value(e, item, &jpath{up: at, idx: i, elem: true}, depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = nv
		}
		return x, nil
	case string:
		if s == nil {
			return x, nil
		}
		switch s.Type {
		case "boolean":
			switch x {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		case "integer", "number":
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f, nil
			}
		}
		return x, nil
	case float64:
		if s == nil {
			return x, nil
		}
		if s.Enum {
			return nil, refusef("the JSON body gives the enum field %s as a number (%v); send the value's name, as the API's documentation spells it", fieldName(at), x)
		}
		if s.Type == "string" && (s.Format == "int64" || s.Format == "uint64") {
			if x != math.Trunc(x) || math.Abs(x) > maxSafeInt {
				return nil, refusef("the JSON body gives the 64-bit field %s as a number the gateway cannot read exactly; send it as a string", fieldName(at))
			}
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		}
		return x, nil
	}
	return v, nil
}

func (n *normalizer) object(x map[string]any, s *schemagen.Schema, at *jpath, depth int) (any, error) {
	for _, k := range sortedKeys(x) {
		e := x[k]
		if p, ok := s.Props[k]; ok {
			nv, err := n.value(e, p, &jpath{up: at, key: k}, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = nv
			continue
		}
		if c := lowerCamel(k); c != k {
			if p, ok := s.Props[c]; ok {
				if _, both := x[c]; both {
					return nil, refusef("the JSON body gives the field %s twice, as %q and %q; send it once, as %q", fieldName(&jpath{up: at, key: c}), c, k, c)
				}
				nv, err := n.value(e, p, &jpath{up: at, key: c}, depth+1)
				if err != nil {
					return nil, err
				}
				delete(x, k)
				x[c] = nv
				continue
			}
		}
		// A field the schema does not describe: Google refuses unknown
		// names, so it is left as sent.
		nv, err := n.value(e, nil, &jpath{up: at, key: k}, depth+1)
		if err != nil {
			return nil, err
		}
		x[k] = nv
	}
	return x, nil
}

// unknownObject checks an object whose schema is unknown: keys stay as
// sent, but one field in two spellings is refused. Members are visited in
// map order; when one is refused, the first in key order is reported, so
// that the message does not depend on the order.
func (n *normalizer) unknownObject(x map[string]any, at *jpath, depth int) (any, error) {
	if err := twoSpellings(x, at); err != nil {
		return nil, err
	}
	// Without a schema nothing is rewritten: only objects and arrays,
	// checked in place, can hold a refusal.
	for k, e := range x {
		if !isContainer(e) {
			continue
		}
		if _, err := n.value(e, nil, &jpath{up: at, key: k}, depth+1); err != nil {
			return nil, n.firstRefusal(x, at, depth, err)
		}
	}
	return x, nil
}

func isContainer(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// firstRefusal is the refusal of x's first member in key order (err, when
// only one member is refused).
func (n *normalizer) firstRefusal(x map[string]any, at *jpath, depth int, err error) error {
	for _, k := range sortedKeys(x) {
		if _, e := n.value(x[k], nil, &jpath{up: at, key: k}, depth+1); e != nil {
			return e
		}
	}
	return err
}

// twoSpellings refuses an object naming one protobuf field twice, as
// "a_b" and "aB": only a key with an underscore can collide with another.
func twoSpellings(x map[string]any, at *jpath) error {
	var seen map[string]string
	for k := range x {
		if strings.IndexByte(k, '_') >= 0 {
			seen = make(map[string]string, len(x))
			break
		}
	}
	if seen == nil {
		return nil
	}
	var first, second string
	for k := range x {
		c := lowerCamel(k)
		if other, dup := seen[c]; dup {
			a, b := min(other, k), max(other, k)
			if first == "" || a < first || a == first && b < second {
				first, second = a, b
			}
			seen[c] = a
			continue
		}
		seen[c] = k
	}
	if first == "" {
		return nil
	}
	return refusef("the JSON body names the field %s in two spellings (%q and %q); send one", fieldName(&jpath{up: at, key: lowerCamel(first)}), first, second)
}

// jpath is where a value is in the body, built into text only for a
// refusal: a member (key) or an array element (idx) of up.
type jpath struct {
	up   *jpath
	key  string
	idx  int
	elem bool
}

func (p *jpath) String() string {
	var b strings.Builder
	p.write(&b)
	return b.String()
}

func (p *jpath) write(b *strings.Builder) {
	if p == nil {
		return
	}
	p.up.write(b)
	if p.elem {
		b.WriteString("[" + strconv.Itoa(p.idx) + "]")
	} else {
		b.WriteString("." + p.key)
	}
}

// lowerCamel is the JSON name protobuf gives a field: underscores dropped,
// each letter after one upper-cased (invoker_iam_disabled ->
// invokerIamDisabled).
func lowerCamel(k string) string {
	if strings.IndexByte(k, '_') < 0 {
		return k
	}
	var b strings.Builder
	b.Grow(len(k))
	up := false
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '_' {
			up = true
			continue
		}
		if up && c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up = false
		b.WriteByte(c)
	}
	return b.String()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func fieldName(p *jpath) string {
	at := strings.TrimPrefix(p.String(), ".")
	if at == "" {
		return "(the body)"
	}
	return clip(at)
}
