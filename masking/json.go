package masking

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/bits"
	"unicode/utf8"
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
	depth int
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

// wholeString reports whether the string opened by the quote at p[q] ends
// in p, within the length bounds and with no escapes other than the
// one-letter ones, where it ends and whether it holds escapes.
func wholeString(p []byte, q int, isKey bool) (k int, esc, ok bool) {
	k = q + 1
	if k+16 <= len(p) {
		// strStop's first step, without the call: most keys and short
		// values end within sixteen bytes.
		m0 := stopMask(binary.LittleEndian.Uint64(p[k:]))
		m1 := stopMask(binary.LittleEndian.Uint64(p[k+8:]))
		if m0|m1 != 0 {
			t := bits.TrailingZeros64(m0) >> 3 // 8 when m0 is 0
			k += t + (bits.TrailingZeros64(m1)>>3)&-(t>>3)
		} else {
			k += 16 + strStop(p[k+16:])
		}
	} else {
		k += strStop(p[k:])
	}
	for {
		if k >= len(p) {
			return 0, false, false
		}
		if p[k] == '"' {
			break
		}
		if k+1 >= len(p) || unescape[p[k+1]] == 0 {
			// A \u escape (or an invalid one) takes the byte-wise path.
			return 0, false, false
		}
		esc = true
		k += 2
		k += strStop(p[k:])
	}
	n := k - q - 1
	if n > maxShortString || isKey && n > maxKeyLen {
		return 0, false, false
	}
	return k, esc, true
}

// unescape maps the letter after a backslash to the byte it stands for;
// 0 marks \u and invalid escapes.
var unescape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// unescapeSimple appends raw with its one-letter escapes decoded.
func unescapeSimple(dst, raw []byte) []byte {
	for {
		b := bytes.IndexByte(raw, '\\')
		if b < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:b]...)
		dst = append(dst, unescape[raw[b+1]])
		raw = raw[b+2:]
	}
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

// appendMaskB64 writes a masked base64 value: its label, base64-encoded
// in the value's alphabet.
func (j *jsonMasker) appendMaskB64(dst, lb []byte, url bool) []byte {
	j.masked++
	enc := base64.StdEncoding
	if url {
		enc = base64.URLEncoding
	}
	dst = append(dst, '"')
	dst = enc.AppendEncode(dst, lb)
	return append(dst, '"')
}

// isBytesMember reports members that Google's APIs declare as bytes
// (base64 in JSON) and that clients decode: a masked one keeps a base64
// label.
func isBytesMember(d []byte) bool {
	switch len(d) {
	case 4, 9, 10, 13, 14, 27:
	default:
		return false
	}
	switch string(d) {
	case "data", "privateKeyData", "publicKeyData", "signature", "signedBlob", "plaintext", "ciphertext", "additionalAuthenticatedData":
		return true
	}
	return false
}

// inBytesMember reports whether the string value being read is a member
// that holds bytes.
func (j *jsonMasker) inBytesMember() bool {
	if len(j.stack) == 0 {
		return false
	}
	top := &j.stack[len(j.stack)-1]
	return top.obj && top.bytesKey
}

// b64Validity follows whether a string is padded base64 of some length.
type b64Validity struct {
	n, pad   int
	url, std bool
	invalid  bool
}

func (v *b64Validity) add(c byte) {
	if v.invalid {
		return
	}
	switch {
	case c == '=':
		v.pad++
		if v.pad > 2 {
			v.invalid = true
		}
		return
	case v.pad > 0:
		v.invalid = true // "=" only at the end
	case isAlnum(c):
	case c == '+' || c == '/':
		v.std = true
	case c == '-' || c == '_':
		v.url = true
	default:
		v.invalid = true
	}
	v.n++
	if v.std && v.url {
		v.invalid = true
	}
}

// bytesField reports a value that reads as base64-encoded bytes: whole
// quads of one alphabet, long enough not to be a word. (A short alphanumeric
// value, such as a password, keeps the readable label.)
func (v *b64Validity) bytesField() bool {
	return !v.invalid && (v.n+v.pad)%4 == 0 && v.n+v.pad >= 16 && (v.pad > 0 || v.std || v.url || v.n >= 24)
}

