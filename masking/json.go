package masking

import (
	"fmt"
	"hash/maphash"
)

const (
	// maxShortString is the longest string value held whole; longer ones
	// stream through a textMasker and are re-encoded.
	maxShortString = 16 << 10
	// maxKeyLen is the longest object key accepted.
	maxKeyLen = 4 << 10
	// maxPathKey is how much of a key is kept for path matching.
	maxPathKey = 256
	// maxPredValue is how much of a filter member's value is kept.
	maxPredValue = 256
	// maxDepth bounds nesting.
	maxDepth = 512
	// minBase64 is the shortest string value decoded as base64 for scanning.
	minBase64 = 24
	// longPiece is how much of a long string is decoded before it is
	// handed to the scanner.
	longPiece = 4 << 10
)

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

// cleanEntry identifies a string value already scanned clean: the keyed
// hash and the length of its decoded bytes, or of its raw bytes (with
// escapes) when n is negative.
type cleanEntry struct {
	h uint64
	n int
}

// minCached is the shortest value remembered as clean by its hash;
// shorter values up to shortCached bytes are remembered whole.
const (
	minCached   = shortCached + 1
	shortCached = 16
	shortBits   = 7
)

// shortEntry holds a short value found clean: its first and its last
// eight bytes (overlapping, read little-endian) and its length, which
// together are the whole value.
type shortEntry struct {
	a, b uint64
	n    uint8
}

// cleanSeed keys the hash of clean values; it is random per process, so
// nobody can craft a value that collides with a clean one.
var cleanSeed = maphash.MakeSeed()

type predVal struct {
	name string
	val  []byte
}

// frame is one open container on the tokenizer stack.
type frame struct {
	obj bool
	key []byte
	// keyUnmatched is set when no field rule can match the member name:
	// it is longer than maxPathKey, or no rule names a member of its
	// length. key is then left empty.
	keyUnmatched bool
	// secretKey is the label of the secret_field rule when the current
	// member's name says it holds a secret.
	secretKey []byte
	// bytesKey is set when the member names bytes (isBytesMember).
	bytesKey bool
	// capture names the filter member whose value comes next ("" if none).
	capture string
	preds   []predVal
}

func (f *frame) pred(name string) ([]byte, bool) {
	for i := range f.preds {
		if f.preds[i].name == name {
			return f.preds[i].val, true
		}
	}
	return nil, false
}

// jsonMasker is a streaming JSON tokenizer that masks while it validates.
type jsonMasker struct {
	cp *compiledProfile
	sc *scanner
	// Copied from cp, read for every value.
	secretFields bool
	lastKeys     bool
	lastKeyLens  uint64
	lt           *textMasker
	lb           b64Stream

	st    jstate
	stack []frame
	off   int64
	seen  bool // a top-level value started

	// current string
	isKey   bool
	discard bool // contents are not needed (suppressed or masked whole)
	// b64 tracks whether a string masked whole is base64 (bytes fields):
	// its label is then written base64-encoded, so that clients that
	// decode the field (gcloud, the client libraries) read the label
	// instead of failing on it.
	b64v    b64Validity
	strMask []byte // label when the whole string value is masked
	raw     []byte
	// view, when set, holds the raw bytes of the current string in place
	// (a string without escapes read whole from one chunk that write's
	// in-place paths did not take: one masked whole, suppressed, or
	// opened at the end of the previous chunk).
	view   []byte
	dec    []byte
	hasEsc bool
	long   bool
	uCount int
	uVal   rune
	high   rune

	// suppression of a masked container or scalar
	suppress bool
	supDepth int
	supLabel []byte

	num    int
	lit    string
	litPos int

	b64 []byte
	// bst and b64spans serve base64 runs inside string values.
	bst      b64State
	b64spans []span
	masked   int
	// clean remembers values found clean (keyed hash and length).
	clean    [128][2]cleanEntry
	cleanMRU [128]uint8
	// short remembers short values found clean, compared exactly.
	short    [1 << shortBits][2]shortEntry
	shortMRU [1 << shortBits]uint8
	// strLen counts the raw bytes of the current string.
	strLen int
}

