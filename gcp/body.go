package gcp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Request bodies as Google reads them. Policies may inspect request.body,
// and a guarded rule such as has(request.body.items) is skipped when the
// body is null, so a body that exists must never look absent. readBody
// sorts every body into one of three cases:
//
//   - no body: nil value, nothing unreadable;
//   - a JSON document Google would parse as the request message: the value,
//     parsed as strictly as the strictest reader (a duplicate member name is
//     refused before policy, since Google's parser merges duplicates where
//     Go's keeps the last);
//   - a body that exists but cannot be read as JSON here (cut by Envoy, over
//     the size limit, a media upload, protobuf, another charset, invalid
//     JSON or UTF-8): Unreadable says why, and policies get an error value,
//     so that every use of request.body fails closed, has() included.
//
// A multipart/related media upload's metadata part (its first part, JSON)
// is the body Google reads as the object resource; the media that follows
// is not.

// maxBodyDepth bounds the nesting of a parsed body.
const maxBodyDepth = 256

// readBody parses body for policies. contentType is the effective one ($ct
// applied). limit, when positive, is the largest body parsed. The error is a
// *RequestError refusing the request before policy.
func readBody(path, contentType string, body []byte, partial bool, limit int) (value any, unreadable string, err error) {
	if len(body) == 0 && !partial {
		return nil, "", nil
	}
	if partial {
		return nil, fmt.Sprintf("the body was cut at %d bytes by the gateway (it inspects at most that much)", len(body)), nil
	}
	if limit > 0 && len(body) > limit {
		return nil, fmt.Sprintf("the body is %d bytes, more than the %d the gateway parses", len(body), limit), nil
	}
	mt, params, perr := mime.ParseMediaType(contentType)
	if strings.TrimSpace(contentType) == "" {
		mt, perr = "", nil
	}
	if perr != nil {
		return nil, fmt.Sprintf("its Content-Type %q cannot be parsed", clip(contentType)), nil
	}
	if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return nil, fmt.Sprintf("its charset is %s, not UTF-8", clip(cs)), nil
	}
	switch {
	case mt == "" || isJSONMediaType(mt):
		return parseStrictJSON(body)
	case mt == "multipart/related" && isUploadPath(path):
		return uploadMetadata(body, params["boundary"])
	}
	return nil, fmt.Sprintf("it is %s, not JSON", clip(mt)), nil
}

func isJSONMediaType(mt string) bool {
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// uploadMetadata reads the JSON metadata part of a multipart/related upload.
func uploadMetadata(body []byte, boundary string) (any, string, error) {
	if boundary == "" {
		return nil, "it is multipart/related without a boundary", nil
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	p, err := mr.NextRawPart()
	if err != nil {
		return nil, "its multipart/related body cannot be parsed", nil
	}
	mt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
	if err != nil || !isJSONMediaType(mt) {
		return nil, "the first part of its multipart/related body is not JSON metadata", nil
	}
	meta, err := io.ReadAll(p)
	if err != nil {
		return nil, "its multipart/related body cannot be parsed", nil
	}
	return parseStrictJSON(meta)
}

// utf8BOM may precede a JSON text; RFC 8259 lets parsers ignore it.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// parseStrictJSON parses one JSON text (RFC 8259) into the values
// encoding/json produces (map[string]any, []any, float64, string, bool,
// nil). It refuses what two parsers could read differently: a duplicate
// member name is a *RequestError; invalid UTF-8, an unpaired surrogate
// escape, trailing data and nesting deeper than maxBodyDepth make the body
// unreadable.
func parseStrictJSON(b []byte) (any, string, error) {
	b = bytes.TrimPrefix(b, utf8BOM)
	if !utf8.Valid(b) {
		return nil, "it is not valid UTF-8", nil
	}
	p := jsonParser{b: b}
	p.ws()
	v, err := p.value(0)
	if err == nil {
		p.ws()
		if p.i < len(p.b) {
			err = p.fail("data after the first value")
		}
	}
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			return nil, "", err
		}
		return nil, "it is not valid JSON (" + err.Error() + ")", nil
	}
	return v, "", nil
}