// appendMask writes a masked value as a JSON string.
func (j *jsonMasker) appendMask(dst, lb []byte) []byte {
	j.masked++
	dst = append(dst, '"')
	dst = append(dst, lb...)
	return append(dst, '"')
}

func (j *jsonMasker) beginString(isKey bool, lb []byte) {
	j.st = stString
	j.isKey = isKey
	j.strMask = lb
	j.b64v = b64Validity{}
	j.discard = j.suppress || lb != nil
	j.raw = j.raw[:0]
	j.dec = j.dec[:0]
	j.hasEsc = false
	j.long = false
	j.high = 0
	j.strLen = 0
}

// rawBytes returns the raw bytes of the current string.
func (j *jsonMasker) rawBytes() []byte {
	if j.view != nil {
		return j.view
	}
	return j.raw
}

// afterValueOrKey moves on after a string closed.
func (j *jsonMasker) afterValueOrKey() {
	if j.isKey {
		j.st = stColon
	} else {
		j.st = stAfter
	}
}

func (j *jsonMasker) decByte(d byte) {
	if j.discard {
		j.b64v.add(d)
		return
	}
	if j.high != 0 {
		j.dec = utf8.AppendRune(j.dec, utf8.RuneError)
		j.high = 0
	}
	j.dec = append(j.dec, d)
}

func (j *jsonMasker) decRune(r rune) {
	if j.discard {
		j.b64v.invalid = true
		return
	}
	if j.high != 0 {
		if r >= 0xDC00 && r <= 0xDFFF {
			j.dec = utf8.AppendRune(j.dec, (j.high-0xD800)<<10+(r-0xDC00)+0x10000)
			j.high = 0
			return
		}
		j.dec = utf8.AppendRune(j.dec, utf8.RuneError)
		j.high = 0
	}
	if r >= 0xD800 && r <= 0xDBFF {
		j.high = r
		return
	}
	if r >= 0xDC00 && r <= 0xDFFF {
		r = utf8.RuneError
	}
	j.dec = utf8.AppendRune(j.dec, r)
}

// strRun takes a run of plain string bytes.
func (j *jsonMasker) strRun(dst, run []byte) ([]byte, error) {
	j.strLen += len(run)
	if j.discard {
		if j.strMask != nil && !j.b64v.invalid {
			for _, c := range run {
				j.b64v.add(c)
			}
		}
		return dst, nil
	}
	if j.high != 0 {
		j.dec = utf8.AppendRune(j.dec, utf8.RuneError)
		j.high = 0
	}
	if j.long {
		// Feed the scanner in small pieces so that no buffer grows with
		// the chunk size.
		for len(run) > 0 {
			var err error
			if dst, err = j.flushLong(dst); err != nil {
				return dst, err
			}
			n := min(len(run), longPiece-len(j.dec))
			j.dec = append(j.dec, run[:n]...)
			run = run[n:]
		}
		return j.flushLong(dst)
	}
	j.raw = append(j.raw, run...)
	if j.hasEsc {
		j.dec = append(j.dec, run...)
	}
	if j.isKey && len(j.raw) > maxKeyLen {
		return dst, fmt.Errorf("%w at byte %d: object key longer than %d bytes", ErrUnmaskable, j.off, maxKeyLen)
	}
	return j.maybeLong(dst)
}

// maybeLong switches a string value that outgrew maxShortString to streaming.
func (j *jsonMasker) maybeLong(dst []byte) ([]byte, error) {
	if j.long {
		return j.flushLong(dst)
	}
	if j.discard || j.isKey || len(j.raw) <= maxShortString {
		return dst, nil
	}
	j.long = true
	if j.lt == nil {
		j.lt = newTextMasker(j.sc)
		// Emit base64 text later than its decoded form is scanned.
		j.lt.carry = j.lt.carry*4/3 + 4
		j.lt.buf = make([]byte, 0, 2*j.lt.carry+longPiece+contextBytes)
	}
	j.lt.reset()
	j.lb.reset()
	dst = append(dst, '"')
	d := j.raw
	if j.hasEsc {
		d = j.dec
	}
	dst, err := j.longWrite(dst, d, false)
	j.dec = j.dec[:0]
	// The raw buffer is not used while the string streams; let it go
	// rather than hold it beside the scanner's buffers.
	j.raw = nil
	return dst, err
}

