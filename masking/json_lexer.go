package masking

import "fmt"

// The JSON lexer: write hands each byte of a chunk to the method of the
// lexer's state, which reads as much as it can and moves the cursor on.
// Bytes that need no change are not copied one by one: the cursor holds
// where the run of them started and they are copied in one append when
// something else must be written (a masked value) or the chunk ends.

type jstate uint8

const (
	stValue jstate = iota
	stArrFirst
	stObjFirst
	stObjKey
	stColon
	stAfter
	stString
	stEsc
	stEscU
	stNumber
	stLiteral
)

// number sub-states
const (
	nMinus = iota
	nZero
	nInt
	nDot
	nFrac
	nE
	nESign
	nExp
)

// jsonChunk is write's cursor over one chunk.
type jsonChunk struct {
	p []byte
	// i is the next byte to read.
	i int
	// base is the stream offset of p[0].
	base int64
	// from starts the bytes read that go out unchanged and are not yet
	// written; -1 when none are pending (inside a string, which goes out
	// when it ends, or inside a masked value, which never does).
	from int
}

// flush writes the unchanged bytes pending before p[i].
func (c *jsonChunk) flush(dst []byte, i int) []byte {
	if c.from >= 0 && i > c.from {
		dst = append(dst, c.p[c.from:i]...)
	}
	c.from = -1
	return dst
}

// at returns the stream offset of p[i].
func (c *jsonChunk) at(i int) int64 { return c.base + int64(i) }

// write processes one chunk.
func (j *jsonMasker) write(dst, p []byte) ([]byte, error) {
	c := jsonChunk{p: p, base: j.off, from: -1}
	if !j.suppress && j.st != stString && j.st != stEsc && j.st != stEscU {
		c.from = 0
	}
	// j.off, the stream offset of the byte read, is kept up to date only
	// in the states that can fail and set just before an error.
	var err error
	for c.i < len(p) && err == nil {
		switch j.st {
		case stString:
			dst, err = j.str(dst, &c)
		case stEsc:
			dst, err = j.escape(dst, &c)
		case stEscU:
			dst, err = j.escapeU(dst, &c)
		case stNumber:
			dst, err = j.number(dst, &c)
		case stLiteral:
			dst, err = j.literal(dst, &c)
		default:
			// Structural states.
			b := p[c.i]
			if b <= ' ' && isWS(b) {
				c.i++
				continue
			}
			switch j.st {
			case stArrFirst, stValue:
				dst, err = j.value(dst, &c, b)
			case stObjFirst, stObjKey:
				dst, err = j.key(dst, &c, b)
			case stColon:
				err = j.colon(&c, b)
			case stAfter:
				dst, err = j.after(dst, &c, b)
			}
		}
	}
	if err != nil {
		return dst, err
	}
	return j.endChunk(dst, &c)
}

// endChunk writes the unchanged bytes left pending at the end of the
// chunk, and the piece of a long string read so far.
func (j *jsonMasker) endChunk(dst []byte, c *jsonChunk) ([]byte, error) {
	p := c.p
	j.off = c.at(len(p))
	if c.from >= 0 && c.from < len(p) {
		dst = append(dst, p[c.from:]...)
	}
	if j.long && len(j.dec) > 0 && (j.st == stString || j.st == stEsc || j.st == stEscU) {
		var err error
		if dst, err = j.longWrite(dst, j.dec, false); err != nil {
			return dst, err
		}
		j.dec = j.dec[:0]
	}
	return dst, nil
}

