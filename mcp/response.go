package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/airlockhq/airlock/masking"
)

// Responses. Every JSON-RPC message an MCP server sends back is masked
// before the agent sees it, with the request's profile (the default
// profile plus the masking rules its policies selected):
//
//   - a tool result's content[].text (and a resource's contents[].text)
//     that holds JSON is masked as a JSON document of its own, so field
//     rules apply inside it as they would to a REST response body, then
//     written back as a string; any other text is masked as a string
//     (detectors, base64-encoded secrets);
//   - structuredContent, and every other value of the message, is masked
//     as a JSON document;
//   - member names and short strings of the envelope pass through the
//     detectors.
//
// A tools/list result is read too: its tools teach the Registry their
// annotations and x-mcp-header declarations, and, with a filter, the tools
// the caller could never call are removed. A tools/call result is kept
// (masked, cut) for the recorder.

// ErrMessageTooLarge ends a response whose JSON-RPC message (a JSON body or
// one SSE event) is larger than the masker buffers.
var ErrMessageTooLarge = errors.New("mcp: a response message is larger than mcp.max_message_bytes")

// CallInfo is what a response answers, from the request's metadata.
type CallInfo struct {
	Method, Name string
}

// ToolResult is one tool call's result as the agent received it.
type ToolResult struct {
	// ID is the JSON-RPC id (canonical JSON); Tool the tool called.
	ID, Tool string
	// Result is the masked result (or error), cut to the excerpt limit;
	// Bytes is its whole length.
	Result []byte
	Bytes  int
	// IsError is true for a JSON-RPC error or a result with isError.
	IsError bool
}

// ResponseMasker masks the JSON-RPC messages of one MCP response. It is
// not safe for concurrent use.
type ResponseMasker struct {
	eng  *masking.Engine
	prof masking.Profile
	text *masking.TextMasker
	// Call finds what a response with this id answers; nil knows nothing.
	Call func(id string) (CallInfo, bool)
	// Filter, when set, says for each tool of a tools/list result whether
	// the caller may see it.
	Filter func(tools []*Tool) []bool
	// Learn receives the tools of each tools/list result.
	Learn func(tools []*Tool)
	// ExcerptBytes bounds each ToolResult.Result; 0 keeps none.
	ExcerptBytes int
	// Results are the tool results seen so far.
	Results []ToolResult
	masked  int
	removed int
}

// NewResponseMasker returns a masker for one response with profile p.
func NewResponseMasker(eng *masking.Engine, p masking.Profile) (*ResponseMasker, error) {
	tm, err := eng.TextMasker(p)
	if err != nil {
		return nil, err
	}
	return &ResponseMasker{eng: eng, prof: p, text: tm}, nil
}

// Masked is how many values or spans were masked; Removed how many tools
// were filtered out of tools/list results.
func (m *ResponseMasker) Masked() int  { return m.masked }
func (m *ResponseMasker) Removed() int { return m.removed }

// Message masks one JSON-RPC message (or a batch of them) and appends it to
// dst. A body that is not JSON is masked as text.
func (m *ResponseMasker) Message(dst, msg []byte) ([]byte, error) {
	i := skipWS(msg, 0)
	if i < len(msg) && (msg[i] == '{' || msg[i] == '[') {
		start := len(dst)
		out, end, err := m.top(dst, msg, i)
		if err == nil && skipWS(msg, end) == len(msg) {
			return out, nil
		}
		dst = dst[:start]
	}
	out, n := m.text.Mask(dst, msg)
	m.masked += n
	return out, nil
}

// top processes a message, or a batch of them.
func (m *ResponseMasker) top(dst, b []byte, i int) ([]byte, int, error) {
	if b[i] == '{' {
		return m.message(dst, b, i)
	}
	return m.array(dst, b, i, func(dst []byte, j int) ([]byte, int, error) { return m.message(dst, b, j) })
}

