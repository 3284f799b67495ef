package masking

import "fmt"

// The JSON lexer. write reads a chunk in a loop over the lexer's states:
// strings that lie whole in the chunk are read in the loop itself; every
// other byte goes to the method of the state, which reads as much as it
// can and returns where to go on. Bytes that need no change are not copied
// one by one: jsonChunk holds where the run of them started, and they are
// copied in one append when something else must be written (a masked
// value) or the chunk ends.

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

// jsonChunk is what write's state methods share about the chunk: they
// take the index of the byte to read and return the index of the next.
type jsonChunk struct {
	p []byte
	// base is the stream offset of p[0].
	base int64
	// from starts the bytes read that go out unchanged and are not yet
	// written; -1 when none are pending (inside a string, which goes out
	// when it ends, or inside a masked value, which never does).
	from int
	// dst is the output.
	dst []byte
}

// flush writes the unchanged bytes pending before p[i].
func (c *jsonChunk) flush(i int) {
	if c.from >= 0 && i > c.from {
		c.dst = append(c.dst, c.p[c.from:i]...)
	}
	c.from = -1
}

// at returns the stream offset of p[i].
func (c *jsonChunk) at(i int) int64 { return c.base + int64(i) }

// write processes one chunk. Strings that lie whole in the chunk, most
// member names and values, are read in place here in the loop: a call
// per token would cost about as much as reading it.
func (j *jsonMasker) write(dst, p []byte) ([]byte, error) {
	c := jsonChunk{p: p, base: j.off, from: -1, dst: dst}
	if !j.suppress && j.st != stString && j.st != stEsc && j.st != stEscU {
		c.from = 0
	}
	// j.off, the stream offset of the byte read, is kept up to date only
	// in the states that can fail and set just before an error.
	var err error
	for i := 0; i < len(p) && err == nil; {
		switch j.st {
		case stString:
			i, err = j.str(&c, i)
		case stEsc:
			i, err = j.escape(&c, i)
		case stEscU:
			i, err = j.escapeU(&c, i)
		case stNumber:
			i, err = j.number(&c, i)
		case stLiteral:
			i, err = j.literal(&c, i)
		default:
			// Structural states.
			b := p[i]
			if b <= ' ' && isWS(b) {
				i++
				continue
			}
			switch j.st {
			case stArrFirst, stValue:
				if b != '"' {
					i, err = j.value(&c, i, b)
					break
				}
				j.seen = true
				lb := j.fieldLabel(b)
				if lb != nil || j.suppress {
					i = j.stringValue(&c, i, lb)
					break
				}
				k, esc, ok := wholeString(p, i, false)
				if !ok {
					i = j.stringValue(&c, i, nil)
					break
				}
				// A value read in place: what beginString, strRun and
				// endString do, without their state (such a string
				// cannot fail or grow long). An unchanged one stays in
				// the bytes pending.
				d, escRaw := p[i+1:k], []byte(nil)
				if esc {
					// Decoded only when the caches do not know it.
					d, escRaw = nil, d
				}
				if top := j.top(); top != nil && top.capture != "" && top.obj {
					d, escRaw = j.capture(top, p[i+1:k], esc), nil
				}
				if d, spans, det, dirty := j.scanString(d, escRaw); dirty {
					j.writeMasked(&c, i, k, d, spans, det)
				} else if c.from < 0 {
					c.from = i
				}
				j.st = stAfter
				i = k + 1
				if i < len(p) && p[i] == ',' && len(j.stack) > 0 {
					// What after does with the comma that follows at once.
					j.comma()
					i++
				}
			case stObjFirst, stObjKey:
				if b != '"' || j.suppress {
					i, err = j.key(&c, i, b)
					break
				}
				k, esc, ok := wholeString(p, i, true)
				if !ok {
					i, err = j.key(&c, i, b)
					break
				}
				// A member name read in place, as a value above.
				d := p[i+1 : k]
				if esc {
					j.dec = unescapeSimple(j.dec[:0], d)
					d = j.dec
				}
				j.memberName(d)
				if d, spans, det, dirty := j.scanString(d, nil); dirty {
					j.writeMasked(&c, i, k, d, spans, det)
				} else if c.from < 0 {
					c.from = i
				}
				j.st = stColon
				i = k + 1
				if i < len(p) && p[i] == ':' {
					// What colon does with the colon that follows at once.
					j.st = stValue
					i++
				}
			case stColon:
				i, err = j.colon(&c, i, b)
			case stAfter:
				i, err = j.after(&c, i, b)
			}
		}
	}
	if err == nil {
		err = j.endChunk(&c)
	}
	return c.dst, err
}