// jsonParser is a strict recursive-descent JSON parser over a byte slice.
type jsonParser struct {
	b   []byte
	i   int
	buf []byte // scratch for strings with escapes
}

type syntaxError struct {
	msg string
	at  int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.at) }

func (p *jsonParser) fail(msg string) error { return &syntaxError{msg: msg, at: p.i} }

func (p *jsonParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if depth > maxBodyDepth {
		return nil, p.fail(fmt.Sprintf("nested deeper than %d levels", maxBodyDepth))
	}
	if p.i >= len(p.b) {
		return nil, p.fail("unexpected end")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return nil, p.fail(fmt.Sprintf("unexpected %q", rune(p.b[p.i])))
}

func (p *jsonParser) literal(word string) error {
	if !bytes.HasPrefix(p.b[p.i:], []byte(word)) {
		return p.fail("invalid literal")
	}
	p.i += len(word)
	return nil
}

func (p *jsonParser) object(depth int) (any, error) {
	p.i++ // {
	obj := map[string]any{}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return obj, nil
	}
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, p.fail("expected an object key")
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		if _, dup := obj[key]; dup {
			return nil, refusef("the JSON body names the member %q twice in one object; Google's parser and the gateway's could read that differently, so send each member once", clip(key))
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, p.fail("expected ':'")
		}
		p.i++
		p.ws()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		obj[key] = v
		p.ws()
		if p.i >= len(p.b) {
			return nil, p.fail("unexpected end")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return obj, nil
		default:
			return nil, p.fail("expected ',' or '}'")
		}
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	p.i++ // [
	arr := []any{}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return arr, nil
	}
	for {
		p.ws()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		p.ws()
		if p.i >= len(p.b) {
			return nil, p.fail("unexpected end")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return arr, nil
		default:
			return nil, p.fail("expected ',' or ']'")
		}
	}
}

func (p *jsonParser) number() (any, error) {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	intStart := p.i
	if n := digits(); n == 0 || n > 1 && p.b[intStart] == '0' {
		return nil, p.fail("invalid number")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.fail("invalid number")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.fail("invalid number")
		}
	}
	f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil {
		return nil, &syntaxError{msg: "the number " + clip(string(p.b[start:p.i])) + " is out of range", at: start}
	}
	return f, nil
}

// str reads a string starting at its opening quote.
func (p *jsonParser) str() (string, error) {
	p.i++ // "
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, nil
		case c == '\\':
			return p.escapedStr(start)
		case c < 0x20:
			return "", p.fail("a control character in a string")
		}
		p.i++
	}
	return "", p.fail("unterminated string")
}

func (p *jsonParser) escapedStr(start int) (string, error) {
	buf := append(p.buf[:0], p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			p.buf = buf
			return string(buf), nil
		case c < 0x20:
			return "", p.fail("a control character in a string")
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			return "", p.fail("unterminated string")
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(p.b, p.i)
			if !ok {
				return "", p.fail("an invalid \\u escape")
			}
			p.i += 4
			switch {
			case r >= 0xD800 && r <= 0xDBFF:
				lo, ok := hex4(p.b, p.i+2)
				if !ok || p.b[p.i] != '\\' || p.b[p.i+1] != 'u' || lo < 0xDC00 || lo > 0xDFFF {
					return "", p.fail("an unpaired UTF-16 surrogate escape")
				}
				p.i += 6
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
			case r >= 0xDC00 && r <= 0xDFFF:
				return "", p.fail("an unpaired UTF-16 surrogate escape")
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.fail("an invalid escape")
		}
	}
	return "", p.fail("unterminated string")
}

func hex4(b []byte, at int) (rune, bool) {
	if at < 0 || at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		v, ok := unhex(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}