// message masks one JSON-RPC message object at b[i], walking its result.
func (m *ResponseMasker) message(dst, b []byte, i int) ([]byte, int, error) {
	var id []byte
	idKnown := false
	var call CallInfo
	known := false
	lookup := func() {
		idKnown = true
		if id != nil && m.Call != nil {
			call, known = m.Call(CanonicalID(id))
		}
	}
	resultStart, resultEnd := -1, -1
	isErr := false
	dst, end, err := m.object(dst, b, i, func(dst, k []byte, j int) ([]byte, int, error) {
		switch string(k) {
		case `"id"`:
			n := valueLen(b[j:])
			if n < 0 {
				return dst, 0, errMalformed
			}
			id = b[j : j+n]
			lookup()
		case `"result"`, `"error"`:
			if !idKnown {
				id = laterMember(b, j, `"id"`)
				lookup()
			}
			resultStart = len(dst)
			var end int
			var err error
			if string(k) == `"result"` && b[j] == '{' {
				dst, end, isErr, err = m.result(dst, b, j, call)
			} else {
				isErr = true
				dst, end, err = m.value(dst, b, j)
			}
			resultEnd = len(dst)
			return dst, end, err
		}
		return m.value(dst, b, j)
	})
	if err != nil {
		return dst, end, err
	}
	if known && call.Method == "tools/call" && resultStart >= 0 {
		out := dst[resultStart:resultEnd]
		r := ToolResult{ID: CanonicalID(id), Tool: call.Name, Bytes: len(out), IsError: isErr}
		if m.ExcerptBytes > 0 {
			r.Result = append([]byte(nil), out[:min(len(out), m.ExcerptBytes)]...)
		}
		m.Results = append(m.Results, r)
	}
	return dst, end, nil
}

// laterMember finds a member of the object whose value starts at b[j]
// among the members after it (an id written after the result).
func laterMember(b []byte, j int, key string) []byte {
	n := valueLen(b[j:])
	if n < 0 {
		return nil
	}
	i := skipWS(b, j+n)
	for i < len(b) && b[i] == ',' {
		i = skipWS(b, i+1)
		if i >= len(b) || b[i] != '"' {
			return nil
		}
		ke := stringEnd(b, i)
		if ke < 0 {
			return nil
		}
		k := b[i:ke]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return nil
		}
		i = skipWS(b, i+1)
		n := valueLen(b[i:])
		if n < 0 {
			return nil
		}
		if string(k) == key {
			return b[i : i+n]
		}
		i = skipWS(b, i+n)
	}
	return nil
}

// result masks a result object: tool results and resource contents member
// by member, a tools/list result through the filter.
func (m *ResponseMasker) result(dst, b []byte, i int, call CallInfo) ([]byte, int, bool, error) {
	isErr := false
	dst, end, err := m.object(dst, b, i, func(dst, k []byte, j int) ([]byte, int, error) {
		switch {
		case (string(k) == `"content"` || string(k) == `"contents"`) && b[j] == '[':
			return m.items(dst, b, j, 0)
		case string(k) == `"tools"` && b[j] == '[' && call.Method == "tools/list":
			return m.tools(dst, b, j)
		case string(k) == `"isError"`:
			isErr = bytes.HasPrefix(b[j:], []byte("true"))
		}
		return m.value(dst, b, j)
	})
	return dst, end, isErr, err
}

// items masks content blocks (or resource contents): text that holds JSON
// as a document of its own.
func (m *ResponseMasker) items(dst, b []byte, i, depth int) ([]byte, int, error) {
	return m.array(dst, b, i, func(dst []byte, j int) ([]byte, int, error) { return m.item(dst, b, j, depth) })
}

func (m *ResponseMasker) item(dst, b []byte, i, depth int) ([]byte, int, error) {
	return m.object(dst, b, i, func(dst, k []byte, j int) ([]byte, int, error) {
		switch {
		case string(k) == `"text"` && b[j] == '"':
			// Found and decoded in one pass.
			sc := getBuf(0)
			defer putBuf(sc)
			e, content, ok := decodeString(b, j, sc)
			if e < 0 {
				return dst, 0, errMalformed
			}
			dst, err := m.textValue(dst, b[j:e], content, ok)
			return dst, e, err
		case string(k) == `"resource"` && b[j] == '{' && depth == 0:
			return m.item(dst, b, j, depth+1)
		}
		return m.value(dst, b, j)
	})
}

// object re-emits the object at b[i] member by member: each key as m.key
// writes it, each value through val.
func (m *ResponseMasker) object(dst, b []byte, i int, val func(dst, k []byte, j int) ([]byte, int, error)) ([]byte, int, error) {
	dst = append(dst, '{')
	first := true
	end, err := members(b, i, func(k []byte, j int) (int, error) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = m.key(dst, k)
		dst = append(dst, ':')
		var end int
		var err error
		dst, end, err = val(dst, k, j)
		return end, err
	})
	return append(dst, '}'), end, err
}