// str reads the bytes of a string up to its closing quote or a backslash.
// A string found whole in the chunk, without escapes, is read in place;
// other bytes go through strRun.
func (j *jsonMasker) str(dst []byte, c *jsonChunk) ([]byte, error) {
	p, i := c.p, c.i
	j.off = c.at(i)
	// Control characters are let through (a lenient reading); the string
	// ends at '"' and escapes start at '\\'.
	k := i + strStop(p[i:])
	if k < len(p) && p[k] == '"' && j.strLen == 0 && !j.long && k-i <= maxShortString && !(j.isKey && k-i > maxKeyLen) {
		// The whole string lies in this chunk without escapes: read it
		// in place instead of copying it into raw.
		j.strLen = k - i
		j.view = p[i:k]
		j.off = c.at(k)
		return j.endStringAt(dst, c, k)
	}
	if k > i {
		var err error
		if dst, err = j.strRun(dst, p[i:k]); err != nil {
			return dst, err
		}
	}
	if k == len(p) {
		c.i = k
		return dst, nil
	}
	j.off = c.at(k)
	switch p[k] {
	case '"':
		return j.endStringAt(dst, c, k)
	case '\\':
		if !j.discard && !j.long {
			if !j.hasEsc {
				j.hasEsc = true
				j.dec = append(j.dec[:0], j.raw...)
			}
			j.raw = append(j.raw, '\\')
		}
		j.st = stEsc
		j.strLen++
		c.i = k + 1
	}
	return dst, nil
}

// endStringAt completes the string closed by the quote at p[k].
func (j *jsonMasker) endStringAt(dst []byte, c *jsonChunk, k int) ([]byte, error) {
	dst, err := j.endString(dst)
	j.view = nil
	if err != nil {
		return dst, err
	}
	c.i = k + 1
	if !j.suppress {
		c.from = c.i
	}
	j.afterValueOrKey()
	return dst, nil
}

// escape reads the letter after a backslash.
func (j *jsonMasker) escape(dst []byte, c *jsonChunk) ([]byte, error) {
	b := c.p[c.i]
	j.off = c.at(c.i)
	d := unescape[b]
	if d == 0 && b != 'u' {
		return dst, j.errf("invalid escape \\%c", b)
	}
	if !j.discard && !j.long {
		j.raw = append(j.raw, b)
	}
	if b == 'u' {
		j.st = stEscU
		j.uCount, j.uVal = 0, 0
	} else {
		j.decByte(d)
		j.st = stString
	}
	c.i++
	if j.isKey && len(j.raw) > maxKeyLen {
		return dst, fmt.Errorf("%w at byte %d: object key longer than %d bytes", ErrUnmaskable, j.off, maxKeyLen)
	}
	return j.maybeLong(dst)
}

// escapeU reads a hex digit of a \u escape.
func (j *jsonMasker) escapeU(dst []byte, c *jsonChunk) ([]byte, error) {
	b := c.p[c.i]
	j.off = c.at(c.i)
	var v rune
	switch {
	case b >= '0' && b <= '9':
		v = rune(b - '0')
	case b >= 'a' && b <= 'f':
		v = rune(b-'a') + 10
	case b >= 'A' && b <= 'F':
		v = rune(b-'A') + 10
	default:
		return dst, j.errf("invalid \\u escape")
	}
	if !j.discard && !j.long {
		j.raw = append(j.raw, b)
	}
	j.uVal = j.uVal<<4 | v
	j.uCount++
	c.i++
	if j.uCount < 4 {
		return dst, nil
	}
	j.decRune(j.uVal)
	j.st = stString
	return j.maybeLong(dst)
}

// number reads the bytes of a number. The byte that ends it is read
// again, in stAfter.
func (j *jsonMasker) number(dst []byte, c *jsonChunk) ([]byte, error) {
	p := c.p
	for i := c.i; i < len(p); i++ {
		b := p[i]
		switch {
		case b >= '0' && b <= '9':
			switch j.num {
			case nMinus:
				if b == '0' {
					j.num = nZero
				} else {
					j.num = nInt
				}
			case nZero:
				j.off = c.at(i)
				return dst, j.errf("leading zero in number")
			case nDot:
				j.num = nFrac
			case nE, nESign:
				j.num = nExp
			}
		case b == '.' && (j.num == nZero || j.num == nInt):
			j.num = nDot
		case (b == 'e' || b == 'E') && (j.num == nZero || j.num == nInt || j.num == nFrac):
			j.num = nE
		case (b == '+' || b == '-') && j.num == nE:
			j.num = nESign
		default:
			j.off = c.at(i)
			if !j.numDone() {
				return dst, j.errf("malformed number")
			}
			c.i = i
			return j.endScalar(dst, c), nil
		}
	}
	c.i = len(p)
	return dst, nil
}

