package masking

import (
	"encoding/base64"
	"fmt"
)

// b64Stream decodes a long string value that looks like base64 as it
// streams and scans what it decodes. A secret found there cannot be masked
// in place (part of the value has been sent), so it ends the stream:
// the client gets an error, never the secret.
type b64Stream struct {
	active   bool
	std, url bool
	padded   bool
	quad     []byte // pending characters (fewer than 4)
	dec      []byte // decoded tail kept for context, then new bytes
	scratch  []byte
}

func (b *b64Stream) reset() {
	b.active = true
	b.std, b.url, b.padded = false, false, false
	b.quad = b.quad[:0]
	b.dec = b.dec[:0]
}

// feed takes decoded string bytes; it returns an error when the decoded
// base64 holds a secret.
func (b *b64Stream) feed(sc *scanner, piece []byte, final bool) error {
	if !b.active {
		return nil
	}
	for _, c := range piece {
		switch {
		case isAlnum(c):
		case c == '+' || c == '/':
			b.std = true
		case c == '-' || c == '_':
			b.url = true
		case c == '=':
			b.padded = true
			continue
		case c == '\n' || c == '\r':
			continue
		default:
			b.active = false
			return nil
		}
		if b.padded || b.std && b.url {
			b.active = false
			return nil
		}
		b.quad = append(b.quad, c)
	}
	n := len(b.quad) / 4 * 4
	if final {
		n = len(b.quad)
	}
	if n == 0 {
		return nil
	}
	enc := base64.RawStdEncoding
	if b.url {
		enc = base64.RawURLEncoding
	}
	need := enc.DecodedLen(n)
	if cap(b.scratch) < need {
		b.scratch = make([]byte, need)
	}
	m, err := enc.Decode(b.scratch[:need], b.quad[:n])
	if err != nil {
		b.active = false
		return nil
	}
	rest := copy(b.quad, b.quad[n:])
	b.quad = b.quad[:rest]
	b.dec = append(b.dec, b.scratch[:m]...)
	if spans := sc.find(b.dec); len(spans) > 0 {
		b.active = false
		return fmt.Errorf("%w: a base64 value longer than %d bytes holds a secret (%s)",
			ErrUnmaskable, maxShortString, sc.set.e.dets[spans[0].det].name)
	}
	keep := sc.set.carry
	if len(b.dec) > keep {
		k := copy(b.dec, b.dec[len(b.dec)-keep:])
		b.dec = b.dec[:k]
	}
	return nil
}
