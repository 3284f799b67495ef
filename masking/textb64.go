package masking

import (
	"encoding/base64"
	"fmt"
	"sync"
)

// Base64 inside text. A Kubernetes Secret manifest stored as an object, an
// .env file with an encoded value, a Secret Manager payload holding such a
// manifest (base64 inside base64): the secret is in the text only encoded.
// The text path finds runs of at least minB64Run base64 characters (the
// standard or the URL alphabet, "=" padding at the end, and MIME-style line
// breaks after a line whose length is a multiple of four), decodes each and
// scans what it decodes, recursively down to maxB64Depth levels; a run
// whose decoding holds a secret is masked whole with that secret's label.
//
// A run still growing at the end of the buffer is held, like a match that
// may continue. One longer than the buffer's bound is decoded as it is
// emitted: a secret found in it after part of it went out ends the stream
// with ErrUnmaskable, never a secret let through.

// minB64Run is the shortest run decoded: 18 bytes of plaintext, shorter
// than any secret worth a detector.
const minB64Run = 24

// maxB64Depth bounds base64 inside base64.
const maxB64Depth = 3

// mimeLine is the shortest line after which a line break continues a run.
const mimeLine = 60

// b64Class marks the bytes of base64 runs: letters and digits, and the
// characters only the standard (+ /) or only the URL (- _) alphabet uses.
var b64Class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if isAlnum(byte(c)) {
			t[c] = b64Alnum
		}
	}
	t['+'], t['/'] = b64Std, b64Std
	t['-'], t['_'] = b64URL, b64URL
	return t
}()

const (
	b64Alnum = 1 << iota
	b64Std
	b64URL
)

func isB64Byte(c byte) bool { return b64Class[c] != 0 }

// b64Run is one run found in a text: [start, end) in the text, and its
// characters without line breaks. mixed is set when it uses both
// alphabets: it decodes to nothing.
type b64Run struct {
	start, end int
	chars      []byte
	mixed      bool
}

// nextB64Run finds the next run at or after i; ok is false when none is
// left.
func nextB64Run(text []byte, i int, chars []byte) (r b64Run, ok bool) {
	n := len(text)
	for i < n {
		if b64Class[text[i]] == 0 {
			i++
			continue
		}
		start := i
		chars = chars[:0]
		line := 0
		var seen uint8
		for i < n {
			c := text[i]
			if cl := b64Class[c]; cl != 0 {
				seen |= cl
				chars = append(chars, c)
				line++
				i++
				continue
			}
			if c == '=' {
				for i < n && text[i] == '=' {
					i++
				}
				break
			}
			if (c == '\n' || c == '\r') && line >= mimeLine && line%4 == 0 {
				j := i + 1
				if c == '\r' && j < n && text[j] == '\n' {
					j++
				}
				if j < n && b64Class[text[j]] != 0 {
					i, line = j, 0
					continue
				}
			}
			break
		}
		if len(chars) >= minB64Run {
			return b64Run{start: start, end: i, chars: chars, mixed: seen&(b64Std|b64URL) == b64Std|b64URL}, true
		}
	}
	return b64Run{}, false
}

// decodeB64 decodes run characters in whichever alphabet they use; ok is
// false for characters of both alphabets or bytes that do not decode.
func decodeB64(chars, dst []byte) ([]byte, bool) {
	std, url := false, false
	for _, c := range chars {
		switch c {
		case '+', '/':
			std = true
		case '-', '_':
			url = true
		}
	}
	if std && url {
		return dst, false
	}
	if len(chars)%4 == 1 {
		chars = chars[:len(chars)-1]
	}
	enc := base64.RawStdEncoding
	if url {
		enc = base64.RawURLEncoding
	}
	need := enc.DecodedLen(len(chars))
	if cap(dst) < need {
		dst = make([]byte, need)
	}
	n, err := enc.Decode(dst[:need], chars)
	if err != nil {
		return dst, false
	}
	return dst[:n], true
}