func newJSONMasker(cp *compiledProfile, sc *scanner) *jsonMasker {
	return &jsonMasker{cp: cp, sc: sc, secretFields: cp.set.secretFields, lastKeys: cp.lastKeys, lastKeyLens: cp.lastKeyLens}
}

func (j *jsonMasker) errf(format string, args ...any) error {
	return fmt.Errorf("%w at byte %d: %s", ErrInvalidJSON, j.off, fmt.Sprintf(format, args...))
}

func isWS(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// Labels of the secret_field rule.
var (
	lbPassword     = label("password")
	lbClientSecret = label("oauth_client_secret")
	lbPrivateKey   = label("private_key")
	lbAPIKey       = label("api_key")
	lbGCPAPIKey    = label("gcp_api_key")
	lbOAuthToken   = label("oauth_token")
	lbRefreshToken = label("oauth_refresh_token")
	lbJWT          = label("jwt")
	lbAWSSecret    = label("aws_secret_access_key")
)

// secretKeyEnds holds the first and last letters of the names
// secretKeyLabel knows, a cheap filter before normalising a key.
var secretKeyEnds = func() (t [26][26]bool) {
	for _, n := range []string{"password", "passwd", "rootpassword", "dbpassword", "clientsecret", "privatekey",
		"privatekeydata", "certprivatekey", "clientkey", "apikey", "keystring", "accesstoken", "refreshtoken",
		"idtoken", "signedjwt", "secretaccesskey"} {
		t[n[0]-'a'][n[len(n)-1]-'a'] = true
	}
	return t
}()

// The lengths of the member names secretKeyLabel reads ("passwd" to
// "secret_access_key" with a few more '_' or '-').
const (
	minSecretKey = 6
	maxSecretKey = 24
)

// secretKeyLabel returns the label for a member whose name (compared in
// lower case, without '_' and '-') says it holds a secret, or nil.
func secretKeyLabel(key []byte) []byte {
	if len(key) < minSecretKey || len(key) > maxSecretKey {
		return nil
	}
	first, last := lowerTable[key[0]], lowerTable[key[len(key)-1]]
	if first < 'a' || first > 'z' || last < 'a' || last > 'z' || !secretKeyEnds[first-'a'][last-'a'] {
		if last != '_' && last != '-' && first != '_' && first != '-' {
			return nil
		}
	}
	var buf [24]byte
	n := 0
	for _, c := range key {
		if c == '_' || c == '-' {
			continue
		}
		buf[n] = lowerTable[c]
		n++
	}
	switch string(buf[:n]) {
	case "password", "passwd", "rootpassword", "dbpassword":
		return lbPassword
	case "clientsecret":
		return lbClientSecret
	case "privatekey", "privatekeydata", "certprivatekey", "clientkey":
		return lbPrivateKey
	case "apikey":
		return lbAPIKey
	case "keystring":
		return lbGCPAPIKey
	case "accesstoken":
		return lbOAuthToken
	case "refreshtoken":
		return lbRefreshToken
	case "idtoken", "signedjwt":
		return lbJWT
	case "secretaccesskey":
		return lbAWSSecret
	}
	return nil
}

// fieldLabel returns the label of the field rule selecting the value about
// to start, or nil.
func (j *jsonMasker) fieldLabel(c byte) []byte {
	if j.suppress {
		return nil
	}
	var top *frame
	if len(j.stack) > 0 {
		top = &j.stack[len(j.stack)-1]
		if top.obj && top.secretKey != nil && c != 'n' && c != 't' && c != 'f' {
			// secretKey is only set when the secret_field rule is on.
			return top.secretKey
		}
	}
	if c == 'n' || j.lastKeys && (top == nil || !top.obj || top.keyUnmatched || j.lastKeyLens&lenBit(len(top.key)) == 0) {
		// Every field rule ends with a member name (what fieldPath.match
		// checks first) and none can name this value's member.
		return nil
	}
	for _, fp := range j.cp.fields {
		if fp.match(j.stack) {
			return fp.label
		}
	}
	return nil
}

// lenBit is the bit of a length in a set of lengths: lengths from 63 up
// share the last bit.
func lenBit(n int) uint64 { return 1 << min(n, 63) }

func (j *jsonMasker) push(obj bool) error {
	if len(j.stack) >= maxDepth {
		return j.errf("nesting deeper than %d", maxDepth)
	}
	if cap(j.stack) > len(j.stack) {
		j.stack = j.stack[:len(j.stack)+1]
		f := &j.stack[len(j.stack)-1]
		f.obj = obj
		f.key = f.key[:0]
		f.keyUnmatched = false
		f.secretKey = nil
		f.capture = ""
		f.preds = f.preds[:0]
	} else {
		j.stack = append(j.stack, frame{obj: obj})
	}
	return nil
}

// write processes one chunk.
func (j *jsonMasker) write(dst, p []byte) ([]byte, error) {
	from := -1
	if !j.suppress && j.st != stString && j.st != stEsc && j.st != stEscU {
		from = 0
	}
	flush := func(i int) {
		if from >= 0 && i > from {
			dst = append(dst, p[from:i]...)
		}
		from = -1
	}
	i := 0
	base := j.off
	// j.off, the stream offset of p[i], is kept up to date only in the
	// states that can fail and set just before a structural error.
	for i < len(p) {
		c := p[i]
		switch j.st {
		case stString:
			j.off = base + int64(i)
			// Control characters are let through (a lenient reading); the
			// string ends at '"' and escapes start at '\\'.
			k := i + strStop(p[i:])
			if k < len(p) && p[k] == '"' && j.strLen == 0 && !j.long && k-i <= maxShortString && !(j.isKey && k-i > maxKeyLen) {
				// The whole string lies in this chunk without escapes:
				// read it in place instead of copying it into raw.
				j.strLen = k - i
				j.view = p[i:k]
				j.off = base + int64(k)
				var err error
				dst, err = j.endString(dst)
				j.view = nil
				if err != nil {
					return dst, err
				}
				i = k + 1
				if !j.suppress {
					from = i
				}
				j.afterValueOrKey()
				continue
			}
			if k > i {
				var err error
				dst, err = j.strRun(dst, p[i:k])
				if err != nil {
					return dst, err
				}
			}
			if k == len(p) {
				i = k
				continue
			}
			j.off = base + int64(k)
			switch c = p[k]; {
			case c == '"':
				var err error
				dst, err = j.endString(dst)
				if err != nil {
					return dst, err
				}
				i = k + 1
				if !j.suppress {
					from = i
				}
				j.afterValueOrKey()
			case c == '\\':
				if !j.discard && !j.long {
					if !j.hasEsc {
						j.hasEsc = true
						j.dec = append(j.dec[:0], j.raw...)
					}
					j.raw = append(j.raw, '\\')
				}
				j.st = stEsc
				j.strLen++
				i = k + 1
			}
			continue
		case stEsc:
			j.off = base + int64(i)
			var d byte
			switch c {
			case '"', '\\', '/':
				d = c
			case 'b':
				d = '\b'
			case 'f':
				d = '\f'
			case 'n':
				d = '\n'
			case 'r':
				d = '\r'
			case 't':
				d = '\t'
			case 'u':
				j.st = stEscU
				j.uCount, j.uVal = 0, 0
			default:
				return dst, j.errf("invalid escape \\%c", c)
			}
			if !j.discard && !j.long {
				j.raw = append(j.raw, c)
			}
			if c != 'u' {
				j.decByte(d)
				j.st = stString
			}
			i++
			if j.isKey && len(j.raw) > maxKeyLen {
				return dst, fmt.Errorf("%w at byte %d: object key longer than %d bytes", ErrUnmaskable, j.off, maxKeyLen)
			}
			var err error
			if dst, err = j.maybeLong(dst); err != nil {
				return dst, err
			}
			continue
		case stEscU:
			j.off = base + int64(i)
			var v rune
			switch {
			case c >= '0' && c <= '9':
				v = rune(c - '0')
			case c >= 'a' && c <= 'f':
				v = rune(c-'a') + 10
			case c >= 'A' && c <= 'F':
				v = rune(c-'A') + 10
			default:
				return dst, j.errf("invalid \\u escape")
			}
			if !j.discard && !j.long {
				j.raw = append(j.raw, c)
			}
			j.uVal = j.uVal<<4 | v
			j.uCount++
			if j.uCount == 4 {
				j.decRune(j.uVal)
				j.st = stString
				var err error
				if dst, err = j.maybeLong(dst); err != nil {
					return dst, err
				}
			}
			i++
			continue
		case stNumber:
			j.off = base + int64(i)
			ok := true
			switch {
			case c >= '0' && c <= '9':
				switch j.num {
				case nMinus:
					if c == '0' {
						j.num = nZero
					} else {
						j.num = nInt
					}
				case nZero:
					return dst, j.errf("leading zero in number")
				case nDot:
					j.num = nFrac
				case nE, nESign:
					j.num = nExp
				}
			case c == '.' && (j.num == nZero || j.num == nInt):
				j.num = nDot
			case (c == 'e' || c == 'E') && (j.num == nZero || j.num == nInt || j.num == nFrac):
				j.num = nE
			case (c == '+' || c == '-') && j.num == nE:
				j.num = nESign
			default:
				ok = false
			}
			if ok {
				i++
				continue
			}
			if !j.numDone() {
				return dst, j.errf("malformed number")
			}
			if j.suppress && j.supDepth == -1 {
				dst = j.appendMask(dst, j.supLabel)
				j.suppress = false
				from = i
			}
			j.st = stAfter
			continue // reprocess c
		case stLiteral:
			j.off = base + int64(i)
			if c != j.lit[j.litPos] {
				return dst, j.errf("invalid literal")
			}
			j.litPos++
			i++
			if j.litPos == len(j.lit) {
				if j.suppress && j.supDepth == -1 {
					dst = j.appendMask(dst, j.supLabel)
					j.suppress = false
					from = i
				}
				j.st = stAfter
			}
			continue
		}
		// Structural states.
		if c <= ' ' && isWS(c) {
			i++
			continue
		}
		switch j.st {
		case stArrFirst:
			if c == ']' {
				dst = j.pop(dst, &from, i)
				i++
				continue
			}
			j.st = stValue
			fallthrough
		case stValue:
			j.seen = true
			lb := j.fieldLabel(c)
			switch {
			case c == '{' || c == '[':
				if lb != nil {
					flush(i)
					j.suppress, j.supDepth, j.supLabel = true, len(j.stack), lb
				}
				j.off = base + int64(i)
				if err := j.push(c == '{'); err != nil {
					return dst, err
				}
				if c == '{' {
					j.st = stObjFirst
				} else {
					j.st = stArrFirst
				}
			case c == '"':
				if lb == nil && !j.suppress {
					if k, esc, ok := wholeString(p, i, false); ok {
						// A value read in place: what beginString,
						// strRun and endString do, without their state
						// (such a string cannot fail or grow long). An
						// unchanged one stays in the run of input bytes
						// that from starts.
						raw := p[i+1 : k]
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
							flush(i)
							dst = j.appendMasked(dst, d, spans, det)
							from = k + 1
						} else if from < 0 {
							from = i
						}
						j.st = stAfter
						i = k + 1
						continue
					}
				}
				flush(i)
				j.beginString(false, lb)
			case c == '-' || c >= '0' && c <= '9':
				if lb != nil {
					flush(i)
					j.suppress, j.supDepth, j.supLabel = true, -1, lb
				}
				j.st = stNumber
				j.num = nInt
				if c == '-' {
					j.num = nMinus
				} else if c == '0' {
					j.num = nZero
				}
			case c == 't' || c == 'f' || c == 'n':
				if lb != nil {
					flush(i)
					j.suppress, j.supDepth, j.supLabel = true, -1, lb
				}
				j.st = stLiteral
				j.litPos = 0
				switch c {
				case 't':
					j.lit = "rue"
				case 'f':
					j.lit = "alse"
				default:
					j.lit = "ull"
				}
			default:
				j.off = base + int64(i)
				return dst, j.errf("unexpected %q where a value was expected", c)
			}
			i++
		case stObjFirst, stObjKey:
			if c == '}' && j.st == stObjFirst {
				dst = j.pop(dst, &from, i)
				i++
				continue
			}
			if c != '"' {
				j.off = base + int64(i)
				return dst, j.errf("unexpected %q where an object key was expected", c)
			}
			if !j.suppress {
				if k, esc, ok := wholeString(p, i, true); ok {
					// A key read in place, as a value above.
					d := p[i+1 : k]
					if esc {
						j.dec = unescapeSimple(j.dec[:0], d)
						d = j.dec
					}
					j.memberName(d)
					if d, spans, det, dirty := j.scanString(d, nil); dirty {
						flush(i)
						dst = j.appendMasked(dst, d, spans, det)
						from = k + 1
					} else if from < 0 {
						from = i
					}
					j.st = stColon
					i = k + 1
					if i < len(p) && p[i] == ':' {
						// What stColon does with the colon that follows.
						j.st = stValue
						i++
					}
					continue
				}
				flush(i)
			}
			j.beginString(true, nil)
			i++
		case stColon:
			if c != ':' {
				j.off = base + int64(i)
				return dst, j.errf("unexpected %q where ':' was expected", c)
			}
			j.st = stValue
			i++
		case stAfter:
			if len(j.stack) == 0 {
				// Another top-level value (JSON lines).
				j.st = stValue
				continue
			}
			top := &j.stack[len(j.stack)-1]
			switch {
			case c == ',' && top.obj:
				j.st = stObjKey
			case c == ',':
				j.st = stValue
			case c == '}' && top.obj, c == ']' && !top.obj:
				dst = j.pop(dst, &from, i)
			default:
				j.off = base + int64(i)
				return dst, j.errf("unexpected %q after a value", c)
			}
			i++
		}
	}
	j.off = base + int64(len(p))
	if from >= 0 && from < len(p) {
		dst = append(dst, p[from:]...)
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

// top returns the innermost open container, or nil.
func (j *jsonMasker) top() *frame {
	if len(j.stack) == 0 {
		return nil
	}
	return &j.stack[len(j.stack)-1]
}

// memberName records the decoded name d of the member whose value comes
// next in the innermost object.
func (j *jsonMasker) memberName(d []byte) {
	top := &j.stack[len(j.stack)-1]
	if len(j.cp.fields) > 0 {
		// Only field rules read the member names on the stack, and only
		// to compare them with the member names the rules hold.
		if len(d) > maxPathKey || j.cp.keyLens&lenBit(len(d)) == 0 {
			top.keyUnmatched = true
			top.key = top.key[:0]
		} else {
			top.keyUnmatched = false
			top.key = append(top.key[:0], d...)
		}
	}
	top.bytesKey = isBytesMember(d)
	top.secretKey = nil
	if j.secretFields && len(d) >= minSecretKey && len(d) <= maxSecretKey {
		top.secretKey = secretKeyLabel(d)
	}
	top.capture = ""
	if len(j.cp.predNames) > 0 {
		for _, name := range j.cp.predNames {
			if string(d) == name {
				top.capture = name
			}
		}
	}
}

// capturePred records the decoded value d of the filter member f.capture.
func (f *frame) capturePred(d []byte) {
	v := d
	if len(v) > maxPredValue {
		v = v[:maxPredValue]
	}
	replaced := false
	for i := range f.preds {
		if f.preds[i].name == f.capture {
			f.preds[i].val = append(f.preds[i].val[:0], v...)
			replaced = true
		}
	}
	if !replaced {
		f.preds = append(f.preds, predVal{name: f.capture, val: append([]byte(nil), v...)})
	}
	f.capture = ""
}

func (j *jsonMasker) numDone() bool {
	return j.num == nZero || j.num == nInt || j.num == nFrac || j.num == nExp
}

// pop closes the container ended by the byte at i.
func (j *jsonMasker) pop(dst []byte, from *int, i int) []byte {
	j.stack = j.stack[:len(j.stack)-1]
	j.st = stAfter
	if j.suppress && j.supDepth == len(j.stack) {
		dst = j.appendMask(dst, j.supLabel)
		j.suppress = false
		*from = i + 1
	}
	return dst
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
