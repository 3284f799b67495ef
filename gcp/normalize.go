package gcp

import (
	"strings"
	"unicode/utf8"
)

// NormalizePath normalises a request path (without query) as Google's front
// end reads it, or refuses it when the gateway and Google could read it
// differently:
//
//   - it must start with "/";
//   - raw bytes must be printable ASCII and allowed in a path: no space,
//     control character, backslash, or any of " < > ^ ` { | } # [ ];
//   - every percent escape must be two hex digits; escapes of unreserved
//     characters (ALPHA DIGIT - . _ ~) are decoded, every other escape is
//     kept with upper-case hex, so %2F stays inside its segment and decoding
//     can never create a slash;
//   - escapes of control characters (%00-%1F, %7F) and of backslash (%5C)
//     are refused;
//   - empty segments ("//", a trailing "/") and dot segments ("." and "..",
//     also once decoded, e.g. "%2e%2E") are refused;
//   - the fully decoded path must be valid UTF-8.
//
// The result is idempotent: NormalizePath of a result returns it unchanged.
func NormalizePath(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", refusef("the request path %q must start with \"/\"", clip(p))
	}
	if p == "/" {
		return p, nil
	}
	// Fast path: nothing to decode and nothing to check beyond the bytes.
	var b strings.Builder
	changed := false
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		seg := p[segStart:i]
		if seg == "" {
			return "", refusef("the request path %q has an empty segment (\"//\" or a trailing \"/\"); send the path without it", clip(p))
		}
		norm, segChanged, err := normalizeSegment(seg, p)
		if err != nil {
			return "", err
		}
		if norm == "." || norm == ".." {
			return "", refusef("the request path %q has a dot segment (%q); send the resolved path", clip(p), seg)
		}
		if segChanged && !changed {
			changed = true
			b.Grow(len(p))
			b.WriteString(p[:segStart])
		}
		if changed {
			b.WriteString(norm)
			if i < len(p) {
				b.WriteByte('/')
			}
		}
		segStart = i + 1
	}
	out := p
	if changed {
		out = b.String()
	}
	if strings.IndexByte(out, '%') >= 0 && !utf8.ValidString(decodeParam(out)) {
		return "", refusef("the request path %q does not decode to valid UTF-8", clip(p))
	}
	return out, nil
}

const hexUpper = "0123456789ABCDEF"

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// pathByteOK reports whether a raw byte may appear in a path segment.
func pathByteOK(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '\\', '"', '<', '>', '^', '`', '{', '|', '}', '#', '[', ']', '?':
		return false
	}
	return true
}

func normalizeSegment(seg, whole string) (string, bool, error) {
	clean := true
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' {
			clean = false
			continue
		}
		if !pathByteOK(c) {
			return "", false, refusef("the request path %q has a character that is not allowed (%q); percent-encode it", clip(whole), string(rune(c)))
		}
	}
	if clean {
		return seg, false, nil
	}
	var b strings.Builder
	b.Grow(len(seg))
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(seg) {
			return "", false, refusef("the request path %q has an invalid percent-encoding", clip(whole))
		}
		h, ok1 := unhex(seg[i+1])
		l, ok2 := unhex(seg[i+2])
		if !ok1 || !ok2 {
			return "", false, refusef("the request path %q has an invalid percent-encoding", clip(whole))
		}
		v := h<<4 | l
		switch {
		case v < 0x20 || v == 0x7f:
			return "", false, refusef("the request path %q encodes a control character (%%%02X)", clip(whole), v)
		case v == '\\':
			return "", false, refusef("the request path %q encodes a backslash (%%5C), which servers read differently", clip(whole))
		case isUnreserved(v):
			b.WriteByte(v)
		default:
			b.WriteByte('%')
			b.WriteByte(hexUpper[v>>4])
			b.WriteByte(hexUpper[v&15])
		}
		i += 2
	}
	out := b.String()
	return out, out != seg, nil
}

// decodeParam decodes every percent escape of a validated path or segment.
// "+" stays a plus sign: only query strings use it for a space.
func decodeParam(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(h<<4 | l)
				i += 2
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// ParseQuery parses a raw query string (without "?") the way Google's front
// end does: pairs split on "&" only, "+" is a space, percent escapes are
// decoded. An invalid escape, a raw byte that is not printable ASCII, an
// encoded NUL or a key or value that is not valid UTF-8 is refused.
func ParseQuery(raw string) (map[string][]string, error) {
	q := map[string][]string{}
	if raw == "" {
		return q, nil
	}
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := unescapeQuery(k, raw)
		if err != nil {
			return nil, err
		}
		val, err := unescapeQuery(v, raw)
		if err != nil {
			return nil, err
		}
		q[key] = append(q[key], val)
	}
	return q, nil
}

func unescapeQuery(s, whole string) (string, error) {
	simple := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '#' {
			return "", refusef("the query string %q has a character that is not allowed (%q); percent-encode it", clip(whole), string(rune(c)))
		}
		if c == '%' || c == '+' {
			simple = false
		}
	}
	if simple {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			b.WriteByte(' ')
		case '%':
			if i+2 >= len(s) {
				return "", refusef("the query string %q has an invalid percent-encoding", clip(whole))
			}
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", refusef("the query string %q has an invalid percent-encoding", clip(whole))
			}
			v := h<<4 | l
			if v == 0 {
				return "", refusef("the query string %q encodes a NUL byte", clip(whole))
			}
			b.WriteByte(v)
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	if !utf8.ValidString(out) {
		return "", refusef("the query string %q does not decode to valid UTF-8", clip(whole))
	}
	return out, nil
}

// clip shortens a value quoted in a refusal.
func clip(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