// endChunk writes the unchanged bytes left pending at the end of the
// chunk, and the piece of a long string read so far.
func (j *jsonMasker) endChunk(c *jsonChunk) error {
	p := c.p
	j.off = c.at(len(p))
	if c.from >= 0 && c.from < len(p) {
		c.dst = append(c.dst, p[c.from:]...)
	}
	if j.long && len(j.dec) > 0 && (j.st == stString || j.st == stEsc || j.st == stEscU) {
		dst, err := j.longWrite(c.dst, j.dec, false)
		c.dst = dst
		if err != nil {
			return err
		}
		j.dec = j.dec[:0]
	}
	return nil
}

// str reads the bytes of a string up to its closing quote or a backslash.
// A string found whole in the chunk, without escapes, is read in place;
// other bytes go through strRun.
func (j *jsonMasker) str(c *jsonChunk, i int) (int, error) {
	p := c.p
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
		return j.endStringAt(c, k)
	}
	if k > i {
		var err error
		if c.dst, err = j.strRun(c.dst, p[i:k]); err != nil {
			return i, err
		}
	}
	if k == len(p) {
		return k, nil
	}
	j.off = c.at(k)
	switch p[k] {
	case '"':
		return j.endStringAt(c, k)
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
		return k + 1, nil
	}
	return i, nil
}

// endStringAt completes the string closed by the quote at p[k].
func (j *jsonMasker) endStringAt(c *jsonChunk, k int) (int, error) {
	dst, err := j.endString(c.dst)
	c.dst = dst
	j.view = nil
	if err != nil {
		return k, err
	}
	if !j.suppress {
		c.from = k + 1
	}
	j.afterValueOrKey()
	return k + 1, nil
}

// escape reads the letter after a backslash.
func (j *jsonMasker) escape(c *jsonChunk, i int) (int, error) {
	b := c.p[i]
	j.off = c.at(i)
	d := unescape[b]
	if d == 0 && b != 'u' {
		return i, j.errf("invalid escape \\%c", b)
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
	if j.isKey && len(j.raw) > maxKeyLen {
		return i, fmt.Errorf("%w at byte %d: object key longer than %d bytes", ErrUnmaskable, j.off, maxKeyLen)
	}
	return i + 1, j.grown(c)
}

// escapeU reads a hex digit of a \u escape.
func (j *jsonMasker) escapeU(c *jsonChunk, i int) (int, error) {
	b := c.p[i]
	j.off = c.at(i)
	var v rune
	switch {
	case b >= '0' && b <= '9':
		v = rune(b - '0')
	case b >= 'a' && b <= 'f':
		v = rune(b-'a') + 10
	case b >= 'A' && b <= 'F':
		v = rune(b-'A') + 10
	default:
		return i, j.errf("invalid \\u escape")
	}
	if !j.discard && !j.long {
		j.raw = append(j.raw, b)
	}
	j.uVal = j.uVal<<4 | v
	j.uCount++
	if j.uCount < 4 {
		return i + 1, nil
	}
	j.decRune(j.uVal)
	j.st = stString
	return i + 1, j.grown(c)
}

// grown streams the string once it has grown long (maybeLong).
func (j *jsonMasker) grown(c *jsonChunk) error {
	dst, err := j.maybeLong(c.dst)
	c.dst = dst
	return err
}

// number reads the bytes of a number. The byte that ends it is read
// again, in stAfter.
func (j *jsonMasker) number(c *jsonChunk, i int) (int, error) {
	p := c.p
	for ; i < len(p); i++ {
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
				return i, j.errf("leading zero in number")
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
				return i, j.errf("malformed number")
			}
			j.endScalar(c, i)
			return i, nil
		}
	}
	return i, nil
}

func (j *jsonMasker) numDone() bool {
	return j.num == nZero || j.num == nInt || j.num == nFrac || j.num == nExp
}

// literal reads the rest of true, false or null.
func (j *jsonMasker) literal(c *jsonChunk, i int) (int, error) {
	p := c.p
	for ; i < len(p); i++ {
		if p[i] != j.lit[j.litPos] {
			j.off = c.at(i)
			return i, j.errf("invalid literal")
		}
		j.litPos++
		if j.litPos == len(j.lit) {
			j.endScalar(c, i+1)
			return i + 1, nil
		}
	}
	return i, nil
}

// endScalar ends a number or a literal before p[i]; a masked one is
// written as its label.
func (j *jsonMasker) endScalar(c *jsonChunk, i int) {
	if j.suppress && j.supDepth == -1 {
		c.dst = j.appendMask(c.dst, j.supLabel)
		j.suppress = false
		c.from = i
	}
	j.st = stAfter
}

