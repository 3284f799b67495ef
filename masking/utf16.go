package masking

import (
	"unicode/utf16"
	"unicode/utf8"
)

// UTF-16 text (a PowerShell script saved by Windows tools, a .reg file)
// puts a NUL beside every ASCII character, so no detector matches it as
// bytes. A text stream that starts with a UTF-16 byte order mark, or whose
// first bytes alternate ASCII and NUL, is transcoded to UTF-8 for scanning
// and its output encoded back to UTF-16 in the same byte order: the agent
// gets the encoding it asked for, with the secrets masked.

// utf16Sniff is how many bytes are looked at to recognise UTF-16 without a
// byte order mark.
const utf16Sniff = 64

// detectUTF16 reports whether b starts a UTF-16 text and its byte order.
// decided is false while b is too short to tell.
func detectUTF16(b []byte, final bool) (isUTF16, bigEndian, decided bool) {
	if len(b) >= 2 {
		switch {
		case b[0] == 0xFF && b[1] == 0xFE:
			return true, false, true
		case b[0] == 0xFE && b[1] == 0xFF:
			return true, true, true
		}
	}
	if len(b) < utf16Sniff && !final {
		return false, false, false
	}
	n := min(len(b), utf16Sniff) &^ 1
	if n < 8 {
		return false, false, true
	}
	var zeroEven, zeroOdd, asciiEven, asciiOdd int
	for i := 0; i < n; i += 2 {
		e, o := b[i], b[i+1]
		if e == 0 {
			zeroEven++
		} else if e < 0x80 {
			asciiEven++
		}
		if o == 0 {
			zeroOdd++
		} else if o < 0x80 {
			asciiOdd++
		}
	}
	units := n / 2
	switch {
	case zeroOdd*10 >= units*9 && asciiEven*10 >= units*9:
		return true, false, true
	case zeroEven*10 >= units*9 && asciiOdd*10 >= units*9:
		return true, true, true
	}
	return false, false, true
}

// utf16Masker masks UTF-16 text through a UTF-8 text masker.
type utf16Masker struct {
	inner *textMasker
	be    bool
	odd   []byte // a byte of an unfinished code unit
	hi    rune   // a high surrogate waiting for its low half
	in8   []byte // UTF-8 of the current write
	out8  []byte // masked UTF-8 not yet encoded (an unfinished rune)
}

func (u *utf16Masker) unit(b0, b1 byte) uint16 {
	if u.be {
		return uint16(b0)<<8 | uint16(b1)
	}
	return uint16(b1)<<8 | uint16(b0)
}

// decode appends the UTF-8 of p's code units to u.in8.
func (u *utf16Masker) decode(p []byte, final bool) {
	u.in8 = u.in8[:0]
	data := p
	if len(u.odd) > 0 && len(p) > 0 {
		u.odd = append(u.odd, p[0])
		u.decodeUnits(u.odd)
		u.odd = u.odd[:0]
		data = p[1:]
	}
	n := len(data) &^ 1
	u.decodeUnits(data[:n])
	if n < len(data) {
		u.odd = append(u.odd, data[n])
	}
	if final {
		if u.hi != 0 || len(u.odd) > 0 {
			u.in8 = utf8.AppendRune(u.in8, utf8.RuneError)
		}
		u.hi, u.odd = 0, u.odd[:0]
	}
}

func (u *utf16Masker) decodeUnits(b []byte) {
	for i := 0; i+1 < len(b); i += 2 {
		r := rune(u.unit(b[i], b[i+1]))
		switch {
		case utf16.IsSurrogate(r) && r < 0xDC00:
			if u.hi != 0 {
				u.in8 = utf8.AppendRune(u.in8, utf8.RuneError)
			}
			u.hi = r
			continue
		case utf16.IsSurrogate(r):
			if u.hi == 0 {
				r = utf8.RuneError
			} else {
				r = utf16.DecodeRune(u.hi, r)
			}
			u.hi = 0
		case u.hi != 0:
			u.in8 = utf8.AppendRune(u.in8, utf8.RuneError)
			u.hi = 0
		}
		u.in8 = utf8.AppendRune(u.in8, r)
	}
}

// encode appends the UTF-16 of the complete runes of u.out8 to dst.
func (u *utf16Masker) encode(dst []byte, final bool) []byte {
	b := u.out8
	for len(b) > 0 {
		if !final && !utf8.FullRune(b) {
			break
		}
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r < 0x10000 {
			dst = u.put(dst, uint16(r))
			continue
		}
		r1, r2 := utf16.EncodeRune(r)
		dst = u.put(u.put(dst, uint16(r1)), uint16(r2))
	}
	u.out8 = append(u.out8[:0], b...)
	return dst
}

func (u *utf16Masker) put(dst []byte, c uint16) []byte {
	if u.be {
		return append(dst, byte(c>>8), byte(c))
	}
	return append(dst, byte(c), byte(c>>8))
}

func (u *utf16Masker) write(dst, p []byte, final bool) []byte {
	u.decode(p, final)
	u.out8 = u.inner.write(u.out8, u.in8, final, emitRaw)
	return u.encode(dst, final)
}
