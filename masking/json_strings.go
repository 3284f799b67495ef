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

// Strings: a JSON string found whole or in runs, decoded, scanned and
// masked as it is emitted; base64 members stay base64.

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
