package authz

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"slices"
	"unicode/utf8"
)

// jsonCanon hashes a JSON text in a canonical form: insignificant
// whitespace dropped, object members sorted by name, string content
// decoded (escapes resolved), number text kept as written. Two texts hash
// alike exactly when they have the same members, elements, strings and
// number literals.
//
// The encoding written to the hash is self-delimiting:
//
//	null, true, false   'n', 't', 'f'
//	number              'd', length, text
//	string              's', length, UTF-8 bytes (a lone surrogate escape
//	                    as its 3-byte generalised UTF-8 form, which no valid
//	                    UTF-8 text contains)
//	array               '[', elements, ']'
//	object              '{', count, then per member in name order: length,
//	                    name, SHA-256 of the member value's encoding
//
// Memory is bounded by the nesting depth (one hasher and one member list
// per level) and the longest string; time is linear in the text.
type jsonCanon struct {
	data []byte
	pos  int
	hs   []hash.Hash
	mem  [][]jsonMember
	keys [][]byte
	str  []byte
	buf  [8]byte
	tag  [1]byte
	sum  [sha256.Size]byte
}

type jsonMember struct {
	off, n int
	sum    [sha256.Size]byte
}

// errNotJSON: the text is not JSON (RFC 8259, UTF-8).
var errNotJSON = errors.New("not JSON")

// canonical writes "json" and the digest of body's canonical form into out.
// It returns false, with nothing written, when body is not JSON, and an
// *UnbindableError when its meaning is ambiguous or it is nested too deep.
func (c *jsonCanon) canonical(out hash.Hash, body []byte) (bool, error) {
	if !utf8.Valid(body) {
		return false, nil
	}
	c.data, c.pos = body, 0
	defer func() { c.data = nil }()
	h := c.hasher(0)
	if err := c.value(h, 0); err != nil {
		if errors.Is(err, errNotJSON) {
			return false, nil
		}
		return false, err
	}
	c.ws()
	if c.pos != len(c.data) {
		return false, nil
	}
	sum := h.Sum(c.sum[:0])
	binary.BigEndian.PutUint64(c.buf[:], 4)
	out.Write(c.buf[:])
	out.Write([]byte("json"))
	out.Write(sum)
	return true, nil
}

// hasher returns the reset hasher of nesting level d.
func (c *jsonCanon) hasher(d int) hash.Hash {
	for len(c.hs) <= d {
		c.hs = append(c.hs, sha256.New())
	}
	c.hs[d].Reset()
	return c.hs[d]
}