// maskWhole starts a value masked whole, with label lb, at p[i]: its
// bytes are not written. depth is the stack depth the value's container
// is closed at, -1 for a scalar.
func (j *jsonMasker) maskWhole(c *jsonChunk, i int, lb []byte, depth int) {
	c.flush(i)
	j.suppress, j.supDepth, j.supLabel = true, depth, lb
}

// pop closes the container ended by p[i]; a masked one is written as its
// label.
func (j *jsonMasker) pop(c *jsonChunk, i int) int {
	j.stack = j.stack[:len(j.stack)-1]
	j.st = stAfter
	if j.suppress && j.supDepth == len(j.stack) {
		c.dst = j.appendMask(c.dst, j.supLabel)
		j.suppress = false
		c.from = i + 1
	}
	return i + 1
}

// value reads the first byte b of a value other than a string (or the ']'
// of an empty array).
func (j *jsonMasker) value(c *jsonChunk, i int, b byte) (int, error) {
	if j.st == stArrFirst {
		if b == ']' {
			return j.pop(c, i), nil
		}
		j.st = stValue
	}
	j.seen = true
	lb := j.fieldLabel(b)
	switch {
	case b == '{' || b == '[':
		if lb != nil {
			j.maskWhole(c, i, lb, len(j.stack))
		}
		j.off = c.at(i)
		if err := j.push(b == '{'); err != nil {
			return i, err
		}
		if b == '{' {
			j.st = stObjFirst
		} else {
			j.st = stArrFirst
		}
	case b == '-' || b >= '0' && b <= '9':
		if lb != nil {
			j.maskWhole(c, i, lb, -1)
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
			j.maskWhole(c, i, lb, -1)
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
		return i, j.errf("unexpected %q where a value was expected", b)
	}
	return i + 1, nil
}

// writeMasked writes the string read in place from the quote at p[i] to
// the one at p[k], decoded as d, masked as scanString found.
func (j *jsonMasker) writeMasked(c *jsonChunk, i, k int, d []byte, spans []span, det int32) {
	c.flush(i)
	c.dst = j.appendMasked(c.dst, d, spans, det)
	c.from = k + 1
}

// capture records the value of a filter member read in place, raw (esc
// when it holds escapes), and returns it decoded.
func (j *jsonMasker) capture(top *frame, raw []byte, esc bool) []byte {
	d := raw
	if esc {
		j.dec = unescapeSimple(j.dec[:0], raw)
		d = j.dec
	}
	top.capturePred(d)
	return d
}

// stringValue begins a string value at p[i] that is not read in place:
// masked whole with label lb when not nil, inside a masked value, or
// not whole in the chunk.
func (j *jsonMasker) stringValue(c *jsonChunk, i int, lb []byte) int {
	c.flush(i)
	j.beginString(false, lb)
	return i + 1
}

// key reads the first byte of a member name not read in place (or the '}'
// of an empty object).
func (j *jsonMasker) key(c *jsonChunk, i int, b byte) (int, error) {
	if b == '}' && j.st == stObjFirst {
		return j.pop(c, i), nil
	}
	if b != '"' {
		j.off = c.at(i)
		return i, j.errf("unexpected %q where an object key was expected", b)
	}
	if !j.suppress {
		c.flush(i)
	}
	j.beginString(true, nil)
	return i + 1, nil
}

// colon reads the ':' after a member name.
func (j *jsonMasker) colon(c *jsonChunk, i int, b byte) (int, error) {
	if b != ':' {
		j.off = c.at(i)
		return i, j.errf("unexpected %q where ':' was expected", b)
	}
	j.st = stValue
	return i + 1, nil
}

// after reads what follows a value: a ',' or the end of its container.
// At the top level the byte is read again as another value (JSON lines).
func (j *jsonMasker) after(c *jsonChunk, i int, b byte) (int, error) {
	if len(j.stack) == 0 {
		j.st = stValue
		return i, nil
	}
	top := &j.stack[len(j.stack)-1]
	switch {
	case b == ',':
		j.comma()
	case b == '}' && top.obj, b == ']' && !top.obj:
		return j.pop(c, i), nil
	default:
		j.off = c.at(i)
		return i, j.errf("unexpected %q after a value", b)
	}
	return i + 1, nil
}

// comma moves on after the ',' that follows a value in a container.
func (j *jsonMasker) comma() {
	if j.stack[len(j.stack)-1].obj {
		j.st = stObjKey
	} else {
		j.st = stValue
	}
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