// b64State is the scratch of base64 runs: runs of the text itself (out*),
// and at each depth d the runs found inside the plaintext of depth d.
type b64State struct {
	outChars, outDec []byte
	sc               [maxB64Depth]*scanner // one per depth: find reuses its spans
	chars            [maxB64Depth][]byte
	dec              [maxB64Depth][]byte
	// long decodes a run longer than the buffer as it is emitted.
	long     b64Stream
	longScan *scanner
}

// b64Pool holds the base64 scratch of whole-text masking.
var b64Pool = sync.Pool{New: func() any { return new(b64State) }}

// check reports the detector of a secret in plain, a plaintext at depth d,
// or in what the base64 runs inside it decode to (down to maxB64Depth), or
// -1.
func (st *b64State) check(set *detSet, plain []byte, d int) int32 {
	if d >= maxB64Depth {
		return -1
	}
	if st.sc[d] == nil || st.sc[d].set != set {
		st.sc[d] = newScanner(set)
	}
	if found := st.sc[d].find(plain); len(found) > 0 {
		return found[0].det
	}
	if d+1 >= maxB64Depth || !hasB64Run(plain) {
		return -1
	}
	for i := 0; ; {
		r, ok := nextB64Run(plain, i, st.chars[d])
		if !ok {
			return -1
		}
		st.chars[d] = r.chars
		i = r.end
		if r.mixed {
			continue
		}
		dec, ok := decodeB64(r.chars, st.dec[d])
		st.dec[d] = dec
		if !ok {
			continue
		}
		if det := st.check(set, dec, d+1); det >= 0 {
			return det
		}
	}
}

// spans appends a span for every run of text from from whose decoding
// holds a secret, and returns the start of a run that reaches the end of
// text (it may continue), or -1.
func (st *b64State) spans(set *detSet, text []byte, from int, spans []span) ([]span, int) {
	open := -1
	for i := from; ; {
		r, ok := nextB64Run(text, i, st.outChars)
		if !ok {
			return spans, open
		}
		st.outChars = r.chars
		i = r.end
		if r.end == len(text) {
			open = r.start
		}
		if r.mixed {
			continue
		}
		dec, ok := decodeB64(r.chars, st.outDec)
		st.outDec = dec
		if !ok {
			continue
		}
		if det := st.check(set, dec, 0); det >= 0 {
			spans = append(spans, span{start: r.start, end: r.end, det: det})
		}
	}
}

// hasB64Run reports quickly whether text may hold a run worth decoding:
// minB64Run characters of one alphabet (line breaks may continue a run).
func hasB64Run(text []byte) bool {
	n := 0
	var seen uint8
	for _, c := range text {
		if cl := b64Class[c]; cl != 0 {
			seen |= cl
			if n++; n >= minB64Run && seen&(b64Std|b64URL) != b64Std|b64URL {
				return true
			}
		} else if c != '\n' && c != '\r' {
			n, seen = 0, 0
		}
	}
	return false
}

// b64Spans is spans over the masker's buffer.
func (t *textMasker) b64Spans(spans []span, from int) ([]span, int) {
	if !hasB64Run(t.buf[from:]) {
		// No run to decode; one still growing at the end is held only
		// when it may become one.
		return spans, -1
	}
	return t.b64.spans(t.sc.set, t.buf, from, spans)
}

// feedLong decodes the part of a long run being emitted; an error means a
// secret was found in a run already partly sent.
func (t *textMasker) feedLong(piece []byte, final bool) error {
	st := &t.b64
	if !st.long.active {
		return nil
	}
	if st.longScan == nil {
		st.longScan = newScanner(t.sc.set)
	}
	if err := st.long.feed(st.longScan, piece, final); err != nil {
		return fmt.Errorf("%w: a base64 run longer than %d bytes holds a secret", ErrUnmaskable, t.maxBuf)
	}
	return nil
}