// flushLong hands a full piece of a long string to the scanner.
func (j *jsonMasker) flushLong(dst []byte) ([]byte, error) {
	if len(j.dec) < longPiece {
		return dst, nil
	}
	dst, err := j.longWrite(dst, j.dec, false)
	j.dec = j.dec[:0]
	return dst, err
}

// longWrite scans a piece of a long string (and its base64 reading) and
// emits what is safe.
func (j *jsonMasker) longWrite(dst, piece []byte, final bool) ([]byte, error) {
	if err := j.lb.feed(j.sc, piece, final); err != nil {
		return dst, err
	}
	out := j.lt.write(dst, piece, final, emitJSONString)
	if err := j.lt.err; err != nil {
		return dst, err
	}
	return out, nil
}

// endString completes a key or a string value.
func (j *jsonMasker) endString(dst []byte) ([]byte, error) {
	if j.high != 0 && !j.discard {
		j.dec = utf8.AppendRune(j.dec, utf8.RuneError)
		j.high = 0
	}
	if j.isKey {
		if j.suppress {
			return dst, nil
		}
		d := j.rawBytes()
		if j.hasEsc {
			d = j.dec
		}
		j.memberName(d)
		return j.emitString(dst, d), nil
	}
	if j.suppress {
		return dst, nil
	}
	if j.strMask != nil {
		if j.strLen == 0 {
			// An empty value reveals nothing: keep it.
			return append(dst, '"', '"'), nil
		}
		if j.view != nil {
			// Read in place: strRun did not see its bytes.
			for _, c := range j.view {
				j.b64v.add(c)
			}
		}
		if j.b64v.bytesField() && j.inBytesMember() {
			return j.appendMaskB64(dst, j.strMask, j.b64v.url), nil
		}
		return j.appendMask(dst, j.strMask), nil
	}
	if j.long {
		dst, err := j.longWrite(dst, j.dec, true)
		if err != nil {
			return dst, err
		}
		j.dec = j.dec[:0]
		j.long = false
		return append(dst, '"'), nil
	}
	d := j.rawBytes()
	if j.hasEsc {
		d = j.dec
	}
	if len(j.stack) > 0 {
		top := &j.stack[len(j.stack)-1]
		if top.capture != "" && top.obj {
			top.capturePred(d)
		}
	}
	return j.emitString(dst, d), nil
}

// emitString scans the decoded string d and writes the string: the raw
// bytes when nothing is found, else the masked value re-encoded.
func (j *jsonMasker) emitString(dst, d []byte) []byte {
	if d, spans, det, dirty := j.scanString(d, nil); dirty {
		return j.appendMasked(dst, d, spans, det)
	}
	dst = append(dst, '"')
	dst = append(dst, j.rawBytes()...)
	return append(dst, '"')
}