// array re-emits the array at b[i]: objects through obj, other elements
// masked as values.
func (m *ResponseMasker) array(dst, b []byte, i int, obj func(dst []byte, j int) ([]byte, int, error)) ([]byte, int, error) {
	dst = append(dst, '[')
	n := 0
	end, err := elements(b, i, func(j int) (int, error) {
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		var end int
		var err error
		if b[j] == '{' {
			dst, end, err = obj(dst, j)
		} else {
			dst, end, err = m.value(dst, b, j)
		}
		return end, err
	})
	return append(dst, ']'), end, err
}

// tools filters and masks the tools of a tools/list result.
func (m *ResponseMasker) tools(dst, b []byte, i int) ([]byte, int, error) {
	var raws [][]byte
	end, err := elements(b, i, func(j int) (int, error) {
		n := valueLen(b[j:])
		if n < 0 {
			return 0, errMalformed
		}
		raws = append(raws, b[j:j+n])
		return j + n, nil
	})
	if err != nil {
		return dst, end, err
	}
	parsed := make([]*Tool, len(raws))
	var valid []*Tool
	for i, raw := range raws {
		t, err := ParseTool(raw)
		if err != nil {
			// A conforming client drops it; nothing is learned from it.
			t = &Tool{Name: toolName(raw)}
		} else {
			valid = append(valid, t)
		}
		parsed[i] = t
	}
	if m.Learn != nil && len(valid) > 0 {
		m.Learn(valid)
	}
	keep := make([]bool, len(raws))
	for i := range keep {
		keep[i] = true
	}
	if m.Filter != nil {
		if k := m.Filter(parsed); len(k) == len(raws) {
			keep = k
		}
	}
	dst = append(dst, '[')
	n := 0
	for i, raw := range raws {
		if !keep[i] {
			m.removed++
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		if dst, err = m.doc(dst, raw); err != nil {
			return dst, end, err
		}
	}
	return append(dst, ']'), end, nil
}

// value masks a value that is not walked: scalars pass, strings through
// the detectors, objects and arrays as documents.
func (m *ResponseMasker) value(dst, b []byte, j int) ([]byte, int, error) {
	n := valueLen(b[j:])
	if n < 0 {
		return dst, 0, errMalformed
	}
	out, err := m.any(dst, b[j:j+n])
	return out, j + n, err
}

func toolName(raw []byte) string {
	var d struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(raw, &d)
	return d.Name
}

// textValue masks a text string, the token tok whose content is s: as a
// JSON document when it holds one, else as a string.
func (m *ResponseMasker) textValue(dst, tok, s []byte, ok bool) ([]byte, error) {
	if ok {
		if i := skipWS(s, 0); i < len(s) && (s[i] == '{' || s[i] == '[') {
			doc := getBuf(len(s) + len(s)/8 + 64)
			masked, err := m.doc(*doc, s)
			*doc = masked[:0]
			if err == nil {
				dst = appendJSONString(dst, masked)
			}
			putBuf(doc)
			if err == nil {
				return dst, nil
			}
		}
	}
	return m.doc(dst, tok)
}

// any masks a value that is not walked: scalars pass, strings through the
// detectors, objects and arrays as documents.
func (m *ResponseMasker) any(dst, v []byte) ([]byte, error) {
	switch v[0] {
	case '"':
		if bytes.IndexByte(v, '\\') < 0 && len(v) < 256 {
			out, n := m.text.MaskFound(dst, v)
			if n == 0 {
				return append(dst, v...), nil
			}
			m.masked += n
			return out, nil
		}
		return m.doc(dst, v)
	case '{', '[':
		return m.doc(dst, v)
	}
	return append(dst, v...), nil
}

// key passes a member name through the detectors.
func (m *ResponseMasker) key(dst, k []byte) []byte {
	if bytes.IndexByte(k, '\\') >= 0 {
		// An escaped name is decoded, masked and written back.
		sc := getBuf(0)
		defer putBuf(sc)
		s, _ := stringContent(k, sc)
		out, n := m.text.Mask(nil, s)
		m.masked += n
		return appendJSONString(dst, out)
	}
	out, n := m.text.MaskFound(dst, k)
	if n == 0 {
		return append(dst, k...)
	}
	m.masked += n
	return out
}

// doc masks a JSON value as a whole document.
func (m *ResponseMasker) doc(dst, v []byte) ([]byte, error) {
	s, err := m.eng.NewStream(m.prof, masking.JSON)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	out, err := s.Write(dst, v)
	if err == nil {
		out, err = s.Close(out)
	}
	if err != nil {
		return dst[:start], fmt.Errorf("mcp: masking a response value: %w", err)
	}
	m.masked += s.Masked()
	return out, nil
}

// stringContent is the content of a JSON string token: the bytes between
// the quotes when it has no escape, else decoded into scratch.
func stringContent(tok []byte, scratch *[]byte) ([]byte, bool) {
	if len(tok) < 2 || tok[0] != '"' || tok[len(tok)-1] != '"' {
		return nil, false
	}
	s := tok[1 : len(tok)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s, true
	}
	out, ok := unescape((*scratch)[:0], s)
	*scratch = out
	return out, ok
}

// unescape decodes the escapes of a JSON string's content, as
// encoding/json does (an unpaired surrogate becomes U+FFFD). Decoding only
// shrinks a string, so the output is written into room grown once.
func unescape(dst, s []byte) ([]byte, bool) {
	dst = slices.Grow(dst, len(s))
	w := len(dst)
	out := dst[:w+len(s)]
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			out[w] = c
			w++
			i++
			continue
		}
		if i+1 >= len(s) {
			return out[:w], false
		}
		c = s[i+1]
		i += 2
		switch c {
		case '"', '\\', '/':
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'u':
			r, ok := hex4(s[i:])
			if !ok {
				return out[:w], false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if v, ok := hex4(s[i+2:]); ok {
						r2 = v
					}
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			w += utf8.EncodeRune(out[w:], r)
			continue
		default:
			return out[:w], false
		}
		out[w] = c
		w++
	}
	return out[:w], true
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

const hexDigits = "0123456789abcdef"

// jsonSafe marks the bytes a JSON string holds as they are.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
// It writes by index into room grown per block (an escape is at most six
// bytes), without an append per run: nested JSON has a quote to escape
// every few bytes.
func appendJSONString(dst, s []byte) []byte {
	dst = slices.Grow(dst, len(s)+len(s)/4+2)
	dst = append(dst, '"')
	const block = 4 << 10
	for i := 0; i < len(s); {
		end := min(len(s), i+block)
		w := len(dst)
		dst = slices.Grow(dst, 6*(end-i))
		out := dst[:cap(dst)]
		for i < end {
			c := s[i]
			if jsonSafe[c] && c < utf8.RuneSelf {
				out[w] = c
				w++
				i++
				continue
			}
			if c < utf8.RuneSelf {
				out[w] = '\\'
				switch c {
				case '"', '\\':
					out[w+1] = c
					w += 2
				case '\n':
					out[w+1] = 'n'
					w += 2
				case '\r':
					out[w+1] = 'r'
					w += 2
				case '\t':
					out[w+1] = 't'
					w += 2
				default:
					out[w+1], out[w+2], out[w+3], out[w+4], out[w+5] = 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf]
					w += 6
				}
				i++
				continue
			}
			// A run of multi-byte runes, checked and copied as they are.
			j := i
			for j < end && s[j] >= utf8.RuneSelf {
				j++
			}
			if utf8.Valid(s[i:j]) {
				w += copy(out[w:], s[i:j])
				i = j
			} else {
				r, size := utf8.DecodeRune(s[i:])
				if r == utf8.RuneError && size == 1 {
					w += copy(out[w:], `\ufffd`)
				} else {
					w += copy(out[w:], s[i:i+size])
				}
				i += size
			}
			if i > end {
				end = i
			}
		}
		dst = out[:w]
	}
	return append(dst, '"')
}

// decodeString reads the JSON string at b[j] (b[j] == '"'): it returns the
// index after it and its content, the bytes between the quotes when it has
// no escape, else decoded into scratch. ok is false for an escape JSON does
// not allow; end is -1 when the string does not end.
func decodeString(b []byte, j int, scratch *[]byte) (end int, content []byte, ok bool) {
	i := j + 1
	for i < len(b) {
		c := b[i]
		if c == '"' {
			return i + 1, b[j+1 : i], true
		}
		if c == '\\' {
			break
		}
		i++
	}
	if i >= len(b) {
		return -1, nil, false
	}
	e := stringEnd(b, j)
	if e < 0 {
		return -1, nil, false
	}
	out, ok := unescape((*scratch)[:0], b[j+1:e-1])
	*scratch = out
	return e, out, ok
}