func (c *jsonCanon) ws() {
	for c.pos < len(c.data) {
		switch c.data[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

// mark writes a one-byte tag.
func (c *jsonCanon) mark(w hash.Hash, tag byte) {
	c.tag[0] = tag
	w.Write(c.tag[:])
}

func (c *jsonCanon) lenPrefixed(w hash.Hash, tag byte, b []byte) {
	c.mark(w, tag)
	binary.BigEndian.PutUint64(c.buf[:], uint64(len(b)))
	w.Write(c.buf[:])
	w.Write(b)
}

func (c *jsonCanon) value(w hash.Hash, depth int) error {
	c.ws()
	if c.pos >= len(c.data) {
		return errNotJSON
	}
	switch ch := c.data[c.pos]; {
	case ch == '{' || ch == '[':
		if depth >= maxJSONDepth {
			return unbindable("the JSON body is nested deeper than %d levels", maxJSONDepth)
		}
		if ch == '{' {
			return c.object(w, depth)
		}
		return c.array(w, depth)
	case ch == '"':
		s, err := c.string()
		if err != nil {
			return err
		}
		c.lenPrefixed(w, 's', s)
	case ch == 't':
		return c.literal(w, "true", 't')
	case ch == 'f':
		return c.literal(w, "false", 'f')
	case ch == 'n':
		return c.literal(w, "null", 'n')
	case ch == '-' || ch >= '0' && ch <= '9':
		n, err := c.number()
		if err != nil {
			return err
		}
		c.lenPrefixed(w, 'd', n)
	default:
		return errNotJSON
	}
	return nil
}

func (c *jsonCanon) literal(w hash.Hash, lit string, tag byte) error {
	if !bytes.HasPrefix(c.data[c.pos:], []byte(lit)) {
		return errNotJSON
	}
	c.pos += len(lit)
	c.mark(w, tag)
	return nil
}

func (c *jsonCanon) array(w hash.Hash, depth int) error {
	c.pos++ // '['
	c.mark(w, '[')
	c.ws()
	if c.pos < len(c.data) && c.data[c.pos] == ']' {
		c.pos++
		c.mark(w, ']')
		return nil
	}
	for {
		if err := c.value(w, depth+1); err != nil {
			return err
		}
		c.ws()
		if c.pos >= len(c.data) {
			return errNotJSON
		}
		switch c.data[c.pos] {
		case ',':
			c.pos++
		case ']':
			c.pos++
			c.mark(w, ']')
			return nil
		default:
			return errNotJSON
		}
	}
}

func (c *jsonCanon) object(w hash.Hash, depth int) error {
	c.pos++ // '{'
	for len(c.mem) <= depth {
		c.mem = append(c.mem, nil)
		c.keys = append(c.keys, nil)
	}
	members, keys := c.mem[depth][:0], c.keys[depth][:0]
	c.ws()
	if c.pos < len(c.data) && c.data[c.pos] == '}' {
		c.pos++
	} else {
		for {
			c.ws()
			if c.pos >= len(c.data) || c.data[c.pos] != '"' {
				return errNotJSON
			}
			k, err := c.string()
			if err != nil {
				return err
			}
			m := jsonMember{off: len(keys), n: len(k)}
			keys = append(keys, k...)
			c.ws()
			if c.pos >= len(c.data) || c.data[c.pos] != ':' {
				return errNotJSON
			}
			c.pos++
			h := c.hasher(depth + 1)
			if err := c.value(h, depth+1); err != nil {
				return err
			}
			copy(m.sum[:], h.Sum(c.sum[:0]))
			members = append(members, m)
			c.ws()
			if c.pos >= len(c.data) {
				return errNotJSON
			}
			if c.data[c.pos] == '}' {
				c.pos++
				break
			}
			if c.data[c.pos] != ',' {
				return errNotJSON
			}
			c.pos++
		}
	}
	key := func(m jsonMember) []byte { return keys[m.off : m.off+m.n] }
	slices.SortFunc(members, func(a, b jsonMember) int { return bytes.Compare(key(a), key(b)) })
	for i := 1; i < len(members); i++ {
		if bytes.Equal(key(members[i-1]), key(members[i])) {
			return unbindable("the JSON body gives the member %q more than once, so what Google would act on is ambiguous; send each member once", clipValue(string(key(members[i])), 64))
		}
	}
	c.mark(w, '{')
	binary.BigEndian.PutUint64(c.buf[:], uint64(len(members)))
	w.Write(c.buf[:])
	for i := range members {
		binary.BigEndian.PutUint64(c.buf[:], uint64(members[i].n))
		w.Write(c.buf[:])
		w.Write(key(members[i]))
		w.Write(members[i].sum[:])
	}
	c.mem[depth], c.keys[depth] = members, keys
	return nil
}

// string decodes the string at pos; the result is valid until the next call.
func (c *jsonCanon) string() ([]byte, error) {
	c.pos++ // '"'
	s := c.str[:0]
	defer func() { c.str = s[:0] }()
	for {
		start := c.pos
		for c.pos < len(c.data) {
			ch := c.data[c.pos]
			if ch == '"' || ch == '\\' || ch < 0x20 {
				break
			}
			c.pos++
		}
		s = append(s, c.data[start:c.pos]...)
		if c.pos >= len(c.data) || c.data[c.pos] < 0x20 {
			return nil, errNotJSON
		}
		if c.data[c.pos] == '"' {
			c.pos++
			return s, nil
		}
		// An escape.
		if c.pos+1 >= len(c.data) {
			return nil, errNotJSON
		}
		e := c.data[c.pos+1]
		c.pos += 2
		switch e {
		case '"', '\\', '/':
			s = append(s, e)
		case 'b':
			s = append(s, '\b')
		case 'f':
			s = append(s, '\f')
		case 'n':
			s = append(s, '\n')
		case 'r':
			s = append(s, '\r')
		case 't':
			s = append(s, '\t')
		case 'u':
			r, ok := c.hex4()
			if !ok {
				return nil, errNotJSON
			}
			if r >= 0xD800 && r < 0xDC00 && c.pos+1 < len(c.data) && c.data[c.pos] == '\\' && c.data[c.pos+1] == 'u' {
				save := c.pos
				c.pos += 2
				if lo, ok := c.hex4(); ok && lo >= 0xDC00 && lo < 0xE000 {
					s = utf8.AppendRune(s, 0x10000+(r-0xD800)<<10+(lo-0xDC00))
					continue
				}
				c.pos = save
			}
			if r >= 0xD800 && r < 0xE000 {
				// A lone surrogate: generalised UTF-8, distinct from
				// every valid text (U+FFFD included).
				s = append(s, byte(0xE0|r>>12), byte(0x80|(r>>6)&0x3F), byte(0x80|r&0x3F))
				continue
			}
			s = utf8.AppendRune(s, r)
		default:
			return nil, errNotJSON
		}
	}
}

func (c *jsonCanon) hex4() (rune, bool) {
	if c.pos+4 > len(c.data) {
		return 0, false
	}
	var r rune
	for _, ch := range c.data[c.pos : c.pos+4] {
		r <<= 4
		switch {
		case ch >= '0' && ch <= '9':
			r |= rune(ch - '0')
		case ch >= 'a' && ch <= 'f':
			r |= rune(ch - 'a' + 10)
		case ch >= 'A' && ch <= 'F':
			r |= rune(ch - 'A' + 10)
		default:
			return 0, false
		}
	}
	c.pos += 4
	return r, true
}

// number returns the text of the number at pos, checked against RFC 8259.
func (c *jsonCanon) number() ([]byte, error) {
	start := c.pos
	d := c.data
	if c.pos < len(d) && d[c.pos] == '-' {
		c.pos++
	}
	digits := func() int {
		n := 0
		for c.pos < len(d) && d[c.pos] >= '0' && d[c.pos] <= '9' {
			c.pos++
			n++
		}
		return n
	}
	if c.pos < len(d) && d[c.pos] == '0' {
		c.pos++
	} else if digits() == 0 {
		return nil, errNotJSON
	}
	if c.pos < len(d) && d[c.pos] == '.' {
		c.pos++
		if digits() == 0 {
			return nil, errNotJSON
		}
	}
	if c.pos < len(d) && (d[c.pos] == 'e' || d[c.pos] == 'E') {
		c.pos++
		if c.pos < len(d) && (d[c.pos] == '+' || d[c.pos] == '-') {
			c.pos++
		}
		if digits() == 0 {
			return nil, errNotJSON
		}
	}
	return d[start:c.pos], nil
}