// scanString reports whether a string holds something to mask and what
// appendMasked needs to mask it: the decoded string and either the spans
// found in it (det < 0) or the detector that found a secret in its base64
// reading. The string is d, decoded; or d is nil and escRaw holds the raw
// bytes of a string with one-letter escapes, decoded (into j.dec) only when
// the clean caches do not know them.
func (j *jsonMasker) scanString(d, escRaw []byte) ([]byte, []span, int32, bool) {
	// List responses repeat many values (kinds, URLs, scripts, addresses):
	// a value already found clean in this stream is not scanned again.
	var slot *cleanEntry
	var sslot *shortEntry
	var cset, sset uint64
	var sa, sb uint64
	var ce cleanEntry
	if escRaw != nil {
		if len(escRaw) >= minCached {
			// Keyed by the raw bytes, which decode to one value; a
			// negative length keeps these entries apart from decoded ones.
			ce = cleanEntry{h: maphash.Bytes(cleanSeed, escRaw), n: -len(escRaw)}
			var hit bool
			if hit, slot, cset = j.lookupClean(ce); hit {
				return nil, nil, 0, false
			}
		}
		j.dec = unescapeSimple(j.dec[:0], escRaw)
		d = j.dec
	}
	if len(d) < minMatchNoAt && (len(d) < minMatchLen || !j.cp.set.custom && !hasAtShort(d)) {
		// Too short for any detector (what find would say; base64
		// decoding needs minBase64 bytes).
		return nil, nil, 0, false
	}
	switch {
	case slot != nil:
		// Keyed by the raw bytes above.
	case len(d) >= minMatchNoAt && len(d) <= shortCached:
		// Short values (keys, names, ids) are compared exactly: the
		// first and the last eight bytes (overlapping) and the length.
		sa = binary.LittleEndian.Uint64(d)
		sb = binary.LittleEndian.Uint64(d[len(d)-8:])
		x := (sa ^ sb*0x9E3779B97F4A7C15 ^ uint64(len(d))) * 0xBF58476D1CE4E5B9
		// Two-way sets with the least recently used entry replaced: a
		// value seen once never evicts both of two frequent ones.
		set := x >> (64 - shortBits)
		w := &j.short[set]
		switch {
		case w[0].n == uint8(len(d)) && w[0].a == sa && w[0].b == sb:
			j.shortMRU[set] = 0
			return nil, nil, 0, false
		case w[1].n == uint8(len(d)) && w[1].a == sa && w[1].b == sb:
			j.shortMRU[set] = 1
			return nil, nil, 0, false
		}
		sslot = &w[1-j.shortMRU[set]]
		sset = set
	case len(d) >= minCached:
		ce = cleanEntry{h: maphash.Bytes(cleanSeed, d), n: len(d)}
		var hit bool
		if hit, slot, cset = j.lookupClean(ce); hit {
			return nil, nil, 0, false
		}
	}
	if spans := j.sc.find(d); len(spans) > 0 {
		return d, spans, -1, true
	}
	if det, ok := j.base64Secret(d); ok {
		return d, nil, det, true
	}
	if len(d) > minB64Run && j.cp.set.any && hasB64Run(d) {
		// Base64 inside text (a manifest or an .env file in a string).
		var spans []span
		spans, _ = j.bst.spans(j.cp.set, d, 0, j.b64spans[:0])
		j.b64spans = spans
		if len(spans) > 0 {
			return d, mergeSpans(spans), -1, true
		}
	}
	if slot != nil {
		*slot = ce
		j.cleanMRU[cset] ^= 1
	}
	if sslot != nil {
		*sslot = shortEntry{a: sa, b: sb, n: uint8(len(d))}
		j.shortMRU[sset] ^= 1
	}
	return nil, nil, 0, false
}

// appendMasked appends the decoded string d masked as scanString found,
// re-encoded as a JSON string.
func (j *jsonMasker) appendMasked(dst, d []byte, spans []span, det int32) []byte {
	if det >= 0 && j.inBytesMember() {
		// A bytes member whose decoding holds a secret.
		var v b64Validity
		for _, c := range d {
			v.add(c)
		}
		if v.bytesField() {
			return j.appendMaskB64(dst, j.cp.set.e.dets[det].label, v.url)
		}
	}
	dst = append(dst, '"')
	if det >= 0 {
		j.masked++
		dst = append(dst, j.cp.set.e.dets[det].label...)
		return append(dst, '"')
	}
	pos := 0
	for _, s := range spans {
		dst = emitJSONString(dst, d[pos:s.start])
		dst = append(dst, j.cp.set.e.dets[s.det].label...)
		j.masked++
		pos = s.end
	}
	dst = emitJSONString(dst, d[pos:])
	return append(dst, '"')
}

// hasAtShort is hasAt for 6 to 10 bytes, a word or two at a time.
func hasAtShort(d []byte) bool {
	var a, b uint64
	if len(d) >= 8 {
		a = binary.LittleEndian.Uint64(d)
		b = binary.LittleEndian.Uint64(d[len(d)-8:])
	} else {
		a = uint64(binary.LittleEndian.Uint32(d))
		b = uint64(binary.LittleEndian.Uint32(d[len(d)-4:]))
		// The upper four bytes of a and b are zero, never '@'.
	}
	a ^= swarLo * '@'
	b ^= swarLo * '@'
	// A byte of a or b is zero where d holds '@'.
	return ((a-swarLo)&^a|(b-swarLo)&^b)&swarHi != 0
}