func (j *jsonMasker) numDone() bool {
	return j.num == nZero || j.num == nInt || j.num == nFrac || j.num == nExp
}

// literal reads the rest of true, false or null.
func (j *jsonMasker) literal(dst []byte, c *jsonChunk) ([]byte, error) {
	p := c.p
	for i := c.i; i < len(p); i++ {
		if p[i] != j.lit[j.litPos] {
			j.off = c.at(i)
			return dst, j.errf("invalid literal")
		}
		j.litPos++
		if j.litPos == len(j.lit) {
			c.i = i + 1
			return j.endScalar(dst, c), nil
		}
	}
	c.i = len(p)
	return dst, nil
}

// endScalar ends a number or a literal before p[c.i]; a masked one is
// written as its label.
func (j *jsonMasker) endScalar(dst []byte, c *jsonChunk) []byte {
	if j.suppress && j.supDepth == -1 {
		dst = j.appendMask(dst, j.supLabel)
		j.suppress = false
		c.from = c.i
	}
	j.st = stAfter
	return dst
}

// maskWhole starts a value masked whole, with label lb, at p[i]: its
// bytes are not written. depth is the stack depth the value's container
// is closed at, -1 for a scalar.
func (j *jsonMasker) maskWhole(dst []byte, c *jsonChunk, i int, lb []byte, depth int) []byte {
	dst = c.flush(dst, i)
	j.suppress, j.supDepth, j.supLabel = true, depth, lb
	return dst
}

// value reads the first byte b of a value (or the ']' of an empty array).
func (j *jsonMasker) value(dst []byte, c *jsonChunk, b byte) ([]byte, error) {
	i := c.i
	if j.st == stArrFirst {
		if b == ']' {
			dst = j.pop(dst, &c.from, i)
			c.i = i + 1
			return dst, nil
		}
		j.st = stValue
	}
	j.seen = true
	lb := j.fieldLabel(b)
	switch {
	case b == '{' || b == '[':
		if lb != nil {
			dst = j.maskWhole(dst, c, i, lb, len(j.stack))
		}
		j.off = c.at(i)
		if err := j.push(b == '{'); err != nil {
			return dst, err
		}
		if b == '{' {
			j.st = stObjFirst
		} else {
			j.st = stArrFirst
		}
	case b == '"':
		return j.stringValue(dst, c, lb), nil
	case b == '-' || b >= '0' && b <= '9':
		if lb != nil {
			dst = j.maskWhole(dst, c, i, lb, -1)
		}
		j.st = stNumber
		j.num = nInt
		if b == '-' {
			j.num = nMinus
		} else if b == '0' {
			j.num = nZero
		}
	case b == 't' || b == 'f' || b == 'n':
		if lb != nil {
			dst = j.maskWhole(dst, c, i, lb, -1)
		}
		j.st = stLiteral
		j.litPos = 0
		switch b {
		case 't':
			j.lit = "rue"
		case 'f':
			j.lit = "alse"
		default:
			j.lit = "ull"
		}
	default:
		j.off = c.at(i)
		return dst, j.errf("unexpected %q where a value was expected", b)
	}
	c.i = i + 1
	return dst, nil
}

// stringValue reads the opening quote of a string value, to be masked
// whole with label lb if not nil. A string found whole in the chunk is
// read in place: what beginString, strRun and endString do, without their
// state (such a string cannot fail or grow long); a clean one joins the
// unchanged bytes pending.
func (j *jsonMasker) stringValue(dst []byte, c *jsonChunk, lb []byte) []byte {
	i := c.i
	if lb == nil && !j.suppress {
		if k, esc, ok := wholeString(c.p, i, false); ok {
			raw := c.p[i+1 : k]
			d, escRaw := raw, []byte(nil)
			if esc {
				// Decoded only when the caches do not know it.
				d, escRaw = nil, raw
			}
			if top := j.top(); top != nil && top.capture != "" && top.obj {
				if esc {
					j.dec = unescapeSimple(j.dec[:0], raw)
					d, escRaw = j.dec, nil
				}
				top.capturePred(d)
			}
			if d, spans, det, dirty := j.scanString(d, escRaw); dirty {
				dst = c.flush(dst, i)
				dst = j.appendMasked(dst, d, spans, det)
				c.from = k + 1
			} else if c.from < 0 {
				c.from = i
			}
			j.st = stAfter
			c.i = k + 1
			return dst
		}
	}
	dst = c.flush(dst, i)
	j.beginString(false, lb)
	c.i = i + 1
	return dst
}

// key reads the opening quote of a member name (or the '}' of an empty
// object).
func (j *jsonMasker) key(dst []byte, c *jsonChunk, b byte) ([]byte, error) {
	i := c.i
	if b == '}' && j.st == stObjFirst {
		dst = j.pop(dst, &c.from, i)
		c.i = i + 1
		return dst, nil
	}
	if b != '"' {
		j.off = c.at(i)
		return dst, j.errf("unexpected %q where an object key was expected", b)
	}
	if !j.suppress {
		if k, esc, ok := wholeString(c.p, i, true); ok {
			// Read in place, as stringValue reads a value, with the
			// colon when it follows at once.
			p := c.p
			d := p[i+1 : k]
			if esc {
				j.dec = unescapeSimple(j.dec[:0], d)
				d = j.dec
			}
			j.memberName(d)
			if d, spans, det, dirty := j.scanString(d, nil); dirty {
				dst = c.flush(dst, i)
				dst = j.appendMasked(dst, d, spans, det)
				c.from = k + 1
			} else if c.from < 0 {
				c.from = i
			}
			j.st = stColon
			i = k + 1
			if i < len(p) && p[i] == ':' {
				// What colon does.
				j.st = stValue
				i++
			}
			c.i = i
			return dst, nil
		}
		dst = c.flush(dst, i)
	}
	j.beginString(true, nil)
	c.i = i + 1
	return dst, nil
}

// colon reads the ':' after a member name.
func (j *jsonMasker) colon(c *jsonChunk, b byte) error {
	if b != ':' {
		j.off = c.at(c.i)
		return j.errf("unexpected %q where ':' was expected", b)
	}
	j.st = stValue
	c.i++
	return nil
}

// after reads what follows a value: a ',' or the end of its container.
// At the top level the byte is read again as another value (JSON lines).
func (j *jsonMasker) after(dst []byte, c *jsonChunk, b byte) ([]byte, error) {
	if len(j.stack) == 0 {
		j.st = stValue
		return dst, nil
	}
	top := &j.stack[len(j.stack)-1]
	switch {
	case b == ',' && top.obj:
		j.st = stObjKey
	case b == ',':
		j.st = stValue
	case b == '}' && top.obj, b == ']' && !top.obj:
		dst = j.pop(dst, &c.from, c.i)
	default:
		j.off = c.at(c.i)
		return dst, j.errf("unexpected %q after a value", b)
	}
	c.i++
	return dst, nil
}

// close ends the document.
func (j *jsonMasker) close(dst []byte) ([]byte, error) {
	if j.st == stNumber {
		if !j.numDone() {
			return dst, j.errf("body ends inside a number")
		}
		if j.suppress && j.supDepth == -1 {
			dst = j.appendMask(dst, j.supLabel)
			j.suppress = false
		}
		j.st = stAfter
	}
	if len(j.stack) > 0 || (j.st != stAfter && !(j.st == stValue && !j.seen)) {
		return dst, j.errf("body ends inside a value (truncated JSON)")
	}
	return dst, nil
}