// base64Secret decodes a base64-looking value and scans what it holds.
func (j *jsonMasker) base64Secret(d []byte) (int32, bool) {
	if len(d) < minBase64 || !j.cp.set.any {
		return 0, false
	}
	std, url, pad := false, false, false
	for i, c := range d {
		switch {
		case isAlnum(c):
		case c == '+' || c == '/':
			std = true
		case c == '-' || c == '_':
			url = true
		case c == '=':
			if i < len(d)-2 {
				return 0, false
			}
			pad = true
		default:
			return 0, false
		}
	}
	if std && url {
		return 0, false
	}
	enc := base64.StdEncoding
	switch {
	case url && pad:
		enc = base64.URLEncoding
	case url:
		enc = base64.RawURLEncoding
	case !pad && len(d)%4 != 0:
		enc = base64.RawStdEncoding
	}
	n := enc.DecodedLen(len(d))
	if cap(j.b64) < n {
		j.b64 = make([]byte, n)
	}
	m, err := enc.Decode(j.b64[:n], d)
	if err != nil {
		return 0, false
	}
	spans := j.sc.find(j.b64[:m])
	if len(spans) == 0 {
		// Base64 inside what it decodes to: a manifest's values in a
		// Secret Manager payload.
		if det := j.bst.check(j.cp.set, j.b64[:m], 1); det >= 0 {
			return det, true
		}
		return 0, false
	}
	return spans[0].det, true
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

// lookupClean looks ce up in the clean-value cache (two-way sets, the least
// recently used entry replaced): a hit, or the slot to fill once the value
// is found clean, and its set.
func (j *jsonMasker) lookupClean(ce cleanEntry) (hit bool, slot *cleanEntry, set uint64) {
	set = ce.h % uint64(len(j.clean))
	w := &j.clean[set]
	switch ce {
	case w[0]:
		j.cleanMRU[set] = 0
		return true, nil, set
	case w[1]:
		j.cleanMRU[set] = 1
		return true, nil, set
	}
	return false, &w[1-j.cleanMRU[set]], set
}

var hexDigits = "0123456789abcdef"

// emitJSONString appends b escaped for the inside of a JSON string.
func emitJSONString(dst, b []byte) []byte {
	start := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, b[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	return append(dst, b[start:]...)
}

// stopMask flags the bytes of x (eight bytes read little-endian) that are
// '"' or '\\': a byte of q or s is zero where x holds one. Only the lowest
// flagged byte is certain (a borrow may flag bytes above a true one), which
// is all strStop reads.
func stopMask(x uint64) uint64 {
	q := x ^ (swarLo * '"')
	s := x ^ (swarLo * '\\')
	return ((q-swarLo)&^q | (s-swarLo)&^s) & swarHi
}

// Bytes of 0x01 and 0x80 repeated, for scanning eight bytes at a time.
const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// strStop returns the offset of the first '"' or '\\' in b, or len(b).
// Short strings are scanned eight bytes at a time; the rest of a long one
// is left to bytes.IndexByte.
func strStop(b []byte) int {
	i := 0
	if len(b) >= 16 {
		// The first sixteen bytes hold most keys and short values: find
		// the stop in them without a branch on where it is.
		m0 := stopMask(binary.LittleEndian.Uint64(b))
		m1 := stopMask(binary.LittleEndian.Uint64(b[8:]))
		if m0|m1 != 0 {
			t := bits.TrailingZeros64(m0) >> 3 // 8 when m0 is 0
			return t + (bits.TrailingZeros64(m1)>>3)&-(t>>3)
		}
		i = 16
	}
	for ; i+8 <= len(b) && i < 64; i += 8 {
		if m := stopMask(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	if i+8 > len(b) {
		for ; i < len(b); i++ {
			if c := b[i]; c == '"' || c == '\\' {
				return i
			}
		}
		return i
	}
	k := len(b)
	if q := bytes.IndexByte(b[i:], '"'); q >= 0 {
		k = i + q
	}
	if e := bytes.IndexByte(b[i:k], '\\'); e >= 0 {
		k = i + e
	}
	return k
}
